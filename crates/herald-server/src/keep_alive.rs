//! Comment heartbeats while a stream is idle, so proxies keep the connection and clients notice
//! dead ones: [`KeepAlive`] configures them as axum's does, and a private stream adapter sends
//! them.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use herald_codec::EventError;
use tokio::time::{Instant, Sleep};

use crate::event::Event;
use crate::response::{BoxError, InvalidEvent};

/// The keep-alive comment.
pub(crate) const HEARTBEAT: &[u8] = b":\n";

/// How an [`Sse`](crate::Sse) response keeps an idle connection alive: what it sends (an empty
/// comment, `:\n`, by default) after how long without anything to send (15 s by default).
///
/// Built like axum's `KeepAlive`; a [`Duration`] converts into one with the default text.
///
/// ```
/// use std::time::Duration;
/// use herald_server::{KeepAlive, Sse};
///
/// let events = futures::stream::empty::<herald_server::Event>();
/// let sse = Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(20)).text("ping"));
/// # let _ = sse;
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct KeepAlive {
    interval: Duration,
    chunk: Result<Bytes, EventError>,
}

impl KeepAlive {
    /// An empty comment every 15 seconds of silence.
    pub fn new() -> KeepAlive {
        KeepAlive {
            interval: Duration::from_secs(15),
            chunk: Ok(Bytes::from_static(HEARTBEAT)),
        }
    }

    /// Sends the keep-alive after every `interval` of silence; the timer restarts whenever
    /// something is sent. `Duration::ZERO` turns keep-alives off.
    pub fn interval(mut self, interval: Duration) -> KeepAlive {
        self.interval = interval;
        self
    }

    /// Sends this comment text (each line of it as one `:` line) instead of an empty comment.
    pub fn text<I: AsRef<str>>(mut self, text: I) -> KeepAlive {
        self.chunk = Ok(herald_codec::Event::comment(text.as_ref()).encode());
        self
    }

    /// Sends this event instead of a comment. An invalid event (see [`Event`]) is never sent:
    /// the stream ends, with the reason logged, when the first keep-alive is due.
    pub fn event(mut self, event: Event) -> KeepAlive {
        self.chunk = event.encode();
        self
    }

    /// The interval, or `None` when keep-alives are off.
    pub(crate) fn active_interval(&self) -> Option<Duration> {
        (!self.interval.is_zero()).then_some(self.interval)
    }
}

impl Default for KeepAlive {
    fn default() -> KeepAlive {
        KeepAlive::new()
    }
}

impl From<Duration> for KeepAlive {
    /// An empty comment after every `interval` of silence.
    fn from(interval: Duration) -> KeepAlive {
        KeepAlive::new().interval(interval)
    }
}

pin_project_lite::pin_project! {
    /// Wraps a stream of encoded chunks and inserts the keep-alive whenever no chunk was produced
    /// for the interval; the timer restarts after every chunk.
    pub(crate) struct KeepAliveStream<S> {
        #[pin]
        inner: S,
        // Created at the first poll, so that a stream can be built outside a runtime.
        sleep: Option<Pin<Box<Sleep>>>,
        interval: Duration,
        chunk: Result<Bytes, EventError>,
    }
}

impl<S> KeepAliveStream<S> {
    /// Sends `keep_alive`'s chunk after every interval of silence from `inner` (the interval
    /// must not be zero: see [`KeepAlive::active_interval`]).
    pub(crate) fn new(inner: S, keep_alive: KeepAlive) -> KeepAliveStream<S> {
        KeepAliveStream {
            inner,
            sleep: None,
            interval: keep_alive.interval,
            chunk: keep_alive.chunk,
        }
    }
}

impl<S: Stream<Item = Result<Bytes, BoxError>>> Stream for KeepAliveStream<S> {
    type Item = Result<Bytes, BoxError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        let interval = *this.interval;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(interval)));
        match this.inner.poll_next(cx) {
            Poll::Ready(Some(chunk)) => {
                sleep.as_mut().reset(Instant::now() + interval);
                Poll::Ready(Some(chunk))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    sleep.as_mut().reset(Instant::now() + interval);
                    let chunk = match this.chunk {
                        Ok(chunk) => Ok(chunk.clone()),
                        Err(error) => Err(InvalidEvent(error.clone()).into()),
                    };
                    Poll::Ready(Some(chunk))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    async fn next(stream: &mut (impl Stream<Item = Result<Bytes, BoxError>> + Unpin)) -> Bytes {
        stream.next().await.expect("a chunk").expect("not an error")
    }

    #[tokio::test(start_paused = true)]
    async fn heartbeat_only_after_silence() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        let rx =
            futures::stream::unfold(rx, |mut rx| async { rx.recv().await.map(|b| (Ok(b), rx)) });
        let keep_alive = KeepAlive::from(Duration::from_secs(10));
        let mut stream = std::pin::pin!(KeepAliveStream::new(rx, keep_alive));
        tx.send(Bytes::from_static(b"data: a\n\n"))
            .await
            .expect("send");
        assert_eq!(&next(&mut stream).await[..], b"data: a\n\n");
        let start = Instant::now();
        assert_eq!(&next(&mut stream).await[..], b":\n");
        assert_eq!(start.elapsed(), Duration::from_secs(10));
        drop(tx);
        assert!(stream.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn text_and_event_keep_alives() {
        let idle = || futures::stream::pending::<Result<Bytes, BoxError>>();
        let second = KeepAlive::new().interval(Duration::from_secs(1));
        let text = second.clone().text("ping\npong");
        let mut stream = std::pin::pin!(KeepAliveStream::new(idle(), text));
        assert_eq!(&next(&mut stream).await[..], b": ping\n: pong\n");
        let event = second
            .clone()
            .event(Event::default().event("tick").data(""));
        let mut stream = std::pin::pin!(KeepAliveStream::new(idle(), event));
        assert_eq!(&next(&mut stream).await[..], b"event: tick\ndata: \n\n");
        let invalid = second.event(Event::default().id("a\nb"));
        let mut stream = std::pin::pin!(KeepAliveStream::new(idle(), invalid));
        let error = stream.next().await.expect("an item").expect_err("invalid");
        assert!(error.to_string().contains("line break"), "{error}");
    }

    #[test]
    fn zero_turns_keep_alives_off() {
        assert_eq!(KeepAlive::from(Duration::ZERO).active_interval(), None);
        assert_eq!(
            KeepAlive::default().active_interval(),
            Some(Duration::from_secs(15))
        );
    }
}
