//! The native `EventSource` against the hub: a message and a named event reach the right
//! listeners with `lastEventId` set, and streams cut every second lose nothing.

use std::time::Duration;

use serde_json::{Value, json};

use crate::chromium::launch;
use crate::{DevHub, TOPIC, publish, received, subscribe};

#[tokio::test(flavor = "multi_thread")]
async fn message_and_named_events_reach_their_listeners_with_last_event_id() {
    let Some(browser) = launch("message_and_named_events", &[]).await else {
        return;
    };
    let hub = DevHub::start(&[]);
    browser
        .client
        .goto(&format!("{}/healthz", hub.origin))
        .await
        .unwrap();
    subscribe(&browser, &[hub.subscribe_url(TOPIC)], &["greeting"], false).await;
    browser
        .until("herald.sources[0].readyState === EventSource.OPEN")
        .await;

    publish(&hub.hub(), &hub.publisher_token, "hello", &["--id", "m-1"]).await;
    publish(
        &hub.hub(),
        &hub.publisher_token,
        "hi there",
        &["--id", "g-1", "--type", "greeting"],
    )
    .await;
    browser.until("herald.got.length >= 2").await;
    // Anything else would arrive by now too: the hub delivers in order.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let got = received(&browser).await;
    assert_eq!(
        got,
        vec![
            json!({"source": 0, "listener": "message", "type": "message", "data": "hello", "id": "m-1"}),
            json!({"source": 0, "listener": "greeting", "type": "greeting", "data": "hi there", "id": "g-1"}),
        ],
        "the default handler must not see the named event"
    );
    browser.quit().await;
}

/// Streams end after about a second (`--write-timeout 1s`) while updates keep coming every
/// 150 ms; Chromium waits its default 3 s before reconnecting, so each gap spans many updates,
/// which the page can only get by sending `Last-Event-ID` and being replayed from history.
#[tokio::test(flavor = "multi_thread")]
async fn cut_streams_resume_with_last_event_id_and_every_update_arrives_once_in_order() {
    const UPDATES: usize = 60;
    let Some(browser) = launch("cut_streams_resume", &[]).await else {
        return;
    };
    let hub = DevHub::start(&["--write-timeout", "1s"]);
    browser
        .client
        .goto(&format!("{}/healthz", hub.origin))
        .await
        .unwrap();
    subscribe(&browser, &[hub.subscribe_url(TOPIC)], &[], false).await;
    browser
        .until("herald.sources[0].readyState === EventSource.OPEN")
        .await;

    let mut ids = Vec::new();
    for n in 0..UPDATES {
        ids.push(publish(&hub.hub(), &hub.publisher_token, &n.to_string(), &[]).await);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    browser
        .until(&format!("herald.got.length >= {UPDATES}"))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let got = received(&browser).await;
    let data: Vec<&str> = got.iter().filter_map(|e| e["data"].as_str()).collect();
    let expected: Vec<String> = (0..UPDATES).map(|n| n.to_string()).collect();
    assert_eq!(data, expected, "every update exactly once, in order");
    let seen_ids: Vec<&str> = got.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(
        seen_ids, ids,
        "each event carries the hub's ID as lastEventId"
    );

    let opens = browser.run("return herald.opens.length;", Vec::new()).await;
    let errors = browser.run("return herald.errors;", Vec::new()).await;
    assert!(
        opens.as_u64().is_some_and(|n| n >= 3),
        "the stream was cut and the browser reconnected at least twice (opens {opens}, errors {errors})"
    );
    // Each cut is a lost connection the browser retries (CONNECTING), never a failure (CLOSED).
    let Value::Array(errors) = errors else {
        panic!("errors: {errors}")
    };
    assert!(errors.iter().all(|e| e["state"] == json!(0)), "{errors:?}");
    browser.quit().await;
}

/// A Mercure 1.0 subscription (`match_urlpattern=`, `last_event_id=`) through the native
/// `EventSource`: the history after the given ID, then live updates, from a 0.x publisher.
#[tokio::test(flavor = "multi_thread")]
async fn a_mercure_1_0_subscription_resumes_and_receives() {
    let Some(browser) = launch("mercure_1_0_subscription", &[]).await else {
        return;
    };
    let hub = DevHub::start(&[]);
    browser
        .client
        .goto(&format!("{}/healthz", hub.origin))
        .await
        .unwrap();
    publish(&hub.hub(), &hub.publisher_token, "old", &["--id", "v1-0"]).await;
    publish(
        &hub.hub(),
        &hub.publisher_token,
        "missed",
        &["--id", "v1-1"],
    )
    .await;
    let url = format!(
        "{}?match_urlpattern={}&last_event_id=v1-0",
        hub.hub(),
        crate::encode("https://example.com/books/:id")
    );
    subscribe(&browser, &[url], &[], false).await;
    browser
        .until("herald.sources[0].readyState === EventSource.OPEN")
        .await;
    publish(&hub.hub(), &hub.publisher_token, "live", &["--id", "v1-2"]).await;
    browser.until("herald.got.length >= 2").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = received(&browser).await;
    assert_eq!(
        got,
        vec![
            json!({"source": 0, "listener": "message", "type": "message", "data": "missed", "id": "v1-1"}),
            json!({"source": 0, "listener": "message", "type": "message", "data": "live", "id": "v1-2"}),
        ]
    );
    browser.quit().await;
}
