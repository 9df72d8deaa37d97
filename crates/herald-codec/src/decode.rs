//! The incremental decoder: bytes in, events out, exactly as an `EventSource` would see them.
//!
//! It follows the WHATWG HTML "Server-sent events" interpretation rules: one UTF-8 BOM stripped
//! at the very start, lines ended by CRLF, LF or CR (also when a CR ends one chunk and an LF
//! starts the next), `field: value` split at the first colon with one leading space removed,
//! `data` lines joined with LF, `event` reset after every dispatch, an `id` (without NUL) that
//! becomes the last event ID at the next blank line, `retry` taken only when all ASCII digits,
//! comments and unknown fields ignored, and an event dispatched only at a blank line.
//!
//! Input can arrive in chunks of any size, split anywhere. Lines are found with `memchr`; a line
//! that lies within one chunk is read in place without a copy or an allocation. UTF-8 is
//! validated once per chunk, not per field; bytes that are not UTF-8 become U+FFFD.
//!
//! There are two ways to read, over the same decoder:
//!
//! * [`Decoder::feed`] reads a chunk and hands each frame to a closure as a [`FrameRef`]: plain
//!   `&str`s borrowed from the chunk and from the decoder, valid for the call. Nothing is
//!   allocated or reference-counted per event; this is the fastest way, for consumers that
//!   handle an event at once (write it out, parse its JSON, forward it).
//! * [`Decoder::push`] and [`Decoder::next_frame`] (or the decoder as an [`Iterator`]) give owned
//!   [`Frame`]s that can be kept and sent across threads. A single-line `data` that arrived
//!   within one chunk is a slice of the pushed [`Bytes`], not a copy.
//!
//! ```
//! use herald_codec::{Decoder, FrameRef};
//!
//! let mut decoder = Decoder::new();
//! let mut seen = Vec::new();
//! for chunk in [&b"event: greet\nid: 7\ndata: hel"[..], b"lo\n\n"] {
//!     decoder.feed(chunk, |frame| {
//!         if let Ok(FrameRef::Event(event)) = frame {
//!             seen.push(format!("{} {} {}", event.event_type(), event.data(), event.last_event_id()));
//!         }
//!     });
//! }
//! assert_eq!(seen, ["greet hello 7"]);
//! ```
//!
//! ```
//! use herald_codec::{Decoder, Frame};
//!
//! let mut decoder = Decoder::new();
//! decoder.push("id: 1\ndata: hel");
//! assert_eq!(decoder.next_frame()?, None); // no blank line yet
//! decoder.push("lo\n\n");
//! let Some(Frame::Event(event)) = decoder.next_frame()? else { panic!("an event") };
//! assert_eq!((event.event_type(), event.data(), event.last_event_id()), ("message", "hello", "1"));
//! # Ok::<(), herald_codec::DecodeError>(())
//! ```

mod block;
mod owned;
mod reader;
mod scan;

use std::time::Duration;

use bytes::Bytes;

use crate::frame::{EventRef, Frame, FrameRef};
use owned::Owned;
use reader::{Found, Reader};

/// Why decoding failed. The decoder stays usable: it drops the offending line and the event it
/// belongs to (so no partial event is ever dispatched), and carries on with the next one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A line grew past the configured maximum without ending.
    #[error("line longer than the limit of {limit} bytes")]
    LineTooLong {
        /// The configured limit, in bytes.
        limit: usize,
    },
    /// The data of one event grew past the configured maximum.
    #[error("event data larger than the limit of {limit} bytes")]
    EventTooLarge {
        /// The configured limit, in bytes.
        limit: usize,
    },
    /// Reading the underlying byte source failed (only from the I/O adapters).
    #[error("reading the event stream failed: {0}")]
    Io(std::io::Error),
}

// Shown in the message, so not chained as a source too (which would print it twice).
impl From<std::io::Error> for DecodeError {
    fn from(error: std::io::Error) -> DecodeError {
        DecodeError::Io(error)
    }
}

/// Default for [`DecoderBuilder::max_line_len`]: 8 MiB.
pub const DEFAULT_MAX_LINE_LEN: usize = 8 << 20;
/// Default for [`DecoderBuilder::max_event_size`]: 16 MiB.
pub const DEFAULT_MAX_EVENT_SIZE: usize = 16 << 20;

/// What a decoder accepts: the memory limits, and whether comments are reported.
#[derive(Debug, Clone)]
struct Limits {
    max_line_len: usize,
    max_event_size: usize,
    comments: bool,
}

/// Configures a [`Decoder`]: memory limits and whether comments are reported.
#[derive(Debug, Clone)]
#[must_use]
pub struct DecoderBuilder {
    limits: Limits,
}

impl Default for DecoderBuilder {
    fn default() -> Self {
        DecoderBuilder {
            limits: Limits {
                max_line_len: DEFAULT_MAX_LINE_LEN,
                max_event_size: DEFAULT_MAX_EVENT_SIZE,
                comments: false,
            },
        }
    }
}

