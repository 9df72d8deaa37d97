//! `herald serve` against what a careless operator's disk or a hostile client does to it: a
//! damaged history store is a clear error (or moved aside on request), never a panic loop under
//! a supervisor; subscriptions of a thousand URI templates each cost the hub kilobytes, not tens
//! of megabytes.
#![cfg(target_os = "linux")]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

mod support;

use support::{herald, spawn_serve};

const KEY: &str = "hostile-test-key-0123456789abcdef";

/// The resident memory of process `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

#[test]
fn a_damaged_history_store_is_a_clear_error_then_moved_aside_on_request() {
    let dir = tempfile::tempdir().expect("dir");
    {
        let mut hub = spawn_serve(
            herald()
                .args(["serve", "--addr", "127.0.0.1:0", "--jwt-key", KEY])
                .arg("--data-dir")
                .arg(dir.path()),
            1,
        );
        hub.drain_stderr();
    }
    let file = dir.path().join("history.redb");
    let length = std::fs::metadata(&file).expect("store").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .expect("open")
        .set_len(length / 2)
        .expect("truncate");

    let refused = herald()
        .args(["serve", "--addr", "127.0.0.1:0", "--jwt-key", KEY])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "an error, not a panic: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains(&*file.to_string_lossy()),
        "names the file: {stderr}"
    );
    assert!(stderr.contains("damaged"), "{stderr}");
    assert!(
        stderr.contains("move it aside"),
        "says what to do: {stderr}"
    );

    let mut hub = spawn_serve(
        herald()
            .args(["serve", "--addr", "127.0.0.1:0", "--jwt-key", KEY])
            .arg("--data-dir")
            .arg(dir.path())
            .arg("--move-aside-damaged-history"),
        1,
    );
    hub.drain_stderr();
    let aside: Vec<String> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("history.redb.damaged-"))
        .collect();
    assert_eq!(
        aside.len(),
        1,
        "the damaged file is kept beside the new one"
    );
    assert!(file.exists(), "a new store was created");
}

/// Opens a subscription of `templates` URI templates (written unencoded, as a probe would) and
/// returns its socket once the stream has started.
fn subscribe(authority: &str, prefix: &str, templates: usize) -> TcpStream {
    let vars = ('a'..='t').map(String::from).collect::<Vec<_>>().join(",");
    let query: String = (0..templates)
        .map(|i| format!("topic={prefix}-{i}/{{{vars}}}&"))
        .collect();
    let mut socket = TcpStream::connect(authority).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        socket,
        "GET /.well-known/mercure?{query} HTTP/1.1\r\nHost: localhost\r\n\r\n"
    )
    .expect("request");
    let mut head = [0u8; 12];
    socket.read_exact(&mut head).expect("response");
    assert_eq!(&head, b"HTTP/1.1 200", "subscribed");
    socket
}

fn publish(authority: &str, topic: &str) {
    let token = herald_hub::dev::hs256_token(KEY, serde_json::json!({"publish": ["*"]}), None)
        .expect("token");
    let body = format!("topic={topic}&data=x");
    let mut socket = TcpStream::connect(authority).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        socket,
        "POST /.well-known/mercure HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("publish");
    let mut answer = String::new();
    socket.read_to_string(&mut answer).expect("answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[test]
fn a_thousand_templates_per_subscription_cost_kilobytes_not_megabytes() {
    let mut hub = spawn_serve(
        herald()
            .args(["serve", "--addr", "127.0.0.1:0", "--jwt-key", KEY])
            .args(["--anonymous", "--max-selector-cost", "1000000"]),
        1,
    );
    hub.drain_stderr();
    let authority = hub.authority().to_owned();
    let pid = hub.child().id();
    // Warm up the allocator and the connection path before the baseline.
    let warm = subscribe(&authority, "warm", 10);
    let before = rss(pid);
    // 40 subscribers of 1,000 templates each, all different: 40,000 templates. Matched as one
    // regular expression each, they took about 1.5 GB.
    let subscribers: Vec<TcpStream> = (0..40)
        .map(|n| subscribe(&authority, &format!("c{n}"), 1000))
        .collect();
    // Updates that the templates are matched against, some matching.
    for n in 0..20 {
        publish(&authority, &format!("c{n}-{n}/x,y,z"));
        publish(&authority, &format!("https://example.com/{n}"));
    }
    let after = rss(pid);
    let grown = after.saturating_sub(before);
    assert!(
        grown < 100 * 1024 * 1024,
        "40,000 templates grew the hub by {} MiB",
        grown / (1024 * 1024)
    );
    drop(subscribers);
    drop(warm);
}
