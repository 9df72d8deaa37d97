//! The `text/event-stream` format of Server-Sent Events, with no I/O.
//!
//! * [`Event`] is an event to send, built by a builder that refuses anything a browser would
//!   misread, and [`Event::encode`] writes it once into shared [`Bytes`](bytes::Bytes).
//! * [`Decoder`] reads a stream fed in chunks of any size and yields exactly the events an
//!   `EventSource` would dispatch, following the WHATWG HTML interpretation rules: borrowed
//!   ([`Decoder::feed`], the fastest way, no allocation per event) or owned
//!   ([`Decoder::push`] and [`Decoder::next_frame`], events that can be kept).
//!
//! ```
//! use herald_codec::{Decoder, Event, Frame};
//!
//! let event = Event::builder().event("tick").id("1").data("12:00\n12:01").build()?;
//! let bytes = event.encode();
//!
//! let mut decoder = Decoder::new();
//! decoder.push(bytes);
//! let Some(Ok(Frame::Event(received))) = decoder.next() else { panic!("one event") };
//! assert_eq!(received.event_type(), "tick");
//! assert_eq!(received.data(), "12:00\n12:01");
//! assert_eq!(received.last_event_id(), "1");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//! * `tokio-codec`: [`SseCodec`], a `tokio_util::codec::Decoder` for framed readers.
//! * `stream`: [`FrameStream`], which turns a stream of byte chunks into a stream of frames.

mod decode;
mod encode;
mod event;
mod frame;
#[cfg(feature = "stream")]
mod stream;
#[cfg(feature = "tokio-codec")]
mod tokio_codec;

pub use bytestring::ByteString;
pub use decode::{
    DEFAULT_MAX_EVENT_SIZE, DEFAULT_MAX_LINE_LEN, DecodeError, Decoder, DecoderBuilder,
};
pub use encode::encode;
pub use event::{Event, EventBuilder, EventError};
pub use frame::{EventRef, Frame, FrameRef, MessageEvent};
#[cfg(feature = "stream")]
pub use stream::{FrameStream, StreamError};
#[cfg(feature = "tokio-codec")]
pub use tokio_codec::SseCodec;
