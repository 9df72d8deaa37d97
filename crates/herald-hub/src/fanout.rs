//! This node's live subscribers: matching each update against their selectors and pushing the
//! shared bytes into each matching subscriber's bounded queue.
//!
//! Exact selectors are found through a map from topic to subscribers; templates and `*` are
//! grouped by their text, so each distinct template is evaluated once per update, not once per
//! subscriber. A subscriber whose queue is full is disconnected: it resumes from history with
//! `Last-Event-ID`, and memory stays bounded.

mod queue;
mod ticks;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use slab::Slab;
use tokio::sync::Notify;

pub use queue::Queue;
use queue::{Pushed, Slot};
pub use ticks::{Clock, Heartbeats};

use crate::protocol::Generation;
use crate::topic::{TopicSelector, any_matches};
use crate::update::Record;

/// One subscriber as the fan-out knows it.
#[derive(Debug)]
pub struct Subscriber {
    /// The subscriber's ID (`urn:uuid:<UUIDv4>`), shared by all its subscriptions.
    pub id: String,
    /// The `topic` selectors (0.x) or `match*` matchers (1.0) it asked for, one subscription
    /// each.
    pub selectors: Vec<TopicSelector>,
    /// The selectors of the private updates its token unlocks.
    pub private_selectors: Vec<TopicSelector>,
    /// The `payload` of its token's `mercure` claim (0.x).
    pub payload: Option<serde_json::Value>,
    /// The generation of the protocol it subscribed with.
    pub generation: Generation,
    /// 1.0: each subscription's payload, from the first `subscribe` grant matching its
    /// matcher (in the order of `selectors`; empty for 0.x).
    pub payloads: Vec<Option<serde_json::Value>>,
    /// Who its token says it is (empty for an anonymous subscriber).
    pub identity: Identity,
}

/// Who a subscriber's token says it is: what the control API selects streams and revokes
/// tokens by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The token's `sub` claim.
    pub sub: Option<String>,
    /// The token's `jti` claim.
    pub jti: Option<String>,
    /// The token's `iat` claim, in whole seconds since the Unix epoch.
    pub issued_at: Option<u64>,
}

impl Subscriber {
    /// A 0.x subscriber with these selectors, unlocking the private updates of
    /// `private_selectors`.
    pub fn new(
        id: String,
        selectors: Vec<TopicSelector>,
        private_selectors: Vec<TopicSelector>,
    ) -> Subscriber {
        Subscriber {
            id,
            selectors,
            private_selectors,
            payload: None,
            generation: Generation::Legacy,
            payloads: Vec::new(),
            identity: Identity::default(),
        }
    }

    /// Whether `record` should reach this subscriber: a topic matches a selector, and a private
    /// update also needs a topic matching one of the token's subscribe selectors.
    pub fn wants(&self, record: &Record) -> bool {
        any_matches(&self.selectors, record.topics()) && self.may_see(record)
    }

    /// Whether this subscriber is authorised for `record` (public, or unlocked by its token).
    /// The subscription events of one generation never reach a subscriber of the other.
    pub fn may_see(&self, record: &Record) -> bool {
        !record.is_private()
            || (any_matches(&self.private_selectors, record.topics())
                && crate::subscriptions::same_generation(record.topics(), self.generation))
    }

    /// The payload of subscription `index` (0.x: the token's, the same for all).
    pub fn payload_of(&self, index: usize) -> Option<&serde_json::Value> {
        match self.generation {
            Generation::Legacy => self.payload.as_ref(),
            Generation::Modern => self.payloads.get(index).and_then(Option::as_ref),
        }
    }
}

/// A registered subscriber: who it is and its queue.
struct Entry {
    key: u64,
    subscriber: Arc<Subscriber>,
    slot: Arc<Slot>,
}

