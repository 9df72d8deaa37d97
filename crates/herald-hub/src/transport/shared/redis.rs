//! The Redis Streams engine: each channel is a stream whose entry IDs are the offsets
//! (`<offset>-0`), and a hash holds the epoch and each channel's counter. One Lua script appends
//! in one round trip: it sets the epoch if there is none, refuses an ID appended within the
//! dedupe window, takes the next offset and adds the entry with the epoch beside its data (so
//! that a reader whose cursor is past the first offsets of a new log never takes them for the
//! continuation of the old one), trimming the stream to its bound (`MAXLEN ~`). No Pub/Sub: a
//! blocking `XREAD` wakes the readers as fast, batches under load, and drops nothing.
//!
//! Keys share the hash tag `{<prefix>}`, so that a Redis Cluster keeps them in one slot:
//! `{herald}:meta`, `{herald}:updates`, `{herald}:events`, `{herald}:control`,
//! `{herald}:id:<update ID>`, and for
//! the cluster's roll call `{herald}:nodes` and `{herald}:subs:<node>`.
//!
//! Connections: publishes, heads and tails share one multiplexed connection (reconnected by
//! redis-rs's connection manager), with a response timeout; the reader's blocking `XREAD` has a
//! connection of its own, whose timeout is above the blocking wait, so it never stalls a
//! publish behind it.

use std::time::Duration;

use futures::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::streams::{StreamId, StreamRangeReply, StreamReadReply};
use redis::{AsyncConnectionConfig, Client, Script, Value};
use tokio::sync::{Mutex, OnceCell};

use super::{
    Appended, CONTROL_LOG_LEN, Channel, Cursor, Entry, Head, LogError, SharedLog, unavailable,
};

/// Appends an entry: see the module documentation.
///
/// KEYS: meta hash, stream, then (for updates) the ID's dedupe key.
/// ARGV: epoch if none yet, counter field, stream bound, entry, dedupe window in seconds.
const APPEND: &str = r"
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'epoch', epoch)
end
if KEYS[3] then
  local seen = redis.call('GET', KEYS[3])
  if seen then
    return {epoch, tonumber(seen), 1}
  end
end
local offset = redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
if offset == 1 then
  redis.call('DEL', KEYS[2])
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], offset .. '-0', 'd', ARGV[4], 'e', epoch)
if KEYS[3] then
  redis.call('SET', KEYS[3], offset, 'EX', ARGV[5])
end
return {epoch, offset, 0}
";

/// The fewest entries a stream keeps, whatever the history size: the stream is also how
/// updates reach the other nodes, which need the time to read them.
const MIN_STREAM_LEN: usize = 1000;
/// The most entries one read returns.
const READ_COUNT: usize = 1000;

/// How a [`RedisLog`] is set up.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// `redis://[user:pass@]host:port/db`, or `rediss://` for TLS.
    pub url: String,
    /// Names the keys, so that several hubs can share one Redis (default `herald`).
    pub prefix: String,
    /// How many updates (and, apart, subscription events) the streams keep (at least 1,000).
    pub history_size: usize,
    /// The longest wait for a command before it fails.
    pub timeout: Duration,
    /// How long an update's ID is remembered, so that a publish retried within it is not
    /// stored twice.
    pub dedupe_window: Duration,
}

/// The shared log on Redis Streams.
pub struct RedisLog {
    client: Client,
    options: RedisOptions,
    meta: String,
    /// The stream of each channel, in the order of [`Channel::ALL`].
    streams: Vec<String>,
    /// The roll call: node -> when it last said it was alive (ms).
    nodes: String,
    script: Script,
    commands: OnceCell<ConnectionManager>,
    reader: Mutex<Option<MultiplexedConnection>>,
    place: String,
}

impl std::fmt::Debug for RedisLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLog")
            .field("place", &self.place)
            .finish_non_exhaustive()
    }
}

impl RedisLog {
    /// A log on the Redis at `options.url`; nothing is connected until first used.
    pub fn new(options: RedisOptions) -> Result<RedisLog, LogError> {
        let client = Client::open(options.url.as_str())
            .map_err(|e| LogError(format!("invalid Redis URL: {e}")))?;
        let info = client.get_connection_info();
        let place = format!(
            "redis {}/{} (keys {{{}}}:*)",
            info.addr(),
            info.redis_settings().db(),
            options.prefix
        );
        let tag = format!("{{{}}}", options.prefix);
        Ok(RedisLog {
            meta: format!("{tag}:meta"),
            streams: Channel::ALL
                .iter()
                .map(|c| format!("{tag}:{}", c.name()))
                .collect(),
            nodes: format!("{tag}:nodes"),
            client,
            options,
            script: Script::new(APPEND),
            commands: OnceCell::new(),
            reader: Mutex::new(None),
            place,
        })
    }

