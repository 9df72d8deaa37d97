//! The CORS demo: a page on one origin subscribes to a hub on another, with
//! `withCredentials: true` and the `mercureAuthorization` cookie the page's server set; the same
//! page served from an origin the hub does not allow gets an error instead.
//!
//! All three listen on 127.0.0.1, on different ports: three origins, one site, so the cookie
//! the page's server sets reaches the hub (as between `app.example.com` and
//! `hub.example.com`).
//!
//! `cargo run --example cors`, then open the two printed pages (Ctrl-C stops).

use std::time::Duration;

use axum::Router;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use herald_hub::dev::hs256_token;
use herald_hub::{Hub, HubConfig, JwtKey, Update};
use tokio::net::TcpListener;

const PAGE: &str = include_str!("pages/cors.html");
/// The demo's signing key (a real deployment keeps its key secret, out of the source).
const KEY: &str = "the-cors-demo-key-known-to-everyone-who-reads-this";
/// The topic the demo publishes to, privately.
pub(crate) const TOPIC: &str = "https://example.com/news";

/// The running demo's addresses.
pub(crate) struct Demo {
    /// The origin the hub lets in.
    pub(crate) allowed: String,
    /// An origin the hub does not know.
    pub(crate) other: String,
    /// The hub's URL.
    pub(crate) hub: String,
}

/// Serves the page on `allowed` and `other`, the hub on `hub` (allowing only the first page's
/// origin), and publishes a private update every `period`.
pub(crate) async fn start(
    allowed: TcpListener,
    other: TcpListener,
    hub: TcpListener,
    period: Duration,
) -> Result<Demo, Box<dyn std::error::Error>> {
    let demo = Demo {
        allowed: format!("http://{}", allowed.local_addr()?),
        other: format!("http://{}", other.local_addr()?),
        hub: format!("http://{}/.well-known/mercure", hub.local_addr()?),
    };
    let config = HubConfig {
        publisher_jwt: Some(JwtKey::new(KEY, "HS256")),
        subscriber_jwt: Some(JwtKey::new(KEY, "HS256")),
        cors_origins: vec![demo.allowed.clone()],
        ..HubConfig::default()
    };
    let herald = Hub::new(config)?;
    tokio::spawn(herald.clone().serve(hub));
    tokio::spawn(publish_news(herald, period));

    let token = hs256_token(KEY, serde_json::json!({ "subscribe": [TOPIC] }), None)?;
    let cookie =
        format!("mercureAuthorization={token}; Path=/.well-known/mercure; HttpOnly; SameSite=Lax");
    let page = Html(
        PAGE.replace("{{HUB}}", &demo.hub)
            .replace("{{TOPIC}}", TOPIC),
    );
    let pages = Router::new().route(
        "/",
        get(move || async move { ([("set-cookie", cookie)], page).into_response() }),
    );
    for listener in [allowed, other] {
        let pages = pages.clone();
        tokio::spawn(async move { axum::serve(listener, pages).await });
    }
    Ok(demo)
}

/// One private update every `period`: only subscribers with a token get it.
async fn publish_news(hub: Hub, period: Duration) {
    for n in 1.. {
        let mut update = Update::new(vec![TOPIC.to_owned()], format!("private news #{n}"));
        update.private = true;
        if hub.publish(update).await.is_err() {
            return;
        }
        tokio::time::sleep(period).await;
    }
}

#[tokio::main]
#[allow(clippy::print_stdout)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let allowed = TcpListener::bind("127.0.0.1:3000").await?;
    let hub = TcpListener::bind("127.0.0.1:3001").await?;
    let other = TcpListener::bind("127.0.0.1:3002").await?;
    let demo = start(allowed, other, hub, Duration::from_secs(2)).await?;
    println!("hub:                 {}", demo.hub);
    println!("allowed origin page: {}/", demo.allowed);
    println!("refused origin page: {}/", demo.other);
    std::future::pending::<()>().await;
    Ok(())
}
