//! Lines out of chunks: the BOM, line endings split across chunks, UTF-8, and the line limit.
//!
//! A chunk is read in three parts. The end of a line that earlier chunks started is joined to
//! them (and decoded as one line, so that a character split across chunks survives). The
//! stretch of whole lines that follows is validated as UTF-8 in one pass and read in place:
//! each line is found with [`scan::find_eol`] and handed to the [`Block`] as a range of that
//! text, with no copy. Whatever follows the last line ending waits for the next chunk.
//!
//! A line holding bytes that are not UTF-8 is decoded on its own, each invalid sequence
//! becoming U+FFFD, as the spec's decoding of the whole stream would: such a sequence can never
//! swallow the ASCII bytes that end lines or separate fields.

use std::time::Duration;

use super::block::{Block, Data, Dispatched, Field, Outcome, field};
use super::{DecodeError, Limits, scan};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The largest capacity reserved ahead for a line split across chunks.
const MAX_SPLIT_HINT: usize = 1 << 20;

/// What reading found, handed to the caller's sink as soon as it is found.
pub(super) enum Found<'a> {
    /// An event; its text is in `block`, or is a range of `chunk`.
    Event {
        block: &'a mut Block,
        event: Dispatched,
        chunk: &'a str,
    },
    /// A valid `retry` field.
    Retry(Duration),
    /// A comment (only when comments were asked for).
    Comment(&'a str),
    /// A limit was hit; the event it belongs to is dropped.
    Error(DecodeError),
}

/// The decoding state of one stream, short of the event-level state in [`Block`].
#[derive(Debug)]
pub(super) struct Reader {
    pub(super) limits: Limits,
    pub(super) block: Block,
    /// The start of a line whose end has not arrived yet (or of a possible BOM).
    pub(super) partial: Vec<u8>,
    bom_checked: bool,
    /// The last line ended with a CR that was the last byte available: an LF next is its pair.
    after_cr: bool,
    /// The rest of an over-long line is being skipped.
    skipping_line: bool,
    /// The length of the last line split across chunks: room reserved for the next one.
    split_hint: usize,
}

impl Reader {
    pub(super) fn new(limits: Limits) -> Reader {
        Reader {
            limits,
            block: Block::new(),
            partial: Vec::new(),
            bom_checked: false,
            after_cr: false,
            skipping_line: false,
            split_hint: 0,
        }
    }

    /// Ends the stream: an unfinished line or event is dropped; the next bytes start a new
    /// stream (which may open with a BOM).
    pub(super) fn finish(&mut self) {
        self.partial.clear();
        self.bom_checked = false;
        self.after_cr = false;
        self.skipping_line = false;
        self.block.end_stream();
    }

    /// Reads `chunk`, handing everything found to `sink`, in order.
    pub(super) fn read<F: FnMut(Found<'_>)>(&mut self, chunk: &[u8], sink: &mut F) {
        let mut pos = 0;
        if !self.bom_checked {
            match self.skip_bom(chunk) {
                Some(skipped) => pos = skipped,
                None => return,
            }
        }
        if self.after_cr && pos < chunk.len() {
            self.after_cr = false;
            if chunk[pos] == b'\n' {
                pos += 1;
            }
        }
        if self.skipping_line || !self.partial.is_empty() {
            match self.end_split_line(chunk, pos, sink) {
                Some(next) => pos = next,
                None => return,
            }
        }
        let rest = &chunk[pos..];
        let whole = match memchr::memrchr2(b'\n', b'\r', rest) {
            Some(last) => last + 1,
            None => 0,
        };
        if whole > 0 && rest[whole - 1] == b'\r' && whole == rest.len() {
            self.after_cr = true;
        }
        self.read_whole_lines(&rest[..whole], sink);
        self.keep_partial(&rest[whole..], sink);
    }

    /// Reads lines that all end within `bytes`, validating their UTF-8 in one pass.
    fn read_whole_lines<F: FnMut(Found<'_>)>(&mut self, mut bytes: &[u8], sink: &mut F) {
        while !bytes.is_empty() {
            if let Ok(text) = simdutf8::basic::from_utf8(bytes) {
                return self.read_text(text, sink);
            }
            // Only now find where the invalid bytes are (the slower check that can tell).
            let error = match simdutf8::compat::from_utf8(bytes) {
                Ok(text) => return self.read_text(text, sink),
                Err(error) => error,
            };
            // Read the valid lines before the invalid one, then that line on its own.
            let bad = error.valid_up_to();
            let start = memchr::memrchr2(b'\n', b'\r', &bytes[..bad]).map_or(0, |i| i + 1);
            if let Ok(text) = simdutf8::basic::from_utf8(&bytes[..start]) {
                self.read_text(text, sink);
            }
            let line = &bytes[start..];
            let end = scan::find_eol(line).unwrap_or(line.len());
            let used = (end + terminator_len(line, end)).min(line.len());
            if end > self.limits.max_line_len {
                self.line_too_long(sink);
            } else {
                self.owned_line(line[..end].to_vec(), sink);
            }
            bytes = &line[used..];
        }
    }

