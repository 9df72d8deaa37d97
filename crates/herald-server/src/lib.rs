//! Serve Server-Sent Events from axum or hyper in a few lines.
//!
//! * [`Sse`] turns a `Stream` of [`Event`](herald_codec::Event)s (or of pre-encoded `Bytes`) into
//!   an HTTP response with the right headers, an initial comment so headers flush at once, and
//!   keep-alive comments while the stream is idle ([`KeepAlive`]); [`Coalesce`] joins events
//!   that are ready at once into one write.
//! * [`LastEventId`] extracts the ID a reconnecting client sends (the `Last-Event-ID` header, or a
//!   query parameter for clients that cannot set headers).
//! * [`ReplayThenLive`] replays history and then continues with live items, with no gap and no
//!   duplicate at the seam.
//! * [`DiscoveryLink`] builds the `Link: <hub>; rel="mercure"` header publishers' apps send.
//!
//! ```
//! use std::time::Duration;
//! use herald_codec::Event;
//! use herald_server::Sse;
//!
//! let events = futures::stream::iter(vec![Event::message("hello"), Event::message("world")]);
//! let response = Sse::new(events).keep_alive(Duration::from_secs(15)).into_http();
//! assert_eq!(response.headers()["content-type"], "text/event-stream");
//! assert_eq!(response.headers()["x-accel-buffering"], "no");
//! ```

mod coalesce;
mod keep_alive;
mod last_event_id;
mod link;
mod response;
mod resume;

pub use coalesce::Coalesce;
pub use keep_alive::KeepAlive;
pub use last_event_id::{LAST_EVENT_ID_HEADER, LastEventId, last_event_id};
pub use link::{DiscoveryLink, LinkError};
pub use response::{CACHE_CONTROL_VALUE, Sse, SseBody, sse_headers};
pub use resume::ReplayThenLive;
