//! The hub: its configuration, authorizer, transport and fan-out, and how it is served.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::auth::{
    AccessTokens, AuthSetupError, Authorizer, IssuerSetupError, JwksError, KeyConfig, KeySet, Role,
};
use crate::config::{HubConfig, JwtKey};
use crate::control::Control;
use crate::fanout::Fanout;
use crate::http::limits::PublishRate;
use crate::http::refusal_log::RefusalLog;
use crate::metrics::Metrics;
use crate::protocol::Protocol;
use crate::server::Server;
use crate::transport::shared::{
    DEDUPE_WINDOW, NatsLog, NatsOptions, RedisLog, RedisOptions, SharedLog,
};
use crate::transport::{
    DurableTransport, HistoryLimits, LocalTransport, OnDamage, SharedOptions, SharedTransport,
    Transport, TransportError,
};
use crate::update::Update;

/// Why a hub could not be built. Each message says it all on one line (no error is both
/// shown and chained as a source, so `{:#}` never repeats itself).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// A JWT key or algorithm is unusable.
    #[error(transparent)]
    Auth(#[from] AuthSetupError),
    /// A JWK Set URL is unusable.
    #[error(transparent)]
    Jwks(#[from] JwksError),
    /// A trusted issuer (Mercure 1.0) is unusable.
    #[error(transparent)]
    Issuer(#[from] IssuerSetupError),
    /// The history store cannot be opened.
    #[error("cannot open the history store in {}: {reason}", dir.display())]
    Storage {
        /// The data directory.
        dir: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The shared transport cannot start.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A setting is out of range or contradicts another.
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// The state every request handler shares.
pub(crate) struct HubState {
    pub(crate) config: HubConfig,
    pub(crate) authorizer: Authorizer,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) fanout: Arc<Fanout>,
    /// The control API's revocations and disconnections on this node.
    pub(crate) control: Arc<Control>,
    pub(crate) metrics: Metrics,
    pub(crate) publish_rate: PublishRate,
    pub(crate) refusal_log: RefusalLog,
    /// The hub's URL: what relative URL patterns and topics resolve against (Mercure 1.0).
    pub(crate) hub_url: url::Url,
}

/// A Mercure hub. Cloning is cheap and shares the hub.
#[derive(Clone)]
pub struct Hub {
    pub(crate) state: Arc<HubState>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("config", &self.state.config)
            .field("fanout", &self.state.fanout)
            .finish_non_exhaustive()
    }
}

fn key_config(key: &Option<JwtKey>) -> Option<KeyConfig> {
    key.as_ref().map(|k| KeyConfig {
        key: k.key.clone(),
        algorithm: k.algorithm.clone(),
    })
}

/// Each role's verifier: its key, or its JWK Set (never both).
fn authorizer(config: &HubConfig) -> Result<Authorizer, HubError> {
    let mut authorizer = Authorizer::new(
        key_config(&config.publisher_jwt),
        key_config(&config.subscriber_jwt),
    )?;
    for (role, key, url) in [
        (
            Role::Publisher,
            &config.publisher_jwt,
            &config.publisher_jwks_url,
        ),
        (
            Role::Subscriber,
            &config.subscriber_jwt,
            &config.subscriber_jwks_url,
        ),
    ] {
        let Some(url) = url else { continue };
        if key.is_some() {
            return Err(HubError::Config(format!(
                "the {role} tokens are verified either with a JWT key or with a JWK Set \
                 ({url}), not both"
            )));
        }
        let set = KeySet::builder(url.clone())
            .refresh(config.jwks_refresh)
            .build()?;
        authorizer = authorizer.key_set(role, set);
    }
    if config.protocol == Protocol::Both {
        authorizer = authorizer.refusing_access_tokens();
    }
    if config.protocol == Protocol::Modern
        && let Some(setting) = [
            ("publisher_jwt", config.publisher_jwt.is_some()),
            ("subscriber_jwt", config.subscriber_jwt.is_some()),
            ("publisher_jwks_url", config.publisher_jwks_url.is_some()),
            ("subscriber_jwks_url", config.subscriber_jwks_url.is_some()),
        ]
        .into_iter()
        .find_map(|(name, set)| set.then_some(name))
    {
        return Err(HubError::Config(format!(
            "{setting} verifies Mercure 0.x tokens, which a hub serving protocol 1 only never \
             accepts: configure trusted issuers (--issuer ISS=KEY) instead, or serve both \
             generations (--protocol both)"
        )));
    }
    if config.issuers.is_empty() {
        return Ok(authorizer);
    }
    if config.protocol == Protocol::Legacy {
        return Err(HubError::Config(
            "trusted issuers (--issuer) verify Mercure 1.0 access tokens, which a hub serving \
             protocol 0.x never accepts: use --protocol 1 or both"
                .to_owned(),
        ));
    }
    let audience = check_audience(config.audience.as_deref())?;
    let access = AccessTokens::new(
        &config.issuers,
        audience,
        config.hub_url(),
        config.jwks_refresh,
    )?;
    Ok(authorizer.access_tokens(access))
}

/// The resource identifier tokens must carry: set, and an absolute `http(s)` URL.
fn check_audience(audience: Option<&str>) -> Result<&str, HubError> {
    let Some(audience) = audience else {
        return Err(IssuerSetupError::Audience(
            "trusted issuers need the hub's resource identifier, which their tokens carry in \
             `aud`: set --audience (e.g. https://hub.example.com/.well-known/mercure)"
                .to_owned(),
        )
        .into());
    };
    match url::Url::parse(audience) {
        Ok(url) if matches!(url.scheme(), "https" | "http") && url.has_host() => Ok(audience),
        _ => Err(IssuerSetupError::Audience(format!(
            "--audience {audience:?} is not an absolute https:// URL (the hub's resource \
             identifier, e.g. https://hub.example.com/.well-known/mercure)"
        ))
        .into()),
    }
}

/// Opens the durable history in `dir`, with an error that names the directory.
fn open_store(
    dir: &Path,
    limits: HistoryLimits,
    on_damage: OnDamage,
    fanout: &Arc<Fanout>,
    control: &Control,
) -> Result<DurableTransport, HubError> {
    let failed = |reason: String| HubError::Storage {
        dir: dir.to_owned(),
        reason,
    };
    if dir.exists() && !dir.is_dir() {
        return Err(failed("it is not a directory".to_owned()));
    }
    let failure = |error| match error {
        TransportError::Storage(reason) => failed(reason),
        other => failed(other.to_string()),
    };
    let store = DurableTransport::open(dir, limits, on_damage, fanout.clone()).map_err(failure)?;
    let restored = store.restore_revocations(control).map_err(failure)?;
    if restored > 0 {
        tracing::info!(
            restored,
            "revocations still in force restored from the store"
        );
    }
    Ok(store)
}

impl Hub {
    /// A hub with this configuration and the in-memory transport.
    pub fn new(config: HubConfig) -> Result<Hub, HubError> {
        crate::http::cors::check(&config.cors_origins, config.cors_credentials)
            .map_err(HubError::Config)?;
        // Half the header bound for the ID leaves room for a browser's other request headers
        // beside `Last-Event-ID`.
        if config.max_id_size > config.max_header_size / 2 {
            return Err(HubError::Config(format!(
                "max-id-size ({}) must be at most half of max-header-size ({}), so that a \
                 reconnecting browser's Last-Event-ID header is accepted",
                config.max_id_size, config.max_header_size
            )));
        }
        let authorizer = authorizer(&config)?;
        let publish_rate = PublishRate::new(config.publish_rate);
        let fanout = Arc::new(
            Fanout::with_flush_interval(config.subscriber_queue, config.flush_interval)
                .heartbeat(config.heartbeat),
        );
        let control = Arc::new(Control::new(fanout.clone(), config.max_revocations));
        let metrics = Metrics::new(&fanout, &control, config.transport.is_some());
        let limits = HistoryLimits {
            size: config.history_size,
            bytes: config.history_bytes,
            age: config.history_age,
        };
        let transport = transport(&config, limits, &fanout, &control)?;
        let hub_url = config.hub_url();
        Ok(Hub {
            state: Arc::new(HubState {
                config,
                authorizer,
                transport,
                fanout,
                control,
                metrics,
                publish_rate,
                refusal_log: RefusalLog::default(),
                hub_url,
            }),
        })
    }

    /// Starts a configuration from the defaults.
    pub fn builder() -> HubBuilder {
        HubBuilder::default()
    }

    /// The configuration in force.
    pub fn config(&self) -> &HubConfig {
        &self.state.config
    }

    /// Fetches every JWK Set the hub verifies tokens with, and logs how it went: a hub that
    /// starts before its identity provider still starts, and fetches again on demand.
    pub async fn fetch_key_sets(&self) {
        if let Some(access) = self.state.authorizer.access() {
            for (issuer, set) in access.key_sets() {
                match set.refresh().await {
                    Ok(keys) => tracing::info!(issuer, url = set.url(), keys, "JWK Set fetched"),
                    Err(error) => tracing::warn!(
                        issuer,
                        %error,
                        "JWK Set not fetched: the issuer's tokens are refused until a fetch succeeds"
                    ),
                }
            }
        }
        for role in [Role::Publisher, Role::Subscriber] {
            let Some(set) = self.state.authorizer.jwks(role) else {
                continue;
            };
            match set.refresh().await {
                Ok(keys) => tracing::info!(%role, url = set.url(), keys, "JWK Set fetched"),
                Err(error) => tracing::warn!(
                    %role,
                    %error,
                    "JWK Set not fetched: tokens are refused until a fetch succeeds"
                ),
            }
        }
    }

    /// How many subscribers are connected to this node.
    pub fn subscriber_count(&self) -> usize {
        self.state.fanout.len()
    }

    /// Publishes an update without HTTP (no authorization check) and returns its ID.
    pub async fn publish(&self, update: Update) -> Result<String, TransportError> {
        let started = std::time::Instant::now();
        let record = self.state.transport.dispatch(update).await?;
        self.state.metrics.published();
        self.state.metrics.delivery_latency(started.elapsed());
        Ok(record.id().to_owned())
    }

    /// Applies a control action (disconnect, revoke) on every node of the hub, without HTTP (no
    /// authorization check), and answers what it did on this one.
    pub async fn control(
        &self,
        action: crate::control::Action,
    ) -> Result<crate::control::Applied, TransportError> {
        self.state
            .transport
            .control(action, &self.state.control)
            .await
    }

    /// How many revocations are in force on this node.
    pub fn revocation_count(&self) -> usize {
        self.state.control.revocation_count()
    }

    /// The routes: `/.well-known/mercure` (publish, subscribe), the subscriptions API,
    /// `/healthz` and `/`.
    pub fn router(&self) -> axum::Router {
        crate::http::router(self.state.clone())
    }

    /// Serves the hub on `listener` until the process ends.
    pub async fn serve(self, listener: TcpListener) -> std::io::Result<()> {
        self.serve_with_shutdown(listener, std::future::pending())
            .await
    }

    /// Serves the hub until `signal` completes, then ends every subscription stream (clients
    /// resume elsewhere with `Last-Event-ID`) and returns once connections are closed. For TLS
    /// or several listeners, use [`Server`].
    pub async fn serve_with_shutdown(
        self,
        listener: TcpListener,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        Server::new(self).listener(listener).run(signal).await
    }
}

/// The transport the configuration asks for: a shared log, the data directory's store, or
/// memory.
fn transport(
    config: &HubConfig,
    limits: HistoryLimits,
    fanout: &Arc<Fanout>,
    control: &Arc<Control>,
) -> Result<Arc<dyn Transport>, HubError> {
    match (&config.transport, &config.data_dir) {
        (Some(_), Some(_)) => Err(HubError::Config(
            "a shared transport and a data directory cannot be used together: the shared log \
             is the history (remove --data-dir or --transport)"
                .to_owned(),
        )),
        (Some(url), None) => {
            let log: Arc<dyn SharedLog> = match url.split_once("://").map(|(scheme, _)| scheme) {
                Some("redis" | "rediss") => Arc::new(
                    RedisLog::new(RedisOptions {
                        url: url.clone(),
                        prefix: config.transport_prefix.clone(),
                        history_size: config.history_size,
                        timeout: config.transport_timeout,
                        dedupe_window: DEDUPE_WINDOW,
                    })
                    .map_err(|e| HubError::Config(e.to_string()))?,
                ),
                Some("nats" | "tls") => Arc::new(
                    NatsLog::new(NatsOptions {
                        url: url.clone(),
                        prefix: config.transport_prefix.clone(),
                        history_size: config.history_size,
                        timeout: config.transport_timeout,
                        dedupe_window: DEDUPE_WINDOW,
                        replicas: config.nats_replicas,
                        credentials: config.nats_credentials.clone(),
                    })
                    .map_err(|e| HubError::Config(e.to_string()))?,
                ),
                _ => {
                    return Err(HubError::Config(format!(
                        "unknown transport {:?}: expected redis://host:port, rediss://host:port, \
                         nats://host:port[,nats://host:port...] or tls://host:port",
                        redact(url)
                    )));
                }
            };
            let options = SharedOptions {
                node: config
                    .node_id
                    .clone()
                    .unwrap_or_else(|| format!("herald-{}", std::process::id())),
                subscriptions: config.subscriptions,
                limits,
                timeout: config.transport_timeout,
                fence: config.transport_timeout.min(Duration::from_secs(1)),
            };
            Ok(Arc::new(SharedTransport::start(
                log,
                options,
                fanout.clone(),
                control.clone(),
            )?))
        }
        (None, Some(dir)) => {
            let on_damage = if config.move_aside_damaged_history {
                OnDamage::MoveAside
            } else {
                OnDamage::Fail
            };
            Ok(Arc::new(open_store(
                dir, limits, on_damage, fanout, control,
            )?))
        }
        (None, None) => Ok(Arc::new(LocalTransport::with_limits(
            limits,
            fanout.clone(),
        ))),
    }
}

/// A URL (or a comma-separated list of them) without its credentials, for messages.
fn redact(url: &str) -> String {
    url.split(',')
        .map(|part| match url::Url::parse(part.trim()) {
            Ok(mut parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
                let _ = parsed.set_username("");
                let _ = parsed.set_password(None);
                parsed.to_string()
            }
            _ => part.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Builds a [`Hub`]: every setter mirrors a [`HubConfig`] field.
#[derive(Debug, Clone, Default)]
#[must_use = "a HubBuilder does nothing until `build` is called"]
pub struct HubBuilder {
    config: HubConfig,
}

impl HubBuilder {
    /// Replaces the whole configuration.
    pub fn config(mut self, config: HubConfig) -> Self {
        self.config = config;
        self
    }

    /// The same key for publishers and subscribers.
    pub fn jwt(self, key: JwtKey) -> Self {
        self.publisher_jwt(key.clone()).subscriber_jwt(key)
    }

    /// The publishers' key.
    pub fn publisher_jwt(mut self, key: JwtKey) -> Self {
        self.config.publisher_jwt = Some(key);
        self
    }

    /// The subscribers' key.
    pub fn subscriber_jwt(mut self, key: JwtKey) -> Self {
        self.config.subscriber_jwt = Some(key);
        self
    }

    /// Lets subscribers without a token receive public updates.
    pub fn anonymous(mut self, on: bool) -> Self {
        self.config.anonymous = on;
        self
    }

    /// Publishes subscription events and serves the subscriptions API.
    pub fn subscriptions(mut self, on: bool) -> Self {
        self.config.subscriptions = on;
        self
    }

    /// The heartbeat interval (zero disables).
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.config.heartbeat = interval;
        self
    }

    /// The longest life of a subscription stream (zero disables).
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.config.write_timeout = timeout;
        self
    }

    /// The cookie that may carry a token.
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.config.cookie_name = name.into();
        self
    }

    /// The origins allowed to publish with cookie authentication.
    pub fn publish_origins(mut self, origins: Vec<String>) -> Self {
        self.config.publish_origins = origins;
        self
    }

    /// How many past updates are kept.
    pub fn history_size(mut self, size: usize) -> Self {
        self.config.history_size = size;
        self
    }

    /// How many updates may wait for one subscriber.
    pub fn subscriber_queue(mut self, len: usize) -> Self {
        self.config.subscriber_queue = len;
        self
    }

    /// Serves the debug page at `/`.
    pub fn ui(mut self, on: bool) -> Self {
        self.config.ui = on;
        self
    }

    /// Builds the hub.
    pub fn build(self) -> Result<Hub, HubError> {
        Hub::new(self.config)
    }
}
