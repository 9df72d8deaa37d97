//! A node's mirror of the shared log: one reader task loads the log's tail, then reads every
//! entry in offset order into the node's history and hands it to the node's fan-out, under one
//! lock, so that every subscriber of the node sees the log's order and a resume's snapshot and
//! live delivery meet without gap or duplicate (as in the local transport).
//!
//! What can go wrong, and what the mirror does:
//! - the engine is unreachable or its connection was killed: the reader retries with jittered
//!   backoff (50 ms to 5 s) from where it stopped, so nothing is lost or read twice; meanwhile
//!   the node is not ready and open streams keep their heartbeats;
//! - a hole in the offsets (the node lagged past the log's bound and entries were trimmed before
//!   it read them), or a new epoch (the engine lost its data): the node's history can no longer
//!   answer resumes exactly, so it is reloaded from the log's tail and every subscriber of the
//!   node is disconnected, to resume knowingly (an ID that is gone is answered as unknown).
//!   A new epoch is seen in the log's head, and in every entry read: a new log may already hold
//!   more entries than the node had read of the old one, and its entries past the node's cursor
//!   must not be delivered as if they followed what the node read (the new log's first ones
//!   would be missed without anyone knowing).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use rand::Rng;
use tokio::sync::watch;

use super::{CONTROL_LOG_LEN, Channel, Cursor, Entry, Head, SharedLog};
use crate::control::{Action, Control};
use crate::fanout::Fanout;
use crate::transport::ring::History;
use crate::transport::stored::Stored;
use crate::transport::{HistoryLimits, Since, Snapshot, TransportError};
use crate::update::Record;

/// How long one blocking read waits for new entries before the reader checks the epoch.
const READ_WAIT: Duration = Duration::from_secs(2);
/// How often the reader looks at the log's head while entries keep coming.
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// The reader's first and longest waits between attempts while the engine is unreachable.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(5));

/// How the mirror is doing, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SharedStats {
    /// Entries appended to the log that this node has not read yet (as of the reader's last
    /// look at the log's head).
    pub lag_entries: u64,
    /// How old the newest entry read was when it was read, in milliseconds.
    pub lag_ms: u64,
    /// Holes found in the offsets.
    pub gaps: u64,
    /// Epoch changes seen.
    pub epoch_changes: u64,
    /// Failed reads and loads.
    pub errors: u64,
    /// Nodes alive in the cluster, as of this node's last heartbeat.
    pub nodes: u64,
}

/// A node's mirror of the shared log.
pub(super) struct Mirror {
    pub(super) log: Arc<dyn SharedLog>,
    pub(super) fanout: Arc<Fanout>,
    /// Applies the control channel's actions to this node.
    pub(super) control: Arc<Control>,
    state: Mutex<State>,
    /// How far the reader has read, for the fence and publishes waiting on it.
    read_to: watch::Sender<Cursor>,
    ready: AtomicBool,
    closed: AtomicBool,
    lag_entries: AtomicU64,
    lag_ms: AtomicU64,
    gaps: AtomicU64,
    epoch_changes: AtomicU64,
    errors: AtomicU64,
}

struct State {
    history: History,
    /// The node's position for the next entry read (its order: the log's, channels
    /// interleaved as read).
    next_seq: u64,
    cursor: Cursor,
    epoch: Option<String>,
}

/// Why the mirror must reload.
enum Resync {
    /// Offset `found` came where `expected` was due.
    Gap { expected: u64, found: u64 },
    /// An entry of another epoch was read.
    Epoch,
}

