//! Every knob of the hub, as one plain serde struct: the CLI fills it from flags and `HERALD_*`
//! variables, and a configuration file can deserialize into it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The reference hub's default cookie name.
pub const DEFAULT_COOKIE_NAME: &str = crate::auth::DEFAULT_COOKIE_NAME;
/// The default cookie of Mercure 1.0 access tokens.
pub const DEFAULT_ACCESS_TOKEN_COOKIE: &str = crate::auth::DEFAULT_ACCESS_TOKEN_COOKIE;
/// The URL relative URL patterns and topics resolve against when `audience` gives none.
pub const DEFAULT_HUB_URL: &str = "https://localhost/.well-known/mercure";

pub use crate::auth::IssuerKey;
pub use crate::protocol::Protocol;

/// A JWT verification key: a shared secret (HS256/384/512) or a PEM public key (RS*, ES*, EdDSA).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtKey {
    /// The secret, or the PEM text of the public key.
    pub key: String,
    /// The algorithm tokens must be signed with (`HS256` by default).
    #[serde(default = "default_algorithm")]
    pub algorithm: String,
}

impl JwtKey {
    /// A key with its algorithm.
    pub fn new(key: impl Into<String>, algorithm: impl Into<String>) -> JwtKey {
        JwtKey {
            key: key.into(),
            algorithm: algorithm.into(),
        }
    }
}

fn default_algorithm() -> String {
    "HS256".to_owned()
}

