//! A8: active subscriptions (events and API), and D19, D24.

use http::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

fn watcher() -> String {
    format!(
        "Bearer {}",
        token(
            json!({"subscribe": ["/.well-known/mercure/subscriptions{/topic}{/subscriber}", "/.well-known/mercure/subscriptions"]})
        )
    )
}

#[tokio::test]
async fn a8_37_a8_39_d19_subscription_events_with_payload() {
    let hub = start(|c| {
        c.subscriptions = true;
        c.anonymous = true;
    })
    .await;
    let auth = watcher();
    let path = "/.well-known/mercure?topic=%2F.well-known%2Fmercure%2Fsubscriptions%2F%7Btopic%7D%2F%7Bsubscriber%7D";
    let mut watching = subscribe(hub.addr, path, &[("authorization", &auth)]).await;
    let mut unauthorised = subscribe(hub.addr, &format!("{path}&topic=marker"), &[]).await;
    let member = format!(
        "Bearer {}",
        token(json!({"subscribe": [], "payload": {"user": "alice"}}))
    );
    let joined = subscribe(
        hub.addr,
        "/.well-known/mercure?topic=https%3A%2F%2Fexample.com%2Fbooks%2F1",
        &[("authorization", &member)],
    )
    .await;

    // The unauthorised subscriber's own two subscriptions are announced first.
    let (event, doc) = loop {
        let event = watching.event().await;
        let doc: Value = serde_json::from_str(event.data()).expect("json");
        if doc["topic"] == "https://example.com/books/1" {
            break (event, doc);
        }
    };
    assert_eq!(event.event_type(), "message", "no SSE type in 0.x");
    assert_eq!(doc["@context"], "https://mercure.rocks/");
    assert_eq!(doc["type"], "Subscription");
    assert_eq!(doc["topic"], "https://example.com/books/1");
    assert_eq!(doc["active"], true);
    assert_eq!(doc["payload"], json!({"user": "alice"}));
    let subscriber = doc["subscriber"].as_str().expect("subscriber");
    assert!(subscriber.starts_with("urn:uuid:"));
    assert_eq!(
        doc["id"],
        format!(
            "/.well-known/mercure/subscriptions/https%3A%2F%2Fexample.com%2Fbooks%2F1/{}",
            subscriber.replace(':', "%3A")
        )
    );
    assert!(
        event.data().contains("\n  \"type\": \"Subscription\""),
        "pretty-printed, several data lines"
    );

    drop(joined);
    let left: Value = serde_json::from_str(watching.event().await.data()).expect("json");
    assert_eq!(left["active"], false);
    assert_eq!(left["subscriber"], subscriber);

    let seen = events_before_marker(hub.addr, &mut unauthorised, "marker").await;
    assert!(seen.is_empty(), "subscription events are private: {seen:?}");
}

#[tokio::test]
async fn a8_40_a8_41_d24_subscriptions_api() {
    let hub = start(|c| {
        c.subscriptions = true;
        c.anonymous = true;
    })
    .await;
    let none = get(hub.addr, "/.well-known/mercure/subscriptions", &[]).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    let narrow = format!(
        "Bearer {}",
        token(json!({"subscribe": ["https://example.com/books/1"]}))
    );
    let refused = get(
        hub.addr,
        "/.well-known/mercure/subscriptions",
        &[("authorization", &narrow)],
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let member = format!("Bearer {}", token(json!({"payload": {"user": "bob"}})));
    let _one = subscribe(
        hub.addr,
        "/.well-known/mercure?topic=https%3A%2F%2Fexample.com%2Fbooks%2F1&topic=other",
        &[("authorization", &member)],
    )
    .await;
    let auth = watcher();
    let all = get(
        hub.addr,
        "/.well-known/mercure/subscriptions",
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!(all.headers["content-type"], "application/ld+json");
    let body: Value = serde_json::from_str(&all.body).expect("json");
    assert_eq!(body["@context"], "https://mercure.rocks/");
    assert_eq!(body["id"], "/.well-known/mercure/subscriptions");
    assert_eq!(body["type"], "Subscriptions");
    let last = body["lastEventID"]
        .as_str()
        .expect("lastEventID")
        .to_owned();
    assert!(
        last.starts_with("urn:uuid:"),
        "the last subscription event: {last}"
    );
    assert_eq!(all.headers["etag"], last.as_str());
    let subs = body["subscriptions"].as_array().expect("array");
    assert_eq!(subs.len(), 2);
    assert!(
        subs.iter()
            .all(|s| s.get("@context").is_none() && s["payload"] == json!({"user": "bob"}))
    );

    let not_modified = get(
        hub.addr,
        "/.well-known/mercure/subscriptions",
        &[("authorization", &auth), ("if-none-match", &last)],
    )
    .await;
    assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);

    let per_topic_path = "/.well-known/mercure/subscriptions/https%3A%2F%2Fexample.com%2Fbooks%2F1";
    let per_topic = get(hub.addr, per_topic_path, &[("authorization", &auth)]).await;
    let per_topic: Value = serde_json::from_str(&per_topic.body).expect("json");
    assert_eq!(per_topic["id"], per_topic_path);
    let subs = per_topic["subscriptions"].as_array().expect("array");
    assert_eq!(subs.len(), 1);
    let one_id = subs[0]["id"].as_str().expect("id").to_owned();

    let single = get(hub.addr, &one_id, &[("authorization", &auth)]).await;
    assert_eq!(single.status, StatusCode::OK);
    let single: Value = serde_json::from_str(&single.body).expect("json");
    assert_eq!(single["@context"], "https://mercure.rocks/");
    assert_eq!(single["type"], "Subscription");
    assert_eq!(single["topic"], "https://example.com/books/1");
    assert_eq!(single["lastEventID"], last.as_str());

    let missing = get(
        hub.addr,
        &format!("{per_topic_path}/urn%3Auuid%3Anobody"),
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a8_40_api_absent_without_subscriptions() {
    let hub = start(|_| {}).await;
    let auth = watcher();
    let answer = get(
        hub.addr,
        "/.well-known/mercure/subscriptions",
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}
