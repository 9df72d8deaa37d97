//! `POST /.well-known/mercure`: authorize the publisher from the request head, read the form
//! within its size and time bounds, validate it, dispatch the update, answer its ID. The
//! token says the generation: a 0.x token's `mercure.publish` selectors, or a 1.0 access
//! token's `publish` grants (`403 insufficient_scope` when one topic lacks one).
//!
//! Nothing of the body is read before the token is verified and the publisher is within its
//! rate: an unauthorized client gets its `401`/`403` without a byte read (and, when it asked
//! with `Expect: 100-continue`, without a `100 Continue`), a body announced larger than the
//! bound gets `413` from its `Content-Length` alone, and a body that does not arrive within
//! `body_timeout` gets `408` and the connection closed.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::{Refusal, claims};
use crate::auth::{AuthError, Role, check_publish_origin, extract_access_token, extract_token};
use crate::form::{FormLimits, PublishRules, parse_publish_form_with};
use crate::hub::HubState;
use crate::protocol::Generation;
use crate::transport::TransportError;
use crate::update::Update;

pub(crate) async fn publish(
    State(state): State<Arc<HubState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Refusal> {
    let query = query.as_deref();
    match super::token_generation(&state, query, &headers)? {
        Generation::Legacy => legacy(&state, query, &headers, body).await,
        Generation::Modern => modern(&state, query, &headers, body).await,
    }
}

/// A Mercure 0.x publish: the `mercure` claim's publish selectors.
async fn legacy(
    state: &HubState,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Refusal> {
    let (claims, source) = claims(state, Role::Publisher, headers, query)
        .await?
        .ok_or(AuthError::Missing)?;
    check_publish_origin(headers, source, &state.config.publish_origins)?;
    if state.config.publish_rate != 0 {
        // The publisher is its token: every token has its own budget.
        let token = extract_token(headers, query, &state.config.cookie_name)?
            .map(|(token, _)| token)
            .unwrap_or_default();
        state
            .publish_rate
            .check(&token, state.config.publish_rate)?;
    }
    let update = read_update(state, headers, body, Generation::Legacy).await?;
    claims.check_publish(&update.topics)?;
    dispatch(state, update).await
}

/// A Mercure 1.0 publish: an access token with a `publish` grant on every topic.
async fn modern(
    state: &HubState,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Refusal> {
    let refuse = |error| Refusal::modern(error, state);
    let params = super::params(query);
    let (token, source) = extract_access_token(headers, &params, &state.config.access_token_cookie)
        .map_err(refuse)?
        .ok_or_else(|| refuse(AuthError::Missing))?;
    let claims = super::subscribe::verify_access(state, &token)
        .await
        .map_err(refuse)?;
    check_publish_origin(headers, source, &state.config.publish_origins).map_err(refuse)?;
    if claims.grants.iter().all(|g| !g.publish) {
        return Err(refuse(AuthError::NoPublishGrant));
    }
    if state.config.publish_rate != 0 {
        state
            .publish_rate
            .check(&token, state.config.publish_rate)?;
    }
    let update = read_update(state, headers, body, Generation::Modern).await?;
    claims.check_publish(&update.topics).map_err(refuse)?;
    dispatch(state, update).await
}

/// Reads the form within its bounds and validates it by `generation`'s rules.
async fn read_update(
    state: &HubState,
    headers: &HeaderMap,
    body: Body,
    generation: Generation,
) -> Result<Update, Refusal> {
    let body = read_body(
        body,
        headers,
        state.config.max_update_size,
        state.config.body_timeout,
        "the update",
    )
    .await?;
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let limits = FormLimits {
        max_topics: state.config.max_topics,
        max_id_size: state.config.max_id_size,
    };
    let rules = PublishRules {
        generation,
        modern_hub: state
            .config
            .protocol
            .serves(Generation::Modern)
            .then_some(&state.hub_url),
    };
    Ok(parse_publish_form_with(
        content_type,
        &body,
        &limits,
        &rules,
    )?)
}

/// Stores and fans out the update; answers its ID.
async fn dispatch(state: &HubState, update: Update) -> Result<Response, Refusal> {
    let started = std::time::Instant::now();
    let record = state
        .transport
        .dispatch(update)
        .await
        .map_err(|error| match error {
            TransportError::TooLarge(_) => {
                Refusal::new(StatusCode::PAYLOAD_TOO_LARGE, error.to_string())
            }
            TransportError::DuplicateId(_) => Refusal::new(
                StatusCode::CONFLICT,
                format!(
                    "{error}: update IDs must be unique so that resumes are exact (the same \
                     update sent again is answered as stored)"
                ),
            ),
            _ => Refusal::transport(
                &error,
                "publish",
                "the update may or may not have been stored; retry with the same id",
            ),
        })?;
    state.metrics.published();
    state.metrics.delivery_latency(started.elapsed());
    let mut response = record.id().to_owned().into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(response)
}

/// Reads a request body of at most `max` bytes within `timeout`: `413` as soon as its
/// `Content-Length` or its bytes exceed `max`, `408` (closing the connection) when it is not
/// complete in time, `400` when the client broke it off.
pub(crate) async fn read_body(
    body: Body,
    headers: &HeaderMap,
    max: usize,
    timeout: Duration,
    what: &str,
) -> Result<Bytes, Refusal> {
    let too_large = || {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{what} is larger than {max} bytes (max-update-size)"),
        )
        .close()
    };
    let announced = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|length| length > u64::try_from(max).unwrap_or(u64::MAX)) {
        return Err(too_large());
    }
    match tokio::time::timeout(timeout, Limited::new(body, max).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.is::<LengthLimitError>() => Err(too_large()),
        Ok(Err(error)) => Err(Refusal::bad_request(format!(
            "the request body could not be read: {error}"
        ))),
        Err(_) => Err(Refusal::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {} (body-timeout)",
                crate::config::duration_text::format(timeout)
            ),
        )
        .close()),
    }
}
