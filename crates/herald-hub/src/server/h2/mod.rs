//! A lean HTTP/2 server for the hub's connections (h2 over TLS, chosen by ALPN, and h2c with
//! prior knowledge). Browsers reach a hub over HTTP/2 so that their tabs are not capped at six
//! connections per host, and a hub holds those connections idle for hours. hyper's HTTP/2 keeps
//! a 16 KiB write buffer and an 8 KiB read buffer per connection from the start, an HPACK table
//! per direction, and a task per stream: about 27 KB for one idle subscription, where the
//! HTTP/1.1 lean path (`super::lean`) holds 3 KB (see `crates/herald-hub/PERFORMANCE.md`).
//!
//! Here a connection is one task that reads frames into a buffer freed whenever no partial frame
//! waits, writes frames from a queue freed once written (the events' shared bytes are never
//! copied), decodes request headers with a dynamic table that is emptied once the client has
//! acknowledged the hub's size of zero, and encodes responses without one. Every request, of
//! whatever kind, runs through the same axum router as on HTTP/1.1 (limits, CORS,
//! authorization, metrics); its handler and its response body are polled by the connection's
//! task. Flow control is kept both ways: a request body is given window as the handler reads
//! it, and a response waits for the client's window. Graceful shutdown sends `GOAWAY` and lets
//! the open streams end; a client that stops answering keep-alive pings is dropped.
//!
//! Files: `frame` (the frame header, codes and the output queue), `receive` (what each frame
//! does), `message` (header lists to requests, responses to header blocks), `inbound` (request
//! bodies); here, the connection's loop, its streams' handlers and bodies, and keep-alive.

mod frame;
mod inbound;
mod message;
mod receive;

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use http_body::Body as _;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use frame::{DEFAULT_MAX_FRAME, DEFAULT_WINDOW, HEADER_LEN, Head, Output, Reason, kind, setting};
use inbound::Inbound;

pub(crate) use frame::PREFACE;

/// Streams a client may have open at once (hyper's default); more are refused.
const MAX_CONCURRENT_STREAMS: u32 = 200;
/// Bytes read from the socket at once.
const READ_SIZE: usize = 8192;
/// Output waiting to be written past which the connection stops reading frames and polling
/// bodies until the client reads.
const OUTPUT_HIGH: usize = 64 * 1024;
/// A ping is sent after this long without a frame from the client (as hyper was configured).
const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// How long the answer to a keep-alive ping may take before the connection is closed.
const PING_TIMEOUT: Duration = Duration::from_secs(20);
/// The keep-alive ping's payload.
const PING_PAYLOAD: [u8; 8] = *b"herald:)";
/// Streams a client may reset before they were answered; past that it is told to calm down
/// (`GOAWAY` with `ENHANCE_YOUR_CALM`), as a rapid-reset flood would.
const MAX_EARLY_RESETS: u32 = 100;
/// The decoder's table size before the client acknowledged the hub's settings.
const DEFAULT_TABLE: usize = 4096;
/// Streams reset by the hub whose client may still be sending, kept to ignore what arrives;
/// past that many the oldest is forgotten (its late frames are then errors).
const MAX_RESET_KEPT: usize = 8;

/// Serves an HTTP/2 connection whose first bytes are the client preface, until it ends, or
/// gracefully once `stopped` turns true. Each request carries the client's address `peer`
/// (`ConnectInfo`); `head_limit` bounds a request's header list.
pub(crate) async fn serve<I>(
    io: I,
    peer: std::net::SocketAddr,
    router: &axum::Router,
    stopped: &mut watch::Receiver<bool>,
    head_limit: usize,
) where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let mut connection = Connection::new(io, peer, router, head_limit);
    loop {
        let going_away = connection.going_away;
        let result = tokio::select! {
            result = poll_fn(|cx| connection.poll(cx)) => result,
            _ = stopped.wait_for(|stop| *stop), if !going_away => {
                connection.go_away(Reason::NoError);
                continue;
            }
        };
        if let Err(error) = result {
            tracing::debug!(%error, "HTTP/2 connection ended with an error");
        }
        return;
    }
}

