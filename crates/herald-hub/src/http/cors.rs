//! CORS for browsers on other origins: preflights and actual responses for the origins on the
//! `cors_origins` list, echoing the origin (never `*` when credentials are allowed), and no CORS
//! header at all for any other origin.
//!
//! A small layer of its own rather than tower-http's: an origin that is not allowed must get no
//! CORS header whatsoever, and a refused preflight must say so.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_METHOD, HeaderMap, HeaderValue, ORIGIN, VARY,
};
use http::{Method, StatusCode};

use super::Refusal;
use crate::hub::HubState;

/// The request headers a cross-origin subscriber or publisher may send.
pub(crate) const ALLOWED_HEADERS: &str =
    "Authorization, Last-Event-ID, Cache-Control, Content-Type";
/// The methods the hub answers cross-origin (`QUERY` subscribes in Mercure 1.0).
pub(crate) const ALLOWED_METHODS: &str = "GET, HEAD, POST, QUERY, OPTIONS";
/// How long a browser may cache a preflight answer, in seconds.
const MAX_AGE: u32 = 600;

/// Why a CORS configuration is refused.
pub(crate) fn check(origins: &[String], credentials: bool) -> Result<(), String> {
    for origin in origins {
        if origin == "*" {
            if credentials {
                return Err(
                    "cors origin `*` cannot be combined with credentials: list the \
                            origins, or set cors-credentials to false"
                        .to_owned(),
                );
            }
            continue;
        }
        // A pattern's `*` stands for a host label or a port: check it with one in its place.
        let sample = match origin.split_once('*') {
            None => origin.clone(),
            Some((before, after)) if before.ends_with(':') => format!("{before}1{after}"),
            Some((before, after)) => format!("{before}x{after}"),
        };
        if sample.matches('*').count() > 0 {
            return Err(format!(
                "cors origin {origin:?} has more than one `*`; a pattern has one, e.g. \
                 https://*.example.com or http://localhost:*"
            ));
        }
        let parsed =
            url::Url::parse(&sample).map_err(|e| format!("cors origin {origin:?}: {e}"))?;
        let serialized = parsed.origin().ascii_serialization();
        if serialized != sample {
            let hint = if origin.contains('*') {
                String::new()
            } else {
                format!("; did you mean {serialized:?}?")
            };
            return Err(format!(
                "cors origin {origin:?} is not an origin (scheme://host[:port], no path){hint}"
            ));
        }
    }
    Ok(())
}

/// What the `Access-Control-Allow-Origin` header says for this request's origin, if allowed.
fn allowed_origin(state: &HubState, headers: &HeaderMap) -> Option<HeaderValue> {
    let origin = headers.get(ORIGIN)?;
    let text = origin.to_str().ok()?;
    let config = &state.config;
    if config
        .cors_origins
        .iter()
        .any(|o| o != "*" && crate::auth::origin_allowed(o, text))
    {
        return Some(origin.clone());
    }
    if config.cors_origins.iter().any(|o| o == "*") {
        return Some(HeaderValue::from_static("*"));
    }
    None
}

pub(crate) async fn cors(
    State(state): State<Arc<HubState>>,
    request: Request,
    next: Next,
) -> Response {
    if state.config.cors_origins.is_empty() {
        return next.run(request).await;
    }
    let allowed = allowed_origin(&state, request.headers());
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(ACCESS_CONTROL_REQUEST_METHOD);
    let credentials = state.config.cors_credentials;
    let mut response = match (&allowed, preflight) {
        (Some(_), true) => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            let headers = response.headers_mut();
            headers.insert(
                ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(ALLOWED_METHODS),
            );
            headers.insert(
                ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOWED_HEADERS),
            );
            headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from(MAX_AGE));
            response
        }
        (None, true) => {
            state.metrics.rejected("cors_origin");
            let origin = request
                .headers()
                .get(ORIGIN)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("(none)");
            Refusal::new(
                StatusCode::FORBIDDEN,
                format!("origin {origin} is not allowed by the hub's CORS configuration"),
            )
            .into_response()
        }
        (_, false) => next.run(request).await,
    };
    let headers = response.headers_mut();
    headers.append(VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = allowed {
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if credentials {
            headers.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if !preflight {
            headers.insert(
                ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("Last-Event-ID, Mercure-Last-Event-ID, Link"),
            );
        }
    }
    response
}
