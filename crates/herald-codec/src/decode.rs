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
//! that lies within one chunk is sliced from it without a copy, and a single-line `data` comes
//! out as a slice of the input [`Bytes`]. Bytes that are not UTF-8 become U+FFFD.
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

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use bytestring::ByteString;

use crate::frame::{Frame, MessageEvent};

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
    Io(#[from] std::io::Error),
}

/// Default for [`DecoderBuilder::max_line_len`]: 8 MiB.
pub const DEFAULT_MAX_LINE_LEN: usize = 8 << 20;
/// Default for [`DecoderBuilder::max_event_size`]: 16 MiB.
pub const DEFAULT_MAX_EVENT_SIZE: usize = 16 << 20;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Configures a [`Decoder`]: memory limits and whether comments are reported.
#[derive(Debug, Clone)]
#[must_use]
pub struct DecoderBuilder {
    max_line_len: usize,
    max_event_size: usize,
    comments: bool,
}

impl Default for DecoderBuilder {
    fn default() -> Self {
        DecoderBuilder {
            max_line_len: DEFAULT_MAX_LINE_LEN,
            max_event_size: DEFAULT_MAX_EVENT_SIZE,
            comments: false,
        }
    }
}

impl DecoderBuilder {
    /// The longest line accepted, in bytes, terminator excluded (default 8 MiB).
    pub fn max_line_len(mut self, bytes: usize) -> Self {
        self.max_line_len = bytes;
        self
    }

    /// The largest data of one event, in bytes, counting the LFs that join its lines
    /// (default 16 MiB).
    pub fn max_event_size(mut self, bytes: usize) -> Self {
        self.max_event_size = bytes;
        self
    }

    /// Whether comment lines are reported as [`Frame::Comment`] (default: no, as browsers).
    pub fn comments(mut self, report: bool) -> Self {
        self.comments = report;
        self
    }

    /// Builds the decoder.
    pub fn build(self) -> Decoder {
        Decoder {
            config: self,
            input: Bytes::new(),
            partial: BytesMut::new(),
            bom_checked: false,
            after_cr: false,
            skipping_line: false,
            data: Data::None,
            event_type: Bytes::new(),
            id_buffer: ByteString::new(),
            last_event_id: ByteString::new(),
            dropping_event: false,
            retry: None,
        }
    }
}

/// The data buffer of the event being read.
#[derive(Debug)]
enum Data {
    /// No `data` line yet: a blank line dispatches nothing.
    None,
    /// One line, kept as a slice of the input.
    One(Bytes),
    /// Several lines, joined with LF.
    Many(BytesMut),
}

impl Data {
    fn len(&self) -> usize {
        match self {
            Data::None => 0,
            Data::One(line) => line.len(),
            Data::Many(lines) => lines.len(),
        }
    }
}

/// An incremental `text/event-stream` decoder; see the [module docs](self).
///
/// Feed it with [`push`](Self::push) and drain it with [`next_frame`](Self::next_frame) (or as an
/// iterator) until it returns `None`, then push the next chunk. At the end of the stream, call
/// [`finish`](Self::finish): an event without its closing blank line is dropped, as the spec says.
#[derive(Debug)]
pub struct Decoder {
    config: DecoderBuilder,
    /// Bytes pushed and not yet looked at.
    input: Bytes,
    /// The start of a line whose end has not arrived yet.
    partial: BytesMut,
    bom_checked: bool,
    /// The last line ended with a CR that was the last byte available: an LF next is its pair.
    after_cr: bool,
    /// The rest of an over-long line is being skipped.
    skipping_line: bool,
    data: Data,
    event_type: Bytes,
    id_buffer: ByteString,
    last_event_id: ByteString,
    /// The event being read hit a limit: nothing is dispatched at its blank line.
    dropping_event: bool,
    retry: Option<Duration>,
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

