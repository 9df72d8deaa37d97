//! Several hub nodes as one: every update goes into one log held by a shared engine (Redis
//! Streams: [`RedisLog`], or NATS JetStream: [`NatsLog`]), and every node mirrors that log into its own history and fan-out, in
//! the log's order. So every node delivers the same updates in the same order, and a
//! `Last-Event-ID` from any node resumes on any other.
//!
//! What an engine provides is small ([`SharedLog`]): append an entry and learn its offset, read
//! from an offset (blocking for what comes next), read the tail, and tell the newest offsets and
//! the log's epoch. Offsets are dense within a channel (1, 2, 3...), so a node that finds a hole
//! knows it lagged past the log's bound; the epoch changes when the engine lost its data (Redis
//! restarted empty, a lossy failover, a NATS stream created anew). Everything else is shared by every engine and lives here
//! and in `mirror`: the node's mirror of the log, the resume fence, gap and epoch handling,
//! readiness and the publish path.
//!
//! Three channels: updates, subscription events, and control actions, each with its own bound,
//! so that connecting and disconnecting subscribers, or a backend ending streams and revoking
//! tokens, never push updates out of the shared history. Control actions are applied by every
//! node's mirror as it reads them (never delivered, never kept in history), and the revocations
//! among them are applied again from the tail by a node that starts later.

mod mirror;
mod nats;
mod redis;
mod registry;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;

use self::mirror::Mirror;
pub use self::mirror::SharedStats;
pub use self::nats::{NatsLog, NatsOptions};
pub use self::redis::{RedisLog, RedisOptions};
use self::registry::Registry;
use super::stored::Stored;
use super::{HistoryLimits, Since, Snapshot, Transport, TransportError};
use crate::control::{Action, Applied, Control};
use crate::fanout::Fanout;
use crate::update::{Record, Update};

/// How long a shared log remembers an update's ID, so that a publish retried within it (after
/// a `503`, say) is answered as stored instead of being stored twice. Beyond it, the node's
/// history still answers for every ID it holds.
pub const DEDUPE_WINDOW: Duration = Duration::from_secs(120);

/// The fewest entries an engine keeps in the control channel: a node that starts reads the
/// revocations still in force from its tail, so it holds at least as many as the default bound
/// of the revocation list.
pub const CONTROL_LOG_LEN: usize = 10_000;

/// Which log of the engine an entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Published updates: the history resumes read.
    Updates,
    /// Subscription events, bounded apart.
    Events,
    /// Actions every node applies (never delivered to subscribers, never in history).
    Control,
}

impl Channel {
    /// Every channel, in the order of [`Cursor`]'s offsets.
    pub const ALL: [Channel; 3] = [Channel::Updates, Channel::Events, Channel::Control];

    fn index(self) -> usize {
        match self {
            Channel::Updates => 0,
            Channel::Events => 1,
            Channel::Control => 2,
        }
    }

    /// The channel's name, which engines use to name its log.
    pub fn name(self) -> &'static str {
        match self {
            Channel::Updates => "updates",
            Channel::Events => "events",
            Channel::Control => "control",
        }
    }
}

/// How far the logs go, or have been read: an offset per channel (zero: none yet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor([u64; 3]);

impl Cursor {
    /// The offset of `channel`.
    pub fn get(&self, channel: Channel) -> u64 {
        self.0[channel.index()]
    }

    /// Sets the offset of `channel`.
    pub fn set(&mut self, channel: Channel, offset: u64) {
        self.0[channel.index()] = offset;
    }

    /// Whether every channel is at or past `other`'s offset.
    pub fn reached(&self, other: &Cursor) -> bool {
        Channel::ALL.iter().all(|&c| self.get(c) >= other.get(c))
    }
}

/// One entry of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The log it is in.
    pub channel: Channel,
    /// Its offset there.
    pub offset: u64,
    /// What it holds (an update as JSON).
    pub data: Vec<u8>,
    /// The epoch of the log it was appended to (`None` if the engine does not record it): an
    /// entry of another epoch than the mirror's is never taken for what follows its cursor.
    pub epoch: Option<String>,
}

/// The state of the engine's logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Head {
    /// The logs' epoch: `None` before the first append.
    pub epoch: Option<String>,
    /// The newest offset of each channel.
    pub cursor: Cursor,
}

/// What an append did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// The entry is stored at this offset.
    Stored(u64),
    /// An entry with the same ID was appended recently, at this offset: nothing was stored.
    Duplicate(u64),
    /// The engine refuses an entry this large (why, for the publisher): nothing was stored.
    TooLarge(String),
}

/// Why an engine could not do what was asked (unreachable, too slow, out of memory...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LogError(pub String);

/// An engine's error, as a [`LogError`].
fn unavailable(error: impl std::fmt::Display) -> LogError {
    LogError(error.to_string())
}

