//! A7: reconnection, history and `earliest`, and D20.

use http::StatusCode;
use serde_json::json;

use crate::common::*;

async fn seed(addr: std::net::SocketAddr) {
    for id in ["a", "b", "c"] {
        publish_ok(addr, &[("topic", "t"), ("id", id), ("data", id)]).await;
    }
}

async fn ids(stream: &mut Stream, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(stream.event().await.last_event_id().to_owned());
    }
    out
}

#[tokio::test]
async fn a7_32_a7_33_d20_header_replays_only_later_events_then_live() {
    let hub = start(|c| c.anonymous = true).await;
    seed(hub.addr).await;
    let mut stream = subscribe(
        hub.addr,
        "/.well-known/mercure?topic=t",
        &[("last-event-id", "a")],
    )
    .await;
    assert_eq!(
        stream.headers["last-event-id"], "a",
        "A7 #35: a known ID is echoed"
    );
    publish_ok(hub.addr, &[("topic", "t"), ("id", "d")]).await;
    assert_eq!(ids(&mut stream, 3).await, ["b", "c", "d"]);
}

#[tokio::test]
async fn a7_32_d20_last_event_id_query_parameter_and_header_precedence() {
    let hub = start(|c| c.anonymous = true).await;
    seed(hub.addr).await;
    let mut by_query = subscribe(hub.addr, "/.well-known/mercure?topic=t&lastEventID=b", &[]).await;
    assert_eq!(ids(&mut by_query, 1).await, ["c"]);
    assert_eq!(by_query.headers["last-event-id"], "b");
    let mut both = subscribe(
        hub.addr,
        "/.well-known/mercure?topic=t&lastEventID=a",
        &[("last-event-id", "b")],
    )
    .await;
    assert_eq!(ids(&mut both, 1).await, ["c"], "the header wins");
}

#[tokio::test]
async fn a7_34_d20_earliest_replays_everything() {
    let hub = start(|c| c.anonymous = true).await;
    seed(hub.addr).await;
    publish_ok(hub.addr, &[("topic", "other"), ("id", "x")]).await;
    let mut header = subscribe(
        hub.addr,
        "/.well-known/mercure?topic=t",
        &[("last-event-id", "earliest")],
    )
    .await;
    assert_eq!(ids(&mut header, 3).await, ["a", "b", "c"]);
    assert_eq!(header.headers["last-event-id"], "earliest");
    let mut query = subscribe(
        hub.addr,
        "/.well-known/mercure?topic=t&lastEventID=earliest",
        &[],
    )
    .await;
    assert_eq!(ids(&mut query, 3).await, ["a", "b", "c"]);
}

#[tokio::test]
async fn a7_35_d20_unknown_id_replays_nothing_and_names_the_newest_visible_event() {
    let hub = start(|c| c.anonymous = true).await;
    let empty = subscribe(
        hub.addr,
        "/.well-known/mercure?topic=t",
        &[("last-event-id", "unknown")],
    )
    .await;
    assert_eq!(empty.headers["last-event-id"], "earliest", "empty history");
    publish_ok(hub.addr, &[("topic", "t"), ("id", "a")]).await;
    publish_ok(
        hub.addr,
        &[("topic", "t"), ("id", "secret"), ("private", "on")],
    )
    .await;
    let mut stream = subscribe(
        hub.addr,
        "/.well-known/mercure?topic=t",
        &[("last-event-id", "unknown")],
    )
    .await;
    assert_eq!(
        stream.headers["last-event-id"], "a",
        "never the ID of a private event it cannot read"
    );
    assert!(
        events_before_marker(hub.addr, &mut stream, "t")
            .await
            .is_empty(),
        "no history replayed"
    );
    let auth = format!("Bearer {}", token(json!({"subscribe": ["*"]})));
    let authorised = subscribe(
        hub.addr,
        "/.well-known/mercure?topic=t",
        &[("last-event-id", "unknown"), ("authorization", &auth)],
    )
    .await;
    let newest = authorised.headers["last-event-id"].to_str().expect("ASCII");
    assert!(newest.starts_with("marker-"), "the newest event: {newest}");
}

#[tokio::test]
async fn a7_35_replay_is_filtered_by_topic_and_authorization() {
    let hub = start(|c| c.anonymous = true).await;
    publish_ok(hub.addr, &[("topic", "t"), ("id", "start")]).await;
    publish_ok(
        hub.addr,
        &[("topic", "t"), ("id", "private"), ("private", "on")],
    )
    .await;
    publish_ok(hub.addr, &[("topic", "u"), ("id", "other-topic")]).await;
    publish_ok(hub.addr, &[("topic", "t"), ("id", "public")]).await;
    let mut stream = subscribe(
        hub.addr,
        "/.well-known/mercure?topic=t",
        &[("last-event-id", "start")],
    )
    .await;
    assert_eq!(ids(&mut stream, 1).await, ["public"]);
}

#[tokio::test]
async fn a7_33_resume_has_no_gap_and_no_duplicate_while_publishing() {
    let hub = start(|c| c.anonymous = true).await;
    publish_ok(hub.addr, &[("topic", "t"), ("id", "0")]).await;
    let addr = hub.addr;
    let publisher = tokio::spawn(async move {
        for i in 1..=150 {
            publish_ok(addr, &[("topic", "t"), ("id", &i.to_string())]).await;
        }
    });
    let mut last = "0".to_owned();
    let mut seen = Vec::new();
    // Reconnect repeatedly while the publisher runs, each time from the last ID received.
    while last != "150" {
        let mut stream = subscribe(
            addr,
            "/.well-known/mercure?topic=t",
            &[("last-event-id", &last)],
        )
        .await;
        assert_eq!(stream.status, StatusCode::OK);
        for _ in 0..7 {
            let event = stream.event().await;
            last = event.last_event_id().to_owned();
            seen.push(last.parse::<u32>().expect("numeric id"));
            if last == "150" {
                break;
            }
        }
    }
    publisher.await.expect("publisher");
    assert_eq!(seen, (1..=150).collect::<Vec<_>>());
}

#[tokio::test]
async fn a7_36_history_is_bounded_and_old_ids_are_forgotten() {
    let hub = start(|c| {
        c.anonymous = true;
        c.history_size = 3;
    })
    .await;
    for id in ["1", "2", "3", "4", "5"] {
        publish_ok(hub.addr, &[("topic", "t"), ("id", id)]).await;
    }
    let mut all = subscribe(
        hub.addr,
        "/.well-known/mercure?topic=t",
        &[("last-event-id", "earliest")],
    )
    .await;
    assert_eq!(ids(&mut all, 3).await, ["3", "4", "5"]);
    let forgotten = subscribe(
        hub.addr,
        "/.well-known/mercure?topic=t",
        &[("last-event-id", "1")],
    )
    .await;
    assert_eq!(
        forgotten.headers["last-event-id"], "5",
        "discarded ID: the client can detect the loss"
    );
}
