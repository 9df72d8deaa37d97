//! The embedded default transport: the last N updates in memory, indexed by ID so that a resume
//! finds its starting point without a scan.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;

use super::{History, RecordFilter, Since, Transport, TransportError};
use crate::fanout::Fanout;
use crate::update::{Record, Update};

/// In-memory ring of the last `capacity` updates, feeding one node's fan-out.
#[derive(Debug)]
pub struct LocalTransport {
    state: Mutex<Ring>,
    fanout: Arc<Fanout>,
    closed: AtomicBool,
}

#[derive(Debug, Default)]
struct Ring {
    capacity: usize,
    /// Stored updates; their positions are consecutive, the front one is `first_seq`.
    records: VecDeque<Arc<Record>>,
    first_seq: u64,
    next_seq: u64,
    /// ID -> position of the newest stored update with that ID.
    index: HashMap<String, u64>,
    last_id: Option<String>,
    /// When each stored update was committed, parallel to `records`.
    times: VecDeque<SystemTime>,
    /// Updates older than this are dropped (zero: no bound).
    max_age: Duration,
}

impl Ring {
    fn pop_front(&mut self) {
        if let Some(old) = self.records.pop_front() {
            self.times.pop_front();
            let id = &old.update().id;
            if self.index.get(id) == Some(&old.seq) {
                self.index.remove(id);
            }
            self.first_seq = old.seq + 1;
        }
    }

    /// Drops what exceeds the size bound, and what is older than the age bound.
    fn prune(&mut self, now: SystemTime) {
        while self.records.len() > self.capacity {
            self.pop_front();
        }
        if self.max_age.is_zero() {
            return;
        }
        let cutoff = now
            .checked_sub(self.max_age)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        while self.times.front().is_some_and(|t| *t < cutoff) {
            self.pop_front();
        }
    }
}

impl LocalTransport {
    /// Keeps the last `capacity` updates (zero keeps none) and feeds `fanout`.
    pub fn new(capacity: usize, fanout: Arc<Fanout>) -> LocalTransport {
        LocalTransport::with_max_age(capacity, Duration::ZERO, fanout)
    }

    /// Keeps the last `capacity` updates, none older than `max_age` (zero: no age bound).
    pub fn with_max_age(capacity: usize, max_age: Duration, fanout: Arc<Fanout>) -> LocalTransport {
        LocalTransport {
            state: Mutex::new(Ring {
                capacity,
                max_age,
                first_seq: 1,
                next_seq: 1,
                ..Ring::default()
            }),
            fanout,
            closed: AtomicBool::new(false),
        }
    }

    fn ring(&self) -> MutexGuard<'_, Ring> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many updates are stored.
    pub fn len(&self) -> usize {
        self.ring().records.len()
    }

    /// Whether no update is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn dispatch_now(&self, update: Update) -> Result<Arc<Record>, TransportError> {
        self.dispatch_at(update, SystemTime::now())
    }

    /// Stores `update` as committed at `time`, and delivers it.
    pub(crate) fn dispatch_at(
        &self,
        update: Update,
        time: SystemTime,
    ) -> Result<Arc<Record>, TransportError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(TransportError::Closed);
        }
        let mut ring = self.ring();
        let seq = ring.next_seq;
        let record = Arc::new(Record::new(seq, update)?);
        ring.next_seq += 1;
        ring.last_id = Some(record.update().id.clone());
        if ring.capacity > 0 {
            ring.index.insert(record.update().id.clone(), seq);
            ring.records.push_back(record.clone());
            ring.times.push_back(time);
            ring.prune(SystemTime::now());
        } else {
            ring.first_seq = seq + 1;
        }
        // Delivered under the ring's lock, so every subscriber sees updates in the ring's order;
        // delivery never blocks (full queues disconnect their subscriber).
        self.fanout.deliver(&record);
        Ok(record)
    }

    fn history_now(&self, since: &Since, filter: RecordFilter<'_>) -> History {
        let mut ring = self.ring();
        ring.prune(SystemTime::now());
        let up_to = ring.next_seq - 1;
        let start = match since {
            Since::Earliest => Some(0),
            Since::Id(id) => ring
                .index
                .get(id)
                .map(|seq| (seq + 1 - ring.first_seq) as usize),
        };
        match start {
            Some(start) => History {
                records: ring
                    .records
                    .iter()
                    .skip(start)
                    .filter(|r| filter(r))
                    .cloned()
                    .collect(),
                up_to,
                last_event_id: match since {
                    Since::Id(id) => id.clone(),
                    Since::Earliest => "earliest".to_owned(),
                },
            },
            None => History {
                records: Vec::new(),
                up_to,
                last_event_id: ring
                    .records
                    .iter()
                    .rev()
                    .find(|r| filter(r))
                    .map_or_else(|| "earliest".to_owned(), |r| r.update().id.clone()),
            },
        }
    }
}

