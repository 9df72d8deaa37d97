//! Opening a stream: the request a browser sends, and what each kind of answer does.

mod support;

use std::time::Duration;

use herald_client::{EventSource, ReadyState};
use support::*;

const QUIET: Duration = Duration::from_millis(300);

#[tokio::test]
async fn request_has_the_browser_headers_and_no_last_event_id() {
    let mut server = Server::start(vec![sse_then_hold("data: hi\n\n")]).await;
    let mut source = EventSource::new(&server.url("/events?x=1")).expect("source");
    assert_eq!(source.ready_state(), ReadyState::Connecting);
    let opened = expect_open(&mut source).await;
    assert_eq!(source.ready_state(), ReadyState::Open);
    assert_eq!(opened.url().as_str(), server.url("/events?x=1"));
    assert_eq!(opened.version(), http::Version::HTTP_11);
    assert_eq!(
        expect_message(&mut source).await,
        ("message".into(), "hi".into(), "".into())
    );
    let request = server.next_request().await;
    assert_eq!(request.method, "GET");
    assert_eq!(request.target, "/events?x=1");
    assert_eq!(request.header("accept"), Some("text/event-stream"));
    assert_eq!(request.header("cache-control"), Some("no-cache"));
    assert_eq!(request.header("last-event-id"), None);
    assert_eq!(request.header("cookie"), None);
    assert!(request.body.is_empty());
}

#[tokio::test]
async fn a_starting_id_is_sent_on_the_first_request() {
    let mut server = Server::start(vec![sse_then_hold("data: hi\n\n")]).await;
    let mut source = EventSource::builder(&server.url("/"))
        .last_event_id("41")
        .build()
        .expect("source");
    assert_eq!(source.last_event_id(), "41");
    expect_open(&mut source).await;
    assert_eq!(
        server.next_request().await.header("last-event-id"),
        Some("41")
    );
    assert_eq!(expect_message(&mut source).await.2, "41");
}

#[tokio::test]
async fn a_hand_set_last_event_id_header_is_a_starting_id() {
    let mut server =
        Server::start(vec![sse_then_hold("id\ndata: hi\n\n"), sse_then_hold("")]).await;
    let mut source = fast(&server.url("/"))
        .header("Last-Event-ID", "7")
        .build()
        .expect("source");
    expect_open(&mut source).await;
    assert_eq!(
        server.next_request().await.header("last-event-id"),
        Some("7")
    );
    assert_eq!(expect_message(&mut source).await.2, "");
}

#[tokio::test]
async fn event_stream_content_type_with_parameters_in_any_case_opens() {
    let server = Server::start(vec![vec![
        head(
            "200 OK",
            &[("Content-Type", "Text/Event-Stream; charset=UTF-8")],
        ),
        write("data: ok\n\n"),
        Step::Hold,
    ]])
    .await;
    let mut source = EventSource::new(&server.url("/")).expect("source");
    expect_open(&mut source).await;
    assert_eq!(expect_message(&mut source).await.1, "ok");
}

#[tokio::test]
async fn no_content_closes_for_good() {
    let mut server = Server::start(vec![status("204 No Content", &[])]).await;
    let mut source = fast(&server.url("/")).build().expect("source");
    let error = expect_error(&mut source).await;
    assert!(error.is_no_content(), "{error}");
    assert!(error.is_fatal());
    assert_eq!(source.ready_state(), ReadyState::Closed);
    expect_end(&mut source).await;
    server.next_request().await;
    server.no_request_within(QUIET).await;
}

#[tokio::test]
async fn another_status_fails_the_connection() {
    for line in [
        "500 Internal Server Error",
        "404 Not Found",
        "201 Created",
        "503 Service Unavailable",
    ] {
        let mut server = Server::start(vec![status(line, &[])]).await;
        let mut source = fast(&server.url("/")).build().expect("source");
        let error = expect_error(&mut source).await;
        assert!(error.is_status(), "{error}");
        assert_eq!(error.status().map(|s| s.to_string()), Some(line.into()));
        assert!(error.is_fatal());
        assert_eq!(source.ready_state(), ReadyState::Closed);
        expect_end(&mut source).await;
        server.next_request().await;
        server.no_request_within(Duration::from_millis(150)).await;
    }
}

