//! Reestablishing the connection: after a drop, an end of stream, a network error or an idle
//! timeout; with the right `Last-Event-ID`, after the right delay; and never after `close()`.

mod support;

use std::time::{Duration, Instant};

use herald_client::{Backoff, EventSource, ReadyState};
use support::*;

#[tokio::test]
async fn a_drop_mid_event_reconnects_with_the_last_id_after_the_retry_delay() {
    let mut server = Server::start(vec![
        vec![
            sse_head(),
            write("retry: 200\nid: 1\ndata: one\n\nid: 2\ndata: tw"),
            Step::Close,
        ],
        sse_then_hold("data: three\n\n"),
    ])
    .await;
    let mut source = EventSource::new(&server.url("/")).expect("source");
    expect_open(&mut source).await;
    assert_eq!(
        expect_message(&mut source).await,
        ("message".into(), "one".into(), "1".into())
    );
    let error = expect_error(&mut source).await;
    let lost_at = Instant::now();
    assert!(error.is_disconnect(), "{error}");
    assert!(!error.is_fatal());
    assert_eq!(source.ready_state(), ReadyState::Connecting);
    assert_eq!(source.last_event_id(), "1");

    expect_open(&mut source).await;
    server.next_request().await;
    let second = server.next_request().await;
    // The unfinished event (and its ID) was dropped with the connection.
    assert_eq!(second.header("last-event-id"), Some("1"));
    let waited = second.at.duration_since(lost_at);
    assert!(waited >= Duration::from_millis(200), "{waited:?}");
    assert!(waited < Duration::from_millis(2000), "{waited:?}");
    assert_eq!(
        expect_message(&mut source).await,
        ("message".into(), "three".into(), "1".into())
    );
}

#[tokio::test]
async fn the_end_of_the_stream_reconnects_to_the_same_url() {
    let mut server = Server::start(vec![
        sse("id: a\ndata: 1\n\n"),
        sse_then_hold("data: 2\n\n"),
    ])
    .await;
    let mut source = fast(&server.url("/s?q=1")).build().expect("source");
    expect_open(&mut source).await;
    expect_message(&mut source).await;
    let error = expect_error(&mut source).await;
    assert!(error.is_end_of_stream(), "{error}");
    assert_eq!(source.ready_state(), ReadyState::Connecting);
    expect_open(&mut source).await;
    assert_eq!(source.ready_state(), ReadyState::Open);
    assert_eq!(expect_message(&mut source).await.1, "2");
    server.next_request().await;
    let again = server.next_request().await;
    assert_eq!(again.target, "/s?q=1");
    assert_eq!(again.header("last-event-id"), Some("a"));
}

#[tokio::test]
async fn a_network_error_reconnects() {
    let mut server = Server::start(vec![vec![Step::Close], sse_then_hold("data: back\n\n")]).await;
    let mut source = fast(&server.url("/")).build().expect("source");
    let error = expect_error(&mut source).await;
    assert!(error.is_connect(), "{error}");
    assert_eq!(source.ready_state(), ReadyState::Connecting);
    expect_open(&mut source).await;
    assert_eq!(expect_message(&mut source).await.1, "back");
    server.next_request().await;
    server.next_request().await;
}

#[tokio::test]
async fn a_refused_connection_is_a_network_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("address"));
    drop(listener);
    let mut source = fast(&url).build().expect("source");
    let error = expect_error(&mut source).await;
    assert!(error.is_connect(), "{error}");
    assert!(!error.is_fatal());
    assert_eq!(source.ready_state(), ReadyState::Connecting);
    assert!(expect_error(&mut source).await.is_connect());
}

#[tokio::test]
async fn an_empty_id_resets_the_last_event_id_and_the_header_goes() {
    let mut server = Server::start(vec![
        sse("id: 5\ndata: a\n\nid\ndata: b\n\n"),
        sse_then_hold("data: c\n\n"),
    ])
    .await;
    let mut source = fast(&server.url("/")).build().expect("source");
    expect_open(&mut source).await;
    assert_eq!(expect_message(&mut source).await.2, "5");
    assert_eq!(source.last_event_id(), "5");
    assert_eq!(expect_message(&mut source).await.2, "");
    assert_eq!(source.last_event_id(), "");
    expect_error(&mut source).await;
    expect_open(&mut source).await;
    server.next_request().await;
    assert_eq!(server.next_request().await.header("last-event-id"), None);
}

