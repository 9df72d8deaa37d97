//! This node's live subscribers: matching each update against their selectors and pushing the
//! shared bytes into each matching subscriber's bounded queue.
//!
//! Exact selectors are found through a map from topic to subscribers; templates and `*` are
//! grouped by their text, so each distinct template is evaluated once per update, not once per
//! subscriber. A subscriber whose queue is full is disconnected: it resumes from history with
//! `Last-Event-ID`, and memory stays bounded.

mod queue;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use slab::Slab;
use tokio::sync::Notify;

pub use queue::Queue;
use queue::{Pushed, Slot};

use crate::topic::{TopicSelector, any_matches};
use crate::update::Record;

/// One subscriber as the fan-out knows it.
#[derive(Debug)]
pub struct Subscriber {
    /// The subscriber's ID (`urn:uuid:<UUIDv4>`), shared by all its subscriptions.
    pub id: String,
    /// The `topic` selectors it asked for, one subscription each.
    pub selectors: Vec<TopicSelector>,
    /// The selectors of the private updates its token unlocks.
    pub private_selectors: Vec<TopicSelector>,
    /// The `payload` of its token's `mercure` claim.
    pub payload: Option<serde_json::Value>,
}

impl Subscriber {
    /// Whether `record` should reach this subscriber: a topic matches a selector, and a private
    /// update also needs a topic matching one of the token's subscribe selectors.
    pub fn wants(&self, record: &Record) -> bool {
        let topics = &record.update().topics;
        any_matches(&self.selectors, topics) && self.may_see(record)
    }

    /// Whether this subscriber is authorised for `record` (public, or unlocked by its token).
    pub fn may_see(&self, record: &Record) -> bool {
        !record.update().private || any_matches(&self.private_selectors, &record.update().topics)
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
    patterns: HashMap<String, (TopicSelector, Slab<Arc<Entry>>)>,
}

impl Registry {
    fn list(&mut self, selector: &TopicSelector) -> &mut Slab<Arc<Entry>> {
        if selector.is_wildcard() || selector.is_template() {
            &mut self
                .patterns
                .entry(selector.as_str().to_owned())
                .or_insert_with(|| (selector.clone(), Slab::new()))
                .1
        } else {
            self.exact.entry(selector.as_str().to_owned()).or_default()
        }
    }

