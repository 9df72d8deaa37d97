//! The control API, beside the hub's endpoint: `POST /.well-known/mercure/control/disconnect`
//! ends live streams, `POST /.well-known/mercure/control/revoke` refuses tokens until they
//! expire (see [`crate::control`]).
//!
//! Only a publisher token with Herald's admin claim (`{"herald": {"admin": true}}`) may use it,
//! from the `Authorization` header (or the `authorization` query parameter), never from a
//! cookie: a page's cookie must never end other users' streams. The token is verified before a
//! byte of the body is read; the body is a small JSON object.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};

use super::publish::read_body;
use super::{HUB_PATH, Refusal, claims};
use crate::auth::{AuthError, Role, TokenSource};
use crate::control::{Action, ActionKind, Applied, ControlError, Revocation, Selection, now_secs};
use crate::hub::HubState;

/// The largest request body the control API reads.
const MAX_BODY: usize = 16 * 1024;
/// The longest criterion (subject, ID, selector) in bytes.
const MAX_CRITERION: usize = 4096;

/// The control API's routes (served when the hub has a publisher key).
pub(crate) fn routes() -> Router<Arc<HubState>> {
    Router::new()
        .route(&format!("{HUB_PATH}/control/disconnect"), post(disconnect))
        .route(&format!("{HUB_PATH}/control/revoke"), post(revoke))
}

/// A revoke request's body.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RevokeRequest {
    jti: Option<String>,
    sub: Option<String>,
    before: Option<u64>,
    exp: Option<u64>,
}

/// What the API answers.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    action: &'static str,
    id: String,
    /// The streams ended on the node that answered.
    streams: usize,
    /// Whether that node applied it before answering.
    applied_here: bool,
    /// The nodes it was dispatched to.
    nodes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revocation: Option<Revocation>,
    message: String,
}

