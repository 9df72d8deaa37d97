//! Part B (Mercure 1.0) authorization: access tokens (B54), where they are read (B55), their
//! grants (B56), publishing (B52, B53, B57), private delivery (B58), RFC 6750 challenges (B59)
//! and the protected-resource metadata (B63).

use std::time::Duration;

use http::StatusCode;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::common::*;

const BOOK: &str = "https://example.com/books/1";
const RSA_ISSUER: &str = "https://rsa.example.com";
const RSA_PRIVATE: &str = include_str!("../keys/rsa_private.pem");
const RSA_PUBLIC: &str = include_str!("../keys/rsa_public.pem");

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn challenge(answer: &Answer) -> String {
    answer
        .headers
        .get("www-authenticate")
        .map(|v| v.to_str().expect("ascii").to_owned())
        .unwrap_or_default()
}

fn subscriber_claims() -> Value {
    access_claims(json!([grant(&["subscribe"], &["*"])]))
}

fn without(mut claims: Value, name: &str) -> Value {
    claims.as_object_mut().expect("object").remove(name);
    claims
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    claims[name] = value;
    claims
}

/// A hub serving Mercure 1.0 alone, with an HMAC issuer and an RSA one.
async fn hub_with_rsa_issuer() -> TestHub {
    start_both(|c| {
        c.protocol = herald_hub::config::Protocol::Modern;
        c.publisher_jwt = None;
        c.subscriber_jwt = None;
        c.issuers.push(herald_hub::config::IssuerKey {
            issuer: RSA_ISSUER.to_owned(),
            key: RSA_PUBLIC.to_owned(),
        });
    })
    .await
}

fn rsa_token(alg: Algorithm, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.typ = Some("at+jwt".to_owned());
    let key = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).expect("rsa key");
    jsonwebtoken::encode(&header, claims, &key).expect("token")
}

#[tokio::test]
async fn b54_only_valid_access_tokens_of_trusted_issuers_are_accepted() {
    let hub = hub_with_rsa_issuer().await;
    let good = subscriber_claims();
    let rsa_claims = with(good.clone(), "iss", json!(RSA_ISSUER));
    let none = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"at+jwt"}"#),
        b64(&good.to_string())
    );
    let cases: Vec<(&str, String)> = vec![
        ("typ JWT", sign_with(&good, "JWT", ISSUER_KEY)),
        ("no typ", {
            let header = Header::new(Algorithm::HS256);
            let mut header = header;
            header.typ = None;
            jsonwebtoken::encode(
                &header,
                &good,
                &EncodingKey::from_secret(ISSUER_KEY.as_bytes()),
            )
            .expect("token")
        }),
        ("alg none", none),
        (
            "wrong key",
            sign_with(&good, "at+jwt", "another secret entirely"),
        ),
        (
            "untrusted issuer",
            sign_at(&with(good.clone(), "iss", json!("https://evil.example"))),
        ),
        ("no iss", sign_at(&without(good.clone(), "iss"))),
        ("no exp", sign_at(&without(good.clone(), "exp"))),
        ("no aud", sign_at(&without(good.clone(), "aud"))),
        (
            "wrong aud",
            sign_at(&with(
                good.clone(),
                "aud",
                json!("https://other.example/hub"),
            )),
        ),
        (
            "expired",
            sign_at(&with(good.clone(), "exp", json!(1_000_000_000u64))),
        ),
        (
            "not yet valid",
            sign_at(&with(good.clone(), "nbf", json!(in_secs(3600)))),
        ),
        (
            "signed with the other issuer's key",
            sign_with(&rsa_claims, "at+jwt", ISSUER_KEY),
        ),
        (
            "HMAC for an RSA issuer",
            sign_with(&rsa_claims, "at+jwt", RSA_PUBLIC),
        ),
        (
            "malformed details",
            sign_at(&access_claims(
                json!([{"type": DETAIL, "actions": "subscribe", "topics": [{"match": "*"}]}]),
            )),
        ),
    ];
    for (name, token) in cases {
        let answer = get(
            hub.addr,
            "/.well-known/mercure?match=a",
            &[("authorization", &bearer(&token))],
        )
        .await;
        assert_eq!(
            answer.status,
            StatusCode::UNAUTHORIZED,
            "{name}: {}",
            answer.body
        );
        let challenge = challenge(&answer);
        assert!(
            challenge.contains("error=\"invalid_token\"")
                && challenge.contains(&format!("resource_metadata=\"{METADATA}\"")),
            "{name}: {challenge}"
        );
    }
    for (name, token) in [
        ("typ at+jwt", sign_at(&good)),
        ("typ AT+JWT", sign_with(&good, "AT+JWT", ISSUER_KEY)),
        (
            "typ application/at+jwt",
            sign_with(&good, "application/at+jwt", ISSUER_KEY),
        ),
        (
            "no sub, client_id, iat, jti",
            sign_at(&without(good.clone(), "sub")),
        ),
        (
            "aud as an array",
            sign_at(&with(good.clone(), "aud", json!(["x", AUDIENCE]))),
        ),
        (
            "RS256 of the RSA issuer",
            rsa_token(Algorithm::RS256, &rsa_claims),
        ),
        (
            "PS256 of the RSA issuer",
            rsa_token(Algorithm::PS256, &rsa_claims),
        ),
    ] {
        let stream = subscribe(
            hub.addr,
            "/.well-known/mercure?match=a",
            &[("authorization", &bearer(&token))],
        )
        .await;
        assert_eq!(stream.status, StatusCode::OK, "{name}");
    }
}