impl Transport for LocalTransport {
    fn dispatch(&self, update: Update) -> BoxFuture<'_, Result<Arc<Record>, TransportError>> {
        let result = self.dispatch_now(update);
        Box::pin(async move { result })
    }

    fn history<'a>(
        &'a self,
        since: Since,
        filter: RecordFilter<'a>,
    ) -> BoxFuture<'a, Result<History, TransportError>> {
        let history = self.history_now(&since, filter);
        Box::pin(async move { Ok(history) })
    }

    fn last_event_id(&self) -> String {
        self.ring()
            .last_id
            .clone()
            .unwrap_or_else(|| "earliest".to_owned())
    }

    fn history_len(&self) -> usize {
        self.len()
    }

    fn is_ready(&self) -> bool {
        !self.closed.load(Ordering::Acquire)
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(id: &str, topic: &str) -> Update {
        Update {
            id: id.into(),
            ..Update::new(vec![topic.into()], id)
        }
    }

    fn ids(history: &History) -> Vec<&str> {
        history
            .records
            .iter()
            .map(|r| r.update().id.as_str())
            .collect()
    }

    #[tokio::test]
    async fn d25_history_by_id_earliest_unknown_and_purge() {
        let transport = LocalTransport::new(5, Arc::new(Fanout::new(4)));
        assert_eq!(transport.last_event_id(), "earliest");
        let all = |_: &Record| true;
        let empty = transport
            .history(Since::Id("x".into()), &all)
            .await
            .expect("history");
        assert_eq!(empty.last_event_id, "earliest");
        for (i, topic) in ["a", "b", "a", "b", "a", "b", "a"].iter().enumerate() {
            transport
                .dispatch(update(&format!("{i}"), topic))
                .await
                .expect("dispatch");
        }
        assert_eq!(transport.len(), 5, "purge keeps exactly `size` entries");
        assert_eq!(transport.last_event_id(), "6");
        let after = transport
            .history(Since::Id("3".into()), &all)
            .await
            .expect("h");
        assert_eq!(ids(&after), ["4", "5", "6"]);
        assert_eq!(after.last_event_id, "3");
        assert_eq!(after.up_to, 7);
        let evicted = transport
            .history(Since::Id("0".into()), &all)
            .await
            .expect("h");
        assert!(evicted.records.is_empty());
        assert_eq!(evicted.last_event_id, "6");
        let only_b = |r: &Record| r.update().topics[0] == "b";
        let unknown = transport
            .history(Since::Id("zz".into()), &only_b)
            .await
            .expect("h");
        assert_eq!(
            unknown.last_event_id, "5",
            "newest event the filter accepts"
        );
        let earliest = transport
            .history(Since::Earliest, &only_b)
            .await
            .expect("h");
        assert_eq!(ids(&earliest), ["3", "5"]);
        assert_eq!(earliest.last_event_id, "earliest");
    }

    #[tokio::test]
    async fn history_age_drops_old_updates() {
        let transport =
            LocalTransport::with_max_age(10, Duration::from_secs(60), Arc::new(Fanout::new(4)));
        let long_ago = SystemTime::now() - Duration::from_secs(120);
        transport
            .dispatch_at(update("old", "t"), long_ago)
            .expect("dispatch");
        transport
            .dispatch(update("new", "t"))
            .await
            .expect("dispatch");
        let all = transport
            .history(Since::Earliest, &|_: &Record| true)
            .await
            .expect("h");
        assert_eq!(ids(&all), ["new"]);
        assert_eq!(transport.len(), 1);
    }

    #[tokio::test]
    async fn d26_no_history_and_closed_transport() {
        let transport = LocalTransport::new(0, Arc::new(Fanout::new(4)));
        transport
            .dispatch(update("a", "t"))
            .await
            .expect("dispatch");
        assert!(transport.is_empty());
        let h = transport
            .history(Since::Id("a".into()), &|_: &Record| true)
            .await
            .expect("h");
        assert_eq!(h.last_event_id, "earliest");
        transport.close();
        assert!(matches!(
            transport.dispatch(update("b", "t")).await,
            Err(TransportError::Closed)
        ));
    }
}
