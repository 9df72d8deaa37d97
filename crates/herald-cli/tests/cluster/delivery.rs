//! Nodes that behave as one hub while nothing fails: every update reaches every subscriber of
//! every node once, in the log's order; a subscriber resumes on any node, even from an update
//! published on another node an instant before; a node started late serves old IDs from the
//! tail it loaded; a retried publish is stored once on whichever node it lands.

use std::sync::Barrier;
use std::time::Duration;

use crate::harness::engine::{Engine, Private, Shared};
use crate::harness::http::Http;
use crate::harness::node::{Node, cluster, start};
use crate::harness::sse::{Subscription, ids};
use crate::harness::{PATIENCE, assert_no_duplicate, assert_writers_in_order};

/// Writers per node in the concurrent test, and updates per writer.
const WRITERS: usize = 3;
const PER_WRITER: usize = 60;

fn topic_of(n: usize) -> &'static str {
    if n.is_multiple_of(2) { "t1" } else { "t2" }
}

fn three_nodes_deliver_every_update_once_to_every_subscriber_in_one_order(engine: Engine) {
    let Some(broker) = Shared::get(engine) else {
        return;
    };
    let nodes = cluster(
        broker.url(),
        broker.prefix(),
        &["a", "b", "c"],
        &["--subscriber-queue", "10000"],
    );
    let selections: [&[&str]; 3] = [&["t1"], &["t2"], &["t1", "t2"]];
    let mut subscribers: Vec<(String, &[&str], Subscription)> = Vec::new();
    for node in &nodes {
        for topics in selections {
            subscribers.push((node.name.clone(), topics, node.subscribe(topics, None)));
        }
    }
    // Every writer of every node at once.
    let mut topic = std::collections::HashMap::new();
    std::thread::scope(|scope| {
        for node in &nodes {
            for w in 0..WRITERS {
                scope.spawn(move || {
                    let mut http = node.http();
                    for n in 0..PER_WRITER {
                        let id = format!("{}{w}-{n}", node.name);
                        http.publish_ok(topic_of(n), &id, &format!("data of {id}"));
                    }
                });
            }
        }
    });
    for node in &nodes {
        for w in 0..WRITERS {
            for n in 0..PER_WRITER {
                topic.insert(format!("{}{w}-{n}", node.name), topic_of(n));
            }
        }
    }
    nodes[0]
        .http()
        .publish_form(&[
            ("topic", "t1"),
            ("topic", "t2"),
            ("id", "end"),
            ("data", "end"),
        ])
        .map(|a| assert_eq!(a.status, 200, "{}", a.body))
        .expect("the marker is published");

    // The log holds every update once, each writer's in the order it was acknowledged.
    let log: Vec<String> = broker.log_ids();
    assert_eq!(log.len(), topic.len() + 1, "the log holds every update");
    assert_no_duplicate(&log, "the log");
    assert_writers_in_order(&log, "the log");
    assert_eq!(log.last().map(String::as_str), Some("end"));

    for (node, topics, subscriber) in &mut subscribers {
        let context = format!("subscriber of {topics:?} on node {node}");
        let events = subscriber.until("end", PATIENCE * 2);
        for event in &events {
            assert_eq!(event.data, format!("data of {}", event.id), "{context}");
        }
        // Exactly the log's updates of its topics, in the log's order: so once each, and in
        // one and the same order on every node.
        let expected: Vec<&String> = log
            .iter()
            .filter(|id| topic.get(id.as_str()).is_some_and(|t| topics.contains(t)))
            .collect();
        let got = ids(&events);
        assert_eq!(got.len(), expected.len(), "{context}: how many");
        assert!(
            got.iter().eq(expected.iter().copied()),
            "{context}: not the log's order"
        );
    }
}

fn a_subscriber_cut_from_one_node_resumes_on_another_with_exactly_the_missed_updates(
    engine: Engine,
) {
    let Some(broker) = Shared::get(engine) else {
        return;
    };
    let nodes = cluster(broker.url(), broker.prefix(), &["a", "b", "c"], &[]);
    let mut clients: Vec<_> = nodes.iter().map(|n| n.http()).collect();
    let mut publish = |n: usize| clients[n % 3].publish_ok("t", &format!("m-{n}"), "x");
    let names = |range: std::ops::RangeInclusive<usize>| -> Vec<String> {
        range.map(|n| format!("m-{n}")).collect()
    };

    let mut first = nodes[0].subscribe(&["t"], None);
    (1..=5).for_each(&mut publish);
    assert_eq!(ids(&first.events(5, PATIENCE)), names(1..=5));
    first.cut();
    // Published through every node while the subscriber is away.
    (6..=15).for_each(&mut publish);

    let mut resumed = nodes[1].subscribe(&["t"], Some("m-5"));
    assert_eq!(resumed.last_event_id(), Some("m-5"), "m-5 is known on b");
    publish(16);
    assert_eq!(
        ids(&resumed.events(11, PATIENCE)),
        names(6..=16),
        "the missed updates, then live ones, without gap or duplicate"
    );
    assert!(resumed.watch(Duration::from_millis(300)).1.is_empty());
}

