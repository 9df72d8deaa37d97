//! The event being read: what each field line does to it, and what a blank line dispatches.
//!
//! This is the part of the WHATWG rules that works on whole lines of text. The buffers are
//! reused from one event to the next, so reading an event allocates nothing once they have
//! grown to the stream's usual sizes. A single-line `data` is not copied at all: it is
//! remembered as a range of the text being read and handed out as a slice of it.

use std::ops::Range;
use std::time::Duration;

use super::{DecodeError, Limits};

/// Where the data buffer of the event being read lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Data {
    /// No `data` line yet: a blank line dispatches nothing.
    None,
    /// One line, a range of the chunk being read.
    Text(Range<usize>),
    /// One line, a range of [`Block::split_line`]: a line that arrived in several chunks.
    Line(Range<usize>),
    /// Several lines, joined with LF in [`Block::data_buf`].
    Buf,
}

/// What a line produced, besides changing the event being read.
#[derive(Debug)]
pub(super) enum Outcome {
    /// A blank line dispatched an event.
    Event(Dispatched),
    /// A valid `retry` field.
    Retry(Duration),
    /// A comment, as a range of the line's text.
    Comment(Range<usize>),
}

/// An event a blank line dispatched: where its data is, and whether an `event` field typed it.
#[derive(Debug)]
pub(super) struct Dispatched {
    pub(super) data: Data,
    pub(super) typed: bool,
}

/// The event being read and the stream state that outlives it.
#[derive(Debug)]
pub(super) struct Block {
    pub(super) data: Data,
    /// The data of a multi-line event (valid while `data` is [`Data::Buf`], and after dispatch
    /// until the next event's data arrives).
    pub(super) data_buf: String,
    /// The last line that arrived in several chunks (or that had to be decoded lossily),
    /// joined here. Always valid UTF-8: see [`Block::split_text`].
    pub(super) split_line: Vec<u8>,
    /// The size of the data buffer as the limit counts it.
    data_len: usize,
    /// Whether an `event` field set the type; otherwise it is `message`.
    has_type: bool,
    /// The event type buffer (kept after dispatch, so a dispatched event can borrow it).
    type_buf: String,
    /// An `id` was read since the last blank line: `pending_id` is the next last event ID.
    has_pending_id: bool,
    pending_id: String,
    /// Where `pending_id` was read, when it is a range of the chunk being read.
    pending_id_at: Option<Range<usize>>,
    pub(super) last_event_id: String,
    /// Where `last_event_id` was read, when it is a range of the chunk being read (owned
    /// events then share the chunk rather than copy the ID).
    pub(super) last_event_id_at: Option<Range<usize>>,
    /// The event being read hit a limit: nothing is dispatched at its blank line.
    pub(super) dropping: bool,
    pub(super) retry: Option<Duration>,
}

impl Block {
    pub(super) fn new() -> Block {
        Block {
            data: Data::None,
            data_buf: String::new(),
            split_line: Vec::new(),
            data_len: 0,
            has_type: false,
            type_buf: String::new(),
            has_pending_id: false,
            pending_id: String::new(),
            pending_id_at: None,
            last_event_id: String::new(),
            last_event_id_at: None,
            dropping: false,
            retry: None,
        }
    }

    /// The type of a dispatched event.
    pub(super) fn event_type(&self, event: &Dispatched) -> &str {
        if event.typed {
            &self.type_buf
        } else {
            "message"
        }
    }

    /// The data of a dispatched event, `chunk` being the text a [`Data::Text`] range is of.
    pub(super) fn data<'a>(&'a self, event: &Dispatched, chunk: &'a str) -> &'a str {
        let (text, range) = match &event.data {
            Data::None => return "",
            Data::Buf => return &self.data_buf,
            Data::Text(range) => (chunk, range),
            Data::Line(range) => (self.split_text(), range),
        };
        text.get(range.clone()).unwrap_or_default()
    }

