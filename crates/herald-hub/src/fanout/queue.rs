//! One subscriber's queue of updates: cheaper than a channel for a hub's fan-out, where one
//! publisher pushes into thousands of queues and each reader takes everything at once.
//!
//! - It allocates nothing until the first update (an idle subscriber holds an empty queue).
//! - The reader drains the whole queue under one lock, and the writer wakes the reader only
//!   when the queue goes from empty to non-empty, so a burst costs one wake-up and one write.
//! - The wake-up can be left to the fan-out's shared flush tick, which wakes every reader with
//!   waiting updates at once (see [`super::Fanout`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;

use crate::update::Record;

#[derive(Debug, Default)]
struct State {
    records: VecDeque<Arc<Record>>,
    /// No more updates will come (the subscriber was disconnected).
    closed: bool,
    /// The reader has been (or is about to be) woken for what is queued.
    scheduled: bool,
}

/// The side of a queue the fan-out pushes into.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    state: Mutex<State>,
    waker: AtomicWaker,
    /// When the reader last sent something, in milliseconds since the fan-out's epoch (see
    /// [`super::ticks`]).
    pub(super) touched: AtomicU64,
    /// The flush tick woke the reader and it has not taken its updates yet: the hub is behind.
    woken: AtomicBool,
}

/// What a push did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued; the reader was already scheduled for earlier updates.
    Queued,
    /// Queued into an empty queue: the reader must be woken.
    Wake,
    /// The queue held `limit` updates: the record was not queued and the queue is now closed.
    Full,
    /// The queue is closed.
    Closed,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `record` unless `limit` updates are already waiting.
    pub(crate) fn push(&self, record: &Arc<Record>, limit: usize) -> Pushed {
        let mut state = self.lock();
        if state.closed {
            return Pushed::Closed;
        }
        if state.records.len() >= limit {
            state.closed = true;
            drop(state);
            self.waker.wake();
            return Pushed::Full;
        }
        state.records.push_back(record.clone());
        if !state.scheduled {
            state.scheduled = true;
            return Pushed::Wake;
        }
        if state.records.len() * 2 >= limit {
            // Half full while its wake-up waits for the flush tick: wake the reader now, so
            // that the tick's batching never turns a fast reader into a slow consumer.
            drop(state);
            self.waker.wake();
        }
        Pushed::Queued
    }

    /// Wakes the reader.
    pub(crate) fn wake(&self) {
        self.waker.wake();
    }

    /// Wakes the reader for the flush tick, which then watches whether it keeps up (see
    /// [`lags`](Self::lags)).
    pub(super) fn wake_for_tick(&self) {
        self.woken.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Whether the reader was woken by the flush tick and has not taken its updates since.
    pub(super) fn lags(&self) -> bool {
        self.woken.load(Ordering::Acquire)
    }

    /// Closes the queue: the reader gets what is queued, then the end.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.waker.wake();
    }
}

/// The reading side of a subscriber's queue.
#[derive(Debug)]
pub struct Queue {
    slot: Arc<Slot>,
    /// Taken from the slot, not yet read.
    taken: VecDeque<Arc<Record>>,
}

impl Queue {
    /// The slot this queue reads.
    pub(super) fn slot(&self) -> &Arc<Slot> {
        &self.slot
    }

    pub(crate) fn new(slot: Arc<Slot>) -> Queue {
        Queue {
            slot,
            taken: VecDeque::new(),
        }
    }

    /// The next update, `Ready(None)` once the queue is closed and drained.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Arc<Record>>> {
        if let Some(record) = self.taken.pop_front() {
            return Poll::Ready(Some(record));
        }
        self.slot.waker.register(cx.waker());
        self.take()
    }

    /// The next update if one is queued, without waiting: `Ready(None)` once the queue is closed
    /// and drained, `Pending` when it is empty.
    #[cfg(test)]
    pub(crate) fn try_recv(&mut self) -> Poll<Option<Arc<Record>>> {
        if let Some(record) = self.taken.pop_front() {
            return Poll::Ready(Some(record));
        }
        self.take()
    }

    fn take(&mut self) -> Poll<Option<Arc<Record>>> {
        self.slot.woken.store(false, Ordering::Release);
        let mut state = self.slot.lock();
        if state.records.is_empty() {
            state.scheduled = false;
            return if state.closed {
                Poll::Ready(None)
            } else {
                Poll::Pending
            };
        }
        std::mem::swap(&mut state.records, &mut self.taken);
        state.scheduled = false;
        drop(state);
        if self.taken.capacity() > 64 && self.taken.len() < 16 {
            // After a burst, do not keep a large buffer for a quiet subscriber.
            self.taken.shrink_to(16);
        }
        Poll::Ready(self.taken.pop_front())
    }
}
