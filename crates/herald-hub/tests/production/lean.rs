//! The lean path that serves a connection's requests while they are subscriptions (see
//! `src/server/lean.rs`), checked on raw sockets: the framing and headers hyper used to write,
//! keep-alive after the stream, a reconnection over the same connection, `Connection: close`,
//! refusals, pipelining and departures.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{STEP, publish_ok, start};
use crate::net::{client_config, start_tls, tls_connect};

const SUBSCRIBE: &[u8] = b"GET /.well-known/mercure?topic=t HTTP/1.1\r\nHost: x\r\n\r\n";
const HEALTH: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

/// Reads until what was received contains `needle`; returns everything received.
async fn read_until<S: AsyncRead + Unpin>(
    socket: &mut S,
    seen: &mut Vec<u8>,
    needle: &str,
) -> String {
    read_while(socket, seen, |text| !text.contains(needle)).await
}

/// Reads while `more` says so of the text received; returns it.
async fn read_while<S: AsyncRead + Unpin>(
    socket: &mut S,
    seen: &mut Vec<u8>,
    more: impl Fn(&str) -> bool,
) -> String {
    let read = async {
        while more(&String::from_utf8_lossy(seen)) {
            let mut buf = [0u8; 4096];
            let n = socket.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed early: {}", String::from_utf8_lossy(seen));
            seen.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(STEP, read)
        .await
        .unwrap_or_else(|_| panic!("incomplete: {}", String::from_utf8_lossy(seen)));
    String::from_utf8_lossy(seen).into_owned()
}

#[tokio::test]
async fn a_stream_is_chunked_with_the_usual_headers_then_the_connection_serves_more() {
    let hub = start(|c| {
        c.anonymous = true;
        c.write_timeout = Duration::from_millis(600);
    })
    .await;
    let mut socket = TcpStream::connect(hub.addr).await.expect("connect");
    socket.write_all(SUBSCRIBE).await.expect("write");
    let mut seen = Vec::new();
    let head = read_until(&mut socket, &mut seen, "2\r\n:\n\r\n").await;
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    for header in [
        "transfer-encoding: chunked\r\n",
        "content-type: text/event-stream\r\n",
        "x-content-type-options: nosniff\r\n",
        "cache-control: private, no-cache, no-store, must-revalidate, max-age=0\r\n",
        "date: ",
    ] {
        assert!(head.contains(header), "{header:?} missing from {head}");
    }
    assert!(!head.contains("content-length"), "{head}");
    publish_ok(hub.addr, &[("topic", "t"), ("data", "hello")]).await;
    read_until(&mut socket, &mut seen, "data: hello\n\n\r\n").await;
    // The stream's lifetime ends it with the last chunk; the connection stays usable.
    read_until(&mut socket, &mut seen, "\r\n0\r\n\r\n").await;
    seen.clear();
    socket.write_all(HEALTH).await.expect("write");
    let answer = read_until(&mut socket, &mut seen, "ok\n").await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
}

#[tokio::test]
async fn a_subscription_after_a_stream_ended_is_served_on_the_same_connection() {
    // Long enough for the publish to land within each stream on a loaded machine.
    let hub = start(|c| {
        c.anonymous = true;
        c.write_timeout = Duration::from_millis(1500);
    })
    .await;
    let mut socket = TcpStream::connect(hub.addr).await.expect("connect");
    let mut seen = Vec::new();
    for data in ["first", "second"] {
        // As a browser's EventSource reconnects over its kept-alive connection.
        socket.write_all(SUBSCRIBE).await.expect("write");
        let head = read_until(&mut socket, &mut seen, "2\r\n:\n\r\n").await;
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        publish_ok(hub.addr, &[("topic", "t"), ("data", data)]).await;
        read_until(&mut socket, &mut seen, &format!("data: {data}\n\n\r\n")).await;
        read_until(&mut socket, &mut seen, "\r\n0\r\n\r\n").await;
        seen.clear();
    }
}

#[tokio::test]
async fn connection_close_is_honoured_after_the_stream() {
    let hub = start(|c| {
        c.anonymous = true;
        c.write_timeout = Duration::from_millis(300);
    })
    .await;
    // `close` alone, and among other tokens of the header.
    for connection in ["close", "keep-alive, close"] {
        let mut socket = TcpStream::connect(hub.addr).await.expect("connect");
        let request = format!(
            "GET /.well-known/mercure?topic=t HTTP/1.1\r\nHost: x\r\nConnection: {connection}\r\n\r\n"
        );
        socket.write_all(request.as_bytes()).await.expect("write");
        let mut rest = Vec::new();
        tokio::time::timeout(STEP, socket.read_to_end(&mut rest))
            .await
            .expect("closed by the hub")
            .expect("read");
        let text = String::from_utf8_lossy(&rest).to_ascii_lowercase();
        assert!(
            text.contains("connection: close\r\n"),
            "{connection}: {text}"
        );
        assert!(text.ends_with("\r\n0\r\n\r\n"), "{connection}: {text}");
    }
}

#[tokio::test]
async fn a_refusal_has_a_length_and_keeps_the_connection() {
    let hub = start(|c| c.anonymous = true).await;
    let mut socket = TcpStream::connect(hub.addr).await.expect("connect");
    socket
        .write_all(b"GET /.well-known/mercure HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut seen = Vec::new();
    let answer = read_until(&mut socket, &mut seen, "parameter.\n").await;
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
    let expected = "Missing \"topic\" parameter.\n";
    assert!(
        answer
            .to_ascii_lowercase()
            .contains(&format!("content-length: {}\r\n", expected.len())),
        "{answer}"
    );
    seen.clear();
    socket.write_all(HEALTH).await.expect("write");
    read_until(&mut socket, &mut seen, "ok\n").await;
}

#[tokio::test]
async fn pipelined_requests_are_all_answered_in_order() {
    let hub = start(|c| c.anonymous = true).await;
    let mut socket = TcpStream::connect(hub.addr).await.expect("connect");
    let refused = b"GET /.well-known/mercure HTTP/1.1\r\nHost: x\r\n\r\n";
    socket
        .write_all(&[HEALTH, refused, HEALTH].concat())
        .await
        .expect("write");
    let text = read_while(&mut socket, &mut Vec::new(), |text| {
        text.matches("ok\n").count() < 2 || !text.contains("parameter.\n")
    })
    .await;
    let first = text.find("ok\n").expect("first");
    let refusal = text.find("parameter.\n").expect("refusal");
    let last = text.rfind("ok\n").expect("last");
    assert!(first < refusal && refusal < last, "{text}");
}

#[tokio::test]
async fn a_client_leaving_ends_its_subscription() {
    let hub = start(|c| c.anonymous = true).await;
    let mut socket = TcpStream::connect(hub.addr).await.expect("connect");
    socket.write_all(SUBSCRIBE).await.expect("write");
    read_until(&mut socket, &mut Vec::new(), "2\r\n:\n\r\n").await;
    assert_eq!(hub.hub.subscriber_count(), 1);
    drop(socket);
    tokio::time::timeout(STEP, async {
        while hub.hub.subscriber_count() != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the subscription ended with its connection");
}

#[tokio::test]
async fn a_stream_over_tls_with_http1_is_flushed_event_by_event() {
    let (addr, hub, cert) = start_tls(|c| c.anonymous = true).await;
    let (mut tls, alpn) = tls_connect(addr, client_config(&cert, &[b"http/1.1"])).await;
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    tls.write_all(SUBSCRIBE).await.expect("write");
    let mut seen = Vec::new();
    let head = read_until(&mut tls, &mut seen, "2\r\n:\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    hub.publish(herald_hub::Update::new(vec!["t".into()], "over tls"))
        .await
        .expect("publish");
    read_until(&mut tls, &mut seen, "data: over tls\n\n\r\n").await;
}
