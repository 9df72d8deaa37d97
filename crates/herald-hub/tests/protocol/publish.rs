//! A5: the publish endpoint, and D8-D14.

use http::StatusCode;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn a5_19_success_is_200_text_plain_with_the_given_id() {
    let hub = start(|_| {}).await;
    let auth = format!("Bearer {}", publisher());
    let answer = publish_with(
        hub.addr,
        &[("authorization", &auth)],
        &[
            ("topic", "https://example.com/books/1"),
            ("id", "urn:x:1"),
            ("data", "hi"),
        ],
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, "urn:x:1");
    assert!(
        answer.headers["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain")
    );
}

#[tokio::test]
async fn a5_18_d11_generated_id_is_urn_uuid_v7_and_no_data_is_fine() {
    let hub = start(|_| {}).await;
    let id = publish_ok(hub.addr, &[("topic", "t")]).await;
    let uuid = id.strip_prefix("urn:uuid:").expect("urn:uuid: prefix");
    assert_eq!(
        uuid::Uuid::parse_str(uuid).expect("uuid").get_version_num(),
        7
    );
}

#[tokio::test]
async fn a5_18_d11_fields_reach_subscribers_intact() {
    let hub = start(|c| c.anonymous = true).await;
    let auth = format!("Bearer {}", token(json!({"subscribe": ["*"]})));
    let mut stream = subscribe(
        hub.addr,
        "/.well-known/mercure?topic=alt",
        &[("authorization", &auth)],
    )
    .await;
    publish_ok(
        hub.addr,
        &[
            ("topic", "canonical"),
            ("topic", "alt"),
            ("data", "line 1\n\n  indented"),
            ("id", "id-1"),
            ("type", "greeting"),
            ("retry", "2500"),
            ("private", ""),
        ],
    )
    .await;
    let event = stream.event().await;
    assert_eq!(event.event_type(), "greeting");
    assert_eq!(event.data(), "line 1\n\n  indented");
    assert_eq!(event.last_event_id(), "id-1");
    assert!(
        stream
            .text()
            .contains("event: greeting\nretry: 2500\nid: id-1\ndata: line 1\n")
    );
}

#[tokio::test]
async fn a5_20_d8_publishing_needs_a_valid_token() {
    let hub = start(|_| {}).await;
    let missing = publish_with(hub.addr, &[], &[("topic", "t")]).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert!(
        missing.headers["www-authenticate"]
            .to_str()
            .expect("ascii")
            .contains("error=")
    );
    assert!(
        missing.body.trim().len() > "Unauthorized".len(),
        "says why: {}",
        missing.body
    );
    let wrong_key = herald_hub::dev::hs256_token("another key", json!({"publish": ["*"]}), None)
        .expect("token");
    let auth = format!("Bearer {wrong_key}");
    let bad = publish_with(hub.addr, &[("authorization", &auth)], &[("topic", "t")]).await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert!(
        bad.headers["www-authenticate"]
            .to_str()
            .expect("ascii")
            .contains("invalid_token")
    );
}

