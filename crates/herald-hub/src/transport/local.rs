//! The embedded default transport: the history in memory, feeding one node's fan-out.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use futures::future::BoxFuture;

use super::ring::{History, HistoryLimits, Snapshot};
use super::{Since, Transport, TransportError};
use crate::fanout::Fanout;
use crate::update::{Record, Update};

/// In-memory history of the last updates, feeding one node's fan-out.
#[derive(Debug)]
pub struct LocalTransport {
    state: Mutex<State>,
    fanout: Arc<Fanout>,
    closed: AtomicBool,
}

#[derive(Debug)]
struct State {
    history: History,
    /// The position the next stored update takes.
    next_seq: u64,
}

/// What a dispatch found in history for the update's ID.
pub(crate) enum Known {
    /// The ID is new.
    New,
    /// The same update is stored already (a retry): this is it.
    Same(Arc<Record>),
}

impl LocalTransport {
    /// Keeps the last `capacity` updates (zero keeps none) and feeds `fanout`.
    pub fn new(capacity: usize, fanout: Arc<Fanout>) -> LocalTransport {
        LocalTransport::with_limits(
            HistoryLimits {
                size: capacity,
                bytes: 0,
                age: std::time::Duration::ZERO,
            },
            fanout,
        )
    }

    /// Keeps the updates within `limits` and feeds `fanout`.
    pub fn with_limits(limits: HistoryLimits, fanout: Arc<Fanout>) -> LocalTransport {
        LocalTransport {
            state: Mutex::new(State {
                history: History::new(limits),
                next_seq: 1,
            }),
            fanout,
            closed: AtomicBool::new(false),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many updates are stored.
    pub fn len(&self) -> usize {
        self.state().history.len()
    }

    /// Whether no update is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `update` may be stored: its ID is new, or it is the stored update with that ID
    /// sent again.
    pub(crate) fn check_id(&self, update: &Update) -> Result<Known, TransportError> {
        let state = self.state();
        let Some(stored) = state.history.get(&update.id) else {
            return Ok(Known::New);
        };
        let candidate = Record::new(stored.seq, update.clone())?;
        if stored.same_update(&candidate) {
            Ok(Known::Same(stored.clone()))
        } else {
            Err(TransportError::DuplicateId(update.id.clone()))
        }
    }

    /// Stores `update` as committed at `time`, and delivers it; an ID already in history is
    /// answered as [`Transport::dispatch`] says.
    pub(crate) fn dispatch_at(
        &self,
        update: Update,
        time: SystemTime,
    ) -> Result<Arc<Record>, TransportError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(TransportError::Closed);
        }
        // Encoded before the lock is taken; checked and positioned under it.
        let mut record = Record::new(0, update)?;
        let mut state = self.state();
        if let Some(stored) = state.history.get(record.id()) {
            return if stored.same_update(&record) {
                Ok(stored.clone())
            } else {
                Err(TransportError::DuplicateId(record.id().to_owned()))
            };
        }
        record.seq = state.next_seq;
        state.next_seq += 1;
        let record = Arc::new(record);
        state.history.push_update(record.clone(), time);
        // Delivered under the lock, so every subscriber sees updates in the history's order;
        // delivery never blocks (full queues disconnect their subscriber).
        self.fanout.deliver(&record);
        Ok(record)
    }

    /// Puts back an update read from a store at start-up, as committed at `time`, without
    /// checking its ID (a store written by an older version may repeat one: a resume then
    /// starts after its earliest occurrence) and without delivering it.
    pub(crate) fn restore(&self, update: Update, time: SystemTime) -> Result<(), TransportError> {
        let mut state = self.state();
        let record = Arc::new(Record::new(state.next_seq, update)?);
        state.next_seq += 1;
        state.history.push_update(record, time);
        Ok(())
    }

    /// Keeps a subscription event in its own log and delivers it.
    fn announce_now(&self, update: Update) -> Result<(), TransportError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(TransportError::Closed);
        }
        let mut record = Record::new(0, update)?;
        let mut state = self.state();
        record.seq = state.next_seq;
        state.next_seq += 1;
        let record = Arc::new(record);
        state.history.push_event(record.clone(), SystemTime::now());
        self.fanout.deliver(&record);
        Ok(())
    }
}