#[tokio::test]
async fn the_retry_time_is_kept_across_connections() {
    let mut server = Server::start(vec![sse("retry: 100\n\n"), sse(""), sse_then_hold("")]).await;
    // Without the kept `retry`, the second reconnection would wait the 3 s default.
    let mut source = EventSource::builder(&server.url("/"))
        .backoff(Backoff::none())
        .build()
        .expect("source");
    for _ in 0..2 {
        expect_open(&mut source).await;
        expect_error(&mut source).await;
    }
    let lost_at = Instant::now();
    expect_open(&mut source).await;
    for _ in 0..2 {
        server.next_request().await;
    }
    let waited = server.next_request().await.at.duration_since(lost_at);
    assert!(waited >= Duration::from_millis(100), "{waited:?}");
    assert!(waited < Duration::from_millis(1500), "{waited:?}");
}

#[tokio::test]
async fn the_default_reconnection_time_is_three_seconds() {
    let mut server = Server::start(vec![sse(""), sse_then_hold("")]).await;
    let mut source = EventSource::new(&server.url("/")).expect("source");
    expect_open(&mut source).await;
    expect_error(&mut source).await;
    let lost_at = Instant::now();
    expect_open(&mut source).await;
    server.next_request().await;
    let waited = server.next_request().await.at.duration_since(lost_at);
    assert!(waited >= Duration::from_secs(3), "{waited:?}");
    assert!(waited < Duration::from_millis(4500), "{waited:?}");
}

#[tokio::test]
async fn repeated_failures_back_off_and_an_open_resets_it() {
    let fail = || vec![Step::Close];
    let mut server = Server::start(vec![
        fail(),
        fail(),
        fail(),
        sse(""),
        fail(),
        sse_then_hold(""),
    ])
    .await;
    let mut source = EventSource::builder(&server.url("/"))
        .reconnection_time(Duration::from_millis(50))
        .backoff(
            Backoff::exponential()
                .initial(Duration::from_millis(200))
                .jitter(false),
        )
        .build()
        .expect("source");
    let mut lost = Vec::new();
    for _ in 0..3 {
        assert!(expect_error(&mut source).await.is_connect());
        lost.push(Instant::now());
    }
    expect_open(&mut source).await;
    assert!(expect_error(&mut source).await.is_end_of_stream());
    lost.push(Instant::now());
    assert!(expect_error(&mut source).await.is_connect());
    lost.push(Instant::now());
    expect_open(&mut source).await;
    server.next_request().await;
    let mut waits = Vec::new();
    for lost_at in lost {
        waits.push(server.next_request().await.at.duration_since(lost_at));
    }
    let ms = Duration::from_millis;
    // 50 ms, then 50 + 200, then 50 + 400; the open resets: 50 again, then 50 + 200.
    let expected = [(50, 250), (250, 450), (450, 650), (50, 250), (250, 450)];
    for (wait, (low, high)) in waits.iter().zip(expected) {
        assert!(*wait >= ms(low) && *wait < ms(high) + ms(300), "{waits:?}");
    }
}

#[tokio::test]
async fn no_response_within_the_connect_timeout_is_a_network_error() {
    // The first connection is accepted but never answered.
    let mut server = Server::start(vec![vec![Step::Hold], sse_then_hold("data: b\n\n")]).await;
    let mut source = fast(&server.url("/"))
        .connect_timeout(Duration::from_millis(200))
        .build()
        .expect("source");
    let started = Instant::now();
    let error = expect_error(&mut source).await;
    assert!(error.is_connect() && error.is_timeout(), "{error}");
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(source.ready_state(), ReadyState::Connecting);
    server.client_closed().await;
    expect_open(&mut source).await;
    assert_eq!(expect_message(&mut source).await.1, "b");
}

#[tokio::test]
async fn silence_past_the_idle_timeout_reconnects() {
    let mut server = Server::start(vec![
        sse_then_hold("id: 3\ndata: a\n\n"),
        sse_then_hold("data: b\n\n"),
    ])
    .await;
    let mut source = fast(&server.url("/"))
        .idle_timeout(Duration::from_millis(200))
        .build()
        .expect("source");
    expect_open(&mut source).await;
    expect_message(&mut source).await;
    let error = expect_error(&mut source).await;
    assert!(error.is_idle_timeout() && error.is_timeout(), "{error}");
    assert_eq!(source.ready_state(), ReadyState::Connecting);
    server.client_closed().await;
    expect_open(&mut source).await;
    assert_eq!(expect_message(&mut source).await.1, "b");
    server.next_request().await;
    assert_eq!(
        server.next_request().await.header("last-event-id"),
        Some("3")
    );
}

