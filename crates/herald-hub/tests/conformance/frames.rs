//! RFC 9113 §3.4, §4 and §6: the preface, frame format and size, and each frame type's rules.

use std::time::Duration;

use crate::common::start;
use crate::raw::*;

fn anonymous(config: &mut herald_hub::HubConfig) {
    config.anonymous = true;
}

#[tokio::test]
async fn the_hub_opens_with_its_settings() {
    let hub = start(anonymous).await;
    let mut conn = Conn::tcp(hub.addr).await;
    conn.send(PREFACE).await;
    conn.settings(&[]).await;
    let first = conn.frame().await;
    assert_eq!((first.kind, first.flags, first.stream), (SETTINGS, 0, 0));
    assert!(conn.settings.contains(&(HEADER_TABLE_SIZE, 0)));
    assert!(conn.settings.contains(&(MAX_CONCURRENT_STREAMS, 200)));
    // Our (empty) SETTINGS is acknowledged, a PING answered.
    let ack = conn.frame().await;
    assert_eq!((ack.kind, ack.flags, ack.payload.len()), (SETTINGS, ACK, 0));
    conn.expect_alive().await;
}

#[tokio::test]
async fn an_invalid_preface_after_alpn_h2_is_a_protocol_error() {
    let (addr, _hub, cert) = crate::net::start_tls(|_| {}).await;
    let mut conn = Conn::tls(addr, crate::net::client_config(&cert, &[b"h2"])).await;
    conn.send(b"INVALID CONNECTION PREFACE\r\n\r\n").await;
    conn.expect_goaway(PROTOCOL_ERROR).await;
}

#[tokio::test]
async fn a_preface_not_followed_by_settings_is_a_protocol_error() {
    let hub = start(anonymous).await;
    for first in [frame(PING, 0, 0, b"12345678"), frame(SETTINGS, ACK, 0, &[])] {
        let mut conn = Conn::tcp(hub.addr).await;
        conn.send(&[PREFACE, &first].concat()).await;
        conn.expect_goaway(PROTOCOL_ERROR).await;
    }
}

#[tokio::test]
async fn tls_h2_serves_requests_and_checks_frames_as_h2c_does() {
    let (addr, _hub, cert) = crate::net::start_tls(|_| {}).await;
    let mut conn = Conn::tls(addr, crate::net::client_config(&cert, &[b"h2"])).await;
    conn.handshake(&[]).await;
    conn.get(1, "/openapi.yaml").await;
    assert_eq!(conn.expect_status(1).await, 200);
    conn.write(DATA, 0, 0, b"x").await;
    conn.expect_goaway(PROTOCOL_ERROR).await;
}

#[tokio::test]
async fn unknown_types_flags_and_the_reserved_bit_are_ignored() {
    let hub = start(anonymous).await;
    let mut conn = Conn::h2c(hub.addr, &[]).await;
    conn.write(0x16, 0xff, 0, b"an extension").await; // §4.1, §5.5
    conn.write(0x20, 0x00, 1, b"on an idle stream").await;
    conn.write(PING, 0x16, 0, b"flags!!!").await; // undefined flags
    let ping = conn.frame().await;
    assert_eq!(
        (ping.kind, ping.flags, &ping.payload[..]),
        (PING, ACK, &b"flags!!!"[..])
    );
    conn.write(PING, 0, 0x8000_0000, b"reserved").await; // the R bit on stream 0
    let ping = conn.frame().await;
    assert_eq!(&ping.payload[..], b"reserved");
    conn.settings(&[(0x99, 1), (0xffff, 7)]).await; // unknown settings
    let ack = conn.frame().await;
    assert_eq!((ack.kind, ack.flags), (SETTINGS, ACK));
    conn.get(1, "/openapi.yaml").await;
    assert_eq!(conn.expect_status(1).await, 200);
}

