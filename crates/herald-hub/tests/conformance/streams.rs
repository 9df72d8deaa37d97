//! RFC 9113 §5.1 (stream states and identifiers, concurrency) and header blocks across
//! HEADERS and CONTINUATION frames (§4.3, §6.10).

use crate::common::start;
use crate::raw::*;

fn anonymous(config: &mut herald_hub::HubConfig) {
    config.anonymous = true;
}

#[tokio::test]
async fn frames_on_idle_streams_are_connection_errors() {
    let hub = start(anonymous).await;
    let cases = [
        frame(DATA, END_STREAM, 1, b"x"),
        frame(RST_STREAM, 0, 1, &[0, 0, 0, 8]),
        frame(WINDOW_UPDATE, 0, 1, &[0, 0, 0, 1]),
        frame(CONTINUATION, END_HEADERS, 1, &block(&get("/"))),
    ];
    for bytes in cases {
        let mut conn = Conn::h2c(hub.addr, &[]).await;
        conn.send(&bytes).await;
        conn.expect_goaway(PROTOCOL_ERROR).await;
    }
}

#[tokio::test]
async fn frames_on_half_closed_remote_streams_are_stream_errors() {
    let hub = start(anonymous).await;
    // With a window of zero, the answer stays open: the stream is half-closed (remote).
    let mut conn = Conn::h2c(hub.addr, &[(INITIAL_WINDOW_SIZE, 0)]).await;
    conn.get(1, "/").await;
    conn.expect_headers(1).await;
    conn.write(DATA, 0, 1, b"late").await;
    conn.expect_reset(1, STREAM_CLOSED).await;
    conn.get(3, "/").await;
    conn.expect_headers(3).await;
    conn.get(3, "/").await; // HEADERS again
    conn.expect_reset(3, STREAM_CLOSED).await;
    // The block was decoded all the same: the connection goes on.
    conn.get(5, "/openapi.yaml").await;
    conn.expect_headers(5).await;
    conn.expect_alive().await;
}

#[tokio::test]
async fn frames_on_closed_streams_are_errors_of_their_kind() {
    let hub = start(anonymous).await;
    // Closed by the client's RST_STREAM: DATA is a stream error, HEADERS a connection one.
    let mut conn = Conn::h2c(hub.addr, &[(INITIAL_WINDOW_SIZE, 0)]).await;
    conn.get(1, "/").await;
    conn.expect_headers(1).await;
    conn.rst(1, 0x8).await;
    conn.write(DATA, END_STREAM, 1, b"late").await;
    conn.expect_reset(1, STREAM_CLOSED).await;
    conn.write(PRIORITY, 0, 1, &[0, 0, 0, 0, 16]).await; // allowed on a closed stream
    conn.window_update(1, 10).await; // allowed too: it may have crossed the reset
    conn.expect_alive().await;
    conn.get(1, "/").await;
    conn.expect_goaway(STREAM_CLOSED).await;
    // Closed by both ends' END_STREAM: the same.
    let mut conn = Conn::h2c(hub.addr, &[]).await;
    conn.get(1, "/").await;
    loop {
        let data = conn.expect_data(1).await;
        if data.flags & END_STREAM != 0 {
            break;
        }
    }
    conn.write(DATA, END_STREAM, 1, b"late").await;
    conn.expect_reset(1, STREAM_CLOSED).await;
    conn.request(1, &[("x-trailer", "late")], true).await;
    conn.expect_goaway(STREAM_CLOSED).await;
}

#[tokio::test]
async fn stream_identifiers_are_odd_and_increasing() {
    let hub = start(anonymous).await;
    let mut conn = Conn::h2c(hub.addr, &[]).await;
    conn.get(2, "/").await;
    conn.expect_goaway(PROTOCOL_ERROR).await;
    // A new stream below the newest one (§5.1.1).
    let mut conn = Conn::h2c(hub.addr, &[]).await;
    conn.get(5, "/").await;
    conn.expect_headers(5).await;
    conn.get(3, "/").await;
    conn.expect_goaway(PROTOCOL_ERROR).await;
}

#[tokio::test]
async fn streams_past_the_advertised_concurrency_are_refused() {
    let hub = start(anonymous).await;
    // With a window of zero, every answer stays open.
    let mut conn = Conn::h2c(hub.addr, &[(INITIAL_WINDOW_SIZE, 0)]).await;
    let block = block(&get("/"));
    let mut burst = Vec::new();
    for i in 0..=200u32 {
        burst.extend(frame(HEADERS, END_HEADERS | END_STREAM, 1 + 2 * i, &block));
    }
    conn.send(&burst).await;
    conn.expect_reset(401, REFUSED_STREAM).await;
    // The open ones go on: a byte of window lets stream 1's answer move.
    conn.window_update(1, 1).await;
    assert_eq!(conn.expect_data(1).await.payload.len(), 1);
    // Once one ends, a new stream is served.
    conn.rst(3, 0x8).await;
    conn.get(403, "/").await;
    conn.expect_headers(403).await;
}

