//! A Server-Sent Events push hub speaking the Mercure protocol, both generations from one hub
//! ([`protocol`]): 0.x (draft-07, what deployed clients speak) and 1.0 (draft-08). Backends
//! publish with one HTTP POST, browsers subscribe with `EventSource`, and each subscriber sees
//! only what its token allows.
//!
//! How an update travels: `POST /.well-known/mercure` is authorized ([`auth`]) and validated
//! into an [`Update`], encoded once into shared bytes ([`update::Record`]), stored by the
//! [`transport`] (the in-memory ring by default), and handed to the node's [`fanout`], which
//! matches its topics ([`topic`]) against every live subscription and pushes the bytes into each
//! matching subscriber's bounded queue. A subscription registers with the fan-out first, then
//! replays history after its `Last-Event-ID`, so the seam has no gap and no duplicate.
//!
//! In production, [`server::Server`] serves it on several listeners with TLS and HTTP/2, bounds
//! connections and stuck clients, and shuts down gracefully; `data_dir` in [`HubConfig`] makes
//! the history durable ([`transport::DurableTransport`]); `/metrics`, `/healthz` and `/readyz`
//! are routed on the hub's listeners unless `public_metrics` is off, and alone on a
//! [metrics listener](server::Server::metrics_listener). Tokens are verified with a key per
//! role, or with the keys of a JWK Set ([`auth::KeySet`]). Every refused request is logged at
//! `info` (rate-limited), without its token.
//!
//! When users' permissions change while they are connected, a backend uses the [`control`] API
//! (a publisher token with `{"herald": {"admin": true}}`): it ends streams, which browsers
//! resume with `Last-Event-ID` under their new credentials, and revokes tokens until they
//! expire, on every node of the hub.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use herald_hub::{Hub, JwtKey};
//!
//! let hub = Hub::builder()
//!     .publisher_jwt(JwtKey::new("!ChangeThisMercureHubJWTSecretKey!", "HS256"))
//!     .anonymous(true)
//!     .build()?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! hub.serve(listener).await?;
//! # Ok(()) }
//! ```
//!
//! Publishing in-process, without HTTP:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use herald_hub::{Hub, Update};
//!
//! let hub = Hub::builder().anonymous(true).build()?;
//! let id = hub.publish(Update::new(vec!["https://example.com/books/1".into()], "{}")).await?;
//! assert!(id.starts_with("urn:uuid:"));
//! # Ok(()) }
//! ```

pub mod auth;
pub mod config;
pub mod control;
pub mod dev;
pub mod fanout;
pub mod form;
mod http;
mod hub;
mod metrics;
pub mod protocol;
mod replay;
pub mod server;
mod subscriptions;
pub mod topic;
pub mod transport;
pub mod update;

pub use config::{HubConfig, JwtKey};
pub use hub::{Hub, HubBuilder, HubError};
pub use update::Update;
