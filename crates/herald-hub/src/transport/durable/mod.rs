//! Durable history: every update is committed to an embedded transactional store (redb) before
//! it is delivered and its publish answered, so a restart, even after `kill -9`, finds every
//! answered update, in order. The in-memory ring of [`LocalTransport`] mirrors the store and
//! serves resumes by ID from its index, without reading the disk.
//!
//! One writer thread commits: publishes that arrive together share one transaction (group
//! commit), so concurrent publishers do not each wait for their own `fsync`.

mod open;
mod revocations;

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::SystemTime;

use futures::future::BoxFuture;
use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};

pub use open::OnDamage;
use tokio::sync::oneshot;

use super::local::Known;
use super::stored::{Stored, millis};
use super::{HistoryLimits, LocalTransport, Since, Snapshot, Transport, TransportError};
use crate::control::{Action, ActionKind, Applied, Control};
use crate::fanout::Fanout;
use crate::update::{Record, Update};

/// Committed updates by their position in the hub's order.
const UPDATES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("updates");
/// The most publishes committed in one transaction.
const MAX_BATCH: usize = 1024;
/// The database file in the data directory.
pub const DATABASE_FILE: &str = "history.redb";

type Reply = oneshot::Sender<Result<Arc<Record>, TransportError>>;

/// The local transport with its history committed to `DIR/history.redb`.
#[derive(Debug)]
pub struct DurableTransport {
    local: Arc<LocalTransport>,
    /// Shared with the writer: revocations are committed beside the history.
    db: Arc<Database>,
    /// `None` only while dropping.
    jobs: Option<mpsc::Sender<(Update, Reply)>>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for DurableTransport {
    /// Stops the writer once it has committed what it was given, and closes the store.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl DurableTransport {
    /// Opens (or creates) the store in `dir`, loads its history (within `limits`) and starts
    /// the writer. A damaged store is refused, or moved aside, as `on_damage` says.
    pub fn open(
        dir: &Path,
        limits: HistoryLimits,
        on_damage: OnDamage,
        fanout: Arc<Fanout>,
    ) -> Result<DurableTransport, TransportError> {
        std::fs::create_dir_all(dir).map_err(|e| TransportError::Open {
            path: dir.to_owned(),
            reason: e.to_string(),
        })?;
        let loaded = open::open(&dir.join(DATABASE_FILE), limits.size, on_damage)?;
        let local = Arc::new(LocalTransport::with_limits(limits, fanout));
        for (update, at) in loaded.updates {
            local.restore(update, at)?;
        }
        tracing::info!(
            dir = %dir.display(),
            loaded = local.len(),
            "durable history opened"
        );
        let db = Arc::new(loaded.db);
        let (jobs, queue) = mpsc::channel();
        let writer = Writer {
            db: db.clone(),
            local: local.clone(),
            next_key: loaded.next_key,
            limits,
            stored_bytes: loaded.stored_bytes,
        };
        let writer = std::thread::Builder::new()
            .name("herald-history".to_owned())
            .spawn(move || writer.run(queue))
            .map_err(|e| TransportError::Storage(e.to_string()))?;
        Ok(DurableTransport {
            local,
            db,
            jobs: Some(jobs),
            writer: Some(writer),
        })
    }
}

impl DurableTransport {
    /// Puts the revocations still in force in the store back into `control`; answers how many.
    pub fn restore_revocations(&self, control: &Control) -> Result<usize, TransportError> {
        let found = revocations::load(&self.db)?;
        for revocation in &found {
            control.restore(&Action::new(ActionKind::Revoke(revocation.clone())));
        }
        Ok(found.len())
    }
}

fn storage(error: impl Into<redb::Error>) -> TransportError {
    TransportError::Storage(error.into().to_string())
}

struct Writer {
    db: Arc<Database>,
    local: Arc<LocalTransport>,
    next_key: u64,
    limits: HistoryLimits,
    /// The bytes of the stored values, bounded by `limits.bytes` like the ring's.
    stored_bytes: usize,
}

impl Writer {
    fn run(mut self, queue: mpsc::Receiver<(Update, Reply)>) {
        // Publishes that repeat an ID of their own batch wait for the next one, where the first
        // is in history and the ID rule answers them.
        let mut deferred: Vec<(Update, Reply)> = Vec::new();
        loop {
            let mut batch = std::mem::take(&mut deferred);
            if batch.is_empty() {
                match queue.recv() {
                    Ok(first) => batch.push(first),
                    Err(_) => return,
                }
            }
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let mut valid = Vec::with_capacity(batch.len());
            let mut ids = std::collections::HashSet::new();
            for (update, reply) in batch {
                if !self.local.is_ready() {
                    let _ = reply.send(Err(TransportError::Closed));
                } else if let Err(error) = update.encode() {
                    let _ = reply.send(Err(TransportError::Encode(error)));
                } else if ids.contains(&update.id) {
                    deferred.push((update, reply));
                } else {
                    match self.local.check_id(&update) {
                        Ok(Known::New) => {
                            ids.insert(update.id.clone());
                            valid.push((update, reply));
                        }
                        Ok(Known::Same(stored)) => {
                            let _ = reply.send(Ok(stored));
                        }
                        Err(error) => {
                            let _ = reply.send(Err(error));
                        }
                    }
                }
            }
            if valid.is_empty() {
                continue;
            }
            let now = SystemTime::now();
            match self.commit(&valid, now) {
                Ok(()) => {
                    for (update, reply) in valid {
                        let _ = reply.send(self.local.dispatch_at(update, now));
                    }
                }
                Err(error) => {
                    tracing::error!(%error, "cannot commit updates to the history store");
                    let reason = match error {
                        TransportError::Storage(reason) => reason,
                        other => other.to_string(),
                    };
                    for (_, reply) in valid {
                        let _ = reply.send(Err(TransportError::Storage(reason.clone())));
                    }
                }
            }
        }
    }