#[tokio::test]
async fn frames_up_to_the_maximum_size_are_taken_and_larger_ones_are_errors() {
    let hub = start(anonymous).await;
    let mut conn = Conn::h2c(hub.addr, &[]).await;
    let mut post = get("/");
    post[0].1 = "POST";
    conn.request(1, &post, false).await;
    conn.write(DATA, END_STREAM, 1, &[b'x'; 16_384]).await;
    assert_eq!(conn.expect_status(1).await, 405);
    conn.expect_alive().await;
    conn.request(3, &post, false).await;
    conn.write(DATA, END_STREAM, 3, &[b'x'; 16_385]).await;
    conn.expect_goaway(FRAME_SIZE_ERROR).await;

    let mut conn = Conn::h2c(hub.addr, &[]).await;
    let mut fields = get("/");
    let big = "h".repeat(16_400);
    fields.push(("x-big", &big));
    conn.request(1, &fields, true).await;
    conn.expect_goaway(FRAME_SIZE_ERROR).await;
}

#[tokio::test]
async fn data_frames_keep_to_the_clients_max_frame_size() {
    let hub = start(anonymous).await;
    for max in [16_384u32, 20_000] {
        let mut conn = Conn::h2c(
            hub.addr,
            &[(MAX_FRAME_SIZE, max), (INITIAL_WINDOW_SIZE, 1 << 20)],
        )
        .await;
        conn.window_update(0, 1 << 20).await;
        conn.get(1, "/openapi.yaml").await;
        assert_eq!(conn.expect_status(1).await, 200);
        let (mut largest, mut total) = (0, 0);
        loop {
            let data = conn.expect_data(1).await;
            largest = largest.max(data.payload.len());
            total += data.payload.len();
            if data.flags & END_STREAM != 0 {
                break;
            }
        }
        assert!(total > 16_384, "a body larger than one default frame");
        assert!(largest <= max as usize, "{largest} > {max}");
        if max > 16_384 {
            assert!(
                largest > 16_384,
                "the larger frames the client allows are used"
            );
        }
    }
}

#[tokio::test]
async fn settings_are_acknowledged_and_invalid_ones_are_connection_errors() {
    let hub = start(anonymous).await;
    let cases: Vec<(Vec<u8>, u32)> = vec![
        // ACK with a payload; on a stream; a length not a multiple of six.
        (frame(SETTINGS, ACK, 0, &[0; 6]), FRAME_SIZE_ERROR),
        (frame(SETTINGS, 0, 1, &[]), PROTOCOL_ERROR),
        (frame(SETTINGS, 0, 0, &[0, 3, 0, 0, 0]), FRAME_SIZE_ERROR),
        // ENABLE_PUSH 2; INITIAL_WINDOW_SIZE 2^31; MAX_FRAME_SIZE below and above its range.
        (frame(SETTINGS, 0, 0, &[0, 2, 0, 0, 0, 2]), PROTOCOL_ERROR),
        (
            frame(SETTINGS, 0, 0, &[0, 4, 0x80, 0, 0, 0]),
            FLOW_CONTROL_ERROR,
        ),
        (
            frame(SETTINGS, 0, 0, &[0, 5, 0, 0, 0x3f, 0xff]),
            PROTOCOL_ERROR,
        ),
        (frame(SETTINGS, 0, 0, &[0, 5, 1, 0, 0, 0]), PROTOCOL_ERROR),
        // A stream's window pushed past 2^31-1 by a new initial size (below).
        (Vec::new(), FLOW_CONTROL_ERROR),
    ];
    for (bytes, code) in cases {
        let mut conn = Conn::h2c(hub.addr, &[]).await;
        if bytes.is_empty() {
            conn.request(1, &get("/.well-known/mercure?topic=t"), true)
                .await;
            assert_eq!(conn.expect_status(1).await, 200);
            conn.window_update(1, (1 << 31) - 1 - 65_535).await;
            conn.expect_alive().await;
            conn.settings(&[(INITIAL_WINDOW_SIZE, (1 << 31) - 1)]).await;
        } else {
            conn.send(&bytes).await;
        }
        conn.expect_goaway(code).await;
    }
    // Values in one frame apply in order (§6.5.3): the last initial window is 1.
    let mut conn = Conn::h2c(hub.addr, &[]).await;
    conn.settings(&[(INITIAL_WINDOW_SIZE, 100), (INITIAL_WINDOW_SIZE, 1)])
        .await;
    conn.get(1, "/").await;
    conn.expect_headers(1).await;
    assert_eq!(conn.expect_data(1).await.payload.len(), 1);
}

