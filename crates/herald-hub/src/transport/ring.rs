//! The history every transport keeps in memory: the last updates in the hub's order, bounded
//! by count, by bytes and by age, and indexed by ID so that a resume finds its starting point
//! without a scan; and beside them, in a log of their own, the subscription events.
//!
//! The ring is plain data behind its owner's lock. Reading it for a resume copies out the
//! shared records (a reference count each) and nothing else: filtering them against a
//! subscriber's selectors happens after the lock is released (see [`crate::replay`]), so a
//! resume never holds up a publish.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::Since;
use crate::update::Record;

/// The bounds of a history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLimits {
    /// The most updates kept (zero keeps none).
    pub size: usize,
    /// The most bytes kept, as [`Record::size`] counts them (zero: no byte bound).
    pub bytes: usize,
    /// Updates older than this are dropped (zero: no age bound).
    pub age: Duration,
}

/// Where a resume starts in a [`Snapshot`].
#[derive(Debug, Clone)]
pub enum Start {
    /// Every stored update (`earliest`).
    Earliest,
    /// After this stored update (or subscription event), the one with the requested ID.
    After(Arc<Record>),
    /// The requested ID is not in history (never published, or already dropped).
    NotFound,
}

/// The part of the history a resume needs, copied out of the ring.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Where the requested ID was found.
    pub start: Start,
    /// The stored updates and subscription events after the start, oldest first; all of them
    /// for [`Start::Earliest`] and [`Start::NotFound`].
    pub records: Vec<Arc<Record>>,
    /// The position of the newest update dispatched when the snapshot was taken: live updates
    /// at or before it were part of this read.
    pub up_to: u64,
}

/// Stored records and their index.
#[derive(Debug)]
pub(crate) struct Ring {
    limits: HistoryLimits,
    /// Stored updates with their commit time, in increasing positions (not always consecutive:
    /// a shared log may hold entries that are not kept).
    entries: VecDeque<(Arc<Record>, SystemTime)>,
    /// ID -> position of the earliest stored update with that ID.
    index: HashMap<Box<str>, u64>,
    /// The sum of the stored records' sizes.
    bytes: usize,
    /// The newest dispatched update, stored or not: its position and ID.
    last: Option<(u64, Box<str>)>,
}

impl Ring {
    pub(crate) fn new(limits: HistoryLimits) -> Ring {
        Ring {
            limits,
            entries: VecDeque::new(),
            index: HashMap::new(),
            bytes: 0,
            last: None,
        }
    }

    /// How many updates are stored.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The bytes the stored updates take, as [`Record::size`] counts them.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The position of the newest dispatched update (zero before the first).
    pub(crate) fn last_position(&self) -> u64 {
        self.last.as_ref().map_or(0, |(seq, _)| *seq)
    }

    /// The ID of the newest dispatched update.
    pub(crate) fn last_id(&self) -> Option<&str> {
        self.last.as_ref().map(|(_, id)| &**id)
    }

    /// The stored update with this ID (its earliest occurrence).
    pub(crate) fn get(&self, id: &str) -> Option<&Arc<Record>> {
        let seq = *self.index.get(id)?;
        let at = self
            .entries
            .binary_search_by_key(&seq, |(record, _)| record.seq)
            .ok()?;
        self.entries.get(at).map(|(record, _)| record)
    }

    /// Appends `record`, dispatched at `time`, after every stored one, then drops what the
    /// bounds exclude. A record larger than the byte bound is dispatched but not kept.
    pub(crate) fn push(&mut self, record: Arc<Record>, time: SystemTime) {
        self.last = Some((record.seq, record.id().into()));
        if self.limits.size == 0 {
            return;
        }
        self.index.entry(record.id().into()).or_insert(record.seq);
        self.bytes += record.size();
        self.entries.push_back((record, time));
        self.prune(SystemTime::now());
    }

    fn pop_front(&mut self) {
        if let Some((old, _)) = self.entries.pop_front() {
            self.bytes -= old.size();
            if self.index.get(old.id()) == Some(&old.seq) {
                self.index.remove(old.id());
            }
        }
    }

