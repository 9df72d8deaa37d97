//! The hub's HTTP routes, and the shape of its refusals.
//!
//! Every refusal says why, in a plain-text body and, for authorization failures, in the
//! `WWW-Authenticate` header, and is logged ([`refusal_log`]). CORS ([`cors`]) wraps every
//! route, so that refusals reach cross-origin browsers too. Which routes a listener serves is
//! decided here: [`router`] for the hub's listeners, [`operations_router`] for a metrics
//! listener.

mod control;
pub(crate) mod cors;
pub(crate) mod limits;
mod metadata;
mod publish;
pub(crate) mod refusal_log;
mod subscribe;
mod subscriptions;
mod ui;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use http::header::{ALLOW, CONNECTION, CONTENT_TYPE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, StatusCode};

use crate::auth::{AuthError, Claims, Role, extract_access_token, extract_token};
use crate::hub::HubState;
use crate::protocol::{Generation, Markers, Protocol};

/// The hub's URL path.
pub(crate) const HUB_PATH: &str = "/.well-known/mercure";
/// Where the hub serves the OpenAPI description of its HTTP API.
pub(crate) const OPENAPI_PATH: &str = "/openapi.yaml";
/// The OpenAPI 3.1 description of the hub's HTTP API.
const OPENAPI: &str = include_str!("../../openapi.yaml");

pub(crate) fn router(state: Arc<HubState>) -> Router {
    let config = &state.config;
    let serves = |generation| config.protocol.serves(generation);
    let modern_tokens = state.authorizer.access().is_some();
    let mut hub: MethodRouter<Arc<HubState>> = MethodRouter::new();
    let subscribers = (serves(Generation::Legacy) && state.authorizer.has_key(Role::Subscriber))
        || modern_tokens
        || config.anonymous;
    if subscribers {
        hub = hub.get(subscribe::subscribe);
        if serves(Generation::Modern) {
            hub = hub.fallback(query_or_refuse);
        }
    }
    let control = state.authorizer.has_key(Role::Publisher);
    if (serves(Generation::Legacy) && control) || modern_tokens {
        hub = hub.post(publish::publish);
    }
    let mut router = ui::routes(config.ui)
        .route(OPENAPI_PATH, get(openapi))
        .route(HUB_PATH, hub);
    if control {
        router = router.merge(control::routes());
    }
    if let Some(access) = state.authorizer.access() {
        router = router.route(&metadata::path(access.audience()), get(metadata::metadata));
    }
    if config.public_metrics {
        router = router.merge(operations());
    }
    if config.subscriptions {
        router = router
            .route(
                "/.well-known/mercure/subscriptions",
                get(subscriptions::collection),
            )
            .route(
                "/.well-known/mercure/subscriptions/{*rest}",
                get(subscriptions::by_path),
            );
    }
    router
        .fallback(not_found)
        .layer(axum::middleware::map_response(security_headers))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::request_size,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::count_refusals,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            cors::cors,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            refusal_log::log_refusals,
        ))
        .with_state(state)
}

/// The routes of a metrics listener: `/metrics`, `/healthz` and `/readyz` alone.
pub(crate) fn operations_router(state: Arc<HubState>) -> Router {
    operations()
        .layer(axum::middleware::map_response(security_headers))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            refusal_log::log_refusals,
        ))
        .with_state(state)
}

/// `/metrics`, `/healthz` and `/readyz`: on the hub's listeners unless `public_metrics` is
/// off, and on a metrics listener.
fn operations() -> Router<Arc<HubState>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The hub path's other methods: `QUERY` subscribes (Mercure 1.0), anything else is `405`.
async fn query_or_refuse(
    state: State<Arc<HubState>>,
    method: http::Method,
    query: axum::extract::RawQuery,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, Refusal> {
    if method.as_str() == subscribe::QUERY {
        return subscribe::subscribe(state, method, query, headers, body).await;
    }
    let mut allowed = vec!["GET", "HEAD", subscribe::QUERY];
    if state.authorizer.has_key(Role::Publisher) || state.authorizer.access().is_some() {
        allowed.push("POST");
    }
    let mut response = Refusal::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed here"),
    )
    .into_response();
    if let Ok(value) = HeaderValue::from_str(&allowed.join(", ")) {
        response.headers_mut().insert(ALLOW, value);
    }
    Ok(response)
}

/// A path the hub does not serve: `404` with a message saying so, as every refusal has.
async fn not_found() -> Refusal {
    Refusal::new(
        StatusCode::NOT_FOUND,
        format!("no such resource: the hub serves {HUB_PATH}"),
    )
}

async fn openapi() -> Response {
    let mut response = OPENAPI.into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/yaml; charset=utf-8"),
    );
    response
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("x-xss-protection", "1; mode=block"),
        ("content-security-policy", "default-src 'self'"),
    ] {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    response
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready while the transport accepts updates (it closes when the hub shuts down).
async fn readyz(State(state): State<Arc<HubState>>) -> Response {
    if state.transport.is_ready() {
        "ready\n".into_response()
    } else {
        Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the transport is not ready",
        )
        .into_response()
    }
}

