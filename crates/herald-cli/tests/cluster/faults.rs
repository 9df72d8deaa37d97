//! Faults of a node or of its reading: a node killed -9 while publishes flow through every
//! node, the readers cut off (their connections killed in Redis, their consumers deleted in
//! NATS) and every connection cut (Redis) or the server restarted (NATS), a node frozen while
//! the stream moves past its bound. No update answered 200 is lost, none is delivered twice, and a subscriber that
//! can no longer be served exactly is disconnected to resume.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::harness::engine::{Engine, Private, Shared};
use crate::harness::node::{Node, cluster};
use crate::harness::sse::{Subscription, ids};
use crate::harness::{PATIENCE, assert_no_duplicate, assert_writers_in_order};

/// Every subscriber's events up to `marker`, which must be the same on every one; returned once.
fn one_sequence(subscribers: &mut [(String, Subscription)], marker: &str) -> Vec<String> {
    let mut reference: Option<Vec<String>> = None;
    for (name, subscriber) in subscribers.iter_mut() {
        let got = ids(&subscriber.until(marker, PATIENCE * 2));
        match &reference {
            None => reference = Some(got),
            Some(first) => assert!(
                *first == got,
                "subscriber on {name}: another sequence ({} events, {} on the first)",
                got.len(),
                first.len()
            ),
        }
    }
    reference.expect("subscribers")
}

fn kill_9_of_a_node_loses_no_acknowledged_update_and_its_clients_resume_elsewhere(engine: Engine) {
    const WRITERS: usize = 2;
    const PER_WRITER: usize = 150;
    const KILL_AFTER: usize = 200;
    let Some(broker) = Shared::get(engine) else {
        return;
    };
    let mut nodes = cluster(
        broker.url(),
        broker.prefix(),
        &["a", "b", "c"],
        &["--subscriber-queue", "10000"],
    );
    let mut survivors = Vec::new();
    let mut orphans = Vec::new();
    for node in &nodes {
        for _ in 0..2 {
            let subscriber = (node.name.clone(), node.subscribe(&["t"], None));
            if node.name == "c" {
                orphans.push(subscriber);
            } else {
                survivors.push(subscriber);
            }
        }
    }
    let (answered, receipts) = mpsc::channel::<String>();
    let writers: Vec<_> = nodes
        .iter()
        .flat_map(|node| (0..WRITERS).map(move |w| (node, w)))
        .map(|(node, w)| {
            let mut http = node.http();
            let name = node.name.clone();
            let answered = answered.clone();
            // Returns the update in flight when the node went away, if it did.
            std::thread::spawn(move || {
                for n in 0..PER_WRITER {
                    let id = format!("{name}{w}-{n}");
                    match http.publish("t", &id, "x") {
                        Ok(answer) if answer.status == 200 => {
                            let _ = answered.send(id);
                        }
                        Ok(answer) => panic!("{id}: {answer:?}"),
                        Err(_) => return Some(id),
                    }
                }
                None
            })
        })
        .collect();
    drop(answered);
    let mut acknowledged = HashSet::new();
    while acknowledged.len() < KILL_AFTER {
        let id = receipts
            .recv_timeout(PATIENCE)
            .expect("publishes are answered");
        acknowledged.insert(id);
    }
    nodes[2].kill_9();
    let in_flight: Vec<String> = writers
        .into_iter()
        .filter_map(|w| w.join().expect("writer"))
        .collect();
    acknowledged.extend(receipts.try_iter());
    assert!(
        in_flight.iter().all(|id| id.starts_with('c')),
        "only c's publishers were cut off: {in_flight:?}"
    );
    for node in &nodes[..2] {
        for w in 0..WRITERS {
            assert!(acknowledged.contains(&format!("{}{w}-{}", node.name, PER_WRITER - 1)));
        }
    }
    nodes[0].http().publish_ok("t", "end", "end");

    let sequence = one_sequence(&mut survivors, "end");
    assert_no_duplicate(&sequence, "survivors");
    assert_writers_in_order(&sequence, "survivors");
    let delivered: HashSet<&String> = sequence.iter().collect();
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|id| !delivered.contains(id))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged but never delivered: {lost:?}"
    );
    // Beyond what was acknowledged, only what c had in flight when it died may have been stored.
    for id in &sequence {
        assert!(
            acknowledged.contains(id) || in_flight.contains(id),
            "{id} was delivered but never published"
        );
    }
    let log = broker.log_ids();
    assert_eq!(log[..log.len() - 1], sequence[..], "the log's order");

    // c's subscribers saw a part of the one order, then their streams ended; each resumes on
    // a surviving node with the last ID it saw and gets exactly the rest.
    for (n, (_, orphan)) in orphans.iter_mut().enumerate() {
        let before = ids(&orphan.until_end(PATIENCE));
        assert_eq!(before[..], sequence[..before.len()], "c's subscriber {n}");
        let last = before.last().map_or("earliest", String::as_str);
        let mut resumed = nodes[n % 2].subscribe(&["t"], Some(last));
        assert_eq!(resumed.last_event_id(), Some(last));
        assert_eq!(
            ids(&resumed.until("end", PATIENCE)),
            sequence[before.len()..],
            "c's subscriber {n} resumed on {}",
            nodes[n % 2].name
        );
    }
    println!(
        "measure: kill -9 of c after {KILL_AFTER} answers: {} acknowledged, {} delivered, \
         lost 0, in flight {in_flight:?}",
        acknowledged.len(),
        sequence.len()
    );
}

