//! A node of a cluster: a real `herald serve --transport redis://...` (or `nats://...`) process, its log kept (and
//! shown when a test fails), probed over HTTP, killed, paused and resumed by PID.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::http::{Answer, Http, KEY};
use super::sse::{Subscription, subscribe, subscribe_with};
use super::{PATIENCE, signal, wait_for};
use crate::support::{ServeProcess, herald, spawn_serve};

/// A running `herald serve`, killed when dropped.
pub(crate) struct Node {
    pub(crate) name: String,
    authority: String,
    pid: u32,
    process: ServeProcess,
    log: Arc<Mutex<Vec<String>>>,
    paused: AtomicBool,
}

/// Starts a node named `name` on the Redis at `url`, keys under `prefix`, with `extra` flags
/// after the common ones (anonymous subscribers, no publish rate limit).
pub(crate) fn start(url: &str, prefix: &str, name: &str, extra: &[&str]) -> Node {
    let mut process = spawn_serve(
        herald()
            .args([
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--jwt-key",
                KEY,
                "--anonymous",
            ])
            .args(["--publish-rate", "0", "--transport", url])
            .args(["--transport-prefix", prefix, "--node-id", name])
            .args(extra),
        1,
    );
    let log = Arc::new(Mutex::new(process.banner.clone()));
    if let Some(lines) = process.take_stderr() {
        let log = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                log.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
    }
    Node {
        name: name.to_owned(),
        authority: process.authority().to_owned(),
        pid: process.child().id(),
        process,
        log,
        paused: AtomicBool::new(false),
    }
}

impl Node {
    /// The hub's URL (`http://.../.well-known/mercure`).
    pub(crate) fn hub_url(&self) -> String {
        format!("http://{}/.well-known/mercure", self.authority)
    }

    /// A client for publishes and probes.
    pub(crate) fn http(&self) -> Http {
        Http::new(&self.authority)
    }

    /// Subscribes to `topics`, resuming after `last_event_id` if given.
    pub(crate) fn subscribe(&self, topics: &[&str], last_event_id: Option<&str>) -> Subscription {
        subscribe(&self.authority, topics, last_event_id)
    }

    /// Subscribes to `topics` with this bearer token.
    pub(crate) fn subscribe_as(&self, topics: &[&str], token: &str) -> Subscription {
        subscribe_with(&self.authority, topics, None, Some(token))
    }

    /// `host:port`.
    pub(crate) fn authority(&self) -> &str {
        &self.authority
    }

    /// A client sending `token`.
    pub(crate) fn http_as(&self, token: &str) -> Http {
        Http::with_token(&self.authority, token)
    }

    /// `GET /readyz` once: `None` when the node does not answer.
    pub(crate) fn readyz(&self) -> Option<Answer> {
        self.http().get("/readyz").ok()
    }

    /// Waits until `/readyz` answers `200`; how long it took.
    pub(crate) fn wait_ready(&self, within: Duration) -> Duration {
        self.wait_readyz(200, within)
    }

    /// Waits until `/readyz` answers `status`; how long it took.
    pub(crate) fn wait_readyz(&self, status: u16, within: Duration) -> Duration {
        let what = format!("{}: /readyz {status}", self.name);
        wait_for(&what, within, || {
            self.readyz().filter(|a| a.status == status).map(|_| ())
        })
        .1
    }

    /// The value of the metric `name` (the first sample whose name is exactly it).
    pub(crate) fn metric(&self, name: &str) -> f64 {
        let answer = self.http().get("/metrics").expect("/metrics answers");
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer
            .body
            .lines()
            .find_map(|line| {
                let rest = line.strip_prefix(name)?;
                let value = if rest.starts_with('{') {
                    rest.split_once('}')?.1
                } else {
                    rest
                };
                value.split_whitespace().next()?.parse().ok()
            })
            .unwrap_or_else(|| panic!("{}: no metric {name} in\n{}", self.name, answer.body))
    }

    /// Waits until the metric `name` is at least `at_least`; how long it took.
    pub(crate) fn wait_metric(&self, name: &str, at_least: f64, within: Duration) -> Duration {
        let what = format!("{}: {name} >= {at_least}", self.name);
        wait_for(&what, within, || {
            (self.metric(name) >= at_least).then_some(())
        })
        .1
    }

    /// Whether a line of the node's log contains `text`.
    pub(crate) fn logged(&self, text: &str) -> bool {
        self.log_count(text) > 0
    }

    /// How many lines of the node's log contain `text`.
    pub(crate) fn log_count(&self, text: &str) -> usize {
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|line| line.contains(text))
            .count()
    }

    /// Waits until a line of the node's log contains `text`.
    pub(crate) fn wait_logged(&self, text: &str) {
        let what = format!("{}: a log line with {text:?}", self.name);
        wait_for(&what, PATIENCE, || self.logged(text).then_some(()));
    }

    /// `kill -9`, and reaped.
    pub(crate) fn kill_9(&mut self) {
        let child = self.process.child();
        child.kill().expect("kill -9");
        child.wait().expect("reaped");
    }

    /// Freezes the process (SIGSTOP).
    pub(crate) fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
        signal(self.pid, "STOP");
    }

    /// Thaws the process (SIGCONT).
    pub(crate) fn resume(&self) {
        signal(self.pid, "CONT");
        self.paused.store(false, Ordering::SeqCst);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if self.paused.load(Ordering::SeqCst) {
            let _ = std::process::Command::new("kill")
                .args(["-CONT", &self.pid.to_string()])
                .status();
        }
        if std::thread::panicking() {
            let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
            eprintln!("--- log of node {} ---\n{}", self.name, log.join("\n"));
        }
    }
}

/// Starts `names.len()` nodes on one Redis and waits until each is ready.
pub(crate) fn cluster(url: &str, prefix: &str, names: &[&str], extra: &[&str]) -> Vec<Node> {
    let nodes: Vec<Node> = names
        .iter()
        .map(|name| start(url, prefix, name, extra))
        .collect();
    for node in &nodes {
        node.wait_ready(PATIENCE);
    }
    nodes
}