    /// Reads lines of valid text, each ended within it.
    #[inline]
    fn read_text<F: FnMut(Found<'_>)>(&mut self, text: &str, sink: &mut F) {
        let bytes = text.as_bytes();
        let mut pos = 0;
        while let Some(rest) = bytes.get(pos..).filter(|rest| !rest.is_empty()) {
            let (outcome, used) = match field(rest) {
                Some((field, skip)) => {
                    // Other lines are short, and found faster word by word.
                    let len = match field {
                        Field::Data => data_line_end(rest, skip),
                        _ => scan::find_eol(rest),
                    };
                    let end = len.unwrap_or(rest.len());
                    let used = end + terminator_len(rest, end);
                    if end > self.limits.max_line_len {
                        self.line_too_long(sink);
                        pos += used;
                        continue;
                    }
                    let value = pos + skip.min(end)..pos + end;
                    let outcome = self.block.apply(field, text, value, &self.limits);
                    if field == Field::Data
                        && bytes.get(pos + used) == Some(&b'd')
                        && matches!(outcome, Ok(None))
                    {
                        // Data lines come in runs: read the rest of the run here.
                        pos = self.data_run(text, pos + used);
                        continue;
                    }
                    (outcome, used)
                }
                None if rest[0] == b'\n' || rest[0] == b'\r' => {
                    let outcome = Ok(self.block.dispatch().map(Outcome::Event));
                    (outcome, terminator_len(rest, 0))
                }
                None => {
                    // A field the spec does not know: ignored (but it counts against the line
                    // limit, as it would if it arrived in pieces).
                    let end = scan::find_eol(rest).unwrap_or(rest.len());
                    pos += end + terminator_len(rest, end);
                    if end > self.limits.max_line_len {
                        self.line_too_long(sink);
                    }
                    continue;
                }
            };
            pos += used;
            self.emit(outcome, text, sink);
        }
        self.block.end_of_text(text);
    }

    /// Appends the `data: value` lines that follow `pos` in `text` to the event being read, as
    /// long as they fit the limits; returns where the run ends. Anything else (another field,
    /// a line without the colon, one over a limit) is left to the general path.
    #[inline]
    fn data_run(&mut self, text: &str, mut pos: usize) -> usize {
        let bytes = text.as_bytes();
        while let Some(rest) = bytes.get(pos..) {
            let Some(after) = rest.strip_prefix(b"data:") else {
                break;
            };
            let skip = 5 + usize::from(after.first() == Some(&b' '));
            let Some(end) = data_line_end(rest, skip) else {
                break;
            };
            if end > self.limits.max_line_len
                || !self
                    .block
                    .push_data_line(text, pos + skip..pos + end, &self.limits)
            {
                break;
            }
            pos += end + terminator_len(rest, end);
        }
        pos
    }

    /// Hands what a line produced to `sink`; `text` is the text the line was read from.
    #[inline(always)]
    fn emit<F: FnMut(Found<'_>)>(
        &mut self,
        outcome: Result<Option<Outcome>, DecodeError>,
        text: &str,
        sink: &mut F,
    ) {
        match outcome {
            Ok(None) => {}
            Ok(Some(Outcome::Event(event))) => sink(Found::Event {
                block: &mut self.block,
                event,
                chunk: text,
            }),
            Ok(Some(Outcome::Retry(retry))) => sink(Found::Retry(retry)),
            Ok(Some(Outcome::Comment(range))) => {
                sink(Found::Comment(text.get(range).unwrap_or_default()));
            }
            Err(error) => sink(Found::Error(error)),
        }
    }

