//! `herald serve`'s settings in one place: the same keys as flags (`--history-size`),
//! `HERALD_*` variables (`HERALD_HISTORY_SIZE`) and a TOML file (`history-size = 100`). A flag
//! or variable wins over the file, the file over a Mercure deployment's variables
//! ([`super::mercure`]), those over development mode's choices, and those over the defaults.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context as _, bail};
use herald_hub::HubConfig;
use herald_hub::config::duration_text;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written `40s`, `500ms`, `10m`, `1h 30m` or as a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span(pub(crate) Duration);

impl FromStr for Span {
    type Err = String;
    fn from_str(text: &str) -> Result<Span, String> {
        duration_text::parse(text).map(Span)
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&duration_text::format(self.0))
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        duration_text::serialize(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
        duration_text::deserialize(d).map(Span)
    }
}

/// This machine's name and the port of the first address: what names a node by default.
fn default_node_id(addrs: &[SocketAddr]) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "herald".to_owned());
    match addrs.first().map(SocketAddr::port) {
        Some(port) if port != 0 => format!("{host}:{port}"),
        _ => format!("{host}-{}", std::process::id()),
    }
}

/// A list key in the file may be one value or an array.
fn one_or_many<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw<T> {
        One(T),
        Many(Vec<T>),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::One(one) => vec![one],
        Raw::Many(many) => many,
    })
}