#[tokio::test]
async fn a_header_block_may_span_continuation_frames() {
    let hub = start(anonymous).await;
    let mut conn = Conn::h2c(hub.addr, &[]).await;
    let mut fields = get("/openapi.yaml");
    let long = "v".repeat(20_000);
    fields.push(("x-long", &long));
    let block = block(&fields);
    let (first, rest) = block.split_at(10_000);
    conn.write(HEADERS, END_STREAM, 1, first).await;
    let mut chunks = rest.chunks(16_384).peekable();
    while let Some(chunk) = chunks.next() {
        let flags = if chunks.peek().is_none() {
            END_HEADERS
        } else {
            0
        };
        conn.write(CONTINUATION, flags, 1, chunk).await;
    }
    assert_eq!(conn.expect_status(1).await, 200);
}

#[tokio::test]
async fn an_interrupted_or_stray_continuation_is_a_connection_error() {
    let hub = start(anonymous).await;
    let block = block(&get("/"));
    let (first, rest) = block.split_at(4);
    let open = frame(HEADERS, END_STREAM, 1, first);
    let cases: Vec<Vec<u8>> = vec![
        // A block interrupted by another frame, another stream's HEADERS, an extension.
        [open.clone(), frame(PRIORITY, 0, 1, &[0, 0, 0, 0, 16])].concat(),
        [open.clone(), frame(PING, 0, 0, b"12345678")].concat(),
        [open.clone(), frame(HEADERS, END_HEADERS, 3, &block)].concat(),
        [open.clone(), frame(0x16, 0, 0, b"extension")].concat(),
        [open.clone(), frame(CONTINUATION, END_HEADERS, 3, rest)].concat(),
        [open.clone(), frame(CONTINUATION, END_HEADERS, 0, rest)].concat(),
        // CONTINUATION after a complete block, or after DATA.
        [
            frame(HEADERS, END_HEADERS | END_STREAM, 1, &block),
            frame(CONTINUATION, END_HEADERS, 1, &[0x82]),
        ]
        .concat(),
        [
            open.clone(),
            frame(CONTINUATION, END_HEADERS, 1, rest),
            frame(CONTINUATION, END_HEADERS, 1, &[0x82]),
        ]
        .concat(),
    ];
    for bytes in cases {
        let mut conn = Conn::h2c(hub.addr, &[]).await;
        conn.send(&bytes).await;
        conn.expect_goaway(PROTOCOL_ERROR).await;
    }
    let mut conn = Conn::h2c(hub.addr, &[]).await;
    let mut post = get("/");
    post[0].1 = "POST";
    conn.request(1, &post, false).await;
    conn.write(DATA, 0, 1, b"x").await;
    conn.write(CONTINUATION, END_HEADERS, 1, &[0x82]).await;
    conn.expect_goaway(PROTOCOL_ERROR).await;
}

#[tokio::test]
async fn what_the_client_sent_on_a_stream_the_hub_reset_is_ignored() {
    let hub = start(|_| {}).await;
    let mut conn = Conn::h2c(hub.addr, &[]).await;
    let token = format!("Bearer {}", crate::common::publisher());
    let publish = [
        (":method", "POST"),
        (":scheme", "http"),
        (":authority", "localhost"),
        (":path", "/.well-known/mercure"),
        ("authorization", token.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
        ("content-length", "4"),
    ];
    // A body longer than announced: the hub resets the stream, and what the client had sent
    // after it (more DATA, trailers) crosses the reset and is ignored (§5.1).
    conn.request(1, &publish, false).await;
    conn.write(DATA, 0, 1, b"topic=t&data=x").await;
    conn.expect_reset(1, PROTOCOL_ERROR).await;
    conn.write(DATA, 0, 1, b"more").await;
    conn.window_update(1, 0).await;
    conn.write(PRIORITY, 0, 1, &[0, 0, 0, 1, 16]).await;
    conn.request(1, &[("x-trailer", "late")], true).await;
    conn.expect_alive().await;
    // An answer complete while the body comes: RST_STREAM(NO_ERROR), then the same.
    let mut post = get("/");
    post[0].1 = "POST";
    conn.request(3, &post, false).await;
    assert_eq!(conn.expect_status(3).await, 405);
    conn.write(DATA, 0, 3, b"body").await;
    conn.expect_reset(3, NO_ERROR).await;
    conn.write(DATA, END_STREAM, 3, b"late").await;
    conn.expect_alive().await;
    conn.get(5, "/openapi.yaml").await;
    assert_eq!(conn.expect_status(5).await, 200);
}

#[tokio::test]
async fn the_streams_kept_to_ignore_late_frames_are_bounded() {
    let hub = start(|_| {}).await;
    let mut conn = Conn::h2c(hub.addr, &[]).await;
    let token = format!("Bearer {}", crate::common::publisher());
    let publish = [
        (":method", "POST"),
        (":scheme", "http"),
        (":authority", "localhost"),
        (":path", "/.well-known/mercure"),
        ("authorization", token.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
        ("content-length", "1"),
    ];
    // Ten streams reset by the hub, their requests still open: the eight newest are kept.
    for stream in (1..=19).step_by(2) {
        conn.request(stream, &publish, false).await;
        conn.write(DATA, 0, stream, b"too long").await;
        conn.expect_reset(stream, PROTOCOL_ERROR).await;
    }
    // Late DATA on a kept one is ignored; on a forgotten one it is a stream error again.
    conn.write(DATA, 0, 19, b"late").await;
    conn.expect_alive().await;
    conn.write(DATA, 0, 1, b"late").await;
    conn.expect_reset(1, STREAM_CLOSED).await;
    conn.expect_alive().await;
}