impl Mirror {
    pub(super) fn new(
        log: Arc<dyn SharedLog>,
        limits: HistoryLimits,
        fanout: Arc<Fanout>,
        control: Arc<Control>,
    ) -> Mirror {
        Mirror {
            log,
            fanout,
            control,
            state: Mutex::new(State {
                history: History::new(limits),
                next_seq: 1,
                cursor: Cursor::default(),
                epoch: None,
            }),
            read_to: watch::Sender::new(Cursor::default()),
            ready: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            lag_entries: AtomicU64::new(0),
            lag_ms: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
            epoch_changes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.ready.store(false, Ordering::Release);
    }

    pub(super) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    fn set_ready(&self, ready: bool) {
        self.ready
            .store(ready && !self.is_closed(), Ordering::Release);
    }

    pub(super) fn stats(&self) -> SharedStats {
        SharedStats {
            lag_entries: self.lag_entries.load(Ordering::Relaxed),
            lag_ms: self.lag_ms.load(Ordering::Relaxed),
            gaps: self.gaps.load(Ordering::Relaxed),
            epoch_changes: self.epoch_changes.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            nodes: 0,
        }
    }

    pub(super) fn history_len(&self) -> usize {
        self.state().history.len()
    }

    pub(super) fn history_bytes(&self) -> usize {
        self.state().history.bytes()
    }

    pub(super) fn last_event_id(&self) -> String {
        self.state()
            .history
            .last_id()
            .map_or_else(|| "earliest".to_owned(), str::to_owned)
    }

    pub(super) fn contains(&self, id: &str) -> bool {
        self.state().history.get(id).is_some()
    }

    /// What the ID rule answers for `record`, when its ID is in this node's history: the stored
    /// update when it is the same one, a conflict otherwise.
    pub(super) fn known(&self, record: &Record) -> Option<Result<Arc<Record>, TransportError>> {
        let state = self.state();
        let stored = state.history.get(record.id())?;
        Some(if stored.same_update(record) {
            Ok(stored.clone())
        } else {
            Err(TransportError::DuplicateId(record.id().to_owned()))
        })
    }

    pub(super) fn snapshot(&self, since: &Since) -> Snapshot {
        self.state().history.snapshot(since)
    }

    /// Waits, at most `limit`, until the reader has read up to `target`; whether it has.
    pub(super) async fn wait_for(&self, target: Cursor, limit: Duration) -> bool {
        let mut read_to = self.read_to.subscribe();
        matches!(
            tokio::time::timeout(limit, read_to.wait_for(|c| c.reached(&target))).await,
            Ok(Ok(_))
        )
    }

    /// Loads the log's tail into an emptied history and disconnects every subscriber of the
    /// node: a first load, or a reload after a gap or an epoch change.
    async fn load(&self) -> Result<(), super::LogError> {
        let head = self.log.head().await?;
        let keep = self.state().history_limit();
        // The control channel's tail is read apart, and further: its revocations stay in force
        // for as long as their tokens live, however few updates the history keeps.
        let (mut histories, mut controls) = (head.cursor, Cursor::default());
        histories.set(Channel::Control, 0);
        controls.set(Channel::Control, head.cursor.get(Channel::Control));
        let mut entries = self.log.tail(histories, keep).await?;
        entries.extend(self.log.tail(controls, CONTROL_LOG_LEN).await?);
        if entries
            .iter()
            .any(|e| e.epoch.is_some() && e.epoch != head.epoch)
        {
            return Err(super::LogError(
                "the shared log changed epoch while its tail was read".to_owned(),
            ));
        }
        let mut state = self.state();
        if state.epoch.is_some() && state.epoch != head.epoch {
            self.epoch_changes.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                log = %self.log.describe(),
                "the shared log has a new epoch (it lost its data): history reloaded, \
                 subscribers disconnected to resume"
            );
        }
        state.history.clear();
        state.epoch = head.epoch;
        state.cursor = head.cursor;
        let mut loaded = 0;
        let mut restored = 0;
        for entry in entries {
            if entry.channel == Channel::Control {
                // Revocations still in force are kept; the streams end below anyway.
                if let Some(action) = action_of(&entry) {
                    self.control.restore(&action);
                    restored += 1;
                }
                continue;
            }
            if let Some(record) = state.record(&entry) {
                state.keep(entry.channel, record.0, record.1);
                loaded += 1;
            }
        }
        self.fanout.disconnect_all();
        self.read_to.send_replace(state.cursor);
        drop(state);
        tracing::info!(log = %self.log.describe(), loaded, control_actions = restored, "shared log mirrored");
        Ok(())
    }

