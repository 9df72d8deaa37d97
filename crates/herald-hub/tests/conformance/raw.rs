//! A client that writes HTTP/2 frames as given, right or wrong, over TCP (h2c with prior
//! knowledge) or TLS (ALPN `h2`), and reads what the hub answers frame by frame.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::STEP;

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Frame types.
pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const PRIORITY: u8 = 0x2;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PUSH_PROMISE: u8 = 0x5;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

/// Flags.
pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const PADDED: u8 = 0x8;
pub const PRIORITY_FLAG: u8 = 0x20;

/// Error codes.
pub const NO_ERROR: u32 = 0x0;
pub const PROTOCOL_ERROR: u32 = 0x1;
pub const FLOW_CONTROL_ERROR: u32 = 0x3;
pub const STREAM_CLOSED: u32 = 0x5;
pub const FRAME_SIZE_ERROR: u32 = 0x6;
pub const REFUSED_STREAM: u32 = 0x7;
pub const COMPRESSION_ERROR: u32 = 0x9;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

/// Settings.
pub const HEADER_TABLE_SIZE: u16 = 0x1;
pub const ENABLE_PUSH: u16 = 0x2;
pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
pub const MAX_FRAME_SIZE: u16 = 0x5;

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A frame the hub sent.
#[derive(Debug, Clone)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The error code of a RST_STREAM or GOAWAY frame.
    pub fn code(&self) -> u32 {
        let at = if self.kind == GOAWAY { 4 } else { 0 };
        u32::from_be_bytes(self.payload[at..at + 4].try_into().expect("code"))
    }
}

/// What reading the connection gave.
#[derive(Debug)]
pub enum Event {
    Frame(Frame),
    /// The hub closed the connection (or reset it).
    Closed,
}

pub struct Conn {
    pub io: Box<dyn Io>,
    /// The hub's settings, once received.
    pub settings: Vec<(u16, u32)>,
    /// Decodes the hub's header blocks (it indexes nothing, but a table costs nothing here).
    decoder: loona_hpack::Decoder<'static>,
}

impl Conn {
    /// A TCP connection that has sent nothing yet.
    pub async fn tcp(addr: SocketAddr) -> Conn {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        tcp.set_nodelay(true).expect("nodelay");
        Conn::over(Box::new(tcp))
    }

