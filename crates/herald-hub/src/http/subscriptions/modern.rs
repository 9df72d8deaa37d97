//! The subscriptions API in Mercure 1.0's shapes (draft-08): `subscriptions`,
//! `subscriptions/{match_type}/{match}` and `subscriptions/{match_type}/{match}/{subscriber}`,
//! plain JSON, the cursor in a `Link` header rather than the body, a quoted `ETag`. A token
//! must hold a `subscribe` grant matching the request's path (the query is not part of it):
//! `401` without a token, `403 insufficient_scope` without the grant.

use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_TYPE, ETAG, HeaderValue, IF_NONE_MATCH, LINK};
use http::{HeaderMap, StatusCode, Uri};
use serde::Serialize;

use super::cluster_docs;
use crate::auth::{AuthError, extract_access_token};
use crate::http::{HUB_PATH, Refusal};
use crate::hub::HubState;
use crate::protocol::Generation;
use crate::subscriptions::{ModernDoc, decode_segment};
use crate::topic::MatchType;

#[derive(Serialize)]
struct Collection {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    subscriptions: Vec<ModernDoc>,
}

pub(super) async fn respond(
    state: &HubState,
    uri: &Uri,
    headers: &HeaderMap,
    rest: Option<&str>,
) -> Result<Response, Refusal> {
    let refuse = |error| Refusal::modern(error, state);
    let (token, _) = extract_access_token(headers, &[], &state.config.access_token_cookie)
        .map_err(refuse)?
        .ok_or_else(|| refuse(AuthError::Missing))?;
    let claims = crate::http::subscribe::verify_access(state, &token)
        .await
        .map_err(refuse)?;
    let path = uri.path();
    if !claims.may_subscribe_to(path) {
        return Err(refuse(AuthError::Forbidden(format!(
            "the token has no subscribe grant matching {path}"
        ))));
    }
    let last_event_id = state.transport.last_event_id();
    let etag = quoted(&last_event_id);
    if headers
        .get(IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return Ok(decorate(
            StatusCode::NOT_MODIFIED.into_response(),
            &etag,
            &last_event_id,
        ));
    }
    let docs = cluster_docs(state, Generation::Modern).await?;
    let segments: Vec<&str> = rest
        .filter(|r| !r.is_empty())
        .map(|r| r.split('/').collect())
        .unwrap_or_default();
    let not_found = || Refusal::new(StatusCode::NOT_FOUND, "no such active subscription");
    let body = match segments.as_slice() {
        [] => collection(path, docs.iter().map(|d| d.modern()).collect()),
        [match_type, matcher] | [match_type, matcher, _] => {
            let match_type = MatchType::from_name(match_type).ok_or_else(not_found)?;
            let matcher = decode_segment(matcher).ok_or_else(not_found)?;
            let mut found = docs
                .iter()
                .filter(|d| {
                    d.match_type.as_deref() == Some(match_type.as_str()) && d.topic == matcher
                })
                .map(|d| d.modern());
            match segments.get(2) {
                None => collection(path, found.collect()),
                Some(subscriber) => {
                    let subscriber = decode_segment(subscriber).ok_or_else(not_found)?;
                    let doc = found
                        .find(|d| d.subscriber == subscriber)
                        .ok_or_else(not_found)?;
                    serde_json::to_vec(&doc)
                }
            }
        }
        _ => return Err(not_found()),
    }
    .map_err(|_| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"))?;
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(decorate(response, &etag, &last_event_id))
}

fn collection(path: &str, subscriptions: Vec<ModernDoc>) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&Collection {
        id: path.to_owned(),
        kind: "subscriptions",
        subscriptions,
    })
}

/// An entity tag for `id`: quoted, with `"`, `\`, `%` and anything outside visible ASCII
/// percent-encoded, so that any event ID makes a valid tag.
fn quoted(id: &str) -> String {
    let mut tag = String::with_capacity(id.len() + 2);
    tag.push('"');
    for byte in id.bytes() {
        match byte {
            b'"' | b'\\' | b'%' => tag.push_str(&format!("%{byte:02X}")),
            0x21..=0x7e => tag.push(char::from(byte)),
            _ => tag.push_str(&format!("%{byte:02X}")),
        }
    }
    tag.push('"');
    tag
}

/// Adds the `ETag` and the `Link` to the hub carrying the cursor.
fn decorate(mut response: Response, etag: &str, last_event_id: &str) -> Response {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(ETAG, value);
    }
    let link = format!(
        "<{HUB_PATH}>; rel=\"mercure\"; last-event-id={}; type=\"mercure\"; \
         content-type=\"application/json\"",
        quoted(last_event_id)
    );
    if let Ok(value) = HeaderValue::from_str(&link) {
        headers.insert(LINK, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b62_etags_are_quoted_and_escaped() {
        assert_eq!(quoted("urn:uuid:1"), "\"urn:uuid:1\"");
        assert_eq!(quoted("a\"b\\c d%é"), "\"a%22b%5Cc%20d%25%C3%A9\"");
        assert!(HeaderValue::from_str(&quoted("\u{1}\u{7f}x")).is_ok());
    }
}
