//! The shared transport on a real Redis and a real NATS JetStream, in process: hubs under one
//! prefix mirror one log. The whole cluster, with faults injected into real processes and into
//! the engines themselves, is tested in `crates/herald-cli/tests/cluster`.
//!
//! These tests need `HERALD_TEST_REDIS_URL` and `HERALD_TEST_NATS_URL` (each test uses a fresh
//! prefix, removed at the end): without them they are skipped with a printed reason, except
//! under `CI=true`, where they fail.
#![allow(
    clippy::unwrap_used,
    clippy::print_stderr,
    missing_docs,
    unreachable_pub,
    dead_code
)]

#[path = "../protocol/common.rs"]
mod common;

use std::time::Duration;

use common::{STEP, TestHub, get, publish_ok, start, subscribe};
use http::StatusCode;

/// Whether a missing engine fails the test rather than skipping it.
fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The test's keys on the machine's Redis: `{prefix}:*`, deleted when dropped.
struct Keys {
    url: String,
    prefix: String,
}

impl Keys {
    /// `None` (the test is skipped) without `HERALD_TEST_REDIS_URL`, outside CI.
    fn new() -> Option<Keys> {
        let Some(url) = std::env::var("HERALD_TEST_REDIS_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            assert!(!required(), "CI=true and HERALD_TEST_REDIS_URL is not set");
            eprintln!("skipped: HERALD_TEST_REDIS_URL is not set (e.g. redis://127.0.0.1:6379)");
            return None;
        };
        let keys = Keys {
            prefix: format!("herald-hub-test-{}", uuid::Uuid::new_v4().simple()),
            url,
        };
        let pong: String = redis::cmd("PING")
            .query(&mut keys.connection())
            .expect("PING");
        assert_eq!(pong, "PONG");
        Some(keys)
    }

    fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url.as_str())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(5)))
            .unwrap_or_else(|e| panic!("HERALD_TEST_REDIS_URL={}: unreachable: {e}", self.url))
    }

    /// Deletes every key of the prefix: the log loses its data, as when Redis restarts empty
    /// or fails over to a replica that had not received it.
    fn delete(&self) {
        let mut connection = self.connection();
        let mut cursor = 0u64;
        let mut found = Vec::new();
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{{{}}}:*", self.prefix))
                .arg("COUNT")
                .arg(1000)
                .query(&mut connection)
                .expect("SCAN");
            found.extend(keys);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        if !found.is_empty() {
            let _: u64 = redis::cmd("DEL")
                .arg(&found)
                .query(&mut connection)
                .expect("DEL");
        }
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        self.delete();
    }
}

/// The test's streams on the machine's NATS (`<prefix>-*`), deleted when dropped.
struct Streams {
    url: String,
    prefix: String,
}

impl Streams {
    /// `None` (the test is skipped) without `HERALD_TEST_NATS_URL`, outside CI.
    async fn new() -> Option<Streams> {
        let Some(url) = std::env::var("HERALD_TEST_NATS_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            assert!(!required(), "CI=true and HERALD_TEST_NATS_URL is not set");
            eprintln!("skipped: HERALD_TEST_NATS_URL is not set (e.g. nats://127.0.0.1:4222)");
            return None;
        };
        let streams = Streams {
            prefix: format!("herald-hub-test-{}", uuid::Uuid::new_v4().simple()),
            url,
        };
        let js = streams.context().await;
        let info = js
            .client()
            .request("$JS.API.INFO", "".into())
            .await
            .expect("JetStream answers");
        let info: serde_json::Value = serde_json::from_slice(&info.payload).expect("JSON");
        assert!(info.get("error").is_none(), "JetStream: {info}");
        Some(streams)
    }

    async fn context(&self) -> async_nats::jetstream::Context {
        let client = async_nats::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("HERALD_TEST_NATS_URL={}: unreachable: {e}", self.url));
        async_nats::jetstream::new(client)
    }

    /// Deletes the streams: the log loses its data, as when a NATS server restarts without
    /// its store.
    async fn delete(&self) {
        let js = self.context().await;
        for channel in ["updates", "events", "control"] {
            let _ = js.delete_stream(format!("{}-{channel}", self.prefix)).await;
        }
        let _ = js.delete_stream(format!("KV_{}-nodes", self.prefix)).await;
    }
}

