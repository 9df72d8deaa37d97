//! The cluster's roll call and its active subscriptions: each node writes, under its own
//! entry in the engine, that it is alive and (with the subscriptions API on) the documents of
//! its subscriptions; the API then lists the subscriptions of every live node, and `/metrics`
//! counts the nodes.
//!
//! A node rewrites its entry shortly after its subscriptions change and at every heartbeat;
//! the engine forgets an entry that was not rewritten for [`NODE_TTL`], so a node killed
//! without a goodbye drops out of the list within that time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use super::mirror::Mirror;
use crate::fanout::Fanout;

/// How often a node says it is alive.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long a node's entry lives without being rewritten.
pub(super) const NODE_TTL: Duration = Duration::from_secs(15);
/// How long a change of subscriptions waits for the ones that follow it, to be written with
/// them.
const DEBOUNCE: Duration = Duration::from_millis(100);

/// A node's side of the roll call.
pub(super) struct Registry {
    pub(super) node: String,
    /// Whether the node's subscriptions are written (the subscriptions API is on).
    publish_subscriptions: bool,
    changed: Notify,
    nodes: AtomicU64,
}

impl Registry {
    pub(super) fn new(node: String, publish_subscriptions: bool) -> Registry {
        Registry {
            node,
            publish_subscriptions,
            changed: Notify::new(),
            nodes: AtomicU64::new(0),
        }
    }

    /// The node's subscriptions changed: rewrite its entry soon.
    pub(super) fn changed(&self) {
        if self.publish_subscriptions {
            self.changed.notify_one();
        }
    }

    /// How many nodes were alive at the last heartbeat.
    pub(super) fn nodes(&self) -> u64 {
        self.nodes.load(Ordering::Relaxed)
    }
}

/// The node's subscription documents, as JSON, keyed by their IDs.
fn documents(fanout: &Fanout) -> Vec<(String, Vec<u8>)> {
    crate::subscriptions::node_docs(fanout)
        .into_iter()
        .filter_map(|doc| Some((doc.id.clone(), serde_json::to_vec(&doc).ok()?)))
        .collect()
}

/// Keeps the node's entry written until the transport closes, then removes it.
pub(super) async fn run(registry: Arc<Registry>, mirror: Arc<Mirror>) {
    while !mirror.is_closed() {
        let docs = if registry.publish_subscriptions {
            documents(&mirror.fanout)
        } else {
            Vec::new()
        };
        match mirror
            .log
            .publish_node(&registry.node, docs, NODE_TTL)
            .await
        {
            Ok(nodes) => registry.nodes.store(nodes, Ordering::Relaxed),
            Err(error) => {
                tracing::debug!(%error, "cannot write this node's entry in the registry");
            }
        }
        tokio::select! {
            () = registry.changed.notified() => tokio::time::sleep(DEBOUNCE).await,
            () = tokio::time::sleep(HEARTBEAT) => {}
        }
    }
    if let Err(error) = mirror.log.forget_node(&registry.node).await {
        tracing::debug!(%error, "cannot remove this node's entry from the registry");
    }
}
