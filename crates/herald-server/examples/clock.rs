//! The clock demo: the server pushes the current time every second over one event stream; the
//! page's Start and Stop buttons open and `close()` its `EventSource`.
//!
//! `cargo run --example clock [ADDR]`, then open the printed URL.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use futures::Stream;
use herald_server::{Event, KeepAlive, Sse};

mod support;

const PAGE: &str = include_str!("pages/clock.html");

/// The page and its stream, ticking every `period`.
pub(crate) fn app(period: Duration) -> Router {
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/clock", get(move || async move { clock(period) }))
}

fn clock(period: Duration) -> Sse<impl Stream<Item = Event> + Send + 'static> {
    Sse::new(ticks(period)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// One event per `period`, the first at once: the time of day (UTC) with a rising ID.
fn ticks(period: Duration) -> impl Stream<Item = Event> + Send + 'static {
    futures::stream::unfold(0u64, move |n| async move {
        if n > 0 {
            tokio::time::sleep(period).await;
        }
        let event = Event::default()
            .id(n.to_string())
            .data(time_of_day(SystemTime::now()));
        Some((event, n + 1))
    })
}

/// `HH:MM:SS UTC`.
pub(crate) fn time_of_day(now: SystemTime) -> String {
    let seconds = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() % 86_400);
    format!(
        "{:02}:{:02}:{:02} UTC",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = support::addr("127.0.0.1:3000")?;
    support::serve(app(Duration::from_secs(1)), addr, "clock").await
}