/// Issuers in the file: a list of `ISS=KEY` (or one), or a table of issuer = key.
fn issuers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
        Table(std::collections::BTreeMap<String, String>),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::One(one) => vec![one],
        Raw::Many(many) => many,
        Raw::Table(table) => table
            .into_iter()
            .map(|(issuer, key)| format!("{issuer}={key}"))
            .collect(),
    })
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Every setting of `herald serve`; unset ones take the file's value, then the default.
#[derive(Debug, Default, Clone, clap::Args, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct Settings {
    /// Address to listen on, IPv4 or IPv6 (`[::1]:8080`); repeatable, or comma-separated
    /// [default: 127.0.0.1:8080].
    #[arg(long, env = "HERALD_ADDR", value_delimiter = ',')]
    #[serde(
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub(crate) addr: Vec<SocketAddr>,
    /// A separate listener (plain HTTP, e.g. 127.0.0.1:9090) for /metrics, /healthz and
    /// /readyz; with it they leave the public listeners unless --public-metrics.
    #[arg(long, env = "HERALD_METRICS_ADDR")]
    pub(crate) metrics_addr: Option<SocketAddr>,
    /// Serve /metrics, /healthz and /readyz on the public listeners too [default: true, false
    /// with --metrics-addr].
    #[arg(long, env = "HERALD_PUBLIC_METRICS", num_args = 0..=1, default_missing_value = "true")]
    pub(crate) public_metrics: Option<bool>,
    /// PEM certificate chain: serve HTTPS (ALPN h2 and http/1.1). Needs --tls-key.
    #[arg(long, env = "HERALD_TLS_CERT")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "HERALD_TLS_KEY")]
    pub(crate) tls_key: Option<PathBuf>,
    /// Which generations of Mercure to serve: 0.x (topic=, the mercure claim), 1 (draft-08:
    /// match=, at+jwt access tokens) or both, each request read by what it carries
    /// [default: both].
    #[arg(long, env = "HERALD_PROTOCOL")]
    pub(crate) protocol: Option<herald_hub::config::Protocol>,
    /// Mercure 1.0: a trusted issuer of access tokens and its key, ISS=KEY, where KEY is a
    /// secret, a PEM public key, an https:// JWK Set URL, or @path to a file holding the key;
    /// repeatable. In the file, a list of ISS=KEY or a table of issuer = key. Needs
    /// --audience.
    #[arg(long, env = "HERALD_ISSUER", hide_env_values = true)]
    #[serde(deserialize_with = "issuers", skip_serializing_if = "Vec::is_empty")]
    pub(crate) issuer: Vec<String>,
    /// Mercure 1.0: the hub's resource identifier, an absolute URL such as
    /// https://hub.example.com/.well-known/mercure, which access tokens must carry in `aud`
    /// (never derived from a request).
    #[arg(long, env = "HERALD_AUDIENCE")]
    pub(crate) audience: Option<String>,
    /// Mercure 1.0: the cookie an access token may come in [default:
    /// __Secure-mercure_access_token].
    #[arg(long, env = "HERALD_ACCESS_TOKEN_COOKIE")]
    pub(crate) access_token_cookie: Option<String>,
    /// Key verifying both publishers' and subscribers' tokens (a secret, or a PEM public key:
    /// `--jwt-key "$(cat key.pem)"`).
    #[arg(
        long,
        env = "HERALD_JWT_KEY",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub(crate) jwt_key: Option<String>,
    /// File holding --jwt-key (a mounted secret; one trailing line break is ignored).
    #[arg(long, env = "HERALD_JWT_KEY_FILE")]
    pub(crate) jwt_key_file: Option<PathBuf>,
    /// Algorithm of --jwt-key [default: HS256].
    #[arg(long, env = "HERALD_JWT_ALG")]
    pub(crate) jwt_alg: Option<String>,
    /// Key verifying publishers' tokens (overrides --jwt-key for publishers).
    #[arg(
        long,
        env = "HERALD_PUBLISHER_JWT_KEY",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub(crate) publisher_jwt_key: Option<String>,
    /// File holding --publisher-jwt-key.
    #[arg(long, env = "HERALD_PUBLISHER_JWT_KEY_FILE")]
    pub(crate) publisher_jwt_key_file: Option<PathBuf>,
    /// Algorithm of --publisher-jwt-key [default: --jwt-alg].
    #[arg(long, env = "HERALD_PUBLISHER_JWT_ALG")]
    pub(crate) publisher_jwt_alg: Option<String>,
    /// JWK Set URL (https://) whose keys verify publishers' tokens, instead of a key; each
    /// key's type or `alg` gives its algorithm (never HMAC).
    #[arg(long, env = "HERALD_PUBLISHER_JWKS_URL")]
    pub(crate) publisher_jwks_url: Option<String>,
    /// Key verifying subscribers' tokens (overrides --jwt-key for subscribers).
    #[arg(
        long,
        env = "HERALD_SUBSCRIBER_JWT_KEY",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub(crate) subscriber_jwt_key: Option<String>,
    /// File holding --subscriber-jwt-key.
    #[arg(long, env = "HERALD_SUBSCRIBER_JWT_KEY_FILE")]
    pub(crate) subscriber_jwt_key_file: Option<PathBuf>,
    /// Algorithm of --subscriber-jwt-key [default: --jwt-alg].
    #[arg(long, env = "HERALD_SUBSCRIBER_JWT_ALG")]
    pub(crate) subscriber_jwt_alg: Option<String>,
    /// JWK Set URL (https://) whose keys verify subscribers' tokens, instead of a key.
    #[arg(long, env = "HERALD_SUBSCRIBER_JWKS_URL")]
    pub(crate) subscriber_jwks_url: Option<String>,
    /// Shortest time between two fetches of a JWK Set: a token naming an unknown key ID
    /// fetches it again at most this often, and an older cached set is refreshed in the
    /// background [default: 60s].
    #[arg(long, env = "HERALD_JWKS_REFRESH")]
    pub(crate) jwks_refresh: Option<Span>,
    /// Let subscribers without a token receive public updates [default: false; true in
    /// development mode].
    #[arg(long, env = "HERALD_ANONYMOUS", num_args = 0..=1, default_missing_value = "true")]
    pub(crate) anonymous: Option<bool>,
    /// Publish subscription events and serve the subscriptions API [default: false; true in
    /// development mode].
    #[arg(long, env = "HERALD_SUBSCRIPTIONS", num_args = 0..=1, default_missing_value = "true")]
    pub(crate) subscriptions: Option<bool>,
    /// Send a `:` comment after this much silence (0 disables) [default: 40s].
    #[arg(long, env = "HERALD_HEARTBEAT")]
    pub(crate) heartbeat: Option<Span>,
    /// End each subscription stream after about this long; clients resume (0 disables)
    /// [default: 600s].
    #[arg(long, env = "HERALD_WRITE_TIMEOUT")]
    pub(crate) write_timeout: Option<Span>,
    /// Name of the cookie that may carry a token [default: mercureAuthorization].
    #[arg(long, env = "HERALD_COOKIE_NAME")]
    pub(crate) cookie_name: Option<String>,
    /// Origin allowed to publish with cookie authentication, against CSRF (repeatable, or
    /// comma-separated; `*` allows all).
    #[arg(long, env = "HERALD_PUBLISH_ORIGIN", value_delimiter = ',')]
    #[serde(
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub(crate) publish_origin: Vec<String>,
    /// Origin whose pages may use the hub cross-origin (CORS; repeatable, or comma-separated;
    /// one `*` as a pattern: `https://*.example.com`, `http://localhost:*`; `*` alone only
    /// with --cors-credentials=false) [default: none; loopback origins in development mode].
    #[arg(long, env = "HERALD_CORS_ORIGIN", value_delimiter = ',')]
    #[serde(
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub(crate) cors_origin: Vec<String>,
    /// Let cross-origin requests carry cookies [default: true].
    #[arg(long, env = "HERALD_CORS_CREDENTIALS", num_args = 0..=1, default_missing_value = "true")]
    pub(crate) cors_credentials: Option<bool>,
    /// How many past updates are kept for resuming subscribers [default: 10000].
    #[arg(long, env = "HERALD_HISTORY_SIZE")]
    pub(crate) history_size: Option<usize>,
    /// Keep the history in an embedded transactional store in this directory (a publish is
    /// answered once committed); without it, history is in memory only.
    #[arg(long, env = "HERALD_DATA_DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Run several nodes as one on a shared log: every node publishes to it and mirrors it, so
    /// that a subscriber resumes on any node: Redis Streams (redis://[user:pass@]host:port/db,
    /// or rediss:// with TLS) or NATS JetStream (nats://[user:pass@]host:port, several
    /// comma-separated, or tls:// with TLS). Cannot be used with --data-dir.
    #[arg(long, env = "HERALD_TRANSPORT", hide_env_values = true)]
    pub(crate) transport: Option<String>,
    /// Names the shared log's keys (Redis) or streams (NATS: letters, digits, - and _), so that
    /// several hubs can share one engine [default: herald].
    #[arg(long, env = "HERALD_TRANSPORT_PREFIX")]
    pub(crate) transport_prefix: Option<String>,
    /// Longest wait for the shared log on a publish before answering 503 with Retry-After
    /// [default: 2s].
    #[arg(long, env = "HERALD_TRANSPORT_TIMEOUT")]
    pub(crate) transport_timeout: Option<Span>,
    /// This node's name in logs, metrics and the subscriptions API [default: the host name and
    /// the port of the first --addr].
    #[arg(long, env = "HERALD_NODE_ID")]
    pub(crate) node_id: Option<String>,
    /// With a NATS transport: how many servers of the NATS cluster keep each stream, when this
    /// node creates them (3: the loss of one server loses no acknowledged update) [default: 1].
    #[arg(long, env = "HERALD_NATS_REPLICAS", value_parser = clap::value_parser!(u8).range(1..=5))]
    pub(crate) nats_replicas: Option<u8>,
    /// With a NATS transport: a credentials file (a user JWT and its NKey seed) to connect with.
    #[arg(long, env = "HERALD_NATS_CREDENTIALS")]
    pub(crate) nats_credentials: Option<PathBuf>,
    /// When the data directory's store is damaged, rename it beside itself
    /// (history.redb.damaged-<unix time>) and start with an empty history, instead of refusing
    /// to start [default: false].
    #[arg(long, env = "HERALD_MOVE_ASIDE_DAMAGED_HISTORY", num_args = 0..=1, default_missing_value = "true")]
    pub(crate) move_aside_damaged_history: Option<bool>,
    /// Drop history older than this (0: no age bound) [default: 0].
    #[arg(long, env = "HERALD_HISTORY_AGE")]
    pub(crate) history_age: Option<Span>,
    /// Most bytes the history may take (each update's encoded event, topics and ID); the
    /// oldest updates are dropped first (0: no byte bound) [default: 268435456, 256 MiB].
    #[arg(long, env = "HERALD_HISTORY_BYTES")]
    pub(crate) history_bytes: Option<usize>,
    /// How many updates may wait for one subscriber before it is disconnected as too slow
    /// [default: 1000].
    #[arg(long, env = "HERALD_SUBSCRIBER_QUEUE")]
    pub(crate) subscriber_queue: Option<usize>,
    /// Most topics in one subscription or update [default: 1000].
    #[arg(long, env = "HERALD_MAX_TOPICS")]
    pub(crate) max_topics: Option<usize>,
    /// Most matching work in one subscription, summed over its topic selectors: an exact
    /// topic counts 1, a URI template 1 per literal and expression; beyond it, 400
    /// [default: 1000].
    #[arg(long, env = "HERALD_MAX_SELECTOR_COST")]
    pub(crate) max_selector_cost: Option<usize>,
    /// Longest update ID in bytes (at most half of --max-header-size, so that a browser's
    /// Last-Event-ID header fits); beyond it, 400 [default: 1024].
    #[arg(long, env = "HERALD_MAX_ID_SIZE")]
    pub(crate) max_id_size: Option<usize>,
    /// Most open connections; beyond it, 503 with Retry-After (0: no bound) [default: 10000].
    #[arg(long, env = "HERALD_MAX_CONNECTIONS")]
    pub(crate) max_connections: Option<usize>,
    /// Most open connections from one client address (an IPv4 address or an IPv6 /64); beyond
    /// it, 429 with Retry-After (0: no bound; keep it off behind a proxy, whose address all
    /// clients share) [default: 0].
    #[arg(long, env = "HERALD_MAX_CONNECTIONS_PER_IP")]
    pub(crate) max_connections_per_ip: Option<usize>,
    /// Largest update (publish body) in bytes; beyond it, 413 [default: 1048576].
    #[arg(long, env = "HERALD_MAX_UPDATE_SIZE")]
    pub(crate) max_update_size: Option<usize>,
    /// How long a client may take to send a request body; beyond it, 408 and the connection
    /// is closed [default: 5s].
    #[arg(long, env = "HERALD_BODY_TIMEOUT")]
    pub(crate) body_timeout: Option<Span>,
    /// Longest request URL in bytes; beyond it, 414 [default: 65536].
    #[arg(long, env = "HERALD_MAX_URL_SIZE")]
    pub(crate) max_url_size: Option<usize>,
    /// Most bytes of request headers; beyond it, 431 [default: 32768].
    #[arg(long, env = "HERALD_MAX_HEADER_SIZE")]
    pub(crate) max_header_size: Option<usize>,
    /// Updates per second per publisher token, in bursts of as many; beyond it, 429 with
    /// Retry-After (0: no bound) [default: 0].
    #[arg(long, env = "HERALD_PUBLISH_RATE")]
    pub(crate) publish_rate: Option<u32>,
    /// Most token revocations in force at once (control API); a revocation ends with its
    /// tokens' exp, and a full list refuses new ones with 507 [default: 10000].
    #[arg(long, env = "HERALD_MAX_REVOCATIONS")]
    pub(crate) max_revocations: Option<usize>,
    /// How long a revocation that does not give its tokens' exp is kept [default: 24h].
    #[arg(long, env = "HERALD_REVOCATION_TTL")]
    pub(crate) revocation_ttl: Option<Span>,
    /// Close a connection whose client has not taken any byte for this long (0: never)
    /// [default: 30s].
    #[arg(long, env = "HERALD_SEND_TIMEOUT")]
    pub(crate) send_timeout: Option<Span>,
    /// Under load, hold updates up to this long so that those arriving close together leave
    /// in one write; while the hub keeps up, each update is written at once (0: every update
    /// at once) [default: 1ms].
    #[arg(long, env = "HERALD_FLUSH_INTERVAL")]
    pub(crate) flush_interval: Option<Span>,
    /// How long a shutdown waits for connections to close [default: 10s].
    #[arg(long, env = "HERALD_GRACE_PERIOD")]
    pub(crate) grace_period: Option<Span>,
    /// Serve the debug page at `/` (subscribe, publish, watch events) [default: false; true in
    /// development mode].
    #[arg(long, env = "HERALD_UI", num_args = 0..=1, default_missing_value = "true")]
    pub(crate) ui: Option<bool>,
    /// Log line format; the filter comes from RUST_LOG (or HERALD_LOG) [default: pretty].
    #[arg(long, env = "HERALD_LOG_FORMAT", value_enum)]
    pub(crate) log_format: Option<LogFormat>,
}

