//! Bytes split anywhere, events delivered as they arrive, and how each kind of body ends.

mod support;

use herald_client::{EventSource, ReadyState};
use support::*;

#[tokio::test]
async fn bytes_split_anywhere_give_the_same_events() {
    let stream = "\u{feff}event: greeting\r\nid: 1\r\ndata: h\u{e9}llo\r\ndata: world\r\n\r\n: ping\rretry: 1000\rdata: two\r\r";
    let mut script = vec![sse_head()];
    for byte in stream.as_bytes() {
        script.push(Step::Write(vec![*byte]));
        script.push(pause(1));
    }
    script.push(Step::Hold);
    let server = Server::start(vec![script]).await;
    let mut source = EventSource::new(&server.url("/")).expect("source");
    expect_open(&mut source).await;
    assert_eq!(
        expect_message(&mut source).await,
        ("greeting".into(), "h\u{e9}llo\nworld".into(), "1".into())
    );
    assert_eq!(
        expect_message(&mut source).await,
        ("message".into(), "two".into(), "1".into())
    );
}

#[tokio::test]
async fn events_are_yielded_while_the_response_goes_on() {
    let server = Server::start(vec![sse_then_hold("data: first\n\n")]).await;
    let mut source = EventSource::new(&server.url("/")).expect("source");
    expect_open(&mut source).await;
    assert_eq!(expect_message(&mut source).await.1, "first");
}

#[tokio::test]
async fn an_event_over_the_size_limit_is_reported_and_the_stream_goes_on() {
    let server = Server::start(vec![sse_then_hold("data: 0123456789\n\ndata: ok\n\n")]).await;
    let mut source = EventSource::builder(&server.url("/"))
        .decoder(herald_codec::Decoder::builder().max_event_size(4))
        .build()
        .expect("source");
    expect_open(&mut source).await;
    let error = expect_error(&mut source).await;
    assert!(error.is_decode() && !error.is_fatal(), "{error}");
    assert_eq!(source.ready_state(), herald_client::ReadyState::Open);
    assert_eq!(expect_message(&mut source).await.1, "ok");
}

#[tokio::test]
async fn a_content_length_body_ends_the_stream_even_on_a_kept_alive_connection() {
    let body = "id: 1\ndata: a\n\n";
    let length = body.len().to_string();
    let mut server = Server::start(vec![
        vec![
            write(&format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {length}\r\n\r\n{body}"
            )),
            Step::Hold,
        ],
        sse_then_hold("data: b\n\n"),
    ])
    .await;
    let mut source = fast(&server.url("/")).build().expect("source");
    expect_open(&mut source).await;
    assert_eq!(expect_message(&mut source).await.1, "a");
    let error = expect_error(&mut source).await;
    assert!(error.is_end_of_stream(), "{error}");
    assert_eq!(source.ready_state(), ReadyState::Connecting);
    expect_open(&mut source).await;
    assert_eq!(expect_message(&mut source).await.1, "b");
    server.next_request().await;
    assert_eq!(
        server.next_request().await.header("last-event-id"),
        Some("1")
    );
}

#[tokio::test]
async fn a_body_shorter_than_its_content_length_is_a_broken_connection() {
    let mut server = Server::start(vec![
        vec![
            write("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 100\r\n\r\ndata: a\n\ndata: cut"),
            Step::Close,
        ],
        sse_then_hold(""),
    ])
    .await;
    let mut source = fast(&server.url("/")).build().expect("source");
    expect_open(&mut source).await;
    assert_eq!(expect_message(&mut source).await.1, "a");
    let error = expect_error(&mut source).await;
    assert!(
        error.is_disconnect() && !error.is_end_of_stream(),
        "{error}"
    );
    expect_open(&mut source).await;
    server.next_request().await;
    server.next_request().await;
}

#[tokio::test]
async fn a_chunked_body_that_ends_cleanly_ends_the_stream() {
    let server = Server::start(vec![
        vec![
            head(
                "200 OK",
                &[
                    ("Content-Type", "text/event-stream"),
                    ("Transfer-Encoding", "chunked"),
                ],
            ),
            write("9\r\ndata: a\n\n\r\n0\r\n\r\n"),
            Step::Hold,
        ],
        sse_then_hold("data: b\n\n"),
    ])
    .await;
    let mut source = fast(&server.url("/")).build().expect("source");
    expect_open(&mut source).await;
    assert_eq!(expect_message(&mut source).await.1, "a");
    assert!(expect_error(&mut source).await.is_end_of_stream());
    expect_open(&mut source).await;
    assert_eq!(expect_message(&mut source).await.1, "b");
}

#[tokio::test]
async fn a_bom_is_stripped_at_the_start_of_every_connection() {
    // format-bom-2: one BOM is stripped, a second is part of the first field's name.
    let server = Server::start(vec![
        sse("\u{feff}data: 1\n\n"),
        sse_then_hold("\u{feff}\u{feff}data: ignored\n\n\u{feff}data: no\n\ndata: 2\n\n"),
    ])
    .await;
    let mut source = fast(&server.url("/")).build().expect("source");
    expect_open(&mut source).await;
    assert_eq!(expect_message(&mut source).await.1, "1");
    expect_error(&mut source).await;
    expect_open(&mut source).await;
    assert_eq!(expect_message(&mut source).await.1, "2");
}

#[tokio::test]
async fn an_id_without_data_still_sets_the_last_event_id() {
    let mut server = Server::start(vec![sse("id: 9\n\n"), sse_then_hold("")]).await;
    let mut source = fast(&server.url("/")).build().expect("source");
    expect_open(&mut source).await;
    expect_error(&mut source).await;
    assert_eq!(source.last_event_id(), "9");
    expect_open(&mut source).await;
    server.next_request().await;
    assert_eq!(
        server.next_request().await.header("last-event-id"),
        Some("9")
    );
}

#[tokio::test]
async fn a_url_fragment_is_not_sent() {
    let mut server = Server::start(vec![sse_then_hold("data: a\n\n")]).await;
    let mut source = fast(&server.url("/path?q=1#fragment"))
        .build()
        .expect("source");
    expect_open(&mut source).await;
    assert_eq!(server.next_request().await.target, "/path?q=1");
}

#[tokio::test]
async fn last_event_id_follows_the_events_taken_not_the_chunk_read() {
    // Both events arrive in one chunk; the decoder reads the whole chunk at once.
    let _server = Server::start(vec![sse_then_hold("id: 1\ndata: a\n\nid: 2\ndata: b\n\n")]).await;
    let mut source = fast(&_server.url("/")).build().expect("source");
    expect_open(&mut source).await;
    assert_eq!(expect_message(&mut source).await.1, "a");
    assert_eq!(source.last_event_id(), "1");
    assert_eq!(expect_message(&mut source).await.1, "b");
    assert_eq!(source.last_event_id(), "2");
}
