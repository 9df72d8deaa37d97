//! Request bounds with a clear answer: the request target (`414`), the request headers (`431`)
//! and each publisher's rate (`429` with `Retry-After`); and the count of every refusal by
//! reason, for `/metrics`.
//!
//! The update size (`413`) is bounded where the body is read, in [`super::publish`]; the number
//! of open connections (`503`) in the accept loop ([`crate::server`]).

use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http::StatusCode;

use super::Refusal;
use crate::hub::HubState;

/// Keys kept by the publish rate limiter before idle ones are forgotten.
const RATE_KEYS_KEPT: usize = 10_000;

/// Refuses a request whose target or headers are larger than configured.
pub(crate) async fn request_size(
    State(state): State<Arc<HubState>>,
    request: Request,
    next: Next,
) -> Response {
    let config = &state.config;
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if target > config.max_url_size {
        return Refusal::new(
            StatusCode::URI_TOO_LONG,
            format!(
                "the request URL is {target} bytes; the hub accepts at most {} (max-url-size)",
                config.max_url_size
            ),
        )
        .into_response();
    }
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers > config.max_header_size {
        return Refusal::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "the request headers are {headers} bytes; the hub accepts at most {} \
                 (max-header-size)",
                config.max_header_size
            ),
        )
        .into_response();
    }
    next.run(request).await
}

/// Counts every refusal the routes answer, by reason.
pub(crate) async fn count_refusals(
    State(state): State<Arc<HubState>>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    if let Some(reason) = reason(response.status()) {
        state.metrics.rejected(reason);
    }
    response
}

fn reason(status: StatusCode) -> Option<&'static str> {
    Some(match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "update_too_large",
        StatusCode::URI_TOO_LONG => "url_too_long",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::TOO_MANY_REQUESTS => "publish_rate",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "headers_too_large",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_client_error() => "other_client_error",
        _ => return None,
    })
}

/// Each publisher's (each token's) budget of updates per second.
pub(crate) struct PublishRate {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
}

impl std::fmt::Debug for PublishRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishRate")
            .field("limited", &self.limiter.is_some())
            .finish()
    }
}

impl PublishRate {
    /// `per_second` updates per second for each publisher, with bursts of as many (zero: none).
    pub(crate) fn new(per_second: u32) -> PublishRate {
        PublishRate {
            limiter: NonZeroU32::new(per_second).map(|n| RateLimiter::keyed(Quota::per_second(n))),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one update from `publisher`'s budget, or refuses with `429` and `Retry-After`.
    pub(crate) fn check(&self, publisher: &str, per_second: u32) -> Result<(), Refusal> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        if limiter.len() > RATE_KEYS_KEPT {
            limiter.retain_recent();
        }
        limiter
            .check_key(&publisher.to_owned())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(self.clock.now());
                let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
                Refusal::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "publish rate exceeded: at most {per_second} updates per second per \
                     publisher (publish-rate); retry in {seconds}s"
                    ),
                )
                .retry_after(seconds)
            })
    }
}
