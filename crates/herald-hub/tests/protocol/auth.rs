//! A6: authorization (token presentation, verification, claims, CSRF) and D1-D5.

use std::time::Duration;

use http::StatusCode;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::common::*;

const ALG_NONE: &str = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJtZXJjdXJlIjp7InB1Ymxpc2giOlsiKiJdLCJzdWJzY3JpYmUiOlsiKiJdfX0.";

fn signed(alg: Algorithm, key: &EncodingKey, claims: serde_json::Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), &claims, key).expect("token")
}

async fn subscribe_status(addr: std::net::SocketAddr, headers: &[(&str, &str)]) -> StatusCode {
    get_status(addr, "/.well-known/mercure?topic=t", headers).await
}

async fn get_status(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> StatusCode {
    let response = send(addr, {
        let mut r = http::Request::get(format!("http://{addr}{path}")).header("host", "localhost");
        for (n, v) in headers {
            r = r.header(*n, *v);
        }
        r.body(http_body_util::Full::default()).expect("request")
    })
    .await;
    response.status()
}

#[tokio::test]
async fn a6_30_d1_d16_bad_tokens_are_401_even_with_anonymous_on() {
    let hub = start(|c| c.anonymous = true).await;
    let wrong_key = herald_hub::dev::hs256_token("not the key", json!({"subscribe": ["*"]}), None)
        .expect("token");
    let wrong_alg = signed(
        Algorithm::HS512,
        &EncodingKey::from_secret(KEY.as_bytes()),
        json!({"mercure": {"subscribe": ["*"]}}),
    );
    let expired = signed(
        Algorithm::HS256,
        &EncodingKey::from_secret(KEY.as_bytes()),
        json!({"mercure": {"subscribe": ["*"]}, "exp": 1_000_000_000u64}),
    );
    for (name, token) in [
        ("wrong key", wrong_key),
        ("wrong algorithm", wrong_alg),
        ("expired", expired),
        ("alg none", ALG_NONE.to_owned()),
        ("garbage", "not.a.jwt".to_owned()),
    ] {
        let auth = format!("Bearer {token}");
        let answer = get(
            hub.addr,
            "/.well-known/mercure?topic=t",
            &[("authorization", &auth)],
        )
        .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{name}");
        let challenge = answer.headers["www-authenticate"].to_str().expect("ascii");
        assert!(
            challenge.contains("invalid_token") && challenge.contains("error_description"),
            "{name}: {challenge}"
        );
        assert!(
            answer.body.trim().len() > "Unauthorized".len(),
            "{name}: the body says why: {}",
            answer.body
        );
    }
}

#[tokio::test]
async fn a6_20_d8_alg_none_and_malformed_headers_cannot_publish() {
    let hub = start(|_| {}).await;
    for auth in [
        format!("Bearer {ALG_NONE}"),
        format!("bearer {}", publisher()),
        publisher(),
    ] {
        let answer = publish_with(hub.addr, &[("authorization", &auth)], &[("topic", "t")]).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{auth}");
    }
}

#[tokio::test]
async fn a6_24_d2_query_parameter_and_cookie_carry_tokens() {
    let hub = start(|c| c.cookie_name = "custom".into()).await;
    let sub = token(json!({"subscribe": ["*"]}));
    assert_eq!(
        get_status(
            hub.addr,
            &format!("/.well-known/mercure?topic=t&authorization={sub}"),
            &[]
        )
        .await,
        StatusCode::OK
    );
    let cookie = format!("other=1; custom={sub}");
    assert_eq!(
        subscribe_status(hub.addr, &[("cookie", &cookie)]).await,
        StatusCode::OK
    );
    let default_name = format!("mercureAuthorization={sub}");
    assert_eq!(
        subscribe_status(hub.addr, &[("cookie", &default_name)]).await,
        StatusCode::UNAUTHORIZED,
        "the configured name only"
    );
}

#[tokio::test]
async fn a6_24_header_wins_over_query_and_cookie() {
    let hub = start(|_| {}).await;
    let good = token(json!({"subscribe": ["*"]}));
    let bad_header = "Bearer bad.token.here";
    let cookie = format!("mercureAuthorization={good}");
    assert_eq!(
        subscribe_status(
            hub.addr,
            &[("authorization", bad_header), ("cookie", &cookie)]
        )
        .await,
        StatusCode::UNAUTHORIZED
    );
    let path = format!("/.well-known/mercure?topic=t&authorization={good}");
    assert_eq!(
        get_status(hub.addr, &path, &[("authorization", bad_header)]).await,
        StatusCode::UNAUTHORIZED
    );
    let path = "/.well-known/mercure?topic=t&authorization=bad.token.here";
    assert_eq!(
        get_status(hub.addr, path, &[("cookie", &cookie)]).await,
        StatusCode::UNAUTHORIZED,
        "query beats cookie"
    );
}

#[tokio::test]
async fn a6_26_d3_namespaced_claim_is_accepted() {
    let hub = start(|_| {}).await;
    let namespaced = signed(
        Algorithm::HS256,
        &EncodingKey::from_secret(KEY.as_bytes()),
        json!({"https://mercure.rocks/": {"publish": ["t"]}}),
    );
    let auth = format!("Bearer {namespaced}");
    let answer = publish_with(hub.addr, &[("authorization", &auth)], &[("topic", "t")]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}

#[tokio::test]
async fn a6_26_d14_too_many_claim_selectors_are_refused() {
    let hub = start(|_| {}).await;
    let selectors: Vec<String> = (0..1001).map(|i| format!("t{i}")).collect();
    let auth = format!("Bearer {}", token(json!({"publish": selectors})));
    let answer = publish_with(hub.addr, &[("authorization", &auth)], &[("topic", "t1")]).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a6_25_d4_cookie_publish_needs_an_allowed_origin() {
    let hub = start(|c| c.publish_origins = vec!["https://app.example.com".into()]).await;
    let cookie = format!("mercureAuthorization={}", publisher());
    let form = [("topic", "t")];
    let none = publish_with(hub.addr, &[("cookie", &cookie)], &form).await;
    assert_eq!(
        none.status,
        StatusCode::FORBIDDEN,
        "no Origin and no Referer"
    );
    let bad = publish_with(
        hub.addr,
        &[("cookie", &cookie), ("origin", "https://evil.example.com")],
        &form,
    )
    .await;
    assert_eq!(bad.status, StatusCode::FORBIDDEN);
    let good = publish_with(
        hub.addr,
        &[("cookie", &cookie), ("origin", "https://app.example.com")],
        &form,
    )
    .await;
    assert_eq!(good.status, StatusCode::OK);
    let referer = publish_with(
        hub.addr,
        &[
            ("cookie", &cookie),
            ("referer", "https://app.example.com/page?x=1"),
        ],
        &form,
    )
    .await;
    assert_eq!(referer.status, StatusCode::OK);
    let bad_referer = publish_with(
        hub.addr,
        &[
            ("cookie", &cookie),
            ("referer", "https://evil.example.com/"),
        ],
        &form,
    )
    .await;
    assert_eq!(bad_referer.status, StatusCode::FORBIDDEN);
    let origin_wins = publish_with(
        hub.addr,
        &[
            ("cookie", &cookie),
            ("origin", "https://evil.example.com"),
            ("referer", "https://app.example.com/"),
        ],
        &form,
    )
    .await;
    assert_eq!(origin_wins.status, StatusCode::FORBIDDEN);
    let bearer = format!("Bearer {}", publisher());
    let header_auth = publish_with(hub.addr, &[("authorization", &bearer)], &form).await;
    assert_eq!(
        header_auth.status,
        StatusCode::OK,
        "the CSRF rule is for cookies only"
    );
    let star = start(|c| c.publish_origins = vec!["*".into()]).await;
    let any = publish_with(
        star.addr,
        &[("cookie", &cookie), ("origin", "https://x.example")],
        &form,
    )
    .await;
    assert_eq!(any.status, StatusCode::OK);
}

#[tokio::test]
async fn a6_23_d1_asymmetric_keys_and_separate_role_keys() {
    let rsa_private = include_str!("keys/rs256-private.pem");
    let ec_private = include_str!("keys/es256-private.pem");
    let hub = start(|c| {
        c.publisher_jwt = Some(herald_hub::JwtKey::new(
            include_str!("keys/rs256-public.pem"),
            "RS256",
        ));
        c.subscriber_jwt = Some(herald_hub::JwtKey::new(
            include_str!("keys/es256-public.pem"),
            "ES256",
        ));
    })
    .await;
    let rs = signed(
        Algorithm::RS256,
        &EncodingKey::from_rsa_pem(rsa_private.as_bytes()).expect("rsa"),
        json!({"mercure": {"publish": ["*"]}}),
    );
    let es = signed(
        Algorithm::ES256,
        &EncodingKey::from_ec_pem(ec_private.as_bytes()).expect("ec"),
        json!({"mercure": {"subscribe": ["*"]}}),
    );
    let rs_auth = format!("Bearer {rs}");
    let es_auth = format!("Bearer {es}");
    let mut stream = subscribe(
        hub.addr,
        "/.well-known/mercure?topic=t",
        &[("authorization", &es_auth)],
    )
    .await;
    assert_eq!(stream.status, StatusCode::OK);
    let answer = publish_with(
        hub.addr,
        &[("authorization", &rs_auth)],
        &[("topic", "t"), ("id", "rs"), ("private", "on")],
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(stream.event().await.last_event_id(), "rs");
    let swapped = publish_with(hub.addr, &[("authorization", &es_auth)], &[("topic", "t")]).await;
    assert_eq!(
        swapped.status,
        StatusCode::UNAUTHORIZED,
        "the subscriber key does not verify publishers"
    );
    let hs = format!("Bearer {}", publisher());
    let hs_on_rsa = publish_with(hub.addr, &[("authorization", &hs)], &[("topic", "t")]).await;
    assert_eq!(
        hs_on_rsa.status,
        StatusCode::UNAUTHORIZED,
        "wrong algorithm"
    );
}

#[tokio::test]
async fn a6_29_d21_stream_closes_at_token_exp() {
    let hub = start(|_| {}).await;
    let auth = format!("Bearer {}", token_exp(json!({"subscribe": ["*"]}), 2));
    let mut stream = subscribe(
        hub.addr,
        "/.well-known/mercure?topic=t",
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(stream.status, StatusCode::OK);
    let started = std::time::Instant::now();
    stream.until_end(Duration::from_secs(5)).await;
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn a6_25_d4_wildcard_origin_patterns_and_unparsable_referer() {
    let hub = start(|c| c.publish_origins = vec!["https://*.example.com".into()]).await;
    let cookie = format!("mercureAuthorization={}", publisher());
    let form = [("topic", "t")];
    let sub = publish_with(
        hub.addr,
        &[("cookie", &cookie), ("origin", "https://app.example.com")],
        &form,
    )
    .await;
    assert_eq!(sub.status, StatusCode::OK, "{}", sub.body);
    let other = publish_with(
        hub.addr,
        &[("cookie", &cookie), ("origin", "https://example.org")],
        &form,
    )
    .await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    let garbage = publish_with(
        hub.addr,
        &[("cookie", &cookie), ("referer", "::not a url")],
        &form,
    )
    .await;
    assert_eq!(garbage.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a6_24_d1_d2_malformed_presentations_are_refused() {
    let hub = start(|c| c.anonymous = true).await;
    let good = token(json!({"subscribe": ["*"]}));
    let bearer = format!("Bearer {good}");
    // Two Authorization headers.
    let response = send(hub.addr, {
        http::Request::get(format!("http://{}/.well-known/mercure?topic=t", hub.addr))
            .header("host", "localhost")
            .header("authorization", &bearer)
            .header("authorization", &bearer)
            .body(http_body_util::Full::default())
            .expect("request")
    })
    .await;
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "two Authorization headers"
    );
    assert_eq!(
        subscribe_status(hub.addr, &[("authorization", "Bearer short")]).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get_status(
            hub.addr,
            "/.well-known/mercure?topic=t&authorization=short",
            &[]
        )
        .await,
        StatusCode::UNAUTHORIZED
    );
    let twice = format!("/.well-known/mercure?topic=t&authorization={good}&authorization={good}");
    assert_eq!(
        get_status(hub.addr, &twice, &[]).await,
        StatusCode::UNAUTHORIZED,
        "two query tokens"
    );
}

#[tokio::test]
async fn d16_too_many_claim_selectors_on_subscribe_are_401() {
    let hub = start(|c| c.anonymous = true).await;
    let selectors: Vec<String> = (0..1001).map(|i| format!("t{i}")).collect();
    let auth = format!("Bearer {}", token(json!({"subscribe": selectors})));
    assert_eq!(
        subscribe_status(hub.addr, &[("authorization", &auth)]).await,
        StatusCode::UNAUTHORIZED
    );
}
