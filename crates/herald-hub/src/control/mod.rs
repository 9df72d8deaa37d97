//! The control API's actions, applied to this node: a backend ends live streams (its users'
//! permissions changed) and revokes tokens, so that their reconnections are refused until the
//! tokens expire.
//!
//! An [`Action`] is plain data: the transport carries it to every node of the hub (directly for
//! a node alone, through the shared log's control channel in a cluster, committed to the data
//! directory's store for revocations), and each node applies it with [`Control::apply`]. Actions
//! never reach subscribers and never take room in the replay history.
//!
//! - **disconnect** ends the streams a [`Selection`] picks (the token's `sub`, a subscriber or
//!   subscription ID, a topic selector). A stream ends cleanly once what was queued for it is
//!   written, so a browser reconnects by itself with `Last-Event-ID` and misses nothing, and its
//!   next connection is authorized with whatever credentials it holds then.
//! - **revoke** refuses a token ([`Revocation`]: by `jti`, or every token of a `sub` issued
//!   before a time) with `401` until the revocation's end (the token's `exp`), and ends the
//!   streams opened with it. The list is bounded ([`Control::new`]'s `limit`) and forgets each
//!   revocation once it ends.

mod revocations;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::counter::Counter;
use serde::{Deserialize, Serialize};

pub use self::revocations::Revocation;
use self::revocations::Revocations;
use crate::fanout::{Fanout, Identity, Subscriber};
use crate::subscriptions::{SUBSCRIPTIONS_PATH, subscription_topic};
use crate::topic::TopicSelector;

/// How many recent actions' results a node remembers, for the answer of the node that sent
/// them through a shared log.
const RESULTS_KEPT: usize = 256;

/// One control action, as it travels to every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// Names the action (`urn:uuid:...`), so that the node that sent it finds its result.
    pub id: String,
    /// What to do.
    pub kind: ActionKind,
}

/// What an [`Action`] does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    /// End the streams the selection picks.
    Disconnect(Selection),
    /// Refuse a token (or a subject's tokens) until the revocation ends, and end its streams.
    Revoke(Revocation),
}

impl Action {
    /// An action with a fresh ID.
    pub fn new(kind: ActionKind) -> Action {
        Action {
            id: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
            kind,
        }
    }

    /// `disconnect` or `revoke`.
    pub fn name(&self) -> &'static str {
        match self.kind {
            ActionKind::Disconnect(_) => "disconnect",
            ActionKind::Revoke(_) => "revoke",
        }
    }
}

/// Which streams a disconnect ends: those matching every criterion given (at least one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Selection {
    /// The `sub` claim of the stream's token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The subscriber's ID (`urn:uuid:...`), as the subscriptions API lists it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscriber: Option<String>,
    /// A subscription's ID (`/.well-known/mercure/subscriptions/{topic}/{subscriber}`, or the
    /// full URL): the stream holding it ends, with its other subscriptions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    /// A topic selector (exact topic, URI template or `*`): the streams with a subscription to
    /// this very selector, or to a topic it matches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

impl Selection {
    /// Whether no criterion is given (which would select every stream: refused).
    pub fn is_empty(&self) -> bool {
        self.sub.is_none()
            && self.subscriber.is_none()
            && self.subscription.is_none()
            && self.topic.is_none()
    }

    /// The longest criterion, in bytes (the API bounds it).
    pub fn longest(&self) -> usize {
        [&self.sub, &self.subscriber, &self.subscription, &self.topic]
            .iter()
            .filter_map(|c| c.as_ref().map(String::len))
            .max()
            .unwrap_or(0)
    }

    /// The test this selection makes of each stream, its topic selector compiled once.
    fn matcher(&self) -> impl Fn(&Subscriber) -> bool + '_ {
        let topic = self.topic.as_deref().map(TopicSelector::new);
        let subscription =
            self.subscription
                .as_deref()
                .map(|id| match id.find(SUBSCRIPTIONS_PATH) {
                    Some(at) => &id[at..],
                    None => id,
                });
        move |s: &Subscriber| {
            self.sub
                .as_ref()
                .is_none_or(|sub| s.identity.sub.as_ref() == Some(sub))
                && self.subscriber.as_ref().is_none_or(|id| &s.id == id)
                && subscription.is_none_or(|id| {
                    s.selectors
                        .iter()
                        .any(|sel| subscription_topic(sel.as_str(), &s.id) == id)
                })
                && topic.as_ref().is_none_or(|wanted| {
                    s.selectors
                        .iter()
                        .any(|sel| sel.as_str() == wanted.as_str() || wanted.matches(sel.as_str()))
                })
        }
    }
}

