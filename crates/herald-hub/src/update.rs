//! An update as a publisher sends it, and as it is stored: encoded once into shared bytes.

use std::time::Duration;

use bytes::Bytes;
use herald_codec::{Event, EventError};

/// One published update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// The update's ID, sent as the SSE `id`.
    pub id: String,
    /// The topics: the first is the canonical one, the others are alternates.
    pub topics: Vec<String>,
    /// The payload (sent as `data`; empty when absent).
    pub data: String,
    /// The SSE event type, if any.
    pub event_type: Option<String>,
    /// The reconnection time asked of clients, if any (zero is not sent).
    pub retry: Option<Duration>,
    /// Whether only authorised subscribers may receive it.
    pub private: bool,
}

impl Update {
    /// A public update with a generated ID.
    pub fn new(topics: Vec<String>, data: impl Into<String>) -> Update {
        Update {
            id: generate_id(),
            topics,
            data: data.into(),
            event_type: None,
            retry: None,
            private: false,
        }
    }

    /// The update as SSE bytes, fields in the order `event`, `retry`, `id`, `data`.
    pub fn encode(&self) -> Result<Bytes, EventError> {
        let mut event = Event::builder()
            .id(self.id.as_str())
            .data(self.data.as_str());
        if let Some(event_type) = &self.event_type {
            event = event.event(event_type.as_str());
        }
        if let Some(retry) = self.retry.filter(|r| !r.is_zero()) {
            event = event.retry(retry);
        }
        Ok(event.build()?.encode())
    }
}

/// A new update ID: `urn:uuid:` followed by a UUIDv7 (time-ordered).
pub fn generate_id() -> String {
    format!("urn:uuid:{}", uuid::Uuid::now_v7())
}

/// An update as the hub stores and delivers it: its place in the hub's order, what matching
/// needs (ID, topics, privacy) and its bytes, encoded once and shared by every delivery. The
/// payload lives only in the encoded bytes, so a stored update costs its wire size once.
#[derive(Debug)]
pub struct Record {
    pub(crate) seq: u64,
    id: Box<str>,
    topics: Box<[String]>,
    private: bool,
    bytes: Bytes,
}

/// What a record costs besides its strings and bytes (its allocation, its slot in the history
/// and its index entry), counted against the history's byte bound.
const RECORD_OVERHEAD: usize = 128;

impl Record {
    /// Encodes `update` once, at position `seq`, as an update kept in history.
    pub(crate) fn new(seq: u64, update: Update) -> Result<Record, EventError> {
        let bytes = update.encode()?;
        Ok(Record {
            seq,
            id: update.id.into_boxed_str(),
            topics: update.topics.into_boxed_slice(),
            private: update.private,
            bytes,
        })
    }

    /// The update's ID.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The update's topics: the canonical one first, then the alternates.
    pub fn topics(&self) -> &[String] {
        &self.topics
    }

    /// Whether only authorised subscribers may receive it.
    pub fn is_private(&self) -> bool {
        self.private
    }

    /// The encoded event.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// What the record costs in memory, as counted against the history's byte bound.
    pub fn size(&self) -> usize {
        RECORD_OVERHEAD
            + self.id.len()
            + self.bytes.len()
            + self.topics.iter().map(|t| t.len() + 24).sum::<usize>()
    }

    /// Whether `other` is the same update (same ID, topics, privacy and event), so that a
    /// publisher's retry can be recognised.
    pub fn same_update(&self, other: &Record) -> bool {
        self.id == other.id
            && self.topics == other.topics
            && self.private == other.private
            && self.bytes == other.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a4_15_field_order_and_retry_zero_omitted() {
        let mut update = Update::new(vec!["t".into()], "a\nb");
        update.id = "x".into();
        update.event_type = Some("test".into());
        update.retry = Some(Duration::from_millis(1));
        assert_eq!(
            &update.encode().expect("valid")[..],
            b"event: test\nretry: 1\nid: x\ndata: a\ndata: b\n\n"
        );
        update.retry = Some(Duration::ZERO);
        update.event_type = None;
        update.data = String::new();
        assert_eq!(&update.encode().expect("valid")[..], b"id: x\ndata: \n\n");
    }

    #[test]
    fn d27_generated_ids_are_urn_uuid_v7() {
        let id = generate_id();
        let uuid = id.strip_prefix("urn:uuid:").expect("prefix");
        let parsed = uuid::Uuid::parse_str(uuid).expect("uuid");
        assert_eq!(parsed.get_version_num(), 7);
    }
}
