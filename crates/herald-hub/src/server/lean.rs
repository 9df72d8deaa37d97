//! A lean path for the requests of an HTTP/1.1 connection while they are subscriptions: a
//! hub spends its life holding idle event streams, and hyper keeps a read buffer of at least
//! 8 KiB (grown to 16 KiB while a response streams), a write queue and its whole connection
//! state for each of them. Measured on 10,000 idle subscriptions, that was most of the ~27 KB a
//! connection cost (see `crates/herald-hub/PERFORMANCE.md`).
//!
//! Here the request head is read into a buffer freed once parsed (with `httparse`), the request
//! goes through the same axum router (so limits, CORS, authorization and metrics are the same),
//! and the response is written straight to the socket: the head, then each body chunk with
//! chunked framing, without copying the shared event bytes. A connection that opens with the
//! HTTP/2 preface goes to the lean HTTP/2 server (`super::h2`); anything else (another method
//! or path, a request body, an upgrade, a head that does not parse) is handed to hyper with the
//! bytes already read. When a stream ends and the connection stays open, its next
//! request is read here again: a browser reconnects over the same connection.

use std::future::poll_fn;
use std::io::{self, IoSlice, Write as _};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, DATE, EXPECT, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Version};
use http_body::Body as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::watch;
use tower::Service;

use super::h2::PREFACE;
use crate::http::HUB_PATH;

/// The most request headers the lean path parses; a request with more goes to hyper.
const MAX_HEADERS: usize = 64;
/// The first read of a request head (grown as needed, up to the head limit).
const FIRST_READ: usize = 1024;
/// The bytes a client may send while its stream is open (a pipelined request) before the
/// connection is closed.
const MAX_PIPELINED: usize = 16 * 1024;

/// What happens to the connection after [`subscriptions`].
pub(crate) enum Next<I> {
    /// It is over.
    Close,
    /// hyper serves the rest of it, starting with the bytes already read.
    Hyper(Prefixed<I>),
    /// It speaks HTTP/2 (its first bytes, already read, are the preface).
    Http2(Prefixed<I>),
}

/// What a request head turned out to be (short-lived: it lives in the boxed head phase).
#[allow(clippy::large_enum_variant)]
enum Head {
    /// A subscription the lean path serves.
    Subscription(Request<Body>),
    /// The HTTP/2 preface.
    Http2,
    /// Anything else: hyper serves it.
    Other,
}

/// Serves the connection's requests here while they are subscriptions (a browser's
/// `EventSource` reconnects over the same kept-alive connection when a stream ends), and hands
/// the connection to hyper at the first request that is not. `head_timeout` bounds the wait for
/// each complete head.
pub(crate) async fn subscriptions<I>(
    mut io: I,
    peer: std::net::SocketAddr,
    router: &axum::Router,
    stopped: &mut watch::Receiver<bool>,
    head_limit: usize,
    head_timeout: Duration,
) -> Next<I>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let mut read = BytesMut::new();
    loop {
        // Boxed: reading the head and running the handler take several times the state that
        // streaming the body does; boxed, that state is freed once done, where inline it
        // would stay in every idle subscription's task for the stream's whole life.
        let answered = Box::pin(answer(
            io,
            read,
            peer,
            router,
            stopped,
            head_limit,
            head_timeout,
        ));
        let (body, length, close);
        (io, body, length, close) = match answered.await {
            Answer::Body {
                io,
                body,
                length,
                close,
            } => (io, body, length, close),
            Answer::Done(next) => return next,
        };
        read = match stream_body(&mut io, body, length).await {
            Ok(Some(extra)) if !close && !*stopped.borrow() => extra,
            Ok(_) => {
                let _ = io.shutdown().await;
                return Next::Close;
            }
            Err(error) => {
                tracing::debug!(%error, "event stream connection ended with an error");
                return Next::Close;
            }
        };
    }
}

/// How a request was answered.
enum Answer<I> {
    /// The response head is written; its body remains.
    Body {
        io: I,
        body: Body,
        /// The body's length, `None` for a chunked body.
        length: Option<u64>,
        /// Whether the connection closes after the body.
        close: bool,
    },
    /// Nothing more to write here.
    Done(Next<I>),
}

