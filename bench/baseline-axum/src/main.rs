//! The naive Server-Sent Events server a Rust user writes by hand with axum and a tokio broadcast
//! channel: `GET /events` subscribes, `POST /publish` sends the body to every subscriber. It is the
//! baseline `bench/compare.sh` measures Herald against, so it stays as plain as the tutorials.
//!
//! Usage: `baseline-axum [ADDR]` (default `127.0.0.1:8082`).

use std::convert::Infallible;

use axum::Router;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

/// How many messages a slow subscriber may fall behind before it misses some.
const CAPACITY: usize = 1024;

async fn events(
    State(tx): State<broadcast::Sender<Bytes>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = BroadcastStream::new(tx.subscribe()).filter_map(|message| async move {
        let body = message.ok()?;
        Some(Ok(Event::default().data(String::from_utf8_lossy(&body))))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn publish(State(tx): State<broadcast::Sender<Bytes>>, body: Bytes) -> &'static str {
    // No subscriber is not an error.
    let _ = tx.send(body);
    "ok"
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8082".into());
    let (tx, _) = broadcast::channel(CAPACITY);
    let app = Router::new()
        .route("/events", get(events))
        .route("/publish", post(publish))
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    #[allow(clippy::print_stderr)]
    {
        eprintln!("baseline-axum listening on {}", listener.local_addr()?);
    }
    axum::serve(listener, app).await
}
