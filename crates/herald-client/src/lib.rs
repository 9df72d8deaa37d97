//! An `EventSource` for Rust that behaves like a browser's, following the WHATWG processing
//! model: `Last-Event-ID` on reconnection, the server's `retry:` delay, `204` to stop, a failed
//! connection on a bad status or content type, redirects followed, and cookies when asked.
//!
//! The classic clock page's client: print the time the server sends every second, and reconnect
//! by itself whenever the connection drops.
//!
//! ```no_run
//! use futures::StreamExt;
//! use herald_client::{EventSource, Item};
//!
//! # async fn clock() -> Result<(), herald_client::Error> {
//! let mut source = EventSource::new("http://127.0.0.1:8080/clock")?;
//! while let Some(item) = source.next().await {
//!     match item {
//!         Ok(Item::Open(_)) => println!("connected"),
//!         Ok(Item::Message(event)) => println!("the time is {}", event.data()),
//!         // Lost: it reconnects after the server's `retry` delay. Failed: the stream ends.
//!         Err(error) => eprintln!("{error} ({:?})", source.ready_state()),
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! A streaming API's POST, with a JSON body and a bearer token (something a browser's
//! `EventSource` cannot send), retrying when the service is overloaded:
//!
//! ```no_run
//! use futures::StreamExt;
//! use herald_client::{EventSource, Item, StatusPolicy};
//! use http::{Method, header::CONTENT_TYPE};
//!
//! # async fn complete(token: &str) -> Result<(), herald_client::Error> {
//! let mut source = EventSource::builder("https://api.example.com/v1/chat/completions")
//!     .method(Method::POST)
//!     .bearer_auth(token)
//!     .header(CONTENT_TYPE, "application/json")
//!     .body(r#"{"model":"some-model","stream":true,"messages":[{"role":"user","content":"Hi"}]}"#)
//!     .status_policy(StatusPolicy::RetryTransient) // 429 and 5xx: retry, honouring Retry-After
//!     .build()?;
//! while let Some(item) = source.next().await {
//!     if let Item::Message(event) = item? {
//!         if event.data() == "[DONE]" {
//!             source.close();
//!             break;
//!         }
//!         println!("{}", event.data());
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Resuming a stream from the last ID a previous run saw, with cookies and timeouts:
//!
//! ```no_run
//! use std::time::Duration;
//! use futures::StreamExt;
//! use herald_client::{EventSource, Item};
//!
//! # async fn resume(saved_id: String) -> Result<(), herald_client::Error> {
//! let mut source = EventSource::builder("https://hub.example.com/events?topic=news")
//!     .last_event_id(saved_id) // sent as Last-Event-ID on the first request too
//!     .with_credentials() // keep and send cookies, as withCredentials
//!     .connect_timeout(Duration::from_secs(10))
//!     .idle_timeout(Duration::from_secs(45)) // the server sends a keep-alive comment every 15 s
//!     .build()?;
//! while let Some(item) = source.next().await {
//!     if let Ok(Item::Message(event)) = item {
//!         println!("{}: {}", event.last_event_id(), event.data());
//!     }
//! }
//! // `source.last_event_id()` is where to resume next time.
//! # Ok(()) }
//! ```
//!
//! # Migrating from `reqwest-eventsource` or `eventsource-client`
//!
//! A `reqwest-eventsource` consumer (that crate is not a dependency here, so this one is shown
//! as text):
//!
//! ```text
//! use futures::StreamExt;
//! use reqwest_eventsource::{Event, EventSource};
//!
//! let request = reqwest::Client::new()
//!     .post("https://api.example.com/v1/stream")
//!     .bearer_auth(token)
//!     .header("content-type", "application/json")
//!     .body(r#"{"stream":true}"#);
//! let mut es = EventSource::new(request)?;
//! while let Some(event) = es.next().await {
//!     match event {
//!         Ok(Event::Open) => println!("open"),
//!         Ok(Event::Message(message)) => println!("{}: {}", message.event, message.data),
//!         Err(error) => {
//!             println!("error: {error}");
//!             es.close();
//!         }
//!     }
//! }
//! ```
//!
//! The same consumer with Herald: the request's builder calls move onto
//! [`EventSource::builder`], `Event` is [`Item`], and the message's fields are methods.
//!
//! ```no_run
//! use futures::StreamExt;
//! use herald_client::{EventSource, Item};
//! use http::Method;
//!
//! # async fn consume(token: &str) -> Result<(), herald_client::Error> {
//! let mut es = EventSource::builder("https://api.example.com/v1/stream")
//!     .method(Method::POST)
//!     .bearer_auth(token)
//!     .header("content-type", "application/json")
//!     .body(r#"{"stream":true}"#)
//!     .build()?;
//! while let Some(event) = es.next().await {
//!     match event {
//!         Ok(Item::Open(_)) => println!("open"),
//!         Ok(Item::Message(message)) => println!("{}: {}", message.event_type(), message.data()),
//!         Err(error) => {
//!             println!("error: {error}");
//!             es.close();
//!         }
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! | `reqwest-eventsource` | Herald |
//! |---|---|
//! | `EventSource::get(url)` | [`EventSource::new`]`(url)?` |
//! | `EventSource::new(client.post(url).header(..).body(..))?` | [`EventSource::builder`]`(url).method(Method::POST).header(..).body(..).build()?` |
//! | the `reqwest::Client`'s proxy | `HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY` by default, or [`.proxy(url)`](EventSourceBuilder::proxy) |
//! | the `reqwest::Client`'s pool, TLS, middleware | [`.http_client(client)`](EventSourceBuilder::http_client), [`.connector(..)`](EventSourceBuilder::connector), [`.tls_config(..)`](EventSourceBuilder::tls_config) |
//! | `Event::Open` | [`Item::Open`]`(opened)`: the URL, HTTP version and headers |
//! | `Event::Message(m)`: `m.event`, `m.data`, `m.id` | [`Item::Message`]`(m)`: `m.event_type()`, `m.data()`, `m.last_event_id()` |
//! | `es.set_retry_policy(Box::new(ExponentialBackoff::new(..)))` | [`.backoff(Backoff::exponential()..)`](EventSourceBuilder::backoff), [`.reconnection_time(..)`](EventSourceBuilder::reconnection_time) |
//! | `Error::InvalidStatusCode`, `InvalidContentType`, `StreamEnded`, `Transport` | [`Error::is_status`], [`is_content_type`](Error::is_content_type), [`is_end_of_stream`](Error::is_end_of_stream), [`is_connect`](Error::is_connect) |
//! | `es.close()`, `es.ready_state()` | [`es.close()`](EventSource::close) (or a [`CloseHandle`] from elsewhere), [`es.ready_state()`](EventSource::ready_state) |
//!
//! From `eventsource-client`, the same moves: `ClientBuilder::for_url(url)?` with its
//! `method`, `header`, `body` and `last_event_id` calls becomes [`EventSource::builder`] with
//! the same names, `reconnect(ReconnectOptions)` becomes [`backoff`](EventSourceBuilder::backoff)
//! and [`reconnection_time`](EventSourceBuilder::reconnection_time), `client.stream()` is the
//! source itself, and `SSE::Event(e)` with `e.event_type` and `e.data` is [`Item::Message`]
//! with methods of the same names. Comments are not reported.
//!
//! What changes in behaviour is what a browser does: network errors and the end of the
//! response are retried after the server's `retry:` delay, with `Last-Event-ID`, while a bad
//! status or content type and a `204` end the source ([`Error::is_fatal`]), so the `close()`
//! on every error above is only needed where a network error should stop it too. Redirects
//! follow fetch's rules, and `Last-Event-ID` is never sent empty.
//!
//! # In a browser (`wasm32-unknown-unknown`)
//!
//! This crate does not build for `wasm32-unknown-unknown`: it opens its own connections
//! (Tokio's TCP and `hyper-util`'s connector, which have no browser backend), and a page has no
//! sockets to give it. In a browser, use the browser's own `EventSource` (through `web-sys` or
//! `gloo-net`), which already follows the processing model this crate reproduces; for what
//! `EventSource` cannot send (a `POST`, headers), read a `fetch` response body and decode it
//! with `herald-codec` (its `stream` feature turns a stream of byte chunks into events), which
//! does build for that target.
//!
//! # What it does, connection by connection
//! * Every request carries `Accept: text/event-stream`, `Cache-Control: no-cache` and
//!   `Pragma: no-cache` (what fetch adds for the `no-store` cache mode), and `Last-Event-ID`
//!   when the last event ID is not empty (an `id:` with an empty value resets it), encoded as
//!   UTF-8 as the spec says, non-ASCII included.
//! * A `200` whose MIME type, extracted from `Content-Type` as fetch does (the last valid type
//!   among all its values wins), has the essence `text/event-stream` opens the stream, whatever
//!   its parameters (a `charset` too: the stream is always UTF-8): [`Item::Open`], then
//!   [`Item::Message`] per event.
//! * A `204` closes the source for good ([`Error::is_no_content`]); any other status, or a
//!   missing or different content type, fails it ([`Error::is_fatal`]): the error is yielded,
//!   the state is [`ReadyState::Closed`], and the stream ends.
//! * Redirects (301, 302, 303, 307, 308) are followed, up to 20, with fetch's rules (a `POST`
//!   becomes a `GET` after 301, 302 and 303; `Authorization`, `Proxy-Authorization` and a
//!   hand-set `Cookie` are dropped on the way to another origin); [`Opened::url`] tells where
//!   the stream came from, but reconnections start again from the source's own URL, as
//!   browsers do.
//! * A network error (before or after the stream opened), the end of the response (a `200`
//!   with an empty body included) or an idle timeout yields an error, sets
//!   [`ReadyState::Connecting`], waits the reconnection time (the last `retry:`, 3 s until one
//!   comes; a `retry:` line applies at once, without waiting for a blank line) and reconnects.
//!   An event the response ended in the middle of is dropped. Repeated failures add an
//!   exponential, jittered [`Backoff`] (the spec's "optionally, wait some more"), reset when a
//!   connection opens; [`Backoff::none`] keeps to the spec's plain delay.
//! * [`EventSource::close`] (or a [`CloseHandle`]) ends it all: the request or connection is
//!   dropped, nothing more is yielded, nothing reconnects.
//!
//! # How it differs from a browser's `EventSource`, and why
//! * It is a [`Stream`](futures_core::Stream), not an event target: `open`, `message` and
//!   `error` events are [`Item::Open`], [`Item::Message`] and `Err`; events of every type come
//!   out of the one stream (filter on [`MessageEvent::event_type`]).
//! * There is no origin, so no CORS and no `withCredentials` check: cookies are off unless
//!   asked for ([`EventSourceBuilder::with_credentials`]), and any method, body and header may
//!   be set, streaming APIs' `POST` included. A hand-set `Accept` or `Cache-Control` wins over
//!   the defaults.
//! * A redirect that cannot be followed (too many, a bad `Location`, a non-HTTP scheme) is a
//!   network error in fetch, after which the spec lets a client that "knows it to be futile"
//!   fail the connection: it does, since retrying would only meet the same redirect.
//! * Other statuses can be retried instead of failing ([`StatusPolicy::RetryTransient`], off by
//!   default); connect and idle timeouts exist (off by default; browsers have neither).
//! * An event over the decoder's size limits is dropped and reported ([`Error::is_decode`])
//!   instead of growing memory without bound; the stream goes on.
//! * There is no HTTP cache, and no `Accept-Encoding` is sent, so responses are never
//!   compressed. A starting ID with control characters is refused by
//!   [`EventSourceBuilder::build`]: no header could carry it.

mod backoff;
mod builder;
mod connect;
mod error;
mod event_source;
mod http_client;
mod transport;

pub use backoff::{Backoff, DEFAULT_RECONNECTION_TIME, StatusPolicy};
pub use builder::{DEFAULT_MAX_REDIRECTS, EventSourceBuilder, TlsRoots};
pub use cookie_store;
pub use error::{BoxError, Error};
pub use event_source::{CloseHandle, EventSource, Item, Opened, ReadyState};
pub use herald_codec::MessageEvent;