macro_rules! merge {
    ($flags:ident, $file:ident; options: $($option:ident),*; lists: $($list:ident),*) => {
        Settings {
            $($option: $flags.$option.or($file.$option),)*
            $($list: if $flags.$list.is_empty() { $file.$list } else { $flags.$list },)*
        }
    };
}

const MASK: &str = "********";

impl Settings {
    /// Reads a TOML file of settings; an unknown key is an error that suggests the closest.
    pub(crate) fn from_file(path: &Path) -> anyhow::Result<Settings> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration {}", path.display()))?;
        let table: toml::Table = text
            .parse()
            .with_context(|| format!("in {}", path.display()))?;
        let known = Settings::keys();
        for key in table.keys() {
            if !known.iter().any(|k| k == key) {
                bail!("{}", unknown_key(path, &text, key, &known));
            }
        }
        toml::from_str(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Every key a configuration file may hold: the long names of the flags.
    pub(crate) fn keys() -> Vec<String> {
        let command = <Settings as clap::Args>::augment_args(clap::Command::new("serve"));
        command
            .get_arguments()
            .filter_map(|arg| arg.get_long().map(str::to_owned))
            .collect()
    }

    /// These settings, with `file`'s values where these are unset.
    pub(crate) fn or(self, file: Settings) -> Settings {
        let flags = self;
        merge!(flags, file;
            options: protocol, audience, access_token_cookie, metrics_addr, public_metrics, tls_cert, tls_key, jwt_key, jwt_key_file,
                jwt_alg, publisher_jwt_key, publisher_jwt_key_file, publisher_jwt_alg,
                publisher_jwks_url, subscriber_jwt_key, subscriber_jwt_key_file,
                subscriber_jwt_alg, subscriber_jwks_url, jwks_refresh, anonymous, subscriptions,
                heartbeat, write_timeout, cookie_name, data_dir, history_age, cors_credentials,
                history_size, subscriber_queue, history_bytes, max_selector_cost, max_id_size,
                body_timeout, move_aside_damaged_history, transport, transport_prefix,
                transport_timeout, node_id, nats_replicas, nats_credentials, max_topics,
                max_connections, max_connections_per_ip, max_update_size, max_url_size,
                max_header_size, publish_rate, max_revocations, revocation_ttl, send_timeout,
                flush_interval,
                grace_period, log_format, ui;
            lists: addr, publish_origin, cors_origin, issuer)
    }

    /// Whether any key material is configured (even an empty one, which is then refused):
    /// without any, the hub runs in development mode.
    pub(crate) fn has_keys(&self) -> bool {
        self.jwt_key.is_some()
            || self.jwt_key_file.is_some()
            || self.publisher_jwt_key.is_some()
            || self.publisher_jwt_key_file.is_some()
            || self.publisher_jwks_url.is_some()
            || self.subscriber_jwt_key.is_some()
            || self.subscriber_jwt_key_file.is_some()
            || self.subscriber_jwks_url.is_some()
            || !self.issuer.is_empty()
    }

    /// What development mode turns on where nothing says otherwise: anonymous subscribers,
    /// the subscriptions API, the debug page, and pages on loopback origins (CORS).
    pub(crate) fn development() -> Settings {
        Settings {
            anonymous: Some(true),
            subscriptions: Some(true),
            ui: Some(true),
            cors_origin: herald_hub::dev::LOOPBACK_ORIGINS
                .iter()
                .map(|&origin| origin.to_owned())
                .collect(),
            ..Settings::default()
        }
    }

    /// Every unset setting filled with its default (keys stay unset when they have none).
    pub(crate) fn with_defaults(self) -> Settings {
        let hub = HubConfig::default();
        let defaults = Settings {
            addr: vec![SocketAddr::from(([127, 0, 0, 1], 8080))],
            public_metrics: Some(self.metrics_addr.is_none()),
            protocol: Some(hub.protocol),
            access_token_cookie: Some(hub.access_token_cookie.clone()),
            jwt_alg: Some("HS256".to_owned()),
            jwks_refresh: Some(Span(hub.jwks_refresh)),
            anonymous: Some(hub.anonymous),
            subscriptions: Some(hub.subscriptions),
            heartbeat: Some(Span(hub.heartbeat)),
            write_timeout: Some(Span(hub.write_timeout)),
            cookie_name: Some(hub.cookie_name),
            cors_credentials: Some(hub.cors_credentials),
            history_size: Some(hub.history_size),
            subscriber_queue: Some(hub.subscriber_queue),
            history_age: Some(Span(hub.history_age)),
            history_bytes: Some(hub.history_bytes),
            move_aside_damaged_history: Some(hub.move_aside_damaged_history),
            transport_prefix: Some(hub.transport_prefix),
            transport_timeout: Some(Span(hub.transport_timeout)),
            nats_replicas: u8::try_from(hub.nats_replicas).ok(),
            max_topics: Some(hub.max_topics),
            max_selector_cost: Some(hub.max_selector_cost),
            max_id_size: Some(hub.max_id_size),
            body_timeout: Some(Span(hub.body_timeout)),
            max_connections: Some(hub.max_connections),
            max_connections_per_ip: Some(hub.max_connections_per_ip),
            max_update_size: Some(hub.max_update_size),
            max_url_size: Some(hub.max_url_size),
            max_header_size: Some(hub.max_header_size),
            publish_rate: Some(hub.publish_rate),
            max_revocations: Some(hub.max_revocations),
            revocation_ttl: Some(Span(hub.revocation_ttl)),
            send_timeout: Some(Span(hub.send_timeout)),
            flush_interval: Some(Span(hub.flush_interval)),
            grace_period: Some(Span(hub.grace_period)),
            ui: Some(hub.ui),
            log_format: Some(LogFormat::Pretty),
            ..Settings::default()
        };
        self.or(defaults)
    }

    /// The settings as TOML, secrets (keys, the transport's credentials) masked.
    pub(crate) fn masked_toml(&self) -> anyhow::Result<String> {
        let mut shown = self.clone();
        for key in [
            &mut shown.jwt_key,
            &mut shown.publisher_jwt_key,
            &mut shown.subscriber_jwt_key,
        ] {
            if key.is_some() {
                *key = Some(MASK.to_owned());
            }
        }
        for issuer in &mut shown.issuer {
            if let Some((name, key)) = issuer.split_once('=')
                && !key.starts_with("https://")
                && !key.starts_with('@')
            {
                *issuer = format!("{name}={MASK}");
            }
        }
        if let Some(transport) = &mut shown.transport {
            // NATS takes a comma-separated list: each URL is masked.
            *transport = transport
                .split(',')
                .map(|part| match url::Url::parse(part.trim()) {
                    Ok(mut url) if url.password().is_some() => {
                        let _ = url.set_password(Some(MASK));
                        url.to_string()
                    }
                    // A NATS token is the user name alone.
                    Ok(mut url)
                        if matches!(url.scheme(), "nats" | "tls") && !url.username().is_empty() =>
                    {
                        let _ = url.set_username(MASK);
                        url.to_string()
                    }
                    _ => part.to_owned(),
                })
                .collect::<Vec<_>>()
                .join(",");
        }
        toml::to_string(&shown).context("cannot write the configuration")
    }

    /// The hub configuration, from settings with defaults and the keys they resolve to.
    pub(crate) fn hub_config(&self, keys: super::keys::Keys) -> anyhow::Result<HubConfig> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            bail!("--tls-cert and --tls-key (tls-cert, tls-key) go together");
        }
        let d = HubConfig::default();
        let span = |value: Option<Span>, default: Duration| value.map_or(default, |s| s.0);
        Ok(HubConfig {
            protocol: self.protocol.unwrap_or(d.protocol),
            issuers: keys.issuers,
            audience: self.audience.clone(),
            access_token_cookie: self
                .access_token_cookie
                .clone()
                .unwrap_or(d.access_token_cookie.clone()),
            publisher_jwt: keys.publisher,
            subscriber_jwt: keys.subscriber,
            publisher_jwks_url: keys.publisher_jwks_url,
            subscriber_jwks_url: keys.subscriber_jwks_url,
            jwks_refresh: span(self.jwks_refresh, d.jwks_refresh),
            anonymous: self.anonymous.unwrap_or(d.anonymous),
            subscriptions: self.subscriptions.unwrap_or(d.subscriptions),
            heartbeat: span(self.heartbeat, d.heartbeat),
            write_timeout: span(self.write_timeout, d.write_timeout),
            cookie_name: self.cookie_name.clone().unwrap_or(d.cookie_name),
            publish_origins: self.publish_origin.clone(),
            history_size: self.history_size.unwrap_or(d.history_size),
            subscriber_queue: self.subscriber_queue.unwrap_or(d.subscriber_queue),
            data_dir: self.data_dir.clone(),
            move_aside_damaged_history: self
                .move_aside_damaged_history
                .unwrap_or(d.move_aside_damaged_history),
            transport: self.transport.clone(),
            transport_prefix: self.transport_prefix.clone().unwrap_or(d.transport_prefix),
            transport_timeout: span(self.transport_timeout, d.transport_timeout),
            nats_replicas: self.nats_replicas.map_or(d.nats_replicas, usize::from),
            nats_credentials: self.nats_credentials.clone(),
            node_id: Some(
                self.node_id
                    .clone()
                    .unwrap_or_else(|| default_node_id(&self.addr)),
            ),
            history_age: span(self.history_age, d.history_age),
            history_bytes: self.history_bytes.unwrap_or(d.history_bytes),
            max_topics: self.max_topics.unwrap_or(d.max_topics),
            max_selector_cost: self.max_selector_cost.unwrap_or(d.max_selector_cost),
            max_id_size: self.max_id_size.unwrap_or(d.max_id_size),
            body_timeout: span(self.body_timeout, d.body_timeout),
            max_connections: self.max_connections.unwrap_or(d.max_connections),
            max_connections_per_ip: self
                .max_connections_per_ip
                .unwrap_or(d.max_connections_per_ip),
            max_url_size: self.max_url_size.unwrap_or(d.max_url_size),
            max_header_size: self.max_header_size.unwrap_or(d.max_header_size),
            grace_period: span(self.grace_period, d.grace_period),
            send_timeout: span(self.send_timeout, d.send_timeout),
            flush_interval: span(self.flush_interval, d.flush_interval),
            max_update_size: self.max_update_size.unwrap_or(d.max_update_size),
            publish_rate: self.publish_rate.unwrap_or(d.publish_rate),
            max_revocations: self.max_revocations.unwrap_or(d.max_revocations),
            revocation_ttl: span(self.revocation_ttl, d.revocation_ttl),
            cors_origins: self.cors_origin.clone(),
            cors_credentials: self.cors_credentials.unwrap_or(d.cors_credentials),
            ui: self.ui.unwrap_or(d.ui),
            public_metrics: self.public_metrics.unwrap_or(self.metrics_addr.is_none()),
            ..d
        })
    }
}

/// One line about an unknown key in a configuration file, with the closest known key.
fn unknown_key(path: &Path, text: &str, key: &str, known: &[String]) -> String {
    let line = text
        .lines()
        .position(|line| {
            let line = line.trim_start().trim_start_matches(['"', '\'']);
            line.strip_prefix(key).is_some_and(|rest| {
                let rest = rest.trim_start_matches(['"', '\'']).trim_start();
                rest.starts_with('=')
            })
        })
        .map(|n| format!(" (line {})", n + 1))
        .unwrap_or_default();
    let closest = known
        .iter()
        .map(|k| (strsim::jaro_winkler(key, k), k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let hint = match closest {
        Some((_, k)) => format!("did you mean `{k}`?"),
        None => "`herald serve --help` lists the settings (the file's keys are the flags' \
                 names)"
            .to_owned(),
    };
    format!("unknown key `{key}` in {}{line}; {hint}", path.display())
}
