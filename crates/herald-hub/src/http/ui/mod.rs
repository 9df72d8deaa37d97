//! The hub's debug page at `/`: subscribe to topic selectors and watch the connection state and
//! a live event log, publish from a form, list the active subscriptions.
//!
//! Plain HTML, CSS and JavaScript embedded in the binary and served as separate files, since the
//! hub's `Content-Security-Policy: default-src 'self'` forbids inline scripts and styles. The
//! page learns what it needs (hub path, which endpoints exist, development tokens) from
//! `/ui/config.json`. When the page is off, `/` is a one-paragraph description of the hub.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HOST, ORIGIN};
use http::{HeaderMap, HeaderValue};
use serde::Serialize;

use super::HUB_PATH;
use crate::hub::HubState;

const INDEX_HTML: &str = include_str!("index.html");
const APP_JS: &str = include_str!("app.js");
const STYLE_CSS: &str = include_str!("style.css");

/// The routes of `/` and, when the page is on, of its assets.
pub(crate) fn routes(on: bool) -> Router<Arc<HubState>> {
    if !on {
        return Router::new().route("/", get(description));
    }
    Router::new()
        .route("/", get(|| asset(INDEX_HTML, "text/html; charset=utf-8")))
        .route(
            "/ui/app.js",
            get(|| asset(APP_JS, "text/javascript; charset=utf-8")),
        )
        .route(
            "/ui/style.css",
            get(|| asset(STYLE_CSS, "text/css; charset=utf-8")),
        )
        .route("/ui/config.json", get(page_config))
}

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// What the page needs to know about the hub.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PageConfig<'a> {
    hub: &'static str,
    /// Whether the publish endpoint exists.
    publish: bool,
    /// Whether subscribers need no token for public updates.
    anonymous: bool,
    /// Whether the subscriptions API is served.
    subscriptions: bool,
    /// The generations served: `0.x`, `1` or `both`.
    protocol: &'static str,
    publisher_token: Option<&'a str>,
    subscriber_token: Option<&'a str>,
    admin_token: Option<&'a str>,
    /// Whether the control API is served (the page's "disconnect" buttons).
    control: bool,
}

async fn page_config(State(state): State<Arc<HubState>>, headers: HeaderMap) -> Response {
    let config = &state.config;
    // The development tokens go only to the page itself, loaded from a loopback name: not to
    // a script of another origin (CORS), nor through a DNS name rebound to this address.
    let tokens = config
        .ui_tokens
        .as_ref()
        .filter(|_| same_loopback_origin(&headers));
    let page = PageConfig {
        hub: HUB_PATH,
        publish: state.authorizer.has_key(crate::auth::Role::Publisher)
            || state.authorizer.access().is_some(),
        anonymous: config.anonymous,
        subscriptions: config.subscriptions,
        protocol: config.protocol.as_str(),
        publisher_token: tokens.and_then(|t| t.publisher.as_deref()),
        subscriber_token: tokens.and_then(|t| t.subscriber.as_deref()),
        admin_token: tokens.and_then(|t| t.admin.as_deref()),
        control: state.authorizer.has_key(crate::auth::Role::Publisher),
    };
    let mut response = axum::Json(page).into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Whether the request names a loopback host and, if it says where it comes from, comes from
/// that same host.
fn same_loopback_origin(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    if !matches!(name, "localhost" | "127.0.0.1" | "::1") {
        return false;
    }
    match headers.get(ORIGIN).and_then(|o| o.to_str().ok()) {
        None => true,
        Some(origin) => {
            origin.strip_prefix("http://") == Some(host)
                || origin.strip_prefix("https://") == Some(host)
        }
    }
}

async fn description() -> Html<&'static str> {
    Html(concat!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<title>Herald hub</title></head><body>\n",
        "<h1>Herald</h1>\n<p>This is a Mercure hub. Subscribe with ",
        "<code>new EventSource('/.well-known/mercure?topic=...')</code>; publish with a ",
        "<code>POST</code> to <code>/.well-known/mercure</code>.</p>\n</body></html>\n"
    ))
}
