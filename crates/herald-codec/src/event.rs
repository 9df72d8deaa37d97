//! Events to send, and the builder that keeps them well formed.
//!
//! An [`Event`] can only be built in a shape that every conforming `EventSource` reads back as it
//! was meant: line breaks in `data` and in comments become extra lines when encoded, while an
//! event type or ID that would break the framing (CR or LF, or NUL in an ID) is refused with an
//! [`EventError`] instead of being sent and misread.

use std::time::Duration;

/// Why an [`Event`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The event type holds a CR or LF, which would end the `event:` line early.
    #[error("event type contains a line break (CR or LF)")]
    TypeHasLineBreak,
    /// The ID holds a CR or LF, which would end the `id:` line early.
    #[error("event id contains a line break (CR or LF)")]
    IdHasLineBreak,
    /// The ID holds NUL, which makes browsers ignore the whole `id:` line.
    #[error("event id contains NUL, which EventSource ignores")]
    IdHasNul,
}

/// One event to send: optional comment, type, reconnection time, ID and data.
///
/// Build one with [`Event::builder`], or with the shortcuts [`Event::message`],
/// [`Event::comment`] and [`Event::keep_alive`], then turn it into bytes with
/// [`Event::encode`].
///
/// ```
/// use herald_codec::Event;
///
/// let event = Event::builder().event("greeting").id("7").data("hello\nworld").build()?;
/// assert_eq!(&event.encode()[..], b"event: greeting\nid: 7\ndata: hello\ndata: world\n\n");
/// # Ok::<(), herald_codec::EventError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    pub(crate) comment: Option<String>,
    pub(crate) event: Option<String>,
    pub(crate) retry: Option<Duration>,
    pub(crate) id: Option<String>,
    pub(crate) data: Option<String>,
}

impl Event {
    /// Starts building an event.
    pub fn builder() -> EventBuilder {
        EventBuilder::default()
    }

    /// An unnamed event (dispatched as `message`) carrying `data`, which may hold any text.
    pub fn message(data: impl Into<String>) -> Event {
        Event {
            data: Some(data.into()),
            ..Event::default()
        }
    }

    /// A comment, which clients ignore; text with line breaks becomes several `:` lines.
    ///
    /// A comment-only event is written without the blank line that would end an event, so it
    /// can go anywhere between events.
    pub fn comment(text: impl Into<String>) -> Event {
        Event {
            comment: Some(text.into()),
            ..Event::default()
        }
    }

    /// The shortest keep-alive: an empty comment line, `:\n`.
    ///
    /// Sent while a stream is idle, it keeps proxies and load balancers from closing the
    /// connection and lets the client notice a dead one.
    pub fn keep_alive() -> Event {
        Event::comment("")
    }

    /// The event type (`event:` field), if set.
    pub fn event_type(&self) -> Option<&str> {
        self.event.as_deref()
    }

    /// The data, if set.
    pub fn data(&self) -> Option<&str> {
        self.data.as_deref()
    }

    /// The event ID (`id:` field), if set.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The reconnection time this event asks clients to use (`retry:` field), if set.
    pub fn retry(&self) -> Option<Duration> {
        self.retry
    }

    /// The comment text, if set.
    pub fn comment_text(&self) -> Option<&str> {
        self.comment.as_deref()
    }

    /// Whether this event carries nothing but a comment.
    pub(crate) fn is_comment_only(&self) -> bool {
        self.event.is_none() && self.retry.is_none() && self.id.is_none() && self.data.is_none()
    }
}

/// Builds an [`Event`], checking every field; see [`Event::builder`].
///
/// Setters never fail; the first problem found is reported by [`EventBuilder::build`].
#[derive(Debug, Clone, Default)]
#[must_use = "an EventBuilder does nothing until `build` is called"]
pub struct EventBuilder {
    event: Event,
    error: Option<EventError>,
}

impl EventBuilder {
    /// Sets the data; CRLF, CR and LF in it each start a new `data:` line when encoded.
    pub fn data(mut self, data: impl Into<String>) -> Self {
        self.event.data = Some(data.into());
        self
    }

    /// Sets the event type, which clients dispatch instead of `message`.
    ///
    /// A type holding CR or LF is refused by [`build`](Self::build).
    pub fn event(mut self, event_type: impl Into<String>) -> Self {
        let event_type = event_type.into();
        if has_line_break(&event_type) {
            self.fail(EventError::TypeHasLineBreak);
        }
        self.event.event = Some(event_type);
        self
    }

    /// Sets the event ID, which clients send back in `Last-Event-ID` when they reconnect.
    ///
    /// An ID holding CR, LF or NUL is refused by [`build`](Self::build).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        let id = id.into();
        if has_line_break(&id) {
            self.fail(EventError::IdHasLineBreak);
        } else if id.contains('\0') {
            self.fail(EventError::IdHasNul);
        }
        self.event.id = Some(id);
        self
    }

    /// Sets the reconnection time clients should wait before reconnecting, written in whole
    /// milliseconds.
    pub fn retry(mut self, retry: Duration) -> Self {
        self.event.retry = Some(retry);
        self
    }

    /// Sets a comment written before the fields; line breaks in it start new `:` lines.
    pub fn comment(mut self, text: impl Into<String>) -> Self {
        self.event.comment = Some(text.into());
        self
    }

    /// Finishes the event, or reports the first field that would be misread.
    pub fn build(self) -> Result<Event, EventError> {
        match self.error {
            Some(error) => Err(error),
            None => Ok(self.event),
        }
    }

    fn fail(&mut self, error: EventError) {
        self.error.get_or_insert(error);
    }
}

fn has_line_break(text: &str) -> bool {
    memchr::memchr2(b'\r', b'\n', text.as_bytes()).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_with_line_break_is_refused() {
        for bad in ["a\nb", "a\rb", "a\r\nb", "\n"] {
            let result = Event::builder().event(bad).data("x").build();
            assert_eq!(result, Err(EventError::TypeHasLineBreak), "{bad:?}");
        }
    }

    #[test]
    fn id_with_line_break_or_nul_is_refused() {
        assert_eq!(
            Event::builder().id("1\n").build(),
            Err(EventError::IdHasLineBreak)
        );
        assert_eq!(
            Event::builder().id("\r1").build(),
            Err(EventError::IdHasLineBreak)
        );
        assert_eq!(
            Event::builder().id("1\0-2").build(),
            Err(EventError::IdHasNul)
        );
    }

    #[test]
    fn first_error_wins() {
        let result = Event::builder().id("\0").event("\n").build();
        assert_eq!(result, Err(EventError::IdHasNul));
    }

    #[test]
    fn any_data_and_comment_text_is_accepted() {
        let event = Event::builder()
            .data("a\r\nb\rc\nd\0e")
            .comment("x\ny")
            .event("type: with colon")
            .id("")
            .build()
            .expect("valid event");
        assert_eq!(event.data(), Some("a\r\nb\rc\nd\0e"));
        assert_eq!(event.id(), Some(""));
        assert_eq!(event.comment_text(), Some("x\ny"));
    }
}
