//! The NATS JetStream engine: each channel is a stream (`<prefix>-updates`, `<prefix>-events`,
//! `<prefix>-control`, on the subjects `<prefix>.updates`...) whose sequence is the offset, and
//! the three streams' creation times make the epoch. JetStream does the rest of what the Redis
//! engine scripts: an append is acknowledged once the stream (its quorum, with replicas) has
//! stored it, the update's ID travels as `Nats-Msg-Id` so that a retried publish is answered as
//! a duplicate with the first one's sequence, and each stream keeps its newest entries
//! (`max_msgs`, discard old). Streams are created when missing, so a NATS that lost its data
//! comes back as a new epoch.
//!
//! Each node reads with one ordered consumer per stream from the sequence after the last one
//! it read (`reader`); the cluster's roll call is a key-value bucket (`nodes`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use async_nats::{HeaderMap, ServerAddr};
use bytes::Bytes;
use futures::StreamExt as _;
use futures::future::BoxFuture;
use tokio::sync::{Mutex, OnceCell};

use self::nodes::chunks;
use self::reader::Reader;
use super::{
    Appended, CONTROL_LOG_LEN, Channel, Cursor, Entry, Head, LogError, SharedLog, unavailable,
};

mod nodes;
mod reader;

/// The fewest entries a stream keeps, whatever the history size: the stream is also how
/// updates reach the other nodes, which need the time to read them.
const MIN_STREAM_LEN: usize = 1000;
/// The most entries one read returns, and one pull request asks for.
const READ_COUNT: usize = 1000;
/// How often an idle consumer says it is alive: two missed in a row and it is recreated.
const CONSUMER_HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a consumer lives on the server once its node stopped pulling (a node killed).
const CONSUMER_INACTIVE: Duration = Duration::from_secs(30);
/// How often the client checks that its server still answers.
const PING: Duration = Duration::from_secs(10);
/// How long a pull request lasts before the library renews it.
const PULL_EXPIRES: Duration = Duration::from_secs(10);
/// The wait before asking again for the sequence of a duplicate whose first copy is still
/// being stored by the stream's quorum.
const DUPLICATE_PENDING: Duration = Duration::from_millis(20);
/// The largest chunk of subscription documents written under one key when the server does not
/// say how large a message may be.
const DEFAULT_CHUNK: usize = 512 * 1024;

/// How a [`NatsLog`] is set up.
#[derive(Debug, Clone)]
pub struct NatsOptions {
    /// One or more servers, comma-separated: `nats://[user:pass@]host:port`, or `tls://` for
    /// TLS (a token as `nats://token@host:port`).
    pub url: String,
    /// Names the streams and the registry's bucket, so that several hubs can share one NATS
    /// (letters, digits, `-` and `_`).
    pub prefix: String,
    /// How many updates (and, apart, subscription events) the streams keep (at least 1,000).
    pub history_size: usize,
    /// The longest wait for a request before it fails.
    pub timeout: Duration,
    /// How long an update's ID is remembered (the streams' duplicate window).
    pub dedupe_window: Duration,
    /// How many servers keep each stream (1, or 3 or 5 in a NATS cluster).
    pub replicas: usize,
    /// A NATS credentials file (a user JWT and its NKey seed).
    pub credentials: Option<PathBuf>,
}

/// Credentials given in the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Auth {
    User(String, String),
    Token(String),
}

/// The shared log on NATS JetStream.
pub struct NatsLog {
    options: NatsOptions,
    servers: Vec<ServerAddr>,
    auth: Option<Auth>,
    credentials: Option<String>,
    context: OnceCell<jetstream::Context>,
    reader: Mutex<Reader>,
    /// The registry's bucket, once found or created (forgotten after a failure: the bucket may
    /// be gone with the server's data).
    registry: Mutex<Option<kv::Store>>,
    /// How many chunks each node's entry had when last written here.
    chunks: std::sync::Mutex<HashMap<String, usize>>,
    place: String,
}

impl std::fmt::Debug for NatsLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsLog")
            .field("place", &self.place)
            .finish_non_exhaustive()
    }
}

/// `url` without its credentials, for messages (also when it does not parse).
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => match (url.split_once("://"), url.rfind('@')) {
            (Some((scheme, _)), Some(at)) => format!("{scheme}://{}", &url[at + 1..]),
            _ => url.to_owned(),
        },
    }
}

