//! A2-A4: topic selectors, the subscribe endpoint and the event stream, and D16-D18.

use http::StatusCode;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn a3_8_d16_topic_is_required_and_capped() {
    let hub = start(|c| c.anonymous = true).await;
    let none = get(hub.addr, "/.well-known/mercure", &[]).await;
    assert_eq!(
        (none.status, none.body.as_str()),
        (StatusCode::BAD_REQUEST, "Missing \"topic\" parameter.\n")
    );
    let many: String = (0..1001).map(|i| format!("topic=t{i}&")).collect();
    let too_many = get(hub.addr, &format!("/.well-known/mercure?{many}"), &[]).await;
    assert_eq!(too_many.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a3_8_d16_anonymous_subscribers_need_the_anonymous_setting() {
    let hub = start(|_| {}).await;
    let answer = get(hub.addr, "/.well-known/mercure?topic=t", &[]).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(answer.headers.contains_key("www-authenticate"));
    let no_route = start(|c| c.subscriber_jwt = None).await;
    let answer = get(no_route.addr, "/.well-known/mercure?topic=t", &[]).await;
    assert_eq!(
        answer.status,
        StatusCode::METHOD_NOT_ALLOWED,
        "no subscriber key, no anonymous: no route"
    );
}

#[tokio::test]
async fn a4_13_a4_14_headers_and_initial_comment() {
    let hub = start(|c| c.anonymous = true).await;
    let stream = subscribe(hub.addr, "/.well-known/mercure?topic=t", &[]).await;
    assert_eq!(stream.status, StatusCode::OK);
    let h = &stream.headers;
    assert_eq!(h["content-type"], "text/event-stream");
    assert_eq!(
        h["cache-control"],
        "private, no-cache, no-store, must-revalidate, max-age=0"
    );
    assert_eq!(h["pragma"], "no-cache");
    assert_eq!(h["x-accel-buffering"], "no");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["content-security-policy"], "default-src 'self'");
    assert!(
        !h.contains_key("last-event-id"),
        "only when the request carried one"
    );
    assert_eq!(stream.raw, b":\n");
}

#[tokio::test]
async fn a2_7_a3_9_d17_multi_topic_routing_exact_template_and_invalid_template() {
    let hub = start(|c| c.anonymous = true).await;
    let query = "topic=https%3A%2F%2Fexample.com%2Fbooks%2F1&topic=string&topic=https%3A%2F%2Fexample.com%2Freviews%2F%7Bid%7D&topic=https%3A%2F%2Fexample.com%2Fhub%3Ftopic%3Dfaulty%7Biri";
    let mut stream = subscribe(hub.addr, &format!("/.well-known/mercure?{query}"), &[]).await;
    for (topic, id, data) in [
        ("https://example.com/not-subscribed", "a", "Hello World"),
        ("https://example.com/books/1", "b", "Hello World"),
        ("string", "c", "Great"),
        ("https://example.com/reviews/22", "d", "Great"),
        (
            "https://example.com/hub?topic=faulty{iri",
            "e",
            "Faulty IRI",
        ),
        ("https://example.com/reviews/22/extra", "f", "no"),
    ] {
        publish_ok(hub.addr, &[("topic", topic), ("id", id), ("data", data)]).await;
    }
    let ids: Vec<String> = [(); 4].iter().map(|_| String::new()).collect();
    let mut got = ids;
    for slot in &mut got {
        *slot = stream.event().await.last_event_id().to_owned();
    }
    assert_eq!(got, ["b", "c", "d", "e"]);
    assert!(
        stream
            .text()
            .starts_with(":\nid: b\ndata: Hello World\n\nid: c\ndata: Great\n\n")
    );
    assert!(
        events_before_marker(hub.addr, &mut stream, "string")
            .await
            .is_empty(),
        "f never arrives"
    );
}

#[tokio::test]
async fn a2_7_wildcard_selector_receives_everything_public() {
    let hub = start(|c| c.anonymous = true).await;
    let mut stream = subscribe(hub.addr, "/.well-known/mercure?topic=*", &[]).await;
    publish_ok(
        hub.addr,
        &[("topic", "https://example.com/anything"), ("id", "1")],
    )
    .await;
    assert_eq!(stream.event().await.last_event_id(), "1");
}

#[tokio::test]
async fn a3_9_a5_18_alternate_topics_route_too() {
    let hub = start(|c| c.anonymous = true).await;
    let mut stream = subscribe(
        hub.addr,
        "/.well-known/mercure?topic=https%3A%2F%2Fexample.com%2Falt",
        &[],
    )
    .await;
    publish_ok(
        hub.addr,
        &[
            ("topic", "https://example.com/canonical"),
            ("topic", "https://example.com/alt"),
            ("id", "x"),
        ],
    )
    .await;
    assert_eq!(stream.event().await.last_event_id(), "x");
}

#[tokio::test]
async fn a3_10_a6_28_d18_private_updates_need_a_matching_subscribe_claim() {
    let hub = start(|c| c.anonymous = true).await;
    let auth = format!(
        "Bearer {}",
        token(
            json!({"subscribe": ["https://example.com/reviews/22", "https://example.com/reviews/23"]})
        )
    );
    let path = "/.well-known/mercure?topic=https%3A%2F%2Fexample.com%2Freviews%2F%7Bid%7D";
    let mut authorised = subscribe(hub.addr, path, &[("authorization", &auth)]).await;
    let mut anonymous = subscribe(hub.addr, path, &[]).await;
    publish_ok(
        hub.addr,
        &[
            ("topic", "https://example.com/reviews/21"),
            ("id", "a"),
            ("private", "on"),
        ],
    )
    .await;
    publish_ok(
        hub.addr,
        &[
            ("topic", "https://example.com/reviews/22"),
            ("id", "b"),
            ("type", "test"),
            ("data", "22"),
            ("private", "on"),
        ],
    )
    .await;
    publish_ok(
        hub.addr,
        &[
            ("topic", "https://example.com/reviews/23"),
            ("id", "c"),
            ("retry", "1"),
            ("data", "23"),
            ("private", ""),
        ],
    )
    .await;
    publish_ok(
        hub.addr,
        &[
            ("topic", "https://example.com/reviews/24"),
            ("id", "d"),
            ("data", "public"),
        ],
    )
    .await;
    let got: Vec<String> = [
        authorised.event().await,
        authorised.event().await,
        authorised.event().await,
    ]
    .iter()
    .map(|e| e.last_event_id().to_owned())
    .collect();
    assert_eq!(got, ["b", "c", "d"]);
    assert!(
        authorised
            .text()
            .contains("event: test\nid: b\ndata: 22\n\nretry: 1\nid: c\ndata: 23\n\n")
    );
    assert_eq!(
        anonymous.event().await.last_event_id(),
        "d",
        "private updates never reach it"
    );
}

#[tokio::test]
async fn a6_28_private_access_through_an_alternate_topic() {
    let hub = start(|c| c.anonymous = true).await;
    let auth = format!(
        "Bearer {}",
        token(json!({"subscribe": ["https://example.com/users/foo/{?topic}"]}))
    );
    let mut foo = subscribe(
        hub.addr,
        "/.well-known/mercure?topic=https%3A%2F%2Fexample.com%2Fbooks%2F1",
        &[("authorization", &auth)],
    )
    .await;
    publish_ok(
        hub.addr,
        &[
            ("topic", "https://example.com/books/1"),
            (
                "topic",
                "https://example.com/users/foo/?topic=https%3A%2F%2Fexample.com%2Fbooks%2F1",
            ),
            ("id", "for-foo"),
            ("private", "on"),
        ],
    )
    .await;
    publish_ok(
        hub.addr,
        &[
            ("topic", "https://example.com/books/1"),
            (
                "topic",
                "https://example.com/users/bar/?topic=https%3A%2F%2Fexample.com%2Fbooks%2F1",
            ),
            ("id", "for-bar"),
            ("private", "on"),
        ],
    )
    .await;
    assert_eq!(foo.event().await.last_event_id(), "for-foo");
    let leaked = events_before_marker(hub.addr, &mut foo, "https://example.com/books/1").await;
    assert!(
        leaked.is_empty(),
        "bar's update must not reach foo: {leaked:?}"
    );
}

#[tokio::test]
async fn d18_wildcard_subscribe_claim_grants_every_private_update() {
    let hub = start(|_| {}).await;
    let auth = format!("Bearer {}", token(json!({"subscribe": ["*"]})));
    let mut stream = subscribe(
        hub.addr,
        "/.well-known/mercure?topic=t",
        &[("authorization", &auth)],
    )
    .await;
    publish_ok(hub.addr, &[("topic", "t"), ("id", "p"), ("private", "on")]).await;
    assert_eq!(stream.event().await.last_event_id(), "p");
}

#[tokio::test]
async fn a3_12_unknown_query_parameters_are_ignored_and_head_is_routed() {
    let hub = start(|c| c.anonymous = true).await;
    let mut stream = subscribe(hub.addr, "/.well-known/mercure?topic=t&foo=bar", &[]).await;
    publish_ok(hub.addr, &[("topic", "t"), ("id", "1")]).await;
    assert_eq!(stream.event().await.last_event_id(), "1");
    let head = full(
        send(
            hub.addr,
            http::Request::head(format!("http://{}/.well-known/mercure?topic=t", hub.addr))
                .header("host", "localhost")
                .body(http_body_util::Full::default())
                .expect("request"),
        )
        .await,
    )
    .await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.headers["content-type"], "text/event-stream");
}