/// Subscribers by selector. The lists hold the entries themselves, so a delivery reads each
/// matching subscriber straight from its topic's list; they are slabs, so that a subscriber
/// leaves its lists in constant time even when thousands share a topic.
#[derive(Default)]
struct Registry {
    next_key: u64,
    /// Each entry, with its place in the list of each of its selectors (`None` for a selector
    /// it repeats).
    entries: HashMap<u64, (Arc<Entry>, Vec<Option<usize>>)>,
    exact: HashMap<String, Slab<Arc<Entry>>>,
    /// Templates, URL patterns and `*`, by selector (a template and a URL pattern may share
    /// a text).
    patterns: HashMap<TopicSelector, Slab<Arc<Entry>>>,
    /// [`Fanout::close_all`] ran: the hub is shutting down and takes no new subscriber.
    closed: bool,
}

impl Registry {
    fn list(&mut self, selector: &TopicSelector) -> &mut Slab<Arc<Entry>> {
        if selector.is_pattern() {
            self.patterns.entry(selector.clone()).or_default()
        } else {
            self.exact.entry(selector.as_str().to_owned()).or_default()
        }
    }

    /// Takes `place` out of `selector`'s list, and drops the list once empty.
    fn leave(&mut self, selector: &TopicSelector, place: usize) {
        let text = selector.as_str();
        if selector.is_pattern() {
            if let Some(list) = self.patterns.get_mut(selector) {
                list.try_remove(place);
                if list.is_empty() {
                    self.patterns.remove(selector);
                }
            }
        } else if let Some(list) = self.exact.get_mut(text) {
            list.try_remove(place);
            if list.is_empty() {
                self.exact.remove(text);
            }
        }
    }
}

/// The live subscribers of this node.
pub struct Fanout {
    registry: RwLock<Registry>,
    queue_len: usize,
    flush_interval: Duration,
    /// Queues that received updates since the last flush tick, to wake at the next one.
    pending: Mutex<Vec<Arc<Slot>>>,
    /// Wakes the flush tick when `pending` stops being empty.
    tick: Arc<Notify>,
    /// Whether the ticks run (they start with the first subscriber).
    ticking: AtomicBool,
    /// Silence after which a subscriber is sent a heartbeat (zero: never).
    heartbeat: Duration,
    /// What the subscribers' clocks count from.
    epoch: tokio::time::Instant,
    pub(crate) delivered: Counter,
    pub(crate) slow_disconnects: Counter,
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fanout")
            .field("subscribers", &self.len())
            .field("queue_len", &self.queue_len)
            .field("flush_interval", &self.flush_interval)
            .finish()
    }
}

/// A registered subscriber's side of the fan-out: its queue of updates and its registration,
/// which ends when this is dropped.
#[derive(Debug)]
pub struct Registration {
    /// The updates routed to the subscriber, in order. It closes when the subscriber is
    /// disconnected (queue overflow or shutdown).
    pub queue: Queue,
    /// The subscriber.
    pub subscriber: Arc<Subscriber>,
    key: u64,
    fanout: Arc<Fanout>,
}

impl Registration {
    /// The subscriber's clock, for [`Heartbeats`].
    pub fn clock(&self) -> Clock {
        Clock::new(
            self.queue.slot().clone(),
            self.fanout.epoch,
            self.fanout.heartbeat,
        )
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.fanout.remove(self.key);
    }
}

impl Fanout {
    /// An empty fan-out whose subscribers each get a queue of `queue_len` updates, woken as
    /// soon as an update is queued.
    pub fn new(queue_len: usize) -> Fanout {
        Fanout::with_flush_interval(queue_len, Duration::ZERO)
    }

    /// An empty fan-out whose subscribers each get a queue of `queue_len` updates. With a
    /// non-zero `flush_interval`, subscribers are woken by a shared tick: at once while the
    /// readers it woke last have taken their updates, at the end of the interval while some have
    /// not (the hub is busy), so that what arrives meanwhile leaves in the same write; zero
    /// wakes each at once.
    pub fn with_flush_interval(queue_len: usize, flush_interval: Duration) -> Fanout {
        Fanout {
            registry: RwLock::new(Registry::default()),
            queue_len: queue_len.max(1),
            flush_interval,
            pending: Mutex::new(Vec::new()),
            tick: Arc::new(Notify::new()),
            ticking: AtomicBool::new(false),
            heartbeat: Duration::ZERO,
            epoch: tokio::time::Instant::now(),
            delivered: Counter::default(),
            slow_disconnects: Counter::default(),
        }
    }

