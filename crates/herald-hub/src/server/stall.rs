//! Closing connections whose client stopped reading: an I/O wrapper that notes when a write
//! starts waiting for the socket, and a watch that fires once one has waited too long.
//!
//! A subscriber that stops reading first fills its socket buffers, then its queue (and is
//! disconnected as a slow consumer); with no update flowing, only this catches it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;
use tokio::time::Instant;

/// Wraps an I/O object and reports when its writes stall and resume.
pub(crate) struct StallDetect<I> {
    inner: I,
    stalled: watch::Sender<Option<Instant>>,
}

impl<I> StallDetect<I> {
    pub(crate) fn new(inner: I) -> (StallDetect<I>, watch::Receiver<Option<Instant>>) {
        let (stalled, watch) = watch::channel(None);
        (StallDetect { inner, stalled }, watch)
    }

    fn note<T>(&self, poll: &Poll<T>) {
        match poll {
            Poll::Pending => {
                self.stalled.send_if_modified(|since| {
                    let changed = since.is_none();
                    if changed {
                        *since = Some(Instant::now());
                    }
                    changed
                });
            }
            Poll::Ready(_) => {
                self.stalled
                    .send_if_modified(|since| since.take().is_some());
            }
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for StallDetect<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for StallDetect<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note(&poll);
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.note(&poll);
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.note(&poll);
        poll
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Completes once a write has been waiting for longer than `timeout` (never if it is zero).
pub(crate) async fn stalled_for(mut watch: watch::Receiver<Option<Instant>>, timeout: Duration) {
    if timeout.is_zero() {
        return std::future::pending().await;
    }
    loop {
        let since = *watch.borrow_and_update();
        match since {
            None => {
                if watch.changed().await.is_err() {
                    return std::future::pending().await;
                }
            }
            Some(since) => {
                tokio::select! {
                    () = tokio::time::sleep_until(since + timeout) => return,
                    changed = watch.changed() => {
                        if changed.is_err() {
                            return std::future::pending().await;
                        }
                    }
                }
            }
        }
    }
}