fn killing_the_readers_connections_loses_nothing_and_repeats_nothing(engine: Engine) {
    let Some(mut broker) = Private::start(engine) else {
        return;
    };
    let nodes = cluster(&broker.url(), broker.prefix(), &["a", "b"], &[]);
    let mut subscribers: Vec<(String, Subscription)> = nodes
        .iter()
        .flat_map(|node| (0..2).map(move |_| (node.name.clone(), node.subscribe(&["t"], None))))
        .collect();
    let stop = AtomicBool::new(false);
    let (readers_killed, all_killed, published) = std::thread::scope(|scope| {
        let writers: Vec<_> = nodes
            .iter()
            .map(|node: &Node| {
                let stop = &stop;
                scope.spawn(move || {
                    let mut http = node.http();
                    let mut published = 0;
                    while !stop.load(Ordering::SeqCst) {
                        let id = format!("{}-{published}", node.name);
                        http.publish_retrying("t", &id, "x", PATIENCE);
                        published += 1;
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    published
                })
            })
            .collect();
        let (mut readers, mut all) = (0, 0);
        for round in 0..8 {
            std::thread::sleep(Duration::from_millis(300));
            if round % 2 == 0 {
                readers += broker.cut_readers();
            } else {
                // Every connection of the nodes: readers and publishers alike.
                all += broker.cut_everything();
            }
        }
        stop.store(true, Ordering::SeqCst);
        let published: Vec<usize> = writers
            .into_iter()
            .map(|w| w.join().expect("writer"))
            .collect();
        (readers, all, published)
    });
    assert!(
        readers_killed >= 2,
        "reader connections killed: {readers_killed}"
    );
    nodes[0]
        .http()
        .publish_retrying("t", "end", "end", PATIENCE);

    let sequence = one_sequence(&mut subscribers, "end");
    assert_no_duplicate(&sequence, "subscribers");
    assert_writers_in_order(&sequence, "subscribers");
    let expected: HashSet<String> = nodes
        .iter()
        .zip(&published)
        .flat_map(|(node, &count)| (0..count).map(move |n| format!("{}-{n}", node.name)))
        .collect();
    assert_eq!(sequence.len(), expected.len(), "every update once");
    assert!(sequence.iter().all(|id| expected.contains(id)));
    let log = broker.log_ids();
    assert_eq!(log[..log.len() - 1], sequence[..], "the log's order");
    let errors: f64 = nodes
        .iter()
        .map(|n| n.metric("herald_shared_log_errors_total"))
        .sum();
    assert!(errors >= 1.0, "the readers noticed their connections die");
    println!(
        "measure: reader connections killed {readers_killed} times, every connection \
         {all_killed} times; {} updates published and delivered once each, lost 0",
        sequence.len()
    );
}

fn a_node_frozen_past_the_streams_bound_detects_the_gap_and_disconnects_its_subscribers(
    engine: Engine,
) {
    const WRITERS: usize = 4;
    const PER_WRITER: usize = 625;
    let Some(broker) = Shared::get(engine) else {
        return;
    };
    let extra = ["--history-size", "10", "--subscriber-queue", "100000"];
    let nodes = cluster(broker.url(), broker.prefix(), &["a", "b"], &extra);
    let (a, b) = (&nodes[0], &nodes[1]);
    let mut on_a = a.subscribe(&["t"], None);
    let mut on_b = b.subscribe(&["t"], None);
    let mut publisher = a.http();
    for n in 1..=5 {
        publisher.publish_ok("t", &format!("s-{n}"), "x");
    }
    assert_eq!(on_b.events(5, PATIENCE).len(), 5);

    b.pause();
    std::thread::scope(|scope| {
        for w in 0..WRITERS {
            scope.spawn(move || {
                let mut http = a.http();
                for n in 0..PER_WRITER {
                    http.publish_ok("t", &format!("w{w}-{n}"), "x");
                }
            });
        }
    });
    let first_kept = broker.log()[0].0;
    assert!(
        first_kept > 100,
        "the stream moved past b's place ({first_kept})"
    );
    let frozen = Instant::now();
    b.resume();

    b.wait_metric("herald_shared_log_gaps_total", 1.0, PATIENCE);
    let before_end = ids(&on_b.until_end(PATIENCE));
    println!(
        "measure: frozen node's gap detected and its subscribers disconnected within {:?} of \
         SIGCONT",
        frozen.elapsed()
    );
    publisher.publish_ok("t", "end", "end");
    let sequence = ids(&on_a.until("end", PATIENCE * 2));
    assert_eq!(sequence.len(), 5 + WRITERS * PER_WRITER);
    // Before its stream ended, b's subscriber saw the one order without a hole.
    assert_eq!(before_end[..], sequence[5..5 + before_end.len()]);

    // b serves again, from the tail it reloaded: an ID it lost is unknown, a recent one exact.
    b.wait_ready(PATIENCE);
    let lost = format!("s-{}", 5);
    let last_seen = before_end.last().unwrap_or(&lost);
    let mut gone = b.subscribe(&["t"], Some(last_seen));
    assert_ne!(gone.last_event_id(), Some(last_seen.as_str()));
    let recent = &sequence[sequence.len() - 5];
    let mut resumed = b.subscribe(&["t"], Some(recent));
    assert_eq!(resumed.last_event_id(), Some(recent.as_str()));
    publisher.publish_ok("t", "after", "x");
    let mut rest = sequence[sequence.len() - 4..].to_vec();
    rest.extend(["end".to_owned()]);
    assert_eq!(ids(&resumed.until("after", PATIENCE)), rest);
    assert!(gone.until("after", PATIENCE).is_empty());
}

crate::on_each_engine!(
    kill_9_of_a_node_loses_no_acknowledged_update_and_its_clients_resume_elsewhere,
    killing_the_readers_connections_loses_nothing_and_repeats_nothing,
    a_node_frozen_past_the_streams_bound_detects_the_gap_and_disconnects_its_subscribers,
);
