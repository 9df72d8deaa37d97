//! The named-events demo: one stream carries `name` and `age` events, which the page hands to
//! two different listeners; its default `message` handler sees only the stream's one unnamed
//! greeting, never a named event.
//!
//! `cargo run --example named-events [ADDR]`, then open the printed URL.

use std::time::Duration;

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use futures::Stream;
use herald_server::{Event, KeepAlive, Sse};

mod support;

const PAGE: &str = include_str!("pages/named-events.html");

const PEOPLE: &[(&str, u32)] = &[
    ("Ada", 36),
    ("Grace", 85),
    ("Alan", 41),
    ("Edsger", 72),
    ("Barbara", 83),
];

/// The page and its stream, one event per `period`.
pub(crate) fn app(period: Duration) -> Router {
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route(
            "/people",
            get(move || async move { Sse::new(people(period)).keep_alive(KeepAlive::default()) }),
        )
}

/// An unnamed greeting, then `name` and `age` events in turn, `period` apart, round the list.
fn people(period: Duration) -> impl Stream<Item = Event> + Send + 'static {
    let greeting = Event::default().data("a name and an age follow, as named events");
    let named = futures::stream::unfold(0usize, move |n| async move {
        tokio::time::sleep(period).await;
        let (name, age) = PEOPLE[n / 2 % PEOPLE.len()];
        let (kind, data) = if n % 2 == 0 {
            ("name", name.to_owned())
        } else {
            ("age", age.to_string())
        };
        let event = Event::default().event(kind).id(n.to_string()).data(data);
        Some((event, n + 1))
    });
    futures::StreamExt::chain(futures::stream::iter([greeting]), named)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = support::addr("127.0.0.1:3000")?;
    support::serve(app(Duration::from_secs(1)), addr, "named events").await
}