impl DecoderBuilder {
    /// The longest line accepted, in bytes, terminator excluded (default 8 MiB).
    pub fn max_line_len(mut self, bytes: usize) -> Self {
        self.limits.max_line_len = bytes;
        self
    }

    /// The largest data of one event, in bytes, counting the LFs that join its lines
    /// (default 16 MiB).
    pub fn max_event_size(mut self, bytes: usize) -> Self {
        self.limits.max_event_size = bytes;
        self
    }

    /// Whether comment lines are reported as [`Frame::Comment`] (default: no, as browsers).
    pub fn comments(mut self, report: bool) -> Self {
        self.limits.comments = report;
        self
    }

    /// Builds the decoder.
    pub fn build(self) -> Decoder {
        Decoder {
            reader: Reader::new(self.limits),
            owned: Owned::default(),
        }
    }
}

/// An incremental `text/event-stream` decoder; see the [module docs](self).
///
/// Either [`feed`](Self::feed) it chunks and take borrowed frames in a closure, or
/// [`push`](Self::push) chunks and drain owned frames with [`next_frame`](Self::next_frame) (or
/// as an iterator) until it returns `None`. At the end of the stream, call
/// [`finish`](Self::finish): an event without its closing blank line is dropped, as the spec says.
#[derive(Debug)]
pub struct Decoder {
    reader: Reader,
    /// Frames decoded by [`push`](Self::push) and not taken yet.
    owned: Owned,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    /// A decoder with the default limits that does not report comments.
    pub fn new() -> Decoder {
        DecoderBuilder::default().build()
    }

    /// Configures a decoder.
    pub fn builder() -> DecoderBuilder {
        DecoderBuilder::default()
    }

    /// Reads the next chunk of the stream and hands every frame it completes to `on_frame`, in
    /// order, borrowed: the strings live until `on_frame` returns. A limit that is hit is an
    /// error passed the same way; decoding carries on after it.
    ///
    /// This is the fastest way to decode: no allocation and no reference counting per event.
    pub fn feed<F>(&mut self, chunk: &[u8], mut on_frame: F)
    where
        F: FnMut(Result<FrameRef<'_>, DecodeError>),
    {
        self.reader.read(chunk, &mut |found: Found<'_>| {
            on_frame(match found {
                Found::Event {
                    block,
                    event,
                    chunk,
                } => Ok(FrameRef::Event(EventRef {
                    event_type: block.event_type(&event),
                    data: block.data(&event, chunk),
                    last_event_id: &block.last_event_id,
                })),
                Found::Retry(retry) => Ok(FrameRef::Retry(retry)),
                Found::Comment(text) => Ok(FrameRef::Comment(text)),
                Found::Error(error) => Err(error),
            });
        });
    }

    /// Adds the next chunk of the stream, to be taken as owned frames with
    /// [`next_frame`](Self::next_frame). Passing [`Bytes`] lets events share it.
    pub fn push(&mut self, chunk: impl Into<Bytes>) {
        let chunk = chunk.into();
        let owned = &mut self.owned;
        self.reader
            .read(&chunk, &mut |found: Found<'_>| owned.keep(&chunk, found));
    }

    /// Adds the next chunk of the stream, copying it.
    pub fn push_slice(&mut self, chunk: &[u8]) {
        self.push(Bytes::copy_from_slice(chunk));
    }

    /// The next frame of the chunks pushed so far, or `None` once they are used up.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, DecodeError> {
        self.owned.next().transpose()
    }

    /// Ends the stream: whatever was not closed by a blank line is discarded, and the decoder
    /// is ready for a new stream (the last event ID and reconnection time are kept, as an
    /// `EventSource` keeps them across reconnections). Frames already completed can still be
    /// taken.
    pub fn finish(&mut self) {
        self.reader.finish();
    }

    /// The reconnection time last set by the stream, if any.
    pub fn retry(&self) -> Option<Duration> {
        self.reader.block.retry
    }

    /// The stream's last event ID (empty if none), as of the last blank line read.
    ///
    /// With [`push`](Self::push), that is the last blank line of the chunks pushed, which may
    /// be ahead of the frames taken so far; each event carries the ID in force when it was
    /// dispatched ([`MessageEvent::last_event_id`](crate::MessageEvent::last_event_id)).
    pub fn last_event_id(&self) -> &str {
        &self.reader.block.last_event_id
    }

    /// Sets the last event ID, as a client resuming a stream knows it.
    pub fn set_last_event_id(&mut self, id: impl AsRef<str>) {
        self.reader.block.set_last_event_id(id.as_ref());
    }

    /// How many bytes are held waiting for the end of a line.
    pub fn buffered_len(&self) -> usize {
        self.reader.partial.len()
    }
}

impl Iterator for Decoder {
    type Item = Result<Frame, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_frame().transpose()
    }
}