    /// Drops what exceeds the count and byte bounds, and what is older than the age bound.
    pub(crate) fn prune(&mut self, now: SystemTime) {
        while self.entries.len() > self.limits.size
            || (self.limits.bytes != 0 && self.bytes > self.limits.bytes)
        {
            self.pop_front();
        }
        if self.limits.age.is_zero() {
            return;
        }
        let cutoff = now
            .checked_sub(self.limits.age)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        while self.entries.front().is_some_and(|(_, at)| *at < cutoff) {
            self.pop_front();
        }
    }

    /// The stored records after position `seq`, oldest first.
    fn after(&self, seq: u64) -> impl Iterator<Item = &Arc<Record>> {
        let from = self.entries.partition_point(|(r, _)| r.seq <= seq);
        self.entries.range(from..).map(|(r, _)| r)
    }
}

/// A node's history: the updates, and the subscription events in a log of their own, so that
/// connecting and disconnecting subscribers never take the place of the updates that resumes
/// depend on. Both share one order of positions, so a resume from any ID replays both,
/// interleaved as they were dispatched.
#[derive(Debug)]
pub(crate) struct History {
    updates: Ring,
    events: Ring,
}

impl History {
    /// Updates within `limits`; subscription events within the same count and age, and a
    /// quarter of the bytes.
    pub(crate) fn new(limits: HistoryLimits) -> History {
        History {
            updates: Ring::new(limits),
            events: Ring::new(HistoryLimits {
                bytes: limits.bytes / 4,
                ..limits
            }),
        }
    }

    /// The bounds of the updates' ring.
    pub(crate) fn limits(&self) -> HistoryLimits {
        self.updates.limits
    }

    /// Forgets everything.
    pub(crate) fn clear(&mut self) {
        self.updates = Ring::new(self.updates.limits);
        self.events = Ring::new(self.events.limits);
    }

    /// How many updates are stored (subscription events aside).
    pub(crate) fn len(&self) -> usize {
        self.updates.len()
    }

    /// The bytes the stored updates take (subscription events aside).
    pub(crate) fn bytes(&self) -> usize {
        self.updates.bytes()
    }

    /// The stored update or subscription event with this ID.
    pub(crate) fn get(&self, id: &str) -> Option<&Arc<Record>> {
        self.updates.get(id).or_else(|| self.events.get(id))
    }

    /// The position of the newest update or event dispatched (zero before the first).
    pub(crate) fn last_position(&self) -> u64 {
        self.updates
            .last_position()
            .max(self.events.last_position())
    }

    /// The ID of the newest update or event dispatched.
    pub(crate) fn last_id(&self) -> Option<&str> {
        if self.events.last_position() > self.updates.last_position() {
            self.events.last_id()
        } else {
            self.updates.last_id()
        }
    }

    /// Appends an update.
    pub(crate) fn push_update(&mut self, record: Arc<Record>, time: SystemTime) {
        self.updates.push(record, time);
    }

    /// Appends a subscription event.
    pub(crate) fn push_event(&mut self, record: Arc<Record>, time: SystemTime) {
        self.events.push(record, time);
    }

    /// Copies out what a resume from `since` needs (after dropping what has expired).
    pub(crate) fn snapshot(&mut self, since: &Since) -> Snapshot {
        let now = SystemTime::now();
        self.updates.prune(now);
        self.events.prune(now);
        let up_to = self.last_position();
        let (start, from) = match since {
            Since::Earliest => (Start::Earliest, 0),
            Since::Id(id) => match self.get(id).cloned() {
                Some(found) => {
                    let seq = found.seq;
                    (Start::After(found), seq)
                }
                None => (Start::NotFound, 0),
            },
        };
        Snapshot {
            start,
            records: merged(self.updates.after(from), self.events.after(from)),
            up_to,
        }
    }
}

/// Two runs of records in increasing positions, as one.
fn merged<'a>(
    a: impl Iterator<Item = &'a Arc<Record>>,
    b: impl Iterator<Item = &'a Arc<Record>>,
) -> Vec<Arc<Record>> {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    let mut out = Vec::with_capacity(a.size_hint().0 + b.size_hint().0);
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.seq <= y.seq => a.next(),
            (Some(_), Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, _) => b.next(),
        };
        match next {
            Some(record) => out.push(record.clone()),
            None => return out,
        }
    }
}
