//! An event built the way `axum::response::sse::Event` is, but checked instead of panicking.
//!
//! Setters take anything `AsRef<str>` and return the event, so `Event::default().event("x")
//! .id("1").data("y")` reads as with axum. Each call does what writing that field again on the
//! wire would mean to a client: `data` and `comment` add lines, `event`, `id` and `retry` keep
//! the last value. Nothing panics: a value no client could read back as given (an event type or
//! ID with CR or LF, an ID with NUL) makes the event *invalid*, and [`Sse`](crate::Sse) never
//! sends an invalid event (see [`Event`]).

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use herald_codec::{EventBuilder, EventError};

/// One event to send, built like `axum::response::sse::Event`.
///
/// ```
/// use std::time::Duration;
/// use herald_server::Event;
///
/// let event = Event::default()
///     .event("price")
///     .id("42")
///     .retry(Duration::from_secs(5))
///     .data("line one\nline two");
/// let event = herald_codec::Event::try_from(event)?;
/// assert_eq!(
///     &event.encode()[..],
///     b"event: price\nretry: 5000\nid: 42\ndata: line one\ndata: line two\n\n"
/// );
/// # Ok::<(), herald_server::EventError>(())
/// ```
///
/// # Where axum panics
///
/// | given | axum | Herald |
/// |---|---|---|
/// | `data` with `\n`, `\r` or `\r\n` | one `data:` line per line (but `\r\n` counted as two breaks, so an empty line appears) | one `data:` line per line, `\r\n` one break |
/// | `data` or `json_data` twice | panics | the second value is added as more lines, as a second `data:` field would be |
/// | `event`, `id` or `retry` twice | panics | the last value is sent, as a client reading both fields would keep |
/// | `comment` with a line break | panics | one comment line per line |
/// | `event` or `id` with CR or LF, `id` with NUL | panics | the event is invalid |
///
/// An invalid event is never sent: [`Sse`](crate::Sse) logs why (a `tracing` error) and ends
/// the stream there, as it does for an `Err` item. The client sees the connection end after the
/// last good event and reconnects with that event's ID; a skipped event would instead leave a
/// silent gap. To handle the error yourself, convert first:
/// `herald_codec::Event::try_from(event)` returns the [`EventError`].
#[derive(Clone, Default)]
#[must_use]
pub struct Event {
    fields: EventBuilder,
    data: Option<String>,
    comment: Option<String>,
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("fields", &self.fields)
            .field("data", &self.data)
            .field("comment", &self.comment)
            .finish()
    }
}

impl Event {
    /// Sets the data (`data:` field); each line of `data` becomes one `data:` line. Called again,
    /// it adds the new text as further lines.
    pub fn data<T: AsRef<str>>(mut self, data: T) -> Event {
        append_line(&mut self.data, data.as_ref());
        self
    }

    /// Sets the data to `value` serialized as compact JSON (one line).
    ///
    /// Fails only if `value` cannot be serialized (a map with non-string keys, a `Serialize`
    /// implementation that fails); the error is `axum::Error`, as axum's `json_data` returns,
    /// so that code written for axum compiles unchanged. Its source is the
    /// `serde_json::Error`.
    #[cfg(feature = "json")]
    pub fn json_data<T: serde::Serialize>(self, value: T) -> Result<Event, axum::Error> {
        let json = serde_json::to_string(&value).map_err(axum::Error::new)?;
        Ok(self.data(json))
    }

    /// Writes the data piece by piece with [`std::fmt::Write`] (`write!` and friends); turn the
    /// writer back into the event with [`EventDataWriter::into_event`].
    pub fn into_data_writer(self) -> EventDataWriter {
        EventDataWriter {
            event: self,
            text: None,
        }
    }

    /// Sets the event type (`event:` field), which clients dispatch instead of `message`.
    pub fn event<T: AsRef<str>>(mut self, event_type: T) -> Event {
        self.fields = self.fields.event(event_type.as_ref());
        self
    }

    /// Sets the event ID (`id:` field), which clients send back in `Last-Event-ID` when they
    /// reconnect.
    pub fn id<T: AsRef<str>>(mut self, id: T) -> Event {
        self.fields = self.fields.id(id.as_ref());
        self
    }

    /// Sets the reconnection time clients should use (`retry:` field, in milliseconds).
    pub fn retry(mut self, duration: Duration) -> Event {
        self.fields = self.fields.retry(duration);
        self
    }

    /// Adds a comment, which clients ignore; each line becomes one `:` line.
    pub fn comment<T: AsRef<str>>(mut self, comment: T) -> Event {
        append_line(&mut self.comment, comment.as_ref());
        self
    }

    /// The encoded event, or why it would be misread.
    pub(crate) fn encode(self) -> Result<Bytes, EventError> {
        herald_codec::Event::try_from(self).map(|event| event.encode())
    }
}

