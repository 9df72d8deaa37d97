//! The control API across nodes: a disconnect sent to one node ends the selected streams on
//! every node; a revocation is in force on every node, on a node started later and on a node
//! restarted after `kill -9`, and ends with its `exp`; control actions never reach a
//! subscriber nor the log of updates.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::harness::engine::{Engine, Shared};
use crate::harness::http::{admin_token, user_token};
use crate::harness::node::{cluster, start};
use crate::harness::{PATIENCE, wait_for};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("time")
        .as_secs()
}

fn a_disconnect_sent_to_one_node_ends_the_selected_streams_of_every_node(engine: Engine) {
    let Some(broker) = Shared::get(engine) else {
        return;
    };
    let nodes = cluster(
        broker.url(),
        broker.prefix(),
        &["a", "b", "c"],
        &["--subscriptions"],
    );
    for node in &nodes {
        node.wait_metric("herald_cluster_nodes", 3.0, PATIENCE);
    }
    let alice = user_token("alice", "a-1");
    let bob = user_token("bob", "b-1");
    let mut alice_a = nodes[0].subscribe_as(&["books/1"], &alice);
    let mut alice_b = nodes[1].subscribe_as(&["news"], &alice);
    let mut bob_c = nodes[2].subscribe_as(&["books/1", "news"], &bob);
    // Anonymous: they see every public update, and no subscription event.
    let mut watchers: Vec<_> = nodes.iter().map(|n| n.subscribe(&["*"], None)).collect();
    let mut admin = nodes[2].http_as(&admin_token());

    // By subject, sent to the node where alice has no stream.
    let answer = admin.control("disconnect", &json!({"sub": "alice"}));
    assert_eq!(answer["nodes"], 3, "{answer}");
    assert_eq!(
        answer["streams"], 0,
        "none on the node that answered: {answer}"
    );
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("dispatched to 3 nodes")),
        "{answer}"
    );
    alice_a.until_end(PATIENCE);
    alice_b.until_end(PATIENCE);
    nodes[0].http().publish_ok("books/1", "after-alice", "x");
    assert_eq!(
        bob_c.events(1, PATIENCE)[0].id,
        "after-alice",
        "bob's stream lives on"
    );

    // By topic selector, through another node: the template picks bob's `books/1`.
    let answer = nodes[0]
        .http_as(&admin_token())
        .control("disconnect", &json!({"topic": "books/{id}"}));
    assert_eq!(answer["streams"], 0, "{answer}");
    bob_c.until_end(PATIENCE);

    // By subscriber ID, as the subscriptions API of one node lists another node's subscriber.
    let mut carol_b = nodes[1].subscribe_as(&["carol-topic"], &user_token("carol", "c-1"));
    let watcher = user_token("watcher", "w");
    let (subscriber, _) = wait_for("carol in node a's list", PATIENCE, || {
        let answer = nodes[0]
            .http_as(&watcher)
            .get("/.well-known/mercure/subscriptions")
            .ok()?;
        let list: serde_json::Value = serde_json::from_str(&answer.body).ok()?;
        list["subscriptions"]
            .as_array()?
            .iter()
            .find(|s| s["topic"] == "carol-topic")
            .map(|s| s["subscriber"].as_str().unwrap_or_default().to_owned())
    });
    nodes[0]
        .http_as(&admin_token())
        .control("disconnect", &json!({"subscriber": subscriber}));
    carol_b.until_end(PATIENCE);

    // No control action reached a subscriber, nor the log of updates.
    nodes[1].http().publish_ok("books/1", "marker", "x");
    for watcher in &mut watchers {
        let events = watcher.until("marker", PATIENCE);
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        assert!(
            ids.iter().all(|id| *id == "after-alice"),
            "only updates reach subscribers: {ids:?}"
        );
    }
    let ids = broker.log_ids();
    assert_eq!(
        ids,
        ["after-alice", "marker"],
        "the log holds the updates alone"
    );
}

/// Whether `node` refuses `token` as revoked (a stream it accepts is closed at once).
fn refuses(node: &crate::harness::node::Node, token: &str) -> bool {
    let mut socket = TcpStream::connect(node.authority()).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        socket,
        "GET /.well-known/mercure?topic=t HTTP/1.0\r\nHost: localhost\r\n\
         Authorization: Bearer {token}\r\n\r\n"
    )
    .expect("request");
    let mut head = vec![0u8; 4096];
    let n = socket.read(&mut head).unwrap_or(0);
    let text = String::from_utf8_lossy(&head[..n]).into_owned();
    if !text.starts_with("HTTP/1.0 401") {
        return false;
    }
    let mut rest = String::new();
    let _ = socket.read_to_string(&mut rest);
    (text + &rest).contains("revoked")
}

fn a_revocation_is_in_force_on_every_node_including_late_and_restarted_ones_until_exp(
    engine: Engine,
) {
    let Some(broker) = Shared::get(engine) else {
        return;
    };
    let mut nodes = cluster(broker.url(), broker.prefix(), &["a", "b", "c"], &[]);
    let long = user_token("dave", "long-lived");
    let short = user_token("erin", "short-lived");
    let mut stream = nodes[1].subscribe_as(&["t"], &long);
    let mut admin = nodes[0].http_as(&admin_token());
    let answer = admin.control("revoke", &json!({"jti": "long-lived", "exp": now() + 600}));
    assert_eq!(answer["action"], "revoke", "{answer}");
    let short_exp = now() + 4;
    admin.control("revoke", &json!({"jti": "short-lived", "exp": short_exp}));
    // The revoked token's stream ends.
    stream.until_end(PATIENCE);
    for node in &nodes {
        wait_for(
            &format!("{} refuses the revoked token", node.name),
            PATIENCE,
            || refuses(node, &long).then_some(()),
        );
        wait_for(
            &format!("{} refuses the other one", node.name),
            PATIENCE,
            || (now() >= short_exp || refuses(node, &short)).then_some(()),
        );
    }
    // A node started later reads the revocations from the control channel's tail.
    let late = start(broker.url(), broker.prefix(), "d", &[]);
    late.wait_ready(PATIENCE);
    assert!(refuses(&late, &long), "a node started later refuses it");
    // So does a node restarted after kill -9.
    nodes[2].kill_9();
    let restarted = start(broker.url(), broker.prefix(), "c", &[]);
    restarted.wait_ready(PATIENCE);
    assert!(refuses(&restarted, &long), "a restarted node refuses it");
    nodes.truncate(2);
    nodes.push(restarted);
    nodes.push(late);
    // Once its exp passed, the short revocation is gone everywhere: the token is accepted.
    let wait = short_exp.saturating_sub(now()) + 1;
    std::thread::sleep(Duration::from_secs(wait));
    for node in &nodes {
        let mut accepted = node.subscribe_as(&["t"], &short);
        accepted.cut();
        assert!(
            refuses(node, &long),
            "{}: the long one still is refused",
            node.name
        );
    }
}

crate::on_each_engine!(
    a_disconnect_sent_to_one_node_ends_the_selected_streams_of_every_node,
    a_revocation_is_in_force_on_every_node_including_late_and_restarted_ones_until_exp,
);