/// Publishes `f-<round>` through `on_a` and resumes from it at once on `c`, which may not have
/// read it yet (the resume must wait for c's reader); then `g-<round>` through `on_b` must be
/// exactly what comes.
fn resume_at_once(c: &Node, on_a: &mut Http, on_b: &mut Http, round: usize) {
    let just_published = format!("f-{round}");
    on_a.publish_ok("t", &just_published, "on a");
    let mut resumed = c.subscribe(&["t"], Some(&just_published));
    assert_eq!(
        resumed.last_event_id(),
        Some(just_published.as_str()),
        "round {round}: c answered an ID published on a an instant before as unknown"
    );
    let next = format!("g-{round}");
    on_b.publish_ok("t", &next, "on b");
    assert_eq!(
        ids(&resumed.events(1, PATIENCE)),
        [next],
        "round {round}: exactly what came after"
    );
}

fn resumes_on_every_node_while_publishes_flow_join_live_delivery_without_gap_or_duplicate(
    engine: Engine,
) {
    let Some(broker) = Shared::get(engine) else {
        return;
    };
    let nodes = cluster(
        broker.url(),
        broker.prefix(),
        &["a", "b", "c"],
        &["--subscriber-queue", "10000"],
    );
    let latest = std::sync::Mutex::new(String::new());
    let resumes = std::thread::scope(|scope| {
        for node in [&nodes[0], &nodes[2]] {
            let latest = &latest;
            scope.spawn(move || {
                let mut http = node.http();
                for n in 0..200 {
                    let id = format!("{}0-{n}", node.name);
                    http.publish_ok("t", &id, "x");
                    *latest.lock().expect("lock") = id;
                }
            });
        }
        // Resumes from the newest acknowledged update, on every node in turn, while the
        // writers go on.
        let mut resumes = Vec::new();
        for round in 0..12 {
            std::thread::sleep(Duration::from_millis(25));
            let from = latest.lock().expect("lock").clone();
            if from.is_empty() {
                continue;
            }
            let subscription = nodes[round % 3].subscribe(&["t"], Some(&from));
            resumes.push((from, round % 3, subscription));
        }
        resumes
    });
    nodes[1].http().publish_ok("t", "end", "end");
    let log: Vec<String> = broker.log_ids();
    assert!(resumes.len() >= 6, "{} resumes", resumes.len());
    for (from, node, mut subscription) in resumes {
        let context = format!("resume from {from} on {}", nodes[node].name);
        assert_eq!(
            subscription.last_event_id(),
            Some(from.as_str()),
            "{context}"
        );
        let at = log.iter().position(|id| *id == from).expect("in the log");
        assert_eq!(
            ids(&subscription.until("end", PATIENCE)),
            log[at + 1..log.len() - 1],
            "{context}"
        );
    }
}

fn a_resume_on_one_node_of_an_id_published_an_instant_before_on_another_is_exact(engine: Engine) {
    let Some(broker) = Shared::get(engine) else {
        return;
    };
    let nodes = cluster(broker.url(), broker.prefix(), &["a", "b", "c"], &[]);
    let (mut on_a, mut on_b) = (nodes[0].http(), nodes[1].http());
    for round in 0..25 {
        resume_at_once(&nodes[2], &mut on_a, &mut on_b, round);
    }
    assert_eq!(nodes[2].metric("herald_resumes_not_found_total"), 0.0);
}

