//! Several `herald serve` processes as one hub on a shared log, tested as users run them: real
//! nodes, a real Redis and a real NATS JetStream, real sockets, and the faults injected for
//! real (`kill -9` of a node, the engine stopped, paused and restarted empty, the readers cut
//! off, a node frozen past the stream's bound, a NATS server of an R3 cluster killed -9).
//!
//! Every scenario runs on both engines (`on_redis::*` and `on_nats::*`, see
//! [`harness::engine`]). Tests that only need the engine use the machine's
//! (`HERALD_TEST_REDIS_URL`, `HERALD_TEST_NATS_URL`) under a fresh prefix, removed at the end;
//! tests that stop, pause or restart it start a private `redis-server` or `nats-server`. See
//! [`harness::redis`] and [`harness::nats`] for when a test skips and when it fails.
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
mod nats_cluster;
mod outage;
mod startup;