/// The engine a test runs on.
enum Log {
    Redis(Keys),
    Nats(Streams),
}

impl Log {
    fn url(&self) -> &str {
        match self {
            Log::Redis(keys) => &keys.url,
            Log::Nats(streams) => &streams.url,
        }
    }

    fn prefix(&self) -> &str {
        match self {
            Log::Redis(keys) => &keys.prefix,
            Log::Nats(streams) => &streams.prefix,
        }
    }

    async fn delete(&self) {
        match self {
            Log::Redis(keys) => keys.delete(),
            Log::Nats(streams) => streams.delete().await,
        }
    }
}

/// A hub of the cluster on `log`, once it has loaded it.
async fn node(log: &Log, name: &str) -> TestHub {
    let hub = start(|config| {
        config.anonymous = true;
        config.transport = Some(log.url().to_owned());
        config.transport_prefix = log.prefix().to_owned();
        config.node_id = Some(name.to_owned());
    })
    .await;
    let deadline = tokio::time::Instant::now() + STEP * 4;
    while get(hub.addr, "/readyz", &[]).await.status != StatusCode::OK {
        assert!(tokio::time::Instant::now() < deadline, "{name} not ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    hub
}

async fn metric(hub: &TestHub, name: &str) -> f64 {
    let body = get(hub.addr, "/metrics", &[]).await.body;
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {body}"))
}

/// Regression: a node whose cursor was past the first offsets of a new log (Redis restarted
/// empty and publishes resumed) read the new log's entries past its cursor as the continuation
/// of the old one: its subscribers got them, silently missing the new log's first updates.
/// Every entry carries its log's epoch now, and one of another epoch makes the node reload and
/// disconnect its subscribers instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_log_that_lost_its_data_is_never_read_as_the_continuation_of_the_old_one() {
    let Some(keys) = Keys::new() else {
        return;
    };
    a_log_that_lost_its_data_is_never_read_as_the_continuation_of_the_old_one(&Log::Redis(keys))
        .await;
}

/// The same on NATS: streams deleted (a server restarted without its store) and created anew
/// by the next publish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_log_that_lost_its_data_is_never_read_as_the_continuation_of_the_old_one() {
    let Some(streams) = Streams::new().await else {
        return;
    };
    let log = Log::Nats(streams);
    a_log_that_lost_its_data_is_never_read_as_the_continuation_of_the_old_one(&log).await;
    log.delete().await;
}

async fn a_log_that_lost_its_data_is_never_read_as_the_continuation_of_the_old_one(log: &Log) {
    let (a, b) = (node(log, "a").await, node(log, "b").await);
    let path = "/.well-known/mercure?topic=t";
    let mut streams = [
        subscribe(a.addr, path, &[]).await,
        subscribe(b.addr, path, &[]).await,
    ];
    for n in 1..=4 {
        publish_ok(a.addr, &[("topic", "t"), ("id", &format!("old-{n}"))]).await;
    }
    for stream in &mut streams {
        for n in 1..=4 {
            assert_eq!(stream.event().await.last_event_id(), format!("old-{n}"));
        }
    }

    // Both readers wait after offset 4 when the log loses its data; the new log soon holds
    // more than that.
    log.delete().await;
    for n in 1..=8 {
        publish_ok(a.addr, &[("topic", "t"), ("id", &format!("new-{n}"))]).await;
    }
    for (stream, node) in streams.iter_mut().zip(["a", "b"]) {
        let events = stream.until_end(STEP * 2).await;
        let ids: Vec<_> = events
            .iter()
            .map(|e| e.last_event_id().to_owned())
            .collect();
        assert!(ids.is_empty(), "node {node}'s old stream got {ids:?}");
    }
    for hub in [&a, &b] {
        assert_eq!(
            metric(hub, "herald_shared_log_epoch_changes_total").await,
            1.0
        );
        // The new log is served whole.
        let mut resumed = subscribe(hub.addr, path, &[("last-event-id", "new-2")]).await;
        assert_eq!(resumed.headers["last-event-id"], "new-2");
        for n in 3..=8 {
            assert_eq!(resumed.event().await.last_event_id(), format!("new-{n}"));
        }
    }
}
