//! Hostile clients: floods of control frames, rapid resets (CVE-2023-44487), CONTINUATION
//! floods (CVE-2024-27316), an HPACK bomb, and a client that never opens its window. Each is
//! bounded: the hub stops reading rather than buffering, or ends the connection, and other
//! clients are served meanwhile.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::common::{STEP, publish_ok, start};
use crate::raw::*;

fn anonymous(config: &mut herald_hub::HubConfig) {
    config.anonymous = true;
}

/// Writes `batch` until a write does not complete within a second (the hub stopped reading);
/// returns the bytes written by then. Panics if `limit` bytes go through.
async fn write_until_held_back(conn: &mut Conn, batch: &[u8], limit: usize) -> usize {
    let mut written = 0;
    while written < limit {
        match tokio::time::timeout(Duration::from_secs(1), conn.io.write_all(batch)).await {
            Err(_) => return written,
            Ok(Ok(())) => written += batch.len(),
            Ok(Err(error)) => panic!("the hub closed the connection: {error}"),
        }
    }
    panic!("{written} bytes of frames went through without the hub holding back");
}

#[tokio::test]
async fn ping_and_settings_floods_are_held_back_by_the_clients_own_reading() {
    let hub = start(anonymous).await;
    for flood in [frame(PING, 0, 0, b"flooding"), frame(SETTINGS, 0, 0, &[])] {
        let mut conn = Conn::h2c(hub.addr, &[]).await;
        // Each frame asks for an answer that the client never reads.
        let batch = flood.repeat(4096);
        write_until_held_back(&mut conn, &batch, 256 << 20).await;
        // Meanwhile the hub serves others.
        let mut other = Conn::h2c(hub.addr, &[]).await;
        other.get(1, "/openapi.yaml").await;
        assert_eq!(other.expect_status(1).await, 200);
    }
}

#[tokio::test]
async fn rapid_resets_end_the_connection() {
    let hub = start(anonymous).await;
    let mut conn = Conn::h2c(hub.addr, &[]).await;
    let block = block(&get("/"));
    let mut burst = Vec::new();
    for i in 0..400u32 {
        let stream = 1 + 2 * i;
        burst.extend(frame(HEADERS, END_HEADERS | END_STREAM, stream, &block));
        burst.extend(frame(RST_STREAM, 0, stream, &8u32.to_be_bytes()));
    }
    let _ = conn.io.write_all(&burst).await;
    conn.expect_goaway(ENHANCE_YOUR_CALM).await;
}

#[tokio::test]
async fn a_continuation_flood_ends_the_connection() {
    let hub = start(anonymous).await;
    // Past twice the header limit, a block is refused: the connection ends.
    let mut conn = Conn::h2c(hub.addr, &[]).await;
    conn.write(HEADERS, END_STREAM, 1, &block(&get("/"))).await;
    let batch = frame(CONTINUATION, 0, 1, &[b'a'; 16_384]).repeat(4);
    let mut sent = 0usize;
    loop {
        match tokio::time::timeout(STEP, conn.io.write_all(&batch)).await {
            Ok(Ok(())) => sent += batch.len(),
            // Closed by the hub, or no longer read.
            Ok(Err(_)) | Err(_) => break,
        }
        assert!(sent < 64 << 20, "64 MiB of CONTINUATION frames taken");
    }
    conn.expect_goaway(ENHANCE_YOUR_CALM).await;
    // Empty frames add nothing to hold: they are read at the speed they come, and the block
    // they continue is served once it ends.
    let mut conn = Conn::h2c(hub.addr, &[]).await;
    conn.write(HEADERS, END_STREAM, 1, &block(&get("/"))).await;
    let batch = frame(CONTINUATION, 0, 1, &[]).repeat(4096);
    for _ in 0..64 {
        conn.send(&batch).await;
    }
    conn.write(CONTINUATION, END_HEADERS, 1, &[]).await;
    assert_eq!(conn.expect_status(1).await, 200);
}

#[tokio::test]
async fn an_hpack_bomb_is_counted_not_kept() {
    let hub = start(anonymous).await;
    let mut conn = Conn::h2c(hub.addr, &[]).await;
    // One 4 KB field in the table, then 12,000 one-byte references to it: 48 MB of header
    // list in a 16 KB frame. The list is measured as it is decoded and refused with 431.
    let mut bomb = block(&get("/openapi.yaml"));
    literal(&mut bomb, 0x40, b"x-bomb", &[b'b'; 4000]);
    bomb.extend(std::iter::repeat_n(0xbe, 12_000));
    assert!(bomb.len() <= 16_384);
    let started = std::time::Instant::now();
    conn.write(HEADERS, END_HEADERS | END_STREAM, 1, &bomb)
        .await;
    assert_eq!(conn.expect_status(1).await, 431);
    assert!(started.elapsed() < STEP);
    // The table is intact and the connection serves on.
    conn.write(
        HEADERS,
        END_HEADERS | END_STREAM,
        3,
        &block(&get("/openapi.yaml")),
    )
    .await;
    assert_eq!(conn.expect_status(3).await, 200);
}

#[tokio::test]
async fn a_client_that_never_opens_its_window_does_not_hold_others_back() {
    let hub = start(|config| {
        config.anonymous = true;
        config.subscriber_queue = 10;
    })
    .await;
    let path = "/.well-known/mercure?topic=t";
    let mut stalled = Conn::h2c(hub.addr, &[(INITIAL_WINDOW_SIZE, 0)]).await;
    stalled.get(1, path).await;
    assert_eq!(stalled.expect_status(1).await, 200);
    let mut reader = Conn::h2c(hub.addr, &[]).await;
    reader.get(1, path).await;
    assert_eq!(reader.expect_status(1).await, 200);
    while hub.hub.subscriber_count() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for i in 0..50 {
        publish_ok(hub.addr, &[("topic", "t"), ("data", &format!("u{i}"))]).await;
    }
    // The reader gets every update; the stalled subscriber is let go once its queue is full.
    let mut text = String::new();
    while !text.contains("data: u49\n") {
        let data = reader.expect_data(1).await;
        text.push_str(&String::from_utf8_lossy(&data.payload));
        if let Ok(len @ 1..) = u32::try_from(data.payload.len()) {
            reader.window_update(0, len).await;
            reader.window_update(1, len).await;
        }
    }
    for i in 0..50 {
        assert!(text.contains(&format!("data: u{i}\n")), "u{i} missing");
    }
    let deadline = tokio::time::Instant::now() + STEP;
    while hub.hub.subscriber_count() != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stalled one still subscribed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
