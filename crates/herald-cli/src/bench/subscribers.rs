//! The subscriber pool: many subscriptions per task (raw HTTP/1.1, over TLS or not, or HTTP/2
//! streams: see `connect`), each decoded with herald-codec, each checking that it gets every
//! update of its topic exactly once, in the order the other subscribers of that topic get it.
//! One `EventSource` client per subscriber would measure the client, not the hub: a plain GET,
//! `httparse` for the response head and a small per-connection state keep the generator's cost
//! per delivery low.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};

use anyhow::Context as _;
use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use h2::client::SendRequest;
use hdrhistogram::Histogram;
use herald_codec::{Decoder, Frame};
use tokio::sync::{OnceCell, Semaphore, watch};
use tokio::task::JoinHandle;

use super::args::Endpoint;
use super::connect::{Body, Connector};
use super::stats::{Tallies, new_histogram, unix_nanos};

/// How many connections are being opened at once during the ramp.
const CONNECT_CONCURRENCY: usize = 128;
/// How many tasks share the subscriptions: enough for every core to take part.
const TASKS: u32 = 16;

/// What the pool subscribes to.
#[derive(Debug)]
pub(crate) struct PoolPlan {
    /// Where subscribers go: subscriber `i` (or, over HTTP/2, session `i`) to hub `i % len`.
    pub(crate) hubs: Vec<HubPlan>,
    /// How many subscriptions.
    pub(crate) subscribers: u32,
    /// How many updates each topic will get.
    pub(crate) per_topic: Vec<u64>,
}

/// One hub of the pool.
#[derive(Debug)]
pub(crate) struct HubPlan {
    /// How subscribers connect.
    pub(crate) connector: Connector,
    /// One ready-made HTTP/1.1 request per topic.
    pub(crate) requests: Vec<Vec<u8>>,
    /// The URL of each topic's subscription (for HTTP/2).
    pub(crate) urls: Vec<url::Url>,
}

impl PoolPlan {
    /// Subscriptions to `topics` at `hubs`, `subscribers` of them spread round robin over
    /// topics and hubs, for `messages` updates published round robin over the same topics.
    pub(crate) fn new(
        hubs: Vec<(Endpoint, Connector)>,
        topics: &[String],
        subscribers: u32,
        messages: u64,
    ) -> Self {
        let count = topics.len() as u64;
        let hubs = hubs
            .into_iter()
            .map(|(endpoint, connector)| HubPlan {
                connector,
                requests: topics
                    .iter()
                    .map(|topic| {
                        format!(
                            "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n",
                            endpoint.path_with_topic(topic),
                            endpoint.host
                        )
                        .into_bytes()
                    })
                    .collect(),
                urls: topics
                    .iter()
                    .map(|topic| {
                        let mut url = endpoint.url.clone();
                        url.query_pairs_mut().append_pair("topic", topic);
                        url
                    })
                    .collect(),
            })
            .collect();
        let per_topic = (0..count)
            .map(|t| messages / count + u64::from(t < messages % count))
            .collect();
        PoolPlan {
            hubs,
            subscribers,
            per_topic,
        }
    }

    /// How many subscriptions share an HTTP/2 session (1 for HTTP/1.1, a connection each).
    fn group(&self) -> u32 {
        self.hubs[0].connector.streams_per_session().unwrap_or(1)
    }

    /// The hub of subscription `index`.
    fn hub(&self, index: u32) -> &HubPlan {
        &self.hubs[(index / self.group()) as usize % self.hubs.len()]
    }

    /// How many deliveries a loss-free run makes.
    pub(crate) fn expected_deliveries(&self) -> u64 {
        (0..self.subscribers)
            .map(|i| self.per_topic[i as usize % self.per_topic.len()])
            .sum()
    }
}

/// Counters every task updates (once per read, not per event).
#[derive(Debug, Default)]
pub(crate) struct Progress {
    /// Subscriptions whose response head arrived.
    pub(crate) connected: AtomicU64,
    /// Subscriptions that could not be opened.
    pub(crate) failed: AtomicU64,
    /// Subscriptions that ended before the run did.
    pub(crate) dropped: AtomicU64,
    /// Updates received, all subscribers together.
    pub(crate) delivered: AtomicU64,
    /// When the last update arrived (nanoseconds since the epoch).
    pub(crate) last_delivery: AtomicU64,
    /// The first error any subscriber met.
    first_error: Mutex<Option<String>>,
}

impl Progress {
    fn note_error(&self, error: &anyhow::Error) {
        let mut first = self
            .first_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        first.get_or_insert_with(|| format!("{error:#}"));
    }