async fn disconnect(
    State(state): State<Arc<HubState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Refusal> {
    authorize(&state, &headers, query.as_deref()).await?;
    let selection: Selection = read_json(&state, &headers, body).await?;
    if selection.is_empty() {
        return Err(Refusal::bad_request(
            "say which streams to end: `sub`, `subscriber`, `subscription` or `topic` (several \
             criteria select the streams matching all of them)",
        ));
    }
    if selection.longest() > MAX_CRITERION {
        return Err(Refusal::bad_request(format!(
            "a criterion is longer than {MAX_CRITERION} bytes"
        )));
    }
    dispatch(&state, Action::new(ActionKind::Disconnect(selection))).await
}

async fn revoke(
    State(state): State<Arc<HubState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Refusal> {
    authorize(&state, &headers, query.as_deref()).await?;
    let request: RevokeRequest = read_json(&state, &headers, body).await?;
    let revocation = revocation(&state, request)?;
    let action = Action::new(ActionKind::Revoke(revocation));
    state.control.check(&action).map_err(|error| match error {
        ControlError::Full { .. } => {
            Refusal::new(StatusCode::INSUFFICIENT_STORAGE, error.to_string())
        }
    })?;
    dispatch(&state, action).await
}

/// A revoke request checked and completed: one `jti`, or one `sub` (with `before`, by default
/// now), kept until `exp` (by default the revocation TTL from now).
fn revocation(state: &HubState, request: RevokeRequest) -> Result<Revocation, Refusal> {
    let now = now_secs();
    let (jti, sub) = match (request.jti, request.sub) {
        (Some(jti), None) if !jti.is_empty() => (Some(jti), None),
        (None, Some(sub)) if !sub.is_empty() => (None, Some(sub)),
        (Some(_), Some(_)) => {
            return Err(Refusal::bad_request(
                "give either `jti` (one token) or `sub` (a subject's tokens), not both",
            ));
        }
        _ => {
            return Err(Refusal::bad_request(
                "say what to revoke: `jti` (one token) or `sub` (a subject's tokens issued \
                 before `before`)",
            ));
        }
    };
    if request.before.is_some() && sub.is_none() {
        return Err(Refusal::bad_request(
            "`before` goes with `sub`: the subject's tokens issued before it are revoked",
        ));
    }
    if jti
        .iter()
        .chain(sub.iter())
        .any(|c| c.len() > MAX_CRITERION)
    {
        return Err(Refusal::bad_request(format!(
            "`jti` or `sub` is longer than {MAX_CRITERION} bytes"
        )));
    }
    let until = request
        .exp
        .unwrap_or_else(|| now.saturating_add(state.config.revocation_ttl.as_secs()));
    if until <= now {
        return Err(Refusal::bad_request(format!(
            "`exp` ({until}) is not in the future: a token past its exp is refused anyway"
        )));
    }
    Ok(Revocation {
        before: sub.as_ref().map(|_| request.before.unwrap_or(now)),
        jti,
        sub,
        until,
    })
}

/// Lets through only a publisher token with the admin claim, not from a cookie.
async fn authorize(
    state: &HubState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<(), Refusal> {
    let (claims, source) = claims(state, Role::Publisher, headers, query)
        .await?
        .ok_or(AuthError::Missing)?;
    if source == TokenSource::Cookie {
        return Err(AuthError::Forbidden(
            "the control API takes its token from the Authorization header (or the \
             authorization query parameter), never from a cookie"
                .to_owned(),
        )
        .into());
    }
    if !claims.admin {
        return Err(AuthError::Forbidden(
            "the token may not use the control API: it needs the claim {'herald': {'admin': \
             true}}, signed with the publisher key"
                .to_owned(),
        )
        .into());
    }
    Ok(())
}

/// Reads a JSON body (`Content-Type: application/json`, or none) into `T`.
async fn read_json<T: serde::de::DeserializeOwned>(
    state: &HubState,
    headers: &HeaderMap,
    body: Body,
) -> Result<T, Refusal> {
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    if let Some(kind) = content_type {
        let essence = kind.split(';').next().unwrap_or_default().trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            return Err(Refusal::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("the control API reads JSON (Content-Type: application/json), not {kind}"),
            ));
        }
    }
    let body = read_body(
        body,
        headers,
        MAX_BODY.min(state.config.max_update_size.max(1024)),
        state.config.body_timeout,
        "the control request",
    )
    .await?;
    serde_json::from_slice(&body)
        .map_err(|error| Refusal::bad_request(format!("the request body is not valid: {error}")))
}

/// Sends the action through the transport and answers what it did.
async fn dispatch(state: &HubState, action: Action) -> Result<Response, Refusal> {
    let name = action.name();
    let id = action.id.clone();
    let revocation = match &action.kind {
        ActionKind::Revoke(revocation) => Some(revocation.clone()),
        ActionKind::Disconnect(_) => None,
    };
    let applied = state
        .transport
        .control(action, &state.control)
        .await
        .map_err(|error| {
            Refusal::transport(
                &error,
                "control action",
                "the action may or may not have been dispatched; sending it again is safe",
            )
        })?;
    let answer = Answer {
        action: name,
        id,
        streams: applied.streams,
        applied_here: applied.applied_here,
        nodes: applied.nodes,
        node: state.config.node_id.clone(),
        revocation,
        message: message(name, &applied),
    };
    let mut response = axum::Json(answer).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

/// `2 streams ended on this node; dispatched to 3 nodes`.
fn message(name: &str, applied: &Applied) -> String {
    let streams = match applied.streams {
        1 => "1 stream".to_owned(),
        n => format!("{n} streams"),
    };
    let here = if applied.applied_here {
        format!("{streams} ended on this node")
    } else {
        "not applied on this node yet".to_owned()
    };
    let done = if name == "revoke" { "revoked; " } else { "" };
    if applied.nodes > 1 {
        format!("{done}{here}; dispatched to {} nodes", applied.nodes)
    } else {
        format!("{done}{streams} ended")
    }
}
