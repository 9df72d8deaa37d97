//! Part B (Mercure 1.0, draft-08) subscriptions: matchers (B46, B47), QUERY (B48),
//! `last_event_id` and `Mercure-Last-Event-ID` (B60), and how a hub reads each request's
//! generation (`--protocol`).

use http::StatusCode;
use serde_json::json;

use crate::common::*;

const BOOK: &str = "https://example.com/books/1";

fn path(query: &str) -> String {
    format!("/.well-known/mercure?{query}")
}

fn enc(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn b46_b47_exact_and_url_pattern_matchers_select_their_topics() {
    let hub = start_both(|c| c.anonymous = true).await;
    let query = format!(
        "match={}&match_urlpattern={}&match_exact={}",
        enc(BOOK),
        enc("https://example.com/authors/:id"),
        enc("https://example.com/shelves/{id}"),
    );
    let mut stream = subscribe(hub.addr, &path(&query), &[]).await;
    assert_eq!(stream.status, StatusCode::OK);
    for (topic, id) in [
        (BOOK, "book-1"),
        ("https://example.com/books/2", "book-2"),
        ("https://example.com/authors/7", "author-7"),
        ("https://example.com/authors/7/books", "author-7-books"),
        ("https://example.com/shelves/1", "shelf-1"),
        ("https://example.com/shelves/{id}", "shelf-template"),
        ("https://example.com/Authors/7", "author-case"),
    ] {
        publish_modern(hub.addr, &[("topic", topic), ("id", id), ("data", "x")]).await;
    }
    let got = events_before_marker(hub.addr, &mut stream, BOOK).await;
    assert_eq!(
        ids(&got),
        ["book-1", "author-7", "shelf-template"],
        "exact is byte for byte (a `{{` is a character), URL patterns follow the standard, case is never ignored"
    );
    assert!(
        stream.headers.get("mercure-last-event-id").is_none(),
        "no last event ID was sent, so none is answered"
    );
}

#[tokio::test]
async fn b46_b47_the_wildcard_and_relative_patterns() {
    let hub = start_both(|c| c.anonymous = true).await;
    let mut all = subscribe(hub.addr, &path("match_urlpattern=*"), &[]).await;
    let mut relative = subscribe(hub.addr, &path("match_urlpattern=/books/:id"), &[]).await;
    publish_modern(hub.addr, &[("topic", "/books/3"), ("id", "rel")]).await;
    publish_modern(
        hub.addr,
        &[("topic", "https://hub.example.com/books/4"), ("id", "abs")],
    )
    .await;
    publish_modern(hub.addr, &[("topic", "urn:isbn:1"), ("id", "urn")]).await;
    let got = events_before_marker(hub.addr, &mut all, "x").await;
    assert_eq!(ids(&got), ["rel", "abs", "urn"]);
    let got = events_before_marker(hub.addr, &mut relative, "/books/marker").await;
    assert_eq!(
        ids(&got),
        ["rel", "abs"],
        "relative patterns and topics resolve against the hub's URL"
    );
    let mut exact_all = subscribe(hub.addr, &path("match=*"), &[]).await;
    publish_modern(hub.addr, &[("topic", "anything"), ("id", "any")]).await;
    assert_eq!(exact_all.event().await.last_event_id(), "any");
}

#[tokio::test]
async fn b46_bad_matchers_are_400_without_leaking_internals() {
    let hub = start_both(|c| {
        c.anonymous = true;
        c.max_topics = 3;
        c.max_selector_cost = 20;
    })
    .await;
    for (query, says) in [
        ("Match=a", "unknown parameter"),
        ("match_regex=a", "unknown parameter"),
        ("MATCH_EXACT=a", "unknown parameter"),
        ("match=a%01b", "control"),
        ("match=a%C2%85b", "control"),
        ("match=a%E2%80%8Bb", "format"),
        (
            "match_urlpattern=https%3A%2F%2Fx%2F%3Aid(",
            "not a valid URL pattern",
        ),
        (
            "match_urlpattern=https%3A%2F%2Fx%2F(a",
            "not a valid URL pattern",
        ),
        ("match=", "empty"),
        ("match=a&match=b&match=c&match=d", "too many"),
        (
            "match_urlpattern=%2F%3Aa%2F%3Ab%2F%3Ac%2F%3Ad%2F%3Ae%2F%3Af%2F%3Ag%2F%3Ah%2F%3Ai%2F%3Aj%2F%3Ak%2F%3Al%2F%3Am%2F%3An%2F%3Ao%2F%3Ap%2F%3Aq",
            "max-selector-cost",
        ),
        // Nothing says 1.0: read as 0.x, the generation deployed clients speak.
        ("foo=bar", "Missing \"topic\""),
        ("match_exact=b&foo=bar&match=", "empty"),
    ] {
        let answer = get(hub.addr, &path(query), &[]).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            answer.body
        );
        assert!(answer.body.contains(says), "{query}: {}", answer.body);
        let lower = answer.body.to_lowercase();
        assert!(
            !lower.contains("regex parse") && !lower.contains("panic") && !lower.contains("error:"),
            "{query}: {}",
            answer.body
        );
    }
    // Duplicates merge, and parameters that are not matchers are ignored.
    let stream = subscribe(
        hub.addr,
        &path("match=a&match=a&match=a&match=a&foo=1&topics=2"),
        &[],
    )
    .await;
    assert_eq!(stream.status, StatusCode::OK);
}