    /// Sends each subscriber whose stream uses [`Heartbeats`] a heartbeat after `every` of
    /// silence (zero: never), all driven by one shared tick.
    #[must_use]
    pub fn heartbeat(mut self, every: Duration) -> Fanout {
        self.heartbeat = every;
        self
    }

    fn read(&self) -> RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Registry> {
        self.registry.write().unwrap_or_else(|p| p.into_inner())
    }

    /// How many subscribers are connected.
    pub fn len(&self) -> usize {
        self.read().entries.len()
    }

    /// Whether no subscriber is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The connected subscribers.
    pub fn subscribers(&self) -> Vec<Arc<Subscriber>> {
        self.read()
            .entries
            .values()
            .map(|(e, _)| e.subscriber.clone())
            .collect()
    }

    /// Adds a subscriber; it receives every update delivered from now on that it
    /// [`wants`](Subscriber::wants).
    pub fn register(self: &Arc<Self>, subscriber: Subscriber) -> Registration {
        self.start_ticking();
        let slot = Arc::new(Slot::default());
        let subscriber = Arc::new(subscriber);
        let mut registry = self.write();
        let key = registry.next_key;
        registry.next_key += 1;
        if registry.closed {
            // Subscribed while the hub shut down: the stream ends at once (and the client
            // resumes elsewhere or later), rather than wait out the grace period.
            slot.close();
            return Registration {
                queue: Queue::new(slot),
                subscriber,
                key,
                fanout: self.clone(),
            };
        }
        let entry = Arc::new(Entry {
            key,
            subscriber: subscriber.clone(),
            slot: slot.clone(),
        });
        let mut seen = HashSet::new();
        let places = subscriber
            .selectors
            .iter()
            .map(|selector| {
                seen.insert(selector.identity())
                    .then(|| registry.list(selector).insert(entry.clone()))
            })
            .collect();
        registry.entries.insert(key, (entry, places));
        Registration {
            queue: Queue::new(slot),
            subscriber,
            key,
            fanout: self.clone(),
        }
    }

    /// Starts the shared ticks, once, when there are some and a runtime to run them.
    fn start_ticking(self: &Arc<Self>) {
        let none = self.flush_interval.is_zero() && self.heartbeat.is_zero();
        if none || self.ticking.load(Ordering::Acquire) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.ticking.swap(true, Ordering::AcqRel) {
            return;
        }
        if !self.flush_interval.is_zero() {
            runtime.spawn(ticks::flush_ticks(
                Arc::downgrade(self),
                self.tick.clone(),
                self.flush_interval,
            ));
        }
        if !self.heartbeat.is_zero() {
            runtime.spawn(ticks::heartbeat_ticks(Arc::downgrade(self), self.heartbeat));
        }
    }

    /// The queues to wake at this flush tick.
    fn take_pending(&self) -> Vec<Arc<Slot>> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Wakes the readers that have sent nothing for the heartbeat interval.
    fn wake_silent(&self) {
        let registry = self.read();
        for (entry, _) in registry.entries.values() {
            if ticks::is_silent(&entry.slot, self.epoch, self.heartbeat) {
                entry.slot.wake();
            }
        }
    }

    fn remove(&self, key: u64) {
        let mut registry = self.write();
        let Some((entry, places)) = registry.entries.remove(&key) else {
            return;
        };
        for (selector, place) in entry.subscriber.selectors.iter().zip(places) {
            if let Some(place) = place {
                registry.leave(selector, place);
            }
        }
    }

    /// Disconnects every subscriber (their queues close once drained) and takes no new one:
    /// the hub is shutting down.
    pub fn close_all(&self) {
        self.write().closed = true;
        self.disconnect_all();
    }

