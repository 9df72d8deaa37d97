//! The revocations in force, kept in the data directory's store beside the history (a table of
//! their own, never in the history's), so that a restarted hub still refuses revoked tokens
//! until they expire. One row per revoked `jti` or subject; rows that ended are deleted as new
//! ones are written, and skipped when read.

use redb::{Database, ReadableTable, TableDefinition};

use super::storage;
use crate::control::{Revocation, now_secs};
use crate::transport::TransportError;

/// Revocations by key (`jti:<jti>` or `sub:<sub>`), as JSON.
const REVOCATIONS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("revocations");

fn key(revocation: &Revocation) -> Option<String> {
    match (&revocation.jti, &revocation.sub) {
        (Some(jti), _) => Some(format!("jti:{jti}")),
        (None, Some(sub)) => Some(format!("sub:{sub}")),
        (None, None) => None,
    }
}

/// The revocations still in force.
pub(super) fn load(db: &Database) -> Result<Vec<Revocation>, TransportError> {
    let read = db.begin_read().map_err(storage)?;
    let table = match read.open_table(REVOCATIONS) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(error) => return Err(storage(error)),
    };
    let now = now_secs();
    let mut found = Vec::new();
    for row in table.iter().map_err(storage)? {
        let (key, value) = row.map_err(storage)?;
        match serde_json::from_slice::<Revocation>(value.value()) {
            Ok(revocation) if revocation.until > now => found.push(revocation),
            Ok(_) => {}
            Err(error) => {
                tracing::error!(key = key.value(), %error, "unreadable revocation in the store: skipped");
            }
        }
    }
    Ok(found)
}

/// Commits `revocation` (merged with the one in force for the same key), and deletes the rows
/// that ended.
pub(super) fn save(db: &Database, revocation: &Revocation) -> Result<(), TransportError> {
    let Some(key) = key(revocation) else {
        return Ok(());
    };
    let now = now_secs();
    let write = db.begin_write().map_err(storage)?;
    {
        let mut table = write.open_table(REVOCATIONS).map_err(storage)?;
        let mut ended = Vec::new();
        for row in table.iter().map_err(storage)? {
            let (k, value) = row.map_err(storage)?;
            let over = serde_json::from_slice::<Revocation>(value.value())
                .map_or(true, |r| r.until <= now);
            if over {
                ended.push(k.value().to_owned());
            }
        }
        for k in ended {
            table.remove(k.as_str()).map_err(storage)?;
        }
        let existing = table
            .get(key.as_str())
            .map_err(storage)?
            .and_then(|v| serde_json::from_slice::<Revocation>(v.value()).ok());
        let merged = match existing {
            Some(existing) => existing.merged(revocation),
            None => revocation.clone(),
        };
        let bytes =
            serde_json::to_vec(&merged).map_err(|e| TransportError::Storage(e.to_string()))?;
        table
            .insert(key.as_str(), bytes.as_slice())
            .map_err(storage)?;
    }
    write.commit().map_err(storage)?;
    Ok(())
}
