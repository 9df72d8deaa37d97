//! herald-server behind a real axum server on loopback: headers, the initial comment, keep-alives,
//! `Last-Event-ID` from header or query, replay-then-live, and the discovery link.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::get;
use futures::Stream;
use futures::StreamExt;
use herald_codec::{Decoder, Frame};
use herald_server::{DiscoveryLink, Event, LastEventId, ReplayThenLive, Sse};
use http_body_util::BodyExt;
use support::request;

mod support;

/// Events 1..=5 exist; a client resuming after N gets N+1..=5 and then a keep-alive.
async fn events(last: LastEventId) -> Sse<impl Stream<Item = Event>> {
    let after: u64 = last.0.and_then(|id| id.parse().ok()).unwrap_or(0);
    // "History" holds 1..=3; the "live" source already holds 3..=5: 3 must be sent once.
    let history: Vec<u64> = (1..=3).filter(|n| *n > after).collect();
    let live = futures::stream::iter((3..=5u64).filter(move |n| *n > after))
        .chain(futures::stream::pending());
    let stream = ReplayThenLive::new(history, 3.max(after), live, |n: &u64| *n).map(|n| {
        Event::default()
            .id(n.to_string())
            .data(format!("event {n}"))
    });
    Sse::new(stream).keep_alive(Duration::from_millis(200))
}

async fn page() -> impl IntoResponse {
    let link = DiscoveryLink::new("https://hub.example.com/.well-known/mercure")
        .last_event_id("5")
        .to_header_value()
        .expect("link");
    ([(http::header::LINK, link)], "<html></html>")
}

async fn start() -> SocketAddr {
    let app = Router::new()
        .route("/events", get(events))
        .route("/page", get(page));
    support::serve(app).await
}

/// Reads frames until `count` events and one keep-alive comment after them arrived.
async fn read(
    response: http::Response<hyper::body::Incoming>,
    count: usize,
) -> (Vec<String>, String) {
    let mut body = response.into_body();
    let mut decoder = Decoder::builder().comments(true).build();
    let mut raw = Vec::new();
    let mut ids = Vec::new();
    let mut comments = 0;
    let work = async {
        loop {
            while let Some(frame) = decoder.next_frame().expect("valid") {
                match frame {
                    Frame::Event(e) => ids.push(e.last_event_id().to_owned()),
                    Frame::Comment(_) => comments += 1,
                    Frame::Retry(_) => {}
                }
            }
            if ids.len() == count && comments >= 2 {
                return;
            }
            let frame = body.frame().await.expect("open").expect("frame");
            if let Ok(data) = frame.into_data() {
                raw.extend_from_slice(&data);
                decoder.push(data);
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), work)
        .await
        .expect("in time");
    (ids, String::from_utf8(raw).expect("utf-8"))
}

#[tokio::test]
async fn serves_replay_then_live_without_duplicate_with_headers_and_keep_alive() {
    let addr = start().await;
    let response = request(addr, "/events", &[]).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    let (ids, raw) = read(response, 5).await;
    assert_eq!(ids, ["1", "2", "3", "4", "5"]);
    assert!(raw.starts_with(":\nid: 1\ndata: event 1\n\n"), "{raw}");
    assert!(
        raw.ends_with("\n\n:\n"),
        "a keep-alive after the silence: {raw}"
    );
}

#[tokio::test]
async fn last_event_id_from_header_or_query() {
    let addr = start().await;
    let (ids, _) = read(request(addr, "/events", &[("last-event-id", "2")]).await, 3).await;
    assert_eq!(ids, ["3", "4", "5"]);
    let (ids, _) = read(request(addr, "/events?lastEventID=4", &[]).await, 1).await;
    assert_eq!(ids, ["5"]);
}

#[tokio::test]
async fn discovery_link_header() {
    let addr = start().await;
    let response = request(addr, "/page", &[]).await;
    assert_eq!(
        response.headers()["link"],
        r#"<https://hub.example.com/.well-known/mercure>; rel="mercure"; last-event-id="5""#
    );
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(&body[..], b"<html></html>");
}
