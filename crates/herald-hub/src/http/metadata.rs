//! OAuth 2.0 protected-resource metadata (RFC 9728) for Mercure 1.0 clients: what the hub
//! is (`resource`, the `aud` its tokens carry), who issues its tokens, how to present them,
//! and the Mercure specifics. Served at `/.well-known/oauth-protected-resource` followed by
//! the resource identifier's path, only when the hub trusts issuers; every 1.0 challenge
//! points at it (`resource_metadata`).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::details::DETAIL_TYPE;
use crate::hub::HubState;

/// Where the metadata lives for a resource identifier: the well-known prefix, then its path
/// (none for a bare origin).
pub(crate) fn path(audience: &str) -> String {
    const PREFIX: &str = "/.well-known/oauth-protected-resource";
    match url::Url::parse(audience) {
        Ok(url) if url.path() != "/" => format!("{PREFIX}{}", url.path()),
        _ => PREFIX.to_owned(),
    }
}

/// The metadata's absolute URL, on the resource identifier's origin.
pub(crate) fn url(audience: &str) -> String {
    match url::Url::parse(audience) {
        Ok(url) => format!("{}{}", url.origin().ascii_serialization(), path(audience)),
        Err(_) => path(audience),
    }
}

pub(crate) async fn metadata(State(state): State<Arc<HubState>>) -> Response {
    let Some(access) = state.authorizer.access() else {
        return http::StatusCode::NOT_FOUND.into_response();
    };
    let mut response = Json(json!({
        "resource": access.audience(),
        "authorization_servers": access.issuers(),
        "authorization_details_types_supported": [DETAIL_TYPE],
        "bearer_methods_supported": ["header"],
        "mercure_cookie": state.config.access_token_cookie,
        "mercure_matcher_types_supported": ["exact", "urlpattern"],
        "mercure_subscriptions": state.config.subscriptions,
    }))
    .into_response();
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("max-age=300"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b63_the_metadata_sits_under_the_resource_path() {
        let hub = "https://hub.example.com/.well-known/mercure";
        assert_eq!(
            path(hub),
            "/.well-known/oauth-protected-resource/.well-known/mercure"
        );
        assert_eq!(
            url(hub),
            "https://hub.example.com/.well-known/oauth-protected-resource/.well-known/mercure"
        );
        assert_eq!(
            path("https://hub.example.com"),
            "/.well-known/oauth-protected-resource"
        );
    }
}