    /// Takes `place` out of `selector`'s list, and drops the list once empty.
    fn leave(&mut self, selector: &TopicSelector, place: usize) {
        let text = selector.as_str();
        if selector.is_wildcard() || selector.is_template() {
            if let Some((_, list)) = self.patterns.get_mut(text) {
                list.try_remove(place);
                if list.is_empty() {
                    self.patterns.remove(text);
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
    ticking: AtomicBool,
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
    /// non-zero `flush_interval`, a subscriber with waiting updates is woken by a shared tick
    /// at most that long after the first of them was queued, so that what arrives meanwhile
    /// leaves in the same write; zero wakes it at once.
    pub fn with_flush_interval(queue_len: usize, flush_interval: Duration) -> Fanout {
        Fanout {
            registry: RwLock::new(Registry::default()),
            queue_len: queue_len.max(1),
            flush_interval,
            pending: Mutex::new(Vec::new()),
            tick: Arc::new(Notify::new()),
            ticking: AtomicBool::new(false),
            delivered: Counter::default(),
            slow_disconnects: Counter::default(),
        }
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
                seen.insert(selector.as_str())
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

    /// Starts the shared flush tick, once, when there is one and a runtime to run it.
    fn start_ticking(self: &Arc<Self>) {
        if self.flush_interval.is_zero() || self.ticking.load(Ordering::Acquire) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.ticking.swap(true, Ordering::AcqRel) {
            return;
        }
        runtime.spawn(flush_ticks(
            Arc::downgrade(self),
            self.tick.clone(),
            self.flush_interval,
        ));
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

    /// Disconnects every subscriber (their queues close once drained).
    pub fn close_all(&self) {
        let mut registry = self.write();
        for (entry, _) in registry.entries.values() {
            entry.slot.close();
        }
        registry.entries.clear();
        registry.exact.clear();
        registry.patterns.clear();
    }

    /// Pushes `record` into the queue of every subscriber that wants it; never blocks. A
    /// subscriber whose queue is full is disconnected.
    pub fn deliver(&self, record: &Arc<Record>) {
        let mut slow = Vec::new();
        let mut wake = Vec::new();
        let mut delivered = 0u64;
        {
            let registry = self.read();
            let topics = &record.update().topics;
            let mut lists: Vec<&Slab<Arc<Entry>>> = Vec::new();
            for topic in topics {
                if let Some(found) = registry.exact.get(topic.as_str()) {
                    lists.push(found);
                }
            }
            for (selector, found) in registry.patterns.values() {
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
            match lists.as_slice() {
                [] => {}
                // The common case: one list, each subscriber in it once.
                [list] => list.iter().for_each(|(_, entry)| push(entry)),
                // Several selectors of one subscriber may match: deliver once.
                _ => {
                    let mut all: Vec<&Arc<Entry>> = lists
                        .iter()
                        .flat_map(|l| l.iter().map(|(_, e)| e))
                        .collect();
                    all.sort_unstable_by_key(|e| e.key);
                    all.dedup_by_key(|e| e.key);
                    all.into_iter().for_each(push);
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

/// The shared flush tick: once updates are waiting, sleeps `every`, then wakes every reader
/// with waiting updates. Ends with the fan-out.
async fn flush_ticks(fanout: Weak<Fanout>, tick: Arc<Notify>, every: Duration) {
    loop {
        tick.notified().await;
        tokio::time::sleep(every).await;
        let Some(fanout) = fanout.upgrade() else {
            return;
        };
        let due = std::mem::take(&mut *fanout.pending.lock().unwrap_or_else(|p| p.into_inner()));
        drop(fanout);
        due.iter().for_each(|slot| slot.wake());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Poll;

    use crate::update::Update;

    fn subscriber(selectors: &[&str], private: &[&str]) -> Subscriber {
        Subscriber {
            id: "urn:uuid:test".into(),
            selectors: selectors.iter().map(|s| TopicSelector::new(s)).collect(),
            private_selectors: private.iter().map(|s| TopicSelector::new(s)).collect(),
            payload: None,
        }
    }

    fn record(seq: u64, topics: &[&str], private: bool) -> Arc<Record> {
        let mut update = Update::new(topics.iter().map(|t| t.to_string()).collect(), "d");
        update.private = private;
        Arc::new(Record::new(seq, update).expect("record"))
    }

    /// The next queued update's position: `Some(Some(seq))`, `Some(None)` once closed and
    /// drained, `None` while empty.
    fn next(queue: &mut Queue) -> Option<Option<u64>> {
        match queue.try_recv() {
            Poll::Ready(record) => Some(record.map(|r| r.seq)),
            Poll::Pending => None,
        }
    }

    #[test]
    fn routes_by_exact_template_wildcard_and_alternate_topics() {
        let fanout = Arc::new(Fanout::new(8));
        let mut exact = fanout.register(subscriber(&["a"], &[]));
        let mut template = fanout.register(subscriber(&["https://e.com/b/{id}"], &[]));
        let mut all = fanout.register(subscriber(&["*"], &[]));
        fanout.deliver(&record(1, &["x", "a"], false));
        fanout.deliver(&record(2, &["https://e.com/b/1"], false));
        fanout.deliver(&record(3, &["a"], true));
        assert_eq!(next(&mut exact.queue), Some(Some(1)), "alternate topic");
        assert_eq!(next(&mut exact.queue), None, "private update withheld");
        assert_eq!(next(&mut template.queue), Some(Some(2)));
        assert_eq!(next(&mut all.queue), Some(Some(1)));
        assert_eq!(next(&mut all.queue), Some(Some(2)));
        assert_eq!(next(&mut all.queue), None);
    }

    #[test]
    fn a_subscriber_matching_several_ways_gets_each_update_once() {
        let fanout = Arc::new(Fanout::new(8));
        let mut twice = fanout.register(subscriber(&["a", "a", "{x}", "*"], &[]));
        fanout.deliver(&record(1, &["a", "b"], false));
        assert_eq!(next(&mut twice.queue), Some(Some(1)));
        assert_eq!(next(&mut twice.queue), None);
        drop(twice);
        assert!(fanout.read().exact.is_empty() && fanout.read().patterns.is_empty());
    }

    #[test]
    fn leaving_a_crowded_topic_keeps_the_others_and_reuses_the_place() {
        let fanout = Arc::new(Fanout::new(8));
        let mut all: Vec<Registration> = (0..5)
            .map(|_| fanout.register(subscriber(&["a"], &[])))
            .collect();
        let gone = all.remove(2);
        drop(gone);
        assert_eq!(fanout.read().exact["a"].len(), 4);
        all.push(fanout.register(subscriber(&["a"], &[])));
        let highest = fanout.read().exact["a"]
            .iter()
            .map(|(place, _)| place)
            .max();
        assert_eq!(highest, Some(4), "the freed place is reused");
        fanout.deliver(&record(1, &["a"], false));
        for registration in &mut all {
            assert_eq!(next(&mut registration.queue), Some(Some(1)));
        }
        all.clear();
        assert!(fanout.read().exact.is_empty());
    }

    #[test]
    fn d22_full_queue_disconnects_instead_of_blocking() {
        let fanout = Arc::new(Fanout::new(2));
        let mut slow = fanout.register(subscriber(&["a"], &[]));
        for seq in 1..=3 {
            fanout.deliver(&record(seq, &["a"], false));
        }
        assert_eq!(fanout.len(), 0, "removed when its queue overflowed");
        assert_eq!(next(&mut slow.queue), Some(Some(1)));
        assert_eq!(next(&mut slow.queue), Some(Some(2)));
        assert_eq!(next(&mut slow.queue), Some(None), "closed once drained");
    }

    #[test]
    fn close_all_ends_every_queue_after_what_it_holds() {
        let fanout = Arc::new(Fanout::new(8));
        let mut one = fanout.register(subscriber(&["a"], &[]));
        fanout.deliver(&record(1, &["a"], false));
        fanout.close_all();
        assert_eq!(next(&mut one.queue), Some(Some(1)));
        assert_eq!(next(&mut one.queue), Some(None));
    }

    /// A waker that counts its wake-ups.
    struct Count(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_burst_wakes_the_reader_once_and_is_read_in_one_go() {
        let fanout = Arc::new(Fanout::new(8));
        let mut reader = fanout.register(subscriber(&["a"], &[]));
        let count = Arc::new(Count(Default::default()));
        let waker = std::task::Waker::from(count.clone());
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(reader.queue.poll_recv(&mut cx).is_pending());
        for seq in 1..=3 {
            fanout.deliver(&record(seq, &["a"], false));
        }
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            1,
            "one wake-up for the burst"
        );
        for seq in 1..=3 {
            match reader.queue.poll_recv(&mut cx) {
                Poll::Ready(Some(record)) => assert_eq!(record.seq, seq),
                other => panic!("expected {seq}, got {other:?}"),
            }
        }
        assert!(reader.queue.poll_recv(&mut cx).is_pending());
        fanout.deliver(&record(4, &["a"], false));
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            2,
            "woken again once drained"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn with_a_flush_interval_the_shared_tick_wakes_readers_together() {
        let fanout = Arc::new(Fanout::with_flush_interval(8, Duration::from_millis(5)));
        let mut reader = fanout.register(subscriber(&["a"], &[]));
        let count = Arc::new(Count(Default::default()));
        let waker = std::task::Waker::from(count.clone());
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(reader.queue.poll_recv(&mut cx).is_pending());
        tokio::task::yield_now().await; // let the tick start waiting
        fanout.deliver(&record(1, &["a"], false));
        fanout.deliver(&record(2, &["a"], false));
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            0,
            "not woken before the tick"
        );
        tokio::time::sleep(Duration::from_millis(6)).await;
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "woken once by the tick");
        assert!(matches!(
            reader.queue.poll_recv(&mut cx),
            Poll::Ready(Some(_))
        ));
    }

    #[test]
    fn d22_dropping_the_registration_unsubscribes() {
        let fanout = Arc::new(Fanout::new(2));
        let registration = fanout.register(subscriber(&["a", "{x}"], &[]));
        assert_eq!(fanout.len(), 1);
        drop(registration);
        assert!(fanout.is_empty());
        assert!(fanout.read().exact.is_empty() && fanout.read().patterns.is_empty());
    }
}