    fn stream(&self, channel: Channel) -> &str {
        &self.streams[channel.index()]
    }

    /// The shared connection, connected on first use (and again after a failed attempt).
    async fn commands(&self) -> Result<ConnectionManager, LogError> {
        let timeout = self.options.timeout;
        let connection = self
            .commands
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(timeout);
                tokio::time::timeout(
                    timeout,
                    self.client.get_connection_manager_with_config(config),
                )
                .await
                .map_err(|_| LogError(format!("no connection within {timeout:?}")))?
                .map_err(unavailable)
            })
            .await?;
        Ok(connection.clone())
    }

    /// The hash of a node's subscription documents.
    fn node_key(&self, node: &str) -> String {
        format!("{{{}}}:subs:{node}", self.options.prefix)
    }

    fn stream_len(&self) -> usize {
        self.options.history_size.max(MIN_STREAM_LEN)
    }
}

/// Reads the offset out of an entry ID (`<offset>-0`).
fn offset_of(id: &str) -> Option<u64> {
    id.split_once('-').and_then(|(ms, _)| ms.parse().ok())
}

fn bytes_of(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes.clone()),
        Value::SimpleString(text) => Some(text.clone().into_bytes()),
        _ => None,
    }
}

fn entry(channel: Channel, id: &StreamId) -> Option<Entry> {
    let offset = offset_of(&id.id)?;
    let data = bytes_of(id.map.get("d")?)?;
    let epoch = id
        .map
        .get("e")
        .and_then(bytes_of)
        .and_then(|e| String::from_utf8(e).ok());
    Some(Entry {
        channel,
        offset,
        data,
        epoch,
    })
}

