//! [`SseCodec`]: the decoder as a `tokio_util::codec::Decoder`, for `FramedRead`.

use bytes::BytesMut;

use crate::decode::{DecodeError, Decoder};
use crate::frame::Frame;

/// Decodes frames from a `FramedRead`'s buffer; wraps a [`Decoder`].
///
/// ```
/// use futures::StreamExt;
/// use herald_codec::{Frame, SseCodec};
/// use tokio_util::codec::FramedRead;
///
/// # futures::executor::block_on(async {
/// let input: &[u8] = b"data: one\n\ndata: two\n\n";
/// let mut frames = FramedRead::new(input, SseCodec::default());
/// let mut data = Vec::new();
/// while let Some(frame) = frames.next().await {
///     if let Frame::Event(event) = frame? {
///         data.push(event.data().to_owned());
///     }
/// }
/// assert_eq!(data, ["one", "two"]);
/// # Ok::<(), herald_codec::DecodeError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Default)]
pub struct SseCodec {
    decoder: Decoder,
}

impl SseCodec {
    /// Wraps a configured decoder.
    pub fn new(decoder: Decoder) -> SseCodec {
        SseCodec { decoder }
    }

    /// The wrapped decoder (for its last event ID and reconnection time).
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }
}

impl tokio_util::codec::Decoder for SseCodec {
    type Item = Frame;
    type Error = DecodeError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        if !src.is_empty() {
            self.decoder.push(src.split().freeze());
        }
        self.decoder.next_frame()
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        let frame = self.decode(src)?;
        if frame.is_none() {
            self.decoder.finish();
        }
        Ok(frame)
    }
}
