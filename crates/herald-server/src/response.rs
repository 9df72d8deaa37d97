//! Turning a stream of events into an HTTP response with the headers an event stream needs.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use herald_codec::EventError;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue, PRAGMA};
use http::{HeaderMap, Response};
use http_body::Frame;

use crate::event::Event;
use crate::keep_alive::{HEARTBEAT, KeepAlive, KeepAliveStream};

/// The `Cache-Control` value of event streams: nothing may store or reuse them.
pub const CACHE_CONTROL_VALUE: &str = "private, no-cache, no-store, must-revalidate, max-age=0";

/// Any error an event stream may yield (as axum's `BoxError`).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

type ChunkStream = Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>> + Send + 'static>>;

/// An event that a client would misread, refused instead of sent.
#[derive(Debug, thiserror::Error)]
#[error("an event that clients would misread was not sent: {0}")]
pub(crate) struct InvalidEvent(pub(crate) EventError);

/// The headers every event stream response carries: `Content-Type: text/event-stream`, no
/// caching (`Cache-Control`, `Pragma`), and `X-Accel-Buffering: no` so nginx-like proxies pass
/// each event on at once.
pub fn sse_headers() -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(4);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL_VALUE));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    headers
}

/// What the stream given to [`Sse::new`] may yield: an [`Event`] (built as with axum), a
/// [`herald_codec::Event`], [`Bytes`] already encoded (written as they are; see
/// [`Sse::from_bytes`]), or a `Result` of any of these whose error converts into [`BoxError`],
/// as axum's `Sse` takes.
///
/// An `Err` item, or an [`Event`] a client would misread, ends the response there; the reason
/// is logged as a `tracing` error. This trait is sealed: those are the only items.
pub trait SseItem: sealed::IntoChunk {}

mod sealed {
    use super::{BoxError, Bytes};

    /// Turns a stream item into the bytes to write.
    pub trait IntoChunk {
        fn into_chunk(self) -> Result<Bytes, BoxError>;
    }
}

impl SseItem for Event {}
impl sealed::IntoChunk for Event {
    fn into_chunk(self) -> Result<Bytes, BoxError> {
        self.encode().map_err(|error| InvalidEvent(error).into())
    }
}

impl SseItem for herald_codec::Event {}
impl sealed::IntoChunk for herald_codec::Event {
    fn into_chunk(self) -> Result<Bytes, BoxError> {
        Ok(self.encode())
    }
}

impl SseItem for Bytes {}
impl sealed::IntoChunk for Bytes {
    fn into_chunk(self) -> Result<Bytes, BoxError> {
        Ok(self)
    }
}

impl<T: SseItem, E: Into<BoxError>> SseItem for Result<T, E> {}
impl<T: SseItem, E: Into<BoxError>> sealed::IntoChunk for Result<T, E> {
    fn into_chunk(self) -> Result<Bytes, BoxError> {
        self.map_err(Into::into)
            .and_then(sealed::IntoChunk::into_chunk)
    }
}

/// An event stream response under construction, as axum's `Sse`.
///
/// By default the body starts with the comment `:\n` (so that the headers and first bytes leave
/// at once, even through buffering proxies) and has no keep-alive; add one with
/// [`keep_alive`](Self::keep_alive).
///
/// The stream may yield events or results of events (see [`SseItem`]): what `BroadcastStream`,
/// `ReceiverStream` and most real code produce can be given as it is.
///
/// ```
/// use std::convert::Infallible;
/// use std::time::Duration;
/// use futures::Stream;
/// use herald_server::{Event, KeepAlive, Sse};
///
/// fn handler() -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
///     let events = futures::stream::iter(["a", "b"].map(|text| Ok(Event::default().data(text))));
///     Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
/// }
/// # let _ = handler().into_http();
/// ```
#[derive(Clone)]
#[must_use = "an Sse does nothing until turned into a response"]
pub struct Sse<S> {
    stream: S,
    keep_alive: Option<KeepAlive>,
    initial_comment: bool,
    headers: HeaderMap,
}