/// A connection error: `GOAWAY` with this reason, then close.
#[derive(Debug)]
struct ConnectionError(Reason, &'static str);

type Handler = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// Where a stream's response is.
enum Sending {
    /// The handler is running.
    Handler(Handler),
    /// The head is sent and the body streams; `chunk` is data taken from the body that the
    /// flow-control window has not let out yet.
    Body { body: Body, chunk: Option<Bytes> },
    /// The response is sent whole.
    Done,
    /// The hub reset the stream while the client was still sending on it: what it had sent
    /// already is ignored (RFC 9113 §5.1) until it ends its side, resets the stream, or the
    /// connection is quiet for a keep-alive period.
    Reset,
}

/// A stream the client opened.
struct Stream {
    id: u32,
    sending: Sending,
    /// The HEAD method: the head alone is sent.
    head_only: bool,
    /// What the client lets the hub send on this stream.
    send_window: i64,
    /// The request body, while there may be one.
    inbound: Option<Inbound>,
    /// What the client may still send on this stream.
    recv_window: i64,
    /// Request body bytes the handler read and the client was not yet given back.
    recv_credit: usize,
    /// Request body bytes pushed to the handler and not read yet.
    buffered: usize,
    /// The body's announced length, and what arrived of it.
    expected: Option<u64>,
    received: u64,
    /// The client sent the end of its request.
    recv_closed: bool,
}

/// How far the client's connection preface is (§3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Preface {
    /// Its fixed bytes are awaited.
    Waiting,
    /// They came: the next frame must be SETTINGS.
    Settings,
    /// Complete.
    Done,
}

/// A header block being received (HEADERS, then CONTINUATION frames).
struct Block {
    stream: u32,
    end_stream: bool,
    /// A stream error found in the first frame: the stream is reset once the block is
    /// decoded (it must be, for the compression state).
    reset: Option<Reason>,
    bytes: Vec<u8>,
}

struct Connection<'r, I> {
    io: I,
    peer: std::net::SocketAddr,
    router: &'r axum::Router,
    head_limit: usize,
    /// Bytes read and not yet processed: empty (and unallocated) unless a frame is partial.
    input: BytesMut,
    preface: Preface,
    out: Output,
    hpack: loona_hpack::Decoder<'static>,
    block: Option<Block>,
    streams: Vec<Stream>,
    /// The highest stream the client opened.
    last_stream: u32,
    /// The client's settings.
    peer_window: i64,
    peer_max_frame: usize,
    /// What the client lets the hub send on the connection.
    send_window: i64,
    /// What the client may still send on the connection, and what it was not given back yet.
    recv_window: i64,
    recv_credit: usize,
    early_resets: u32,
    /// `GOAWAY` sent: no new streams; the connection closes once the open ones end.
    going_away: bool,
    /// Nothing more is read (a connection error, or the client left).
    read_closed: bool,
    keep_alive: Option<Pin<Box<Sleep>>>,
    last_frame: Instant,
    ping_sent: bool,
}

impl<'r, I: AsyncRead + AsyncWrite + Unpin> Connection<'r, I> {
    fn new(io: I, peer: std::net::SocketAddr, router: &'r axum::Router, head_limit: usize) -> Self {
        let mut hpack = loona_hpack::Decoder::new();
        hpack.set_max_allowed_table_size(DEFAULT_TABLE);
        let mut out = Output::default();
        out.settings(&[
            (setting::HEADER_TABLE_SIZE, 0),
            (setting::MAX_CONCURRENT_STREAMS, MAX_CONCURRENT_STREAMS),
            (
                setting::MAX_HEADER_LIST_SIZE,
                u32::try_from(head_limit).unwrap_or(u32::MAX),
            ),
        ]);
        Connection {
            io,
            peer,
            router,
            head_limit,
            input: BytesMut::new(),
            preface: Preface::Waiting,
            out,
            hpack,
            block: None,
            streams: Vec::new(),
            last_stream: 0,
            peer_window: DEFAULT_WINDOW,
            peer_max_frame: DEFAULT_MAX_FRAME as usize,
            send_window: DEFAULT_WINDOW,
            recv_window: DEFAULT_WINDOW,
            recv_credit: 0,
            early_resets: 0,
            going_away: false,
            read_closed: false,
            keep_alive: None,
            last_frame: Instant::now(),
            ping_sent: false,
        }
    }

