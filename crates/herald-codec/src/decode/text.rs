//! Text out of the input: UTF-8 validated once per stretch of lines, not once per field.
//!
//! Validating many lines at once runs on the fast ASCII path of the standard validator; each
//! field is then a sub-string of that validated window (a zero-copy slice, or a copy into the
//! buffer of a multi-line `data`) with no second look at its bytes. Lines with invalid UTF-8 fall back
//! to a per-field lossy decode, which gives the same text: an invalid sequence never spans the
//! ASCII bytes that delimit fields.

use std::ops::Range;

use bytes::Bytes;
use bytestring::ByteString;

/// How far ahead a window is validated, at most. Large enough to hold several big events, small
/// enough to stay in a core's L2 cache, so that the line scan that follows reads it from there.
const WINDOW: usize = 256 << 10;

/// Input known to be valid UTF-8, covering the line being read and often the next ones.
#[derive(Debug, Default)]
pub(super) struct TextWindow {
    text: ByteString,
}

impl TextWindow {
    /// Releases the input the window holds on to.
    pub(super) fn clear(&mut self) {
        self.text = ByteString::new();
    }

    /// The text of `owner[value]`, a field of the line `owner[line]`, sharing `owner`.
    pub(super) fn share(
        &mut self,
        owner: &Bytes,
        line: &Range<usize>,
        value: Range<usize>,
    ) -> ByteString {
        if value.is_empty() {
            return ByteString::new();
        }
        if let Some(text) = self.get(&owner[value.clone()]) {
            return self.text.slice_ref(text);
        }
        self.cover(owner, line);
        match self.get(&owner[value.clone()]) {
            Some(text) => self.text.slice_ref(text),
            None => lossy(owner, value),
        }
    }

    /// Appends the text of `owner[value]`, a field of the line `owner[line]`, to `buf`.
    pub(super) fn push_to(
        &mut self,
        buf: &mut String,
        owner: &Bytes,
        line: &Range<usize>,
        value: Range<usize>,
    ) {
        if value.is_empty() {
            return;
        }
        let bytes = &owner[value];
        if self.get(bytes).is_none() {
            self.cover(owner, line);
        }
        match self.get(bytes) {
            Some(text) => buf.push_str(text),
            None => buf.push_str(&String::from_utf8_lossy(bytes)),
        }
    }

    /// `bytes` as a sub-string of the window, if the window holds them.
    fn get(&self, bytes: &[u8]) -> Option<&str> {
        let text: &str = &self.text;
        let base = text.as_ptr() as usize;
        let start = (bytes.as_ptr() as usize).checked_sub(base)?;
        text.get(start..start.checked_add(bytes.len())?)
    }

    /// Makes the window cover `owner[line]`, unless that line is not valid UTF-8.
    fn cover(&mut self, owner: &Bytes, line: &Range<usize>) {
        // Whole lines only, so that no character is cut at the end of the window.
        let limit = owner.len().min(line.start.saturating_add(WINDOW));
        let end = match owner.get(line.end..limit) {
            Some(ahead) => memchr::memrchr2(b'\n', b'\r', ahead).map_or(line.end, |i| line.end + i),
            None => line.end,
        };
        self.validate(owner, line.start, end, line.end);
    }

    /// Makes `owner[start..end]` the window if it is valid UTF-8, or else its valid start if
    /// that reaches `needed`, or else nothing.
    fn validate(&mut self, owner: &Bytes, start: usize, end: usize, needed: usize) {
        self.text = match ByteString::try_from(owner.slice(start..end)) {
            Ok(text) => text,
            Err(error) => {
                let valid = start + error.valid_up_to();
                if valid >= needed {
                    ByteString::try_from(owner.slice(start..valid)).unwrap_or_default()
                } else {
                    ByteString::new()
                }
            }
        };
    }
}

/// The text of `owner[range]`: shared if it is valid UTF-8, otherwise a copy with each invalid
/// sequence replaced by U+FFFD, as the spec's UTF-8 decode does.
fn lossy(owner: &Bytes, range: Range<usize>) -> ByteString {
    match ByteString::try_from(owner.slice(range.clone())) {
        Ok(text) => text,
        Err(_) => ByteString::from(String::from_utf8_lossy(&owner[range]).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_window_serves_many_lines() {
        let owner = Bytes::from_static(b"data: a\ndata: b\n");
        let mut window = TextWindow::default();
        assert_eq!(window.share(&owner, &(0..7), 6..7), "a");
        let covered = window.text.as_bytes().as_ptr_range();
        assert!(
            covered.contains(&owner[14..15].as_ptr()),
            "the second line is covered"
        );
        assert_eq!(window.share(&owner, &(8..15), 14..15), "b");
    }

    #[test]
    fn a_drained_decoder_holds_no_pushed_chunk() {
        let chunk = Bytes::from(b"data: one\n\ndata: two\n\ndata: par".to_vec());
        let mut decoder = crate::Decoder::new();
        decoder.push(chunk.clone());
        let events: Vec<_> = decoder.by_ref().map(|f| f.expect("valid")).collect();
        assert_eq!(events.len(), 2);
        drop(events);
        assert!(
            chunk.is_unique(),
            "only the test holds the chunk once it is used up"
        );
    }

    #[test]
    fn invalid_lines_are_decoded_lossily_and_valid_ones_still_shared() {
        let owner = Bytes::from_static(b"data: ok\ndata: \xFFx\ndata: fine\n");
        let mut window = TextWindow::default();
        assert_eq!(window.share(&owner, &(0..8), 6..8), "ok");
        assert_eq!(window.share(&owner, &(9..17), 15..17), "\u{FFFD}x");
        let fine = window.share(&owner, &(18..28), 24..28);
        assert_eq!(fine, "fine");
        assert_eq!(
            fine.as_bytes().as_ptr(),
            owner[24..].as_ptr(),
            "shared, not copied"
        );
        let mut buf = String::new();
        window.push_to(&mut buf, &owner, &(9..17), 15..17);
        assert_eq!(buf, "\u{FFFD}x");
    }
}