fn a_node_whose_reader_is_held_back_waits_for_it_on_a_resume_and_on_a_retry(engine: Engine) {
    let Some(broker) = Private::start(engine) else {
        return;
    };
    let nodes = cluster(&broker.url(), broker.prefix(), &["a", "b", "c"], &[]);
    let (mut on_a, mut on_b) = (nodes[0].http(), nodes[1].http());
    let mut held_back = 0;
    for round in 0..10 {
        // The readers reconnect (after a short backoff) before they read anything more: c
        // cannot have read the next update when the resume comes.
        std::thread::sleep(Duration::from_millis(200));
        held_back += broker.cut_readers();
        resume_at_once(&nodes[2], &mut on_a, &mut on_b, round);
    }
    assert!(held_back >= 10, "readers held back: {held_back}");
    assert_eq!(nodes[2].metric("herald_resumes_not_found_total"), 0.0);

    // A retry on a node that has not read the first attempt yet: the first attempt decides,
    // once read, so the same update is answered 200 and another one 409.
    // (From the last update, so that a's reader, held back too, has read it: a subscription
    // without Last-Event-ID starts where its node has read up to, which may be behind the log.)
    let mut subscriber = nodes[0].subscribe(&["t"], Some("g-9"));
    let mut on_c = nodes[2].http();
    let mut expected = Vec::new();
    for round in 0..5 {
        std::thread::sleep(Duration::from_millis(200));
        broker.cut_readers();
        let id = format!("r-{round}");
        on_a.publish_ok("t", &id, "same");
        on_c.publish_ok("t", &id, "same");
        let answer = on_b.publish("t", &id, "other").expect("answered");
        assert_eq!(answer.status, 409, "round {round}: {answer:?}");
        expected.push(id);
    }
    on_a.publish_ok("t", "end", "end");
    assert_eq!(ids(&subscriber.until("end", PATIENCE)), expected);
}

fn a_node_started_late_serves_resumes_of_old_ids_from_the_tail_it_loaded(engine: Engine) {
    let Some(broker) = Shared::get(engine) else {
        return;
    };
    let nodes = cluster(broker.url(), broker.prefix(), &["a", "b"], &[]);
    let mut clients: Vec<_> = nodes.iter().map(|n| n.http()).collect();
    let names = |range: std::ops::RangeInclusive<usize>| -> Vec<String> {
        range.map(|n| format!("l-{n}")).collect()
    };
    for n in 1..=40 {
        clients[n % 2].publish_ok("t", &format!("l-{n}"), "x");
    }

    let late = start(broker.url(), broker.prefix(), "late", &[]);
    late.wait_ready(PATIENCE);
    let mut resumed = late.subscribe(&["t"], Some("l-10"));
    assert_eq!(resumed.last_event_id(), Some("l-10"));
    let mut everything = late.subscribe(&["t"], Some("earliest"));
    clients[0].publish_ok("t", "l-41", "x");
    assert_eq!(ids(&resumed.events(31, PATIENCE)), names(11..=41));
    assert_eq!(ids(&everything.events(41, PATIENCE)), names(1..=41));

    // A late node with a smaller history keeps the newest of the tail only.
    let small = start(
        broker.url(),
        broker.prefix(),
        "small",
        &["--history-size", "15"],
    );
    small.wait_ready(PATIENCE);
    let mut too_old = small.subscribe(&["t"], Some("l-10"));
    assert_ne!(
        too_old.last_event_id(),
        Some("l-10"),
        "l-10 is past the small node's history: unknown"
    );
    let mut recent = small.subscribe(&["t"], Some("l-30"));
    assert_eq!(recent.last_event_id(), Some("l-30"));
    clients[1].publish_ok("t", "l-42", "x");
    assert_eq!(ids(&recent.events(12, PATIENCE)), names(31..=42));
    assert_eq!(ids(&too_old.events(1, PATIENCE)), names(42..=42));
}

