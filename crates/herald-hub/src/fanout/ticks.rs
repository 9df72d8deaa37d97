//! The fan-out's two shared ticks, so that no subscriber needs a timer of its own:
//!
//! - the flush tick wakes, together, every reader whose queue received updates since the last
//!   tick (see [`super::Fanout::flush_interval`]);
//! - the heartbeat tick wakes every reader that has sent nothing for the heartbeat interval, and
//!   [`Heartbeats`] then sends the keep-alive comment. One task checking a timestamp per
//!   subscriber every quarter interval replaces a timer per connection, reset at every write.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use tokio::sync::Notify;
use tokio::time::{Instant, MissedTickBehavior};

use super::Fanout;
use super::queue::Slot;

/// The keep-alive comment.
const HEARTBEAT: &[u8] = b":\n";

/// The shared flush tick. While the readers keep up (each one woken last has taken its updates),
/// updates wake their readers at once: a hub that is not busy adds no delay. While some of them
/// lag, the tick first gives way to them (one round of the runtime): readers that were merely
/// queued behind the others write, and the tick carries on at once. Those still behind after
/// that mean the hub is busy: what arrives waits until `every` after the last wake and leaves
/// together, one write per reader, as the updates of a burst do. Counting from the last wake,
/// not from now, keeps the added delay under `every` even at a steady moderate rate. Ends with
/// the fan-out.
pub(super) async fn flush_ticks(fanout: Weak<Fanout>, tick: Arc<Notify>, every: Duration) {
    // The readers woken last; weak, so that a departed subscriber's queue is not kept.
    let mut woken: Vec<Weak<Slot>> = Vec::new();
    let mut woken_at = Instant::now();
    loop {
        tick.notified().await;
        // The latest woken are the likeliest to lag: look at them first.
        let lagging = || {
            woken
                .iter()
                .rev()
                .any(|slot| slot.upgrade().is_some_and(|slot| slot.lags()))
        };
        if lagging() {
            // Let the readers woken last write first; those still behind after that mean the
            // hub is busy: what arrives waits, at most `every` after the last wake.
            tokio::task::yield_now().await;
            if lagging() {
                tokio::time::sleep_until(woken_at + every).await;
            }
        }
        let Some(strong) = fanout.upgrade() else {
            return;
        };
        let due = strong.take_pending();
        drop(strong);
        if due.is_empty() {
            continue;
        }
        due.iter().for_each(|slot| slot.wake_for_tick());
        woken.clear();
        woken.extend(due.iter().map(Arc::downgrade));
        woken_at = Instant::now();
    }
}

/// The shared heartbeat tick: every quarter of `heartbeat`, wakes the readers that have sent
/// nothing for `heartbeat`. Ends with the fan-out.
pub(super) async fn heartbeat_ticks(fanout: Weak<Fanout>, heartbeat: Duration) {
    let mut ticks = tokio::time::interval((heartbeat / 4).max(Duration::from_millis(1)));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(fanout) = fanout.upgrade() else {
            return;
        };
        fanout.wake_silent();
    }
}

/// When a subscriber last sent something, shared by its stream and the heartbeat tick.
#[derive(Debug, Clone)]
pub struct Clock {
    slot: Arc<Slot>,
    epoch: Instant,
    heartbeat: Duration,
}

impl Clock {
    pub(super) fn new(slot: Arc<Slot>, epoch: Instant, heartbeat: Duration) -> Clock {
        let clock = Clock {
            slot,
            epoch,
            heartbeat,
        };
        clock.touch();
        clock
    }

    /// Notes that the subscriber was just sent something.
    fn touch(&self) {
        self.slot
            .touched
            .store(millis(self.epoch), Ordering::Relaxed);
    }

    /// Whether the subscriber has been sent nothing for the heartbeat interval.
    fn silent(&self) -> bool {
        !self.heartbeat.is_zero() && is_silent(&self.slot, self.epoch, self.heartbeat)
    }
}

/// Milliseconds since `epoch`, now.
fn millis(epoch: Instant) -> u64 {
    u64::try_from(Instant::now().saturating_duration_since(epoch).as_millis()).unwrap_or(u64::MAX)
}

/// Whether `slot`'s reader has sent nothing for `heartbeat`.
pub(super) fn is_silent(slot: &Slot, epoch: Instant, heartbeat: Duration) -> bool {
    let heartbeat = u64::try_from(heartbeat.as_millis()).unwrap_or(u64::MAX);
    millis(epoch).saturating_sub(slot.touched.load(Ordering::Relaxed)) >= heartbeat
}

pin_project_lite::pin_project! {
    /// Passes a subscriber's chunks on, and sends the comment `:\n` when it has been sent
    /// nothing for the heartbeat interval (woken by the fan-out's heartbeat tick, so between
    /// one and one and a quarter intervals of silence).
    #[derive(Debug)]
    pub struct Heartbeats<S> {
        #[pin]
        inner: S,
        clock: Clock,
    }
}

impl<S> Heartbeats<S> {
    /// Adds heartbeats to `inner`, a stream whose waker is the subscriber's queue's (so that
    /// the heartbeat tick wakes it).
    pub fn new(inner: S, clock: Clock) -> Heartbeats<S> {
        Heartbeats { inner, clock }
    }
}

impl<S: Stream<Item = Bytes>> Stream for Heartbeats<S> {
    type Item = Bytes;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let this = self.project();
        match this.inner.poll_next(cx) {
            Poll::Ready(Some(chunk)) => {
                this.clock.touch();
                Poll::Ready(Some(chunk))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending if this.clock.silent() => {
                this.clock.touch();
                Poll::Ready(Some(Bytes::from_static(HEARTBEAT)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