/// A shared engine's logs, as the mirror needs them.
pub trait SharedLog: Send + Sync + 'static {
    /// Appends `data` to `channel` unless an entry with the same `id` was appended recently;
    /// answers only once the engine has accepted it.
    fn append<'a>(
        &'a self,
        channel: Channel,
        id: &'a str,
        data: Vec<u8>,
    ) -> BoxFuture<'a, Result<Appended, LogError>>;

    /// The epoch and the newest offsets.
    fn head(&self) -> BoxFuture<'_, Result<Head, LogError>>;

    /// The newest `count` entries of each channel at or before `upto`, each channel oldest
    /// first.
    fn tail(&self, upto: Cursor, count: usize) -> BoxFuture<'_, Result<Vec<Entry>, LogError>>;

    /// The entries after `after`, in order within each channel, waiting up to `wait` for one
    /// to come. Only the mirror's reader calls it: an engine may give it a connection of its
    /// own.
    fn read(&self, after: Cursor, wait: Duration) -> BoxFuture<'_, Result<Vec<Entry>, LogError>>;

    /// Where the logs are, for logs and errors (no credentials).
    fn describe(&self) -> String;

    /// Writes `node`'s entry in the cluster's roll call, alive for `ttl`, with its subscription
    /// documents (by ID); answers how many nodes are alive.
    fn publish_node<'a>(
        &'a self,
        node: &'a str,
        docs: Vec<(String, Vec<u8>)>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<u64, LogError>>;

    /// Removes `node`'s entry (a node leaving cleanly).
    fn forget_node<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), LogError>>;

    /// The subscription documents of every live node but `except`.
    fn node_documents<'a>(
        &'a self,
        except: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Vec<Vec<u8>>, LogError>>;
}

/// How a shared transport behaves.
#[derive(Debug, Clone)]
pub struct SharedOptions {
    /// This node's name in the cluster's roll call.
    pub node: String,
    /// Whether the node's subscriptions are listed for the subscriptions API.
    pub subscriptions: bool,
    /// What each node keeps in memory for resumes.
    pub limits: HistoryLimits,
    /// The longest wait for the engine on a publish before answering `503`.
    pub timeout: Duration,
    /// How long a resume with an ID this node has not read yet waits for its reader to catch
    /// up with the log, before the ID is answered as unknown.
    pub fence: Duration,
}

/// The transport of a node of a cluster: publishes go to the shared log, the node's mirror of
/// the log feeds its history and fan-out.
pub struct SharedTransport {
    mirror: Arc<Mirror>,
    registry: Arc<Registry>,
    options: SharedOptions,
}

impl Drop for SharedTransport {
    /// Stops the reader and the registry's heartbeat (which removes the node's entry).
    fn drop(&mut self) {
        self.mirror.close();
    }
}

impl std::fmt::Debug for SharedTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedTransport")
            .field("log", &self.mirror.log.describe())
            .finish_non_exhaustive()
    }
}

