//! The ten-then-close demo: ten messages a second apart, then the server ends the stream. The
//! browser reconnects at once (the first event set `retry` to a short delay) with
//! `Last-Event-ID: 10`, and is answered `204 No Content`, which tells it never to come back.
//! A client that reconnects earlier resumes after the last ID it saw.
//!
//! `cargo run --example ten-then-close [ADDR]`, then open the printed URL.

use std::time::Duration;

use axum::Router;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use herald_server::{Event, LastEventId, Sse};
use http::StatusCode;

mod support;

const PAGE: &str = include_str!("pages/ten-then-close.html");

/// How many messages the stream carries.
pub(crate) const MESSAGES: u64 = 10;
/// The reconnection delay the stream asks for, so that the 204 comes quickly.
const RETRY: Duration = Duration::from_millis(500);

/// The page and its stream, one message per `period`.
pub(crate) fn app(period: Duration) -> Router {
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route(
            "/ten",
            get(move |last: LastEventId| async move { ten(period, last) }),
        )
}

/// Messages after the client's last ID up to the tenth; `204` once it has them all.
fn ten(period: Duration, last: LastEventId) -> Response {
    let after: u64 = last.0.and_then(|id| id.parse().ok()).unwrap_or(0);
    if after >= MESSAGES {
        return StatusCode::NO_CONTENT.into_response();
    }
    let messages = futures::stream::unfold(after + 1, move |n| async move {
        if n > MESSAGES {
            return None; // the stream ends here: the response body closes
        }
        if n > after + 1 {
            tokio::time::sleep(period).await;
        }
        let mut event = Event::default()
            .id(n.to_string())
            .data(format!("message {n} of {MESSAGES}"));
        if n == after + 1 {
            event = event.retry(RETRY);
        }
        Some((event, n + 1))
    });
    Sse::new(messages).into_response()
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = support::addr("127.0.0.1:3000")?;
    support::serve(app(Duration::from_secs(1)), addr, "ten then close").await
}
