//! The cluster's roll call on NATS: a key-value bucket (`<prefix>-nodes`) whose entries live
//! [`NODE_TTL`](super::super::registry::NODE_TTL) unless rewritten. A node's subscription
//! documents go under its own keys (`<node in hex>.<chunk>`), in chunks that fit the server's
//! largest message; the bucket is looked up (or created) again after a failure, since it may be
//! gone with the server's data.

use std::collections::HashSet;
use std::time::Duration;

use async_nats::jetstream::{kv, stream};
use bytes::Bytes;
use futures::StreamExt as _;

use super::{NatsLog, unavailable};
use crate::transport::shared::LogError;

/// A node's name as a key: hex, since keys allow few characters.
fn node_key(node: &str) -> String {
    node.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Subscription documents in chunks of at most `limit` bytes (one at least, maybe empty): each
/// document as its length (4 bytes, big-endian) and its bytes.
pub(super) fn chunks(docs: &[(String, Vec<u8>)], limit: usize) -> Vec<Bytes> {
    let mut chunks = Vec::new();
    let mut chunk = Vec::new();
    for (_, doc) in docs {
        let Ok(len) = u32::try_from(doc.len()) else {
            continue;
        };
        if !chunk.is_empty() && chunk.len() + 4 + doc.len() > limit {
            chunks.push(Bytes::from(std::mem::take(&mut chunk)));
        }
        chunk.extend_from_slice(&len.to_be_bytes());
        chunk.extend_from_slice(doc);
    }
    chunks.push(Bytes::from(chunk));
    chunks
}

/// The documents of a chunk written by [`chunks`].
fn documents(mut chunk: &[u8]) -> Vec<Vec<u8>> {
    let mut docs = Vec::new();
    while let Some((len, rest)) = chunk.split_first_chunk::<4>() {
        let len = u32::from_be_bytes(*len) as usize;
        let Some((doc, rest)) = rest.split_at_checked(len) else {
            break;
        };
        docs.push(doc.to_vec());
        chunk = rest;
    }
    docs
}

impl NatsLog {
    /// The registry's bucket, created if missing.
    pub(super) async fn registry(&self, ttl: Duration) -> Result<kv::Store, LogError> {
        let mut slot = self.registry.lock().await;
        if let Some(store) = &*slot {
            return Ok(store.clone());
        }
        let js = self.context().await?;
        let bucket = format!("{}-nodes", self.options.prefix);
        let store = match js.get_key_value(&bucket).await {
            Ok(store) => store,
            Err(_) => {
                // The bucket's stream, as `create_key_value` would make it, without the account
                // query that call starts with: async-nats cannot read nats-server 2.9's answer
                // to it, which left every node out of the roll call there.
                js.get_or_create_stream(stream::Config {
                    name: format!("KV_{bucket}"),
                    description: Some("Herald's nodes and their subscriptions".to_owned()),
                    subjects: vec![format!("$KV.{bucket}.>")],
                    max_messages_per_subject: 1,
                    max_age: ttl,
                    storage: stream::StorageType::File,
                    allow_rollup: true,
                    deny_delete: true,
                    allow_direct: true,
                    discard: stream::DiscardPolicy::New,
                    num_replicas: self.options.replicas,
                    ..Default::default()
                })
                .await
                .map_err(|e| LogError(format!("bucket {bucket}: {e}")))?;
                js.get_key_value(&bucket)
                    .await
                    .map_err(|e| LogError(format!("bucket {bucket}: {e}")))?
            }
        };
        *slot = Some(store.clone());
        Ok(store)
    }

    /// Passes on what was done with the registry's bucket; after a failure, the bucket is
    /// looked up (or created) again next time.
    pub(super) async fn registry_done<T>(
        &self,
        result: Result<T, LogError>,
    ) -> Result<T, LogError> {
        if result.is_err() {
            *self.registry.lock().await = None;
        }
        result
    }

    /// Writes `node`'s chunks and removes those it no longer has; how many nodes are alive.
    pub(super) async fn write_node(
        &self,
        store: &kv::Store,
        node: &str,
        written: Vec<Bytes>,
    ) -> Result<u64, LogError> {
        let key = node_key(node);
        for (n, chunk) in written.iter().enumerate() {
            store
                .put(format!("{key}.{n}"), chunk.clone())
                .await
                .map_err(unavailable)?;
        }
        let before = self
            .chunks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node.to_owned(), written.len())
            .unwrap_or(0);
        for n in written.len()..before {
            store
                .purge(format!("{key}.{n}"))
                .await
                .map_err(unavailable)?;
        }
        let keys = registry_keys(store).await?;
        let nodes: HashSet<&str> = keys
            .iter()
            .filter_map(|k| k.split_once('.').map(|(node, _)| node))
            .collect();
        Ok(nodes.len() as u64)
    }

    /// Removes every key of `node`.
    pub(super) async fn remove_node(&self, store: &kv::Store, node: &str) -> Result<(), LogError> {
        let prefix = format!("{}.", node_key(node));
        for key in registry_keys(store).await? {
            if key.starts_with(&prefix) {
                store.purge(&key).await.map_err(unavailable)?;
            }
        }
        Ok(())
    }

    /// The documents of every node but `except`.
    pub(super) async fn read_nodes(
        &self,
        store: &kv::Store,
        except: &str,
    ) -> Result<Vec<Vec<u8>>, LogError> {
        let ours = format!("{}.", node_key(except));
        let mut docs = Vec::new();
        for key in registry_keys(store).await? {
            if key.starts_with(&ours) {
                continue;
            }
            if let Some(chunk) = store.get(&key).await.map_err(unavailable)? {
                docs.extend(documents(&chunk));
            }
        }
        Ok(docs)
    }
}

/// The live keys of the registry (`<node in hex>.<chunk>`).
async fn registry_keys(store: &kv::Store) -> Result<Vec<String>, LogError> {
    let mut keys = store.keys().await.map_err(unavailable)?;
    let mut found = Vec::new();
    while let Some(key) = keys.next().await {
        found.push(key.map_err(unavailable)?);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_documents_survive_their_chunks() {
        let docs: Vec<(String, Vec<u8>)> = (0..10)
            .map(|n| (format!("s{n}"), vec![b'x'; 100 + n]))
            .collect();
        let written = chunks(&docs, 300);
        assert!(written.len() > 3);
        let read: Vec<Vec<u8>> = written.iter().flat_map(|c| documents(c)).collect();
        assert_eq!(read, docs.into_iter().map(|d| d.1).collect::<Vec<_>>());
        assert_eq!(chunks(&[], 300).len(), 1);
    }
}
