//! This node's live subscribers: matching each update against their selectors and pushing the
//! shared bytes into each matching subscriber's bounded queue.
//!
//! Exact selectors are found through a map from topic to subscribers; templates and `*` are
//! grouped by their text, so each distinct template is evaluated once per update, not once per
//! subscriber. A subscriber whose queue is full is disconnected: it resumes from history with
//! `Last-Event-ID`, and memory stays bounded.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc;

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

struct Entry {
    subscriber: Arc<Subscriber>,
    queue: mpsc::Sender<Arc<Record>>,
}

#[derive(Default)]
struct Registry {
    next_key: u64,
    entries: HashMap<u64, Entry>,
    exact: HashMap<String, Vec<u64>>,
    patterns: HashMap<String, (TopicSelector, Vec<u64>)>,
}

/// The live subscribers of this node.
pub struct Fanout {
    registry: RwLock<Registry>,
    queue_len: usize,
    pub(crate) delivered: Counter,
    pub(crate) slow_disconnects: Counter,
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fanout")
            .field("subscribers", &self.len())
            .field("queue_len", &self.queue_len)
            .finish()
    }
}

/// A registered subscriber's side of the fan-out: its queue of updates and its registration,
/// which ends when this is dropped.
#[derive(Debug)]
pub struct Registration {
    /// The updates routed to the subscriber, in order. It closes when the subscriber is
    /// disconnected (queue overflow or shutdown).
    pub queue: mpsc::Receiver<Arc<Record>>,
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
    /// An empty fan-out whose subscribers each get a queue of `queue_len` updates.
    pub fn new(queue_len: usize) -> Fanout {
        Fanout {
            registry: RwLock::new(Registry::default()),
            queue_len: queue_len.max(1),
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
            .map(|e| e.subscriber.clone())
            .collect()
    }

    /// Adds a subscriber; it receives every update delivered from now on that it
    /// [`wants`](Subscriber::wants).
    pub fn register(self: &Arc<Self>, subscriber: Subscriber) -> Registration {
        let (tx, rx) = mpsc::channel(self.queue_len);
        let subscriber = Arc::new(subscriber);
        let mut registry = self.write();
        let key = registry.next_key;
        registry.next_key += 1;
        for selector in &subscriber.selectors {
            if selector.is_wildcard() || selector.is_template() {
                registry
                    .patterns
                    .entry(selector.as_str().to_owned())
                    .or_insert_with(|| (selector.clone(), Vec::new()))
                    .1
                    .push(key);
            } else {
                registry
                    .exact
                    .entry(selector.as_str().to_owned())
                    .or_default()
                    .push(key);
            }
        }
        registry.entries.insert(
            key,
            Entry {
                subscriber: subscriber.clone(),
                queue: tx,
            },
        );
        Registration {
            queue: rx,
            subscriber,
            key,
            fanout: self.clone(),
        }
    }

    fn remove(&self, key: u64) {
        let mut registry = self.write();
        let Some(entry) = registry.entries.remove(&key) else {
            return;
        };
        for selector in &entry.subscriber.selectors {
            let text = selector.as_str();
            if let Some(keys) = registry.exact.get_mut(text) {
                keys.retain(|k| *k != key);
                if keys.is_empty() {
                    registry.exact.remove(text);
                }
            }
            if let Some((_, keys)) = registry.patterns.get_mut(text) {
                keys.retain(|k| *k != key);
                if keys.is_empty() {
                    registry.patterns.remove(text);
                }
            }
        }
    }

    /// Disconnects every subscriber (their queues close once drained).
    pub fn close_all(&self) {
        let mut registry = self.write();
        registry.entries.clear();
        registry.exact.clear();
        registry.patterns.clear();
    }

    /// Pushes `record` into the queue of every subscriber that wants it; never blocks. A
    /// subscriber whose queue is full is disconnected.
    pub fn deliver(&self, record: &Arc<Record>) {
        let mut slow = Vec::new();
        {
            let registry = self.read();
            let topics = &record.update().topics;
            let mut keys: Vec<u64> = Vec::new();
            for topic in topics {
                if let Some(found) = registry.exact.get(topic.as_str()) {
                    keys.extend_from_slice(found);
                }
            }
            for (selector, found) in registry.patterns.values() {
                if topics.iter().any(|t| selector.matches(t)) {
                    keys.extend_from_slice(found);
                }
            }
            keys.sort_unstable();
            keys.dedup();
            for key in keys {
                let Some(entry) = registry.entries.get(&key) else {
                    continue;
                };
                if !entry.subscriber.may_see(record) {
                    continue;
                }
                match entry.queue.try_send(record.clone()) {
                    Ok(()) => {
                        self.delivered.inc();
                    }
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        self.slow_disconnects.inc();
                        tracing::info!(subscriber = %entry.subscriber.id, "slow subscriber disconnected: its queue is full");
                        slow.push(key);
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => slow.push(key),
                }
            }
        }
        for key in slow {
            self.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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

    #[test]
    fn routes_by_exact_template_wildcard_and_alternate_topics() {
        let fanout = Arc::new(Fanout::new(8));
        let mut exact = fanout.register(subscriber(&["a"], &[]));
        let mut template = fanout.register(subscriber(&["https://e.com/b/{id}"], &[]));
        let mut all = fanout.register(subscriber(&["*"], &[]));
        fanout.deliver(&record(1, &["x", "a"], false));
        fanout.deliver(&record(2, &["https://e.com/b/1"], false));
        fanout.deliver(&record(3, &["a"], true));
        assert_eq!(exact.queue.try_recv().expect("alternate topic").seq, 1);
        assert!(exact.queue.try_recv().is_err(), "private update withheld");
        assert_eq!(template.queue.try_recv().expect("template").seq, 2);
        assert_eq!(all.queue.try_recv().expect("*").seq, 1);
        assert_eq!(all.queue.try_recv().expect("*").seq, 2);
        assert!(all.queue.try_recv().is_err());
    }

    #[test]
    fn d22_full_queue_disconnects_instead_of_blocking() {
        let fanout = Arc::new(Fanout::new(2));
        let mut slow = fanout.register(subscriber(&["a"], &[]));
        for seq in 1..=3 {
            fanout.deliver(&record(seq, &["a"], false));
        }
        assert_eq!(fanout.len(), 0, "removed when its queue overflowed");
        assert_eq!(slow.queue.try_recv().expect("queued").seq, 1);
        assert_eq!(slow.queue.try_recv().expect("queued").seq, 2);
        assert!(matches!(
            slow.queue.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
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
