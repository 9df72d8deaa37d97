//! Closing connections whose client stopped reading: an I/O wrapper that starts a timer when a
//! write has to wait for the socket, and fails the write once it has waited too long.
//!
//! A subscriber that stops reading first fills its socket buffers, then its queue (and is
//! disconnected as a slow consumer); with no update flowing, only this catches it. The timer
//! exists only while a write waits, so an idle connection holds none; the flag that tells the
//! server why the connection ended is the one allocation it keeps.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// Wraps an I/O object and fails writes that have waited for longer than a timeout.
pub(crate) struct StallDetect<I> {
    inner: I,
    timeout: Duration,
    /// Armed while a write is waiting for the socket.
    waiting: Option<Pin<Box<Sleep>>>,
    stalled: Arc<AtomicBool>,
}

/// Tells whether a [`StallDetect`] gave up on its client.
pub(crate) struct Stalled(Arc<AtomicBool>);

impl Stalled {
    /// Whether a write waited for longer than the timeout.
    pub(crate) fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl<I> StallDetect<I> {
    /// Fails a write that waits for longer than `timeout` (never if it is zero).
    pub(crate) fn new(inner: I, timeout: Duration) -> (StallDetect<I>, Stalled) {
        let stalled = Arc::new(AtomicBool::new(false));
        let detect = StallDetect {
            inner,
            timeout,
            waiting: None,
            stalled: stalled.clone(),
        };
        (detect, Stalled(stalled))
    }

    fn note<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.waiting = None;
            return poll;
        }
        if self.timeout.is_zero() {
            return poll;
        }
        let timeout = self.timeout;
        let timer = self
            .waiting
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match timer.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                self.stalled.store(true, Ordering::Relaxed);
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client stopped reading",
                )))
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
        self.note(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.note(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.note(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Over TLS a shutdown writes too (close_notify): it is bounded like any write.
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.note(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test(start_paused = true)]
    async fn a_write_waiting_too_long_fails_and_is_reported() {
        // A pipe whose reader never reads: the second write waits for room forever.
        let (writer, _reader) = tokio::io::duplex(4);
        let (mut io, stalled) = StallDetect::new(writer, Duration::from_secs(30));
        io.write_all(b"fill").await.expect("room for four bytes");
        let error = io.write_all(b"more").await.expect_err("stalled");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(stalled.get());
    }

    /// A peer that never lets a shutdown finish (as a TLS peer that stopped reading keeps the
    /// close_notify from being flushed).
    struct ShutdownNeverEnds;

    impl AsyncWrite for ShutdownNeverEnds {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Pending
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_shutdown_waiting_too_long_fails_and_is_reported() {
        let (mut io, stalled) = StallDetect::new(ShutdownNeverEnds, Duration::from_secs(30));
        let error = io.shutdown().await.expect_err("stalled");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(stalled.get());
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_that_resumes_in_time_is_not_a_stall() {
        let (writer, mut reader) = tokio::io::duplex(4);
        let (mut io, stalled) = StallDetect::new(writer, Duration::from_secs(30));
        let drain = tokio::spawn(async move {
            let mut got = Vec::new();
            tokio::time::sleep(Duration::from_secs(20)).await;
            tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut got)
                .await
                .expect("read");
            got
        });
        io.write_all(b"fill").await.expect("write");
        io.write_all(b"more")
            .await
            .expect("resumed before the timeout");
        assert!(
            io.waiting.is_none(),
            "no timer kept once the write went through"
        );
        drop(io);
        assert_eq!(drain.await.expect("drain"), b"fillmore");
        assert!(!stalled.get());
    }
}
