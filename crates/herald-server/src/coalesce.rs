//! Joining chunks that are already waiting into one write, so a burst of events costs one
//! syscall and one TLS record instead of one per event.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;

pin_project_lite::pin_project! {
    /// Yields every chunk that is ready at once as a single chunk of at most `max_len` bytes
    /// (a lone chunk is passed on without a copy).
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use bytes::Bytes;
    /// use futures::StreamExt;
    /// use herald_server::Coalesce;
    ///
    /// let ready = futures::stream::iter([&b"data: a\n\n"[..], b"data: b\n\n"].map(Bytes::from_static));
    /// let chunks: Vec<Bytes> = Coalesce::new(ready, 64 * 1024).collect().await;
    /// assert_eq!(chunks, [Bytes::from_static(b"data: a\n\ndata: b\n\n")]);
    /// # });
    /// ```
    #[derive(Debug)]
    pub struct Coalesce<S> {
        #[pin]
        inner: S,
        max_len: usize,
        held: Option<Bytes>,
        done: bool,
    }
}

impl<S> Coalesce<S> {
    /// Coalesces ready chunks up to `max_len` bytes per write.
    pub fn new(inner: S, max_len: usize) -> Coalesce<S> {
        Coalesce {
            inner,
            max_len,
            held: None,
            done: false,
        }
    }
}

impl<S: Stream<Item = Bytes>> Stream for Coalesce<S> {
    type Item = Bytes;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let mut this = self.project();
        let first = match this.held.take() {
            Some(chunk) => chunk,
            None if *this.done => return Poll::Ready(None),
            None => match this.inner.as_mut().poll_next(cx) {
                Poll::Ready(Some(chunk)) => chunk,
                Poll::Ready(None) => {
                    *this.done = true;
                    return Poll::Ready(None);
                }
                Poll::Pending => return Poll::Pending,
            },
        };
        let mut joined: Option<BytesMut> = None;
        while !*this.done {
            let len = joined.as_ref().map_or(first.len(), BytesMut::len);
            if len >= *this.max_len {
                break;
            }
            match this.inner.as_mut().poll_next(cx) {
                Poll::Ready(Some(next)) => {
                    if len + next.len() > *this.max_len {
                        *this.held = Some(next);
                        break;
                    }
                    joined
                        .get_or_insert_with(|| BytesMut::from(&first[..]))
                        .extend_from_slice(&next);
                }
                Poll::Ready(None) => *this.done = true,
                Poll::Pending => break,
            }
        }
        Poll::Ready(Some(joined.map_or(first, BytesMut::freeze)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn respects_the_limit_and_keeps_order() {
        let chunks = [&b"aaa"[..], b"bb", b"cccc", b"d"].map(Bytes::from_static);
        let out: Vec<Bytes> = Coalesce::new(futures::stream::iter(chunks), 5)
            .collect()
            .await;
        assert_eq!(out, [&b"aaabb"[..], b"ccccd"].map(Bytes::from_static));
    }

    #[tokio::test]
    async fn yields_what_is_ready_without_waiting_for_more() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
        let rx = futures::stream::unfold(rx, |mut rx| async { rx.recv().await.map(|b| (b, rx)) });
        let mut stream = std::pin::pin!(Coalesce::new(rx, 1024));
        tx.send(Bytes::from_static(b"x")).expect("send");
        tx.send(Bytes::from_static(b"y")).expect("send");
        assert_eq!(&stream.next().await.expect("chunk")[..], b"xy");
        tx.send(Bytes::from_static(b"z")).expect("send");
        assert_eq!(&stream.next().await.expect("chunk")[..], b"z");
    }
}