/// Reads the head (after the bytes already `read`), runs the router, and writes the response
/// head.
async fn answer<I>(
    mut io: I,
    mut buf: BytesMut,
    peer: std::net::SocketAddr,
    router: &axum::Router,
    stopped: &mut watch::Receiver<bool>,
    head_limit: usize,
    head_timeout: Duration,
) -> Answer<I>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let read = tokio::time::timeout(head_timeout, read_head(&mut io, &mut buf, head_limit));
    let mut request = tokio::select! {
        read = read => match read {
            Ok(Ok(Head::Subscription(request))) => request,
            Ok(Ok(Head::Http2)) => return Answer::Done(Next::Http2(Prefixed::new(buf.freeze(), io))),
            Ok(Ok(Head::Other)) => return Answer::Done(Next::Hyper(Prefixed::new(buf.freeze(), io))),
            Ok(Err(_)) | Err(_) => return Answer::Done(Next::Close),
        },
        _ = stopped.wait_for(|stop| *stop) => return Answer::Done(Next::Close),
    };
    drop(buf);
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    let close_asked = wants_close(request.headers());
    let response = match router.clone().call(request).await {
        Ok(response) => response,
        Err(infallible) => match infallible {},
    };
    let (parts, body) = response.into_parts();
    let length = body.size_hint().exact();
    let close = close_asked || wants_close(&parts.headers);
    let head = head(&parts, length, close);
    drop(parts);
    if let Err(error) = write_flush(&mut io, &head).await {
        tracing::debug!(%error, "cannot write a response head");
        return Answer::Done(Next::Close);
    }
    Answer::Body {
        io,
        body,
        length,
        close,
    }
}

async fn write_flush<I: AsyncWrite + Unpin>(io: &mut I, bytes: &[u8]) -> io::Result<()> {
    io.write_all(bytes).await?;
    io.flush().await
}

/// Reads until a complete head is buffered (`buf` may already hold some of it, or all of it),
/// and tells what it is; the bytes read stay in `buf` for whoever serves it.
async fn read_head<I: AsyncRead + Unpin>(
    io: &mut I,
    buf: &mut BytesMut,
    limit: usize,
) -> io::Result<Head> {
    let mut parse_first = !buf.is_empty();
    loop {
        if !std::mem::take(&mut parse_first) {
            if buf.len() >= limit {
                return Ok(Head::Other);
            }
            buf.reserve(if buf.is_empty() {
                FIRST_READ
            } else {
                buf.len()
            });
            let n = io.read_buf(buf).await?;
            if n == 0 {
                return if buf.is_empty() {
                    Err(io::ErrorKind::UnexpectedEof.into())
                } else {
                    Ok(Head::Other)
                };
            }
        }
        if PREFACE.starts_with(&buf[..buf.len().min(PREFACE.len())]) {
            if buf.len() >= PREFACE.len() {
                return Ok(Head::Http2);
            }
            continue; // a part of the preface: read the rest
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut head = httparse::Request::new(&mut headers);
        match head.parse(buf) {
            Ok(httparse::Status::Complete(len)) if len == buf.len() => {
                return Ok(subscription(&head).map_or(Head::Other, Head::Subscription));
            }
            Ok(httparse::Status::Partial) => {}
            // Pipelined bytes, too many headers or a malformed head: hyper answers those.
            Ok(httparse::Status::Complete(_)) | Err(_) => return Ok(Head::Other),
        }
    }
}

/// The request, when the head is a plain HTTP/1.1 `GET` of the hub's path without a body.
fn subscription(head: &httparse::Request<'_, '_>) -> Option<Request<Body>> {
    let path = head.path?;
    if head.method? != "GET" || head.version? != 1 || path.split('?').next()? != HUB_PATH {
        return None;
    }
    let mut headers = HeaderMap::with_capacity(head.headers.len());
    for header in head.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(header.value).ok()?;
        let has_body =
            name == TRANSFER_ENCODING || (name == CONTENT_LENGTH && value.as_bytes() != b"0");
        if has_body || name == UPGRADE || name == EXPECT {
            return None;
        }
        headers.append(name, value);
    }
    let mut request = Request::builder()
        .method(Method::GET)
        .uri(path)
        .version(Version::HTTP_11)
        .body(Body::empty())
        .ok()?;
    *request.headers_mut() = headers;
    Some(request)
}

