//! Where updates go and come back from: storing them for resuming subscribers, and handing them
//! to this node's live subscribers ([`Fanout`](crate::fanout::Fanout)).
//!
//! A transport is given the node's fan-out when it is built and feeds it every dispatched update,
//! in order. Live subscription is registration with that fan-out; history is read from the
//! transport. A subscriber registers first, then reads history, and skips live updates at or
//! before the history's position, so the seam has no gap and no duplicate.

mod durable;
mod local;

use std::sync::Arc;

use futures::future::BoxFuture;

pub use durable::{DATABASE_FILE, DurableTransport};
pub use local::LocalTransport;

use crate::update::{Record, Update};

/// Why a transport could not do its job.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The transport was closed (the hub is shutting down).
    #[error("the transport is closed")]
    Closed,
    /// The history store failed (disk full, unreadable file...).
    #[error("history store: {0}")]
    Storage(String),
    /// The update could not be encoded.
    #[error("the update cannot be encoded: {0}")]
    Encode(herald_codec::EventError),
}

// Shown in the message, so not chained as a source too (which would print it twice).
impl From<herald_codec::EventError> for TransportError {
    fn from(error: herald_codec::EventError) -> TransportError {
        TransportError::Encode(error)
    }
}

/// Where a replay starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Since {
    /// Every stored update.
    Earliest,
    /// The updates stored after the one with this ID.
    Id(String),
}

impl Since {
    /// `earliest` is the reserved name for "everything"; any other text is an ID.
    pub fn parse(text: &str) -> Since {
        if text == "earliest" {
            Since::Earliest
        } else {
            Since::Id(text.to_owned())
        }
    }
}

/// What a history read returns.
#[derive(Debug, Default)]
pub struct History {
    /// The stored updates to replay, oldest first, already filtered.
    pub records: Vec<Arc<Record>>,
    /// The position of the newest stored update when history was read: live updates at or
    /// before it were part of this read.
    pub up_to: u64,
    /// The `Last-Event-ID` response header: the requested ID when known, else the newest ID the
    /// filter accepts, else `earliest`.
    pub last_event_id: String,
}

/// A filter over stored updates (the subscriber's selectors and authorization).
pub type RecordFilter<'a> = &'a (dyn Fn(&Record) -> bool + Send + Sync);

/// The transport interface: the in-memory default, and later shared ones.
pub trait Transport: Send + Sync + 'static {
    /// Stores the update, hands it to the fan-out, and returns it as stored.
    fn dispatch(&self, update: Update) -> BoxFuture<'_, Result<Arc<Record>, TransportError>>;

    /// Reads the stored updates after `since` that `filter` accepts.
    fn history<'a>(
        &'a self,
        since: Since,
        filter: RecordFilter<'a>,
    ) -> BoxFuture<'a, Result<History, TransportError>>;

    /// The ID of the newest dispatched update, or `earliest`.
    fn last_event_id(&self) -> String;

    /// Refuses further dispatches.
    fn close(&self);

    /// How many updates are kept for resuming subscribers (what `/metrics` reports).
    fn history_len(&self) -> usize {
        0
    }

    /// Whether the transport accepts dispatches (what `/readyz` reports).
    fn is_ready(&self) -> bool {
        true
    }
}
