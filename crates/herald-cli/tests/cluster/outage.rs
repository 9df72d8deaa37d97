//! The engine itself failing, on a private `redis-server` or `nats-server`: stopped mid-stream
//! then back empty, paused
//! (SIGSTOP) then thawed, and unreachable when the nodes start. Publishes are answered `503`
//! with `Retry-After` within the transport timeout (never a hang), `/readyz` says the node is
//! not ready, open streams keep their heartbeats, and the nodes recover by themselves.

use std::time::{Duration, Instant};

use crate::harness::PATIENCE;
use crate::harness::engine::{Engine, Private};
use crate::harness::http::Answer;
use crate::harness::node::{Node, cluster, start};
use crate::harness::sse::{Subscription, ids};

/// The nodes' transport timeout, and their heartbeat.
const TIMEOUT: Duration = Duration::from_secs(2);
const FLAGS: [&str; 4] = ["--transport-timeout", "2s", "--heartbeat", "300ms"];
/// What a loaded machine may add to the timeout before a 503 leaves.
const SLACK: Duration = Duration::from_secs(3);

/// A publish that must be refused for want of the shared log: `503` with a `Retry-After`, within
/// the timeout.
fn assert_refused(answer: &Answer, context: &str) {
    assert_eq!(answer.status, 503, "{context}: {answer:?}");
    let retry_after: u64 = answer
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{context}: no Retry-After in {answer:?}"));
    assert!(retry_after >= 1, "{context}: Retry-After {retry_after}");
    assert!(
        answer.elapsed <= TIMEOUT + SLACK,
        "{context}: answered after {:?}",
        answer.elapsed
    );
}

/// Every subscriber gets heartbeats, and nothing else, for a while: its stream stays open.
fn assert_kept_alive(subscribers: &mut [Subscription], context: &str) {
    for (n, subscriber) in subscribers.iter_mut().enumerate() {
        let (comments, events, ended) = subscriber.watch(Duration::from_millis(1500));
        assert!(!ended, "{context}: stream {n} ended");
        assert!(events.is_empty(), "{context}: stream {n} got {events:?}");
        assert!(
            comments >= 2,
            "{context}: stream {n}: {comments} heartbeats"
        );
    }
}

/// Waits until every node's `/readyz` answers `status`: when each did, counted from `since`.
fn readyz_within(nodes: &[Node], status: u16, since: Instant) -> Vec<Duration> {
    nodes
        .iter()
        .map(|n| {
            n.wait_readyz(status, PATIENCE);
            since.elapsed()
        })
        .collect()
}

fn publish_round_robin(nodes: &[Node], names: &[String]) {
    let mut clients: Vec<_> = nodes.iter().map(Node::http).collect();
    for (n, id) in names.iter().enumerate() {
        clients[n % nodes.len()].publish_ok("t", id, "x");
    }
}

fn names(prefix: &str, range: std::ops::RangeInclusive<usize>) -> Vec<String> {
    range.map(|n| format!("{prefix}-{n}")).collect()
}

fn the_engine_stopped_then_back_empty_refuses_publishes_then_ends_streams_to_resume(
    engine: Engine,
) {
    let Some(mut broker) = Private::start(engine) else {
        return;
    };
    let nodes = cluster(&broker.url(), broker.prefix(), &["a", "b"], &FLAGS);
    let mut subscribers: Vec<_> = nodes.iter().map(|n| n.subscribe(&["t"], None)).collect();
    publish_round_robin(&nodes, &names("p", 1..=4));
    for subscriber in &mut subscribers {
        assert_eq!(ids(&subscriber.events(4, PATIENCE)), names("p", 1..=4));
    }

    broker.stop();
    let stopped = Instant::now();
    let mut refused_in = Vec::new();
    for node in &nodes {
        let answer = node.http().publish("t", "x-1", "lost").expect("answered");
        assert_refused(
            &answer,
            &format!("node {} with {engine:?} stopped", node.name),
        );
        refused_in.push(answer.elapsed);
    }
    let not_ready_in = readyz_within(&nodes, 503, stopped);
    assert_kept_alive(&mut subscribers, &format!("{engine:?} stopped"));

    // Back, empty, on the same port; a publisher retrying at once lands in the new epoch before
    // the nodes may have noticed it.
    broker.launch();
    let back = Instant::now();
    let mut publisher = nodes[0].http();
    for id in names("q", 1..=8) {
        publisher.publish_retrying("t", &id, "x", PATIENCE);
    }
    let ready_in = readyz_within(&nodes, 200, back);
    // Every stream of the old epoch ends, with nothing of the new epoch delivered into it (its
    // subscriber would have missed the new epoch's first updates without knowing).
    for (n, subscriber) in subscribers.iter_mut().enumerate() {
        let events = subscriber.until_end(PATIENCE);
        assert!(events.is_empty(), "old stream {n} got {:?}", ids(&events));
    }
    for node in &nodes {
        node.wait_metric("herald_shared_log_epoch_changes_total", 1.0, PATIENCE);
    }
    // Delivery continues: an ID of the lost epoch is unknown, one of the new epoch resumes.
    for node in &nodes {
        let mut lost = node.subscribe(&["t"], Some("p-4"));
        assert_ne!(
            lost.last_event_id(),
            Some("p-4"),
            "p-4 was lost with the engine's data"
        );
        let mut resumed = node.subscribe(&["t"], Some("q-2"));
        assert_eq!(resumed.last_event_id(), Some("q-2"));
        node.http()
            .publish_ok("t", &format!("after-{}", node.name), "x");
        let after = format!("after-{}", node.name);
        let mut expected = names("q", 3..=8);
        if node.name == "b" {
            expected.push("after-a".to_owned());
        }
        assert_eq!(ids(&resumed.until(&after, PATIENCE)), expected);
        assert!(lost.until(&after, PATIENCE).is_empty());
    }
    println!(
        "measure: {engine:?} stopped: 503 in {refused_in:?}, /readyz 503 within {not_ready_in:?}; \
         back empty: ready again within {ready_in:?}, epoch change detected, old streams \
         ended, lost 0 acknowledged updates of the new epoch"
    );
}

