//! The numbers behind the report: delivery tallies merged across tasks, latency histograms,
//! and a process's memory and CPU time read from /proc (the hub's, children included, and the
//! load generator's own).

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use hdrhistogram::Histogram;

/// The kernel's clock ticks per second for /proc times (`USER_HZ`, 100 on Linux).
const TICKS_PER_SECOND: u64 = 100;

/// Nanoseconds since the epoch: the clock the publisher stamps updates with and subscribers,
/// possibly in another process, compare against.
pub(crate) fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A latency histogram in microseconds, 1 µs to 10 min, 3 significant digits.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("constant, valid histogram bounds")
}

/// Delivery counts over a set of subscribers.
#[derive(Debug)]
pub(crate) struct Tallies {
    /// Distinct updates received.
    pub(crate) received: u64,
    /// Updates a subscriber never got.
    pub(crate) lost: u64,
    /// Updates a subscriber got more than once.
    pub(crate) duplicates: u64,
    /// Updates that came after one sent later (two concurrent publishes raced).
    pub(crate) reordered: u64,
    /// Events that were not this run's updates for that subscriber's topic.
    pub(crate) foreign: u64,
    /// How many complete subscribers saw each (topic, order fingerprint).
    pub(crate) orders: HashMap<(usize, u64), u64>,
    /// Publish-to-delivery latency in microseconds.
    pub(crate) latency: Histogram<u64>,
}

impl Default for Tallies {
    fn default() -> Self {
        Tallies {
            received: 0,
            lost: 0,
            duplicates: 0,
            reordered: 0,
            foreign: 0,
            orders: HashMap::new(),
            latency: new_histogram(),
        }
    }
}

impl Tallies {
    /// Adds another task's tallies.
    pub(crate) fn merge(&mut self, other: Tallies) {
        self.received += other.received;
        self.lost += other.lost;
        self.duplicates += other.duplicates;
        self.reordered += other.reordered;
        self.foreign += other.foreign;
        for (key, count) in other.orders {
            *self.orders.entry(key).or_default() += count;
        }
        // Same bounds on both sides: adding cannot fail.
        let _ = self.latency.add(&other.latency);
    }

    /// Subscribers that got every update but in another order than most subscribers of their
    /// topic (the hub's order is the one they must all agree on).
    pub(crate) fn out_of_order(&self) -> u64 {
        let mut by_topic: HashMap<usize, (u64, u64)> = HashMap::new();
        for (&(topic, _), &count) in &self.orders {
            let (total, most) = by_topic.entry(topic).or_default();
            *total += count;
            *most = (*most).max(count);
        }
        by_topic.values().map(|(total, most)| total - most).sum()
    }
}

/// Memory and CPU time of a process and its children, at one moment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProcSample {
    /// Resident set size, bytes.
    pub(crate) rss: u64,
    /// User plus system CPU time.
    pub(crate) cpu: Duration,
}

/// Reads `pid` and its descendants (an nginx master and its workers).
pub(crate) fn sample_tree(pid: u32) -> anyhow::Result<ProcSample> {
    let mut pids = vec![pid];
    let mut next = 0;
    let parents = parent_map();
    while next < pids.len() {
        let parent = pids[next];
        pids.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        next += 1;
    }
    let mut total = sample(&pid.to_string())
        .with_context(|| format!("cannot read /proc/{pid} (is --hub-pid right?)"))?;
    for child in &pids[1..] {
        // A child may exit between the listing and the read.
        if let Ok(child) = sample(&child.to_string()) {
            total.rss += child.rss;
            total.cpu += child.cpu;
        }
    }
    Ok(total)
}

/// This process's own CPU time.
pub(crate) fn own_cpu() -> Duration {
    cpu_time("self").unwrap_or_default()
}

fn sample(pid: &str) -> anyhow::Result<ProcSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kb = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse::<u64>().ok())
        .context("no VmRSS in /proc status")?;
    Ok(ProcSample {
        rss: rss_kb * 1024,
        cpu: cpu_time(pid)?,
    })
}

/// The fields of /proc/PID/stat after the command name (which may hold spaces).
fn stat_fields(pid: &str) -> anyhow::Result<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = stat.rsplit_once(')').context("malformed /proc stat")?.1;
    Ok(rest.split_whitespace().map(str::to_owned).collect())
}

fn cpu_time(pid: &str) -> anyhow::Result<Duration> {
    let fields = stat_fields(pid)?;
    // After the name: state(0) ppid(1) ... utime(11) stime(12).
    let ticks = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .context("malformed /proc stat")
    };
    let total = ticks(11)? + ticks(12)?;
    Ok(Duration::from_millis(total * 1000 / TICKS_PER_SECOND))
}

/// (pid, parent pid) of every process.
fn parent_map() -> Vec<(u32, u32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| {
        let name = entry.ok()?.file_name().into_string().ok()?;
        let pid: u32 = name.parse().ok()?;
        let ppid = stat_fields(&name).ok()?.get(1)?.parse().ok()?;
        Some((pid, ppid))
    })
    .collect()
}
