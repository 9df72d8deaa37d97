//! Reading a Mercure 1.0 subscription (draft-08): the access token (header or cookie, never the
//! URL), the `match`, `match_exact` and `match_urlpattern` matchers from the query string and,
//! with the `QUERY` method, the form body, and `last_event_id`.

use std::collections::HashSet;

use axum::body::Body;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, StatusCode};

use super::{Plan, check_cost};
use crate::auth::{AccessClaims, AuthError, extract_access_token};
use crate::fanout::Subscriber;
use crate::http::Refusal;
use crate::http::publish::read_body;
use crate::hub::HubState;
use crate::protocol::{Generation, Markers, is_clean_text};
use crate::topic::{MatchType, TopicSelector};

/// The longest matcher value, in bytes.
pub(crate) const MAX_MATCHER: usize = 4096;

pub(super) async fn plan(
    state: &HubState,
    mut params: Vec<(String, String)>,
    headers: &HeaderMap,
    body: Option<Body>,
) -> Result<Plan, Refusal> {
    let refuse = |error| Refusal::modern(error, state);
    let token = extract_access_token(headers, &params, &state.config.access_token_cookie)
        .map_err(refuse)?;
    let claims = match token {
        Some((token, _)) => Some(verify_access(state, &token).await.map_err(refuse)?),
        None if state.config.anonymous => None,
        None => return Err(refuse(AuthError::Missing)),
    };
    // Authorized: only now is a QUERY body read.
    let from_query = params.len();
    if let Some(body) = body {
        let body_params = form_body(state, headers, body).await?;
        if let Some((name, _)) = body_params
            .iter()
            .find(|(name, _)| name == "access_token" || name == "authorization")
        {
            return Err(refuse(AuthError::TokenInUrl(if name == "access_token" {
                "access_token in the body"
            } else {
                "authorization in the body"
            })));
        }
        let mut markers = Markers::default();
        markers.of_params(&body_params);
        if let Some(legacy) = markers.legacy {
            return Err(Refusal::bad_request(format!(
                "the request mixes Mercure 1.0 (the QUERY method) and Mercure 0.x ({legacy} in \
                 the body); a request speaks one generation"
            )));
        }
        params.extend(body_params);
    }
    let selectors = matchers(state, &params)?;
    // The header wins, then the query string, then the body; an empty value still asks for
    // the Mercure-Last-Event-ID answer.
    let requested = headers
        .get(herald_server::LAST_EVENT_ID_HEADER)
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
        .map(str::to_owned)
        .or_else(|| first(&params[..from_query], "last_event_id"))
        .or_else(|| first(&params[from_query..], "last_event_id"));
    let payloads = selectors
        .iter()
        .map(|s| claims.as_ref().and_then(|c| c.payload_for(s.as_str())))
        .collect();
    let mut subscriber = Subscriber::new(
        format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        selectors,
        claims
            .as_ref()
            .map(AccessClaims::subscribe_selectors)
            .unwrap_or_default(),
    );
    subscriber.generation = Generation::Modern;
    subscriber.payloads = payloads;
    subscriber.identity = claims
        .as_ref()
        .map(AccessClaims::identity)
        .unwrap_or_default();
    Ok(Plan {
        subscriber,
        requested,
        expires_at: claims.map(|c| c.expires_at),
    })
}

/// Verifies a Mercure 1.0 access token with the hub's trusted issuers, and refuses one revoked
/// through the control API.
pub(crate) async fn verify_access(
    state: &HubState,
    token: &str,
) -> Result<AccessClaims, AuthError> {
    let claims = match state.authorizer.access() {
        Some(access) => access.verify(token).await?,
        None => {
            return Err(AuthError::InvalidToken(
                "this hub trusts no issuer of Mercure 1.0 access tokens".to_owned(),
            ));
        }
    };
    if state.control.is_revoked(&claims.identity()) {
        return Err(AuthError::Revoked);
    }
    Ok(claims)
}

fn first(params: &[(String, String)], name: &str) -> Option<String> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

/// The pairs of a QUERY request's form body, read within the request-body bounds.
async fn form_body(
    state: &HubState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<(String, String)>, Refusal> {
    let bytes = read_body(
        body,
        headers,
        state.config.max_update_size,
        state.config.body_timeout,
        "the QUERY request's body",
    )
    .await?;
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let is_form = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a QUERY subscription's body must be a form: Content-Type: \
             application/x-www-form-urlencoded",
        ));
    }
    Ok(form_urlencoded::parse(&bytes)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect())
}

/// The subscription's matchers: each distinct `match`/`match_exact` (exact) and
/// `match_urlpattern` value, checked and compiled once, within the count and cost budgets.
fn matchers(state: &HubState, params: &[(String, String)]) -> Result<Vec<TopicSelector>, Refusal> {
    let config = &state.config;
    let mut selectors: Vec<TopicSelector> = Vec::new();
    let mut seen = HashSet::new();
    let mut cost = 0;
    for (name, value) in params {
        let match_type = match name.as_str() {
            "match" | "match_exact" => MatchType::Exact,
            "match_urlpattern" => MatchType::UrlPattern,
            other
                if other
                    .get(..5)
                    .is_some_and(|p| p.eq_ignore_ascii_case("match")) =>
            {
                return Err(Refusal::bad_request(format!(
                    "unknown parameter {other:?}: Mercure 1.0 subscribes with match (or \
                     match_exact) and match_urlpattern, whose names are case-sensitive"
                )));
            }
            _ => continue,
        };
        if value.is_empty() {
            return Err(Refusal::bad_request(format!("{name} is empty")));
        }
        if value.len() > MAX_MATCHER {
            return Err(Refusal::bad_request(format!(
                "{name} is {} bytes; the hub accepts at most {MAX_MATCHER}",
                value.len()
            )));
        }
        if !is_clean_text(value) {
            return Err(Refusal::bad_request(format!(
                "{name} holds a control or format character"
            )));
        }
        if !seen.insert((match_type, value.as_str())) {
            continue;
        }
        if selectors.len() == config.max_topics {
            return Err(Refusal::bad_request(format!(
                "too many matchers: at most {} per subscription (max-topics)",
                config.max_topics
            )));
        }
        let selector =
            TopicSelector::matcher(match_type, value, &state.hub_url).ok_or_else(|| {
                Refusal::bad_request(format!(
                    "match_urlpattern {value:?} is not a valid URL pattern (WHATWG URL Pattern \
                     syntax, e.g. https://example.com/books/:id)"
                ))
            })?;
        cost += selector.cost();
        check_cost(cost, state)?;
        selectors.push(selector);
    }
    if selectors.is_empty() {
        return Err(Refusal::bad_request(
            r#"Missing "match" parameter: subscribe with match=<topic> or match_urlpattern=<pattern>"#,
        ));
    }
    Ok(selectors)
}
