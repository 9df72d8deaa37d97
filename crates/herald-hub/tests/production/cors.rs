//! CORS: allowed origins with credentials, refused origins, preflights, `*` without credentials,
//! and cookie publishing from a CORS origin that may not publish.

use bytes::Bytes;
use herald_hub::{Hub, HubConfig};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::Full;

use crate::common::{Answer, full, get, publish_with, publisher, send, start, subscribe};

const APP: &str = "https://app.example.com";

fn cors_headers(headers: &HeaderMap) -> Vec<String> {
    headers
        .keys()
        .map(|k| k.as_str().to_owned())
        .filter(|k| k.starts_with("access-control-"))
        .collect()
}

fn header<'a>(answer: &'a HeaderMap, name: &str) -> &'a str {
    answer
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("{name} in {answer:?}"))
}

fn varies_on_origin(headers: &HeaderMap) -> bool {
    headers
        .get_all("vary")
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.contains("Origin")))
}

async fn preflight(addr: std::net::SocketAddr, origin: &str) -> Answer {
    let request = Request::options(format!("http://{addr}/.well-known/mercure"))
        .header("host", "localhost")
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .header(
            "access-control-request-headers",
            "authorization,last-event-id",
        )
        .body(Full::<Bytes>::default())
        .expect("request");
    full(send(addr, request).await).await
}

#[tokio::test]
async fn allowed_origin_gets_its_origin_echoed_with_credentials() {
    let hub = start(|c| {
        c.anonymous = true;
        c.cors_origins = vec![APP.into(), "https://other.example.com".into()];
    })
    .await;
    let answer = get(hub.addr, "/healthz", &[("origin", APP)]).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(header(&answer.headers, "access-control-allow-origin"), APP);
    assert_eq!(
        header(&answer.headers, "access-control-allow-credentials"),
        "true"
    );
    assert!(varies_on_origin(&answer.headers));

    let stream = subscribe(hub.addr, "/.well-known/mercure?topic=t", &[("origin", APP)]).await;
    assert_eq!(stream.status, StatusCode::OK);
    assert_eq!(header(&stream.headers, "access-control-allow-origin"), APP);
    // B50: the page can read the resume headers of both generations and the `Link`.
    let exposed = header(&stream.headers, "access-control-expose-headers").to_ascii_lowercase();
    for name in ["last-event-id", "mercure-last-event-id", "link"] {
        assert!(
            exposed.split(", ").any(|n| n == name),
            "{name} in {exposed}"
        );
    }

    // A refusal reaches the page too, so that it can read why.
    let refused = publish_with(hub.addr, &[("origin", APP)], &[("topic", "t")]).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(header(&refused.headers, "access-control-allow-origin"), APP);
}

#[tokio::test]
async fn origin_not_on_the_list_gets_no_cors_headers() {
    let hub = start(|c| {
        c.anonymous = true;
        c.cors_origins = vec![APP.into()];
    })
    .await;
    for origin in [
        "https://evil.example.com",
        "https://app.example.com:8443",
        "null",
    ] {
        let answer = get(hub.addr, "/healthz", &[("origin", origin)]).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert!(
            cors_headers(&answer.headers).is_empty(),
            "{origin}: {answer:?}",
            answer = answer.headers
        );
        assert!(
            varies_on_origin(&answer.headers),
            "caches must key on Origin"
        );
        let refused = preflight(hub.addr, origin).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert!(cors_headers(&refused.headers).is_empty());
        assert!(refused.body.contains("not allowed"), "{}", refused.body);
    }
    let plain = get(hub.addr, "/healthz", &[]).await;
    assert!(cors_headers(&plain.headers).is_empty());
}

