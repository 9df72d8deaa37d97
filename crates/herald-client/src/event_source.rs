//! The `EventSource` processing model of the WHATWG HTML standard: ready state, connecting,
//! announcing the open stream, dispatching events, reestablishing the connection after a network
//! error or the end of the stream, failing it for good, and `close()`.

use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_core::Stream;
use futures_core::stream::FusedStream;
use futures_util::task::AtomicWaker;
use herald_codec::{Decoder, Frame, MessageEvent};
use http::{HeaderMap, Version};
use http_body_util::BodyExt;
use url::Url;

use crate::builder::{Config, EventSourceBuilder};
use crate::connect::{self, Outcome};
use crate::error::{Error, Kind};
use crate::http_client::{HttpClient, ResponseBody};

/// The state of the connection, as `EventSource.readyState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadyState {
    /// Not connected yet, or waiting to reconnect, or connecting.
    Connecting,
    /// The stream is open and events are being dispatched.
    Open,
    /// Closed for good: by [`EventSource::close`], or because the connection failed.
    Closed,
}

impl ReadyState {
    fn from_u8(value: u8) -> ReadyState {
        match value {
            0 => ReadyState::Connecting,
            1 => ReadyState::Open,
            _ => ReadyState::Closed,
        }
    }
}

/// The stream is open: what the server answered.
#[derive(Debug, Clone)]
pub struct Opened {
    pub(crate) url: Url,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
}

impl Opened {
    /// The URL that answered, after redirects (reconnections still go to the source's own URL).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The HTTP version of the connection.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The response's headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}

/// What an [`EventSource`] yields, besides errors.
#[derive(Debug, Clone)]
pub enum Item {
    /// The connection opened (the `open` event).
    Open(Opened),
    /// An event was dispatched: its type, data and the last event ID.
    Message(MessageEvent),
}

/// State shared between the source, its close handles and its driver.
#[derive(Debug)]
struct Shared {
    state: AtomicU8,
    closed: AtomicBool,
    last_event_id: Mutex<String>,
    waker: AtomicWaker,
}

impl Shared {
    fn set_state(&self, state: ReadyState) {
        self.state.store(state as u8, Ordering::Release);
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.set_state(ReadyState::Closed);
        self.waker.wake();
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

type Items = Pin<Box<dyn Stream<Item = Result<Item, Error>> + Send>>;

/// A client for a `text/event-stream`, with the reconnection rules of a browser's `EventSource`.
///
/// It is a [`Stream`] of [`Item`]s and [`Error`]s: [`Item::Open`] when a connection opens,
/// [`Item::Message`] for each event, and an error whenever the connection is lost (then the
/// source reconnects by itself, after the reconnection time) or fails (then it is
/// [`Closed`](ReadyState::Closed) and the stream ends). Nothing happens until it is first polled;
/// it needs a Tokio runtime.
///
/// See the [crate documentation](crate) for examples.
pub struct EventSource {
    shared: Arc<Shared>,
    url: Url,
    items: Option<Items>,
}

impl fmt::Debug for EventSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSource")
            .field("url", &self.url.as_str())
            .field("ready_state", &self.ready_state())
            .field("last_event_id", &self.last_event_id())
            .finish_non_exhaustive()
    }
}

impl EventSource {
    /// A source for this URL with the browser's defaults (a `GET`, no cookies).
    pub fn new(url: &str) -> Result<EventSource, Error> {
        EventSource::builder(url).build()
    }

    /// Configures a source for this URL.
    pub fn builder(url: &str) -> EventSourceBuilder {
        EventSourceBuilder::new(url)
    }

    pub(crate) fn from_parts(config: Config, client: HttpClient, decoder: Decoder) -> Self {
        let shared = Arc::new(Shared {
            state: AtomicU8::new(ReadyState::Connecting as u8),
            closed: AtomicBool::new(false),
            last_event_id: Mutex::new(decoder.last_event_id().to_owned()),
            waker: AtomicWaker::new(),
        });
        let url = config.url.clone();
        let driver = Driver {
            reconnection_time: config.reconnection_time,
            config,
            client,
            decoder,
            shared: Arc::clone(&shared),
            phase: Phase::Connect,
            failures: 0,
        };
        let items = futures_util::stream::unfold(driver, |mut driver| async move {
            let item = driver.next_item().await?;
            Some((item, driver))
        });
        EventSource {
            shared,
            url,
            items: Some(Box::pin(items)),
        }
    }

    /// The state of the connection.
    pub fn ready_state(&self) -> ReadyState {
        if self.shared.is_closed() {
            return ReadyState::Closed;
        }
        ReadyState::from_u8(self.shared.state.load(Ordering::Acquire))
    }

    /// The source's URL, as given (reconnections go there even after a redirect; the URL that
    /// answered is in [`Opened::url`]).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The last event ID: sent as `Last-Event-ID` on reconnection unless empty.
    pub fn last_event_id(&self) -> String {
        lock(&self.shared.last_event_id).clone()
    }

    /// Closes the source: the connection is dropped, nothing more is yielded, nothing reconnects.
    pub fn close(&mut self) {
        self.shared.close();
        self.items = None;
    }