    /// The first error a subscriber met, if any.
    pub(crate) fn first_error(&self) -> Option<String> {
        self.first_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A running pool of subscriptions.
pub(crate) struct Pool {
    progress: Arc<Progress>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<Tallies>>,
}

/// What the pool found, once stopped.
pub(crate) struct PoolOutcome {
    /// Counts over every subscriber.
    pub(crate) tallies: Tallies,
    /// Publish-to-delivery latency, in microseconds.
    pub(crate) latency: Histogram<u64>,
}

impl Pool {
    /// Starts opening the subscriptions; watch [`progress`](Self::progress) for the ramp.
    pub(crate) fn start(plan: Arc<PoolPlan>) -> Pool {
        let progress = Arc::new(Progress::default());
        let (stop, stopped) = watch::channel(false);
        let permits = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
        let sessions: Arc<[OnceCell<SendRequest<Bytes>>]> =
            match plan.hubs[0].connector.streams_per_session() {
                Some(streams) => (0..plan.subscribers.div_ceil(streams))
                    .map(|_| OnceCell::new())
                    .collect(),
                None => Arc::new([]),
            };
        let per_task = plan.subscribers.div_ceil(TASKS);
        let tasks = (0..plan.subscribers)
            .step_by(per_task as usize)
            .map(|first| {
                let last = first.saturating_add(per_task).min(plan.subscribers);
                let group = Group {
                    plan: Arc::clone(&plan),
                    progress: Arc::clone(&progress),
                    permits: Arc::clone(&permits),
                    sessions: Arc::clone(&sessions),
                };
                tokio::spawn(group.run(first..last, stopped.clone()))
            })
            .collect();
        Pool {
            progress,
            stop,
            tasks,
        }
    }

    /// The live counters.
    pub(crate) fn progress(&self) -> &Arc<Progress> {
        &self.progress
    }

    /// Closes every subscription and gathers the results.
    pub(crate) async fn stop(self) -> anyhow::Result<PoolOutcome> {
        let _ = self.stop.send(true);
        let mut tallies = Tallies::default();
        for task in self.tasks {
            tallies.merge(task.await.context("a subscriber task failed")?);
        }
        let latency = std::mem::replace(&mut tallies.latency, new_histogram());
        Ok(PoolOutcome { tallies, latency })
    }
}

/// The subscriptions one task drives.
struct Group {
    plan: Arc<PoolPlan>,
    progress: Arc<Progress>,
    permits: Arc<Semaphore>,
    /// The HTTP/2 sessions of the whole pool, each opened by the first of its subscriptions.
    sessions: Arc<[OnceCell<SendRequest<Bytes>>]>,
}

impl Group {
    async fn run(self, range: std::ops::Range<u32>, mut stop: watch::Receiver<bool>) -> Tallies {
        let topics = self.plan.per_topic.len();
        let latency = Mutex::new(new_histogram());
        let first = range.start;
        let mut subscribers: Vec<Subscriber> = range
            .map(|i| {
                let topic = i as usize % topics;
                Subscriber::new(topic, self.plan.per_topic[topic], topics as u64)
            })
            .collect();
        {
            let mut running: FuturesUnordered<_> = subscribers
                .iter_mut()
                .zip(first..)
                .map(|(subscriber, index)| self.subscription(index, subscriber, &latency))
                .collect();
            tokio::select! {
                () = async { while running.next().await.is_some() {} } => {}
                _ = stop.wait_for(|stopped| *stopped) => {}
            }
        }
        let mut tallies = Tallies::default();
        let mut orders: HashMap<(usize, u64), u64> = HashMap::new();
        for subscriber in &subscribers {
            subscriber.tally(&mut tallies);
            if subscriber.complete() {
                *orders
                    .entry((subscriber.topic, subscriber.order))
                    .or_default() += 1;
            }
        }
        tallies.orders = orders;
        tallies.latency = latency.into_inner().unwrap_or_else(PoisonError::into_inner);
        tallies
    }

    async fn subscription(
        &self,
        index: u32,
        subscriber: &mut Subscriber,
        latency: &Mutex<Histogram<u64>>,
    ) {
        let opened = {
            let Ok(_permit) = self.permits.acquire().await else {
                return;
            };
            self.open(index, subscriber.topic).await
        };
        let body = match opened {
            Ok(body) => body,
            Err(error) => {
                self.progress.failed.fetch_add(1, Ordering::Relaxed);
                self.progress.note_error(&error);
                return;
            }
        };
        self.progress.connected.fetch_add(1, Ordering::Relaxed);
        if let Err(error) = self.receive(body, subscriber, latency).await {
            self.progress.dropped.fetch_add(1, Ordering::Relaxed);
            self.progress.note_error(&error);
        }
    }

    /// Opens subscription `index` to `topic` and reads its response head.
    async fn open(&self, index: u32, topic: usize) -> anyhow::Result<Body> {
        let hub = self.plan.hub(index);
        let connector = &hub.connector;
        let Some(streams) = connector.streams_per_session() else {
            return connector.open_http1(&hub.requests[topic]).await;
        };
        let session = self.sessions[(index / streams) as usize]
            .get_or_try_init(|| connector.session())
            .await?;
        connector.open_http2(session, &hub.urls[topic]).await
    }

    /// Reads events until the stream ends or the pool is stopped.
    async fn receive(
        &self,
        mut body: Body,
        subscriber: &mut Subscriber,
        latency: &Mutex<Histogram<u64>>,
    ) -> anyhow::Result<()> {
        let mut decoder = Decoder::new();
        loop {
            let now = unix_nanos();
            body.take(|bytes| decoder.push(bytes))?;
            let events = drain(&mut decoder, subscriber, now, latency)?;
            if events > 0 {
                self.progress.delivered.fetch_add(events, Ordering::Relaxed);
                self.progress
                    .last_delivery
                    .fetch_max(now, Ordering::Relaxed);
            }
            body.fill().await?;
        }
    }
}

/// Checks every event decoded so far; returns how many there were.
fn drain(
    decoder: &mut Decoder,
    subscriber: &mut Subscriber,
    now: u64,
    latency: &Mutex<Histogram<u64>>,
) -> anyhow::Result<u64> {
    let mut events = 0;
    let mut latency = latency.lock().unwrap_or_else(PoisonError::into_inner);
    while let Some(frame) = decoder.next_frame()? {
        if let Frame::Event(event) = frame {
            events += 1;
            if let Some(nanos) = subscriber.record(event.data(), now) {
                let _ = latency.record((nanos / 1000).max(1));
            }
        }
    }
    Ok(events)
}

/// One subscription's checks.
struct Subscriber {
    topic: usize,
    topics: u64,
    /// One bit per update of the topic: received yet?
    seen: Vec<u64>,
    expected: u64,
    received: u64,
    duplicates: u64,
    /// Updates that came after one sent later (concurrent publishes may race).
    reordered: u64,
    foreign: u64,
    highest: Option<u64>,
    /// A fingerprint of the order in which the updates came.
    order: u64,
}

impl Subscriber {
    fn new(topic: usize, expected: u64, topics: u64) -> Subscriber {
        Subscriber {
            topic,
            topics,
            seen: vec![0; expected.div_ceil(64) as usize],
            expected,
            received: 0,
            duplicates: 0,
            reordered: 0,
            foreign: 0,
            highest: None,
            order: 0xcbf2_9ce4_8422_2325,
        }
    }

    /// Checks one update's data (`SEQ SENT_NANOS padding`); returns its latency in nanoseconds.
    fn record(&mut self, data: &str, now: u64) -> Option<u64> {
        let mut fields = data.split(' ');
        let parsed = fields
            .next()
            .and_then(|s| s.parse::<u64>().ok())
            .zip(fields.next().and_then(|s| s.parse::<u64>().ok()));
        let Some((seq, sent)) = parsed else {
            self.foreign += 1;
            return None;
        };
        let index = seq / self.topics;
        if seq % self.topics != self.topic as u64 || index >= self.expected {
            self.foreign += 1;
            return None;
        }
        let (word, bit) = ((index / 64) as usize, 1u64 << (index % 64));
        if self.seen[word] & bit != 0 {
            self.duplicates += 1;
            return None;
        }
        self.seen[word] |= bit;
        self.received += 1;
        if self.highest.is_some_and(|highest| seq < highest) {
            self.reordered += 1;
        }
        self.highest = self.highest.max(Some(seq));
        self.order = (self.order ^ seq).wrapping_mul(0x0100_0000_01b3);
        Some(now.saturating_sub(sent))
    }

    /// Got every update once.
    fn complete(&self) -> bool {
        self.received == self.expected && self.duplicates == 0 && self.foreign == 0
    }

    fn tally(&self, tallies: &mut Tallies) {
        tallies.received += self.received;
        tallies.lost += self.expected - self.received;
        tallies.duplicates += self.duplicates;
        tallies.reordered += self.reordered;
        tallies.foreign += self.foreign;
    }
}