    /// The text of [`Block::split_line`]. Validating it again (at tens of GB/s) is what it
    /// costs to keep it as bytes, which need no second pass of the slower standard validator.
    pub(super) fn split_text(&self) -> &str {
        valid_text(&self.split_line)
    }

    /// Interprets one line (terminator excluded) of `text`.
    pub(super) fn line(
        &mut self,
        text: &str,
        line: Range<usize>,
        limits: &Limits,
    ) -> Result<Option<Outcome>, DecodeError> {
        let bytes = &text.as_bytes()[line.clone()];
        match field(bytes) {
            Some((field, skip)) => self.apply(field, text, line.start + skip..line.end, limits),
            None if bytes.is_empty() => Ok(self.dispatch().map(Outcome::Event)),
            None => Ok(None),
        }
    }

    /// Applies `field` with the value `text[value]`.
    #[inline(always)]
    pub(super) fn apply(
        &mut self,
        field: Field,
        text: &str,
        value: Range<usize>,
        limits: &Limits,
    ) -> Result<Option<Outcome>, DecodeError> {
        if field == Field::Data {
            self.append_data(text, value, limits)?;
            return Ok(None);
        }
        let value_text = text.get(value.clone()).unwrap_or_default();
        match field {
            Field::Data => {}
            Field::Event => {
                // An empty type is no type: the event is a `message`.
                self.has_type = !value_text.is_empty();
                if self.type_buf != value_text {
                    value_text.clone_into(&mut self.type_buf);
                }
            }
            Field::Id if !value_text.bytes().any(|byte| byte == 0) => {
                self.has_pending_id = true;
                self.pending_id_at = Some(value);
                value_text.clone_into(&mut self.pending_id);
            }
            Field::Retry => {
                let digits = value_text.as_bytes();
                if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
                    let millis = digits.iter().fold(0u64, |n, digit| {
                        n.saturating_mul(10).saturating_add(u64::from(digit - b'0'))
                    });
                    let retry = Duration::from_millis(millis);
                    self.retry = Some(retry);
                    return Ok(Some(Outcome::Retry(retry)));
                }
            }
            Field::Comment if limits.comments => return Ok(Some(Outcome::Comment(value))),
            Field::Id | Field::Comment => {}
        }
        Ok(None)
    }

    #[inline(always)]
    fn append_data(
        &mut self,
        text: &str,
        value: Range<usize>,
        limits: &Limits,
    ) -> Result<(), DecodeError> {
        if self.dropping {
            return Ok(());
        }
        let fits = if self.data == Data::None {
            let fits = value.len() <= limits.max_event_size;
            if fits {
                self.data_len = value.len();
                self.data = Data::Text(value);
            }
            fits
        } else {
            self.push_data_line(text, value, limits)
        };
        if !fits {
            self.drop_event();
            return Err(DecodeError::EventTooLarge {
                limit: limits.max_event_size,
            });
        }
        Ok(())
    }

    /// Appends one more `data` line to an event that already has data, if that stays within
    /// the event size limit; false (changing nothing) otherwise, or if the event has no data
    /// yet or is being dropped.
    #[inline(always)]
    pub(super) fn push_data_line(
        &mut self,
        text: &str,
        value: Range<usize>,
        limits: &Limits,
    ) -> bool {
        let joined = self.data_len + 1 + value.len();
        if self.data == Data::None || self.dropping || joined > limits.max_event_size {
            return false;
        }
        self.data_len = joined;
        if self.data != Data::Buf {
            self.detach(text);
        }
        self.data_buf.push('\n');
        self.data_buf.push_str(text.get(value).unwrap_or_default());
        true
    }

    /// The blank line: the pending ID becomes the last event ID, and the data, if any, is
    /// dispatched. The type is reset either way (its buffer is kept, so that the dispatched
    /// event can borrow it).
    #[inline]
    pub(super) fn dispatch(&mut self) -> Option<Dispatched> {
        if std::mem::take(&mut self.has_pending_id) {
            std::mem::swap(&mut self.last_event_id, &mut self.pending_id);
            self.last_event_id_at = self.pending_id_at.take();
        }
        let data = std::mem::replace(&mut self.data, Data::None);
        self.data_len = 0;
        let typed = std::mem::take(&mut self.has_type);
        let dropped = std::mem::take(&mut self.dropping);
        if data == Data::None || dropped {
            return None;
        }
        Some(Dispatched { data, typed })
    }

    /// The text being read (a chunk, or a line read on its own) is about to go away: nothing
    /// may point into it any more.
    pub(super) fn end_of_text(&mut self, text: &str) {
        self.pending_id_at = None;
        self.last_event_id_at = None;
        if matches!(self.data, Data::Text(_)) {
            self.detach(text);
        }
    }

    /// Moves a single-line data buffer into [`Block::data_buf`]: the chunk `chunk` it is a
    /// range of is about to go away, or another line joins it.
    pub(super) fn detach(&mut self, chunk: &str) {
        let (text, range) = match &self.data {
            Data::None | Data::Buf => return,
            Data::Text(range) => (chunk, range.clone()),
            Data::Line(range) => (valid_text(&self.split_line), range.clone()),
        };
        self.data_buf.clear();
        self.data_buf.push_str(text.get(range).unwrap_or_default());
        self.data = Data::Buf;
    }

    /// Forgets the event being read and ignores the rest of it, up to its blank line.
    pub(super) fn drop_event(&mut self) {
        self.clear_event();
        self.dropping = true;
    }

    /// Forgets the event being read. Its `id`, if it had one, still becomes the last event ID
    /// at its blank line: the event is dropped, not the stream's position.
    fn clear_event(&mut self) {
        self.data = Data::None;
        self.data_len = 0;
        self.has_type = false;
        self.dropping = false;
    }

    /// Forgets the event being read and its pending ID: the stream ended before its blank line.
    pub(super) fn end_stream(&mut self) {
        self.clear_event();
        self.has_pending_id = false;
    }

    /// Sets the last event ID, as a client resuming a stream knows it.
    pub(super) fn set_last_event_id(&mut self, id: &str) {
        id.clone_into(&mut self.last_event_id);
        self.last_event_id_at = None;
        self.has_pending_id = false;
    }
}

