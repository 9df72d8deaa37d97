//! The demos under `examples/`, served on loopback and read with herald-client (an
//! `EventSource` that follows the browser's rules): each page is served, and each stream says
//! what its page shows. Chromium runs the pages themselves in herald-cli's browser tests.
// Each example declares the demos' shared `support` module: here it is loaded once per example.
#![allow(clippy::unwrap_used, missing_docs, dead_code, clippy::duplicate_mod)]

use std::time::Duration;

use futures::StreamExt;
use herald_client::{EventSource, Item};

#[path = "../examples/clock.rs"]
mod clock;
#[path = "../examples/named-events.rs"]
mod named_events;
#[path = "../examples/ten-then-close.rs"]
mod ten_then_close;

const PERIOD: Duration = Duration::from_millis(50);
/// How long a demo may take to send what a test waits for (a bound, not a speed test).
const DEADLINE: Duration = Duration::from_secs(20);

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    origin
}

/// The page at `/`, as text.
async fn page(origin: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(origin.trim_start_matches("http://"))
        .await
        .unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_string(&mut text),
    )
    .await
    .expect("the page in time")
    .unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    text
}

/// Every item (`open`, or `type|id|data`) and error until `count` items or the source ends.
async fn read(source: &mut EventSource, count: usize) -> (Vec<String>, Vec<herald_client::Error>) {
    let mut items = Vec::new();
    let mut errors = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        while items.len() < count {
            match source.next().await {
                Some(Ok(Item::Open(_))) => items.push("open".to_owned()),
                Some(Ok(Item::Message(e))) => items.push(format!(
                    "{}|{}|{}",
                    e.event_type(),
                    e.last_event_id(),
                    e.data()
                )),
                Some(Err(error)) => errors.push(error),
                None => break,
            }
        }
    })
    .await
    .expect("the demo keeps sending");
    (items, errors)
}

#[tokio::test]
async fn clock_sends_the_time_every_period() {
    let origin = serve(clock::app(PERIOD)).await;
    let html = page(&origin).await;
    assert!(html.contains("id=\"start\"") && html.contains("source.close()"));
    let mut source = EventSource::new(&format!("{origin}/clock")).unwrap();
    let (items, errors) = read(&mut source, 4).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(items[0], "open");
    for (n, item) in items[1..].iter().enumerate() {
        let (prefix, time) = item.rsplit_once('|').unwrap();
        assert_eq!(prefix, format!("message|{n}"));
        assert_eq!(time.len(), "00:00:00 UTC".len(), "{time}");
        assert!(
            time.ends_with(" UTC") && time.as_bytes()[2] == b':',
            "{time}"
        );
    }
    assert_eq!(
        clock::time_of_day(std::time::UNIX_EPOCH + Duration::from_secs(86_400 + 3_723)),
        "01:02:03 UTC"
    );
}

#[tokio::test]
async fn named_events_carry_names_and_ages_after_one_unnamed_greeting() {
    let origin = serve(named_events::app(PERIOD)).await;
    assert!(page(&origin).await.contains("addEventListener(\"age\""));
    let mut source = EventSource::new(&format!("{origin}/people")).unwrap();
    let (items, errors) = read(&mut source, 6).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        items,
        [
            "open",
            "message||a name and an age follow, as named events",
            "name|0|Ada",
            "age|1|36",
            "name|2|Grace",
            "age|3|85",
        ]
    );
}

#[tokio::test]
async fn ten_then_close_ends_the_stream_and_answers_204_to_the_reconnection() {
    let origin = serve(ten_then_close::app(PERIOD)).await;
    assert!(page(&origin).await.contains("new EventSource(\"/ten\")"));
    let mut source = EventSource::new(&format!("{origin}/ten")).unwrap();
    let (items, errors) = read(&mut source, usize::MAX).await;
    let expected: Vec<String> = std::iter::once("open".to_owned())
        .chain((1..=10).map(|n| format!("message|{n}|message {n} of 10")))
        .collect();
    assert_eq!(
        items, expected,
        "ten messages, and no second connection opened"
    );
    // The end of the stream (a lost connection), then the 204 that closes the source for good.
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].is_end_of_stream(), "{:?}", errors[0]);
    assert!(errors[1].is_no_content(), "{:?}", errors[1]);
    assert_eq!(source.ready_state(), herald_client::ReadyState::Closed);

    // A client that left after the fourth message resumes with the fifth.
    let mut resumed = EventSource::builder(&format!("{origin}/ten"))
        .last_event_id("4")
        .build()
        .unwrap();
    let (items, _) = read(&mut resumed, 2).await;
    assert_eq!(items, ["open", "message|5|message 5 of 10"]);
}