#[tokio::test]
async fn pings_are_answered_once_and_bad_ones_are_connection_errors() {
    let hub = start(anonymous).await;
    let mut conn = Conn::h2c(hub.addr, &[]).await;
    conn.write(PING, ACK, 0, b"an ack!!").await; // not answered
    conn.ping(b"answer!!").await;
    let pong = conn.frame().await;
    assert_eq!(
        (pong.kind, pong.flags, &pong.payload[..]),
        (PING, ACK, &b"answer!!"[..])
    );
    conn.write(PING, 0, 1, b"stream 1").await;
    conn.expect_goaway(PROTOCOL_ERROR).await;
    let mut conn = Conn::h2c(hub.addr, &[]).await;
    conn.write(PING, 0, 0, b"sixsix").await;
    conn.expect_goaway(FRAME_SIZE_ERROR).await;
}

#[tokio::test]
async fn frames_on_the_wrong_stream_or_of_the_wrong_size_are_connection_errors() {
    let hub = start(anonymous).await;
    let block = block(&get("/"));
    let cases: Vec<(Vec<u8>, u32)> = vec![
        (frame(DATA, 0, 0, b"x"), PROTOCOL_ERROR),
        (frame(HEADERS, END_HEADERS, 0, &block), PROTOCOL_ERROR),
        (frame(PRIORITY, 0, 0, &[0, 0, 0, 1, 16]), PROTOCOL_ERROR),
        (frame(RST_STREAM, 0, 0, &[0, 0, 0, 8]), PROTOCOL_ERROR),
        (frame(GOAWAY, 0, 1, &[0; 8]), PROTOCOL_ERROR),
        (frame(GOAWAY, 0, 0, &[0; 4]), FRAME_SIZE_ERROR),
        (frame(WINDOW_UPDATE, 0, 0, &[0, 0, 1]), FRAME_SIZE_ERROR),
        (
            frame(PUSH_PROMISE, END_HEADERS, 1, &[0, 0, 0, 2]),
            PROTOCOL_ERROR,
        ),
        // Padding as long as the frame (§6.1, §6.2), a priority the frame cannot hold.
        (
            frame(HEADERS, END_HEADERS | PADDED, 1, &[9, 0x82]),
            PROTOCOL_ERROR,
        ),
        (
            frame(HEADERS, END_HEADERS | PRIORITY_FLAG, 1, &[0, 0, 0]),
            FRAME_SIZE_ERROR,
        ),
        (
            frame(
                HEADERS,
                END_HEADERS | PADDED | PRIORITY_FLAG,
                1,
                &[2, 0, 0, 0, 0, 16],
            ),
            PROTOCOL_ERROR,
        ),
    ];
    for (bytes, code) in cases {
        let mut conn = Conn::h2c(hub.addr, &[]).await;
        conn.send(&bytes).await;
        conn.expect_goaway(code).await;
    }
    // DATA with a pad length past its end, on an open stream.
    let mut conn = Conn::h2c(hub.addr, &[]).await;
    let mut post = get("/");
    post[0].1 = "POST";
    conn.request(1, &post, false).await;
    conn.write(DATA, PADDED | END_STREAM, 1, &[6, b'a', b'b'])
        .await;
    conn.expect_goaway(PROTOCOL_ERROR).await;
    // RST_STREAM of the wrong size on a stream that is not idle.
    let mut conn = Conn::h2c(hub.addr, &[]).await;
    conn.get(1, "/").await;
    conn.expect_headers(1).await;
    conn.write(RST_STREAM, 0, 1, &[0, 0, 8]).await;
    conn.expect_goaway(FRAME_SIZE_ERROR).await;
}