#[tokio::test]
async fn keep_alive_comments_count_as_activity() {
    let mut script = vec![sse_head()];
    for _ in 0..4 {
        script.push(write(":\n"));
        script.push(pause(100));
    }
    script.push(write("data: alive\n\n"));
    script.push(Step::Hold);
    let server = Server::start(vec![script]).await;
    let mut source = fast(&server.url("/"))
        .idle_timeout(Duration::from_millis(250))
        .build()
        .expect("source");
    expect_open(&mut source).await;
    assert_eq!(expect_message(&mut source).await.1, "alive");
}

#[tokio::test]
async fn after_close_nothing_is_yielded_and_nothing_reconnects() {
    let mut server = Server::start(vec![
        sse_then_hold("data: a\n\ndata: b\n\n"),
        sse_then_hold(""),
    ])
    .await;
    let mut source = fast(&server.url("/")).build().expect("source");
    expect_open(&mut source).await;
    expect_message(&mut source).await;
    source.close();
    assert_eq!(source.ready_state(), ReadyState::Closed);
    expect_end(&mut source).await;
    expect_end(&mut source).await;
    server.client_closed().await;
    server.next_request().await;
    server.no_request_within(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_close_handle_ends_a_source_waiting_to_reconnect() {
    let mut server = Server::start(vec![sse("data: a\n\n"), sse_then_hold("")]).await;
    let mut source = fast(&server.url("/"))
        .reconnection_time(Duration::from_millis(300))
        .build()
        .expect("source");
    expect_open(&mut source).await;
    expect_message(&mut source).await;
    expect_error(&mut source).await;
    let handle = source.close_handle();
    let closer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        handle.close();
    });
    expect_end(&mut source).await;
    closer.await.expect("closer");
    assert_eq!(source.ready_state(), ReadyState::Closed);
    server.next_request().await;
    server.no_request_within(Duration::from_millis(500)).await;
}

#[tokio::test]
async fn a_body_cut_inside_a_chunk_is_a_broken_connection() {
    let mut server = Server::start(vec![
        vec![
            head(
                "200 OK",
                &[
                    ("Content-Type", "text/event-stream"),
                    ("Transfer-Encoding", "chunked"),
                ],
            ),
            write("9\r\ndata: a\n\n\r\n20\r\ndata: cut"),
            Step::Close,
        ],
        sse_then_hold(""),
    ])
    .await;
    let mut source = fast(&server.url("/")).build().expect("source");
    expect_open(&mut source).await;
    assert_eq!(expect_message(&mut source).await.1, "a");
    let error = expect_error(&mut source).await;
    assert!(
        error.is_disconnect() && !error.is_end_of_stream(),
        "{error}"
    );
    assert!(std::error::Error::source(&error).is_some());
    expect_open(&mut source).await;
    server.next_request().await;
    server.next_request().await;
}

#[tokio::test]
async fn a_source_closed_by_a_handle_is_terminated_at_once() {
    use futures::stream::FusedStream;
    let server = Server::start(vec![sse_then_hold("")]).await;
    let mut source = fast(&server.url("/")).build().expect("source");
    expect_open(&mut source).await;
    assert!(!source.is_terminated());
    source.close_handle().close();
    assert!(source.is_terminated());
    expect_end(&mut source).await;
}

#[tokio::test]
async fn an_id_with_control_characters_is_kept_but_not_sent() {
    // A stream may set any ID without CR, LF or NUL; no HTTP header can carry U+0001, so the
    // reconnection goes without `Last-Event-ID` rather than failing.
    let mut server = Server::start(vec![sse("id: a\u{1}b\ndata: x\n\n"), sse_then_hold("")]).await;
    let mut source = fast(&server.url("/")).build().expect("source");
    expect_open(&mut source).await;
    assert_eq!(expect_message(&mut source).await.2, "a\u{1}b");
    expect_error(&mut source).await;
    expect_open(&mut source).await;
    assert_eq!(source.last_event_id(), "a\u{1}b");
    server.next_request().await;
    assert_eq!(server.next_request().await.header("last-event-id"), None);
}
