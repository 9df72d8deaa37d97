//! The hub's HTTP/2 server against RFC 9113 and RFC 7541, section by section as h2spec
//! checks them, but stricter: each error must carry its exact code and be a stream error or a
//! connection error as the RFC says (h2spec passes any closed connection). Raw frames over
//! real TCP (h2c with prior knowledge) and TLS (ALPN `h2`) to a real hub; then interoperation
//! with curl and nghttp2's `nghttp` and `h2load`, and hostile clients' bounds.
#![allow(
    clippy::unwrap_used,
    clippy::print_stderr,
    missing_docs,
    unreachable_pub,
    dead_code
)]

#[path = "../protocol/common.rs"]
mod common;
#[path = "../production/net.rs"]
mod net;
mod raw;

mod frames;
mod hostile;
mod hpack;
mod interop;
mod semantics;
mod streams;