/// Bytes already known to be valid UTF-8, as text (empty should they not be).
fn valid_text(bytes: &[u8]) -> &str {
    simdutf8::basic::from_utf8(bytes).unwrap_or_default()
}

/// The fields the spec knows, and comments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    Data,
    Event,
    Id,
    Retry,
    Comment,
}

/// The field the line starting `bytes` sets, and where its value starts: after the first colon
/// and one space, or at the end of the line (a CR, an LF or the end of `bytes`) for a line
/// without a colon. `None` for a blank line or a field the spec does not know (ignored).
#[inline(always)]
pub(super) fn field(bytes: &[u8]) -> Option<(Field, usize)> {
    // Each name is compared as a constant, which compiles to a load and a compare.
    let (field, name_len) = match bytes.first()? {
        b'd' if bytes.get(..4) == Some(&b"data"[..]) => (Field::Data, 4),
        b'e' if bytes.get(..5) == Some(&b"event"[..]) => (Field::Event, 5),
        b'i' if bytes.get(..2) == Some(&b"id"[..]) => (Field::Id, 2),
        b'r' if bytes.get(..5) == Some(&b"retry"[..]) => (Field::Retry, 5),
        b':' => (Field::Comment, 0),
        _ => return None,
    };
    match bytes.get(name_len) {
        Some(b':') => {
            let space = usize::from(bytes.get(name_len + 1) == Some(&b' '));
            Some((field, name_len + 1 + space))
        }
        None | Some(b'\r' | b'\n') => Some((field, name_len)),
        Some(_) => None,
    }
}