/// The hub's configuration. [`HubConfig::default`] gives the reference hub's defaults, with no
/// keys (so neither publishing nor subscribing is possible until one is set or `anonymous` is on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HubConfig {
    /// Which generations of Mercure the hub serves: `0.x`, `1` or `both` (the default), each
    /// request then read by what it carries.
    pub protocol: Protocol,
    /// Mercure 1.0: the trusted issuers of access tokens, each with its key (a secret, a PEM
    /// public key, or a JWK Set URL); tokens are verified only with their own issuer's keys.
    pub issuers: Vec<IssuerKey>,
    /// Mercure 1.0: the hub's resource identifier (an absolute URL, e.g.
    /// `https://hub.example.com/.well-known/mercure`), which access tokens must carry in `aud`.
    /// Required with `issuers`; never derived from a request. It is also the URL relative URL
    /// patterns and topics resolve against, and names the protected-resource metadata.
    pub audience: Option<String>,
    /// Mercure 1.0: the cookie an access token may come in.
    pub access_token_cookie: String,
    /// Verifies publishers' tokens; without it the publish endpoint does not exist.
    pub publisher_jwt: Option<JwtKey>,
    /// Verifies subscribers' tokens; without it (and without `anonymous`) the subscribe endpoint
    /// does not exist.
    pub subscriber_jwt: Option<JwtKey>,
    /// Fetches the keys verifying publishers' tokens from this JWK Set URL (`https://`), in
    /// place of `publisher_jwt`; see [`crate::auth::KeySet`].
    pub publisher_jwks_url: Option<String>,
    /// Fetches the keys verifying subscribers' tokens from this JWK Set URL (`https://`), in
    /// place of `subscriber_jwt`.
    pub subscriber_jwks_url: Option<String>,
    /// The shortest time between two fetches of a JWK Set: a token naming a key (`kid`) that
    /// the cached set lacks makes the hub fetch it again at most this often, and a cached set
    /// older than this is fetched again in the background.
    #[serde(with = "duration_text")]
    pub jwks_refresh: Duration,
    /// Lets subscribers without a token receive public updates.
    pub anonymous: bool,
    /// Publishes subscription events and serves the subscriptions API.
    pub subscriptions: bool,
    /// Silence after which a `:` comment is sent to each subscriber (zero disables). One
    /// shared tick checks every subscriber each quarter of it, so the comment leaves between
    /// one and one and a quarter intervals of silence.
    #[serde(with = "duration_text")]
    pub heartbeat: Duration,
    /// Longest life of a subscription stream, after which it ends cleanly and clients resume
    /// (zero disables). The actual deadline is drawn between 80 % and 100 % of it, so that
    /// reconnections spread out.
    #[serde(with = "duration_text")]
    pub write_timeout: Duration,
    /// The name of the cookie that may carry a 0.x token.
    pub cookie_name: String,
    /// Origins allowed to publish with cookie authentication (`*` allows all).
    pub publish_origins: Vec<String>,
    /// How many past updates are kept for resuming subscribers.
    pub history_size: usize,
    /// Keeps the history in an embedded transactional store in this directory (a publish is
    /// answered once committed); without it, history is in memory only.
    pub data_dir: Option<std::path::PathBuf>,
    /// Several nodes as one: the shared log every node publishes to and mirrors: Redis Streams
    /// (`redis://[user:pass@]host:port/db`, or `rediss://` with TLS) or NATS JetStream
    /// (`nats://[user:pass@]host:port`, several comma-separated, or `tls://` with TLS). Without
    /// it, the node keeps its history alone (in memory, or in `data_dir`).
    pub transport: Option<String>,
    /// Names the shared log's keys, so that several hubs can share one engine.
    pub transport_prefix: String,
    /// The longest wait for the shared log on a publish before answering `503`; also how long
    /// a resume waits for this node to read an ID published elsewhere an instant before.
    #[serde(with = "duration_text")]
    pub transport_timeout: Duration,
    /// This node's name in logs, metrics and the subscriptions API (default: the host name).
    pub node_id: Option<String>,
    /// With NATS: how many servers of a NATS cluster keep each stream (1, or 3 so that the
    /// loss of a server loses no acknowledged update). Applies when the streams are created.
    pub nats_replicas: usize,
    /// With NATS: a credentials file (a user JWT and its NKey seed) to connect with.
    pub nats_credentials: Option<std::path::PathBuf>,
    /// When the data directory's store is found damaged at start, rename it beside itself
    /// (`history.redb.damaged-<unix time>`) and start with an empty history, instead of
    /// refusing to start.
    pub move_aside_damaged_history: bool,
    /// Updates older than this are dropped from the history (zero: no age bound).
    #[serde(with = "duration_text")]
    pub history_age: Duration,
    /// The most bytes the history may take, counting each update's encoded event, topics and
    /// ID (zero: no byte bound); the oldest updates are dropped first. The same bound applies
    /// to the data directory's store.
    pub history_bytes: usize,
    /// How many updates may wait for one subscriber before it is disconnected as too slow
    /// (counted in its queue; up to as many more may be in the write it is taking).
    pub subscriber_queue: usize,
    /// The most topics a publish or a subscription may carry.
    pub max_topics: usize,
    /// The most matching work one subscription may ask for, summed over its topic selectors:
    /// an exact topic or `*` counts 1, a URI template 1 per literal and expression it holds
    /// (`https://example.com/books/{id}` counts 2); beyond it, `400`.
    pub max_selector_cost: usize,
    /// The longest update ID in bytes; beyond it, `400`. An ID must fit in the `Last-Event-ID`
    /// header a reconnecting browser sends, so it must leave room within `max_header_size`.
    pub max_id_size: usize,
    /// The most open client connections; beyond it new ones get `503` with `Retry-After`
    /// (zero: no bound).
    pub max_connections: usize,
    /// The most open connections from one client address (an IPv4 address, or an IPv6 /64
    /// network); beyond it new ones get `429` with `Retry-After` (zero: no bound). Off by
    /// default: behind a proxy or a carrier's NAT, many users share one address.
    pub max_connections_per_ip: usize,
    /// The longest request target (path and query) in bytes; beyond it, `414`.
    pub max_url_size: usize,
    /// The most bytes of request headers (names and values); beyond it, `431`.
    pub max_header_size: usize,
    /// The largest publish body (the update's form) in bytes; beyond it, `413`.
    pub max_update_size: usize,
    /// How long a client may take to send a request body, from the end of its head; beyond
    /// it, `408` and the connection is closed.
    #[serde(with = "duration_text")]
    pub body_timeout: Duration,
    /// Updates per second each publisher (each token) may publish, in bursts of as many;
    /// beyond it, `429` with `Retry-After` (zero, the default: no bound, since a publisher
    /// holds the publisher key and its bursts are usually an import or a replayed queue).
    pub publish_rate: u32,
    /// Most revocations in force at once (control API): a revocation ends with its tokens'
    /// `exp`, and a full list refuses new ones with `507`.
    pub max_revocations: usize,
    /// How long a revocation that does not say when its tokens expire is kept.
    #[serde(with = "duration_text")]
    pub revocation_ttl: Duration,
    /// Origins whose browsers may use the hub cross-origin (CORS); `*` only without
    /// credentials. Empty: no CORS headers.
    pub cors_origins: Vec<String>,
    /// Whether cross-origin requests may carry cookies (`Access-Control-Allow-Credentials`).
    pub cors_credentials: bool,
    /// How long a write may wait for a client that stopped reading before its connection is
    /// closed (zero: no bound).
    #[serde(with = "duration_text")]
    pub send_timeout: Duration,
    /// How long updates may be held so that those arriving close together leave in one write:
    /// while the subscribers' streams keep up, each update is written at once; while some of
    /// them are still behind on the updates they were woken for (after being given one round of
    /// the runtime to catch up), what arrives waits until this interval after the last wake and
    /// leaves together (zero: every update is written at once). It bounds the latency it adds,
    /// and only under load.
    #[serde(with = "duration_text")]
    pub flush_interval: Duration,
    /// How long a graceful shutdown waits for connections to close before cutting them.
    #[serde(with = "duration_text")]
    pub grace_period: Duration,
    /// Serves the debug page at `/`: subscribe, publish from a form, watch the live event log.
    pub ui: bool,
    /// Serves `/metrics`, `/healthz` and `/readyz` on the hub's own listeners too. Turn it off
    /// to serve them only on a separate listener
    /// ([`Server::metrics_listener`](crate::server::Server::metrics_listener)).
    pub public_metrics: bool,
    /// Tokens the debug page fills in for whoever loads it. Development mode sets them, and only
    /// when the hub listens on loopback alone: anyone who can load the page gets them.
    #[serde(skip)]
    pub ui_tokens: Option<UiTokens>,
}