#[tokio::test]
async fn a5_20_d28_no_publisher_key_means_no_publish_route() {
    let hub = start(|c| c.publisher_jwt = None).await;
    let auth = format!("Bearer {}", publisher());
    let answer = publish_with(hub.addr, &[("authorization", &auth)], &[("topic", "t")]).await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a5_21_d9_malformed_requests_are_400_with_a_reason() {
    let hub = start(|_| {}).await;
    let auth = format!("Bearer {}", publisher());
    let h = [("authorization", auth.as_str())];
    let no_topic = publish_with(hub.addr, &h, &[("data", "x")]).await;
    assert_eq!(
        (no_topic.status, no_topic.body.as_str()),
        (StatusCode::BAD_REQUEST, "Missing \"topic\" parameter\n")
    );
    let retry = publish_with(hub.addr, &h, &[("topic", "t"), ("retry", "soon")]).await;
    assert_eq!(
        (retry.status, retry.body.as_str()),
        (StatusCode::BAD_REQUEST, "Invalid \"retry\" parameter\n")
    );
    let not_form = full(
        send(
            hub.addr,
            http::Request::post(format!("http://{}/.well-known/mercure", hub.addr))
                .header("host", "localhost")
                .header("authorization", &auth)
                .header("content-type", "application/json")
                .body(http_body_util::Full::from("{\"topic\":\"t\"}"))
                .expect("request"),
        )
        .await,
    )
    .await;
    assert_eq!(not_form.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a5_21_d14_injection_and_limits_are_400() {
    let hub = start(|_| {}).await;
    let auth = format!("Bearer {}", publisher());
    let h = [("authorization", auth.as_str())];
    for (field, value) in [
        ("id", "a\nb"),
        ("id", "a\rb"),
        ("id", "a\0b"),
        ("type", "a\nb"),
        ("type", "a\0b"),
        ("id", "#frag"),
    ] {
        let answer = publish_with(hub.addr, &h, &[("topic", "t"), (field, value)]).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{field}={value:?}");
    }
    let topics: Vec<(&str, String)> = (0..1001).map(|i| ("topic", format!("t{i}"))).collect();
    let form: Vec<(&str, &str)> = topics.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let answer = publish_with(hub.addr, &h, &form).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a5_21_d13_reserved_topics_are_403() {
    let hub = start(|_| {}).await;
    let auth = format!("Bearer {}", publisher());
    for topic in [
        "/.well-known/mercure/subscriptions/foo",
        "https://example.com/.well-known/mercure/subscriptions/foo",
        "foo/.well-known/mercure/bar",
    ] {
        let answer = publish_with(
            hub.addr,
            &[("authorization", &auth)],
            &[("topic", "ok"), ("topic", topic)],
        )
        .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{topic}");
    }
}

#[tokio::test]
async fn a6_27_d10_every_topic_must_be_covered_by_the_publish_claim() {
    let hub = start(|_| {}).await;
    let limited = format!(
        "Bearer {}",
        token(json!({"publish": ["https://example.com/books/{id}"]}))
    );
    let ok = publish_with(
        hub.addr,
        &[("authorization", &limited)],
        &[("topic", "https://example.com/books/1")],
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    let partly = publish_with(
        hub.addr,
        &[("authorization", &limited)],
        &[
            ("topic", "https://example.com/books/1"),
            ("topic", "https://example.com/authors/1"),
        ],
    )
    .await;
    assert_eq!(
        partly.status,
        StatusCode::FORBIDDEN,
        "valid token without the right: 403"
    );
    assert!(
        partly.headers["www-authenticate"]
            .to_str()
            .expect("ascii")
            .contains("insufficient_scope")
    );
    for claim in [json!({"publish": []}), json!({"subscribe": ["*"]})] {
        let auth = format!("Bearer {}", token(claim));
        let answer = publish_with(hub.addr, &[("authorization", &auth)], &[("topic", "t")]).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN);
    }
}

/// The reference hub's browser conformance suite publishes with exactly this token (HS256 over
/// `!ChangeThisMercureHubJWTSecretKey!`) to an anonymous hub.
#[tokio::test]
async fn d30_conformance_suite_token_and_data_round_trip() {
    const SUITE_TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJtZXJjdXJlIjp7InB1Ymxpc2giOlsiKiJdLCJzdWJzY3JpYmUiOlsiKiJdfX0.bVXdlWXwfw9ySx7-iV5OpUSHo34RkjUdVzDLBcc6l_g";
    let hub = start(|c| {
        c.anonymous = true;
        c.subscriptions = true;
        c.publish_origins = vec!["*".into()];
    })
    .await;
    let mut stream = subscribe(
        hub.addr,
        "/.well-known/mercure?topic=https%3A%2F%2Fexample.com%2F%7Brandom%7D",
        &[],
    )
    .await;
    let auth = format!("Bearer {SUITE_TOKEN}");
    let data = "first line\n\n    indented\r\nlast";
    let answer = publish_with(
        hub.addr,
        &[("authorization", &auth)],
        &[
            ("topic", "https://example.com/42"),
            ("data", data),
            ("id", "custom-id"),
        ],
    )
    .await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (StatusCode::OK, "custom-id")
    );
    let event = stream.event().await;
    assert_eq!(event.last_event_id(), "custom-id");
    assert_eq!(
        event.data(),
        "first line\n\n    indented\nlast",
        "CRLF becomes a line break, as EventSource reads it"
    );
    let private = publish_with(
        hub.addr,
        &[("authorization", &auth)],
        &[("topic", "https://example.com/43"), ("private", "on")],
    )
    .await;
    assert_eq!(private.status, StatusCode::OK);
    publish_ok(
        hub.addr,
        &[("topic", "https://example.com/44"), ("id", "after")],
    )
    .await;
    assert_eq!(
        stream.event().await.last_event_id(),
        "after",
        "the anonymous subscriber skipped the private one"
    );
}
