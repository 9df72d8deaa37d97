//! Writing events as `text/event-stream` bytes.
//!
//! An event is encoded once, into one allocation of exactly the right size, and the resulting
//! [`Bytes`] is shared (by reference count) with every connection that sends it. Fields are
//! written in the order `:comment`, `event`, `retry`, `id`, `data`, then the blank line that ends
//! the event; every CRLF, CR or LF in data or a comment starts a new line of the same field.

use bytes::{BufMut, Bytes, BytesMut};

use crate::event::Event;

impl Event {
    /// Encodes the event into a new buffer of exactly [`encoded_len`](Self::encoded_len) bytes.
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.encoded_len());
        self.encode_into(&mut buf);
        buf.freeze()
    }

    /// Appends the encoded event to `buf`, growing it at most once.
    pub fn encode_into(&self, buf: &mut BytesMut) {
        buf.reserve(self.encoded_len());
        if let Some(comment) = &self.comment {
            write_lines(buf, b":", comment);
        }
        if self.is_comment_only() {
            return;
        }
        if let Some(event) = &self.event {
            write_field(buf, b"event: ", event.as_bytes());
        }
        if let Some(retry) = self.retry {
            let mut digits = itoa::Buffer::new();
            write_field(buf, b"retry: ", digits.format(millis(retry)).as_bytes());
        }
        if let Some(id) = &self.id {
            write_field(buf, b"id: ", id.as_bytes());
        }
        if let Some(data) = &self.data {
            write_lines(buf, b"data: ", data);
        }
        buf.put_u8(b'\n');
    }

    /// The exact number of bytes [`encode`](Self::encode) produces.
    pub fn encoded_len(&self) -> usize {
        let mut len = self.comment.as_deref().map_or(0, |c| lines_len(b":", c));
        if self.is_comment_only() {
            return len;
        }
        len += self
            .event
            .as_ref()
            .map_or(0, |e| "event: \n".len() + e.len());
        len += self.retry.map_or(0, |r| {
            "retry: \n".len() + itoa::Buffer::new().format(millis(r)).len()
        });
        len += self.id.as_ref().map_or(0, |i| "id: \n".len() + i.len());
        len += self.data.as_deref().map_or(0, |d| lines_len(b"data: ", d));
        len + 1
    }
}

/// Encodes `event`; shorthand for [`Event::encode`].
pub fn encode(event: &Event) -> Bytes {
    event.encode()
}

fn millis(retry: std::time::Duration) -> u64 {
    u64::try_from(retry.as_millis()).unwrap_or(u64::MAX)
}

fn write_field(buf: &mut BytesMut, prefix: &[u8], value: &[u8]) {
    buf.put_slice(prefix);
    buf.put_slice(value);
    buf.put_u8(b'\n');
}

/// Writes `text` as one `prefix`-led line per line of text.
///
/// The comment prefix is a bare `:`, so a space is added before non-empty comment text (`: x`),
/// while an empty comment stays `:`, the shortest keep-alive.
fn write_lines(buf: &mut BytesMut, prefix: &[u8], text: &str) {
    for line in Lines::new(text.as_bytes()) {
        buf.put_slice(prefix);
        if prefix == b":" && !line.is_empty() {
            buf.put_u8(b' ');
        }
        buf.put_slice(line);
        buf.put_u8(b'\n');
    }
}

fn lines_len(prefix: &[u8], text: &str) -> usize {
    Lines::new(text.as_bytes())
        .map(|line| {
            let space = usize::from(prefix == b":" && !line.is_empty());
            prefix.len() + space + line.len() + 1
        })
        .sum()
}

/// Splits text at CRLF, CR and LF, yielding at least one (possibly empty) line.
struct Lines<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a [u8]) -> Self {
        Lines { rest: Some(text) }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        match memchr::memchr2(b'\r', b'\n', rest) {
            None => {
                self.rest = None;
                Some(rest)
            }
            Some(end) => {
                let skip = if rest[end] == b'\r' && rest.get(end + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                self.rest = Some(&rest[end + skip..]);
                Some(&rest[..end])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn encoded(event: &Event) -> String {
        let bytes = event.encode();
        assert_eq!(bytes.len(), event.encoded_len(), "encoded_len is exact");
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    #[test]
    fn fields_in_order() {
        let event = Event::builder()
            .data("d")
            .id("i")
            .retry(Duration::from_millis(1500))
            .event("e")
            .comment("c")
            .build()
            .expect("valid");
        assert_eq!(
            encoded(&event),
            ": c\nevent: e\nretry: 1500\nid: i\ndata: d\n\n"
        );
    }

    #[test]
    fn every_line_break_in_data_starts_a_data_line() {
        let event = Event::message("a\r\nb\rc\nd\n");
        assert_eq!(
            encoded(&event),
            "data: a\ndata: b\ndata: c\ndata: d\ndata: \n\n"
        );
    }

    #[test]
    fn empty_data_still_produces_a_data_line() {
        assert_eq!(encoded(&Event::message("")), "data: \n\n");
    }

    #[test]
    fn data_with_leading_space_keeps_it() {
        assert_eq!(encoded(&Event::message(" x")), "data:  x\n\n");
    }

    #[test]
    fn comments_split_and_stand_alone() {
        assert_eq!(encoded(&Event::keep_alive()), ":\n");
        assert_eq!(encoded(&Event::comment("a\r\nb")), ": a\n: b\n");
        assert_eq!(encoded(&Event::comment("a\n")), ": a\n:\n");
    }

    #[test]
    fn empty_id_is_written_to_reset_the_last_event_id() {
        let event = Event::builder().id("").build().expect("valid");
        assert_eq!(encoded(&event), "id: \n\n");
    }

    #[test]
    fn encode_into_appends() {
        let mut buf = BytesMut::from(&b"x"[..]);
        Event::message("y").encode_into(&mut buf);
        assert_eq!(&buf[..], b"xdata: y\n\n");
    }

    #[test]
    fn huge_retry_saturates() {
        let event = Event::builder()
            .retry(Duration::MAX)
            .build()
            .expect("valid");
        assert_eq!(encoded(&event), format!("retry: {}\n\n", u64::MAX));
    }
}
