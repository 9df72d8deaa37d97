//! What the cluster tests share: the engines they run against ([`engine`]: [`redis`] and
//! [`nats`]), `herald serve` nodes
//! ([`node`]), a small blocking HTTP client for publishes and probes ([`http`]) and event-stream
//! subscribers read on threads of their own ([`sse`]).
//!
//! Every wait is bounded by a deadline generous enough for a loaded two-core machine: a test
//! that waits in vain fails with what it saw, it never hangs.

pub(crate) mod engine;
pub(crate) mod http;
pub(crate) mod nats;
pub(crate) mod node;
pub(crate) mod redis;
pub(crate) mod sse;

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

/// The longest wait for anything that should happen promptly (an event, a status change).
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

/// Whether a missing prerequisite (Redis, `redis-server`) fails the test rather than skipping it.
pub(crate) fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Fails under `CI=true`; otherwise says why the test is skipped.
pub(crate) fn skip_or_fail(reason: &str) {
    assert!(!required(), "CI=true and {reason}");
    eprintln!("skipped: {reason}");
}

/// A random 64-bit number (from the standard library's randomly seeded hasher).
pub(crate) fn random() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}

/// Polls `probe` every 20 ms until it answers `Some`, for at most `within`; panics with `what`
/// otherwise. Returns the answer and how long it took.
pub(crate) fn wait_for<T>(
    what: &str,
    within: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> (T, Duration) {
    let start = Instant::now();
    loop {
        if let Some(found) = probe() {
            return (found, start.elapsed());
        }
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` (`STOP`, `CONT`, `TERM`, `KILL`) to the process `pid` with `kill(1)`.
pub(crate) fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {pid}: {status}");
}

/// Whether `program` runs (`program --version`): a server a test starts is on the PATH.
pub(crate) fn have(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Ends a server of the test's own with `how` (`TERM`, `KILL`; thawed first, in case it was
/// paused), with SIGKILL if it lingers 10 s, and reaps it.
pub(crate) fn end(mut child: std::process::Child, how: &str) {
    signal(child.id(), "CONT");
    signal(child.id(), how);
    let asked = Instant::now();
    while child.try_wait().ok().flatten().is_none() {
        if asked.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills a server a test left running (thawed first), without asserting anything: for `Drop`.
pub(crate) fn kill_left(child: Option<std::process::Child>) {
    if let Some(mut child) = child {
        let _ = std::process::Command::new("kill")
            .args(["-CONT", &child.id().to_string()])
            .status();
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Whether `sequence` lists each writer's updates (IDs `<writer>-<n>`) in increasing `n`: the
/// log's order is the order of acknowledgement, and each writer waits for one answer before
/// sending the next update.
pub(crate) fn assert_writers_in_order(sequence: &[String], context: &str) {
    let mut last: std::collections::HashMap<&str, u32> = std::collections::HashMap::new();
    for id in sequence {
        let Some((writer, n)) = id.rsplit_once('-') else {
            continue;
        };
        let Ok(n) = n.parse::<u32>() else { continue };
        if let Some(previous) = last.insert(writer, n) {
            assert!(
                previous < n,
                "{context}: writer {writer}'s update {n} came after its update {previous}"
            );
        }
    }
}

/// Panics when an ID occurs twice in `sequence`.
pub(crate) fn assert_no_duplicate(sequence: &[String], context: &str) {
    let mut seen = std::collections::HashSet::new();
    for id in sequence {
        assert!(seen.insert(id), "{context}: {id} delivered twice");
    }
}