    /// Disconnects every subscriber connected now (their queues close once drained, and they
    /// resume with `Last-Event-ID`); new subscribers are still taken.
    pub fn disconnect_all(&self) {
        let mut registry = self.write();
        for (entry, _) in registry.entries.values() {
            entry.slot.close();
        }
        registry.entries.clear();
        registry.exact.clear();
        registry.patterns.clear();
    }

    /// Disconnects the subscribers `select` picks (their queues close once drained, and they
    /// resume with `Last-Event-ID`); answers how many.
    pub fn disconnect_where(&self, mut select: impl FnMut(&Subscriber) -> bool) -> usize {
        let chosen: Vec<(u64, Arc<Slot>)> = self
            .read()
            .entries
            .iter()
            .filter(|(_, (entry, _))| select(&entry.subscriber))
            .map(|(key, (entry, _))| (*key, entry.slot.clone()))
            .collect();
        for (key, slot) in &chosen {
            slot.close();
            self.remove(*key);
        }
        chosen.len()
    }

    /// Pushes `record` into the queue of every subscriber that wants it; never blocks. A
    /// subscriber whose queue is full is disconnected.
    pub fn deliver(&self, record: &Arc<Record>) {
        let mut slow = Vec::new();
        let mut wake = Vec::new();
        let mut delivered = 0u64;
        {
            let registry = self.read();
            let topics = record.topics();
            let mut lists: Vec<&Slab<Arc<Entry>>> = Vec::new();
            for topic in topics {
                if let Some(found) = registry.exact.get(topic.as_str()) {
                    lists.push(found);
                }
            }
            for (selector, found) in &registry.patterns {
                if topics.iter().any(|t| selector.matches(t)) {
                    lists.push(found);
                }
            }
            let mut push = |entry: &Arc<Entry>| {
                if !entry.subscriber.may_see(record) {
                    return;
                }
                match entry.slot.push(record, self.queue_len) {
                    Pushed::Queued => delivered += 1,
                    Pushed::Wake => {
                        delivered += 1;
                        wake.push(entry.slot.clone());
                    }
                    Pushed::Full => {
                        self.slow_disconnects.inc();
                        tracing::info!(subscriber = %entry.subscriber.id, "slow subscriber disconnected: its queue is full");
                        slow.push(entry.key);
                    }
                    Pushed::Closed => slow.push(entry.key),
                }
            };
            // An update may name the same topic twice: each list is walked once.
            lists.sort_unstable_by_key(|list| std::ptr::from_ref(*list) as usize);
            lists.dedup_by(|a, b| std::ptr::eq(*a, *b));
            match lists.as_slice() {
                [] => {}
                // The common case: one list, each subscriber in it once.
                [list] => list.iter().for_each(|(_, entry)| push(entry)),
                // Several selectors of one subscriber may match: deliver once. Only subscribers
                // with several selectors can be in several lists, so only they are tracked.
                _ => {
                    let mut seen = HashSet::new();
                    for (_, entry) in lists.iter().flat_map(|list| list.iter()) {
                        if entry.subscriber.selectors.len() == 1 || seen.insert(entry.key) {
                            push(entry);
                        }
                    }
                }
            }
        }
        self.delivered.inc_by(delivered);
        self.schedule(wake);
        for key in slow {
            self.remove(key);
        }
    }

    /// Wakes the readers of queues that just received their first waiting update: now, or at
    /// the next flush tick.
    fn schedule(&self, wake: Vec<Arc<Slot>>) {
        if wake.is_empty() {
            return;
        }
        if self.flush_interval.is_zero() || !self.ticking.load(Ordering::Acquire) {
            // No flush tick (none configured, or no runtime to run it): wake at once.
            wake.iter().for_each(|slot| slot.wake());
            return;
        }
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let first = pending.is_empty();
        pending.extend(wake);
        drop(pending);
        if first {
            self.tick.notify_one();
        }
    }
}

impl Drop for Fanout {
    fn drop(&mut self) {
        // Lets the flush tick notice that the fan-out is gone.
        self.tick.notify_one();
    }
}

#[cfg(test)]
mod tests;
