//! What NATS adds to the engines' shared promises: a stream replicated on three servers (R3)
//! survives the loss of one; and what it limits: an update larger than the server's largest
//! message is refused (`413`) saying so. Three `nats-server -js` of the test's own are routed as one
//! JetStream cluster; three hub nodes use it with `--nats-replicas 3`; the server leading the
//! updates stream is killed -9 while every node publishes. Publishes are refused with `503`
//! until the stream has a leader again (never answered 200 and then lost), every update
//! answered 200 reaches every subscriber once, in one order, and resumes exactly.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::harness::PATIENCE;
use crate::harness::nats::{NatsCluster, SharedNats};
use crate::harness::node::cluster;
use crate::harness::sse::{Seen, Subscription, ids};
use crate::harness::{assert_no_duplicate, assert_writers_in_order, wait_for};

/// Writers per node, updates per writer, and after how many answers the leader dies.
const WRITERS: usize = 2;
const PER_WRITER: usize = 120;
const KILL_AFTER: usize = 200;

/// What a writer saw: its updates in the order they were answered 200, how many attempts were
/// refused, and the longest time one update took to be accepted.
struct Written {
    acknowledged: Vec<String>,
    refused: usize,
    longest: Duration,
}

#[test]
fn kill_9_of_the_nats_server_leading_an_r3_stream_loses_no_acknowledged_update() {
    let Some(mut nats) = NatsCluster::start() else {
        return;
    };
    let url = nats.url();
    let flags = [
        "--nats-replicas",
        "3",
        "--transport-timeout",
        "2s",
        "--subscriber-queue",
        "10000",
    ];
    let nodes = cluster(&url, &nats.prefix.clone(), &["a", "b", "c"], &flags);
    // The stream exists once a node has published. Nodes that start together on a new log may
    // see it change epoch while its streams are being created, and then disconnect their
    // subscribers: what this test measures starts once every node has read the first update.
    nodes[0].http().publish_ok("t", "first", "x");
    for node in &nodes {
        wait_for(
            &format!("{} serves the first update", node.name),
            PATIENCE,
            || {
                let mut probe = node.subscribe(&["t"], Some("earliest"));
                loop {
                    match probe.next(PATIENCE)? {
                        Seen::Event(event) if event.id == "first" => return Some(()),
                        Seen::End(_) => return None,
                        _ => {}
                    }
                }
            },
        );
    }
    let mut subscribers: Vec<(String, Subscription)> = nodes
        .iter()
        .flat_map(|node| {
            (0..2).map(move |_| (node.name.clone(), node.subscribe(&["t"], Some("earliest"))))
        })
        .collect();
    let leader = nats.leader();

    let answered = AtomicUsize::new(0);
    let mut killed_at = None;
    let written: Vec<Written> = std::thread::scope(|scope| {
        let writers: Vec<_> = nodes
            .iter()
            .flat_map(|node| (0..WRITERS).map(move |w| (node, w)))
            .map(|(node, w)| {
                let answered = &answered;
                scope.spawn(move || {
                    let mut http = node.http();
                    let mut written = Written {
                        acknowledged: Vec::new(),
                        refused: 0,
                        longest: Duration::ZERO,
                    };
                    for n in 0..PER_WRITER {
                        let id = format!("{}{w}-{n}", node.name);
                        let started = Instant::now();
                        written.refused += http.publish_retrying("t", &id, "x", PATIENCE * 2);
                        written.longest = written.longest.max(started.elapsed());
                        written.acknowledged.push(id);
                        answered.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    written
                })
            })
            .collect();
        while answered.load(Ordering::SeqCst) < KILL_AFTER {
            std::thread::sleep(Duration::from_millis(5));
        }
        nats.server(&leader).halt("KILL");
        killed_at = Some(Instant::now());
        writers
            .into_iter()
            .map(|w| w.join().expect("writer"))
            .collect()
    });
    let killed_at = killed_at.expect("killed");
    let after_kill = killed_at.elapsed();
    nodes[1]
        .http()
        .publish_retrying("t", "end", "end", PATIENCE);

    let acknowledged: HashSet<&String> = written.iter().flat_map(|w| &w.acknowledged).collect();
    let mut reference: Option<Vec<String>> = None;
    for (name, subscriber) in &mut subscribers {
        let got = ids(&subscriber.until("end", PATIENCE * 2));
        assert_no_duplicate(&got, &format!("subscriber on {name}"));
        assert_writers_in_order(&got, &format!("subscriber on {name}"));
        let delivered: HashSet<&String> = got.iter().collect();
        let lost: Vec<_> = acknowledged
            .iter()
            .filter(|id| !delivered.contains(*id))
            .collect();
        assert!(lost.is_empty(), "subscriber on {name}: lost {lost:?}");
        match &reference {
            None => reference = Some(got),
            Some(first) => assert_eq!(*first, got, "subscriber on {name}: another order"),
        }
    }
    let sequence = reference.expect("subscribers");
    // The surviving servers hold the log: the same, once each.
    let log = nats.log();
    let log: Vec<String> = log.into_iter().map(|(_, id)| id).collect();
    assert_eq!(sequence.first().map(String::as_str), Some("first"));
    if log[..log.len() - 1] != sequence[..] {
        let logged: HashSet<&String> = log.iter().collect();
        let missing: Vec<_> = sequence.iter().filter(|id| !logged.contains(id)).collect();
        let mut seen = HashSet::new();
        let twice: Vec<_> = log.iter().filter(|id| !seen.insert(*id)).collect();
        panic!(
            "the log ({} entries) is not the delivered order ({}): missing {missing:?}, twice \
             {twice:?}",
            log.len(),
            sequence.len()
        );
    }

    // A resume from before the kill, on every node, gets exactly the rest.
    let from = &sequence[KILL_AFTER / 2];
    for node in &nodes {
        let mut resumed = node.subscribe(&["t"], Some(from));
        assert_eq!(resumed.last_event_id(), Some(from.as_str()));
        assert_eq!(
            ids(&resumed.until("end", PATIENCE)),
            sequence[KILL_AFTER / 2 + 1..],
            "resume on {}",
            node.name
        );
    }
    let refused: usize = written.iter().map(|w| w.refused).sum();
    let longest = written.iter().map(|w| w.longest).max().unwrap_or_default();
    println!(
        "measure: NATS server {leader} (the R3 stream's leader) killed -9 after {KILL_AFTER} \
         answers: {} updates acknowledged and delivered to every subscriber, lost 0, \
         duplicated 0; {refused} attempts refused with 503 meanwhile; the longest wait for \
         one update to be accepted: {longest:?} (the writers finished {after_kill:?} after \
         the kill)",
        acknowledged.len()
    );
}

#[test]
fn an_update_larger_than_the_nats_servers_largest_message_is_refused_saying_so() {
    let Some(nats) = SharedNats::get() else {
        return;
    };
    let nodes = cluster(
        &nats.url,
        &nats.prefix,
        &["a"],
        &["--max-update-size", "4000000"],
    );
    let mut http = nodes[0].http();
    let answer = http
        .publish("t", "big", &"x".repeat(3_000_000))
        .expect("answered");
    assert_eq!(answer.status, 413, "{answer:?}");
    assert!(answer.body.contains("max_payload"), "{}", answer.body);
    // Nothing was stored: the next update is the log's first.
    http.publish_ok("t", "small", "x");
    let log = nats.log();
    assert_eq!(log, [(1, "small".to_owned())]);
}