fn the_engine_paused_answers_503_not_a_hang_then_recovers_without_loss(engine: Engine) {
    let Some(broker) = Private::start(engine) else {
        return;
    };
    let nodes = cluster(&broker.url(), broker.prefix(), &["a", "b"], &FLAGS);
    let mut subscribers: Vec<_> = nodes.iter().map(|n| n.subscribe(&["t"], None)).collect();
    publish_round_robin(&nodes, &names("p", 1..=3));
    for subscriber in &mut subscribers {
        assert_eq!(ids(&subscriber.events(3, PATIENCE)), names("p", 1..=3));
    }

    broker.pause();
    let paused = Instant::now();
    // Sent while Redis is frozen: refused, though Redis may apply them once thawed.
    let mut refused_in = Vec::new();
    for (node, id) in nodes.iter().zip(["x-1", "x-2"]) {
        let answer = node.http().publish("t", id, "paused").expect("answered");
        assert_refused(
            &answer,
            &format!("node {} with {engine:?} paused", node.name),
        );
        refused_in.push(answer.elapsed);
    }
    let not_ready_in = readyz_within(&nodes, 503, paused);
    assert_kept_alive(&mut subscribers, &format!("{engine:?} paused"));

    broker.resume();
    let thawed = Instant::now();
    let ready_in = readyz_within(&nodes, 200, thawed);
    // The publishers retry with the same IDs, each on the other node: stored once either way.
    nodes[1]
        .http()
        .publish_retrying("t", "x-1", "paused", PATIENCE);
    nodes[0]
        .http()
        .publish_retrying("t", "x-2", "paused", PATIENCE);
    nodes[0].http().publish_ok("t", "x-3", "x");
    let mut orders = Vec::new();
    for subscriber in &mut subscribers {
        let got = ids(&subscriber.events(3, PATIENCE));
        assert_eq!(got[2], "x-3");
        let mut first_two = got[..2].to_vec();
        first_two.sort();
        assert_eq!(first_two, ["x-1", "x-2"]);
        assert!(subscriber.watch(Duration::from_millis(500)).1.is_empty());
        orders.push(got);
    }
    assert_eq!(orders[0], orders[1], "one order on both nodes");
    for node in &nodes {
        assert_eq!(node.metric("herald_shared_log_epoch_changes_total"), 0.0);
    }
    println!(
        "measure: {engine:?} paused: 503 in {refused_in:?}, /readyz 503 within {not_ready_in:?}; \
         thawed: ready again within {ready_in:?}; lost 0, duplicated 0"
    );
}

fn a_node_started_while_the_engine_is_unreachable_is_not_ready_then_ready_once_it_answers(
    engine: Engine,
) {
    let Some(mut broker) = Private::reserve(engine) else {
        return;
    };
    let node = start(&broker.url(), broker.prefix(), "a", &FLAGS);
    node.wait_logged("cannot load the shared log");
    assert_eq!(node.readyz().expect("answers").status, 503);
    let answer = node.http().publish("t", "early", "x").expect("answered");
    assert_refused(&answer, &format!("{engine:?} unreachable at start"));
    // Said once, not at every retry.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(node.log_count("cannot load the shared log"), 1);

    broker.launch();
    let up = node.wait_ready(PATIENCE);
    let mut subscriber = node.subscribe(&["t"], None);
    node.http().publish_ok("t", "first", "x");
    assert_eq!(ids(&subscriber.events(1, PATIENCE)), ["first"]);
    println!(
        "measure: started without {engine:?}: 503 in {:?}; ready {up:?} after it came up",
        answer.elapsed
    );
}

crate::on_each_engine!(
    the_engine_stopped_then_back_empty_refuses_publishes_then_ends_streams_to_resume,
    the_engine_paused_answers_503_not_a_hang_then_recovers_without_loss,
    a_node_started_while_the_engine_is_unreachable_is_not_ready_then_ready_once_it_answers,
);