impl Transport for LocalTransport {
    fn dispatch(&self, update: Update) -> BoxFuture<'_, Result<Arc<Record>, TransportError>> {
        let result = self.dispatch_at(update, SystemTime::now());
        Box::pin(async move { result })
    }

    fn announce(&self, update: Update) -> BoxFuture<'_, Result<(), TransportError>> {
        let result = self.announce_now(update);
        Box::pin(async move { result })
    }

    fn snapshot(&self, since: Since) -> BoxFuture<'_, Result<Snapshot, TransportError>> {
        let snapshot = self.state().history.snapshot(&since);
        Box::pin(async move { Ok(snapshot) })
    }

    fn last_event_id(&self) -> String {
        self.state()
            .history
            .last_id()
            .map_or_else(|| "earliest".to_owned(), str::to_owned)
    }

    fn history_len(&self) -> usize {
        self.len()
    }

    fn history_bytes(&self) -> usize {
        self.state().history.bytes()
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
    use std::time::Duration;

    use super::*;
    use crate::fanout::Subscriber;
    use crate::replay::{Replay, replay};
    use crate::topic::TopicSelector;

    fn update(id: &str, topic: &str) -> Update {
        Update {
            id: id.into(),
            ..Update::new(vec![topic.into()], id)
        }
    }

    fn subscriber(selectors: &[&str]) -> Subscriber {
        Subscriber::new(
            "s".into(),
            selectors.iter().map(|s| TopicSelector::new(s)).collect(),
            Vec::new(),
        )
    }

    fn ids(replay: &Replay) -> Vec<&str> {
        replay.records.iter().map(|r| r.id()).collect()
    }

    async fn resume(transport: &LocalTransport, since: &str, selectors: &[&str]) -> Replay {
        replay(transport, Since::parse(since), &subscriber(selectors))
            .await
            .expect("history")
    }

    #[tokio::test]
    async fn d25_history_by_id_earliest_unknown_and_purge() {
        let transport = LocalTransport::new(5, Arc::new(Fanout::new(4)));
        assert_eq!(transport.last_event_id(), "earliest");
        let empty = resume(&transport, "x", &["*"]).await;
        assert_eq!(empty.last_event_id, "earliest");
        for (i, topic) in ["a", "b", "a", "b", "a", "b", "a"].iter().enumerate() {
            transport
                .dispatch(update(&format!("{i}"), topic))
                .await
                .expect("dispatch");
        }
        assert_eq!(transport.len(), 5, "purge keeps exactly `size` entries");
        assert_eq!(transport.last_event_id(), "6");
        let after = resume(&transport, "3", &["*"]).await;
        assert_eq!(ids(&after), ["4", "5", "6"]);
        assert_eq!(after.last_event_id, "3");
        assert_eq!(after.up_to, 7);
        let evicted = resume(&transport, "0", &["*"]).await;
        assert!(evicted.records.is_empty());
        assert!(evicted.not_found);
        assert_eq!(evicted.last_event_id, "6");
        let unknown = resume(&transport, "zz", &["b"]).await;
        assert_eq!(
            unknown.last_event_id, "5",
            "newest event the subscriber selects"
        );
        let earliest = resume(&transport, "earliest", &["b"]).await;
        assert_eq!(ids(&earliest), ["3", "5"]);
        assert_eq!(earliest.last_event_id, "earliest");
    }

    #[tokio::test]
    async fn history_age_drops_old_updates() {
        let limits = HistoryLimits {
            size: 10,
            bytes: 0,
            age: Duration::from_secs(60),
        };
        let transport = LocalTransport::with_limits(limits, Arc::new(Fanout::new(4)));
        let long_ago = SystemTime::now() - Duration::from_secs(120);
        transport
            .dispatch_at(update("old", "t"), long_ago)
            .expect("dispatch");
        transport
            .dispatch(update("new", "t"))
            .await
            .expect("dispatch");
        assert_eq!(ids(&resume(&transport, "earliest", &["*"]).await), ["new"]);
        assert_eq!(transport.len(), 1);
    }

    #[tokio::test]
    async fn history_is_bounded_by_bytes() {
        let limits = HistoryLimits {
            size: 1000,
            bytes: 64 * 1024,
            age: Duration::ZERO,
        };
        let transport = LocalTransport::with_limits(limits, Arc::new(Fanout::new(4)));
        // Line feeds expand sevenfold once encoded (`data: ` per line): that is what counts.
        let lines = "\n".repeat(4 * 1024);
        for i in 0..20 {
            let mut update = update(&format!("{i}"), "t");
            update.data = lines.clone();
            transport.dispatch(update).await.expect("dispatch");
            assert!(transport.history_bytes() <= 64 * 1024);
        }
        let kept = transport.len();
        assert!((1..20).contains(&kept), "{kept} kept");
        let all = resume(&transport, "earliest", &["*"]).await;
        assert_eq!(all.records.last().map(|r| r.id()), Some("19"));
        // An update larger than the whole bound is delivered but not kept.
        let mut huge = update("huge", "t");
        huge.data = "x".repeat(100 * 1024);
        transport.dispatch(huge).await.expect("dispatch");
        assert!(transport.history_bytes() <= 64 * 1024);
        assert_eq!(transport.last_event_id(), "huge");
    }

    #[tokio::test]
    async fn a_reused_id_is_a_retry_or_a_conflict_never_a_second_entry() {
        let transport = LocalTransport::new(10, Arc::new(Fanout::new(4)));
        let first = transport.dispatch(update("dup", "a")).await.expect("first");
        transport.dispatch(update("between", "b")).await.expect("b");
        let retry = transport.dispatch(update("dup", "a")).await.expect("retry");
        assert!(
            Arc::ptr_eq(&first, &retry),
            "the stored update answers the retry"
        );
        let mut other = update("dup", "b");
        other.data = "something else".into();
        assert!(matches!(
            transport.dispatch(other).await,
            Err(TransportError::DuplicateId(id)) if id == "dup"
        ));
        assert_eq!(transport.len(), 2);
        let after = resume(&transport, "dup", &["*"]).await;
        assert_eq!(ids(&after), ["between"]);
    }

    #[tokio::test]
    async fn d26_no_history_and_closed_transport() {
        let transport = LocalTransport::new(0, Arc::new(Fanout::new(4)));
        transport
            .dispatch(update("a", "t"))
            .await
            .expect("dispatch");
        assert!(transport.is_empty());
        let h = resume(&transport, "a", &["*"]).await;
        assert_eq!(h.last_event_id, "earliest");
        transport.close();
        assert!(matches!(
            transport.dispatch(update("b", "t")).await,
            Err(TransportError::Closed)
        ));
    }
}