/// The servers of a comma-separated list of URLs, and the credentials they carry (the same
/// on each that has any).
fn servers(list: &str) -> Result<(Vec<ServerAddr>, Option<Auth>), LogError> {
    let mut servers = Vec::new();
    let mut auth: Option<Auth> = None;
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let invalid = |why: &dyn std::fmt::Display| {
            LogError(format!("invalid NATS URL {:?}: {why}", redacted(part)))
        };
        let mut url = url::Url::parse(part).map_err(|e| invalid(&e))?;
        if !matches!(url.scheme(), "nats" | "tls") {
            return Err(invalid(&"expected nats://host:port or tls://host:port"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid(&"no host"));
        }
        let decode = |text: &str| {
            percent_encoding::percent_decode_str(text)
                .decode_utf8_lossy()
                .into_owned()
        };
        if !url.username().is_empty() {
            let found = match url.password() {
                Some(password) => Auth::User(decode(url.username()), decode(password)),
                None => Auth::Token(decode(url.username())),
            };
            if auth.as_ref().is_some_and(|a| *a != found) {
                return Err(invalid(&"the servers carry different credentials"));
            }
            auth = Some(found);
            let _ = url.set_username("");
            let _ = url.set_password(None);
        }
        servers.push(url.as_str().parse().map_err(|e| invalid(&e))?);
    }
    if servers.is_empty() {
        return Err(LogError("no NATS server in the transport URL".to_owned()));
    }
    Ok((servers, auth))
}

/// One name for the three streams' creation times.
fn epoch_of(created: &[i128; 3]) -> String {
    format!("{:x}.{:x}.{:x}", created[0], created[1], created[2])
}

fn created_of(info: &stream::Info) -> i128 {
    info.created.unix_timestamp_nanos()
}

/// The update ID as a header value: percent-encoded, so that any ID is one line of ASCII.
fn message_id(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl NatsLog {
    /// A log on the NATS servers of `options.url`; nothing is connected until first used.
    pub fn new(options: NatsOptions) -> Result<NatsLog, LogError> {
        if options.prefix.is_empty()
            || !options
                .prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(LogError(format!(
                "the transport prefix {:?} cannot name NATS streams: use letters, digits, - and _",
                options.prefix
            )));
        }
        if !(1..=5).contains(&options.replicas) {
            return Err(LogError(format!(
                "--nats-replicas {}: JetStream keeps a stream on 1 to 5 servers",
                options.replicas
            )));
        }
        let (servers, auth) = servers(&options.url)?;
        let credentials = match &options.credentials {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    LogError(format!(
                        "cannot read the NATS credentials {}: {e}",
                        path.display()
                    ))
                })?;
                async_nats::ConnectOptions::new()
                    .credentials(&text)
                    .map_err(|e| {
                        LogError(format!(
                            "invalid NATS credentials in {}: {e}",
                            path.display()
                        ))
                    })?;
                Some(text)
            }
            None => None,
        };
        let place = format!(
            "nats {} (streams {}-*)",
            servers
                .iter()
                .map(|s| format!("{}:{}", s.host(), s.port()))
                .collect::<Vec<_>>()
                .join(","),
            options.prefix
        );
        Ok(NatsLog {
            options,
            servers,
            auth,
            credentials,
            context: OnceCell::new(),
            reader: Mutex::new(Reader::default()),
            registry: Mutex::new(None),
            chunks: std::sync::Mutex::new(HashMap::new()),
            place,
        })
    }

    fn stream_name(&self, channel: Channel) -> String {
        format!("{}-{}", self.options.prefix, channel.name())
    }

    fn subject(&self, channel: Channel) -> String {
        format!("{}.{}", self.options.prefix, channel.name())
    }

    fn stream_config(&self, channel: Channel) -> stream::Config {
        let len = match channel {
            // Revocations in force are restored from the control log's tail: it keeps at
            // least what a starting node reads.
            Channel::Control => self.options.history_size.max(CONTROL_LOG_LEN),
            _ => self.options.history_size,
        }
        .max(MIN_STREAM_LEN);
        stream::Config {
            name: self.stream_name(channel),
            description: Some(format!("Herald's shared log: {}", channel.name())),
            subjects: vec![self.subject(channel)],
            max_messages: i64::try_from(len).unwrap_or(i64::MAX),
            discard: stream::DiscardPolicy::Old,
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            num_replicas: self.options.replicas,
            duplicate_window: self.options.dedupe_window,
            allow_direct: true,
            ..Default::default()
        }
    }

    /// The JetStream context; the client connects (and reconnects) in the background, so a
    /// request before it is connected fails after the timeout.
    async fn context(&self) -> Result<jetstream::Context, LogError> {
        self.context
            .get_or_try_init(|| async {
                let mut options = async_nats::ConnectOptions::new()
                    .name("herald")
                    .retry_on_initial_connect()
                    .max_reconnects(None)
                    // A server that stopped answering is left within about three pings.
                    .ping_interval(PING)
                    .connection_timeout(self.options.timeout)
                    .request_timeout(Some(self.options.timeout));
                options = match &self.auth {
                    Some(Auth::User(user, password)) => {
                        options.user_and_password(user.clone(), password.clone())
                    }
                    Some(Auth::Token(token)) => options.token(token.clone()),
                    None => options,
                };
                if let Some(text) = &self.credentials {
                    options = options.credentials(text).map_err(unavailable)?;
                }
                let client = options
                    .connect(self.servers.clone())
                    .await
                    .map_err(unavailable)?;
                Ok(jetstream::ContextBuilder::new()
                    .timeout(self.options.timeout)
                    .build(client))
            })
            .await
            .cloned()
    }

    /// The stream of `channel`, created if missing (with this node's settings: the first
    /// node to create it decides).
    async fn stream(
        &self,
        js: &jetstream::Context,
        channel: Channel,
    ) -> Result<stream::Info, LogError> {
        let config = self.stream_config(channel);
        let name = config.name.clone();
        match js.get_or_create_stream(config).await {
            Ok(stream) => Ok(stream.cached_info().clone()),
            // Created by another node meanwhile, with other settings.
            Err(error) => match js.get_stream(&name).await {
                Ok(stream) => Ok(stream.cached_info().clone()),
                Err(_) => Err(LogError(format!("stream {name}: {error}"))),
            },
        }
    }
}