/// What an action did on the node that received it from the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// The streams it ended on this node.
    pub streams: usize,
    /// Whether this node applied it before answering (in a cluster, it may still be on its way
    /// when the wait for the shared log ends).
    pub applied_here: bool,
    /// The nodes it was dispatched to, this one included.
    pub nodes: u64,
}

/// Why an action was refused before it was dispatched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// The revocation list holds as many revocations in force as it may.
    #[error(
        "the revocation list is full ({limit} revocations in force, max-revocations): \
         revocations end with their tokens' exp; raise the bound or revoke by subject"
    )]
    Full {
        /// The bound.
        limit: usize,
    },
}

/// This node's side of the control API: the revocations in force and the streams to end.
pub struct Control {
    fanout: Arc<Fanout>,
    revocations: Mutex<Revocations>,
    results: Mutex<VecDeque<(String, usize)>>,
    /// Streams ended by control actions on this node.
    pub(crate) disconnected: Counter,
    /// Control actions applied on this node.
    pub(crate) applied: Counter,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("revocations", &self.revocation_count())
            .finish_non_exhaustive()
    }
}

/// Now, in whole seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Control {
    /// The control of a node whose streams are `fanout`'s, keeping at most `limit` revocations
    /// in force.
    pub fn new(fanout: Arc<Fanout>, limit: usize) -> Control {
        Control {
            fanout,
            revocations: Mutex::new(Revocations::new(limit)),
            results: Mutex::new(VecDeque::new()),
            disconnected: Counter::default(),
            applied: Counter::default(),
        }
    }

    fn revocations(&self) -> MutexGuard<'_, Revocations> {
        self.revocations.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many revocations are in force.
    pub fn revocation_count(&self) -> usize {
        self.revocations().len(now_secs())
    }

    /// Whether a token with this identity is revoked now.
    pub fn is_revoked(&self, identity: &Identity) -> bool {
        self.revocations().is_revoked(identity, now_secs())
    }

    /// Refuses an action that cannot be applied: a revocation the full list has no room for.
    pub fn check(&self, action: &Action) -> Result<(), ControlError> {
        match &action.kind {
            ActionKind::Revoke(revocation) => self.revocations().room_for(revocation, now_secs()),
            ActionKind::Disconnect(_) => Ok(()),
        }
    }

    /// Applies `action` on this node; answers how many streams it ended.
    pub fn apply(&self, action: &Action) -> usize {
        let streams = match &action.kind {
            ActionKind::Disconnect(selection) => {
                let matches = selection.matcher();
                self.fanout.disconnect_where(|s| matches(s))
            }
            ActionKind::Revoke(revocation) => {
                let now = now_secs();
                self.revocations().insert(revocation, now);
                self.fanout
                    .disconnect_where(|s| revocation.covers(&s.identity, now))
            }
        };
        self.applied.inc();
        self.disconnected.inc_by(streams as u64);
        tracing::info!(
            action = action.name(),
            id = %action.id,
            streams,
            "control action applied"
        );
        let mut results = self.results.lock().unwrap_or_else(|p| p.into_inner());
        if results.len() >= RESULTS_KEPT {
            results.pop_front();
        }
        results.push_back((action.id.clone(), streams));
        streams
    }

    /// Puts back a revocation found at start-up (a store, a shared log's tail): kept if still
    /// in force, no stream ended (there are none yet, or the reload ends them all).
    pub fn restore(&self, action: &Action) {
        if let ActionKind::Revoke(revocation) = &action.kind {
            self.revocations().insert(revocation, now_secs());
        }
    }

    /// How many streams the action with this ID ended here, if this node applied it recently.
    pub fn result(&self, id: &str) -> Option<usize> {
        self.results
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .rev()
            .find(|(known, _)| known == id)
            .map(|(_, streams)| *streams)
    }

    /// The revocations in force (for a store to keep).
    pub fn revocations_in_force(&self) -> Vec<Revocation> {
        self.revocations().in_force(now_secs())
    }
}

#[cfg(test)]
mod tests;