impl SharedLog for RedisLog {
    fn append<'a>(
        &'a self,
        channel: Channel,
        id: &'a str,
        data: Vec<u8>,
    ) -> BoxFuture<'a, Result<Appended, LogError>> {
        Box::pin(async move {
            let mut connection = self.commands().await?;
            let epoch = format!("{:016x}", rand::random::<u64>());
            let mut invocation = self.script.prepare_invoke();
            invocation.key(&self.meta).key(self.stream(channel));
            if channel == Channel::Updates {
                invocation.key(format!("{{{}}}:id:{id}", self.options.prefix));
            }
            invocation
                .arg(epoch)
                .arg(channel.name())
                .arg(match channel {
                    Channel::Control => self.stream_len().max(CONTROL_LOG_LEN),
                    _ => self.stream_len(),
                })
                .arg(data)
                .arg(self.options.dedupe_window.as_secs().max(1));
            let (_epoch, offset, duplicate): (String, u64, u8) = invocation
                .invoke_async(&mut connection)
                .await
                .map_err(unavailable)?;
            Ok(if duplicate == 1 {
                Appended::Duplicate(offset)
            } else {
                Appended::Stored(offset)
            })
        })
    }

    fn head(&self) -> BoxFuture<'_, Result<Head, LogError>> {
        Box::pin(async move {
            let mut connection = self.commands().await?;
            let mut fields = redis::cmd("HMGET");
            fields.arg(&self.meta).arg("epoch");
            for channel in Channel::ALL {
                fields.arg(channel.name());
            }
            let (epoch, offsets): (Option<String>, Vec<Option<u64>>) = {
                let mut values: Vec<Option<String>> = fields
                    .query_async(&mut connection)
                    .await
                    .map_err(unavailable)?;
                let epoch = values.first_mut().and_then(Option::take);
                let offsets = values
                    .iter()
                    .skip(1)
                    .map(|v| v.as_deref().and_then(|v| v.parse().ok()))
                    .collect();
                (epoch, offsets)
            };
            let mut cursor = Cursor::default();
            for (channel, offset) in Channel::ALL.into_iter().zip(offsets) {
                cursor.set(channel, offset.unwrap_or(0));
            }
            Ok(Head { epoch, cursor })
        })
    }

    fn tail(&self, upto: Cursor, count: usize) -> BoxFuture<'_, Result<Vec<Entry>, LogError>> {
        Box::pin(async move {
            let mut connection = self.commands().await?;
            let mut entries = Vec::new();
            for channel in Channel::ALL {
                let top = upto.get(channel);
                if top == 0 || count == 0 {
                    continue;
                }
                let reply: StreamRangeReply = redis::cmd("XREVRANGE")
                    .arg(self.stream(channel))
                    .arg(format!("{top}-0"))
                    .arg("-")
                    .arg("COUNT")
                    .arg(count)
                    .query_async(&mut connection)
                    .await
                    .map_err(unavailable)?;
                entries.extend(reply.ids.iter().rev().filter_map(|id| entry(channel, id)));
            }
            Ok(entries)
        })
    }

    fn read(&self, after: Cursor, wait: Duration) -> BoxFuture<'_, Result<Vec<Entry>, LogError>> {
        Box::pin(async move {
            let mut reader = self.reader.lock().await;
            if reader.is_none() {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(self.options.timeout))
                    .set_response_timeout(Some(wait + self.options.timeout));
                *reader = Some(
                    self.client
                        .get_multiplexed_async_connection_with_config(&config)
                        .await
                        .map_err(unavailable)?,
                );
            }
            let Some(connection) = reader.as_mut() else {
                return Ok(Vec::new());
            };
            let result: Result<Option<StreamReadReply>, _> = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(READ_COUNT)
                .arg("BLOCK")
                .arg(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX))
                .arg("STREAMS")
                .arg(&self.streams)
                .arg(
                    Channel::ALL
                        .iter()
                        .map(|&c| format!("{}-0", after.get(c)))
                        .collect::<Vec<_>>(),
                )
                .query_async(connection)
                .await;
            let reply = match result {
                Ok(reply) => reply,
                Err(error) => {
                    // A fresh connection next time.
                    *reader = None;
                    return Err(unavailable(error));
                }
            };
            let mut entries = Vec::new();
            for key in reply.map(|r| r.keys).unwrap_or_default() {
                let Some(channel) = Channel::ALL
                    .into_iter()
                    .find(|&c| self.stream(c) == key.key)
                else {
                    continue;
                };
                entries.extend(key.ids.iter().filter_map(|id| entry(channel, id)));
            }
            Ok(entries)
        })
    }

    fn describe(&self) -> String {
        self.place.clone()
    }

    fn publish_node<'a>(
        &'a self,
        node: &'a str,
        docs: Vec<(String, Vec<u8>)>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<u64, LogError>> {
        Box::pin(async move {
            let mut connection = self.commands().await?;
            let now = now_ms();
            let subs = self.node_key(node);
            let mut pipe = redis::pipe();
            pipe.atomic().del(&subs).ignore();
            if !docs.is_empty() {
                pipe.hset_multiple(&subs, &docs).ignore();
            }
            pipe.pexpire(&subs, i64::try_from(ttl_ms(ttl)).unwrap_or(i64::MAX))
                .ignore()
                .zadd(&self.nodes, node, now)
                .ignore()
                .zrembyscore(&self.nodes, "-inf", now.saturating_sub(ttl_ms(ttl)))
                .ignore()
                .zcard(&self.nodes);
            let (nodes,): (u64,) = pipe
                .query_async(&mut connection)
                .await
                .map_err(unavailable)?;
            Ok(nodes)
        })
    }

    fn forget_node<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), LogError>> {
        Box::pin(async move {
            let mut connection = self.commands().await?;
            redis::pipe()
                .atomic()
                .del(self.node_key(node))
                .zrem(&self.nodes, node)
                .query_async::<()>(&mut connection)
                .await
                .map_err(unavailable)
        })
    }

    fn node_documents<'a>(
        &'a self,
        except: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Vec<Vec<u8>>, LogError>> {
        Box::pin(async move {
            let mut connection = self.commands().await?;
            let since = now_ms().saturating_sub(ttl_ms(ttl));
            let nodes: Vec<String> = redis::cmd("ZRANGEBYSCORE")
                .arg(&self.nodes)
                .arg(since)
                .arg("+inf")
                .query_async(&mut connection)
                .await
                .map_err(unavailable)?;
            let mut pipe = redis::pipe();
            for node in nodes.iter().filter(|n| n.as_str() != except) {
                pipe.hvals(self.node_key(node));
            }
            let docs: Vec<Vec<Vec<u8>>> = pipe
                .query_async(&mut connection)
                .await
                .map_err(unavailable)?;
            Ok(docs.into_iter().flatten().collect())
        })
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)
}