#[tokio::test]
async fn b60_last_event_id_replays_and_mercure_last_event_id_answers() {
    let hub = start_both(|c| c.anonymous = true).await;
    for id in ["a", "b", "c"] {
        publish_modern(hub.addr, &[("topic", BOOK), ("id", id)]).await;
    }
    let query = format!("match={}&last_event_id=a", enc(BOOK));
    let mut stream = subscribe(hub.addr, &path(&query), &[]).await;
    assert_eq!(stream.headers["mercure-last-event-id"], "a");
    assert!(
        stream.headers.get("last-event-id").is_none(),
        "1.0 answers with its own header"
    );
    assert_eq!(stream.event().await.last_event_id(), "b");
    assert_eq!(stream.event().await.last_event_id(), "c");

    // The header wins over the query parameter.
    let mut stream = subscribe(hub.addr, &path(&query), &[("last-event-id", "b")]).await;
    assert_eq!(stream.headers["mercure-last-event-id"], "b");
    assert_eq!(stream.event().await.last_event_id(), "c");

    // `lastEventID` is 0.x: with a matcher it is a mixed request.
    let mixed = format!("match={}&lastEventID=a", enc(BOOK));
    assert_eq!(
        get(hub.addr, &path(&mixed), &[]).await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn b60_an_empty_last_event_id_still_gets_the_header() {
    let hub = start_both(|c| c.anonymous = true).await;
    let stream = subscribe(hub.addr, &path("match=a&last_event_id="), &[]).await;
    assert_eq!(stream.status, StatusCode::OK);
    assert_eq!(stream.headers["mercure-last-event-id"], "earliest");
}

#[tokio::test]
async fn b48_query_method_reads_matchers_from_the_body() {
    let hub = start_both(|c| {
        c.anonymous = true;
        c.max_update_size = 256;
    })
    .await;
    publish_modern(hub.addr, &[("topic", BOOK), ("id", "q1")]).await;
    publish_modern(hub.addr, &[("topic", BOOK), ("id", "q2")]).await;
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let body = format!("match={}&last_event_id=earliest", enc(BOOK));
    // The query string's last_event_id beats the body's.
    let response = request(hub.addr, "QUERY", &path("last_event_id=q1"), &form, &body).await;
    let mut stream = stream_of(response).await;
    assert_eq!(stream.status, StatusCode::OK);
    assert_eq!(stream.headers["mercure-last-event-id"], "q1");
    assert_eq!(stream.event().await.last_event_id(), "q2");

    // Matchers from both places are united.
    let body = format!("match={}", enc("https://example.com/other"));
    let query = format!("match={}", enc(BOOK));
    let mut stream = stream_of(request(hub.addr, "QUERY", &path(&query), &form, &body).await).await;
    publish_modern(
        hub.addr,
        &[("topic", "https://example.com/other"), ("id", "o")],
    )
    .await;
    publish_modern(hub.addr, &[("topic", BOOK), ("id", "b")]).await;
    assert_eq!(stream.event().await.last_event_id(), "o");
    assert_eq!(stream.event().await.last_event_id(), "b");

    let big = format!("match={}", "a".repeat(300));
    let answer = full(request(hub.addr, "QUERY", &path(""), &form, &big).await).await;
    assert_eq!(
        answer.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        answer.body
    );

    let answer = full(request(hub.addr, "QUERY", &path(""), &form, "topic=a").await).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert!(answer.body.contains("mixes"), "{}", answer.body);

    let answer = full(request(hub.addr, "PUT", &path("match=a"), &[], "").await).await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_request_mixing_the_generations_is_400_and_says_so() {
    let hub = start_both(|c| c.anonymous = true).await;
    let legacy = format!("Bearer {}", token(json!({"subscribe": ["*"]})));
    let modern = format!("Bearer {}", access_token(&[grant(&["subscribe"], &["*"])]));
    for (query, headers) in [
        ("topic=a&match=a", vec![]),
        ("match=a&authorization=x", vec![]),
        ("match=a", vec![("authorization", legacy.as_str())]),
        ("topic=a", vec![("authorization", modern.as_str())]),
        ("topic=a&last_event_id=x", vec![]),
    ] {
        let answer = get(hub.addr, &path(query), &headers).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            answer.body
        );
        assert!(answer.body.contains("mixes"), "{query}: {}", answer.body);
    }
}

#[tokio::test]
async fn protocol_setting_limits_the_generations_served() {
    let modern_only = start(|c| {
        c.protocol = herald_hub::config::Protocol::Modern;
        c.publisher_jwt = None;
        c.subscriber_jwt = None;
        c.anonymous = true;
    })
    .await;
    let answer = get(modern_only.addr, &path("topic=a"), &[]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.body.contains("1.0 only"), "{}", answer.body);
    let legacy = format!("Bearer {}", token(json!({"subscribe": ["*"]})));
    let answer = get(
        modern_only.addr,
        &path("match=a"),
        &[("authorization", &legacy)],
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.body);
    assert!(
        answer.headers["www-authenticate"]
            .to_str()
            .expect("ascii")
            .contains("invalid_token")
    );
    assert_eq!(
        subscribe(modern_only.addr, &path("match=a"), &[])
            .await
            .status,
        StatusCode::OK
    );

    let legacy_only = start(|c| {
        c.protocol = herald_hub::config::Protocol::Legacy;
        c.anonymous = true;
    })
    .await;
    let answer = get(legacy_only.addr, &path("match=a"), &[]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.body.contains("Missing \"topic\""), "{}", answer.body);
    let answer = full(request(legacy_only.addr, "QUERY", &path("match=a"), &[], "").await).await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
}