#[tokio::test]
async fn padded_and_prioritized_frames_are_served() {
    let hub = start(|_| {}).await;
    let mut conn = Conn::h2c(hub.addr, &[]).await;
    // HEADERS with padding and a priority (stream 0, weight 16).
    let mut payload = vec![4, 0, 0, 0, 0, 15];
    payload.extend(block(&get("/openapi.yaml")));
    payload.extend([0; 4]);
    conn.write(
        HEADERS,
        END_HEADERS | END_STREAM | PADDED | PRIORITY_FLAG,
        1,
        &payload,
    )
    .await;
    assert_eq!(conn.expect_status(1).await, 200);
    // A PRIORITY frame for an idle stream (7) opens nothing: a lower one (5) can be opened.
    conn.write(PRIORITY, 0, 7, &[0, 0, 0, 0, 16]).await;
    conn.get(5, "/openapi.yaml").await;
    assert_eq!(conn.expect_status(5).await, 200);
    // A padded DATA frame of a publish.
    let token = format!("Bearer {}", crate::common::publisher());
    let fields = [
        (":method", "POST"),
        (":scheme", "http"),
        (":authority", "localhost"),
        (":path", "/.well-known/mercure"),
        ("authorization", token.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    conn.request(9, &fields, false).await;
    let mut payload = vec![3];
    payload.extend(b"topic=t&data=padded");
    payload.extend([0; 3]);
    conn.write(DATA, PADDED | END_STREAM, 9, &payload).await;
    assert_eq!(conn.expect_status(9).await, 200);
}

#[tokio::test]
async fn priority_frames_are_ignored_but_checked() {
    let hub = start(anonymous).await;
    // With a window of zero, the answers stay open.
    let mut conn = Conn::h2c(hub.addr, &[(INITIAL_WINDOW_SIZE, 0)]).await;
    // Of the wrong size: a stream error (§6.3).
    conn.get(1, "/").await;
    conn.expect_headers(1).await;
    conn.write(PRIORITY, 0, 1, &[0, 0, 0, 0]).await;
    conn.expect_reset(1, FRAME_SIZE_ERROR).await;
    // A stream depending on itself, by PRIORITY or by HEADERS: a stream error (§5.3.1); the
    // header block is still decoded, so the next request is understood.
    conn.get(3, "/").await;
    conn.expect_headers(3).await;
    conn.write(PRIORITY, 0, 3, &[0, 0, 0, 3, 16]).await;
    conn.expect_reset(3, PROTOCOL_ERROR).await;
    let mut payload = vec![0, 0, 0, 5, 16];
    let mut fields = vec![0x40];
    string(&mut fields, b"x-indexed");
    string(&mut fields, b"into the table");
    payload.extend(&fields);
    payload.extend(block(&get("/")));
    conn.write(
        HEADERS,
        END_HEADERS | END_STREAM | PRIORITY_FLAG,
        5,
        &payload,
    )
    .await;
    conn.expect_reset(5, PROTOCOL_ERROR).await;
    let mut next = block(&get("/openapi.yaml"));
    next.push(0xbe); // the field stream 5's block indexed
    conn.write(HEADERS, END_HEADERS | END_STREAM, 7, &next)
        .await;
    assert_eq!(conn.expect_status(7).await, 200);
    // On an idle stream no RST_STREAM may be sent (§6.4): the same errors end the connection.
    for (payload, code) in [
        (&[0, 0, 0, 0][..], FRAME_SIZE_ERROR),
        (&[0, 0, 0, 9, 16][..], PROTOCOL_ERROR),
    ] {
        let mut conn = Conn::h2c(hub.addr, &[]).await;
        conn.write(PRIORITY, 0, 9, payload).await;
        conn.expect_goaway(code).await;
    }
}

#[tokio::test]
async fn window_updates_are_checked_on_the_connection_and_on_streams() {
    let hub = start(anonymous).await;
    // A zero increment: a connection error on stream 0, a stream error on a stream, even a
    // closed one (§6.9).
    let mut conn = Conn::h2c(hub.addr, &[]).await;
    conn.window_update(0, 0).await;
    conn.expect_goaway(PROTOCOL_ERROR).await;
    let mut conn = Conn::h2c(hub.addr, &[]).await;
    conn.get(1, "/").await;
    conn.expect_headers(1).await;
    conn.window_update(1, 0).await;
    conn.expect_reset(1, PROTOCOL_ERROR).await;
    conn.expect_alive().await;
    // Past 2^31-1: on the connection, a connection error; on a stream whose request is still
    // open (the answer is complete), a stream error.
    let mut conn = Conn::h2c(hub.addr, &[]).await;
    conn.window_update(0, (1 << 31) - 1).await;
    conn.expect_goaway(FLOW_CONTROL_ERROR).await;
    let mut conn = Conn::h2c(hub.addr, &[]).await;
    conn.request(1, &get("/"), false).await;
    conn.expect_headers(1).await;
    conn.window_update(1, (1 << 31) - 1).await;
    conn.window_update(1, (1 << 31) - 1).await;
    conn.expect_reset(1, FLOW_CONTROL_ERROR).await;
    conn.expect_alive().await;
}

#[tokio::test]
async fn responses_keep_to_the_windows_the_client_sets() {
    let hub = start(anonymous).await;
    // An initial window of 1: one byte, then more as the client grants it (§6.9.1).
    let mut conn = Conn::h2c(hub.addr, &[(INITIAL_WINDOW_SIZE, 1)]).await;
    conn.get(1, "/").await;
    conn.expect_headers(1).await;
    assert_eq!(conn.expect_data(1).await.payload.len(), 1);
    conn.expect_nothing_but(&[], Duration::from_millis(200))
        .await;
    conn.window_update(1, 4).await;
    assert_eq!(conn.expect_data(1).await.payload.len(), 4);
    // A new initial window applies to open streams (§6.9.2).
    let mut conn = Conn::h2c(hub.addr, &[(INITIAL_WINDOW_SIZE, 0)]).await;
    conn.get(1, "/").await;
    conn.expect_headers(1).await;
    conn.settings(&[(INITIAL_WINDOW_SIZE, 1)]).await;
    assert_eq!(conn.expect_data(1).await.payload.len(), 1);
    // And can make a window negative: 3 bytes sent, the initial window down from 3 to 2
    // leaves -1, a 2-byte update leaves room for 1 (§6.9.2).
    let mut conn = Conn::h2c(hub.addr, &[(INITIAL_WINDOW_SIZE, 3)]).await;
    conn.get(1, "/").await;
    conn.expect_headers(1).await;
    assert_eq!(conn.expect_data(1).await.payload.len(), 3);
    conn.settings(&[(INITIAL_WINDOW_SIZE, 2)]).await;
    conn.window_update(1, 2).await;
    assert_eq!(conn.expect_data(1).await.payload.len(), 1);
}

#[tokio::test]
async fn unknown_error_codes_are_taken_as_internal_errors() {
    let hub = start(anonymous).await;
    let mut conn = Conn::h2c(hub.addr, &[(INITIAL_WINDOW_SIZE, 0)]).await;
    conn.get(1, "/").await;
    conn.expect_headers(1).await;
    conn.rst(1, 0xbad).await;
    conn.expect_alive().await;
    conn.write(GOAWAY, 0, 0, &[0, 0, 0, 0, 0, 0, 0x0b, 0xad])
        .await;
    // The hub goes away too, cleanly, and closes: nothing is open.
    conn.expect_goaway(NO_ERROR).await;
}