fn wants_close(headers: &HeaderMap) -> bool {
    headers
        .get_all(CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"))
}

/// Writes the body, framed by the length the head announced or chunked. Returns the bytes
/// the client sent meanwhile, `None` when the client left or the body failed.
async fn stream_body<I>(
    io: &mut I,
    mut body: Body,
    length: Option<u64>,
) -> io::Result<Option<BytesMut>>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let mut extra = BytesMut::new();
    loop {
        let frame = poll_fn(|cx| {
            // Watch the socket too, so that a client leaving ends its stream at once.
            let mut scratch = [0u8; 256];
            let mut read = ReadBuf::new(&mut scratch);
            match Pin::new(&mut *io).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) if read.filled().is_empty() => {
                    return Poll::Ready(Err(io::ErrorKind::ConnectionAborted));
                }
                Poll::Ready(Ok(())) => {
                    extra.extend_from_slice(read.filled());
                    if extra.len() > MAX_PIPELINED {
                        return Poll::Ready(Err(io::ErrorKind::InvalidData));
                    }
                    cx.waker().wake_by_ref();
                }
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error.kind())),
                Poll::Pending => {}
            }
            Pin::new(&mut body).poll_frame(cx).map(Ok)
        })
        .await;
        let data = match frame {
            Err(_) => return Ok(None),
            Ok(None) => break,
            Ok(Some(Err(error))) => {
                tracing::debug!(%error, "event stream body failed");
                return Ok(None);
            }
            Ok(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue,
            },
        };
        if data.is_empty() {
            continue;
        }
        if length.is_some() {
            io.write_all(&data).await?;
        } else {
            write_chunk(io, &data).await?;
        }
        io.flush().await?;
    }
    if length.is_none() {
        write_flush(io, b"0\r\n\r\n").await?;
    }
    Ok(Some(extra))
}

/// The status line and headers, with `Date` and the body's framing added as hyper does.
fn head(parts: &http::response::Parts, length: Option<u64>, close: bool) -> Vec<u8> {
    let mut head = Vec::with_capacity(512);
    let status = parts.status;
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    head.extend_from_slice(b"\r\n");
    let mut line = |name: &[u8], value: &[u8]| {
        head.extend_from_slice(name);
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    };
    for (name, value) in &parts.headers {
        if name != CONTENT_LENGTH && name != TRANSFER_ENCODING {
            line(name.as_str().as_bytes(), value.as_bytes());
        }
    }
    match length {
        Some(n) => line(b"content-length", n.to_string().as_bytes()),
        None => line(b"transfer-encoding", b"chunked"),
    }
    if close && !parts.headers.contains_key(CONNECTION) {
        line(b"connection", b"close");
    }
    if !parts.headers.contains_key(DATE) {
        line(
            b"date",
            httpdate::fmt_http_date(SystemTime::now()).as_bytes(),
        );
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// Writes one chunk (`<size>\r\n<data>\r\n`) with vectored writes, never copying `data`.
///
/// The slices are built anew at each attempt rather than kept across the wait for the socket:
/// the state that waits is the stream's, held by every idle subscription, so it stays small.
async fn write_chunk<I: AsyncWrite + Unpin>(io: &mut I, data: &[u8]) -> io::Result<()> {
    let mut size = [0u8; 18];
    let mut cursor = io::Cursor::new(&mut size[..]);
    write!(cursor, "{:X}\r\n", data.len())?;
    let size_len = usize::try_from(cursor.position()).unwrap_or(size.len());
    let total = size_len + data.len() + 2;
    let mut done = 0;
    while done < total {
        let written = poll_fn(|cx| {
            let parts: [&[u8]; 3] = [&size[..size_len], data, b"\r\n"];
            let mut skip = done;
            let mut slices = [IoSlice::new(&[]); 3];
            for (slice, part) in slices.iter_mut().zip(parts) {
                let start = skip.min(part.len());
                skip -= start;
                *slice = IoSlice::new(&part[start..]);
            }
            Pin::new(&mut *io).poll_write_vectored(cx, &slices)
        })
        .await?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        done += written;
    }
    Ok(())
}

pin_project_lite::pin_project! {
    /// An I/O object whose reads start with bytes already read from it.
    pub(crate) struct Prefixed<I> {
        prefix: Bytes,
        #[pin]
        inner: I,
    }
}

impl<I> Prefixed<I> {
    fn new(prefix: Bytes, inner: I) -> Prefixed<I> {
        Prefixed { prefix, inner }
    }
}

impl<I: AsyncRead> AsyncRead for Prefixed<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        if this.prefix.is_empty() {
            return this.inner.poll_read(cx, buf);
        }
        let n = this.prefix.len().min(buf.remaining());
        buf.put_slice(&this.prefix[..n]);
        this.prefix.advance(n);
        if this.prefix.is_empty() {
            // Release the buffer the prefix was read into.
            *this.prefix = Bytes::new();
        }
        Poll::Ready(Ok(()))
    }
}

impl<I: AsyncWrite> AsyncWrite for Prefixed<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn connection_close_is_found_among_the_header_tokens() {
        for (value, close) in [
            ("close", true),
            ("Close", true),
            ("keep-alive, close", true),
            ("TE,close", true),
            ("keep-alive", false),
            ("closed", false),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(CONNECTION, HeaderValue::from_static(value));
            assert_eq!(wants_close(&headers), close, "{value}");
        }
    }
}