/// The tokens the debug page offers its visitors (development mode only).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UiTokens {
    /// Filled into the page's publish form.
    pub publisher: Option<String>,
    /// Filled into the page's subscribe form (and used for the subscriptions API).
    pub subscriber: Option<String>,
    /// Filled into the page's admin token field: the subscriptions list then has a
    /// "disconnect" button per subscriber.
    pub admin: Option<String>,
}

impl Default for HubConfig {
    fn default() -> HubConfig {
        HubConfig {
            protocol: Protocol::Both,
            issuers: Vec::new(),
            audience: None,
            access_token_cookie: DEFAULT_ACCESS_TOKEN_COOKIE.to_owned(),
            publisher_jwt: None,
            subscriber_jwt: None,
            publisher_jwks_url: None,
            subscriber_jwks_url: None,
            jwks_refresh: crate::auth::jwks::DEFAULT_REFRESH,
            anonymous: false,
            subscriptions: false,
            heartbeat: Duration::from_secs(40),
            write_timeout: Duration::from_secs(600),
            cookie_name: DEFAULT_COOKIE_NAME.to_owned(),
            publish_origins: Vec::new(),
            history_size: 10_000,
            subscriber_queue: 1_000,
            data_dir: None,
            move_aside_damaged_history: false,
            transport: None,
            transport_prefix: "herald".to_owned(),
            transport_timeout: Duration::from_secs(2),
            node_id: None,
            nats_replicas: 1,
            nats_credentials: None,
            history_age: Duration::ZERO,
            history_bytes: 256 * 1024 * 1024,
            max_topics: 1_000,
            max_selector_cost: 1_000,
            max_id_size: 1024,
            max_connections: 10_000,
            max_connections_per_ip: 0,
            max_url_size: 64 * 1024,
            max_header_size: 32 * 1024,
            grace_period: Duration::from_secs(10),
            send_timeout: Duration::from_secs(30),
            flush_interval: Duration::from_millis(1),
            max_update_size: 1024 * 1024,
            body_timeout: Duration::from_secs(5),
            publish_rate: 0,
            max_revocations: 10_000,
            revocation_ttl: Duration::from_secs(24 * 3600),
            cors_origins: Vec::new(),
            cors_credentials: true,
            ui: false,
            public_metrics: true,
            ui_tokens: None,
        }
    }
}

