//! Request bodies cost nothing before authorization and are bounded in size and in time: no
//! byte of a publish body is read (nor `100 Continue` sent) for a client without a valid token,
//! an announced oversize body is refused from its `Content-Length`, and a body that stalls or
//! trickles is cut at `body_timeout` instead of holding its connection, and the shutdown, open.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{publisher, start};

/// Sends `head` (a request head without its final blank line) and returns everything the hub
/// writes until it closes the connection or `wait` passes.
async fn exchange(addr: std::net::SocketAddr, head: &str, body: &[u8], wait: Duration) -> String {
    let mut socket = TcpStream::connect(addr).await.expect("connect");
    socket
        .write_all(format!("{head}\r\n\r\n").as_bytes())
        .await
        .expect("head");
    socket.write_all(body).await.expect("body");
    read_for(&mut socket, wait).await.0
}

/// Reads what arrives within `wait`; also says whether the hub closed the connection.
async fn read_for(socket: &mut TcpStream, wait: Duration) -> (String, bool) {
    let deadline = tokio::time::Instant::now() + wait;
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, socket.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&received).into(), true),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&received).into(), false),
        }
    }
}

fn publish_head(auth: Option<&str>, length: usize, extra: &str) -> String {
    let auth = auth.map_or_else(String::new, |token| {
        format!("\r\nAuthorization: Bearer {token}")
    });
    format!(
        "POST /.well-known/mercure HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {length}{auth}{extra}"
    )
}

#[tokio::test]
async fn an_unauthorized_publish_is_refused_before_its_body_without_100_continue() {
    let hub = start(|_| {}).await;
    // The body never comes: the answer must not wait for it.
    let head = publish_head(None, 999_999, "\r\nExpect: 100-continue");
    let answer = exchange(hub.addr, &head, b"", Duration::from_secs(3)).await;
    assert!(
        answer.starts_with("HTTP/1.1 401"),
        "401 at once, without 100 Continue: {answer:?}"
    );
    assert!(!answer.contains("100 Continue"), "{answer:?}");

    let forged = "eyJhbGciOiJIUzI1NiJ9.eyJtZXJjdXJlIjp7InB1Ymxpc2giOlsiKiJdfX0.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let head = publish_head(Some(forged), 999_999, "");
    let answer = exchange(hub.addr, &head, b"topic=", Duration::from_secs(3)).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer:?}");
}

#[tokio::test]
async fn an_authorized_client_asking_to_continue_gets_100_then_its_answer() {
    let hub = start(|_| {}).await;
    let body = b"topic=t&data=x";
    let head = publish_head(Some(&publisher()), body.len(), "\r\nExpect: 100-continue");
    let mut socket = TcpStream::connect(hub.addr).await.expect("connect");
    socket
        .write_all(format!("{head}\r\n\r\n").as_bytes())
        .await
        .expect("head");
    let (interim, _) = read_for(&mut socket, Duration::from_secs(2)).await;
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim:?}");
    socket.write_all(body).await.expect("body");
    let (answer, _) = read_for(&mut socket, Duration::from_secs(2)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
}

#[tokio::test]
async fn an_announced_oversize_body_gets_413_from_its_length_alone() {
    let hub = start(|c| c.max_update_size = 1024).await;
    let head = publish_head(Some(&publisher()), 1_000_000, "");
    let answer = exchange(hub.addr, &head, b"topic=t", Duration::from_secs(3)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");
    assert!(answer.contains("max-update-size"), "{answer:?}");
}

#[tokio::test]
async fn a_stalled_or_trickled_body_is_cut_at_the_body_timeout() {
    let hub = start(|c| c.body_timeout = Duration::from_millis(500)).await;
    // Stalled: half the announced body, then nothing.
    let head = publish_head(Some(&publisher()), 100, "");
    let mut socket = TcpStream::connect(hub.addr).await.expect("connect");
    socket
        .write_all(format!("{head}\r\n\r\ntopic=t&data=").as_bytes())
        .await
        .expect("head");
    let (answer, closed) = read_for(&mut socket, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(answer.contains("body-timeout"), "{answer:?}");
    assert!(closed, "the connection is closed after a 408");

    // Trickled: a byte every 100 ms never completes within the bound either.
    let mut socket = TcpStream::connect(hub.addr).await.expect("connect");
    socket
        .write_all(format!("{head}\r\n\r\n").as_bytes())
        .await
        .expect("head");
    let trickle = async {
        for _ in 0..100 {
            if socket.write_all(b"x").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        socket
    };
    let mut socket = tokio::time::timeout(Duration::from_secs(8), async {
        let mut socket = trickle.await;
        read_for(&mut socket, Duration::from_millis(100)).await;
        socket
    })
    .await
    .expect("the trickle ends: the hub closed the connection");
    let (rest, closed) = read_for(&mut socket, Duration::from_secs(1)).await;
    assert!(closed, "closed; after it: {rest:?}");
}

#[tokio::test]
async fn a_stalled_body_on_another_route_does_not_hold_the_connection() {
    let hub = start(|c| c.body_timeout = Duration::from_millis(500)).await;
    let head = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000";
    let mut socket = TcpStream::connect(hub.addr).await.expect("connect");
    socket
        .write_all(format!("{head}\r\n\r\nabc").as_bytes())
        .await
        .expect("head");
    let (answer, closed) = read_for(&mut socket, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert!(closed, "the unread body is not waited for");
}

#[tokio::test]
async fn a_stalled_publish_does_not_hold_the_shutdown_for_the_grace_period() {
    let mut config = herald_hub::HubConfig {
        publisher_jwt: Some(herald_hub::JwtKey::new(crate::common::KEY, "HS256")),
        ..herald_hub::HubConfig::default()
    };
    config.body_timeout = Duration::from_millis(500);
    config.grace_period = Duration::from_secs(60);
    let hub = herald_hub::Hub::new(config).expect("hub");
    let served = crate::common::serve_stoppable(&hub).await;
    let mut socket = TcpStream::connect(served.addr).await.expect("connect");
    let head = publish_head(Some(&publisher()), 100, "");
    socket
        .write_all(format!("{head}\r\n\r\ntopic=t").as_bytes())
        .await
        .expect("head");
    // The request is in the handler, waiting for the rest of its body.
    tokio::time::sleep(Duration::from_millis(100)).await;
    served.stop.send(()).expect("stop");
    let ended = tokio::time::timeout(Duration::from_secs(30), served.server).await;
    assert!(
        ended.is_ok(),
        "the server stopped at the body timeout, long before its 60 s grace period"
    );
    let (answer, _) = read_for(&mut socket, Duration::from_secs(1)).await;
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "the stalled publish was answered: {answer:?}"
    );
}

#[tokio::test]
async fn a_publish_within_bounds_is_read_and_accepted() {
    let hub = start(|c| c.max_update_size = 64).await;
    let body = b"topic=t&data=hello";
    let head = publish_head(Some(&publisher()), body.len(), "");
    let answer = exchange(hub.addr, &head, body, Duration::from_secs(1)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    // And the streamed form of the bound: no Content-Length, too many bytes.
    let chunked = "POST /.well-known/mercure HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\
         Authorization: Bearer ";
    let head = format!("{chunked}{}", publisher());
    let data = "x".repeat(100);
    let body = format!("{:x}\r\ntopic=t&data={data}\r\n0\r\n\r\n", data.len() + 13);
    let answer = exchange(hub.addr, &head, body.as_bytes(), Duration::from_secs(2)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");
}