impl TryFrom<Event> for herald_codec::Event {
    type Error = EventError;

    /// The checked event, or the first field a client would misread.
    fn try_from(event: Event) -> Result<herald_codec::Event, EventError> {
        let mut fields = event.fields;
        if let Some(data) = event.data {
            fields = fields.data(data);
        }
        if let Some(comment) = event.comment {
            fields = fields.comment(comment);
        }
        fields.build()
    }
}

/// Adds `text` to `field` as a new line (or sets it, the first time).
fn append_line(field: &mut Option<String>, text: &str) {
    match field {
        Some(existing) => {
            existing.push('\n');
            existing.push_str(text);
        }
        None => *field = Some(text.to_owned()),
    }
}

/// Writes an [`Event`]'s data with [`std::fmt::Write`]; made by [`Event::into_data_writer`].
///
/// Everything written goes into one data value (line breaks in it start new `data:` lines). If
/// the event already had data, the written text is added as further lines; writing nothing
/// leaves the event as it was.
///
/// ```
/// use std::fmt::Write;
/// use herald_server::Event;
///
/// let mut writer = Event::default().into_data_writer();
/// write!(writer, "{} + {} = {}", 1, 2, 1 + 2)?;
/// let event = herald_codec::Event::try_from(writer.into_event()).expect("valid");
/// assert_eq!(&event.encode()[..], b"data: 1 + 2 = 3\n\n");
/// # Ok::<(), std::fmt::Error>(())
/// ```
#[derive(Debug)]
#[must_use]
pub struct EventDataWriter {
    event: Event,
    text: Option<String>,
}

impl EventDataWriter {
    /// The event, with what was written as its data.
    pub fn into_event(mut self) -> Event {
        if let Some(text) = self.text {
            append_line(&mut self.event.data, &text);
        }
        self.event
    }
}

impl fmt::Write for EventDataWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if !s.is_empty() {
            self.text.get_or_insert_with(String::new).push_str(s);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write;

    fn encoded(event: Event) -> String {
        String::from_utf8(event.encode().expect("valid").to_vec()).expect("utf-8")
    }

    #[test]
    fn data_lines_split_at_every_line_break_once() {
        assert_eq!(
            encoded(Event::default().data("a\r\nb\rc\nd")),
            "data: a\ndata: b\ndata: c\ndata: d\n\n"
        );
    }

    #[test]
    fn repeated_data_adds_lines_and_repeated_fields_keep_the_last() {
        let event = Event::default()
            .data("a")
            .data("b")
            .id("1")
            .id("2")
            .event("x")
            .event("y")
            .retry(Duration::from_millis(10))
            .retry(Duration::from_millis(20))
            .comment("c1")
            .comment("c2");
        assert_eq!(
            encoded(event),
            ": c1\n: c2\nevent: y\nretry: 20\nid: 2\ndata: a\ndata: b\n\n"
        );
    }

    #[test]
    fn a_line_break_in_type_or_id_or_nul_in_id_makes_the_event_invalid() {
        let cases = [
            (Event::default().event("a\nb"), EventError::TypeHasLineBreak),
            (Event::default().id("1\r"), EventError::IdHasLineBreak),
            (Event::default().id("1\0"), EventError::IdHasNul),
        ];
        for (event, expected) in cases {
            assert_eq!(event.data("x").encode(), Err(expected));
        }
    }

    #[test]
    fn comment_lines_split() {
        assert_eq!(encoded(Event::default().comment("a\nb")), ": a\n: b\n");
    }

    #[test]
    fn data_writer_appends_one_value_and_an_empty_writer_changes_nothing() {
        let mut writer = Event::default().data("first").into_data_writer();
        let half = "cond";
        write!(writer, "se{half}").expect("write");
        assert_eq!(
            encoded(writer.into_event()),
            "data: first\ndata: second\n\n"
        );
        let untouched = Event::default().id("1").into_data_writer().into_event();
        assert_eq!(encoded(untouched), "id: 1\n\n");
    }

    #[cfg(feature = "json")]
    #[test]
    fn json_data_is_one_compact_line() {
        let value = serde_json::json!({"text": "two\nlines", "n": 1});
        let event = Event::default().json_data(&value).expect("serializable");
        assert_eq!(
            encoded(event),
            "data: {\"n\":1,\"text\":\"two\\nlines\"}\n\n"
        );
    }

    #[cfg(feature = "json")]
    #[test]
    fn json_data_reports_a_value_that_cannot_be_serialized() {
        let mut map = std::collections::BTreeMap::new();
        map.insert(vec![1u8], 2);
        let error = Event::default()
            .json_data(&map)
            .expect_err("non-string keys");
        assert!(std::error::Error::source(&error).is_some());
    }
}
