//! The reports of `herald bench`: plain data filled by the runs, printed as an aligned table for
//! people or as one JSON line for scripts (`bench/compare.sh` reads those).

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latency percentiles, in microseconds.
#[derive(Debug, Serialize)]
pub(crate) struct Latency {
    pub(crate) p50_us: u64,
    pub(crate) p90_us: u64,
    pub(crate) p99_us: u64,
    pub(crate) max_us: u64,
}

impl Latency {
    /// The percentiles of `histogram` (zeros when it is empty).
    pub(crate) fn of(histogram: &Histogram<u64>) -> Latency {
        Latency {
            p50_us: histogram.value_at_quantile(0.50),
            p90_us: histogram.value_at_quantile(0.90),
            p99_us: histogram.value_at_quantile(0.99),
            max_us: histogram.max(),
        }
    }
}

/// The hub's memory and CPU, from /proc (with `--hub-pid`).
#[derive(Debug, Serialize)]
pub(crate) struct HubUsage {
    /// RSS before the first subscription.
    pub(crate) rss_before_bytes: u64,
    /// RSS with every subscription open and idle.
    pub(crate) rss_idle_bytes: u64,
    /// (idle − before) / connected subscriptions.
    pub(crate) memory_per_connection_bytes: u64,
    /// RSS once the updates went out (fan-out only).
    pub(crate) rss_after_bytes: Option<u64>,
    /// CPU seconds the hub spent while updates were published and delivered (fan-out only).
    pub(crate) cpu_seconds: Option<f64>,
    /// That CPU time over the wall time, in percent of one core (fan-out only).
    pub(crate) cpu_percent: Option<f64>,
}

/// What `herald bench connections` found.
#[derive(Debug, Serialize)]
pub(crate) struct ConnectionsReport {
    pub(crate) bench: &'static str,
    pub(crate) hub_url: String,
    pub(crate) subscribers_asked: u32,
    pub(crate) subscribers_connected: u64,
    pub(crate) subscribe_failures: u64,
    pub(crate) subscribers_dropped: u64,
    pub(crate) fd_limit: u64,
    pub(crate) hub: Option<HubUsage>,
    pub(crate) generator_rss_bytes: Option<u64>,
    pub(crate) errors: Vec<String>,
}

/// What `herald bench fanout` found.
#[derive(Debug, Serialize)]
pub(crate) struct FanoutReport {
    pub(crate) bench: &'static str,
    pub(crate) hub_url: String,
    pub(crate) publish_style: &'static str,
    pub(crate) subscribers_asked: u32,
    pub(crate) subscribers_connected: u64,
    pub(crate) subscribe_failures: u64,
    pub(crate) subscribers_dropped: u64,
    pub(crate) topics: u32,
    pub(crate) messages: u64,
    pub(crate) payload_bytes: usize,
    pub(crate) rate_asked: f64,
    pub(crate) rate_achieved: f64,
    pub(crate) publish_accepted: u64,
    pub(crate) publish_failed: u64,
    pub(crate) deliveries_expected: u64,
    pub(crate) deliveries_received: u64,
    pub(crate) lost: u64,
    pub(crate) duplicates: u64,
    /// Subscribers that got every update in another order than the others of their topic.
    pub(crate) out_of_order: u64,
    /// Deliveries that came after an update sent later (concurrent publishes raced at the hub).
    pub(crate) reordered: u64,
    /// Events that were not this run's updates.
    pub(crate) foreign: u64,
    pub(crate) deliveries_per_second: f64,
    pub(crate) latency: Latency,
    pub(crate) duration_seconds: f64,
    pub(crate) hub: Option<HubUsage>,
    pub(crate) generator_cpu_seconds: f64,
    pub(crate) generator_cpu_percent: f64,
    pub(crate) fd_limit: u64,
    pub(crate) errors: Vec<String>,
}

impl FanoutReport {
    /// Every subscriber connected and got every update once, in the same order, and every
    /// publish was accepted.
    pub(crate) fn clean(&self) -> bool {
        self.subscribers_connected == u64::from(self.subscribers_asked)
            && self.subscribers_dropped == 0
            && self.lost == 0
            && self.duplicates == 0
            && self.out_of_order == 0
            && self.foreign == 0
            && self.publish_failed == 0
    }

