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
//! that lies within one chunk is read in place without a copy or an allocation, and a
//! single-line `data` comes out as a slice of the input [`Bytes`]. UTF-8 is validated once per
//! stretch of lines, not per field; bytes that are not UTF-8 become U+FFFD. Once every pushed
//! byte is used up, the decoder keeps no reference to the pushed chunks.
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

mod scan;
mod text;

use std::ops::Range;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use bytestring::ByteString;

use crate::frame::{Frame, MessageEvent};
use text::TextWindow;

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
            split_hint: 0,
            bom_checked: false,
            after_cr: false,
            skipping_line: false,
            window: TextWindow::default(),
            data: Data::None,
            data_len: 0,
            event_type: ByteString::new(),
            pending_id: None,
            last_event_id: ByteString::new(),
            dropping_event: false,
            retry: None,
        }
    }
}

/// The data buffer of the event being read.
#[derive(Debug, Default)]
enum Data {
    /// No `data` line yet: a blank line dispatches nothing.
    #[default]
    None,
    /// One line, kept as a slice of the input.
    One(ByteString),
    /// Several lines, joined with LF.
    Many(String),
}

/// The largest capacity reserved ahead for a line split across chunks.
const MAX_SPLIT_HINT: usize = 1 << 20;

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
    /// The length of the last line split across chunks: room reserved for the next one.
    split_hint: usize,
    bom_checked: bool,
    /// The last line ended with a CR that was the last byte available: an LF next is its pair.
    after_cr: bool,
    /// The rest of an over-long line is being skipped.
    skipping_line: bool,
    /// Validated text of the input, from which fields are taken.
    window: TextWindow,
    data: Data,
    /// The length of the data buffer in bytes as received (what the size limit counts).
    data_len: usize,
    /// The event type buffer; empty means `message`.
    event_type: ByteString,
    /// An ID read since the last blank line: the last event ID from the next one on.
    pending_id: Option<ByteString>,
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
        } else if !chunk.is_empty() {
            let mut joined = BytesMut::with_capacity(self.input.len() + chunk.len());
            joined.extend_from_slice(&self.input);
            joined.extend_from_slice(&chunk);
            self.input = joined.freeze();
        }
    }

    /// Adds the next chunk of the stream, copying it.
    pub fn push_slice(&mut self, chunk: &[u8]) {
        self.push(Bytes::copy_from_slice(chunk));
    }

    /// The next frame in the bytes pushed so far, or `None` once they are used up.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, DecodeError> {
        loop {
            if !self.bom_checked && !self.check_bom() {
                return Ok(None);
            }
            if self.input.is_empty() {
                self.release_input();
                return Ok(None);
            }
            if self.after_cr {
                self.after_cr = false;
                if self.input[0] == b'\n' {
                    self.input.advance(1);
                    continue;
                }
            }
            if self.skipping_line || !self.partial.is_empty() {
                match self.finish_split_line() {
                    Ok(None) => continue,
                    other => return other,
                }
            }
            // The hot path: lines that lie within the input are read in place.
            let input = std::mem::take(&mut self.input);
            let mut consumed = 0;
            let result = self.read_lines(&input, &mut consumed);
            self.input = input;
            self.input.advance(consumed);
            if self.input.is_empty() {
                self.release_input();
            }
            return result;
        }
    }

    /// Ends the stream: whatever was not closed by a blank line is discarded, and the decoder
    /// is ready for a new stream (the last event ID and reconnection time are kept, as an
    /// `EventSource` keeps them across reconnections).
    pub fn finish(&mut self) {
        self.input = Bytes::new();
        self.partial.clear();
        self.bom_checked = false;
        self.after_cr = false;
        self.skipping_line = false;
        self.clear_event();
        self.pending_id = None;
        self.window.clear();
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
        self.pending_id = None;
    }

    /// How many bytes are held waiting for the end of a line.
    pub fn buffered_len(&self) -> usize {
        self.input.len() + self.partial.len()
    }

    /// Drops every reference to pushed chunks once they are used up, so that their memory goes
    /// back as soon as the events taken from them are gone.
    fn release_input(&mut self) {
        self.input = Bytes::new();
        self.window.clear();
    }

    /// Reads the lines of `input` from `pos` in place until one yields a frame or an error,
    /// moving `pos` past the bytes used up. An unterminated rest is moved to the partial line.
    fn read_lines(&mut self, input: &Bytes, pos: &mut usize) -> Result<Option<Frame>, DecodeError> {
        let bytes: &[u8] = input;
        while let Some(rest) = bytes.get(*pos..).filter(|rest| !rest.is_empty()) {
            if rest[0] == b'\n' {
                // A blank line, the most common line of all.
                *pos += 1;
                match self.dispatch() {
                    Some(frame) => return Ok(Some(frame)),
                    None => continue,
                }
            }
            let mut found = None;
            if let Some(frame) = self.data_then_blank_line(input, pos, &mut found) {
                return Ok(Some(frame));
            }
            let end = found.unwrap_or_else(|| scan::find_eol(rest));
            let Some(end) = end else {
                *pos = bytes.len();
                return self.keep_partial_line(rest).map(|()| None);
            };
            let start = *pos;
            let (terminator, after_cr) = terminator(rest, end);
            self.after_cr = after_cr;
            *pos += end + terminator;
            if end > self.config.max_line_len {
                return Err(self.line_too_long());
            }
            let frame = self.process_line(input, start..start + end)?;
            if frame.is_some() {
                return Ok(frame);
            }
        }
        Ok(None)
    }

    /// The fast path for the most common event of all: one `data` line, LF, then the blank
    /// line. Returns the event, having moved `pos` past it; for anything else, changes nothing
    /// and sets `found` to where the line ends if it looked for it.
    #[inline]
    fn data_then_blank_line(
        &mut self,
        input: &Bytes,
        pos: &mut usize,
        found: &mut Option<Option<usize>>,
    ) -> Option<Frame> {
        let start = *pos;
        let rest = &input[start..];
        let after_name = rest.strip_prefix(b"data:")?;
        if !matches!(self.data, Data::None) || self.dropping_event {
            return None;
        }
        let skip = if after_name.first() == Some(&b' ') {
            6
        } else {
            5
        };
        let Some(len) = memchr::memchr2(b'\n', b'\r', &rest[skip..]) else {
            *found = Some(None);
            return None;
        };
        let end = skip + len;
        if rest.get(end..end + 2) != Some(b"\n\n")
            || end > self.config.max_line_len
            || len > self.config.max_event_size
        {
            *found = Some(Some(end));
            return None;
        }
        let line = start..start + end;
        let data = self.window.share(input, &line, start + skip..start + end);
        *pos = start + end + 2;
        if let Some(id) = self.pending_id.take() {
            self.last_event_id = id;
        }
        let event_type = if self.event_type.is_empty() {
            ByteString::from_static("message")
        } else {
            std::mem::take(&mut self.event_type)
        };
        Some(Frame::Event(MessageEvent {
            event_type,
            data,
            last_event_id: self.last_event_id.clone(),
        }))
    }

    /// Ends the line that earlier chunks started (or skips the rest of an over-long one).
    fn finish_split_line(&mut self) -> Result<Option<Frame>, DecodeError> {
        let Some(end) = scan::find_eol(&self.input) else {
            let rest = std::mem::take(&mut self.input);
            return self.keep_partial_line(&rest).map(|()| None);
        };
        let (terminator, after_cr) = terminator(&self.input, end);
        self.after_cr = after_cr;
        let used = end + terminator;
        if std::mem::take(&mut self.skipping_line) {
            self.input.advance(used);
            return Ok(None);
        }
        if self.partial.len() + end > self.config.max_line_len {
            self.partial.clear();
            self.input.advance(used);
            return Err(self.line_too_long());
        }
        self.partial.extend_from_slice(&self.input[..end]);
        self.input.advance(used);
        let line = self.partial.split().freeze();
        self.split_hint = line.len().min(MAX_SPLIT_HINT);
        self.process_line(&line, 0..line.len())
    }

    /// Keeps the unterminated rest of the input for when its line ends.
    fn keep_partial_line(&mut self, rest: &[u8]) -> Result<(), DecodeError> {
        if self.skipping_line {
            return Ok(());
        }
        if self.partial.len() + rest.len() > self.config.max_line_len {
            self.partial.clear();
            self.skipping_line = true;
            return Err(self.line_too_long());
        }
        if self.partial.is_empty() {
            self.partial.reserve(rest.len().max(self.split_hint));
        }
        self.partial.extend_from_slice(rest);
        Ok(())
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
        self.partial.extend_from_slice(candidate);
        self.input.advance(wanted);
        if self.partial.len() == BOM.len() {
            self.partial.clear();
            self.bom_checked = true;
        }
        self.bom_checked
    }

    /// Interprets the line `owner[line]` (terminator excluded).
    fn process_line(
        &mut self,
        owner: &Bytes,
        line: Range<usize>,
    ) -> Result<Option<Frame>, DecodeError> {
        let bytes = &owner[line.clone()];
        if bytes.is_empty() {
            return Ok(self.dispatch());
        }
        // Every field name the spec knows has at most five bytes, so the colon that ends one is
        // among the first six; a longer name is ignored without looking for its colon.
        let head = &bytes[..bytes.len().min(6)];
        let (name, value) = match head.iter().position(|&byte| byte == b':') {
            Some(colon) => {
                let skip = if bytes.get(colon + 1) == Some(&b' ') {
                    2
                } else {
                    1
                };
                (&bytes[..colon], line.start + colon + skip..line.end)
            }
            None if bytes.len() <= 5 => (bytes, line.end..line.end),
            None => return Ok(None),
        };
        match name {
            b"data" => self.append_data(owner, &line, value)?,
            b"event" => self.event_type = self.window.share(owner, &line, value),
            b"id" if !owner[value.clone()].contains(&0) => {
                self.pending_id = Some(self.window.share(owner, &line, value));
            }
            b"retry" => {
                let digits = &owner[value];
                if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
                    let millis = digits.iter().fold(0u64, |n, digit| {
                        n.saturating_mul(10).saturating_add(u64::from(digit - b'0'))
                    });
                    let retry = Duration::from_millis(millis);
                    self.retry = Some(retry);
                    return Ok(Some(Frame::Retry(retry)));
                }
            }
            b"" if self.config.comments => {
                return Ok(Some(Frame::Comment(self.window.share(owner, &line, value))));
            }
            _ => {}
        }
        Ok(None)
    }

    fn append_data(
        &mut self,
        owner: &Bytes,
        line: &Range<usize>,
        value: Range<usize>,
    ) -> Result<(), DecodeError> {
        if self.dropping_event {
            return Ok(());
        }
        let joined = match self.data {
            Data::None => value.len(),
            _ => self.data_len + 1 + value.len(),
        };
        if joined > self.config.max_event_size {
            self.drop_event();
            return Err(DecodeError::EventTooLarge {
                limit: self.config.max_event_size,
            });
        }
        self.data_len = joined;
        self.data = match std::mem::take(&mut self.data) {
            Data::None => Data::One(self.window.share(owner, line, value)),
            Data::One(first) => {
                let mut lines = String::with_capacity(2 * joined);
                lines.push_str(&first);
                lines.push('\n');
                self.window.push_to(&mut lines, owner, line, value);
                Data::Many(lines)
            }
            Data::Many(mut lines) => {
                lines.push('\n');
                self.window.push_to(&mut lines, owner, line, value);
                Data::Many(lines)
            }
        };
        Ok(())
    }

    fn dispatch(&mut self) -> Option<Frame> {
        if let Some(id) = self.pending_id.take() {
            self.last_event_id = id;
        }
        let data = std::mem::take(&mut self.data);
        self.data_len = 0;
        let data = match data {
            _ if std::mem::take(&mut self.dropping_event) => None,
            Data::None => None,
            Data::One(line) => Some(line),
            Data::Many(lines) => Some(ByteString::from(lines)),
        };
        let event_type = std::mem::take(&mut self.event_type);
        let data = data?;
        let event_type = if event_type.is_empty() {
            ByteString::from_static("message")
        } else {
            event_type
        };
        Some(Frame::Event(MessageEvent {
            event_type,
            data,
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
        self.data_len = 0;
        self.event_type = ByteString::new();
        self.dropping_event = false;
    }
}

impl Iterator for Decoder {
    type Item = Result<Frame, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_frame().transpose()
    }
}

/// The length of the line terminator at `rest[end]`, and whether it is a CR that ends the bytes
/// available (so that an LF at the start of the next chunk is its pair).
fn terminator(rest: &[u8], end: usize) -> (usize, bool) {
    if rest[end] == b'\n' {
        return (1, false);
    }
    match rest.get(end + 1) {
        Some(b'\n') => (2, false),
        Some(_) => (1, false),
        None => (1, true),
    }
}
