//! Several `herald serve` processes as one hub on Redis Streams, tested as users run them: real
//! nodes, a real Redis, real sockets, and the faults injected for real (`kill -9` of a node,
//! Redis stopped, paused and restarted empty, the reader's connection killed, a node frozen
//! past the stream's bound).
//!
//! Tests that only need Redis use `HERALD_TEST_REDIS_URL` under a fresh key prefix (deleted at
//! the end); tests that stop, pause or restart Redis start a private `redis-server`. See
//! [`harness::redis`] for when a test skips and when it fails.
#![cfg(unix)]
// A skipped test says why, and the fault tests print what they measured (`measure: ...`, shown
// with `--nocapture`).
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "../support/mod.rs"]
mod support;

mod harness;

mod control;
mod delivery;
mod faults;
mod outage;
mod startup;