    /// The table for people.
    pub(crate) fn table(&self) -> String {
        let mut rows = vec![
            ("hub", self.hub_url.clone()),
            ("publish style", self.publish_style.to_owned()),
            (
                "subscribers",
                connected(
                    self.subscribers_connected,
                    self.subscribers_asked,
                    self.subscribers_dropped,
                ),
            ),
            ("topics", self.topics.to_string()),
            (
                "updates",
                format!(
                    "{} x {} bytes, accepted {}, refused {}",
                    self.messages, self.payload_bytes, self.publish_accepted, self.publish_failed
                ),
            ),
            (
                "publish rate",
                format!(
                    "{:.0}/s achieved of {:.0}/s asked",
                    self.rate_achieved, self.rate_asked
                ),
            ),
            (
                "deliveries",
                format!(
                    "{} received of {} expected",
                    self.deliveries_received, self.deliveries_expected
                ),
            ),
            (
                "lost / duplicated",
                format!("{} / {}", self.lost, self.duplicates),
            ),
            (
                "out of order",
                format!(
                    "{} subscribers ({} deliveries overtaken by a later publish)",
                    self.out_of_order, self.reordered
                ),
            ),
            (
                "deliveries per second",
                format!("{:.0}", self.deliveries_per_second),
            ),
            (
                "latency p50/p90/p99/max",
                format!(
                    "{} / {} / {} / {}",
                    ms(self.latency.p50_us),
                    ms(self.latency.p90_us),
                    ms(self.latency.p99_us),
                    ms(self.latency.max_us)
                ),
            ),
            ("duration", format!("{:.2} s", self.duration_seconds)),
        ];
        hub_rows(&mut rows, self.hub.as_ref());
        rows.push((
            "load generator CPU",
            format!(
                "{:.2} s ({:.0}% of a core)",
                self.generator_cpu_seconds, self.generator_cpu_percent
            ),
        ));
        for error in &self.errors {
            rows.push(("error", error.clone()));
        }
        render(&rows)
    }
}

impl ConnectionsReport {
    /// Every subscription opened and stayed open.
    pub(crate) fn clean(&self) -> bool {
        self.subscribers_connected == u64::from(self.subscribers_asked)
            && self.subscribers_dropped == 0
    }

    /// The table for people.
    pub(crate) fn table(&self) -> String {
        let mut rows = vec![
            ("hub", self.hub_url.clone()),
            (
                "subscribers",
                connected(
                    self.subscribers_connected,
                    self.subscribers_asked,
                    self.subscribers_dropped,
                ),
            ),
        ];
        hub_rows(&mut rows, self.hub.as_ref());
        if let Some(rss) = self.generator_rss_bytes {
            rows.push(("load generator RSS", kib(rss)));
        }
        for error in &self.errors {
            rows.push(("error", error.clone()));
        }
        render(&rows)
    }
}

fn connected(connected: u64, asked: u32, dropped: u64) -> String {
    format!("{connected} connected of {asked} asked, {dropped} dropped")
}

fn hub_rows(rows: &mut Vec<(&'static str, String)>, hub: Option<&HubUsage>) {
    let Some(hub) = hub else {
        rows.push(("hub memory", "not measured (give --hub-pid)".to_owned()));
        return;
    };
    rows.push((
        "hub RSS before / idle",
        format!(
            "{} / {}",
            kib(hub.rss_before_bytes),
            kib(hub.rss_idle_bytes)
        ),
    ));
    rows.push((
        "memory per connection",
        format!("{:.1} KiB", hub.memory_per_connection_bytes as f64 / 1024.0),
    ));
    if let Some(after) = hub.rss_after_bytes {
        rows.push(("hub RSS after updates", kib(after)));
    }
    if let (Some(seconds), Some(percent)) = (hub.cpu_seconds, hub.cpu_percent) {
        rows.push((
            "hub CPU",
            format!("{seconds:.2} s ({percent:.0}% of a core)"),
        ));
    }
}

fn kib(bytes: u64) -> String {
    format!("{} KiB", bytes / 1024)
}

fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

fn render(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (name, value) in rows {
        let _ = writeln!(out, "{name:<width$}  {value}");
    }
    out
}
