//! The hub's own HTTP/2 server (`server/h2`): graceful shutdown with `GOAWAY`, flow control
//! both ways, streams reset by the client, header lists over the limit, and the protocol rules
//! checked frame by frame with a raw client.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use herald_codec::{Decoder, Frame};
use herald_hub::{Hub, HubConfig, JwtKey};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{KEY, STEP, Stoppable, publish_ok, publisher, serve_stoppable, start};
use crate::net::h2;

const TOPIC: &str = "/.well-known/mercure?topic=t";

fn anonymous(config: &mut HubConfig) {
    config.anonymous = true;
}

/// Reads events from an HTTP/2 response body until `count` arrived or the body ended.
async fn events(body: &mut hyper::body::Incoming, count: usize) -> (Vec<String>, bool) {
    let mut decoder = Decoder::new();
    let mut data = Vec::new();
    loop {
        while let Some(frame) = decoder.next_frame().expect("valid stream") {
            if let Frame::Event(event) = frame {
                data.push(event.data().to_owned());
            }
        }
        if data.len() >= count {
            return (data, false);
        }
        match tokio::time::timeout(STEP, body.frame())
            .await
            .expect("a frame in time")
        {
            Some(Ok(frame)) => {
                if let Ok(bytes) = frame.into_data() {
                    decoder.push(bytes);
                }
            }
            Some(Err(_)) | None => return (data, true),
        }
    }
}

#[tokio::test]
async fn shutdown_ends_the_open_streams_cleanly_and_closes_the_connection() {
    let hub = Hub::new(HubConfig {
        publisher_jwt: Some(JwtKey::new(KEY, "HS256")),
        anonymous: true,
        grace_period: Duration::from_secs(3),
        ..HubConfig::default()
    })
    .expect("hub");
    let Stoppable { addr, stop, server } = serve_stoppable(&hub).await;
    let mut sender = h2(TcpStream::connect(addr).await.expect("connect")).await;
    let request = Request::get(format!("http://{addr}{TOPIC}"))
        .body(Full::default())
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    while hub.subscriber_count() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    publish_ok(addr, &[("topic", "t"), ("data", "before")]).await;
    stop.send(()).expect("server running");
    let (data, ended) = events(&mut body, 2).await;
    assert_eq!(data, ["before"]);
    assert!(ended, "the stream ends");
    tokio::time::timeout(STEP, server)
        .await
        .expect("the server returns within the grace period")
        .expect("join")
        .expect("clean exit");
}

#[tokio::test]
async fn a_response_waits_for_the_window_the_client_grants() {
    let hub = start(anonymous).await;
    let tcp = TcpStream::connect(hub.addr).await.expect("connect");
    let (client, connection) = ::h2::client::Builder::new()
        .initial_window_size(100)
        .handshake::<_, Bytes>(tcp)
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let mut client = client.ready().await.expect("ready");
    let request = Request::get(format!("http://{}{TOPIC}", hub.addr))
        .body(())
        .expect("request");
    let (response, _) = client.send_request(request, true).expect("sent");
    let response = tokio::time::timeout(STEP, response)
        .await
        .expect("head in time")
        .expect("head");
    let mut body = response.into_body();
    while hub.hub.subscriber_count() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let data = "x".repeat(500);
    publish_ok(hub.addr, &[("topic", "t"), ("data", &data)]).await;
    // Without a WINDOW_UPDATE the hub sends no more than the 100 bytes granted.
    let mut received = 0;
    while received < 100 {
        let chunk = tokio::time::timeout(STEP, body.data())
            .await
            .expect("data in time")
            .expect("open")
            .expect("data");
        received += chunk.len();
    }
    assert_eq!(received, 100, "no more than the window");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), body.data())
            .await
            .is_err(),
        "nothing past the window"
    );
    // Granting the window lets the rest of the event out.
    body.flow_control()
        .release_capacity(received)
        .expect("release");
    let mut text = Vec::new();
    while !text.ends_with(b"\n\n") {
        let chunk = tokio::time::timeout(STEP, body.data())
            .await
            .expect("data in time")
            .expect("open")
            .expect("data");
        body.flow_control()
            .release_capacity(chunk.len())
            .expect("release");
        text.extend_from_slice(&chunk);
    }
    assert!(String::from_utf8_lossy(&text).contains(&data[..200]));
}

