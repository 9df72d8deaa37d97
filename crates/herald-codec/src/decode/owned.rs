//! Owned frames for [`Decoder::push`](super::Decoder::push): what the reader finds in a pushed
//! chunk, turned into [`Frame`]s that share that chunk, queued until taken.
//!
//! A single-line `data` is a slice of the chunk (a reference count, no copy); a multi-line one
//! hands over the buffer it was joined in. The event type and the last event ID change far
//! less often than events come, so each is kept once and shared by every event that carries it.

use std::collections::VecDeque;

use bytes::Bytes;
use bytestring::ByteString;

use super::DecodeError;
use super::block::{Block, Data, Dispatched};
use super::reader::Found;
use crate::frame::{Frame, MessageEvent};

/// Decoded frames not taken yet, and the strings events share.
#[derive(Debug, Default)]
pub(super) struct Owned {
    queue: VecDeque<Result<Frame, DecodeError>>,
    event_type: ByteString,
    last_event_id: ByteString,
}

impl Owned {
    /// The next frame not taken yet.
    pub(super) fn next(&mut self) -> Option<Result<Frame, DecodeError>> {
        self.queue.pop_front()
    }

    /// Queues what the reader found in `chunk`.
    #[inline(always)]
    pub(super) fn keep(&mut self, chunk: &Bytes, found: Found<'_>) {
        let frame = match found {
            Found::Event {
                block,
                event,
                chunk: text,
            } => Ok(Frame::Event(self.event(chunk, block, event, text))),
            Found::Retry(retry) => Ok(Frame::Retry(retry)),
            Found::Comment(text) => Ok(Frame::Comment(ByteString::from(text))),
            Found::Error(error) => Err(error),
        };
        self.queue.push_back(frame);
    }

    fn event(
        &mut self,
        chunk: &Bytes,
        block: &mut Block,
        event: Dispatched,
        text: &str,
    ) -> MessageEvent {
        let event_type = if event.typed {
            let name = block.event_type(&event);
            if !same(&self.event_type, name) {
                self.event_type = ByteString::from(name);
            }
            self.event_type.clone()
        } else {
            ByteString::from_static("message")
        };
        if !same(&self.last_event_id, &block.last_event_id) {
            self.last_event_id = match &block.last_event_id_at {
                Some(range) => share(chunk, text.get(range.clone()).unwrap_or_default()),
                None => ByteString::from(block.last_event_id.as_str()),
            };
        }
        let data = match event.data {
            Data::None => ByteString::new(),
            Data::Text(range) => share(chunk, text.get(range).unwrap_or_default()),
            Data::Buf => ByteString::from(std::mem::take(&mut block.data_buf)),
            Data::Line(range) => {
                let line = Bytes::from(std::mem::take(&mut block.split_line));
                match ByteString::try_from(line) {
                    Ok(line) => match line.get(range) {
                        Some(data) => line.slice_ref(data),
                        None => ByteString::new(),
                    },
                    Err(_) => ByteString::new(),
                }
            }
        };
        MessageEvent {
            event_type,
            data,
            last_event_id: self.last_event_id.clone(),
        }
    }
}

/// Whether `a` and `b` are the same text. Empty strings are told apart before any byte is
/// compared: an empty [`ByteString`] points at a static that a vectorised `memcmp` may load
/// from at a cost of hundreds of cycles, even for a length of zero.
#[inline]
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && (a.is_empty() || a == b)
}

/// `text`, a part of `chunk`, as a string sharing `chunk`.
#[inline]
fn share(chunk: &Bytes, text: &str) -> ByteString {
    let within = chunk.as_ptr_range();
    let range = text.as_bytes().as_ptr_range();
    if text.is_empty() || range.start < within.start || range.end > within.end {
        return ByteString::from(text);
    }
    let start = range.start as usize - within.start as usize;
    ByteString::try_from(chunk.slice(start..start + text.len()))
        .unwrap_or_else(|_| ByteString::from(text))
}
