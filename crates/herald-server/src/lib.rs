//! Serve Server-Sent Events from axum or hyper in a few lines.
//!
//! * [`Sse`] turns a `Stream` of [`Event`]s (or of `Result`s of them, or of pre-encoded `Bytes`)
//!   into an HTTP response with the right headers, an initial comment so headers flush at once,
//!   and keep-alive comments while the stream is idle ([`KeepAlive`]); [`Coalesce`] joins
//!   events that are ready at once into one write.
//! * [`LastEventId`] extracts the ID a reconnecting client sends (the `Last-Event-ID` header, or a
//!   query parameter for clients that cannot set headers).
//! * [`ReplayThenLive`] replays history and then continues with live items, with no gap and no
//!   duplicate at the seam.
//! * [`DiscoveryLink`] builds the `Link: <hub>; rel="mercure"` header publishers' apps send.
//!
//! ```
//! use std::time::Duration;
//! use herald_server::{Event, KeepAlive, Sse};
//!
//! let events = futures::stream::iter([
//!     Event::default().data("hello"),
//!     Event::default().event("farewell").id("2").data("world"),
//! ]);
//! let response = Sse::new(events).keep_alive(KeepAlive::default()).into_http();
//! assert_eq!(response.headers()["content-type"], "text/event-stream");
//! assert_eq!(response.headers()["x-accel-buffering"], "no");
//! ```
//!
//! # Migrating from `axum::response::sse`
//!
//! A handler written for axum's `Sse` compiles against Herald's with only the `use` line
//! changed. Here is one, streaming a broadcast channel as JSON events:
//!
//! ```
//! use std::time::Duration;
//! use axum::{Router, extract::State, routing::get};
//! use axum::response::sse::{Event, KeepAlive, Sse};
//! use futures::{Stream, StreamExt};
//! use tokio::sync::broadcast;
//! use tokio_stream::wrappers::BroadcastStream;
//!
//! #[derive(Clone, serde::Serialize)]
//! struct Price { seq: u64, cents: u64 }
//!
//! async fn prices(
//!     State(tx): State<broadcast::Sender<Price>>,
//! ) -> Sse<impl Stream<Item = Result<Event, axum::Error>>> {
//!     let stream = BroadcastStream::new(tx.subscribe()).map(|price| {
//!         let price = price.map_err(axum::Error::new)?;
//!         Event::default().event("price").id(price.seq.to_string()).json_data(&price)
//!     });
//!     Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("ping"))
//! }
//!
//! let app: Router = Router::new().route("/prices", get(prices)).with_state(broadcast::channel(64).0);
//! ```
//!
//! And the same handler served by Herald: only the import differs.
//!
//! ```
//! use std::time::Duration;
//! use axum::{Router, extract::State, routing::get};
//! use herald_server::{Event, KeepAlive, Sse};
//! use futures::{Stream, StreamExt};
//! use tokio::sync::broadcast;
//! use tokio_stream::wrappers::BroadcastStream;
//!
//! #[derive(Clone, serde::Serialize)]
//! struct Price { seq: u64, cents: u64 }
//!
//! async fn prices(
//!     State(tx): State<broadcast::Sender<Price>>,
//! ) -> Sse<impl Stream<Item = Result<Event, axum::Error>>> {
//!     let stream = BroadcastStream::new(tx.subscribe()).map(|price| {
//!         let price = price.map_err(axum::Error::new)?;
//!         Event::default().event("price").id(price.seq.to_string()).json_data(&price)
//!     });
//!     Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("ping"))
//! }
//!
//! let app: Router = Router::new().route("/prices", get(prices)).with_state(broadcast::channel(64).0);
//! ```
//!
//! The same calls mean the same thing: `Sse::new` takes a stream of `Result<Event, E>` (any `E`
//! that converts into [`BoxError`]) and `keep_alive` a [`KeepAlive`]; `Event::default()` and
//! its `data`, `json_data` (the `json` feature, on by default), `event`, `id`, `retry` and
//! `comment` setters, and `into_data_writer`, build the same fields. What changes is what happens
//! at the edges, and what comes with it:
//!
//! * **No panics, no misread events.** Where axum panics (a type or ID with a line break, a
//!   field set twice), Herald never does: data and comments with line breaks become several
//!   lines, a field set twice keeps what a client would read from both, and an event that a
//!   client would misread (an ID or type with CR or LF, an ID with NUL) is not sent; the stream
//!   ends there with the reason logged, so the client resumes from the last event it did get.
//!   See [`Event`] for the table.
//! * **An `Err` item** ends the stream too, logged as a `tracing` error, instead of aborting the
//!   connection with the error as the body's.
//! * **Streams of plain events** work as well (`Stream<Item = Event>`, no `map(Ok)` needed), as
//!   do [`herald_codec::Event`]s and `Bytes` encoded once for many subscribers
//!   ([`Sse::from_bytes`]).
//! * **Headers that survive proxies:** `Cache-Control: no-store` among others,
//!   `X-Accel-Buffering: no`, and an initial `:` comment so the response starts at once.
//! * **Resuming:** [`LastEventId`] extracts the ID a reconnecting client sends (header or query
//!   parameter), and [`ReplayThenLive`] joins history and live events without a gap or a
//!   duplicate at the seam.
//! * **Discovery:** [`DiscoveryLink`] builds the `Link` header that points clients at a hub.
//!
//! ```
//! use futures::StreamExt;
//! use herald_server::{Event, LastEventId, ReplayThenLive, Sse};
//!
//! // Events 1..=5 exist; a client that reconnects gets those after the ID it last saw.
//! async fn events(LastEventId(last): LastEventId) -> Sse<impl futures::Stream<Item = Event>> {
//!     let after: u64 = last.and_then(|id| id.parse().ok()).unwrap_or(0);
//!     let history: Vec<u64> = (1..=3).filter(|n| *n > after).collect();
//!     let live = futures::stream::iter((4..=5u64).filter(move |n| *n > after));
//!     let stream = ReplayThenLive::new(history, 3.max(after), live, |n: &u64| *n)
//!         .map(|n| Event::default().id(n.to_string()).data(format!("event {n}")));
//!     Sse::new(stream)
//! }
//! let app: axum::Router = axum::Router::new().route("/events", axum::routing::get(events));
//! ```

mod coalesce;
mod event;
mod keep_alive;
mod last_event_id;
mod link;
mod response;
mod resume;

pub use coalesce::Coalesce;
pub use event::{Event, EventDataWriter};
pub use herald_codec::EventError;
pub use keep_alive::KeepAlive;
pub use last_event_id::{LAST_EVENT_ID_HEADER, LastEventId, last_event_id};
pub use link::{DiscoveryLink, LinkError};
pub use response::{BoxError, CACHE_CONTROL_VALUE, Sse, SseBody, SseItem, sse_headers};
pub use resume::ReplayThenLive;