async fn metrics(State(state): State<Arc<HubState>>) -> Response {
    let text = state.metrics.render(&crate::metrics::Readings {
        subscriptions: state.fanout.len(),
        history_len: state.transport.history_len(),
        history_bytes: state.transport.history_bytes(),
        shared: state.transport.shared_stats(),
        revocations: state.control.revocation_count(),
    });
    let mut response = text.into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

/// A refusal: a status and a one-line reason, plus `WWW-Authenticate` for authorization errors.
#[derive(Debug)]
pub(crate) struct Refusal {
    status: StatusCode,
    message: String,
    www_authenticate: Option<String>,
    retry_after: Option<u64>,
    close: bool,
}

impl Refusal {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
            www_authenticate: None,
            retry_after: None,
            close: false,
        }
    }

    /// Closes the connection after the answer (a request body left unread or half read
    /// cannot be skipped reliably).
    pub(crate) fn close(mut self) -> Refusal {
        self.close = true;
        self
    }

    /// Adds `Retry-After` (in seconds).
    pub(crate) fn retry_after(mut self, seconds: u64) -> Refusal {
        self.retry_after = Some(seconds);
        self
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Refusal {
        Refusal::new(StatusCode::BAD_REQUEST, message)
    }

    /// The answer when the transport could not take a request (`what`, for the log): `503`
    /// while the hub shuts down, `503` with `Retry-After` while the shared log is unavailable
    /// (`unsure` says what the client should make of it), `500` otherwise.
    pub(crate) fn transport(
        error: &crate::transport::TransportError,
        what: &str,
        unsure: &str,
    ) -> Refusal {
        use crate::transport::TransportError;
        match error {
            TransportError::Closed => {
                Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "the hub is shutting down")
            }
            TransportError::Unavailable(_) => {
                tracing::warn!(%error, "{what} refused: the shared log is unavailable");
                Refusal::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the hub's shared log is unavailable: {unsure}"),
                )
                .retry_after(1)
            }
            _ => {
                tracing::error!(%error, "{what} failed");
                Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
        }
    }

    /// An authorization refusal of a Mercure 1.0 request: RFC 6750 statuses and challenge,
    /// pointing at the protected-resource metadata.
    pub(crate) fn modern(error: AuthError, state: &HubState) -> Refusal {
        let status = error.status_modern();
        let unavailable = status == StatusCode::SERVICE_UNAVAILABLE;
        let metadata = state
            .authorizer
            .access()
            .map(|access| metadata::url(access.audience()));
        Refusal {
            status,
            message: error.to_string(),
            www_authenticate: (!unavailable)
                .then(|| error.www_authenticate_modern(metadata.as_deref())),
            retry_after: unavailable.then_some(crate::server::RETRY_AFTER_SECS),
            close: false,
        }
    }
}

impl From<crate::form::FormError> for Refusal {
    fn from(error: crate::form::FormError) -> Refusal {
        let status = match error {
            crate::form::FormError::Reserved(_) => StatusCode::FORBIDDEN,
            crate::form::FormError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        Refusal::new(status, error.to_string())
    }
}

impl From<AuthError> for Refusal {
    fn from(error: AuthError) -> Refusal {
        let status = error.status();
        // The keys being out of reach is the hub's trouble, not the token's: no challenge.
        let unavailable = status == StatusCode::SERVICE_UNAVAILABLE;
        Refusal {
            status,
            message: error.to_string(),
            www_authenticate: (!unavailable).then(|| error.www_authenticate()),
            retry_after: unavailable.then_some(crate::server::RETRY_AFTER_SECS),
            close: false,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = (self.status, format!("{}\n", self.message)).into_response();
        response
            .extensions_mut()
            .insert(refusal_log::RefusalReason(self.message));
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if let Some(value) = self
            .www_authenticate
            .and_then(|v| HeaderValue::from_str(&v).ok())
        {
            response.headers_mut().insert(WWW_AUTHENTICATE, value);
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.close {
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// The verified claims of the request's token, `None` when it carries none. A token revoked
/// through the control API is refused, whatever the request.
pub(crate) async fn claims(
    state: &HubState,
    role: Role,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Option<(Claims, crate::auth::TokenSource)>, AuthError> {
    match extract_token(headers, query, &state.config.cookie_name)? {
        Some((token, source)) => {
            let claims = state.authorizer.verify_fetching(role, &token).await?;
            if state.control.is_revoked(&claims.identity()) {
                return Err(AuthError::Revoked);
            }
            Ok(Some((claims, source)))
        }
        None => Ok(None),
    }
}

/// The generation of a request that only its token (and its query's 0.x markers) can tell,
/// a publish or a subscriptions API request: the kind of the `Authorization` header's token,
/// else the 1.0 access-token cookie when there is one, else 0.x.
pub(crate) fn token_generation(
    state: &HubState,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Generation, Refusal> {
    let protocol = state.config.protocol;
    let mut markers = Markers::default();
    if protocol == Protocol::Both {
        markers.of_params(&params(query));
        subscribe::token_marker(headers, &mut markers);
        if markers == Markers::default()
            && state.authorizer.access().is_some()
            && extract_access_token(headers, &[], &state.config.access_token_cookie)
                .is_ok_and(|found| found.is_some())
        {
            markers.modern("the access-token cookie");
        }
    }
    markers.generation(protocol).map_err(Refusal::bad_request)
}

/// Every pair of the query string, decoded as `URLSearchParams` does.
pub(crate) fn params(query: Option<&str>) -> Vec<(String, String)> {
    query
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// Every value of query parameter `name`.
pub(crate) fn query_values(query: Option<&str>, name: &str) -> Vec<String> {
    query
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
                .collect()
        })
        .unwrap_or_default()
}