    /// A TLS connection that agreed on `h2` by ALPN and has sent nothing yet.
    pub async fn tls(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> Conn {
        let (tls, alpn) = crate::net::tls_connect(addr, config).await;
        assert_eq!(alpn.as_deref(), Some(&b"h2"[..]), "ALPN h2");
        Conn::over(Box::new(tls))
    }

    pub fn over(io: Box<dyn Io>) -> Conn {
        Conn {
            io,
            settings: Vec::new(),
            decoder: loona_hpack::Decoder::new(),
        }
    }

    /// Connects with prior knowledge and completes the handshake: the preface and `settings`
    /// sent, the hub's settings received and acknowledged, and ours acknowledged.
    pub async fn h2c(addr: SocketAddr, settings: &[(u16, u32)]) -> Conn {
        let mut conn = Conn::tcp(addr).await;
        conn.handshake(settings).await;
        conn
    }

    pub async fn handshake(&mut self, settings: &[(u16, u32)]) {
        self.send(PREFACE).await;
        self.settings(settings).await;
        let (mut theirs, mut ours) = (false, false);
        while !(theirs && ours) {
            let frame = self.frame().await;
            if frame.kind == SETTINGS {
                if frame.flags & ACK != 0 {
                    ours = true;
                } else {
                    theirs = true;
                }
            }
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.expect("write");
    }

    /// Writes a frame with any type, flags, stream and payload.
    pub async fn write(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        let bytes = frame(kind, flags, stream, payload);
        self.send(&bytes).await;
    }

    pub async fn settings(&mut self, settings: &[(u16, u32)]) {
        let payload: Vec<u8> = settings
            .iter()
            .flat_map(|(id, value)| id.to_be_bytes().into_iter().chain(value.to_be_bytes()))
            .collect();
        self.write(SETTINGS, 0, 0, &payload).await;
    }

    pub async fn ping(&mut self, data: &[u8; 8]) {
        self.write(PING, 0, 0, data).await;
    }

    pub async fn window_update(&mut self, stream: u32, increment: u32) {
        self.write(WINDOW_UPDATE, 0, stream, &increment.to_be_bytes())
            .await;
    }

    pub async fn rst(&mut self, stream: u32, code: u32) {
        self.write(RST_STREAM, 0, stream, &code.to_be_bytes()).await;
    }

    /// A request's header block in one HEADERS frame.
    pub async fn request(&mut self, stream: u32, fields: &[(&str, &str)], end_stream: bool) {
        let flags = END_HEADERS | if end_stream { END_STREAM } else { 0 };
        self.write(HEADERS, flags, stream, &block(fields)).await;
    }

    /// A `GET` of `path` (ending the stream).
    pub async fn get(&mut self, stream: u32, path: &str) {
        self.request(stream, &get(path), true).await;
    }

    /// The next event, within [`STEP`]. The hub's SETTINGS are acknowledged as they come.
    pub async fn event(&mut self) -> Event {
        self.event_within(STEP)
            .await
            .expect("a frame or the end of the connection in time")
    }

    /// The next event within `wait`, or `None`.
    pub async fn event_within(&mut self, wait: Duration) -> Option<Event> {
        let mut head = [0u8; 9];
        match tokio::time::timeout(wait, self.io.read_exact(&mut head)).await {
            Err(_) => return None,
            Ok(Err(_)) => return Some(Event::Closed),
            Ok(Ok(_)) => {}
        }
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let mut payload = vec![0; len];
        if tokio::time::timeout(STEP, self.io.read_exact(&mut payload))
            .await
            .expect("a frame's payload in time")
            .is_err()
        {
            return Some(Event::Closed);
        }
        let frame = Frame {
            kind: head[3],
            flags: head[4],
            stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
            payload,
        };
        if frame.kind == SETTINGS && frame.flags & ACK == 0 {
            self.settings = frame
                .payload
                .chunks_exact(6)
                .map(|e| {
                    (
                        u16::from_be_bytes([e[0], e[1]]),
                        u32::from_be_bytes([e[2], e[3], e[4], e[5]]),
                    )
                })
                .collect();
            // The hub may be closing: a failed write shows in what is read next.
            let _ = self.io.write_all(&frame_bytes(SETTINGS, ACK, 0, &[])).await;
        }
        Some(Event::Frame(frame))
    }

    /// The next frame; the connection must not end first.
    pub async fn frame(&mut self) -> Frame {
        match self.event().await {
            Event::Frame(frame) => frame,
            Event::Closed => panic!("the hub closed the connection"),
        }
    }

    /// A connection error: `GOAWAY` with `code` (after any other frames), then the end of the
    /// connection.
    pub async fn expect_goaway(&mut self, code: u32) {
        loop {
            match self.event().await {
                Event::Frame(frame) if frame.kind == GOAWAY => {
                    assert_eq!(frame.code(), code, "GOAWAY's error code");
                    break;
                }
                Event::Frame(frame) => {
                    assert_ne!(
                        frame.kind, RST_STREAM,
                        "a RST_STREAM before GOAWAY: {frame:?}"
                    );
                }
                Event::Closed => panic!("closed without GOAWAY({code:#x})"),
            }
        }
        self.expect_closed().await;
    }

    /// The end of the connection (anything sent before it is skipped).
    pub async fn expect_closed(&mut self) {
        while let Event::Frame(_) = self.event().await {}
    }

    /// A stream error: RST_STREAM on `stream` with `code`; the connection goes on.
    pub async fn expect_reset(&mut self, stream: u32, code: u32) {
        loop {
            let frame = self.frame().await;
            assert_ne!(frame.kind, GOAWAY, "a connection error: {frame:?}");
            if frame.kind == RST_STREAM && frame.stream == stream {
                assert_eq!(frame.code(), code, "RST_STREAM's error code on {stream}");
                return;
            }
        }
    }

    /// The response head on `stream`: its fields, and whether it ended the stream. A reset of
    /// that stream or a connection error fails.
    pub async fn expect_headers(&mut self, stream: u32) -> (Vec<(String, String)>, bool) {
        loop {
            let frame = self.frame().await;
            assert_ne!(frame.kind, GOAWAY, "a connection error: {frame:?}");
            if frame.stream != stream {
                continue;
            }
            assert_ne!(frame.kind, RST_STREAM, "stream {stream} reset: {frame:?}");
            if frame.kind == HEADERS {
                assert!(frame.flags & END_HEADERS != 0, "one frame for the head");
                let fields = self
                    .decoder
                    .decode(&frame.payload)
                    .expect("a valid HPACK block")
                    .into_iter()
                    .map(|(n, v)| {
                        (
                            String::from_utf8(n).expect("name"),
                            String::from_utf8(v).expect("value"),
                        )
                    })
                    .collect();
                return (fields, frame.flags & END_STREAM != 0);
            }
        }
    }

    /// The status of the response on `stream`.
    pub async fn expect_status(&mut self, stream: u32) -> u16 {
        let (fields, _) = self.expect_headers(stream).await;
        status(&fields)
    }

    /// The next DATA frame on `stream`.
    pub async fn expect_data(&mut self, stream: u32) -> Frame {
        loop {
            let frame = self.frame().await;
            assert_ne!(frame.kind, GOAWAY, "a connection error: {frame:?}");
            assert!(
                !(frame.kind == RST_STREAM && frame.stream == stream),
                "stream {stream} reset: {frame:?}"
            );
            if frame.kind == DATA && frame.stream == stream {
                return frame;
            }
        }
    }

    /// A PING answered: the connection is alive, and nothing sent before the answer was a
    /// reset of a stream or the connection's end.
    pub async fn expect_alive(&mut self) {
        self.ping(b"alive?!!").await;
        loop {
            let frame = self.frame().await;
            assert!(
                frame.kind != GOAWAY && frame.kind != RST_STREAM,
                "an error before the PING's answer: {frame:?}"
            );
            if frame.kind == PING && frame.flags & ACK != 0 && frame.payload == b"alive?!!" {
                return;
            }
        }
    }

    /// Nothing but `kind` frames (if any) within `wait`.
    pub async fn expect_nothing_but(&mut self, kinds: &[u8], wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.event_within(left).await {
                None => return,
                Some(Event::Frame(frame)) => {
                    assert!(kinds.contains(&frame.kind), "unexpected {frame:?}")
                }
                Some(Event::Closed) => panic!("the connection closed"),
            }
        }
    }
}

fn frame_bytes(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    frame(kind, flags, stream, payload)
}

/// A frame's bytes.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("length").to_be_bytes();
    let mut frame = vec![len[1], len[2], len[3], kind, flags];
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// The fields of a `GET` of `path` over plain HTTP.
pub fn get(path: &str) -> Vec<(&str, &str)> {
    vec![
        (":method", "GET"),
        (":scheme", "http"),
        (":authority", "localhost"),
        (":path", path),
    ]
}

/// A header block of literal fields without indexing, new names, no Huffman coding.
pub fn block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in fields {
        literal(&mut block, 0x00, name.as_bytes(), value.as_bytes());
    }
    block
}

/// A literal field with a new name: `first` is 0x00 (without indexing), 0x40 (with
/// incremental indexing) or 0x10 (never indexed).
pub fn literal(block: &mut Vec<u8>, first: u8, name: &[u8], value: &[u8]) {
    block.push(first);
    string(block, name);
    string(block, value);
}

/// A string literal without Huffman coding.
pub fn string(block: &mut Vec<u8>, text: &[u8]) {
    integer(block, text.len(), 7, 0);
    block.extend_from_slice(text);
}

/// An HPACK integer with a `prefix`-bit prefix.
pub fn integer(block: &mut Vec<u8>, mut value: usize, prefix: u32, flags: u8) {
    let max = (1usize << prefix) - 1;
    if value < max {
        block.push(flags | value as u8);
        return;
    }
    block.push(flags | max as u8);
    value -= max;
    while value >= 128 {
        block.push((value % 128 + 128) as u8);
        value /= 128;
    }
    block.push(value as u8);
}

/// The `:status` of a head.
pub fn status(fields: &[(String, String)]) -> u16 {
    fields
        .iter()
        .find(|(n, _)| n == ":status")
        .and_then(|(_, v)| v.parse().ok())
        .expect(":status")
}
