//! A4 #16-17: heartbeats, stream lifetime, slow consumers; health and index pages.

use std::time::Duration;

use herald_codec::Frame;
use http::StatusCode;

use crate::common::*;

#[tokio::test]
async fn a4_16_d21_heartbeat_after_idle_restarting_after_events() {
    let hub = start(|c| {
        c.anonymous = true;
        c.heartbeat = Duration::from_millis(300);
    })
    .await;
    let mut stream = subscribe(hub.addr, "/.well-known/mercure?topic=t", &[]).await;
    publish_ok(hub.addr, &[("topic", "t"), ("id", "1")]).await;
    assert!(matches!(
        stream.next_frame(STEP).await,
        Some(Frame::Event(_))
    ));
    let after_event = std::time::Instant::now();
    assert!(matches!(stream.next_frame(STEP).await, Some(Frame::Comment(c)) if c.is_empty()));
    assert!(after_event.elapsed() >= Duration::from_millis(250));
    assert!(stream.text().ends_with("data: \n\n:\n"));
}

#[tokio::test]
async fn a4_17_write_timeout_ends_the_stream_cleanly() {
    let hub = start(|c| {
        c.anonymous = true;
        c.write_timeout = Duration::from_millis(500);
    })
    .await;
    let mut stream = subscribe(hub.addr, "/.well-known/mercure?topic=t", &[]).await;
    let started = std::time::Instant::now();
    stream.until_end(STEP).await;
    let lived = started.elapsed();
    assert!(
        lived >= Duration::from_millis(350) && lived < Duration::from_secs(3),
        "{lived:?}"
    );
    assert_eq!(stream.text(), ":\n");
}

#[tokio::test]
async fn a4_17_d22_slow_subscriber_is_disconnected_without_slowing_others() {
    let hub = start(|c| {
        c.anonymous = true;
        c.subscriber_queue = 4;
        c.history_size = 16;
    })
    .await;
    // A subscriber that never reads: its socket buffers fill, then its queue, then it is dropped.
    let mut slow = subscribe(hub.addr, "/.well-known/mercure?topic=t", &[]).await;
    let mut fast = subscribe(hub.addr, "/.well-known/mercure?topic=t", &[]).await;
    assert_eq!(hub.hub.subscriber_count(), 2);
    let data = "x".repeat(64 * 1024);
    let mut sent = 0;
    while hub.hub.subscriber_count() == 2 {
        assert!(
            sent < 400,
            "the slow one should be disconnected once its buffers fill"
        );
        publish_ok(
            hub.addr,
            &[("topic", "t"), ("id", &sent.to_string()), ("data", &data)],
        )
        .await;
        assert_eq!(
            fast.event().await.last_event_id(),
            sent.to_string(),
            "the fast one keeps up"
        );
        sent += 1;
    }
    // It can still read what was queued, then the stream ends and it resumes from history.
    let got = slow.until_end(STEP).await;
    assert!(
        !got.is_empty() && got.len() < sent,
        "{} of {sent}",
        got.len()
    );
    let ids: Vec<String> = got.iter().map(|e| e.last_event_id().to_owned()).collect();
    let expected: Vec<String> = (0..got.len()).map(|i| i.to_string()).collect();
    assert_eq!(ids, expected, "what it got is a gap-free prefix");
}

#[tokio::test]
async fn d28_healthz_and_index() {
    let hub = start(|_| {}).await;
    let health = get(hub.addr, "/healthz", &[]).await;
    assert_eq!(health.status, StatusCode::OK);
    let index = get(hub.addr, "/", &[]).await;
    assert_eq!(index.status, StatusCode::OK);
    assert!(
        index.headers["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    assert!(index.body.contains("Mercure hub"));
    let missing = get(hub.addr, "/nope", &[]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn d22_a_client_leaving_unregisters_its_subscriber() {
    let hub = start(|c| c.anonymous = true).await;
    let stream = subscribe(hub.addr, "/.well-known/mercure?topic=t", &[]).await;
    assert_eq!(hub.hub.subscriber_count(), 1);
    drop(stream);
    // The server notices the closed connection at its next write; publish until it has.
    let deadline = std::time::Instant::now() + STEP;
    while hub.hub.subscriber_count() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the subscriber was never removed"
        );
        publish_ok(hub.addr, &[("topic", "t")]).await;
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a3_9_one_update_reaches_every_matching_subscriber() {
    let hub = start(|c| c.anonymous = true).await;
    let mut streams = Vec::new();
    for i in 0..20 {
        let topic = if i % 2 == 0 { "t" } else { "%7Bx%7D" };
        streams.push(
            subscribe(
                hub.addr,
                &format!("/.well-known/mercure?topic={topic}"),
                &[],
            )
            .await,
        );
    }
    publish_ok(hub.addr, &[("topic", "t"), ("id", "shared")]).await;
    for stream in &mut streams {
        assert_eq!(stream.event().await.last_event_id(), "shared");
    }
}

#[tokio::test]
async fn a3_11_subscribing_over_http2_works_the_same() {
    let hub = start(|c| c.anonymous = true).await;
    let stream = tokio::net::TcpStream::connect(hub.addr)
        .await
        .expect("connect");
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .expect("h2c handshake");
    tokio::spawn(conn);
    let request = http::Request::get(format!("http://{}/.well-known/mercure?topic=t", hub.addr))
        .body(http_body_util::Full::<bytes::Bytes>::default())
        .expect("request");
    let response = tokio::time::timeout(STEP, sender.send_request(request))
        .await
        .expect("in time")
        .expect("response");
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    use http_body_util::BodyExt as _;
    let first = tokio::time::timeout(STEP, body.frame())
        .await
        .expect("in time");
    let first = first
        .expect("frame")
        .expect("ok")
        .into_data()
        .expect("data");
    assert_eq!(&first[..], b":\n");
    publish_ok(hub.addr, &[("topic", "t"), ("id", "h2")]).await;
    let next = tokio::time::timeout(STEP, body.frame())
        .await
        .expect("in time");
    let next = next.expect("frame").expect("ok").into_data().expect("data");
    assert_eq!(&next[..], b"id: h2\ndata: \n\n");
}

#[tokio::test]
async fn d21_shutdown_ends_subscription_streams() {
    let hub = herald_hub::Hub::builder()
        .anonymous(true)
        .build()
        .expect("hub");
    let Stoppable { addr, stop, server } = serve_stoppable(&hub).await;
    let mut stream = subscribe(addr, "/.well-known/mercure?topic=t", &[]).await;
    stop.send(()).expect("signal");
    assert!(stream.until_end(STEP).await.is_empty());
    tokio::time::timeout(STEP, server)
        .await
        .expect("server stops in time")
        .expect("joined")
        .expect("served");
    assert_eq!(hub.subscriber_count(), 0);
}
