//! End-to-end tests of the hub over real HTTP on loopback, one per protocol point (A*, D*).
#![allow(clippy::unwrap_used, missing_docs, unreachable_pub)]

mod common;

mod auth;
mod control;
mod history;
mod lifecycle;
mod matrix;
mod modern_auth;
mod modern_subscribe;
mod modern_subscriptions;
mod publish;
mod subscribe;
mod subscriptions;