    /// Adds the next chunk of the stream. Passing [`Bytes`] lets events borrow from it.
    pub fn push(&mut self, chunk: impl Into<Bytes>) {
        let chunk = chunk.into();
        if self.input.is_empty() {
            self.input = chunk;
        } else {
            let mut joined = BytesMut::with_capacity(self.input.len() + chunk.len());
            joined.put_slice(&self.input);
            joined.put_slice(&chunk);
            self.input = joined.freeze();
        }
    }

    /// Adds the next chunk of the stream, copying it.
    pub fn push_slice(&mut self, chunk: &[u8]) {
        self.push(Bytes::copy_from_slice(chunk));
    }

    /// The next frame in the bytes pushed so far, or `None` once they are used up.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, DecodeError> {
        while let Some(line) = self.next_line()? {
            if let Some(frame) = self.process_line(line)? {
                return Ok(Some(frame));
            }
        }
        Ok(None)
    }

    /// Ends the stream: whatever was not closed by a blank line is discarded, and the decoder
    /// is ready for a new stream (the last event ID and reconnection time are kept, as an
    /// `EventSource` keeps them across reconnections).
    pub fn finish(&mut self) {
        self.input.clear();
        self.partial.clear();
        self.bom_checked = false;
        self.after_cr = false;
        self.skipping_line = false;
        self.clear_event();
        self.id_buffer = self.last_event_id.clone();
    }

    /// The reconnection time last set by the stream, if any.
    pub fn retry(&self) -> Option<Duration> {
        self.retry
    }

    /// The stream's last event ID (empty if none), as of the last blank line.
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// Sets the last event ID, as a client resuming a stream knows it.
    pub fn set_last_event_id(&mut self, id: impl Into<ByteString>) {
        self.last_event_id = id.into();
        self.id_buffer = self.last_event_id.clone();
    }

    /// How many bytes are held waiting for the end of a line.
    pub fn buffered_len(&self) -> usize {
        self.input.len() + self.partial.len()
    }

    fn next_line(&mut self) -> Result<Option<Bytes>, DecodeError> {
        if !self.bom_checked && !self.check_bom() {
            return Ok(None);
        }
        loop {
            if self.after_cr && !self.input.is_empty() {
                self.after_cr = false;
                if self.input[0] == b'\n' {
                    self.input.advance(1);
                }
            }
            let Some(end) = memchr::memchr2(b'\r', b'\n', &self.input) else {
                return self.keep_partial_line();
            };
            let line = self.input.split_to(end);
            let pair = self.input.get(1) == Some(&b'\n');
            if self.input[0] == b'\r' && !pair && self.input.len() == 1 {
                self.after_cr = true;
            }
            self.input
                .advance(if self.input[0] == b'\r' && pair { 2 } else { 1 });

            if self.skipping_line {
                self.skipping_line = false;
                continue;
            }
            let limit = self.config.max_line_len;
            if self.partial.is_empty() {
                if line.len() > limit {
                    return Err(self.line_too_long());
                }
                return Ok(Some(line));
            }
            if self.partial.len() + line.len() > limit {
                self.partial.clear();
                return Err(self.line_too_long());
            }
            self.partial.put_slice(&line);
            return Ok(Some(self.partial.split().freeze()));
        }
    }

    /// Keeps the unterminated rest of the input for when its line ends.
    fn keep_partial_line(&mut self) -> Result<Option<Bytes>, DecodeError> {
        let rest = std::mem::take(&mut self.input);
        if self.skipping_line {
            return Ok(None);
        }
        if self.partial.len() + rest.len() > self.config.max_line_len {
            self.partial.clear();
            self.skipping_line = true;
            return Err(self.line_too_long());
        }
        self.partial.put_slice(&rest);
        Ok(None)
    }

    fn line_too_long(&mut self) -> DecodeError {
        self.drop_event();
        DecodeError::LineTooLong {
            limit: self.config.max_line_len,
        }
    }

    /// Strips a BOM at the start of the stream; false while too few bytes arrived to tell.
    fn check_bom(&mut self) -> bool {
        let seen = self.partial.len();
        let wanted = (BOM.len() - seen).min(self.input.len());
        let candidate = &self.input[..wanted];
        if candidate != &BOM[seen..seen + wanted] {
            // Not a BOM: whatever was held back is the start of the first line.
            self.bom_checked = true;
            return true;
        }
        self.partial.put_slice(candidate);
        self.input.advance(wanted);
        if self.partial.len() == BOM.len() {
            self.partial.clear();
            self.bom_checked = true;
        }
        self.bom_checked
    }

    fn process_line(&mut self, line: Bytes) -> Result<Option<Frame>, DecodeError> {
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        let (name, value) = match memchr::memchr(b':', &line) {
            Some(colon) => {
                let start = if line.get(colon + 1) == Some(&b' ') {
                    colon + 2
                } else {
                    colon + 1
                };
                (&line[..colon], line.slice(start..))
            }
            None => (&line[..], Bytes::new()),
        };
        match name {
            b"data" => self.append_data(value)?,
            b"event" => self.event_type = value,
            b"id" if memchr::memchr(0, &value).is_none() => self.id_buffer = text(value),
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                let millis = value.iter().fold(0u64, |n, digit| {
                    n.saturating_mul(10).saturating_add(u64::from(digit - b'0'))
                });
                let retry = Duration::from_millis(millis);
                self.retry = Some(retry);
                return Ok(Some(Frame::Retry(retry)));
            }
            b"" if self.config.comments => return Ok(Some(Frame::Comment(text(value)))),
            _ => {}
        }
        Ok(None)
    }

    fn append_data(&mut self, value: Bytes) -> Result<(), DecodeError> {
        if self.dropping_event {
            return Ok(());
        }
        let joined = match self.data {
            Data::None => value.len(),
            _ => self.data.len() + 1 + value.len(),
        };
        if joined > self.config.max_event_size {
            self.drop_event();
            return Err(DecodeError::EventTooLarge {
                limit: self.config.max_event_size,
            });
        }
        self.data = match std::mem::replace(&mut self.data, Data::None) {
            Data::None => Data::One(value),
            Data::One(first) => {
                let mut lines = BytesMut::with_capacity(2 * joined);
                lines.put_slice(&first);
                lines.put_u8(b'\n');
                lines.put_slice(&value);
                Data::Many(lines)
            }
            Data::Many(mut lines) => {
                lines.put_u8(b'\n');
                lines.put_slice(&value);
                Data::Many(lines)
            }
        };
        Ok(())
    }

    fn dispatch(&mut self) -> Option<Frame> {
        self.last_event_id = self.id_buffer.clone();
        let data = std::mem::replace(&mut self.data, Data::None);
        let event_type = std::mem::take(&mut self.event_type);
        if std::mem::take(&mut self.dropping_event) {
            return None;
        }
        let data = match data {
            Data::None => return None,
            Data::One(line) => line,
            Data::Many(lines) => lines.freeze(),
        };
        let event_type = if event_type.is_empty() {
            ByteString::from_static("message")
        } else {
            text(event_type)
        };
        Some(Frame::Event(MessageEvent {
            event_type,
            data: text(data),
            last_event_id: self.last_event_id.clone(),
        }))
    }

    /// Forgets the event being read and ignores the rest of it, up to its blank line.
    fn drop_event(&mut self) {
        self.clear_event();
        self.dropping_event = true;
    }

    fn clear_event(&mut self) {
        self.data = Data::None;
        self.event_type = Bytes::new();
        self.dropping_event = false;
    }
}

impl Iterator for Decoder {
    type Item = Result<Frame, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_frame().transpose()
    }
}

/// Turns bytes into text without copying when they are valid UTF-8; otherwise each invalid
/// sequence becomes U+FFFD, as the spec's UTF-8 decode does.
fn text(bytes: Bytes) -> ByteString {
    match ByteString::try_from(bytes.clone()) {
        Ok(text) => text,
        Err(_) => ByteString::from(String::from_utf8_lossy(&bytes).into_owned()),
    }
}
