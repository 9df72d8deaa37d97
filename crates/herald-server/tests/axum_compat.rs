//! Handlers written for `axum::response::sse`, compiled against herald-server with only the
//! import changed, served by a real axum server on loopback: what goes on the wire, how keep-alives
//! are configured, and what happens where axum would panic or abort (an invalid event, an `Err`
//! item).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use futures::stream::{self, Stream};
// The one line that differs from the axum version of these handlers.
use herald_server::{Event, KeepAlive, Sse};
use http_body_util::BodyExt;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::{BroadcastStream, ReceiverStream};

mod support;

/// axum's own documentation example for `Sse`, as it is written there.
async fn sse_handler() -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // A `Stream` that repeats an event every second
    let stream = stream::repeat_with(|| Event::default().data("hi!"))
        .map(Ok)
        .throttle(Duration::from_millis(10))
        .take(3);

    Sse::new(stream).keep_alive(KeepAlive::default())
}

#[derive(Clone, serde::Serialize)]
struct Price {
    seq: u64,
    cents: u64,
}

fn price_event(price: &Price) -> Result<Event, axum::Error> {
    let event = Event::default()
        .event("price")
        .id(price.seq.to_string())
        .retry(Duration::from_millis(2500))
        .comment("cents")
        .json_data(price)?;
    Ok(event)
}

/// A broadcast channel, as real code streams it: `Result` items from `BroadcastStream`.
async fn prices(
    State(tx): State<broadcast::Sender<Price>>,
) -> Sse<impl Stream<Item = Result<Event, axum::Error>>> {
    let stream = BroadcastStream::new(tx.subscribe()).map(|price| {
        let price = price.map_err(axum::Error::new)?;
        price_event(&price)
    });
    Sse::new(stream).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_millis(100))
            .text("ping"),
    )
}

/// An mpsc channel with `ReceiverStream` and `map(Ok)`; the sender writes `a`, then an event
/// with a newline in its ID (axum panics there), then `c`.
async fn invalid_id() -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (tx, rx) = mpsc::channel(4);
    for event in [
        Event::default().id("1").data("a"),
        Event::default().id("2\nevent: forged").data("b"),
        Event::default().id("3").data("c"),
    ] {
        tx.send(event).await.expect("room in the channel");
    }
    Sse::new(ReceiverStream::new(rx).map(Ok))
}

/// An `Err` item between two events.
async fn error_item() -> Sse<impl Stream<Item = Result<Event, std::io::Error>>> {
    let items = vec![
        Ok(Event::default().data("first\r\nsecond")),
        Err(std::io::Error::other("the source broke")),
        Ok(Event::default().data("never")),
    ];
    Sse::new(stream::iter(items))
}

async fn start(tx: broadcast::Sender<Price>) -> SocketAddr {
    let app = Router::new()
        .route("/sse", get(sse_handler))
        .route("/prices", get(prices))
        .route("/invalid-id", get(invalid_id))
        .route("/error-item", get(error_item))
        .with_state(tx);
    support::serve(app).await
}

/// The whole body of a response that ends by itself.
async fn body(addr: SocketAddr, path: &str) -> String {
    let response = support::request(addr, path, &[]).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let body = tokio::time::timeout(Duration::from_secs(10), response.into_body().collect())
        .await
        .expect("the stream ends in time")
        .expect("a clean end")
        .to_bytes();
    String::from_utf8(body.to_vec()).expect("utf-8")
}

#[tokio::test]
async fn axums_documentation_example_streams_the_same_events() {
    let addr = start(broadcast::channel(4).0).await;
    assert_eq!(
        body(addr, "/sse").await,
        ":\ndata: hi!\n\ndata: hi!\n\ndata: hi!\n\n"
    );
}

#[tokio::test]
async fn broadcast_results_with_json_data_and_a_keep_alive_text() {
    let (tx, _keep) = broadcast::channel(4);
    let addr = start(tx.clone()).await;
    let response = support::request(addr, "/prices", &[]).await;
    let mut body = response.into_body();
    let mut seen = String::new();
    let work = async {
        // The subscription exists once the headers are out; publish until the event shows.
        while !seen.contains("\"seq\":7") {
            let _ = tx.send(Price {
                seq: 7,
                cents: 1999,
            });
            let frame = body.frame().await.expect("open").expect("frame");
            seen.push_str(std::str::from_utf8(&frame.into_data().expect("data")).expect("utf-8"));
        }
        while !seen.ends_with(": ping\n") {
            let frame = body.frame().await.expect("open").expect("frame");
            seen.push_str(std::str::from_utf8(&frame.into_data().expect("data")).expect("utf-8"));
        }
    };
    tokio::time::timeout(Duration::from_secs(10), work)
        .await
        .expect("in time");
    assert!(
        seen.contains(
            ": cents\nevent: price\nretry: 2500\nid: 7\ndata: {\"seq\":7,\"cents\":1999}\n\n"
        ),
        "{seen:?}"
    );
}

#[tokio::test]
async fn an_event_with_a_newline_in_its_id_is_not_sent_and_ends_the_stream() {
    let addr = start(broadcast::channel(4).0).await;
    let body = body(addr, "/invalid-id").await;
    // No forged `event:` line, no event 3 after a silent gap: the client resumes after 1.
    assert_eq!(body, ":\nid: 1\ndata: a\n\n");
}

#[tokio::test]
async fn an_err_item_ends_the_stream_after_the_events_before_it() {
    let addr = start(broadcast::channel(4).0).await;
    assert_eq!(
        body(addr, "/error-item").await,
        ":\ndata: first\ndata: second\n\n"
    );
}