fn a_publish_retried_on_another_node_is_answered_200_and_delivered_once(engine: Engine) {
    let Some(broker) = Shared::get(engine) else {
        return;
    };
    let nodes = cluster(broker.url(), broker.prefix(), &["a", "b", "c"], &[]);
    let mut subscribers: Vec<_> = nodes.iter().map(|n| n.subscribe(&["t"], None)).collect();
    let mut clients: Vec<_> = nodes.iter().map(|n| n.http()).collect();
    let mut expected = vec!["r-1".to_owned()];

    // The same update again, at once on another node, then on a third.
    clients[0].publish_ok("t", "r-1", "same");
    clients[1].publish_ok("t", "r-1", "same");
    clients[2].publish_ok("t", "r-1", "same");
    // Another update with that ID is refused, wherever it lands.
    for (n, (topic, data)) in [("t", "other"), ("u", "same")].into_iter().enumerate() {
        let answer = clients[n].publish(topic, "r-1", data).expect("answered");
        assert_eq!(answer.status, 409, "{}", answer.body);
    }

    // The same update on two nodes at the same instant: both 200, stored once.
    let barrier = Barrier::new(2);
    for round in 0..10 {
        let id = format!("race-{round}");
        let answers: Vec<u16> = std::thread::scope(|scope| {
            let racers: Vec<_> = [&nodes[0], &nodes[1]]
                .into_iter()
                .map(|node| {
                    let (id, barrier) = (&id, &barrier);
                    scope.spawn(move || {
                        let mut http = node.http();
                        barrier.wait();
                        http.publish("t", id, "same").expect("answered").status
                    })
                })
                .collect();
            racers
                .into_iter()
                .map(|r| r.join().expect("racer"))
                .collect()
        });
        assert_eq!(answers, [200, 200], "{id}");
        expected.push(id);
    }

    // Two different updates with one ID on two nodes at the same instant: one is stored and
    // answered 200, the other 409.
    let mut winners = std::collections::HashMap::new();
    for round in 0..10 {
        let id = format!("clash-{round}");
        let answers: Vec<(u16, &str)> = std::thread::scope(|scope| {
            let racers: Vec<_> = [(&nodes[1], "from b"), (&nodes[2], "from c")]
                .into_iter()
                .map(|(node, data)| {
                    let (id, barrier) = (&id, &barrier);
                    scope.spawn(move || {
                        let mut http = node.http();
                        barrier.wait();
                        (http.publish("t", id, data).expect("answered").status, data)
                    })
                })
                .collect();
            racers
                .into_iter()
                .map(|r| r.join().expect("racer"))
                .collect()
        });
        let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
        assert!(
            statuses == [200, 409] || statuses == [409, 200],
            "{id}: {answers:?}"
        );
        let winner = answers.iter().find(|a| a.0 == 200).expect("a winner").1;
        winners.insert(id.clone(), winner);
        expected.push(id);
    }

    clients[0].publish_ok("t", "end", "end");
    for (node, subscriber) in nodes.iter().zip(&mut subscribers) {
        let events = subscriber.until("end", PATIENCE);
        assert_eq!(ids(&events), expected, "on node {}", node.name);
        for event in &events {
            let data = winners.get(&event.id).copied().unwrap_or("same");
            assert_eq!(event.data, data, "{} on node {}", event.id, node.name);
        }
    }
}

/// `herald bench fanout` with `--hub` once per node: subscribers spread over the nodes,
/// updates published round robin through them; its report counts nothing lost.
fn herald_bench_over_every_node_of_a_cluster_counts_nothing_lost(engine: Engine) {
    let Some(broker) = Shared::get(engine) else {
        return;
    };
    let nodes = cluster(broker.url(), broker.prefix(), &["a", "b", "c"], &[]);
    let mut bench = crate::support::herald();
    bench.args([
        "bench",
        "fanout",
        "--json",
        "--subscribers",
        "30",
        "--topics",
        "3",
    ]);
    bench.args(["--messages", "300", "--rate", "300", "--token"]);
    bench.arg(crate::harness::http::publisher_token());
    for node in &nodes {
        bench.args(["--hub", &node.hub_url()]);
    }
    let output = bench.output().expect("herald bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(report["subscribers_connected"], 30, "{report}");
    assert_eq!(report["publish_accepted"], 300, "{report}");
    assert_eq!(report["deliveries_expected"], 3000, "{report}");
    assert_eq!(report["deliveries_received"], 3000, "{report}");
    for count in ["lost", "duplicates", "out_of_order", "publish_failed"] {
        assert_eq!(report[count], 0, "{count}: {report}");
    }
}

crate::on_each_engine!(
    herald_bench_over_every_node_of_a_cluster_counts_nothing_lost,
    three_nodes_deliver_every_update_once_to_every_subscriber_in_one_order,
    a_subscriber_cut_from_one_node_resumes_on_another_with_exactly_the_missed_updates,
    resumes_on_every_node_while_publishes_flow_join_live_delivery_without_gap_or_duplicate,
    a_resume_on_one_node_of_an_id_published_an_instant_before_on_another_is_exact,
    a_node_whose_reader_is_held_back_waits_for_it_on_a_resume_and_on_a_retry,
    a_node_started_late_serves_resumes_of_old_ids_from_the_tail_it_loaded,
    a_publish_retried_on_another_node_is_answered_200_and_delivered_once,
);