    /// Applies entries read after the cursor: stored and delivered in order.
    fn apply(&self, entries: Vec<Entry>) -> Result<(), Resync> {
        let mut state = self.state();
        let mut newest = None;
        for entry in entries {
            if let Some(epoch) = &entry.epoch {
                match &state.epoch {
                    Some(ours) if ours != epoch => return Err(Resync::Epoch),
                    Some(_) => {}
                    // The log was empty when loaded: its first entry tells its epoch.
                    None => state.epoch = Some(epoch.clone()),
                }
            }
            let expected = state.cursor.get(entry.channel) + 1;
            if entry.offset < expected {
                continue; // Read already.
            }
            if entry.offset > expected {
                if entry.channel == Channel::Updates {
                    return Err(Resync::Gap {
                        expected,
                        found: entry.offset,
                    });
                }
                // Subscription events (and control actions) are bounded apart and may be
                // flooded: a node that missed some carries on rather than disconnecting
                // everyone.
                self.gaps.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    channel = entry.channel.name(),
                    expected,
                    found = entry.offset,
                    "entries of the shared log missed"
                );
            }
            state.cursor.set(entry.channel, entry.offset);
            if entry.channel == Channel::Control {
                // Applied in the log's order with the updates around it, never delivered.
                if let Some(action) = action_of(&entry) {
                    self.control.apply(&action);
                }
                continue;
            }
            if let Some((record, at)) = state.record(&entry) {
                state.keep(entry.channel, record.clone(), at);
                self.fanout.deliver(&record);
                newest = Some(at);
            }
        }
        self.read_to.send_replace(state.cursor);
        drop(state);
        if let Some(at) = newest {
            let age = SystemTime::now().duration_since(at).unwrap_or_default();
            self.lag_ms.store(
                u64::try_from(age.as_millis()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
        }
        Ok(())
    }

    /// Compares the log's head with what was read: lag, and whether the epoch changed (the
    /// first epoch seen is adopted).
    fn observe(&self, head: &Head) -> bool {
        let mut state = self.state();
        let behind = Channel::ALL
            .iter()
            .map(|&c| head.cursor.get(c).saturating_sub(state.cursor.get(c)))
            .sum();
        self.lag_entries.store(behind, Ordering::Relaxed);
        let went_back = Channel::ALL
            .iter()
            .any(|&c| head.cursor.get(c) < state.cursor.get(c));
        match (&state.epoch, &head.epoch) {
            (None, theirs) => {
                if !went_back {
                    state.epoch.clone_from(theirs);
                }
                went_back
            }
            (Some(ours), theirs) => theirs.as_ref() != Some(ours) || went_back,
        }
    }
}

/// The control action an entry of the control channel holds; `None` (and an error logged) for
/// one that cannot be read.
fn action_of(entry: &Entry) -> Option<Action> {
    serde_json::from_slice(&entry.data)
        .inspect_err(|error| {
            tracing::error!(
                entry.offset,
                %error,
                "unreadable control action in the shared log: skipped"
            );
        })
        .ok()
}

impl State {
    fn history_limit(&self) -> usize {
        self.history.limits().size
    }

    /// The record an entry holds, positioned next in this node's order; `None` (and an error
    /// logged) for an entry that cannot be read.
    fn record(&mut self, entry: &Entry) -> Option<(Arc<Record>, SystemTime)> {
        let stored: Stored = match serde_json::from_slice(&entry.data) {
            Ok(stored) => stored,
            Err(error) => {
                tracing::error!(
                    ?entry.channel,
                    entry.offset,
                    %error,
                    "unreadable entry in the shared log: skipped"
                );
                return None;
            }
        };
        let (update, at) = stored.into_update();
        match Record::new(self.next_seq, update) {
            Ok(record) => {
                self.next_seq += 1;
                Some((Arc::new(record), at))
            }
            Err(error) => {
                tracing::error!(entry.offset, %error, "entry in the shared log cannot be encoded: skipped");
                None
            }
        }
    }

