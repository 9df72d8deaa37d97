//! The hub's Prometheus metrics: one registry per hub, updated by the server, the HTTP
//! handlers and the fan-out, rendered in the text exposition format at `/metrics`.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::control::Control;
use crate::fanout::Fanout;
use crate::transport::SharedStats;

/// What `/metrics` reads at each scrape.
#[derive(Debug, Default)]
pub(crate) struct Readings {
    pub(crate) subscriptions: usize,
    pub(crate) history_len: usize,
    pub(crate) history_bytes: usize,
    /// The shared log's mirror, for a node of a cluster.
    pub(crate) shared: Option<SharedStats>,
    /// Revocations in force (control API).
    pub(crate) revocations: usize,
}

/// The metrics of a node of a cluster, registered when its transport is shared.
struct SharedMetrics {
    lag_entries: Gauge,
    lag_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    gaps: Counter,
    epoch_changes: Counter,
    errors: Counter,
    nodes: Gauge,
}

impl SharedMetrics {
    fn register(registry: &mut Registry) -> SharedMetrics {
        let metrics = SharedMetrics {
            lag_entries: Gauge::default(),
            lag_seconds: Gauge::default(),
            gaps: Counter::default(),
            epoch_changes: Counter::default(),
            errors: Counter::default(),
            nodes: Gauge::default(),
        };
        registry.register(
            "shared_log_lag_entries",
            "Entries of the shared log this node has not read yet",
            metrics.lag_entries.clone(),
        );
        registry.register(
            "shared_log_lag_seconds",
            "Age of the newest shared-log entry when this node read it",
            metrics.lag_seconds.clone(),
        );
        registry.register(
            "shared_log_gaps",
            "Holes found in the shared log's offsets (this node lagged past its bound)",
            metrics.gaps.clone(),
        );
        registry.register(
            "shared_log_epoch_changes",
            "Times the shared log was found to have lost its data (a new epoch)",
            metrics.epoch_changes.clone(),
        );
        registry.register(
            "shared_log_errors",
            "Failed reads and loads of the shared log",
            metrics.errors.clone(),
        );
        registry.register(
            "cluster_nodes",
            "Nodes of the cluster alive at this node's last heartbeat",
            metrics.nodes.clone(),
        );
        metrics
    }

    fn set(&self, stats: &SharedStats) {
        let bring = |counter: &Counter, value: u64| {
            counter.inc_by(value.saturating_sub(counter.get()));
        };
        self.lag_entries
            .set(i64::try_from(stats.lag_entries).unwrap_or(i64::MAX));
        #[allow(clippy::cast_precision_loss)]
        self.lag_seconds.set(stats.lag_ms as f64 / 1000.0);
        bring(&self.gaps, stats.gaps);
        bring(&self.epoch_changes, stats.epoch_changes);
        bring(&self.errors, stats.errors);
        self.nodes
            .set(i64::try_from(stats.nodes).unwrap_or(i64::MAX));
    }
}