impl HubConfig {
    /// The hub's URL, which relative URL patterns and topics resolve against: `audience` when
    /// it is an absolute `http(s)` URL (its path completed with `/.well-known/mercure` when
    /// empty), else [`DEFAULT_HUB_URL`].
    pub fn hub_url(&self) -> url::Url {
        let fallback = || url::Url::parse(DEFAULT_HUB_URL).expect("a valid URL");
        let Some(mut url) = self
            .audience
            .as_deref()
            .and_then(|a| url::Url::parse(a).ok())
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
        else {
            return fallback();
        };
        if url.path() == "/" || url.path().is_empty() {
            url.set_path(crate::http::HUB_PATH);
        }
        url
    }
}

/// Durations as text, the one syntax every Herald setting and flag takes: `40s`, `500ms`,
/// `10m`, `1h 30m`, `2days` (parsed by `humantime`), or a bare number of seconds (`40`, `1.5`).
pub mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Parses `40s`, `500ms`, `10m`, `1h 30m`, or `40` and `1.5` (seconds).
    pub fn parse(text: &str) -> Result<Duration, String> {
        let text = text.trim();
        if let Ok(seconds) = text.parse::<f64>() {
            return Duration::try_from_secs_f64(seconds)
                .map_err(|_| format!("invalid duration {text:?}: not a number of seconds"));
        }
        humantime::parse_duration(text).map_err(|error| {
            format!(
                "invalid duration {text:?} ({error}): expected e.g. 40s, 500ms, 10m, 1h 30m, \
                 or a number of seconds"
            )
        })
    }

    /// Writes a duration as whole milliseconds (`1500ms`) or seconds (`40s`).
    pub fn format(duration: Duration) -> String {
        if duration.subsec_millis() == 0 {
            format!("{}s", duration.as_secs())
        } else {
            format!("{}ms", duration.as_millis())
        }
    }

    /// Writes a duration as text (`40s`, `500ms`).
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*d))
    }

    /// Reads a duration from text or a number of seconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Seconds(s) => Ok(Duration::from_secs(s)),
            Raw::Text(t) => parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c67_defaults_match_the_reference_hub() {
        let config = HubConfig::default();
        assert_eq!(config.heartbeat, Duration::from_secs(40));
        assert_eq!(config.write_timeout, Duration::from_secs(600));
        assert_eq!(config.cookie_name, "mercureAuthorization");
        assert_eq!(config.history_size, 10_000);
        assert_eq!(config.subscriber_queue, 1_000);
    }

    #[test]
    fn durations_parse_and_round_trip() {
        assert_eq!(duration_text::parse("40s"), Ok(Duration::from_secs(40)));
        assert_eq!(
            duration_text::parse("250ms"),
            Ok(Duration::from_millis(250))
        );
        assert_eq!(duration_text::parse("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(duration_text::parse("0"), Ok(Duration::ZERO));
        assert_eq!(duration_text::parse("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(
            duration_text::parse("1h 30m"),
            Ok(Duration::from_secs(5400))
        );
        assert_eq!(duration_text::parse("2min"), Ok(Duration::from_secs(120)));
        assert!(duration_text::parse("ten").is_err());
        assert!(duration_text::parse("5 parsecs").is_err());
        assert!(duration_text::parse("-1").is_err());
        let config = HubConfig {
            heartbeat: Duration::from_millis(1500),
            ..HubConfig::default()
        };
        let json = serde_json::to_string(&config).expect("serialize");
        assert!(json.contains(r#""heartbeat":"1500ms""#), "{json}");
        let back: HubConfig = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, config);
        let partial: HubConfig =
            serde_json::from_str(r#"{"heartbeat": 5, "anonymous": true}"#).expect("partial");
        assert_eq!(partial.heartbeat, Duration::from_secs(5));
        assert!(partial.anonymous);
        assert!(serde_json::from_str::<HubConfig>(r#"{"nope": 1}"#).is_err());
    }
}