impl SharedTransport {
    /// Mirrors `log` into this node's history and `fanout`, from a reader task started on the
    /// current tokio runtime; the transport is ready once the log's tail is loaded.
    pub fn start(
        log: Arc<dyn SharedLog>,
        options: SharedOptions,
        fanout: Arc<Fanout>,
        control: Arc<Control>,
    ) -> Result<SharedTransport, TransportError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            TransportError::Unavailable("a shared transport needs a tokio runtime".to_owned())
        })?;
        let mirror = Arc::new(Mirror::new(log, options.limits, fanout, control));
        let registry = Arc::new(Registry::new(options.node.clone(), options.subscriptions));
        runtime.spawn(mirror::run(mirror.clone()));
        runtime.spawn(registry::run(registry.clone(), mirror.clone()));
        Ok(SharedTransport {
            mirror,
            registry,
            options,
        })
    }

    /// How the mirror is doing, for `/metrics`.
    pub fn stats(&self) -> SharedStats {
        SharedStats {
            nodes: self.registry.nodes(),
            ..self.mirror.stats()
        }
    }

    fn unavailable(&self, error: impl std::fmt::Display) -> TransportError {
        TransportError::Unavailable(format!("{}: {error}", self.mirror.log.describe()))
    }

    /// Appends an update to the shared log within the publish timeout.
    async fn append(&self, channel: Channel, update: &Update) -> Result<Appended, TransportError> {
        let data = serde_json::to_vec(&Stored::new(update, SystemTime::now()))
            .map_err(|e| TransportError::Storage(e.to_string()))?;
        self.append_data(channel, &update.id, data).await
    }

    /// Appends an entry to the shared log within the publish timeout.
    async fn append_data(
        &self,
        channel: Channel,
        id: &str,
        data: Vec<u8>,
    ) -> Result<Appended, TransportError> {
        let append = self.mirror.log.append(channel, id, data);
        match tokio::time::timeout(self.options.timeout, append).await {
            Ok(Ok(appended)) => Ok(appended),
            Ok(Err(error)) => Err(self.unavailable(error)),
            Err(_) => {
                Err(self.unavailable(format_args!("no answer within {:?}", self.options.timeout)))
            }
        }
    }

    async fn dispatch_shared(&self, update: Update) -> Result<Arc<Record>, TransportError> {
        if self.mirror.is_closed() {
            return Err(TransportError::Closed);
        }
        let record = Record::new(0, update.clone())?;
        if let Some(known) = self.mirror.known(&record) {
            return known;
        }
        match self.append(Channel::Updates, &update).await? {
            Appended::Stored(_) => Ok(Arc::new(record)),
            Appended::TooLarge(why) => Err(TransportError::TooLarge(why)),
            Appended::Duplicate(offset) => {
                // A retry, or another update reusing a recent ID: the first one decides, once
                // this node has read it.
                let mut target = Cursor::default();
                target.set(Channel::Updates, offset);
                let read = self.mirror.wait_for(target, self.options.fence).await;
                match self.mirror.known(&record) {
                    Some(answer) => answer,
                    // Not read here yet (this node's reader is catching up): neither the same
                    // update nor a conflict can be told, so the publisher retries.
                    None if !read => Err(self.unavailable(format_args!(
                        "an update with ID {:?} was stored at offset {offset}, which this node \
                         has not read yet",
                        update.id
                    ))),
                    None => Err(TransportError::DuplicateId(update.id)),
                }
            }
        }
    }

    /// Appends the action to the control channel, then waits (at most the fence) for this
    /// node's mirror to apply it, for its count.
    async fn control_shared(&self, action: Action) -> Result<Applied, TransportError> {
        if self.mirror.is_closed() {
            return Err(TransportError::Closed);
        }
        let data =
            serde_json::to_vec(&action).map_err(|e| TransportError::Storage(e.to_string()))?;
        let offset = match self.append_data(Channel::Control, &action.id, data).await? {
            Appended::Stored(offset) | Appended::Duplicate(offset) => offset,
            Appended::TooLarge(why) => return Err(TransportError::TooLarge(why)),
        };
        let mut target = Cursor::default();
        target.set(Channel::Control, offset);
        self.mirror.wait_for(target, self.options.fence).await;
        let streams = self.mirror.control.result(&action.id);
        Ok(Applied {
            streams: streams.unwrap_or(0),
            applied_here: streams.is_some(),
            nodes: self.registry.nodes().max(1),
        })
    }

    async fn snapshot_shared(&self, since: Since) -> Result<Snapshot, TransportError> {
        if self.mirror.is_closed() {
            return Err(TransportError::Closed);
        }
        if let Since::Id(id) = &since
            && !self.mirror.contains(id)
        {
            // The fence: the ID may have been published on another node an instant ago. Read
            // the log's newest offsets and give this node's reader the time to reach them.
            let head = self.mirror.log.head();
            if let Ok(Ok(head)) = tokio::time::timeout(self.options.fence, head).await {
                self.mirror.wait_for(head.cursor, self.options.fence).await;
            }
        }
        Ok(self.mirror.snapshot(&since))
    }
}

impl Transport for SharedTransport {
    fn dispatch(&self, update: Update) -> BoxFuture<'_, Result<Arc<Record>, TransportError>> {
        Box::pin(self.dispatch_shared(update))
    }

    fn announce(&self, update: Update) -> BoxFuture<'_, Result<(), TransportError>> {
        Box::pin(async move {
            if self.mirror.is_closed() {
                return Err(TransportError::Closed);
            }
            Record::new(0, update.clone())?;
            match self.append(Channel::Events, &update).await? {
                Appended::TooLarge(why) => Err(TransportError::TooLarge(why)),
                Appended::Stored(_) | Appended::Duplicate(_) => Ok(()),
            }
        })
    }

    fn control<'a>(
        &'a self,
        action: Action,
        _control: &'a Control,
    ) -> BoxFuture<'a, Result<Applied, TransportError>> {
        // Applied by the mirror, with the node's control, when it reads the action back.
        Box::pin(self.control_shared(action))
    }

    fn snapshot(&self, since: Since) -> BoxFuture<'_, Result<Snapshot, TransportError>> {
        Box::pin(self.snapshot_shared(since))
    }

    fn last_event_id(&self) -> String {
        self.mirror.last_event_id()
    }

    fn close(&self) {
        self.mirror.close();
    }

    fn history_len(&self) -> usize {
        self.mirror.history_len()
    }

    fn history_bytes(&self) -> usize {
        self.mirror.history_bytes()
    }

    fn is_ready(&self) -> bool {
        self.mirror.is_ready()
    }

    fn shared_stats(&self) -> Option<SharedStats> {
        Some(self.stats())
    }

    fn subscriptions_changed(&self) {
        self.registry.changed();
    }

    fn other_nodes_subscriptions(&self) -> BoxFuture<'_, Result<Vec<Vec<u8>>, TransportError>> {
        Box::pin(async move {
            let read = self
                .mirror
                .log
                .node_documents(&self.registry.node, registry::NODE_TTL);
            match tokio::time::timeout(self.options.timeout, read).await {
                Ok(Ok(docs)) => Ok(docs),
                Ok(Err(error)) => Err(self.unavailable(error)),
                Err(_) => Err(self.unavailable("no answer in time")),
            }
        })
    }
}
