//! Receiving: what each frame a client sends does to the connection and its streams (RFC 9113
//! §6), and a complete header block made into a request for the router.

use std::borrow::Cow;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{Method, StatusCode};
use tower::Service;

use super::frame::{
    DEFAULT_MAX_FRAME, DEFAULT_WINDOW, Head, MAX_WINDOW, Reason, flag, kind, setting,
};
use super::inbound::Inbound;
use super::message::{Malformed, RequestHead};
use super::{
    Block, Connection, ConnectionError, Handler, MAX_CONCURRENT_STREAMS, MAX_EARLY_RESETS,
    PING_PAYLOAD, Sending, Stream,
};

impl<I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> Connection<'_, I> {
    pub(super) fn frame(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnectionError> {
        use ConnectionError as E;
        if let Some(block) = &self.block
            && (head.kind != kind::CONTINUATION || head.stream != block.stream)
        {
            return Err(E(Reason::ProtocolError, "a header block was interrupted"));
        }
        let on_connection = head.stream == 0;
        match head.kind {
            kind::DATA if on_connection => Err(E(Reason::ProtocolError, "DATA on stream 0")),
            kind::DATA => self.data(head, payload),
            kind::HEADERS if on_connection => Err(E(Reason::ProtocolError, "HEADERS on stream 0")),
            kind::HEADERS => self.headers(head, payload),
            kind::CONTINUATION => {
                let Some(block) = &mut self.block else {
                    return Err(E(Reason::ProtocolError, "CONTINUATION without HEADERS"));
                };
                block.bytes.extend_from_slice(payload);
                if block.bytes.len() > 2 * self.head_limit {
                    return Err(E(Reason::EnhanceYourCalm, "a header block too large"));
                }
                if head.flags & flag::END_HEADERS != 0
                    && let Some(block) = self.block.take()
                {
                    self.request(block)?;
                }
                Ok(())
            }
            kind::PRIORITY if on_connection => {
                Err(E(Reason::ProtocolError, "PRIORITY on stream 0"))
            }
            // A stream error, but on an idle stream RST_STREAM cannot be sent (§6.4): there the
            // error is the connection's.
            kind::PRIORITY if payload.len() != 5 && self.idle(head.stream) => {
                Err(E(Reason::FrameSizeError, "PRIORITY of the wrong size"))
            }
            kind::PRIORITY if payload.len() != 5 => {
                self.reset(head.stream, Reason::FrameSizeError);
                Ok(())
            }
            kind::PRIORITY => {
                // Priorities are not acted on, but a stream cannot depend on itself (§5.3.1).
                if dependency(payload) != head.stream || self.ignored(head.stream) {
                    return Ok(());
                }
                if self.idle(head.stream) {
                    return Err(E(Reason::ProtocolError, "a stream depending on itself"));
                }
                self.reset(head.stream, Reason::ProtocolError);
                Ok(())
            }
            kind::RST_STREAM if on_connection || self.idle(head.stream) => {
                Err(E(Reason::ProtocolError, "RST_STREAM on an idle stream"))
            }
            kind::RST_STREAM if payload.len() != 4 => {
                Err(E(Reason::FrameSizeError, "RST_STREAM of the wrong size"))
            }
            kind::RST_STREAM => {
                self.cancel(head.stream);
                Ok(())
            }
            kind::SETTINGS => self.settings(head, payload),
            kind::PUSH_PROMISE => Err(E(Reason::ProtocolError, "a client sent PUSH_PROMISE")),
            kind::PING if !on_connection => Err(E(Reason::ProtocolError, "PING on a stream")),
            kind::PING if payload.len() != 8 => {
                Err(E(Reason::FrameSizeError, "PING of the wrong size"))
            }
            kind::PING if head.flags & flag::ACK != 0 => {
                if payload == PING_PAYLOAD {
                    self.ping_sent = false;
                }
                Ok(())
            }
            kind::PING => {
                self.out.frame(kind::PING, flag::ACK, 0, payload);
                Ok(())
            }
            kind::GOAWAY if !on_connection => Err(E(Reason::ProtocolError, "GOAWAY on a stream")),
            kind::GOAWAY if payload.len() < 8 => Err(E(Reason::FrameSizeError, "GOAWAY too short")),
            kind::GOAWAY => {
                // The client opens no more streams; the open ones finish.
                self.go_away(Reason::NoError);
                Ok(())
            }
            kind::WINDOW_UPDATE => self.window_update(head, payload),
            // Unknown frame types are ignored (RFC 9113 §4.1).
            _ => Ok(()),
        }
    }

    fn settings(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnectionError> {
        use ConnectionError as E;
        if head.stream != 0 {
            return Err(E(Reason::ProtocolError, "SETTINGS on a stream"));
        }
        if head.flags & flag::ACK != 0 {
            if !payload.is_empty() {
                return Err(E(Reason::FrameSizeError, "a SETTINGS ACK with a payload"));
            }
            // The client knows the table's limit is zero: a size update past it is an error
            // from now on, and its next block must start by emptying the table (RFC 7541
            // §4.2). A table that earlier blocks filled can therefore go now (an idle
            // connection then keeps none); an empty one costs nothing and keeps the size the
            // client's encoder assumes until it signals the change, which some encoders
            // never do.
            if self.last_stream == 0 {
                self.hpack.set_max_allowed_table_size(0);
            } else {
                let mut hpack = loona_hpack::Decoder::new();
                hpack.set_max_allowed_table_size(0);
                hpack.set_max_table_size(0);
                self.hpack = hpack;
            }
            return Ok(());
        }
        if !payload.len().is_multiple_of(6) {
            return Err(E(Reason::FrameSizeError, "SETTINGS of the wrong size"));
        }
        for entry in payload.chunks_exact(6) {
            let id = u16::from_be_bytes([entry[0], entry[1]]);
            let value = u32::from_be_bytes([entry[2], entry[3], entry[4], entry[5]]);
            match id {
                setting::ENABLE_PUSH if value > 1 => {
                    return Err(E(Reason::ProtocolError, "ENABLE_PUSH neither 0 nor 1"));
                }
                setting::INITIAL_WINDOW_SIZE => {
                    let value = i64::from(value);
                    if value > MAX_WINDOW {
                        return Err(E(Reason::FlowControlError, "INITIAL_WINDOW_SIZE too large"));
                    }
                    let delta = value - self.peer_window;
                    self.peer_window = value;
                    for stream in &mut self.streams {
                        if matches!(stream.sending, Sending::Reset) {
                            continue;
                        }
                        stream.send_window += delta;
                        if stream.send_window > MAX_WINDOW {
                            return Err(E(Reason::FlowControlError, "a window overflowed"));
                        }
                    }
                }
                setting::MAX_FRAME_SIZE => {
                    if !(DEFAULT_MAX_FRAME..=(1 << 24) - 1).contains(&value) {
                        return Err(E(Reason::ProtocolError, "MAX_FRAME_SIZE out of range"));
                    }
                    self.peer_max_frame = value as usize;
                }
                // The hub's encoder uses no table, and pushes nothing: nothing to change.
                _ => {}
            }
        }
        self.out.frame(kind::SETTINGS, flag::ACK, 0, &[]);
        Ok(())
    }

    fn window_update(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnectionError> {
        use ConnectionError as E;
        let Ok(bytes) = <[u8; 4]>::try_from(payload) else {
            return Err(E(Reason::FrameSizeError, "WINDOW_UPDATE of the wrong size"));
        };
        let increment = i64::from(u32::from_be_bytes(bytes) & 0x7fff_ffff);
        if head.stream == 0 {
            if increment == 0 {
                return Err(E(Reason::ProtocolError, "a WINDOW_UPDATE of zero"));
            }
            self.send_window += increment;
            if self.send_window > MAX_WINDOW {
                return Err(E(
                    Reason::FlowControlError,
                    "the connection window overflowed",
                ));
            }
            return Ok(());
        }
        if self.idle(head.stream) {
            return Err(E(Reason::ProtocolError, "WINDOW_UPDATE on an idle stream"));
        }
        let id = head.stream;
        if self.ignored(id) {
            return Ok(());
        }
        if increment == 0 {
            // A stream error whatever the stream's state (§6.9).
            self.reset(id, Reason::ProtocolError);
            return Ok(());
        }
        let Some(stream) = self.stream(id) else {
            return Ok(()); // a closed stream: the client may not know yet
        };
        stream.send_window += increment;
        if stream.send_window > MAX_WINDOW {
            self.reset(id, Reason::FlowControlError);
        }
        Ok(())
    }

    fn data(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnectionError> {
        use ConnectionError as E;
        let data = unpad(head, payload, 0)?;
        let len = payload.len();
        self.recv_window -= len as i64;
        if self.recv_window < 0 {
            return Err(E(
                Reason::FlowControlError,
                "the connection window was exceeded",
            ));
        }
        // Padding is given back at once.
        self.recv_credit += len - data.len();
        let id = head.stream;
        if self.idle(id) {
            return Err(E(Reason::ProtocolError, "DATA on an idle stream"));
        }
        let end = head.flags & flag::END_STREAM != 0;
        if self.ignored(id) {
            self.recv_credit += data.len();
            if end {
                self.forget(id);
            }
            return Ok(());
        }
        let Some(stream) = self.stream(id).filter(|s| !s.recv_closed) else {
            // Half-closed (remote) or closed: a stream error (§5.1).
            self.recv_credit += data.len();
            self.reset(id, Reason::StreamClosed);
            return Ok(());
        };
        stream.recv_window -= len as i64;
        stream.received += data.len() as u64;
        let too_long = stream.expected.is_some_and(|n| stream.received > n);
        let too_short = end && stream.expected.is_some_and(|n| stream.received != n);
        if stream.recv_window < 0 || too_long || too_short {
            let reason = if stream.recv_window < 0 {
                Reason::FlowControlError
            } else {
                Reason::ProtocolError
            };
            // The client's side ends here if this frame ended it: nothing more to ignore.
            stream.recv_closed |= end;
            self.recv_credit += data.len();
            self.reset(id, reason);
            return Ok(());
        }
        let mut discarded = 0;
        match &stream.inbound {
            Some(inbound) if !inbound.abandoned() => {
                if !data.is_empty() {
                    stream.buffered += data.len();
                    inbound.push(Bytes::copy_from_slice(data));
                }
                if end {
                    inbound.end();
                }
            }
            // Nobody reads the body: what arrives is given back at once.
            _ => {
                discarded = data.len();
                stream.recv_credit += data.len();
            }
        }
        if end {
            stream.recv_closed = true;
        }
        self.recv_credit += discarded;
        Ok(())
    }

    fn headers(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnectionError> {
        use ConnectionError as E;
        let id = head.stream;
        if id.is_multiple_of(2) {
            return Err(E(Reason::ProtocolError, "a stream with an even number"));
        }
        let priority = head.flags & flag::PRIORITY != 0;
        let mut fragment = unpad(head, payload, if priority { 5 } else { 0 })?;
        // Decoded whatever happens to the stream, so that the compression state stays in step;
        // a stream error resets the stream once the block is complete.
        let mut reset = None;
        if priority {
            if dependency(fragment) == id {
                reset = Some(Reason::ProtocolError); // a stream cannot depend on itself
            }
            fragment = &fragment[5..];
        }
        let end_stream = head.flags & flag::END_STREAM != 0;
        if self.idle(id) {
            self.last_stream = id;
        } else {
            let newest = self.last_stream;
            match self.stream(id) {
                // Reset by the hub: decoded (for the compression state) and ignored.
                Some(stream) if matches!(stream.sending, Sending::Reset) => {}
                // Trailers end a request: without END_STREAM the request is malformed (§8.1).
                Some(stream) if !stream.recv_closed => {
                    if !end_stream {
                        reset = Some(Reason::ProtocolError);
                    }
                }
                // Half-closed (remote): the client already ended its request (§5.1).
                Some(_) => reset = Some(Reason::StreamClosed),
                None if id < newest => {
                    return Err(E(
                        Reason::ProtocolError,
                        "HEADERS on a stream below the newest one, not open",
                    ));
                }
                None => return Err(E(Reason::StreamClosed, "HEADERS on a closed stream")),
            }
        }
        let block = Block {
            stream: id,
            end_stream,
            reset,
            bytes: fragment.to_vec(),
        };
        if head.flags & flag::END_HEADERS != 0 {
            self.request(block)
        } else {
            self.block = Some(block);
            Ok(())
        }
    }

    /// A complete header block: a new request, or a request body's trailers.
    fn request(&mut self, block: Block) -> Result<(), ConnectionError> {
        let id = block.stream;
        let trailers = self.streams.iter().any(|s| s.id == id);
        let mut head = if trailers {
            RequestHead::trailers()
        } else {
            RequestHead::default()
        };
        let limit = self.head_limit;
        self.hpack
            .decode_with_cb(&block.bytes, |name: Cow<'_, [u8]>, value: Cow<'_, [u8]>| {
                head.field(&name, &value, limit);
            })
            .map_err(|_| {
                ConnectionError(Reason::CompressionError, "an undecodable header block")
            })?;
        if let Some(reason) = block.reset {
            self.reset(id, reason);
            return Ok(());
        }
        if trailers {
            if self.ignored(id) {
                if block.end_stream {
                    self.forget(id);
                }
            } else {
                self.trailers(id, &head);
            }
            return Ok(());
        }
        let open = (self.streams.iter())
            .filter(|s| !matches!(s.sending, Sending::Reset))
            .count();
        if self.going_away || open >= MAX_CONCURRENT_STREAMS as usize {
            self.out.reset(id, Reason::RefusedStream);
            return Ok(());
        }
        let handler: Handler;
        let (mut inbound, mut expected, mut head_only) = (None, None, false);
        if head.too_large() {
            handler = Box::pin(std::future::ready(Ok(too_large())));
        } else {
            let request = match head.request() {
                Ok(request) => request,
                Err(Malformed(why)) => {
                    tracing::debug!(why, "malformed HTTP/2 request");
                    self.out.reset(id, Reason::ProtocolError);
                    return Ok(());
                }
            };
            // Every content-length the same number, and no body announced on a request that
            // has none (§8.1.1).
            let mut lengths = request
                .headers()
                .get_all(http::header::CONTENT_LENGTH)
                .iter()
                .map(|v| v.to_str().ok().and_then(|v| v.parse::<u64>().ok()));
            expected = match lengths.next() {
                None => None,
                Some(first) => match first.filter(|n| lengths.all(|other| other == Some(*n))) {
                    Some(length) if !block.end_stream || length == 0 => Some(length),
                    _ => {
                        self.out.reset(id, Reason::ProtocolError);
                        return Ok(());
                    }
                },
            };
            head_only = request.method() == Method::HEAD;
            let body = if block.end_stream {
                Body::empty()
            } else {
                let continues = request
                    .headers()
                    .get(http::header::EXPECT)
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
                let (sender, body) = Inbound::new(expected, continues);
                inbound = Some(sender);
                Body::new(body)
            };
            let mut request = request.map(|()| body);
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(self.peer));
            handler = Box::pin(self.router.clone().call(request));
        }
        if self.streams.capacity() == 0 {
            // Most connections carry one stream: do not reserve room for four.
            self.streams.reserve_exact(1);
        }
        self.streams.push(Stream {
            id,
            sending: Sending::Handler(handler),
            head_only,
            send_window: self.peer_window,
            inbound,
            recv_window: DEFAULT_WINDOW,
            recv_credit: 0,
            buffered: 0,
            expected,
            received: 0,
            recv_closed: block.end_stream,
        });
        Ok(())
    }

    /// Trailers that end the request on stream `id` (their fields are not passed on): a
    /// malformed list, or a body shorter than its announced length, resets the stream.
    fn trailers(&mut self, id: u32, head: &RequestHead) {
        if let Some(why) = head.malformed() {
            tracing::debug!(why, "malformed HTTP/2 trailers");
        }
        let Some(stream) = self.stream(id) else {
            return;
        };
        let short = stream.expected.is_some_and(|n| stream.received != n);
        stream.recv_closed = true;
        if short || head.malformed().is_some() {
            self.reset(id, Reason::ProtocolError);
            return;
        }
        if let Some(inbound) = &stream.inbound {
            inbound.end();
        }
    }

    /// The client reset stream `id`.
    fn cancel(&mut self, id: u32) {
        let Some(place) = self.streams.iter().position(|s| s.id == id) else {
            return;
        };
        let stream = self.streams.swap_remove(place);
        self.recv_credit += stream.buffered;
        if let Some(inbound) = &stream.inbound {
            inbound.fail("the client reset the stream");
        }
        if matches!(stream.sending, Sending::Handler(_)) {
            self.early_resets += 1;
            if self.early_resets > MAX_EARLY_RESETS {
                self.fail(Reason::EnhanceYourCalm);
            }
        }
    }

    /// Resets stream `id` with `reason`. If the client may still be sending on it, the stream
    /// is kept as reset, so that what it already sent is ignored rather than taken for an
    /// error (§5.1).
    fn reset(&mut self, id: u32, reason: Reason) {
        self.out.reset(id, reason);
        let Some(place) = self.streams.iter().position(|s| s.id == id) else {
            return;
        };
        let stream = &mut self.streams[place];
        self.recv_credit += std::mem::take(&mut stream.buffered);
        if let Some(inbound) = stream.inbound.take() {
            inbound.fail("the stream was reset");
        }
        if stream.recv_closed {
            self.streams.swap_remove(place);
        } else {
            stream.sending = Sending::Reset;
            self.forget_resets();
        }
    }

    /// Whether the hub reset stream `id` and ignores what still arrives on it.
    fn ignored(&self, id: u32) -> bool {
        self.streams
            .iter()
            .any(|s| s.id == id && matches!(s.sending, Sending::Reset))
    }

    /// Forgets stream `id`, reset by the hub, now that the client ended or reset it.
    fn forget(&mut self, id: u32) {
        self.streams
            .retain(|s| s.id != id || !matches!(s.sending, Sending::Reset));
    }
}

/// The payload of a DATA or HEADERS frame without its padding; `fixed` is the length of the
/// fields that follow the pad length and that the padding cannot take (a priority's five).
fn unpad(head: Head, payload: &[u8], fixed: usize) -> Result<&[u8], ConnectionError> {
    let (pad, rest) = if head.flags & flag::PADDED == 0 {
        (0, payload)
    } else {
        let (&pad, rest) = payload.split_first().ok_or(ConnectionError(
            Reason::FrameSizeError,
            "a padded frame without its length",
        ))?;
        (usize::from(pad), rest)
    };
    let room = rest.len().checked_sub(fixed).ok_or(ConnectionError(
        Reason::FrameSizeError,
        "a frame too short for its fields",
    ))?;
    if pad > room {
        return Err(ConnectionError(
            Reason::ProtocolError,
            "padding longer than the frame",
        ));
    }
    Ok(&rest[..rest.len() - pad])
}

/// The stream a PRIORITY frame's payload, or a HEADERS frame's priority fields, depend on.
fn dependency(fields: &[u8]) -> u32 {
    fields.get(..4).map_or(0, |b| {
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x7fff_ffff
    })
}

/// The answer to a request whose header list is over the limit.
fn too_large() -> Response {
    let mut response = Response::new(Body::from("the request's header fields are too large\n"));
    *response.status_mut() = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
    response
}
