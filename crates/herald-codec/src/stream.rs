//! [`FrameStream`]: a stream of byte chunks (an HTTP body, a socket) in, frames out.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_core::Stream;

use crate::decode::{DecodeError, Decoder};
use crate::frame::Frame;

/// An error from a [`FrameStream`]: either the byte source failed or decoding did.
#[derive(Debug, thiserror::Error)]
pub enum StreamError<E> {
    /// The underlying byte stream returned an error.
    #[error("reading the event stream failed: {0}")]
    Source(E),
    /// The bytes could not be decoded within the decoder's limits.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

pin_project_lite::pin_project! {
    /// Decodes a stream of byte chunks into [`Frame`]s.
    ///
    /// ```
    /// use futures::{StreamExt, stream};
    /// use herald_codec::{Frame, FrameStream};
    ///
    /// # futures::executor::block_on(async {
    /// let chunks = stream::iter(["data: a", "\n\ndat", "a: b\n\n"].map(Ok::<_, std::io::Error>));
    /// let events: Vec<String> = FrameStream::new(chunks)
    ///     .filter_map(|frame| async { frame.ok()?.into_event() })
    ///     .map(|event| event.data().to_owned())
    ///     .collect()
    ///     .await;
    /// assert_eq!(events, ["a", "b"]);
    /// # });
    /// ```
    #[derive(Debug)]
    #[must_use = "streams do nothing unless polled"]
    pub struct FrameStream<S> {
        #[pin]
        source: S,
        decoder: Decoder,
        done: bool,
    }
}

impl<S> FrameStream<S> {
    /// Decodes `source` with a default [`Decoder`].
    pub fn new(source: S) -> Self {
        FrameStream::with_decoder(source, Decoder::new())
    }

    /// Decodes `source` with a configured decoder (limits, comments, a starting last event ID).
    pub fn with_decoder(source: S, decoder: Decoder) -> Self {
        FrameStream {
            source,
            decoder,
            done: false,
        }
    }

    /// The decoder, for the last event ID and the reconnection time seen so far.
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// Gives back the decoder, keeping its last event ID and reconnection time.
    pub fn into_decoder(self) -> Decoder {
        self.decoder
    }
}

impl<S, B, E> Stream for FrameStream<S>
where
    S: Stream<Item = Result<B, E>>,
    B: Into<Bytes>,
{
    type Item = Result<Frame, StreamError<E>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        loop {
            match this.decoder.next_frame() {
                Ok(Some(frame)) => return Poll::Ready(Some(Ok(frame))),
                Ok(None) => {}
                Err(error) => return Poll::Ready(Some(Err(error.into()))),
            }
            if *this.done {
                return Poll::Ready(None);
            }
            match ready!(this.source.as_mut().poll_next(cx)) {
                Some(Ok(chunk)) => this.decoder.push(chunk),
                Some(Err(error)) => return Poll::Ready(Some(Err(StreamError::Source(error)))),
                None => {
                    this.decoder.finish();
                    *this.done = true;
                }
            }
        }
    }
}