impl SharedLog for NatsLog {
    fn append<'a>(
        &'a self,
        channel: Channel,
        id: &'a str,
        data: Vec<u8>,
    ) -> BoxFuture<'a, Result<Appended, LogError>> {
        Box::pin(async move {
            let js = self.context().await?;
            let mut headers = HeaderMap::new();
            headers.insert(
                async_nats::header::NATS_EXPECTED_STREAM,
                self.stream_name(channel).as_str(),
            );
            if channel == Channel::Updates {
                headers.insert(async_nats::header::NATS_MESSAGE_ID, message_id(id).as_str());
            }
            let payload = Bytes::from(data);
            let mut created = false;
            loop {
                let ack = match js
                    .publish_with_headers(self.subject(channel), headers.clone(), payload.clone())
                    .await
                {
                    Ok(ack) => ack.await,
                    Err(error) => Err(error),
                };
                match ack {
                    // Another copy is being stored by the stream's quorum: its sequence comes
                    // once it is.
                    Ok(ack) if ack.duplicate && ack.sequence == 0 => {
                        tokio::time::sleep(DUPLICATE_PENDING).await;
                    }
                    Ok(ack) if ack.duplicate => return Ok(Appended::Duplicate(ack.sequence)),
                    Ok(ack) => return Ok(Appended::Stored(ack.sequence)),
                    Err(error)
                        if !created
                            && error.kind()
                                == jetstream::context::PublishErrorKind::StreamNotFound =>
                    {
                        // No stream: NATS lost its data, or this is the first publish. A new
                        // stream is a new epoch, which every node's reader notices.
                        created = true;
                        self.stream(&js, channel).await?;
                    }
                    Err(error)
                        if error.kind()
                            == jetstream::context::PublishErrorKind::MaxPayloadExceeded =>
                    {
                        return Ok(Appended::TooLarge(format!(
                            "the update takes {} bytes stored, more than the largest message the \
                             hub's NATS server takes ({} bytes, its max_payload)",
                            payload.len(),
                            js.client().server_info().max_payload
                        )));
                    }
                    Err(error) => return Err(unavailable(error)),
                }
            }
        })
    }

    fn head(&self) -> BoxFuture<'_, Result<Head, LogError>> {
        Box::pin(async move {
            let js = self.context().await?;
            let infos = futures::future::try_join_all(
                Channel::ALL.map(|channel| self.stream(&js, channel)),
            )
            .await?;
            let mut cursor = Cursor::default();
            let mut created = [0; 3];
            for (channel, info) in Channel::ALL.into_iter().zip(&infos) {
                cursor.set(channel, info.state.last_sequence);
                created[channel.index()] = created_of(info);
            }
            Ok(Head {
                epoch: Some(epoch_of(&created)),
                cursor,
            })
        })
    }

    fn tail(&self, upto: Cursor, count: usize) -> BoxFuture<'_, Result<Vec<Entry>, LogError>> {
        Box::pin(async move {
            let js = self.context().await?;
            let mut created = [0; 3];
            let mut read = Vec::new();
            for channel in Channel::ALL {
                let top = upto.get(channel);
                if top == 0 || count == 0 {
                    created[channel.index()] = created_of(&self.stream(&js, channel).await?);
                    continue;
                }
                let after = top.saturating_sub(count as u64);
                let (consumer, info) = self.consume(&js, channel, after).await?;
                created[channel.index()] = created_of(&info);
                let name = consumer.cached_info().name.clone();
                if info.state.messages == 0 || info.state.first_sequence > top {
                    let _ = js
                        .delete_consumer_from_stream(&name, &info.config.name)
                        .await;
                    continue;
                }
                let mut messages = consumer
                    .stream()
                    .max_messages_per_batch(READ_COUNT.min(count))
                    .heartbeat(CONSUMER_HEARTBEAT)
                    .messages()
                    .await
                    .map_err(unavailable)?;
                loop {
                    let next = tokio::time::timeout(self.options.timeout, messages.next())
                        .await
                        .map_err(|_| {
                            LogError(format!(
                                "stream {}: the tail did not come within {:?}",
                                info.config.name, self.options.timeout
                            ))
                        })?;
                    let message = match next {
                        Some(Ok(message)) => message,
                        Some(Err(error)) => return Err(unavailable(error)),
                        None => break,
                    };
                    let sequence = message.info().map_err(unavailable)?.stream_sequence;
                    if sequence > top {
                        break;
                    }
                    read.push((channel, sequence, message.message.payload.to_vec()));
                    if sequence == top {
                        break;
                    }
                }
                drop(messages);
                let _ = js
                    .delete_consumer_from_stream(&name, &info.config.name)
                    .await;
            }
            let epoch = epoch_of(&created);
            Ok(read
                .into_iter()
                .map(|(channel, offset, data)| Entry {
                    channel,
                    offset,
                    data,
                    epoch: Some(epoch.clone()),
                })
                .collect())
        })
    }

    fn read(&self, after: Cursor, wait: Duration) -> BoxFuture<'_, Result<Vec<Entry>, LogError>> {
        Box::pin(async move { self.read_entries(after, wait).await })
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
            let js = self.context().await?;
            let limit = match js.client().server_info().max_payload {
                0 => DEFAULT_CHUNK,
                max => max / 2,
            };
            let written = chunks(&docs, limit);
            let store = self.registry(ttl).await?;
            let result = self.write_node(&store, node, written).await;
            self.registry_done(result).await
        })
    }

    fn forget_node<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), LogError>> {
        Box::pin(async move {
            let store = self.registry(super::registry::NODE_TTL).await?;
            let result = self.remove_node(&store, node).await;
            self.registry_done(result).await
        })
    }

    fn node_documents<'a>(
        &'a self,
        except: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Vec<Vec<u8>>, LogError>> {
        Box::pin(async move {
            let store = self.registry(ttl).await?;
            let result = self.read_nodes(&store, except).await;
            self.registry_done(result).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_take_credentials_out_of_the_urls() {
        let (list, auth) = servers("nats://u:p%40ss@a:4222, tls://u:p%40ss@b:4223").expect("ok");
        assert_eq!(list.len(), 2);
        assert_eq!(auth, Some(Auth::User("u".to_owned(), "p@ss".to_owned())));
        assert!(list.iter().all(|s| !s.has_user_pass()));
        assert!(list[1].tls_required());
        let (_, auth) = servers("nats://secret@a").expect("ok");
        assert_eq!(auth, Some(Auth::Token("secret".to_owned())));
    }

    #[test]
    fn servers_refuse_what_is_not_nats_without_echoing_a_password() {
        for bad in [
            "redis://a:6379",
            "nats://",
            "",
            "nats://u:a@x,nats://u:b@y",
            "nats://u:a@x:port",
        ] {
            let error = servers(bad).expect_err(bad).0;
            assert!(!error.contains(":a@") && !error.contains(":b@"), "{error}");
        }
    }
}
