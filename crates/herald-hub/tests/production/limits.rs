//! Every bound answers clearly when hit, and the hub keeps serving everyone else.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;

use crate::common::{
    KEY, full, get, publish_ok, publish_with, publisher, send, start, subscribe, token,
};

fn header(answer: &crate::common::Answer, name: &str) -> String {
    answer
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("{name} in {:?}", answer.headers))
        .to_owned()
}

#[tokio::test]
async fn connections_beyond_the_bound_get_503_with_retry_after() {
    let hub = start(|c| {
        c.anonymous = true;
        c.max_connections = 2;
    })
    .await;
    let first = subscribe(hub.addr, "/.well-known/mercure?topic=t", &[]).await;
    let _second = subscribe(hub.addr, "/.well-known/mercure?topic=t", &[]).await;
    let refused = get(hub.addr, "/healthz", &[]).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header(&refused, "retry-after"), "1");
    assert!(
        refused.body.contains("too many connections"),
        "{}",
        refused.body
    );

    // Once a client leaves, its place is free again.
    drop(first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let answer = get(hub.addr, "/healthz", &[]).await;
        if answer.status == StatusCode::OK {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot was never freed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_update_larger_than_the_bound_gets_413() {
    let hub = start(|c| c.max_update_size = 256).await;
    let auth = format!("Bearer {}", publisher());
    let big = "x".repeat(300);
    let answer = publish_with(
        hub.addr,
        &[("authorization", &auth)],
        &[("topic", "t"), ("data", &big)],
    )
    .await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(answer.body.contains("max-update-size"), "{}", answer.body);
    publish_ok(hub.addr, &[("topic", "t"), ("data", "small")]).await;
}

#[tokio::test]
async fn long_urls_get_414_and_large_headers_431() {
    let hub = start(|c| {
        c.anonymous = true;
        c.max_url_size = 1024;
        c.max_header_size = 1024;
        c.max_id_size = 256;
    })
    .await;
    let long = format!("/.well-known/mercure?topic={}", "a".repeat(1100));
    let answer = get(hub.addr, &long, &[]).await;
    assert_eq!(answer.status, StatusCode::URI_TOO_LONG);
    assert!(answer.body.contains("max-url-size"), "{}", answer.body);

    let cookie = "c".repeat(1100);
    let answer = get(hub.addr, "/healthz", &[("cookie", &cookie)]).await;
    assert_eq!(answer.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert!(answer.body.contains("max-header-size"), "{}", answer.body);

    // Far beyond the bound, the HTTP layer itself refuses the head.
    let huge = "h".repeat(64 * 1024);
    let request = Request::get(format!("http://{}/healthz", hub.addr))
        .header("host", "localhost")
        .header("x-huge", &huge)
        .body(Full::<Bytes>::default())
        .expect("request");
    let answer = full(send(hub.addr, request).await).await;
    assert_eq!(answer.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);

    assert_eq!(get(hub.addr, "/healthz", &[]).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_publisher_over_its_rate_gets_429_and_others_do_not() {
    let hub = start(|c| c.publish_rate = 2).await;
    let auth = format!("Bearer {}", publisher());
    let form = [("topic", "t")];
    for _ in 0..2 {
        let answer = publish_with(hub.addr, &[("authorization", &auth)], &form).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }
    let limited = publish_with(hub.addr, &[("authorization", &auth)], &form).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&limited, "retry-after"), "1");
    assert!(limited.body.contains("publish-rate"), "{}", limited.body);
    let other = format!(
        "Bearer {}",
        herald_hub::dev::hs256_token(KEY, serde_json::json!({"publish": ["t"]}), None)
            .expect("token")
    );
    let answer = publish_with(hub.addr, &[("authorization", &other)], &form).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "another publisher has its own budget"
    );
}

#[tokio::test]
async fn too_many_topics_in_a_subscription_get_400() {
    let hub = start(|c| {
        c.anonymous = true;
        c.max_topics = 2;
    })
    .await;
    let answer = get(
        hub.addr,
        "/.well-known/mercure?topic=a&topic=b&topic=c",
        &[],
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.body.contains("at most 2"), "{}", answer.body);
    let ok = subscribe(hub.addr, "/.well-known/mercure?topic=a&topic=b", &[]).await;
    assert_eq!(ok.status, StatusCode::OK);
}

#[tokio::test]
async fn malformed_forms_get_400_naming_the_problem() {
    let hub = start(|c| c.anonymous = true).await;
    let mut stream = subscribe(hub.addr, "/.well-known/mercure?topic=t", &[]).await;
    let auth = format!("Bearer {}", publisher());
    let post = |body: &'static [u8]| {
        Request::post(format!("http://{}/.well-known/mercure", hub.addr))
            .header("host", "localhost")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", &auth)
            .body(Full::from(Bytes::from_static(body)))
            .expect("request")
    };
    let encoded = full(send(hub.addr, post(b"topic=t&data=%FF%FE")).await).await;
    assert_eq!(encoded.status, StatusCode::BAD_REQUEST);
    assert!(
        encoded.body.contains("\"data\"") && encoded.body.contains("UTF-8"),
        "{}",
        encoded.body
    );
    let raw = full(send(hub.addr, post(b"topic=t&data=\xff")).await).await;
    assert_eq!(raw.status, StatusCode::BAD_REQUEST);
    assert!(raw.body.contains("UTF-8"), "{}", raw.body);
    let retry = full(send(hub.addr, post(b"topic=t&retry=soon")).await).await;
    assert_eq!(retry.status, StatusCode::BAD_REQUEST);
    assert!(retry.body.contains("retry"), "{}", retry.body);
    let bad_token = publish_with(
        hub.addr,
        &[("authorization", "Bearer not.a.jwt")],
        &[("topic", "t")],
    )
    .await;
    assert_eq!(bad_token.status, StatusCode::UNAUTHORIZED);
    let _ = token(serde_json::json!({}));

    // Everyone else is still served.
    publish_ok(hub.addr, &[("topic", "t"), ("id", "after"), ("data", "ok")]).await;
    assert_eq!(stream.event().await.last_event_id(), "after");
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_after_the_send_timeout() {
    let hub = start(|c| {
        c.anonymous = true;
        c.subscriber_queue = 100_000;
        c.send_timeout = Duration::from_millis(300);
    })
    .await;
    // A subscriber with a small receive buffer that never reads its stream.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("buffer size");
    let mut stuck = socket.connect(hub.addr).await.expect("connect");
    tokio::io::AsyncWriteExt::write_all(
        &mut stuck,
        b"GET /.well-known/mercure?topic=t HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await
    .expect("request");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while hub.hub.subscriber_count() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "never subscribed");
        tokio::task::yield_now().await;
    }
    // Enough to fill the socket buffers; the queue is far larger, so only the stall can end it.
    let data = "x".repeat(256 * 1024);
    let mut published = 0;
    while hub.hub.subscriber_count() == 1 {
        assert!(published < 200, "the stuck client was never closed");
        if published < 64 {
            hub.hub
                .publish(herald_hub::Update::new(vec!["t".into()], data.clone()))
                .await
                .expect("publish");
            published += 1;
        }
        assert!(tokio::time::Instant::now() < deadline, "not closed in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let page = get(hub.addr, "/metrics", &[]).await.body;
    assert!(
        page.contains(r#"herald_rejected_requests_total{reason="send_timeout"} 1"#),
        "{page}"
    );
    assert_eq!(
        page.lines()
            .find(|l| l.starts_with("herald_slow_consumer_disconnects_total"))
            .expect("metric"),
        "herald_slow_consumer_disconnects_total 0",
        "closed for stalling, not as a slow consumer"
    );
}

/// Sends one request head from a socket bound to `local` and reads the status code.
async fn status_from(local: [u8; 4], hub: std::net::SocketAddr) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(std::net::SocketAddr::from((local, 0)))
        .expect("bind a loopback address");
    let mut stream = socket.connect(hub).await.expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: hub\r\nconnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut head = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut head)).await;
    let text = String::from_utf8_lossy(&head);
    text.get(9..12)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"))
}

#[tokio::test]
async fn connections_from_one_address_beyond_its_bound_get_429_and_other_addresses_are_served() {
    let hub = start(|c| {
        c.anonymous = true;
        c.max_connections_per_ip = 2;
    })
    .await;
    let first = subscribe(hub.addr, "/.well-known/mercure?topic=t", &[]).await;
    let _second = subscribe(hub.addr, "/.well-known/mercure?topic=t", &[]).await;
    let refused = get(hub.addr, "/healthz", &[]).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&refused, "retry-after"), "1");
    assert!(
        refused.body.contains("max-connections-per-ip"),
        "{}",
        refused.body
    );
    // Another client's address still gets in (127.0.0.2 is loopback too).
    assert_eq!(status_from([127, 0, 0, 2], hub.addr).await, 200);

    // Once a connection of the first address closes, its place is free again.
    drop(first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while get(hub.addr, "/healthz", &[]).await.status != StatusCode::OK {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the place was never freed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The descriptors this process holds.
fn open_files() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("/proc").count()
}

#[tokio::test]
async fn a_flood_of_refused_connections_holds_a_bounded_number_of_descriptors() {
    use tokio::io::AsyncReadExt;
    let hub = start(|c| {
        c.anonymous = true;
        c.max_connections = 1;
    })
    .await;
    let _held = subscribe(hub.addr, "/.well-known/mercure?topic=t", &[]).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = open_files();
    // 700 clients that connect and say nothing: each refusal waits for a request head, which
    // never comes; only so many may wait at once.
    let mut flood = Vec::new();
    for _ in 0..700 {
        flood.push(
            tokio::net::TcpStream::connect(hub.addr)
                .await
                .expect("connect"),
        );
    }
    // Give the hub time to accept them all, then count what it holds: refusals in progress
    // hold a descriptor each (for up to 5 s), the rest are closed at once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let hub_side = open_files().saturating_sub(before + flood.len());
    let closed = futures::future::join_all(flood.iter_mut().map(|stream| async move {
        let mut byte = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_secs(1), stream.read(&mut byte)).await,
            Ok(Ok(0))
        )
    }))
    .await
    .into_iter()
    .filter(|closed| *closed)
    .count();
    assert!(
        closed >= 700 - 300,
        "only {closed} of 700 refused connections were closed at once"
    );
    assert!(
        hub_side <= 300,
        "the hub holds {hub_side} descriptors for 700 refused connections"
    );
}
