//! `POST /.well-known/mercure`: authorize the publisher, validate the form, dispatch the update,
//! answer its ID.

use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{HeaderMap, StatusCode};

use super::{Refusal, claims};
use crate::auth::{AuthError, Role, check_publish_origin, extract_token};
use crate::form::parse_publish_form;
use crate::hub::HubState;
use crate::transport::TransportError;

pub(crate) async fn publish(
    State(state): State<Arc<HubState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
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
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the update is larger than {} bytes (max-update-size)",
                    state.config.max_update_size
                ),
            )
        } else {
            Refusal::new(rejection.status(), rejection.body_text())
        }
    })?;
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let update = parse_publish_form(content_type, &body, state.config.max_topics)?;
    claims.check_publish(&update.topics)?;
    let started = std::time::Instant::now();
    let record = state.transport.dispatch(update).await.map_err(|error| {
        tracing::error!(%error, "dispatch failed");
        match error {
            TransportError::Closed => {
                Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "the hub is shutting down")
            }
            _ => Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
        }
    })?;
    state.metrics.published();
    state.metrics.delivery_latency(started.elapsed());
    let mut response = record.update().id.clone().into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(response)
}
