//! Opening the store of a data directory, and what happens when it is damaged.
//!
//! A damaged file (truncated by a full disk or an interrupted copy, or overwritten) must never
//! crash the hub at start, over and over under a supervisor: the store library asserts on some
//! such files instead of returning an error, so opening and loading run guarded, and any
//! failure of the file itself becomes [`TransportError::Damaged`], which names the file and
//! what to do. With [`OnDamage::MoveAside`] the damaged file is renamed beside itself (kept for
//! inspection) and the hub starts with an empty history.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use redb::{Database, ReadableTable, ReadableTableMetadata};

use super::{Stored, UPDATES};
use crate::transport::TransportError;
use crate::update::Update;

/// What to do when the store in the data directory is damaged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnDamage {
    /// Refuse to start, naming the file (the default: history is not silently lost).
    #[default]
    Fail,
    /// Rename the damaged file to `history.redb.damaged-<unix time>` and start empty.
    MoveAside,
}

/// What was read from the store at start-up.
pub(super) struct Loaded {
    pub(super) db: Database,
    /// The newest updates, at most `keep`, oldest first, with their commit times.
    pub(super) updates: Vec<(Update, SystemTime)>,
    /// The key the next update takes.
    pub(super) next_key: u64,
    /// The bytes of every stored value.
    pub(super) stored_bytes: usize,
}

/// Opens (or creates) the store at `path` and reads its newest `keep` updates.
pub(super) fn open(
    path: &Path,
    keep: usize,
    on_damage: OnDamage,
) -> Result<Loaded, TransportError> {
    match guarded(path, || load(path, keep)) {
        Err(TransportError::Damaged { path, reason }) if on_damage == OnDamage::MoveAside => {
            let seconds = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let mut aside = path.clone().into_os_string();
            aside.push(format!(".damaged-{seconds}"));
            let aside = PathBuf::from(aside);
            std::fs::rename(&path, &aside).map_err(|e| TransportError::Open {
                path: path.clone(),
                reason: format!("cannot move it aside to {}: {e}", aside.display()),
            })?;
            tracing::warn!(
                damaged = %aside.display(),
                %reason,
                "the history store was damaged: moved aside, starting with an empty history"
            );
            guarded(&path, || load(&path, keep))
        }
        other => other,
    }
}

/// Runs `f` so that a panic inside the store library becomes [`TransportError::Damaged`]
/// instead of ending the process (its message is not printed: the error says it).
fn guarded<T>(
    path: &Path,
    f: impl FnOnce() -> Result<T, TransportError>,
) -> Result<T, TransportError> {
    // One guarded open at a time, so that the silenced hook is always put back as found.
    static HOOK: Mutex<()> = Mutex::new(());
    let _one = HOOK.lock().unwrap_or_else(|p| p.into_inner());
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = catch_unwind(AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    result.unwrap_or_else(|panic| {
        let reason = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "the store library failed on it".to_owned());
        Err(TransportError::Damaged {
            path: path.to_owned(),
            reason,
        })
    })
}

fn load(path: &Path, keep: usize) -> Result<Loaded, TransportError> {
    let damaged = |reason: String| TransportError::Damaged {
        path: path.to_owned(),
        reason,
    };
    let db = match Database::create(path) {
        Ok(db) => db,
        Err(redb::DatabaseError::Storage(redb::StorageError::Io(error))) => {
            return Err(TransportError::Open {
                path: path.to_owned(),
                reason: error.to_string(),
            });
        }
        Err(error) => return Err(damaged(error.to_string())),
    };
    let mut loaded = Loaded {
        db,
        updates: Vec::new(),
        next_key: 1,
        stored_bytes: 0,
    };
    let read = loaded.db.begin_read().map_err(|e| damaged(e.to_string()))?;
    let table = match read.open_table(UPDATES) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(loaded),
        Err(error) => return Err(damaged(error.to_string())),
    };
    let rows = table.len().map_err(|e| damaged(e.to_string()))?;
    let skip = usize::try_from(rows)
        .unwrap_or(usize::MAX)
        .saturating_sub(keep);
    for (i, entry) in table
        .iter()
        .map_err(|e| damaged(e.to_string()))?
        .enumerate()
    {
        let (key, value) = entry.map_err(|e| damaged(e.to_string()))?;
        loaded.stored_bytes += value.value().len();
        loaded.next_key = key.value() + 1;
        if i >= skip {
            let stored: Stored = serde_json::from_slice(value.value())
                .map_err(|e| damaged(format!("update {} is unreadable: {e}", key.value())))?;
            loaded.updates.push(stored.into_update());
        }
    }
    drop(table);
    drop(read);
    Ok(loaded)
}