#[tokio::test]
async fn preflight_lists_methods_and_headers() {
    let hub = start(|c| c.cors_origins = vec![APP.into()]).await;
    let answer = preflight(hub.addr, APP).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert_eq!(header(&answer.headers, "access-control-allow-origin"), APP);
    assert_eq!(
        header(&answer.headers, "access-control-allow-credentials"),
        "true"
    );
    let methods = header(&answer.headers, "access-control-allow-methods");
    for method in ["GET", "POST", "QUERY", "OPTIONS"] {
        assert!(methods.contains(method), "{methods}");
    }
    let allowed = header(&answer.headers, "access-control-allow-headers").to_ascii_lowercase();
    for name in [
        "authorization",
        "last-event-id",
        "cache-control",
        "content-type",
    ] {
        assert!(allowed.contains(name), "{allowed}");
    }
    assert!(varies_on_origin(&answer.headers));
}

#[tokio::test]
async fn star_is_allowed_only_without_credentials() {
    let hub = start(|c| {
        c.anonymous = true;
        c.cors_origins = vec!["*".into()];
        c.cors_credentials = false;
    })
    .await;
    let answer = get(
        hub.addr,
        "/healthz",
        &[("origin", "https://any.example.org")],
    )
    .await;
    assert_eq!(header(&answer.headers, "access-control-allow-origin"), "*");
    assert!(
        answer
            .headers
            .get("access-control-allow-credentials")
            .is_none()
    );

    let refused = Hub::new(HubConfig {
        cors_origins: vec!["*".into()],
        ..HubConfig::default()
    })
    .expect_err("`*` with credentials");
    assert!(refused.to_string().contains("`*`"), "{refused}");
    assert!(refused.to_string().contains("credentials"), "{refused}");

    let path = Hub::new(HubConfig {
        cors_origins: vec!["https://app.example.com/".into()],
        ..HubConfig::default()
    })
    .expect_err("an origin has no path");
    assert!(path.to_string().contains("not an origin"), "{path}");
}

#[tokio::test]
async fn cors_origin_may_not_publish_with_a_cookie_unless_a_publish_origin() {
    let hub = start(|c| {
        c.cors_origins = vec![APP.into(), "https://reader.example.com".into()];
        c.publish_origins = vec![APP.into()];
    })
    .await;
    let cookie = format!("mercureAuthorization={}", publisher());
    let reader = publish_with(
        hub.addr,
        &[
            ("cookie", &cookie),
            ("origin", "https://reader.example.com"),
        ],
        &[("topic", "t")],
    )
    .await;
    assert_eq!(reader.status, StatusCode::FORBIDDEN, "{}", reader.body);
    assert_eq!(
        header(&reader.headers, "access-control-allow-origin"),
        "https://reader.example.com"
    );
    let app = publish_with(
        hub.addr,
        &[("cookie", &cookie), ("origin", APP)],
        &[("topic", "t")],
    )
    .await;
    assert_eq!(app.status, StatusCode::OK, "{}", app.body);
}

#[tokio::test]
async fn an_origin_pattern_with_one_star_allows_a_family_of_origins() {
    let hub = start(|c| {
        c.anonymous = true;
        c.cors_origins = vec!["https://*.example.com".into(), "http://localhost:*".into()];
    })
    .await;
    for origin in ["https://app.example.com", "http://localhost:5173"] {
        let answer = preflight(hub.addr, origin).await;
        assert_eq!(answer.status, StatusCode::NO_CONTENT, "{origin}");
        assert_eq!(
            header(&answer.headers, "access-control-allow-origin"),
            origin
        );
    }
    for origin in [
        "https://example.org",
        "http://127.0.0.1:5173",
        "https://example.com",
    ] {
        let answer = preflight(hub.addr, origin).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{origin}");
        assert!(cors_headers(&answer.headers).is_empty(), "{origin}");
    }
    for pattern in ["https://*.*.example.com", "http://localhost:*/app"] {
        let refused = Hub::new(HubConfig {
            cors_origins: vec![pattern.into()],
            ..HubConfig::default()
        })
        .expect_err(pattern);
        assert!(refused.to_string().contains(pattern), "{refused}");
    }
}