impl<S> std::fmt::Debug for Sse<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sse")
            .field("keep_alive", &self.keep_alive)
            .field("initial_comment", &self.initial_comment)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl<S> Sse<S>
where
    S: Stream + Send + 'static,
    S::Item: SseItem,
{
    /// A response streaming `stream`'s items, each encoded once when it is sent.
    pub fn new(stream: S) -> Sse<S> {
        Sse {
            stream,
            keep_alive: None,
            initial_comment: true,
            headers: sse_headers(),
        }
    }

    /// The response, with an [`SseBody`] that any hyper-based server can send.
    pub fn into_http(self) -> Response<SseBody> {
        let chunks = Box::pin(IntoChunks { inner: self.stream }) as ChunkStream;
        let stream = match self.keep_alive {
            Some(keep_alive) => Box::pin(KeepAliveStream::new(chunks, keep_alive)) as ChunkStream,
            None => chunks,
        };
        let mut response = Response::new(SseBody {
            first: self
                .initial_comment
                .then_some(Bytes::from_static(HEARTBEAT)),
            stream: Some(stream),
        });
        *response.headers_mut() = self.headers;
        response
    }
}

impl<S> Sse<S>
where
    S: Stream<Item = Bytes> + Send + 'static,
{
    /// A response streaming chunks that are already encoded (for example one event encoded once
    /// and shared by every subscriber). Each chunk is written as it comes.
    pub fn from_bytes(chunks: S) -> Sse<S> {
        Sse::new(chunks)
    }
}

impl<S> Sse<S> {
    /// Sends a keep-alive while the stream is idle: a [`KeepAlive`] as with axum, or a
    /// [`Duration`](std::time::Duration) for an empty comment after that much silence
    /// (`Duration::ZERO` disables it).
    pub fn keep_alive(mut self, keep_alive: impl Into<KeepAlive>) -> Sse<S> {
        let keep_alive = keep_alive.into();
        self.keep_alive = keep_alive.active_interval().is_some().then_some(keep_alive);
        self
    }

    /// Whether the body starts with the comment `:\n` (on by default).
    pub fn initial_comment(mut self, on: bool) -> Sse<S> {
        self.initial_comment = on;
        self
    }

    /// Adds or replaces a response header.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Sse<S> {
        self.headers.insert(name, value);
        self
    }
}

#[cfg(feature = "axum")]
impl<S> axum::response::IntoResponse for Sse<S>
where
    S: Stream + Send + 'static,
    S::Item: SseItem,
{
    fn into_response(self) -> axum::response::Response {
        self.into_http().map(axum::body::Body::new)
    }
}

/// The body of an event stream response: the initial comment, then every chunk of the stream.
/// It ends when the stream ends, or at its first error (an `Err` item, an invalid event), which
/// is logged.
pub struct SseBody {
    first: Option<Bytes>,
    stream: Option<ChunkStream>,
}

impl std::fmt::Debug for SseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseBody")
            .field("ended", &self.stream.is_none())
            .finish_non_exhaustive()
    }
}

impl http_body::Body for SseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        let Some(stream) = self.stream.as_mut() else {
            return Poll::Ready(None);
        };
        match stream.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => Poll::Ready(Some(Ok(Frame::data(chunk)))),
            Poll::Ready(Some(Err(error))) => {
                tracing::error!(%error, "the event stream ended on an error");
                self.stream = None;
                Poll::Ready(None)
            }
            Poll::Ready(None) => {
                self.stream = None;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.stream.is_none()
    }
}

pin_project_lite::pin_project! {
    /// Encodes each item of a stream as it is polled.
    struct IntoChunks<S> {
        #[pin]
        inner: S,
    }
}

