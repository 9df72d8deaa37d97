//! Comment heartbeats while a stream is idle, so proxies keep the connection and clients notice
//! dead ones.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use tokio::time::{Instant, Sleep};

pin_project_lite::pin_project! {
    /// Wraps a stream of encoded chunks and inserts a keep-alive comment (`:\n`) whenever no chunk
    /// was produced for `interval`; the timer restarts after every chunk.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use futures::StreamExt;
    /// use herald_server::KeepAlive;
    ///
    /// let idle = futures::stream::pending::<bytes::Bytes>();
    /// let mut stream = std::pin::pin!(KeepAlive::new(idle, Duration::from_secs(30)));
    /// assert_eq!(&stream.next().await.expect("a heartbeat")[..], b":\n");
    /// # }
    /// ```
    #[derive(Debug)]
    pub struct KeepAlive<S> {
        #[pin]
        inner: S,
        // Created at the first poll, so that a stream can be built outside a runtime.
        sleep: Option<Pin<Box<Sleep>>>,
        interval: Duration,
    }
}

impl<S> KeepAlive<S> {
    /// Sends `:\n` after every `interval` of silence from `inner`.
    pub fn new(inner: S, interval: Duration) -> KeepAlive<S> {
        KeepAlive {
            inner,
            sleep: None,
            interval,
        }
    }
}

/// The keep-alive comment.
pub(crate) const HEARTBEAT: &[u8] = b":\n";

impl<S: Stream<Item = Bytes>> Stream for KeepAlive<S> {
    type Item = Bytes;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
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
                    Poll::Ready(Some(Bytes::from_static(HEARTBEAT)))
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

    #[tokio::test(start_paused = true)]
    async fn heartbeat_only_after_silence() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        let rx = futures::stream::unfold(rx, |mut rx| async { rx.recv().await.map(|b| (b, rx)) });
        let mut stream = std::pin::pin!(KeepAlive::new(rx, Duration::from_secs(10)));
        tx.send(Bytes::from_static(b"data: a\n\n"))
            .await
            .expect("send");
        assert_eq!(&stream.next().await.expect("event")[..], b"data: a\n\n");
        let start = Instant::now();
        assert_eq!(&stream.next().await.expect("heartbeat")[..], b":\n");
        assert_eq!(start.elapsed(), Duration::from_secs(10));
        drop(tx);
        assert!(stream.next().await.is_none());
    }
}
