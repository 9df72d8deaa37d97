//! End-to-end tests of the hub in production settings: TLS and HTTP/2, several listeners,
//! CORS, limits, metrics and shutdown, over real sockets on loopback.
#![allow(
    clippy::unwrap_used,
    clippy::print_stderr,
    missing_docs,
    unreachable_pub,
    dead_code
)]

#[path = "../protocol/common.rs"]
mod common;
mod net;

mod bodies;
mod cors;
mod durable;
mod http2;
mod http2_server;
mod jwks;
mod lean;
mod limits;
mod ops;
mod resume;
mod ui;
