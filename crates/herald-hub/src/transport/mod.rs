//! Where updates go and come back from: storing them for resuming subscribers, and handing them
//! to this node's live subscribers ([`Fanout`](crate::fanout::Fanout)).
//!
//! A transport is given the node's fan-out when it is built and feeds it every dispatched update,
//! in order. Live subscription is registration with that fan-out; history is read from the
//! transport as a [`Snapshot`]. A subscriber registers first, then reads history, and skips
//! live updates at or before the snapshot's position, so the seam has no gap and no duplicate.
//!
//! Every transport keeps its history in the same in-memory rings, bounded by count, bytes and
//! age ([`HistoryLimits`]): one for updates, one for subscription events. An update ID is unique in history: a publish that reuses the ID of a
//! stored update is the same update retried (answered with it, neither stored nor delivered
//! again) or a conflict ([`TransportError::DuplicateId`]).

mod durable;
mod local;
mod ring;
pub mod shared;
mod stored;

use std::sync::Arc;

use futures::future::BoxFuture;

pub use durable::{DATABASE_FILE, DurableTransport, OnDamage};
pub use local::LocalTransport;
pub use ring::{HistoryLimits, Snapshot, Start};
pub use shared::{SharedOptions, SharedStats, SharedTransport};

use crate::control::{Action, Applied, Control};
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
    /// The store of the data directory cannot be opened (permissions, not a directory...).
    #[error("cannot open {}: {reason}", path.display())]
    Open {
        /// The store's file.
        path: std::path::PathBuf,
        /// What the system said.
        reason: String,
    },
    /// The store of the data directory is damaged (truncated, overwritten).
    #[error(
        "{} is damaged ({reason}): move it aside to start with an empty history, or restore it \
         from a backup (--move-aside-damaged-history moves it aside at start)",
        path.display()
    )]
    Damaged {
        /// The store's file.
        path: std::path::PathBuf,
        /// What was found wrong.
        reason: String,
    },
    /// The shared log cannot take the update now (unreachable, too slow, out of memory): it
    /// may or may not have been stored, and a retry with the same ID is safe.
    #[error("the shared log is unavailable: {0}")]
    Unavailable(String),
    /// The shared log refuses an update this large (a NATS server's `max_payload`): retrying
    /// will not help.
    #[error("{0}")]
    TooLarge(String),
    /// Another update with this ID is in history: IDs must be unique for resumes to be exact.
    #[error("an update with ID {0:?} is already in history")]
    DuplicateId(String),
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

/// The transport interface: the in-memory default, the durable one, and shared ones.
pub trait Transport: Send + Sync + 'static {
    /// Stores the update, hands it to the fan-out, and returns it as stored. An update whose
    /// ID is already in history is answered with the stored one when it is the same update
    /// (a retry), and refused with [`TransportError::DuplicateId`] otherwise.
    fn dispatch(&self, update: Update) -> BoxFuture<'_, Result<Arc<Record>, TransportError>>;

    /// Hands a subscription event to the fan-out and keeps it in a log of its own, beside the
    /// history but never in it: it never takes the place of an update that resumes depend
    /// on, and is never written to a durable store.
    fn announce(&self, update: Update) -> BoxFuture<'_, Result<(), TransportError>>;

    /// Applies a control action on every node of the hub, through `control` on this one, and
    /// answers what it did here. Actions never reach subscribers nor take room in the history.
    /// A node alone applies it at once; a store keeps revocations across restarts; a shared
    /// log carries it to every node, and keeps the revocations for nodes that start later.
    fn control<'a>(
        &'a self,
        action: Action,
        control: &'a Control,
    ) -> BoxFuture<'a, Result<Applied, TransportError>> {
        Box::pin(async move {
            Ok(Applied {
                streams: control.apply(&action),
                applied_here: true,
                nodes: 1,
            })
        })
    }

    /// Copies out the part of the history a resume from `since` needs.
    fn snapshot(&self, since: Since) -> BoxFuture<'_, Result<Snapshot, TransportError>>;

    /// The ID of the newest dispatched update, or `earliest`.
    fn last_event_id(&self) -> String;

    /// Refuses further dispatches.
    fn close(&self);

    /// How many updates are kept for resuming subscribers (what `/metrics` reports).
    fn history_len(&self) -> usize {
        0
    }

    /// How many bytes the kept updates take (what `/metrics` reports).
    fn history_bytes(&self) -> usize {
        0
    }

    /// Whether the transport accepts dispatches (what `/readyz` reports).
    fn is_ready(&self) -> bool {
        true
    }

    /// How a shared transport's mirror of the log is doing (`None` for a node alone).
    fn shared_stats(&self) -> Option<SharedStats> {
        None
    }

    /// This node's subscriptions changed (for a cluster's registry of them).
    fn subscriptions_changed(&self) {}

    /// The subscription documents (JSON) of the cluster's other nodes: none for a node alone.
    fn other_nodes_subscriptions(&self) -> BoxFuture<'_, Result<Vec<Vec<u8>>, TransportError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}