    /// Drives the connection; ready once it is over.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let mut progress = false;
            if !self.read_closed && self.out.queued() < OUTPUT_HIGH {
                match self.poll_read(cx) {
                    Ok(read) => progress |= read,
                    Err(ConnectionError(reason, why)) => {
                        tracing::debug!(why, ?reason, "HTTP/2 connection error");
                        self.fail(reason);
                        progress = true;
                    }
                }
            }
            progress |= self.poll_handlers(cx);
            progress |= self.poll_bodies(cx);
            self.give_back(cx);
            self.poll_keep_alive(cx)?;
            let written = self.out.poll_write(&mut self.io, cx)?;
            if written.is_ready() {
                if self.read_closed || (self.going_away && self.streams.is_empty()) {
                    return Pin::new(&mut self.io).poll_shutdown(cx);
                }
                if Pin::new(&mut self.io).poll_flush(cx)?.is_pending() {
                    return Poll::Pending;
                }
            }
            if !progress {
                return Poll::Pending;
            }
        }
    }

    /// Sends `GOAWAY`: no new stream is accepted, and the connection closes once the open
    /// ones end.
    fn go_away(&mut self, reason: Reason) {
        if !self.going_away {
            self.going_away = true;
            self.out.goaway(self.last_stream, reason);
        }
    }

    /// A connection error: `GOAWAY`, every stream dropped, nothing more read.
    fn fail(&mut self, reason: Reason) {
        self.go_away(reason);
        self.read_closed = true;
        for stream in self.streams.drain(..) {
            if let Some(inbound) = stream.inbound {
                inbound.fail("the connection failed");
            }
        }
    }

    /// Reads what the socket has and processes every complete frame; whether anything was read.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Result<bool, ConnectionError> {
        let mut buf = [0u8; READ_SIZE];
        let mut read = ReadBuf::new(&mut buf);
        match Pin::new(&mut self.io).poll_read(cx, &mut read) {
            Poll::Pending => return Ok(false),
            Poll::Ready(Err(error)) => {
                tracing::debug!(%error, "HTTP/2 connection read failed");
                self.read_closed = true;
                self.streams.clear();
                return Ok(true);
            }
            Poll::Ready(Ok(())) => {}
        }
        if read.filled().is_empty() {
            // The client left: its streams end with it.
            self.read_closed = true;
            self.streams.clear();
            return Ok(true);
        }
        self.last_frame = Instant::now();
        if self.input.is_empty() {
            let used = self.frames(read.filled())?;
            self.input.extend_from_slice(&read.filled()[used..]);
        } else {
            self.input.extend_from_slice(read.filled());
            let input = std::mem::take(&mut self.input);
            let used = self.frames(&input)?;
            if used < input.len() {
                self.input = BytesMut::from(&input[used..]);
            }
        }
        Ok(true)
    }

    /// Processes the complete frames at the start of `bytes`; returns how many bytes they took.
    fn frames(&mut self, bytes: &[u8]) -> Result<usize, ConnectionError> {
        let mut used = 0;
        if self.preface == Preface::Waiting {
            let len = bytes.len().min(PREFACE.len());
            if bytes[..len] != PREFACE[..len] {
                return Err(ConnectionError(Reason::ProtocolError, "no client preface"));
            }
            if len < PREFACE.len() {
                return Ok(0);
            }
            self.preface = Preface::Settings;
            used = PREFACE.len();
        }
        while let Some(head) = Head::parse(&bytes[used..]) {
            if self.preface == Preface::Settings {
                // The preface ends with a SETTINGS frame (§3.4).
                if head.kind != kind::SETTINGS || head.flags & frame::flag::ACK != 0 {
                    return Err(ConnectionError(
                        Reason::ProtocolError,
                        "the client preface without its SETTINGS",
                    ));
                }
                self.preface = Preface::Done;
            }
            if head.len > DEFAULT_MAX_FRAME as usize {
                return Err(ConnectionError(Reason::FrameSizeError, "a frame too large"));
            }
            let end = used + HEADER_LEN + head.len;
            if bytes.len() < end {
                break;
            }
            self.frame(head, &bytes[used + HEADER_LEN..end])?;
            used = end;
            if self.read_closed {
                break;
            }
        }
        Ok(used)
    }

    fn stream(&mut self, id: u32) -> Option<&mut Stream> {
        self.streams.iter_mut().find(|s| s.id == id)
    }

    /// Whether `id` names a stream the client has not opened yet.
    fn idle(&self, id: u32) -> bool {
        id > self.last_stream
    }

    /// Polls the handlers still running; sends the heads of the responses that are ready.
    fn poll_handlers(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        for stream in &mut self.streams {
            let Sending::Handler(handler) = &mut stream.sending else {
                continue;
            };
            let Poll::Ready(Ok(response)) = handler.as_mut().poll(cx) else {
                continue;
            };
            progress = true;
            let (parts, body) = response.into_parts();
            // As hyper does: the length of a body that is not empty at once (for HEAD, the
            // length the body would have had).
            let length = (!body.is_end_stream())
                .then(|| body.size_hint().exact())
                .flatten();
            let end = stream.head_only || body.is_end_stream();
            let block = message::response_block(parts.status, &parts.headers, length);
            self.out
                .headers(stream.id, &block, end, self.peer_max_frame);
            stream.sending = if end {
                Sending::Done
            } else {
                Sending::Body { body, chunk: None }
            };
        }
        progress
    }

    /// Sends what the response bodies have, as far as the windows allow; removes the streams
    /// that are over.
    fn poll_bodies(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        for stream in &mut self.streams {
            let Sending::Body { body, chunk } = &mut stream.sending else {
                continue;
            };
            loop {
                if self.out.queued() >= OUTPUT_HIGH {
                    break;
                }
                if chunk.is_none() {
                    match Pin::new(&mut *body).poll_frame(cx) {
                        Poll::Pending => break,
                        Poll::Ready(None) => {
                            self.out.data(stream.id, Bytes::new(), true);
                            stream.sending = Sending::Done;
                            progress = true;
                            break;
                        }
                        Poll::Ready(Some(Err(error))) => {
                            tracing::debug!(%error, "response body failed");
                            self.out.reset(stream.id, Reason::InternalError);
                            stream.sending = Sending::Done;
                            stream.recv_closed = true;
                            progress = true;
                            break;
                        }
                        Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                            Ok(data) if !data.is_empty() => *chunk = Some(data),
                            // Trailers and empty data carry nothing to send.
                            _ => continue,
                        },
                    }
                }
                let allowed = stream
                    .send_window
                    .min(self.send_window)
                    .min(self.peer_max_frame as i64);
                let Some(data) = chunk.as_mut().filter(|_| allowed > 0) else {
                    break;
                };
                let take = data.len().min(allowed as usize);
                let piece = data.split_to(take);
                if data.is_empty() {
                    *chunk = None;
                }
                stream.send_window -= take as i64;
                self.send_window -= take as i64;
                self.out.data(stream.id, piece, false);
                progress = true;
            }
        }
        let out = &mut self.out;
        let recv_credit = &mut self.recv_credit;
        let going_away = self.going_away;
        self.streams.retain_mut(|stream| {
            match stream.sending {
                Sending::Done => {}
                // Nothing more to ignore once the connection is closing.
                Sending::Reset => return !going_away,
                _ => return true,
            }
            if !stream.recv_closed {
                // The answer is complete and the request is not. A client that sent none of
                // its body yet may still end it, and what it sends until then is checked
                // (its length, its windows); one sending a body is told to stop, as the rest
                // of it is not needed (§8.1), and what it sent meanwhile is ignored.
                if stream.received == 0 && !going_away {
                    return true;
                }
                out.reset(stream.id, Reason::NoError);
                *recv_credit += std::mem::take(&mut stream.buffered);
                stream.inbound = None;
                stream.sending = Sending::Reset;
                return !going_away;
            }
            *recv_credit += stream.buffered;
            false
        });
        self.forget_resets();
        progress
    }

    /// Keeps at most [`MAX_RESET_KEPT`] streams reset by the hub, forgetting the oldest.
    fn forget_resets(&mut self) {
        while self
            .streams
            .iter()
            .filter(|s| matches!(s.sending, Sending::Reset))
            .count()
            > MAX_RESET_KEPT
        {
            let oldest = self
                .streams
                .iter()
                .enumerate()
                .filter(|(_, s)| matches!(s.sending, Sending::Reset))
                .min_by_key(|(_, s)| s.id)
                .map(|(place, _)| place);
            if let Some(place) = oldest {
                self.streams.swap_remove(place);
            }
        }
    }

    /// Gives the client back the window of what the handlers read, and answers `100 Continue`
    /// to those that asked for it once their handler reads the body.
    fn give_back(&mut self, cx: &Context<'_>) {
        for stream in &mut self.streams {
            let Some(inbound) = &stream.inbound else {
                continue;
            };
            if inbound.take_continue() && matches!(stream.sending, Sending::Handler(_)) {
                // The handler reads the body it was sent with `Expect: 100-continue`: the
                // client is told to send it (RFC 9110 §10.1.1).
                self.out.headers(
                    stream.id,
                    &message::CONTINUE_BLOCK,
                    false,
                    self.peer_max_frame,
                );
            }
            let consumed = inbound.take_consumed(cx);
            stream.buffered -= consumed.min(stream.buffered);
            stream.recv_credit += consumed;
            self.recv_credit += consumed;
            if !stream.recv_closed && stream.recv_credit as i64 >= DEFAULT_WINDOW / 2 {
                let credit = std::mem::take(&mut stream.recv_credit);
                stream.recv_window += credit as i64;
                self.out
                    .window_update(stream.id, u32::try_from(credit).unwrap_or(u32::MAX));
            }
        }
        if self.recv_credit as i64 >= DEFAULT_WINDOW / 2 {
            let credit = std::mem::take(&mut self.recv_credit);
            self.recv_window += credit as i64;
            self.out
                .window_update(0, u32::try_from(credit).unwrap_or(u32::MAX));
        }
    }

    /// Pings a client that has been silent for [`KEEP_ALIVE`], and gives up on one that does
    /// not answer within [`PING_TIMEOUT`].
    fn poll_keep_alive(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if self.read_closed {
            return Ok(());
        }
        let timer = self
            .keep_alive
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(KEEP_ALIVE)));
        while timer.as_mut().poll(cx).is_ready() {
            if self.ping_sent {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no answer to a keep-alive ping",
                ));
            }
            let quiet_until = self.last_frame + KEEP_ALIVE;
            let now = Instant::now();
            if now >= quiet_until {
                // Quiet for a keep-alive period: nothing more will arrive on reset streams.
                self.streams
                    .retain(|s| !matches!(s.sending, Sending::Reset));
                self.out.frame(kind::PING, 0, 0, &PING_PAYLOAD);
                self.ping_sent = true;
                timer.as_mut().reset(now + PING_TIMEOUT);
            } else {
                timer.as_mut().reset(quiet_until);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
