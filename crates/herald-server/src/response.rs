//! Turning a stream of events into an HTTP response with the headers an event stream needs.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use herald_codec::Event;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue, PRAGMA};
use http::{HeaderMap, Response};
use http_body::Frame;

use crate::keep_alive::{HEARTBEAT, KeepAlive};

/// The `Cache-Control` value of event streams: nothing may store or reuse them.
pub const CACHE_CONTROL_VALUE: &str = "private, no-cache, no-store, must-revalidate, max-age=0";

type ByteStream = Pin<Box<dyn Stream<Item = Bytes> + Send + 'static>>;

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

/// An event stream response under construction.
///
/// By default the body starts with the comment `:\n` (so that the headers and first bytes leave
/// at once, even through buffering proxies) and has no keep-alive; add one with
/// [`keep_alive`](Self::keep_alive).
#[must_use = "an Sse does nothing until turned into a response"]
pub struct Sse {
    stream: ByteStream,
    keep_alive: Option<Duration>,
    initial_comment: bool,
    headers: HeaderMap,
}

impl std::fmt::Debug for Sse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sse")
            .field("keep_alive", &self.keep_alive)
            .field("initial_comment", &self.initial_comment)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl Sse {
    /// A response streaming `events`, each encoded once when it is sent.
    pub fn new<S>(events: S) -> Sse
    where
        S: Stream<Item = Event> + Send + 'static,
    {
        Sse::from_bytes(EncodeEvents { inner: events })
    }

    /// A response streaming chunks that are already encoded (for example one event encoded once
    /// and shared by every subscriber). Each chunk is written as it comes.
    pub fn from_bytes<S>(chunks: S) -> Sse
    where
        S: Stream<Item = Bytes> + Send + 'static,
    {
        Sse {
            stream: Box::pin(chunks),
            keep_alive: None,
            initial_comment: true,
            headers: sse_headers(),
        }
    }

    /// Sends the comment `:\n` after every `interval` of silence (`Duration::ZERO` disables it).
    pub fn keep_alive(mut self, interval: Duration) -> Sse {
        self.keep_alive = (!interval.is_zero()).then_some(interval);
        self
    }

    /// Whether the body starts with the comment `:\n` (on by default).
    pub fn initial_comment(mut self, on: bool) -> Sse {
        self.initial_comment = on;
        self
    }

    /// Adds or replaces a response header.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Sse {
        self.headers.insert(name, value);
        self
    }

    /// The response, with an [`SseBody`] that any hyper-based server can send.
    pub fn into_http(self) -> Response<SseBody> {
        let stream = match self.keep_alive {
            Some(interval) => Box::pin(KeepAlive::new(self.stream, interval)) as ByteStream,
            None => self.stream,
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

#[cfg(feature = "axum")]
impl axum::response::IntoResponse for Sse {
    fn into_response(self) -> axum::response::Response {
        self.into_http().map(axum::body::Body::new)
    }
}

/// The body of an event stream response: the initial comment, then every chunk of the stream.
/// It ends when the stream ends.
pub struct SseBody {
    first: Option<Bytes>,
    stream: Option<ByteStream>,
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
            Poll::Ready(Some(chunk)) => Poll::Ready(Some(Ok(Frame::data(chunk)))),
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
    struct EncodeEvents<S> {
        #[pin]
        inner: S,
    }
}

impl<S: Stream<Item = Event>> Stream for EncodeEvents<S> {
    type Item = Bytes;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        self.project()
            .inner
            .poll_next(cx)
            .map(|event| event.map(|e| e.encode()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn body_starts_with_a_comment_then_encoded_events() {
        let events = futures::stream::iter(vec![Event::message("a"), Event::message("b")]);
        let response = Sse::new(events).into_http();
        let body = response.into_body().collect().await.expect("body");
        assert_eq!(&body.to_bytes()[..], b":\ndata: a\n\ndata: b\n\n");
    }

    #[tokio::test]
    async fn initial_comment_can_be_turned_off() {
        let events = futures::stream::iter(vec![Event::message("a")]);
        let response = Sse::new(events).initial_comment(false).into_http();
        let body = response.into_body().collect().await.expect("body");
        assert_eq!(&body.to_bytes()[..], b"data: a\n\n");
    }

    #[test]
    fn headers_forbid_caching_and_buffering() {
        let response = Sse::new(futures::stream::empty()).into_http();
        let h = response.headers();
        assert_eq!(h[CONTENT_TYPE], "text/event-stream");
        assert_eq!(h[CACHE_CONTROL], CACHE_CONTROL_VALUE);
        assert_eq!(h[PRAGMA], "no-cache");
        assert_eq!(h["x-accel-buffering"], "no");
    }
}