    /// A handle that closes this source from elsewhere (another task, a signal handler).
    pub fn close_handle(&self) -> CloseHandle {
        CloseHandle(Arc::clone(&self.shared))
    }
}

/// Closes an [`EventSource`] from elsewhere; the source then ends at once, even while it waits.
#[derive(Debug, Clone)]
pub struct CloseHandle(Arc<Shared>);

impl CloseHandle {
    /// Closes the source, as [`EventSource::close`] does; its connection is dropped when it is
    /// next polled (which this wakes up) or dropped.
    pub fn close(&self) {
        self.0.close();
    }
}

impl Stream for EventSource {
    type Item = Result<Item, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        // Register before checking: a close from another thread between the two then still
        // wakes this task, instead of leaving it waiting on a connection that may never speak.
        this.shared.waker.register(cx.waker());
        if this.shared.is_closed() {
            this.items = None;
            return Poll::Ready(None);
        }
        let Some(items) = this.items.as_mut() else {
            return Poll::Ready(None);
        };
        let item = ready!(items.as_mut().poll_next(cx));
        if this.shared.is_closed() {
            this.items = None;
            return Poll::Ready(None);
        }
        if item.is_none() {
            this.items = None;
        }
        Poll::Ready(item)
    }
}

impl FusedStream for EventSource {
    fn is_terminated(&self) -> bool {
        self.items.is_none() || self.shared.is_closed()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Where the processing model stands.
enum Phase {
    /// About to fetch the source's URL.
    Connect,
    /// Waiting before reconnecting.
    Wait(Duration),
    /// Reading an open stream.
    Stream(ResponseBody),
    /// Failed or closed: nothing more.
    Closed,
}

/// The processing model itself, driven by polling the source.
struct Driver {
    config: Config,
    client: HttpClient,
    /// One decoder for the source's life: it keeps the last event ID across connections.
    decoder: Decoder,
    shared: Arc<Shared>,
    phase: Phase,
    /// The stream's reconnection time: the last valid `retry:`, kept across connections.
    reconnection_time: Duration,
    /// Failed attempts since the stream last opened, for the backoff.
    failures: u32,
}

impl Driver {
    async fn next_item(&mut self) -> Option<Result<Item, Error>> {
        loop {
            match std::mem::replace(&mut self.phase, Phase::Closed) {
                Phase::Closed => return None,
                Phase::Wait(delay) => {
                    tokio::time::sleep(delay).await;
                    self.phase = Phase::Connect;
                }
                Phase::Connect => return Some(self.connect().await),
                Phase::Stream(body) => {
                    if let Some(item) = self.read(body).await {
                        return Some(item);
                    }
                }
            }
        }
    }

    async fn connect(&mut self) -> Result<Item, Error> {
        self.shared.set_state(ReadyState::Connecting);
        let last_event_id = self.decoder.last_event_id().to_owned();
        match connect::open(&self.config, &self.client, &last_event_id).await {
            Outcome::Open(opened, body) => {
                tracing::debug!(url = %opened.url, version = ?opened.version, "event stream open");
                self.failures = 0;
                self.shared.set_state(ReadyState::Open);
                self.phase = Phase::Stream(body);
                Ok(Item::Open(*opened))
            }
            Outcome::Fail(error) => {
                tracing::info!(%error, "event source failed, closing");
                self.shared.set_state(ReadyState::Closed);
                self.phase = Phase::Closed;
                Err(error)
            }
            Outcome::Retry(error, at_least) => Err(self.reestablish(error, at_least)),
        }
    }

    /// Reads the open stream up to its next item; `None` when it only moved the phase on.
    async fn read(&mut self, mut body: ResponseBody) -> Option<Result<Item, Error>> {
        loop {
            let frame = self.decoder.next_frame();
            match frame {
                Ok(Some(Frame::Event(event))) => {
                    // The decoder may have read ahead (the rest of the chunk): the ID in force
                    // is the one this event carries.
                    self.sync_last_event_id(event.last_event_id());
                    self.phase = Phase::Stream(body);
                    return Some(Ok(Item::Message(event)));
                }
                Ok(Some(Frame::Retry(delay))) => self.reconnection_time = delay,
                Ok(Some(Frame::Comment(_))) => {}
                Err(error) => {
                    self.phase = Phase::Stream(body);
                    return Some(Err(Error::new(Kind::Decode(error))));
                }
                Ok(None) => {
                    // Every frame read is taken: the decoder's ID is the stream's.
                    self.sync_last_event_id(self.decoder.last_event_id());
                    let chunk = match self.config.idle_timeout {
                        None => body.frame().await,
                        Some(limit) => match tokio::time::timeout(limit, body.frame()).await {
                            Ok(chunk) => chunk,
                            Err(_) => return Some(Err(self.lost(Kind::IdleTimeout(limit)))),
                        },
                    };
                    match chunk {
                        Some(Ok(frame)) => {
                            if let Ok(data) = frame.into_data() {
                                self.decoder.push(data);
                            }
                        }
                        Some(Err(error)) => return Some(Err(self.lost(Kind::Body(error)))),
                        None => return Some(Err(self.lost(Kind::EndOfStream))),
                    }
                }
            }
        }
    }

    fn sync_last_event_id(&self, id: &str) {
        let mut shared = lock(&self.shared.last_event_id);
        if *shared != id {
            id.clone_into(&mut shared);
        }
    }

    /// The open stream broke or ended: an unfinished event is dropped, then reconnect.
    fn lost(&mut self, kind: Kind) -> Error {
        self.decoder.finish();
        self.reestablish(Error::new(kind), None)
    }

    /// "Reestablish the connection": Connecting, then wait the reconnection time (plus backoff,
    /// and at least what `Retry-After` asked) before connecting again.
    fn reestablish(&mut self, error: Error, at_least: Option<Duration>) -> Error {
        let delay = self
            .config
            .backoff
            .delay(self.reconnection_time, self.failures);
        let delay = at_least.map_or(delay, |at_least| delay.max(at_least));
        self.failures = self.failures.saturating_add(1);
        tracing::debug!(%error, ?delay, "event source lost its connection, reconnecting");
        self.shared.set_state(ReadyState::Connecting);
        self.phase = Phase::Wait(delay);
        error
    }
}