#[tokio::test]
async fn a_wrong_content_type_fails_the_connection() {
    let mut server = Server::start(vec![vec![
        head("200 OK", &[("Content-Type", "text/plain")]),
        write("data: not an event stream\n\n"),
        Step::Close,
    ]])
    .await;
    let mut source = fast(&server.url("/")).build().expect("source");
    let error = expect_error(&mut source).await;
    assert!(error.is_content_type(), "{error}");
    assert!(error.to_string().contains("text/plain"), "{error}");
    assert_eq!(source.ready_state(), ReadyState::Closed);
    expect_end(&mut source).await;
    server.next_request().await;
    server.no_request_within(QUIET).await;
}

#[tokio::test]
async fn a_missing_content_type_fails_the_connection() {
    let mut server = Server::start(vec![vec![
        head("200 OK", &[]),
        write("data: x\n\n"),
        Step::Close,
    ]])
    .await;
    let mut source = fast(&server.url("/")).build().expect("source");
    let error = expect_error(&mut source).await;
    assert!(error.is_content_type(), "{error}");
    assert_eq!(source.ready_state(), ReadyState::Closed);
    expect_end(&mut source).await;
    server.next_request().await;
    server.no_request_within(QUIET).await;
}

#[tokio::test]
async fn bad_urls_and_headers_are_builder_errors() {
    let error = EventSource::new("not a url").expect_err("invalid");
    assert!(error.is_builder());
    let error = EventSource::new("ftp://127.0.0.1/").expect_err("scheme");
    assert!(error.is_builder());
    let error = EventSource::builder("http://127.0.0.1/")
        .header("bad header", "x")
        .build()
        .expect_err("header");
    assert!(error.is_builder());
    let error = EventSource::builder("http://127.0.0.1/")
        .add_root_certificates_pem(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n")
        .build()
        .expect_err("pem");
    assert!(error.is_builder());
}

#[test]
fn the_source_moves_across_tasks_and_its_errors_across_threads() {
    fn send_unpin<T: Send + Unpin + 'static>() {}
    fn error<T: std::error::Error + Send + Sync + 'static>() {}
    send_unpin::<EventSource>();
    send_unpin::<herald_client::CloseHandle>();
    error::<herald_client::Error>();
}

#[test]
fn a_starting_id_with_control_characters_is_a_builder_error() {
    for id in ["a\nb", "a\rb", "a\0b", "a\u{1}b"] {
        let error = EventSource::builder("http://127.0.0.1/")
            .last_event_id(id)
            .build()
            .expect_err("refused");
        assert!(error.is_builder(), "{id:?}: {error}");
    }
    let source = EventSource::builder("http://127.0.0.1/")
        .last_event_id("caf\u{e9} \u{2026}")
        .build()
        .expect("non-ASCII is fine");
    assert_eq!(source.last_event_id(), "caf\u{e9} \u{2026}");
}

#[tokio::test]
async fn several_content_type_values_are_extracted_as_fetch_does() {
    // The last valid MIME type wins: here `text/event-stream`, so the stream opens...
    let server = Server::start(vec![vec![
        head(
            "200 OK",
            &[
                ("Content-Type", "text/plain"),
                ("Content-Type", "text/event-stream"),
            ],
        ),
        write("data: ok\n\n"),
        Step::Hold,
    ]])
    .await;
    let mut source = fast(&server.url("/")).build().expect("source");
    expect_open(&mut source).await;
    assert_eq!(expect_message(&mut source).await.1, "ok");
    // ...and here `text/html`, so it fails, and the error names both values.
    let server = Server::start(vec![vec![
        head(
            "200 OK",
            &[("Content-Type", "text/event-stream, text/html")],
        ),
        write("data: no\n\n"),
        Step::Hold,
    ]])
    .await;
    let mut source = fast(&server.url("/")).build().expect("source");
    let error = expect_error(&mut source).await;
    assert!(error.is_content_type(), "{error}");
    assert!(error.to_string().contains("text/html"), "{error}");
    assert_eq!(source.ready_state(), ReadyState::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_from_another_thread_always_ends_a_waiting_source() {
    // The close may land at any point of a poll; it must never leave the source waiting on a
    // connection that says nothing.
    let server = Server::start((0..20).map(|_| vec![Step::Hold]).collect()).await;
    for round in 0..20u64 {
        let mut source = EventSource::new(&server.url("/")).expect("source");
        let handle = source.close_handle();
        let closer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_micros(round * 50));
            handle.close();
        });
        expect_end(&mut source).await;
        closer.join().expect("closer");
        assert_eq!(source.ready_state(), ReadyState::Closed);
    }
}