    /// Appends the batch and drops what the bounds exclude, in one durable transaction.
    fn commit(&mut self, batch: &[(Update, Reply)], now: SystemTime) -> Result<(), TransportError> {
        let write = self.db.begin_write().map_err(storage)?;
        let mut key = self.next_key;
        let mut stored_bytes = self.stored_bytes;
        {
            let mut table = write.open_table(UPDATES).map_err(storage)?;
            for (update, _) in batch {
                let bytes = serde_json::to_vec(&Stored::new(update, now))
                    .map_err(|e| TransportError::Storage(e.to_string()))?;
                table.insert(key, bytes.as_slice()).map_err(storage)?;
                stored_bytes += bytes.len();
                key += 1;
            }
            let capacity = u64::try_from(self.limits.size).unwrap_or(u64::MAX);
            let cutoff = (!self.limits.age.is_zero()).then(|| {
                millis(now)
                    .saturating_sub(u64::try_from(self.limits.age.as_millis()).unwrap_or(u64::MAX))
            });
            loop {
                let over = table.len().map_err(storage)? > capacity
                    || (self.limits.bytes != 0 && stored_bytes > self.limits.bytes);
                let (k, len, expired) = match table.first().map_err(storage)? {
                    Some((k, v)) => (
                        k.value(),
                        v.value().len(),
                        cutoff.is_some_and(|cutoff| {
                            serde_json::from_slice::<Stored>(v.value())
                                .map_or(true, |s| s.at < cutoff)
                        }),
                    ),
                    None => break,
                };
                if !over && !expired {
                    break;
                }
                table.remove(k).map_err(storage)?;
                stored_bytes -= len;
            }
        }
        write.commit().map_err(storage)?;
        self.next_key = key;
        self.stored_bytes = stored_bytes;
        Ok(())
    }
}

impl Transport for DurableTransport {
    fn dispatch(&self, update: Update) -> BoxFuture<'_, Result<Arc<Record>, TransportError>> {
        let (reply, answer) = oneshot::channel();
        let sent = self
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send((update, reply)).is_ok());
        Box::pin(async move {
            if !sent {
                return Err(TransportError::Closed);
            }
            answer.await.map_err(|_| TransportError::Closed)?
        })
    }

    fn announce(&self, update: Update) -> BoxFuture<'_, Result<(), TransportError>> {
        self.local.announce(update)
    }

    /// A revocation is committed to the store before it is applied, so that a restart keeps
    /// it in force.
    fn control<'a>(
        &'a self,
        action: Action,
        control: &'a Control,
    ) -> BoxFuture<'a, Result<Applied, TransportError>> {
        Box::pin(async move {
            if !self.local.is_ready() {
                return Err(TransportError::Closed);
            }
            if let ActionKind::Revoke(revocation) = &action.kind {
                let db = self.db.clone();
                let revocation = revocation.clone();
                tokio::task::spawn_blocking(move || revocations::save(&db, &revocation))
                    .await
                    .map_err(|e| TransportError::Storage(e.to_string()))??;
            }
            Ok(Applied {
                streams: control.apply(&action),
                applied_here: true,
                nodes: 1,
            })
        })
    }

    fn snapshot(&self, since: Since) -> BoxFuture<'_, Result<Snapshot, TransportError>> {
        self.local.snapshot(since)
    }

    fn last_event_id(&self) -> String {
        self.local.last_event_id()
    }

    fn history_len(&self) -> usize {
        self.local.len()
    }

    fn history_bytes(&self) -> usize {
        self.local.history_bytes()
    }

    fn is_ready(&self) -> bool {
        self.local.is_ready()
    }

    fn close(&self) {
        self.local.close();
    }
}
