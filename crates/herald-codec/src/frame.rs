//! What the decoder produces: dispatched events, reconnection times and comments.

use std::time::Duration;

use bytestring::ByteString;

/// An event as an `EventSource` dispatches it: its type, its data, and the last event ID in force
/// when it was dispatched.
///
/// The strings are [`ByteString`]s: a single-line `data` that arrived inside one chunk is a slice
/// of that chunk, not a copy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageEvent {
    pub(crate) event_type: ByteString,
    pub(crate) data: ByteString,
    pub(crate) last_event_id: ByteString,
}

impl MessageEvent {
    /// Builds an event as a decoder would dispatch it (useful in tests of code that consumes
    /// events).
    pub fn new(
        event_type: impl Into<ByteString>,
        data: impl Into<ByteString>,
        last_event_id: impl Into<ByteString>,
    ) -> MessageEvent {
        MessageEvent {
            event_type: event_type.into(),
            data: data.into(),
            last_event_id: last_event_id.into(),
        }
    }

    /// The event type: the last `event:` value of the block, or `message`.
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// The data lines of the block joined with LF.
    pub fn data(&self) -> &str {
        &self.data
    }

    /// The stream's last event ID when this event was dispatched (empty if none).
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// Takes the data out without copying it.
    pub fn into_data(self) -> ByteString {
        self.data
    }

    /// Splits the event into type, data and last event ID without copying.
    pub fn into_parts(self) -> (ByteString, ByteString, ByteString) {
        (self.event_type, self.data, self.last_event_id)
    }
}

/// One thing the decoder found in the stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Frame {
    /// A dispatched event.
    Event(MessageEvent),
    /// A valid `retry:` field: the stream's new reconnection time.
    Retry(Duration),
    /// A comment line's text (after the colon and one optional space); only produced when
    /// comments were asked for with [`DecoderBuilder::comments`](crate::DecoderBuilder::comments).
    Comment(ByteString),
}

impl Frame {
    /// The event, if this frame is one.
    pub fn into_event(self) -> Option<MessageEvent> {
        match self {
            Frame::Event(event) => Some(event),
            _ => None,
        }
    }
}

/// An event as [`Decoder::feed`](crate::Decoder::feed) hands it out: borrowed from the chunk
/// being read and from the decoder, valid until the closure returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventRef<'a> {
    pub(crate) event_type: &'a str,
    pub(crate) data: &'a str,
    pub(crate) last_event_id: &'a str,
}

impl<'a> EventRef<'a> {
    /// The event type: the last `event:` value of the block, or `message`.
    pub fn event_type(&self) -> &'a str {
        self.event_type
    }

    /// The data lines of the block joined with LF.
    pub fn data(&self) -> &'a str {
        self.data
    }

    /// The stream's last event ID when this event was dispatched (empty if none).
    pub fn last_event_id(&self) -> &'a str {
        self.last_event_id
    }

    /// Copies the event into an owned [`MessageEvent`].
    pub fn to_owned_event(&self) -> MessageEvent {
        MessageEvent::new(
            ByteString::from(self.event_type),
            ByteString::from(self.data),
            ByteString::from(self.last_event_id),
        )
    }
}

/// One thing [`Decoder::feed`](crate::Decoder::feed) found in the stream, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameRef<'a> {
    /// A dispatched event.
    Event(EventRef<'a>),
    /// A valid `retry:` field: the stream's new reconnection time.
    Retry(Duration),
    /// A comment line's text (after the colon and one optional space); only produced when
    /// comments were asked for with [`DecoderBuilder::comments`](crate::DecoderBuilder::comments).
    Comment(&'a str),
}

impl<'a> FrameRef<'a> {
    /// Copies the frame into an owned [`Frame`].
    pub fn to_owned_frame(&self) -> Frame {
        match *self {
            FrameRef::Event(event) => Frame::Event(event.to_owned_event()),
            FrameRef::Retry(retry) => Frame::Retry(retry),
            FrameRef::Comment(text) => Frame::Comment(ByteString::from(text)),
        }
    }
}
