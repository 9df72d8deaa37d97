//! Refusals in the log: every refused request is logged at `info` with the reason its client
//! got, the remote address, the method and the path (never the query, which may carry a token,
//! nor any header). A flood of refusals is not a flood of log lines: beyond a budget per
//! second they are only counted (in `/metrics` as always), and one `warn` line says how many
//! went unlogged.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::hub::HubState;

/// Refusals logged one by one per second, on average.
const PER_SECOND: u32 = 10;
/// Refusals logged one by one in a burst.
const BURST: u32 = 50;

/// The reason a refusal gave its client, kept on the response for the log.
#[derive(Debug, Clone)]
pub(crate) struct RefusalReason(pub(crate) String);

/// The log's budget of refusal lines.
pub(crate) struct RefusalLog {
    budget: DefaultDirectRateLimiter,
    /// Refusals not logged since the last line.
    unlogged: AtomicU64,
}

impl std::fmt::Debug for RefusalLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefusalLog")
            .field("unlogged", &self.unlogged)
            .finish_non_exhaustive()
    }
}

impl Default for RefusalLog {
    fn default() -> RefusalLog {
        let quota = Quota::per_second(NonZeroU32::new(PER_SECOND).unwrap_or(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(BURST).unwrap_or(NonZeroU32::MIN));
        RefusalLog {
            budget: RateLimiter::direct(quota),
            unlogged: AtomicU64::new(0),
        }
    }
}

/// One refusal, as logged.
pub(crate) struct Refused<'a> {
    /// The HTTP status, or `None` for a connection refused before any request.
    pub(crate) status: Option<u16>,
    pub(crate) reason: &'a str,
    pub(crate) remote: Option<SocketAddr>,
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
}

impl RefusalLog {
    /// Logs a refusal at `info`, or counts it when over budget.
    pub(crate) fn log(&self, refused: &Refused<'_>) {
        if self.budget.check().is_err() {
            if self.unlogged.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!(
                    per_second = PER_SECOND,
                    "more refused requests than the log takes: from now on only some are \
                     logged; /metrics counts them all"
                );
            }
            return;
        }
        let unlogged = self.unlogged.swap(0, Ordering::Relaxed);
        if unlogged > 0 {
            tracing::warn!(unlogged, "refused requests were not logged one by one");
        }
        let remote = refused
            .remote
            .map_or_else(|| "unknown".to_owned(), |addr| addr.to_string());
        match refused.status {
            Some(status) => tracing::info!(
                status,
                reason = refused.reason,
                %remote,
                method = %refused.method,
                path = %refused.path,
                "request refused"
            ),
            None => tracing::info!(reason = refused.reason, %remote, "connection refused"),
        }
    }
}

/// Logs every refused request (status 400 and above, except server errors, which their
/// handler logs), outermost so that CORS refusals are seen too.
pub(crate) async fn log_refusals(
    State(state): State<Arc<HubState>>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let remote = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    let response = next.run(request).await;
    let status = response.status();
    if status.is_client_error() || status == http::StatusCode::SERVICE_UNAVAILABLE {
        let reason = response
            .extensions()
            .get::<RefusalReason>()
            .map_or_else(|| status.canonical_reason().unwrap_or(""), |r| &r.0);
        state.refusal_log.log(&Refused {
            status: Some(status.as_u16()),
            reason,
            remote,
            method: method.as_str(),
            path: &path,
        });
    }
    response
}