    /// Reads a line that is not a range of a validated chunk: one that arrived in several
    /// chunks, or one that holds invalid UTF-8 (each invalid sequence becomes U+FFFD).
    fn owned_line<F: FnMut(Found<'_>)>(&mut self, mut line: Vec<u8>, sink: &mut F) {
        // The previous split line is about to be replaced: data taken from it moves out first.
        if matches!(self.block.data, Data::Line(_)) {
            self.block.detach("");
        }
        let outcome = match simdutf8::basic::from_utf8(&line) {
            Ok(text) => self.block.line(text, 0..text.len(), &self.limits),
            Err(_) => {
                line = String::from_utf8_lossy(&line).into_owned().into_bytes();
                let text = simdutf8::basic::from_utf8(&line).unwrap_or_default();
                self.block.line(text, 0..text.len(), &self.limits)
            }
        };
        if let Data::Text(range) = &self.block.data {
            self.block.data = Data::Line(range.clone());
        }
        // An ID read from this line is copied; only IDs read in place are shared.
        self.block.end_of_text("");
        let old = std::mem::replace(&mut self.block.split_line, line);
        if self.partial.capacity() == 0 {
            // Reuse the old line's allocation for the next split line.
            self.partial = old;
            self.partial.clear();
        }
        match outcome {
            Ok(Some(Outcome::Comment(range))) => {
                let text = self.block.split_text().get(range).unwrap_or_default();
                sink(Found::Comment(text));
            }
            other => self.emit(other, "", sink),
        }
    }

    /// Ends the line that earlier chunks started (or skips the rest of an over-long one).
    /// Returns where the chunk goes on, or `None` if the line does not end in it.
    fn end_split_line<F: FnMut(Found<'_>)>(
        &mut self,
        chunk: &[u8],
        pos: usize,
        sink: &mut F,
    ) -> Option<usize> {
        let rest = &chunk[pos..];
        let Some(end) = scan::find_eol(rest) else {
            self.keep_partial(rest, sink);
            return None;
        };
        if end + 1 == rest.len() && rest[end] == b'\r' {
            // A CR that ends the chunk: an LF at the start of the next one is its pair.
            self.after_cr = true;
        }
        let next = pos + end + terminator_len(rest, end);
        if std::mem::take(&mut self.skipping_line) {
            return Some(next);
        }
        if self.partial.len() + end > self.limits.max_line_len {
            self.partial.clear();
            self.line_too_long(sink);
            return Some(next);
        }
        self.partial.extend_from_slice(&rest[..end]);
        let line = std::mem::take(&mut self.partial);
        self.split_hint = line.len().min(MAX_SPLIT_HINT);
        self.owned_line(line, sink);
        Some(next)
    }

    /// Keeps the unterminated rest of a chunk for when its line ends.
    fn keep_partial<F: FnMut(Found<'_>)>(&mut self, rest: &[u8], sink: &mut F) {
        if self.skipping_line || rest.is_empty() {
            return;
        }
        if self.partial.len() + rest.len() > self.limits.max_line_len {
            self.partial.clear();
            self.skipping_line = true;
            self.line_too_long(sink);
            return;
        }
        if self.partial.is_empty() {
            self.partial.reserve(rest.len().max(self.split_hint));
        }
        self.partial.extend_from_slice(rest);
    }

    fn line_too_long<F: FnMut(Found<'_>)>(&mut self, sink: &mut F) {
        self.block.drop_event();
        sink(Found::Error(DecodeError::LineTooLong {
            limit: self.limits.max_line_len,
        }));
    }

    /// Strips a BOM at the start of the stream. Returns how many bytes of `chunk` it took, or
    /// `None` while too few bytes arrived to tell.
    fn skip_bom(&mut self, chunk: &[u8]) -> Option<usize> {
        let seen = self.partial.len();
        let wanted = (BOM.len() - seen).min(chunk.len());
        let candidate = &chunk[..wanted];
        if candidate != &BOM[seen..seen + wanted] {
            // Not a BOM: whatever was held back is the start of the first line.
            self.bom_checked = true;
            return Some(0);
        }
        self.partial.extend_from_slice(candidate);
        if self.partial.len() < BOM.len() {
            return None;
        }
        self.partial.clear();
        self.bom_checked = true;
        Some(wanted)
    }
}

/// Where the `data` line starting `rest` ends, its value starting at `skip`: a value is usually
/// long, so it is searched with `memchr2` at once rather than word by word.
#[inline]
fn data_line_end(rest: &[u8], skip: usize) -> Option<usize> {
    rest.get(skip..)
        .and_then(|value| memchr::memchr2(b'\n', b'\r', value))
        .map(|len| skip + len)
}

/// The length of the line terminator at `bytes[end]`: 2 for CRLF, 1 for a lone CR or LF, and
/// 1 for a CR that ends `bytes` (whose LF, if any, has not arrived). 0 at the end of `bytes`.
#[inline]
fn terminator_len(bytes: &[u8], end: usize) -> usize {
    match bytes.get(end) {
        None => 0,
        Some(b'\r') if bytes.get(end + 1) == Some(&b'\n') => 2,
        Some(_) => 1,
    }
}
