//! `POST /.well-known/mercure`: authorize the publisher from the request head, read the form
//! within its size and time bounds, validate it, dispatch the update, answer its ID.
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
use crate::auth::{AuthError, Role, check_publish_origin, extract_token};
use crate::form::{FormLimits, parse_publish_form};
use crate::hub::HubState;
use crate::transport::TransportError;

pub(crate) async fn publish(
    State(state): State<Arc<HubState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Refusal> {
    let (claims, source) = claims(&state, Role::Publisher, &headers, query.as_deref())
        .await?
        .ok_or(AuthError::Missing)?;
    check_publish_origin(&headers, source, &state.config.publish_origins)?;
    if state.config.publish_rate != 0 {
        // The publisher is its token: every token has its own budget.
        let token = extract_token(&headers, query.as_deref(), &state.config.cookie_name)?
            .map(|(token, _)| token)
            .unwrap_or_default();
        state
            .publish_rate
            .check(&token, state.config.publish_rate)?;
    }
    let body = read_body(
        body,
        &headers,
        state.config.max_update_size,
        state.config.body_timeout,
    )
    .await?;
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let limits = FormLimits {
        max_topics: state.config.max_topics,
        max_id_size: state.config.max_id_size,
    };
    let update = parse_publish_form(content_type, &body, &limits)?;
    claims.check_publish(&update.topics)?;
    let started = std::time::Instant::now();
    let record = state
        .transport
        .dispatch(update)
        .await
        .map_err(|error| match error {
            TransportError::Closed => {
                Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "the hub is shutting down")
            }
            TransportError::Unavailable(_) => {
                tracing::warn!(%error, "publish refused: the shared log is unavailable");
                Refusal::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the hub's shared log is unavailable: the update may or may not have been \
                     stored; retry with the same id",
                )
                .retry_after(1)
            }
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
            _ => {
                tracing::error!(%error, "dispatch failed");
                Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
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
async fn read_body(
    body: Body,
    headers: &HeaderMap,
    max: usize,
    timeout: Duration,
) -> Result<Bytes, Refusal> {
    let too_large = || {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the update is larger than {max} bytes (max-update-size)"),
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
