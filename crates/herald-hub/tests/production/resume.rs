//! Nobody can make another subscriber miss an update, and no request can buy the server: the
//! selector budget, history bounded by bytes, subscription events kept out of the history,
//! unique and resumable IDs, private IDs never confirmed, and resumes that never hold up a
//! publish.

use std::time::Duration;

use http::StatusCode;
use serde_json::json;

use crate::common::{
    events_before_marker, get, publish_ok, publish_with, publisher, start, subscribe, token,
};

const TOPIC: &str = "https://example.com/t";

fn resume_path(topic: &str) -> String {
    format!(
        "/.well-known/mercure?topic={}",
        form_urlencoded::byte_serialize(topic.as_bytes()).collect::<String>()
    )
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|line| line.starts_with(name) && !line.starts_with('#'))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("{name} in {text}"))
}

#[tokio::test]
async fn a_subscription_over_the_selector_budget_gets_400_naming_it() {
    let hub = start(|c| c.anonymous = true).await;
    // 1,000 templates of two pieces each: 2,000 against the default budget of 1,000 (written
    // unencoded, as a probe would, to fit the URL bound).
    let vars = ('a'..='t').map(String::from).collect::<Vec<_>>().join(",");
    let query: String = (0..1000)
        .map(|i| format!("topic=c{i}-i/{{{vars}}}&"))
        .collect();
    let refused = get(hub.addr, &format!("/.well-known/mercure?{query}"), &[]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(
        refused.body.contains("max-selector-cost"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("2000"), "{}", refused.body);
    // Exact topics cost one each: 1,000 of them fit.
    let exact: String = (0..1000).map(|i| format!("topic=e{i}&")).collect();
    let stream = subscribe(hub.addr, &format!("/.well-known/mercure?{exact}"), &[]).await;
    assert_eq!(stream.status, StatusCode::OK);
}

#[tokio::test]
async fn templates_within_the_budget_match_like_before() {
    let hub = start(|c| c.anonymous = true).await;
    let mut stream = subscribe(
        hub.addr,
        &resume_path("https://example.com/books/{id}"),
        &[],
    )
    .await;
    publish_ok(
        hub.addr,
        &[("topic", "https://example.com/books/1"), ("id", "b1")],
    )
    .await;
    publish_ok(
        hub.addr,
        &[
            ("topic", "https://example.com/books/1/reviews"),
            ("id", "r1"),
        ],
    )
    .await;
    publish_ok(
        hub.addr,
        &[("topic", "https://example.com/books/2"), ("id", "b2")],
    )
    .await;
    let ids: Vec<String> = [stream.event().await, stream.event().await]
        .iter()
        .map(|e| e.last_event_id().to_owned())
        .collect();
    assert_eq!(ids, ["b1", "b2"]);
}

#[tokio::test]
async fn subscription_events_never_take_the_place_of_history() {
    let hub = start(|c| {
        c.anonymous = true;
        c.subscriptions = true;
        c.history_size = 10;
    })
    .await;
    for i in 1..=9 {
        publish_ok(hub.addr, &[("topic", TOPIC), ("id", &format!("u{i}"))]).await;
    }
    // Five anonymous connect/disconnects of a 100-topic subscription: 1,000 subscription
    // events, a hundred times the history's size.
    let many: String = (0..100).map(|i| format!("topic=x{i}&")).collect();
    for _ in 0..5 {
        let stream = subscribe(hub.addr, &format!("/.well-known/mercure?{many}"), &[]).await;
        drop(stream);
    }
    let mut resumed = subscribe(hub.addr, &resume_path(TOPIC), &[("last-event-id", "u1")]).await;
    assert_eq!(resumed.headers["last-event-id"], "u1");
    let ids: Vec<String> = events_before_marker(hub.addr, &mut resumed, TOPIC)
        .await
        .iter()
        .map(|e| e.last_event_id().to_owned())
        .collect();
    assert_eq!(ids, ["u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9"]);
}

#[tokio::test]
async fn history_is_bounded_by_bytes_and_reported() {
    let hub = start(|c| {
        c.history_size = 1000;
        c.history_bytes = 1024 * 1024;
        c.max_update_size = 256 * 1024;
    })
    .await;
    // Line feeds: each becomes a `data:` line, seven bytes encoded for one sent.
    let lines = "\n".repeat(60 * 1024);
    for i in 0..20 {
        publish_ok(
            hub.addr,
            &[
                ("topic", TOPIC),
                ("id", &format!("big{i}")),
                ("data", &lines),
            ],
        )
        .await;
    }
    let metrics = get(hub.addr, "/metrics", &[]).await.body;
    let bytes = metric(&metrics, "herald_history_bytes");
    let kept = metric(&metrics, "herald_history_size");
    assert!(bytes <= 1024.0 * 1024.0, "{bytes} bytes kept");
    assert!(bytes > 0.0);
    assert!((1.0..20.0).contains(&kept), "{kept} kept");
}

#[tokio::test]
async fn a_reused_id_is_a_retry_or_409_and_never_makes_a_resume_skip() {
    let hub = start(|c| c.anonymous = true).await;
    let mut live = subscribe(hub.addr, &resume_path("*"), &[]).await;
    publish_ok(hub.addr, &[("topic", "a"), ("id", "dup"), ("data", "1")]).await;
    publish_ok(hub.addr, &[("topic", "b"), ("id", "between")]).await;
    // The same update again (a publisher's retry): answered with its ID, not stored again.
    let retry = publish_ok(hub.addr, &[("topic", "a"), ("id", "dup"), ("data", "1")]).await;
    assert_eq!(retry, "dup");
    // Another update with that ID, even on another topic: refused.
    let auth = format!("Bearer {}", publisher());
    let conflict = publish_with(
        hub.addr,
        &[("authorization", &auth)],
        &[("topic", "b"), ("id", "dup"), ("data", "2")],
    )
    .await;
    assert_eq!(conflict.status, StatusCode::CONFLICT, "{}", conflict.body);
    assert!(conflict.body.contains("dup"), "{}", conflict.body);
    let seen: Vec<String> = events_before_marker(hub.addr, &mut live, "a")
        .await
        .iter()
        .map(|e| e.last_event_id().to_owned())
        .collect();
    assert_eq!(seen, ["dup", "between"], "delivered once each");
    let mut resumed = subscribe(hub.addr, &resume_path("*"), &[("last-event-id", "dup")]).await;
    let ids: Vec<String> = events_before_marker(hub.addr, &mut resumed, "a")
        .await
        .iter()
        .map(|e| e.last_event_id().to_owned())
        .collect();
    assert_eq!(
        ids.first().map(String::as_str),
        Some("between"),
        "nothing skipped"
    );
    assert!(
        ids[1..].iter().all(|id| id.starts_with("marker-")),
        "{ids:?}"
    );
}

#[tokio::test]
async fn ids_that_cannot_be_resumed_from_are_refused_with_the_reason() {
    let hub = start(|c| c.max_id_size = 64).await;
    let auth = format!("Bearer {}", publisher());
    for (id, reason) in [
        ("earliest", "reserved"),
        ("#x", "#"),
        (&*"x".repeat(65), "max-id-size"),
        (" padded", "space"),
        ("bell\u{7}", "control"),
    ] {
        let answer = publish_with(
            hub.addr,
            &[("authorization", &auth)],
            &[("topic", TOPIC), ("id", id)],
        )
        .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{id:?}");
        assert!(answer.body.contains(reason), "{id:?}: {}", answer.body);
    }
}

#[tokio::test]
async fn a_non_ascii_id_resumes_from_the_header_browsers_send() {
    let hub = start(|c| c.anonymous = true).await;
    publish_ok(hub.addr, &[("topic", TOPIC), ("id", "café-1")]).await;
    publish_ok(hub.addr, &[("topic", TOPIC), ("id", "after")]).await;
    // Raw UTF-8 bytes in the header, as Chromium sends them.
    let mut socket = tokio::net::TcpStream::connect(hub.addr)
        .await
        .expect("connect");
    let mut request = format!(
        "GET {} HTTP/1.0\r\nHost: localhost\r\nLast-Event-ID: ",
        resume_path(TOPIC)
    )
    .into_bytes();
    request.extend_from_slice("café-1".as_bytes());
    request.extend_from_slice(b"\r\n\r\n");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    socket.write_all(&request).await.expect("request");
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !String::from_utf8_lossy(&received).contains("id: after") {
        let n = tokio::time::timeout_at(deadline, socket.read(&mut buf))
            .await
            .expect("the replay in time")
            .expect("read");
        assert!(n > 0, "{}", String::from_utf8_lossy(&received));
        received.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&received);
    assert!(
        text.to_ascii_lowercase().contains("last-event-id: café-1"),
        "{text}"
    );
    assert!(
        !text.contains("id: café-1\n"),
        "only what came after: {text}"
    );
}

#[tokio::test]
async fn the_id_of_a_private_update_is_never_confirmed_to_who_may_not_see_it() {
    let hub = start(|c| c.anonymous = true).await;
    publish_ok(hub.addr, &[("topic", TOPIC), ("id", "public-1")]).await;
    publish_ok(
        hub.addr,
        &[("topic", TOPIC), ("id", "secret"), ("private", "on")],
    )
    .await;
    publish_ok(hub.addr, &[("topic", TOPIC), ("id", "public-2")]).await;
    // Anonymous: the private ID is answered as unknown would be.
    let anonymous = subscribe(
        hub.addr,
        &resume_path(TOPIC),
        &[("last-event-id", "secret")],
    )
    .await;
    let unknown = subscribe(
        hub.addr,
        &resume_path(TOPIC),
        &[("last-event-id", "nothing")],
    )
    .await;
    assert_eq!(anonymous.headers["last-event-id"], "public-2");
    assert_eq!(
        anonymous.headers["last-event-id"],
        unknown.headers["last-event-id"]
    );
    // A subscriber allowed to see it resumes from it.
    let allowed = format!("Bearer {}", token(json!({"subscribe": [TOPIC]})));
    let mut resumed = subscribe(
        hub.addr,
        &resume_path(TOPIC),
        &[("last-event-id", "secret"), ("authorization", &allowed)],
    )
    .await;
    assert_eq!(resumed.headers["last-event-id"], "secret");
    assert_eq!(resumed.event().await.last_event_id(), "public-2");
}

#[tokio::test]
async fn resumes_from_unknown_ids_are_counted() {
    let hub = start(|c| c.anonymous = true).await;
    publish_ok(hub.addr, &[("topic", TOPIC), ("id", "known")]).await;
    let _known = subscribe(hub.addr, &resume_path(TOPIC), &[("last-event-id", "known")]).await;
    let _unknown = subscribe(hub.addr, &resume_path(TOPIC), &[("last-event-id", "gone")]).await;
    let metrics = get(hub.addr, "/metrics", &[]).await.body;
    assert_eq!(metric(&metrics, "herald_resumes_not_found_total"), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_replay_never_holds_up_publishing() {
    let hub = start(|c| {
        c.anonymous = true;
        c.history_size = 5_000;
        c.max_selector_cost = 100_000;
        c.publish_rate = 0;
    })
    .await;
    for i in 0..5_000 {
        hub.hub
            .publish(herald_hub::Update {
                id: format!("h{i}"),
                ..herald_hub::Update::new(vec![format!("https://example.com/stored/{i}")], "x")
            })
            .await
            .expect("publish");
    }
    // Templates that every stored topic starts like, so that each is walked to its end.
    let query: String = (0..100)
        .map(|i| format!("topic=https://example.com/stored/{{a}}{{b}}/{i}/{{c}}&"))
        .collect();
    let mut socket = tokio::net::TcpStream::connect(hub.addr)
        .await
        .expect("connect");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    socket
        .write_all(
            format!(
                "GET /.well-known/mercure?{query} HTTP/1.1\r\nHost: localhost\r\n\
                 Last-Event-ID: earliest\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .expect("request");
    let replaying = tokio::spawn(async move {
        let mut head = [0u8; 12];
        tokio::time::timeout(Duration::from_secs(120), socket.read_exact(&mut head))
            .await
            .expect("the replay ends")
            .expect("read");
        (
            tokio::time::Instant::now(),
            String::from_utf8_lossy(&head).into_owned(),
        )
    });
    // Publishing goes on while the replay filters 5,000 updates against 100 templates.
    let auth = format!("Bearer {}", publisher());
    tokio::time::sleep(Duration::from_millis(20)).await;
    for i in 0..5 {
        let answer = publish_with(
            hub.addr,
            &[("authorization", &auth)],
            &[("topic", "other"), ("id", &format!("during{i}"))],
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK);
    }
    let published = tokio::time::Instant::now();
    let (replayed, head) = replaying.await.expect("replay");
    assert_eq!(head, "HTTP/1.1 200");
    assert!(
        published < replayed,
        "the five publishes were answered while the replay was still running"
    );
}
