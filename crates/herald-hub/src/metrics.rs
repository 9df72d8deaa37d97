//! The hub's Prometheus metrics: one registry per hub, updated by the server, the HTTP
//! handlers and the fan-out, rendered in the text exposition format at `/metrics`.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::fanout::Fanout;

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
    /// The metrics of a hub whose fan-out counts its own deliveries and slow consumers.
    pub(crate) fn new(fanout: &Fanout) -> Metrics {
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
        Metrics {
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
    pub(crate) fn render(
        &self,
        subscriptions: usize,
        history_size: usize,
        history_bytes: usize,
    ) -> String {
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.subscriptions.set(gauge(subscriptions));
        self.history_size.set(gauge(history_size));
        self.history_bytes.set(gauge(history_bytes));
        let mut text = String::new();
        if let Err(error) = encode(&mut text, &self.registry) {
            tracing::error!(%error, "cannot render metrics");
        }
        text
    }
}
