//! An update as the engines keep it outside memory (the data directory's store, a shared log):
//! its fields and when it was committed, as JSON.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::update::Update;

/// An update as stored: the update and when it was committed.
#[derive(Serialize, Deserialize)]
pub(crate) struct Stored {
    /// Commit time, in milliseconds since the epoch.
    pub(crate) at: u64,
    id: String,
    topics: Vec<String>,
    data: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_ms: Option<u64>,
    #[serde(default)]
    private: bool,
}

pub(crate) fn millis(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Stored {
    pub(crate) fn new(update: &Update, at: SystemTime) -> Stored {
        Stored {
            at: millis(at),
            id: update.id.clone(),
            topics: update.topics.clone(),
            data: update.data.clone(),
            event_type: update.event_type.clone(),
            retry_ms: update
                .retry
                .map(|r| u64::try_from(r.as_millis()).unwrap_or(u64::MAX)),
            private: update.private,
        }
    }

    pub(crate) fn into_update(self) -> (Update, SystemTime) {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(self.at);
        let update = Update {
            id: self.id,
            topics: self.topics,
            data: self.data,
            event_type: self.event_type,
            retry: self.retry_ms.map(Duration::from_millis),
            private: self.private,
        };
        (update, at)
    }
}