#[tokio::test]
async fn b55_header_or_cookie_never_the_url() {
    let hub = start_both(|_| {}).await;
    let token = sign_at(&subscriber_claims());
    let path = "/.well-known/mercure?match=a";
    let lowercase = format!("bearer {token}");
    assert_eq!(
        subscribe(hub.addr, path, &[("authorization", &lowercase)])
            .await
            .status,
        StatusCode::OK,
        "the scheme is case-insensitive"
    );
    let cookie = format!("__Secure-mercure_access_token={token}");
    assert_eq!(
        subscribe(hub.addr, path, &[("cookie", &cookie)])
            .await
            .status,
        StatusCode::OK
    );
    // The header wins over a broken cookie.
    let broken = "__Secure-mercure_access_token=garbage";
    assert_eq!(
        subscribe(
            hub.addr,
            path,
            &[("authorization", &bearer(&token)), ("cookie", broken)]
        )
        .await
        .status,
        StatusCode::OK
    );
    // The 0.x cookie is not read for 1.0.
    let legacy_cookie = format!("mercureAuthorization={token}");
    let answer = get(hub.addr, path, &[("cookie", &legacy_cookie)]).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&answer),
        format!("Bearer realm=\"mercure\", resource_metadata=\"{METADATA}\""),
        "no token: the bare challenge, with the metadata"
    );
    let in_url = format!("{path}&access_token={token}");
    let answer = get(hub.addr, &in_url, &[]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert!(challenge(&answer).contains("invalid_request"));
    let answer = get(hub.addr, path, &[("authorization", "Basic dXNlcjpwYXNz")]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert!(challenge(&answer).contains("error=\"invalid_request\""));
}

#[tokio::test]
async fn b57_publishing_needs_a_publish_grant_on_every_topic() {
    let hub = start_both(|c| c.anonymous = true).await;
    let mut stream = subscribe(hub.addr, "/.well-known/mercure?match=*", &[]).await;
    let books = access_token(&[grant(&["publish"], &[BOOK])]);
    let reader = access_token(&[grant(&["subscribe"], &["*"])]);
    let pattern = access_token(&[json!({"type": DETAIL, "actions": ["publish"], "topics": [
        {"match": "https://example.com/books/:id", "match_type": "urlpattern"}
    ]})]);
    for (token, topics) in [
        (&books, vec![BOOK, "https://example.com/books/2"]),
        (&reader, vec![BOOK]),
        (&pattern, vec!["https://example.com/books/1/reviews"]),
    ] {
        let mut form: Vec<(&str, &str)> = topics.iter().map(|t| ("topic", *t)).collect();
        form.push(("data", "refused"));
        let answer = publish_with(hub.addr, &[("authorization", &bearer(token))], &form).await;
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{topics:?}: {}",
            answer.body
        );
        let challenge = challenge(&answer);
        assert!(
            challenge.contains("error=\"insufficient_scope\"")
                && challenge.contains("resource_metadata"),
            "{challenge}"
        );
    }
    for (token, topic, id) in [
        (&books, BOOK, "p1"),
        (&pattern, "https://example.com/books/9", "p2"),
    ] {
        let answer = publish_with(
            hub.addr,
            &[("authorization", &bearer(token))],
            &[("topic", topic), ("id", id)],
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        assert_eq!(answer.body, id);
        assert!(
            answer.headers["content-type"]
                .to_str()
                .expect("ascii")
                .starts_with("text/plain; charset=utf-8")
        );
    }
    let got = events_before_marker(hub.addr, &mut stream, BOOK).await;
    assert_eq!(
        ids(&got),
        ["p1", "p2"],
        "refused updates were never dispatched"
    );
}

#[tokio::test]
async fn b52_publish_fields_are_checked_by_1_0_rules() {
    let hub = start_both(|_| {}).await;
    let auth = bearer(&access_publisher());
    for (form, why) in [
        (
            vec![("topic", "/.well-known/mercure/subscriptions/x")],
            "reserved",
        ),
        (
            vec![(
                "topic",
                "https://example.com/.well-known/mercure/subscriptions/foo",
            )],
            "reserved",
        ),
        (vec![("topic", "foo/.well-known/mercure/bar")], "reserved"),
        (
            vec![("topic", "/.well-known/./mercure/x")],
            "reserved, normalised",
        ),
        (vec![("topic", "*")], "the wildcard"),
        (vec![("topic", "a\u{200b}")], "a format character"),
        (
            vec![("topic", "a"), ("type", "mercure")],
            "the reserved type",
        ),
        (vec![("topic", "a"), ("retry", "+1")], "retry not digits"),
        (vec![("topic", "a"), ("id", "earliest")], "earliest"),
        (vec![("topic", "a"), ("id", "#1")], "#"),
    ] {
        let answer = publish_with(hub.addr, &[("authorization", &auth)], &form).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{why}: {}",
            answer.body
        );
    }
    // B49: the topic-count limit is 413 in 1.0 (400 in 0.x).
    let many: Vec<(&str, &str)> = (0..1001).map(|_| ("topic", "a")).collect();
    let answer = publish_with(hub.addr, &[("authorization", &auth)], &many).await;
    assert_eq!(
        answer.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        answer.body
    );
    // 0.x keeps its 403 for its reserved topics.
    let legacy = format!("Bearer {}", publisher());
    let answer = publish_with(
        hub.addr,
        &[("authorization", &legacy)],
        &[("topic", "/.well-known/mercure/subscriptions/x")],
    )
    .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    // No 0.x publisher forges 1.0's subscription events either.
    let answer = publish_with(
        hub.addr,
        &[("authorization", &legacy)],
        &[("topic", "a"), ("type", "mercure")],
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    // Unknown fields are ignored.
    let answer = publish_with(
        hub.addr,
        &[("authorization", &auth)],
        &[("topic", "a"), ("whatever", "1"), ("id", "ok")],
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}

#[tokio::test]
async fn b58_private_updates_need_a_subscribe_grant_live_and_in_history() {
    let hub = start_both(|c| c.anonymous = true).await;
    publish_modern(
        hub.addr,
        &[("topic", BOOK), ("id", "old-private"), ("private", "")],
    )
    .await;
    publish_modern(
        hub.addr,
        &[
            ("topic", "https://example.com/books/2"),
            ("id", "old-other"),
            ("private", ""),
        ],
    )
    .await;
    let reader = bearer(&access_token(&[
        json!({"type": DETAIL, "actions": ["subscribe"], "topics": [
        {"match": "https://example.com/books/1"}]}),
    ]));
    let path = "/.well-known/mercure?match_urlpattern=https%3A%2F%2Fexample.com%2Fbooks%2F%3Aid&last_event_id=earliest";
    let mut granted = subscribe(hub.addr, path, &[("authorization", &reader)]).await;
    let mut anonymous = subscribe(hub.addr, path, &[]).await;
    publish_modern(
        hub.addr,
        &[("topic", BOOK), ("id", "new-private"), ("private", "on")],
    )
    .await;
    publish_modern(
        hub.addr,
        &[
            ("topic", "https://example.com/books/2"),
            ("id", "new-other"),
            ("private", ""),
        ],
    )
    .await;
    publish_modern(
        hub.addr,
        &[("topic", "https://example.com/books/2"), ("id", "public")],
    )
    .await;
    let marker = "https://example.com/books/3";
    let got = events_before_marker(hub.addr, &mut granted, marker).await;
    assert_eq!(ids(&got), ["old-private", "new-private", "public"]);
    let got = events_before_marker(hub.addr, &mut anonymous, marker).await;
    assert_eq!(ids(&got), ["public"]);
}

#[tokio::test]
async fn b58_the_stream_closes_at_exp() {
    let hub = start_both(|_| {}).await;
    let token = sign_at(&with(subscriber_claims(), "exp", json!(in_secs(2))));
    let mut stream = subscribe(
        hub.addr,
        "/.well-known/mercure?match=a",
        &[("authorization", &bearer(&token))],
    )
    .await;
    assert_eq!(stream.status, StatusCode::OK);
    let started = std::time::Instant::now();
    stream.until_end(Duration::from_secs(5)).await;
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn b63_protected_resource_metadata() {
    let hub = start_both(|c| c.subscriptions = true).await;
    let answer = get(
        hub.addr,
        "/.well-known/oauth-protected-resource/.well-known/mercure",
        &[],
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let metadata: Value = serde_json::from_str(&answer.body).expect("json");
    assert_eq!(metadata["resource"], AUDIENCE);
    assert_eq!(metadata["authorization_servers"], json!([ISSUER]));
    assert_eq!(
        metadata["authorization_details_types_supported"],
        json!([DETAIL])
    );
    assert_eq!(metadata["bearer_methods_supported"], json!(["header"]));
    assert_eq!(metadata["mercure_cookie"], "__Secure-mercure_access_token");
    assert_eq!(
        metadata["mercure_matcher_types_supported"],
        json!(["exact", "urlpattern"])
    );
    assert_eq!(metadata["mercure_subscriptions"], true);

    let anonymous_only = start(|c| c.anonymous = true).await;
    let answer = get(
        anonymous_only.addr,
        "/.well-known/oauth-protected-resource/.well-known/mercure",
        &[],
    )
    .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}

fn b64(json: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}