impl<S> Stream for IntoChunks<S>
where
    S: Stream,
    S::Item: SseItem,
{
    type Item = Result<Bytes, BoxError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.project()
            .inner
            .poll_next(cx)
            .map(|item| item.map(sealed::IntoChunk::into_chunk))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use http_body_util::BodyExt;

    async fn body<S>(sse: Sse<S>) -> String
    where
        S: Stream + Send + 'static,
        S::Item: SseItem,
    {
        let body = sse.into_http().into_body().collect().await.expect("body");
        String::from_utf8(body.to_bytes().to_vec()).expect("utf-8")
    }

    #[tokio::test]
    async fn body_starts_with_a_comment_then_encoded_events() {
        let events = [
            herald_codec::Event::message("a"),
            herald_codec::Event::message("b"),
        ];
        let sse = Sse::new(futures::stream::iter(events));
        assert_eq!(body(sse).await, ":\ndata: a\n\ndata: b\n\n");
    }

    #[tokio::test]
    async fn initial_comment_can_be_turned_off() {
        let events = [Event::default().data("a")];
        let sse = Sse::new(futures::stream::iter(events)).initial_comment(false);
        assert_eq!(body(sse).await, "data: a\n\n");
    }

    #[tokio::test]
    async fn results_of_events_and_of_codec_events_and_pre_encoded_bytes() {
        let ok = [Ok::<_, std::io::Error>(Event::default().id("1").data("a"))];
        assert_eq!(
            body(Sse::new(futures::stream::iter(ok))).await,
            ":\nid: 1\ndata: a\n\n"
        );
        let codec = [Ok::<_, Infallible>(herald_codec::Event::message("b"))];
        assert_eq!(
            body(Sse::new(futures::stream::iter(codec))).await,
            ":\ndata: b\n\n"
        );
        let bytes = [Bytes::from_static(b"data: c\n\n")];
        assert_eq!(
            body(Sse::from_bytes(futures::stream::iter(bytes))).await,
            ":\ndata: c\n\n"
        );
    }

    #[tokio::test]
    async fn an_error_ends_the_stream_and_nothing_after_it_is_sent() {
        let items = [
            Ok(Event::default().data("before")),
            Err("the source broke"),
            Ok(Event::default().data("after")),
        ];
        assert_eq!(
            body(Sse::new(futures::stream::iter(items))).await,
            ":\ndata: before\n\n"
        );
    }

    #[tokio::test]
    async fn an_invalid_event_is_not_sent_and_ends_the_stream() {
        let items = [
            Event::default().id("1").data("good"),
            Event::default().id("2\nid: 99").data("forged id"),
            Event::default().id("3").data("never sent after the gap"),
        ];
        assert_eq!(
            body(Sse::new(futures::stream::iter(items))).await,
            ":\nid: 1\ndata: good\n\n"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn keep_alive_config_sends_its_text_after_silence() {
        let events =
            futures::stream::iter([Event::default().data("a")]).chain(futures::stream::pending());
        let sse = Sse::new(events).keep_alive(
            KeepAlive::new()
                .interval(std::time::Duration::from_secs(15))
                .text("ping"),
        );
        let mut body = sse.into_http().into_body();
        let mut seen = String::new();
        while !seen.ends_with(": ping\n") {
            let frame = body.frame().await.expect("open").expect("frame");
            let data = frame.into_data().expect("data");
            seen.push_str(std::str::from_utf8(&data).expect("utf-8"));
        }
        assert_eq!(seen, ":\ndata: a\n\n: ping\n");
    }

    #[test]
    fn headers_forbid_caching_and_buffering() {
        let response = Sse::new(futures::stream::empty::<Event>()).into_http();
        let h = response.headers();
        assert_eq!(h[CONTENT_TYPE], "text/event-stream");
        assert_eq!(h[CACHE_CONTROL], CACHE_CONTROL_VALUE);
        assert_eq!(h[PRAGMA], "no-cache");
        assert_eq!(h["x-accel-buffering"], "no");
    }
}