    fn keep(&mut self, channel: Channel, record: Arc<Record>, at: SystemTime) {
        match channel {
            Channel::Updates => self.history.push_update(record, at),
            Channel::Events => self.history.push_event(record, at),
            Channel::Control => {}
        }
    }
}

/// Jittered exponential backoff.
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff { next: BACKOFF.0 }
    }

    fn reset(&mut self) {
        self.next = BACKOFF.0;
    }

    /// The wait before the next attempt: up to the current step, from half of it.
    fn wait(&mut self) -> Duration {
        let step = self.next;
        self.next = (self.next * 2).min(BACKOFF.1);
        step.mul_f64(rand::rng().random_range(0.5..=1.0))
    }
}

/// The reader task: load, then read until the hub closes, reloading after a gap or an epoch
/// change and retrying while the engine is unreachable.
pub(super) async fn run(mirror: Arc<Mirror>) {
    let mut backoff = Backoff::new();
    let mut down = false;
    let mut looked = tokio::time::Instant::now();
    'load: while !mirror.is_closed() {
        if let Err(error) = mirror.load().await {
            failed(&mirror, &mut down, "load", &error);
            tokio::time::sleep(backoff.wait()).await;
            continue;
        }
        recovered(&mirror, &mut down, &mut backoff);
        while !mirror.is_closed() {
            let after = mirror.state().cursor;
            match mirror.log.read(after, READ_WAIT).await {
                Ok(entries) if entries.is_empty() => match mirror.log.head().await {
                    Ok(head) => {
                        recovered(&mirror, &mut down, &mut backoff);
                        if mirror.observe(&head) {
                            continue 'load;
                        }
                    }
                    Err(error) => {
                        failed(&mirror, &mut down, "read", &error);
                        tokio::time::sleep(backoff.wait()).await;
                    }
                },
                Ok(entries) => {
                    recovered(&mirror, &mut down, &mut backoff);
                    let applied = mirror.apply(entries);
                    // Under steady load the reads never come back empty: look at the head
                    // now and then anyway, for the lag (and the epoch).
                    if applied.is_ok() && looked.elapsed() >= LOOK_EVERY {
                        looked = tokio::time::Instant::now();
                        if let Ok(head) = mirror.log.head().await
                            && mirror.observe(&head)
                        {
                            continue 'load;
                        }
                    }
                    match applied {
                        Ok(()) => {}
                        Err(Resync::Gap { expected, found }) => {
                            mirror.gaps.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(
                                expected,
                                found,
                                "this node lagged past the shared log's bound: history \
                                 reloaded, subscribers disconnected to resume"
                            );
                            continue 'load;
                        }
                        // Counted and said by the reload, which reads the new epoch.
                        Err(Resync::Epoch) => continue 'load,
                    }
                }
                Err(error) => {
                    failed(&mirror, &mut down, "read", &error);
                    tokio::time::sleep(backoff.wait()).await;
                    // Back: the epoch may have changed meanwhile.
                    if let Ok(head) = mirror.log.head().await
                        && mirror.observe(&head)
                    {
                        continue 'load;
                    }
                }
            }
        }
    }
}

/// Counts a failure and says so once per outage; the node is not ready until the log answers.
fn failed(mirror: &Mirror, down: &mut bool, what: &str, error: &dyn std::fmt::Display) {
    mirror.errors.fetch_add(1, Ordering::Relaxed);
    mirror.set_ready(false);
    if *down {
        tracing::debug!(%error, "the shared log is still unreachable");
    } else {
        tracing::warn!(
            log = %mirror.log.describe(),
            %error,
            "cannot {what} the shared log: retrying until it answers, not ready meanwhile"
        );
        *down = true;
    }
}

fn recovered(mirror: &Mirror, down: &mut bool, backoff: &mut Backoff) {
    if *down {
        tracing::info!(log = %mirror.log.describe(), "the shared log answers again");
        *down = false;
    }
    backoff.reset();
    mirror.set_ready(true);
}