#[tokio::test]
async fn a_stream_the_client_resets_unsubscribes_and_the_connection_goes_on() {
    let hub = start(anonymous).await;
    let tcp = TcpStream::connect(hub.addr).await.expect("connect");
    let (client, connection) = ::h2::client::handshake(tcp).await.expect("handshake");
    tokio::spawn(connection);
    let mut client = client.ready().await.expect("ready");
    let request = || {
        Request::get(format!("http://{}{TOPIC}", hub.addr))
            .body(())
            .expect("request")
    };
    let (response, _) = client.send_request(request(), true).expect("sent");
    let response = response.await.expect("head");
    while hub.hub.subscriber_count() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(response); // RST_STREAM(CANCEL)
    let deadline = tokio::time::Instant::now() + STEP;
    while hub.hub.subscriber_count() != 0 {
        assert!(tokio::time::Instant::now() < deadline, "still subscribed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut client = client.ready().await.expect("the connection goes on");
    let (response, _) = client.send_request(request(), true).expect("sent");
    assert_eq!(response.await.expect("head").status(), StatusCode::OK);
}

#[tokio::test]
async fn a_request_body_larger_than_the_window_is_read_whole() {
    let hub = start(|_| {}).await;
    let mut sender = h2(TcpStream::connect(hub.addr).await.expect("connect")).await;
    let data = "d".repeat(300_000);
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("topic", "t")
        .append_pair("data", &data)
        .finish();
    let request = Request::post(format!("http://{}/.well-known/mercure", hub.addr))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", format!("Bearer {}", publisher()))
        .body(Full::from(form))
        .expect("request");
    let response = tokio::time::timeout(STEP, sender.send_request(request))
        .await
        .expect("answer in time")
        .expect("answer");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(status, StatusCode::OK, "{body:?}");
    assert!(body.starts_with(b"urn:uuid:"), "the update's ID: {body:?}");
}

#[tokio::test]
async fn header_fields_over_the_limits_get_431() {
    let hub = start(|config| {
        config.max_url_size = 1024;
        config.max_header_size = 2048;
    })
    .await;
    // Past the header limit but within what the connection reads: the limits layer answers.
    let mut sender = h2(TcpStream::connect(hub.addr).await.expect("connect")).await;
    let request = Request::get(format!("http://{}/healthz", hub.addr))
        .header("x-large", "a".repeat(3000))
        .body(Full::default())
        .expect("request");
    let response = sender.send_request(request).await.expect("answer");
    assert_eq!(
        response.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    // Past what the connection reads (8 KiB here), over HEADERS and CONTINUATION frames: the
    // head is decoded (the compression state stays in step) but not kept.
    let mut raw = Raw::connect(hub.addr).await;
    let mut block = vec![0x82, 0x86, 0x84]; // GET, http, /
    literal(&mut block, b"x-huge", &[b'b'; 9000]);
    raw.frame(0x1, 0x1, 1, &block[..4000]).await; // HEADERS, END_STREAM, no END_HEADERS
    raw.frame(0x9, 0x0, 1, &block[4000..8000]).await; // CONTINUATION
    raw.frame(0x9, 0x4, 1, &block[8000..]).await; // CONTINUATION, END_HEADERS
    let (kind, _, stream, payload) = raw.next_on(1).await;
    assert_eq!((kind, stream), (0x1, 1), "a HEADERS answer");
    // A literal ":status: 431" (name index 8, no indexing).
    assert_eq!(&payload[..5], &[0x08, 3, b'4', b'3', b'1']);
}

#[tokio::test]
async fn pings_are_answered_and_a_malformed_request_resets_only_its_stream() {
    let hub = start(anonymous).await;
    let mut raw = Raw::connect(hub.addr).await;
    raw.frame(0x6, 0x0, 0, b"12345678").await; // PING
    let (_, flags, _, payload) = raw.next_of(0x6).await;
    assert_eq!((flags, &payload[..]), (0x1, &b"12345678"[..]), "PING ACK");
    // An uppercase field name is malformed: RST_STREAM(PROTOCOL_ERROR) on that stream.
    let mut block = vec![0x82, 0x86, 0x84];
    literal(&mut block, b"Accept", b"*/*");
    raw.frame(0x1, 0x4 | 0x1, 1, &block).await;
    let (kind, _, stream, payload) = raw.next_on(1).await;
    assert_eq!((kind, stream, &payload[..]), (0x3, 1, &[0, 0, 0, 1][..]));
    // The connection goes on: a well-formed request on stream 3 is answered.
    let mut block = vec![0x82, 0x86];
    literal(&mut block, b":path", b"/healthz");
    raw.frame(0x1, 0x4 | 0x1, 3, &block).await;
    let (kind, _, stream, payload) = raw.next_on(3).await;
    assert_eq!(
        (kind, stream, payload[0]),
        (0x1, 3, 0x88),
        "HEADERS :status 200"
    );
}

#[tokio::test]
async fn data_on_stream_zero_is_a_connection_error() {
    let hub = start(anonymous).await;
    let mut raw = Raw::connect(hub.addr).await;
    raw.frame(0x0, 0x0, 0, b"x").await;
    let (_, _, _, payload) = raw.next_of(0x7).await; // GOAWAY
    assert_eq!(&payload[4..8], &[0, 0, 0, 1], "PROTOCOL_ERROR");
    let mut rest = Vec::new();
    let read = tokio::time::timeout(STEP, raw.tcp.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the hub closes the connection");
}

/// A literal field without indexing, with a new name, no Huffman coding (RFC 7541 §6.2.2).
fn literal(block: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    block.push(0x00);
    for text in [name, value] {
        let len = text.len();
        if len < 127 {
            block.push(len as u8);
        } else {
            block.push(127);
            let mut rest = len - 127;
            while rest >= 128 {
                block.push((rest % 128 + 128) as u8);
                rest /= 128;
            }
            block.push(rest as u8);
        }
        block.extend_from_slice(text);
    }
}

/// A client that writes and reads raw HTTP/2 frames.
struct Raw {
    tcp: TcpStream,
}

impl Raw {
    /// Connects and sends the preface and empty SETTINGS.
    async fn connect(addr: SocketAddr) -> Raw {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .expect("preface");
        let mut raw = Raw { tcp };
        raw.frame(0x4, 0x0, 0, &[]).await;
        raw
    }

    async fn frame(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        let len = u32::try_from(payload.len()).expect("length").to_be_bytes();
        let mut frame = vec![len[1], len[2], len[3], kind, flags];
        frame.extend_from_slice(&stream.to_be_bytes());
        frame.extend_from_slice(payload);
        self.tcp.write_all(&frame).await.expect("write");
    }

    /// The next frame: type, flags, stream and payload. SETTINGS are acknowledged.
    async fn next(&mut self) -> (u8, u8, u32, Vec<u8>) {
        let mut head = [0u8; 9];
        tokio::time::timeout(STEP, self.tcp.read_exact(&mut head))
            .await
            .expect("a frame in time")
            .expect("a frame");
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let mut payload = vec![0; len];
        self.tcp.read_exact(&mut payload).await.expect("payload");
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]);
        if head[3] == 0x4 && head[4] & 0x1 == 0 {
            self.frame(0x4, 0x1, 0, &[]).await;
        }
        (head[3], head[4], stream, payload)
    }

    /// The next frame of this type.
    async fn next_of(&mut self, kind: u8) -> (u8, u8, u32, Vec<u8>) {
        loop {
            let frame = self.next().await;
            if frame.0 == kind {
                return frame;
            }
        }
    }

    /// The next frame on this stream.
    async fn next_on(&mut self, stream: u32) -> (u8, u8, u32, Vec<u8>) {
        loop {
            let frame = self.next().await;
            if frame.2 == stream {
                return frame;
            }
        }
    }
}