/// Every metric the hub exports.
pub(crate) struct Metrics {
    registry: Registry,
    connections: Gauge,
    subscriptions: Gauge,
    published: Counter,
    bytes_written: Counter,
    rejected: Family<Vec<(&'static str, &'static str)>, Counter>,
    latency: Histogram,
    history_size: Gauge,
    history_bytes: Gauge,
    resume_not_found: Counter,
    revocations: Gauge,
    shared: Option<SharedMetrics>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Counts an open connection until dropped.
pub(crate) struct OpenGuard(Gauge);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metrics {
    /// The metrics of a hub whose fan-out counts its own deliveries and slow consumers, and,
    /// for a node of a cluster (`shared`), its mirror of the shared log.
    pub(crate) fn new(fanout: &Fanout, control: &Control, shared: bool) -> Metrics {
        let mut registry = Registry::with_prefix("herald");
        let connections = Gauge::default();
        registry.register(
            "open_connections",
            "Open client connections",
            connections.clone(),
        );
        let subscriptions = Gauge::default();
        registry.register(
            "subscriptions",
            "Live subscriptions on this node",
            subscriptions.clone(),
        );
        let published = Counter::default();
        registry.register("updates_published", "Updates published", published.clone());
        let delivered = fanout.delivered.clone();
        registry.register(
            "updates_delivered",
            "Updates queued to subscribers",
            delivered.clone(),
        );
        let bytes_written = Counter::default();
        registry.register(
            "bytes_written",
            "Event-stream bytes handed to subscriber connections",
            bytes_written.clone(),
        );
        let slow_disconnects = fanout.slow_disconnects.clone();
        registry.register(
            "slow_consumer_disconnects",
            "Subscribers disconnected because their queue was full",
            slow_disconnects.clone(),
        );
        let rejected = Family::default();
        registry.register(
            "rejected_requests",
            "Requests and connections refused, by reason",
            rejected.clone(),
        );
        let latency = Histogram::new([
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
        ]);
        registry.register(
            "publish_to_delivery_seconds",
            "Time from a publish being accepted to its update reaching subscriber queues",
            latency.clone(),
        );
        let history_size = Gauge::default();
        registry.register(
            "history_size",
            "Updates kept for resuming subscribers",
            history_size.clone(),
        );
        let history_bytes = Gauge::default();
        registry.register(
            "history_bytes",
            "Bytes the kept updates take (encoded event, topics and ID)",
            history_bytes.clone(),
        );
        let resume_not_found = Counter::default();
        registry.register(
            "resumes_not_found",
            "Resumes whose Last-Event-ID was not in history (unknown, or already dropped: \
             a sign that history is too short)",
            resume_not_found.clone(),
        );
        registry.register(
            "control_actions",
            "Control actions (disconnect, revoke) applied on this node",
            control.applied.clone(),
        );
        registry.register(
            "control_disconnects",
            "Streams ended by control actions on this node",
            control.disconnected.clone(),
        );
        let revocations = Gauge::default();
        registry.register(
            "revocations",
            "Token revocations in force on this node",
            revocations.clone(),
        );
        let shared = shared.then(|| SharedMetrics::register(&mut registry));
        Metrics {
            revocations,
            shared,
            registry,
            connections,
            subscriptions,
            published,
            bytes_written,
            rejected,
            latency,
            history_size,
            history_bytes,
            resume_not_found,
        }
    }

    /// Counts a connection as open until the guard drops.
    pub(crate) fn connection_opened(&self) -> OpenGuard {
        self.connections.inc();
        OpenGuard(self.connections.clone())
    }

    /// Counts an accepted update.
    pub(crate) fn published(&self) {
        self.published.inc();
    }

    /// Counts a refusal.
    pub(crate) fn rejected(&self, reason: &'static str) {
        self.rejected.get_or_create(&vec![("reason", reason)]).inc();
    }

    /// Records how long an accepted update took to reach every subscriber queue.
    pub(crate) fn delivery_latency(&self, latency: std::time::Duration) {
        self.latency.observe(latency.as_secs_f64());
    }

    /// Counts event-stream bytes handed to a subscriber connection.
    pub(crate) fn bytes_written(&self, bytes: usize) {
        self.bytes_written
            .inc_by(u64::try_from(bytes).unwrap_or(u64::MAX));
    }

    /// Counts a resume whose ID was not found in history.
    pub(crate) fn resume_not_found(&self) {
        self.resume_not_found.inc();
    }

    /// The metrics in the Prometheus text format, with the gauges read now.
    pub(crate) fn render(&self, readings: &Readings) -> String {
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.subscriptions.set(gauge(readings.subscriptions));
        self.history_size.set(gauge(readings.history_len));
        self.history_bytes.set(gauge(readings.history_bytes));
        self.revocations.set(gauge(readings.revocations));
        if let (Some(metrics), Some(stats)) = (&self.shared, &readings.shared) {
            metrics.set(stats);
        }
        let mut text = String::new();
        if let Err(error) = encode(&mut text, &self.registry) {
            tracing::error!(%error, "cannot render metrics");
        }
        text
    }
}
