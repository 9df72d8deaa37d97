//! The web-platform-tests `eventsource/` expectations that apply to a client outside a browser,
//! each ported as `wpt_<file name>` against the scripted loopback server (timings scaled down).

mod support;

use std::time::{Duration, Instant};

use herald_client::{EventSource, ReadyState};
use support::*;

const QUIET: Duration = Duration::from_millis(150);

/// request-status-error: every status but 200 fails the connection (closed, no reconnection).
#[tokio::test]
async fn wpt_request_status_error() {
    for line in [
        "204 No Content",
        "205 Reset Content",
        "210 TEST",
        "299 TEST",
        "404 Not Found",
        "410 Gone",
        "503 Service Unavailable",
    ] {
        let mut server = Server::start(vec![
            status(line, &[("Content-Type", "text/event-stream")]),
            sse_then_hold("data: never\n\n"),
        ])
        .await;
        let mut source = fast(&server.url("/")).build().expect("source");
        let error = expect_error(&mut source).await;
        assert!(error.is_fatal(), "{line}: {error}");
        assert_eq!(
            error.status().map(|s| s.as_u16().to_string()),
            Some(line[..3].into())
        );
        assert_eq!(error.is_no_content(), line.starts_with("204"), "{line}");
        assert_eq!(source.ready_state(), ReadyState::Closed, "{line}");
        expect_end(&mut source).await;
        server.next_request().await;
        server.no_request_within(QUIET).await;
    }
}

async fn fails_with_content_type(content_type: &str) {
    let mut server = Server::start(vec![vec![
        head("200 OK", &[("Content-Type", content_type)]),
        write("data: data\n\n"),
        Step::Hold,
    ]])
    .await;
    let mut source = fast(&server.url("/")).build().expect("source");
    let error = expect_error(&mut source).await;
    assert!(
        error.is_content_type() && error.is_fatal(),
        "{content_type}: {error}"
    );
    assert_eq!(source.ready_state(), ReadyState::Closed);
    expect_end(&mut source).await;
    server.next_request().await;
    server.no_request_within(QUIET).await;
}

async fn opens_with_content_type(content_type: &str) {
    let server = Server::start(vec![vec![
        head("200 OK", &[("Content-Type", content_type)]),
        write("data: data\n\n"),
        Step::Hold,
    ]])
    .await;
    let mut source = fast(&server.url("/")).build().expect("source");
    expect_open(&mut source).await;
    assert_eq!(
        expect_message(&mut source).await.1,
        "data",
        "{content_type}"
    );
}

/// format-mime-bogus: a type that does not even parse fails the connection.
#[tokio::test]
async fn wpt_format_mime_bogus() {
    fails_with_content_type("x bogus").await;
}

/// format-mime-valid-bogus: a valid type other than `text/event-stream` fails it.
#[tokio::test]
async fn wpt_format_mime_valid_bogus() {
    fails_with_content_type("text/x-bogus").await;
}

/// format-mime-trailing-semicolon: `text/event-stream;` is `text/event-stream`.
#[tokio::test]
async fn wpt_format_mime_trailing_semicolon() {
    opens_with_content_type("text/event-stream;").await;
}

/// Parameters are ignored, a wrong `charset` included: the stream is UTF-8 regardless.
#[tokio::test]
async fn wpt_format_mime_charset_parameters_are_ignored() {
    opens_with_content_type("text/event-stream;charset=utf-8").await;
    opens_with_content_type("text/event-stream; charset=windows-1252").await;
}

/// request-accept, request-cache-control: `Accept: text/event-stream` and, as fetch adds for the
/// `no-store` cache mode, `Cache-Control: no-cache` and `Pragma: no-cache`, on every request.
#[tokio::test]
async fn wpt_request_cache_control_and_accept() {
    let mut server = Server::start(vec![sse("data: a\n\n"), sse_then_hold("")]).await;
    let mut source = fast(&server.url("/")).build().expect("source");
    expect_open(&mut source).await;
    expect_message(&mut source).await;
    expect_error(&mut source).await;
    expect_open(&mut source).await;
    for _ in 0..2 {
        let request = server.next_request().await;
        assert_eq!(request.header("accept"), Some("text/event-stream"));
        assert_eq!(request.header("cache-control"), Some("no-cache"));
        assert_eq!(request.header("pragma"), Some("no-cache"));
    }
}

/// eventsource-reconnect (200): a `retry:` line needs no blank line to apply, and the end of a
/// 200 stream reconnects after it.
#[tokio::test]
async fn wpt_eventsource_reconnect_200() {
    let mut server = Server::start(vec![sse("retry: 2\n"), sse_then_hold("data: data\n\n")]).await;
    // The browser's defaults: 3 s until the server's `retry: 2` applies.
    let mut source = EventSource::new(&server.url("/")).expect("source");
    expect_open(&mut source).await;
    let error = expect_error(&mut source).await;
    let lost_at = Instant::now();
    assert!(error.is_end_of_stream(), "{error}");
    expect_open(&mut source).await;
    assert_eq!(expect_message(&mut source).await.1, "data");
    server.next_request().await;
    let waited = server.next_request().await.at.duration_since(lost_at);
    assert!(waited < Duration::from_millis(1000), "{waited:?}");
}

/// eventsource-reconnect (reconnection events): message, then an error while CONNECTING, then
/// the next connection's message.
#[tokio::test]
async fn wpt_eventsource_reconnect_test_reconnection_events() {
    let server = Server::start(vec![
        sse("retry: 2\ndata: ok\n\n"),
        sse_then_hold("data: data\n\n"),
    ])
    .await;
    let mut source = EventSource::new(&server.url("/")).expect("source");
    expect_open(&mut source).await;
    assert_eq!(expect_message(&mut source).await.1, "ok");
    expect_error(&mut source).await;
    assert_eq!(source.ready_state(), ReadyState::Connecting);
    expect_open(&mut source).await;
    assert_eq!(expect_message(&mut source).await.1, "data");
    source.close();
    assert_eq!(source.ready_state(), ReadyState::Closed);
}

/// eventsource-close (test events): opened, lost (CONNECTING), reconnected, lost (CONNECTING),
/// then a 204 closes it (CLOSED) and nothing follows.
#[tokio::test]
async fn wpt_eventsource_close_test_events() {
    let mut server = Server::start(vec![
        sse("retry: 2\ndata: opened\n\n"),
        sse("data: reconnected\n\n"),
        vec![
            head(
                "204 NO CONTENT (CLOSE)",
                &[("Content-Type", "text/event-stream")],
            ),
            write("data: closed\n\n"),
            Step::Close,
        ],
        sse_then_hold("data: never\n\n"),
    ])
    .await;
    let mut source = EventSource::new(&server.url("/")).expect("source");
    expect_open(&mut source).await;
    assert_eq!(expect_message(&mut source).await.1, "opened");
    expect_error(&mut source).await;
    assert_eq!(source.ready_state(), ReadyState::Connecting);
    expect_open(&mut source).await;
    assert_eq!(expect_message(&mut source).await.1, "reconnected");
    expect_error(&mut source).await;
    assert_eq!(source.ready_state(), ReadyState::Connecting);
    let error = expect_error(&mut source).await;
    assert!(error.is_no_content(), "{error}");
    assert_eq!(source.ready_state(), ReadyState::Closed);
    expect_end(&mut source).await;
    for _ in 0..3 {
        server.next_request().await;
    }
    server.no_request_within(QUIET).await;
}

/// eventsource-close: `close()` while OPEN makes it CLOSED at once.
#[tokio::test]
async fn wpt_eventsource_close() {
    let mut server = Server::start(vec![sse_then_hold("data: data\n\n")]).await;
    let mut source = EventSource::new(&server.url("/")).expect("source");
    assert_eq!(source.ready_state(), ReadyState::Connecting);
    expect_open(&mut source).await;
    assert_eq!(source.ready_state(), ReadyState::Open);
    source.close();
    assert_eq!(source.ready_state(), ReadyState::Closed);
    expect_end(&mut source).await;
    server.client_closed().await;
}

/// eventsource-request-cancellation: closed before the response arrives, nothing is yielded,
/// the request is cancelled and the state stays CLOSED.
#[tokio::test]
async fn wpt_eventsource_request_cancellation() {
    let mut server = Server::start(vec![vec![
        pause(1000),
        sse_head(),
        write("retry:1000\ndata:abc\n\n"),
        Step::Hold,
    ]])
    .await;
    let mut source = EventSource::new(&server.url("/")).expect("source");
    // Start the request, then give up on it.
    let pending = tokio::time::timeout(
        Duration::from_millis(100),
        futures::StreamExt::next(&mut source),
    )
    .await;
    assert!(pending.is_err(), "nothing yet: {pending:?}");
    server.next_request().await;
    source.close();
    assert_eq!(source.ready_state(), ReadyState::Closed);
    expect_end(&mut source).await;
    assert_eq!(source.ready_state(), ReadyState::Closed);
    server.no_request_within(QUIET).await;
}

/// format-field-retry-bogus: `retry:1000x` is ignored, the earlier `retry:2000` holds (scaled
/// to 200 ms, and within the test's 10 %, plus scheduling slack).
#[tokio::test]
async fn wpt_format_field_retry_bogus() {
    let mut server = Server::start(vec![
        sse("retry:200\nretry:100x\ndata:x\n\n\n"),
        sse_then_hold(""),
    ])
    .await;
    let mut source = EventSource::new(&server.url("/")).expect("source");
    expect_open(&mut source).await;
    expect_message(&mut source).await;
    expect_error(&mut source).await;
    let lost_at = Instant::now();
    expect_open(&mut source).await;
    server.next_request().await;
    let waited = server.next_request().await.at.duration_since(lost_at);
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_millis(400),
        "{waited:?}"
    );
}

/// format-field-id: a non-ASCII ID (`…`) is sent back as `Last-Event-ID` in UTF-8.
#[tokio::test]
async fn wpt_format_field_id() {
    let mut server = Server::start(vec![
        sse("id: \u{2026}\nretry: 20\ndata: hello\n\n"),
        sse_then_hold(""),
    ])
    .await;
    let mut source = EventSource::new(&server.url("/")).expect("source");
    expect_open(&mut source).await;
    assert_eq!(expect_message(&mut source).await.2, "\u{2026}");
    expect_error(&mut source).await;
    expect_open(&mut source).await;
    server.next_request().await;
    assert_eq!(
        server.next_request().await.header("last-event-id"),
        Some("\u{2026}")
    );
}

/// format-field-id-3: the last event ID persists, changes and persists, and resets.
#[tokio::test]
async fn wpt_format_field_id_3() {
    for (body, ids) in [
        ("id: 1\ndata: 1\n\ndata:2\n\n", &["1", "1"][..]),
        (
            "id: 1\ndata: 1\n\nid: 2\ndata:2\n\ndata:3\n\n",
            &["1", "2", "2"],
        ),
        (
            "id: 1\ndata: 1\n\nid:\ndata:2\n\ndata:3\n\n",
            &["1", "", ""],
        ),
    ] {
        let server = Server::start(vec![sse_then_hold(body)]).await;
        let mut source = EventSource::new(&server.url("/")).expect("source");
        expect_open(&mut source).await;
        for id in ids {
            assert_eq!(expect_message(&mut source).await.2, *id, "{body:?}");
        }
        assert_eq!(source.last_event_id(), *ids.last().expect("an ID"));
    }
}

/// format-data-before-final-empty-line: an event the stream ends before closing is dropped.
#[tokio::test]
async fn wpt_format_data_before_final_empty_line() {
    let server = Server::start(vec![
        sse("retry:20\ndata:test\n\ndata:test"),
        sse_then_hold("data:after\n\n"),
    ])
    .await;
    let mut source = EventSource::new(&server.url("/")).expect("source");
    expect_open(&mut source).await;
    assert_eq!(expect_message(&mut source).await.1, "test");
    assert!(expect_error(&mut source).await.is_end_of_stream());
    expect_open(&mut source).await;
    assert_eq!(expect_message(&mut source).await.1, "after");
}

/// eventsource-constructor-url-bogus: a URL that does not parse is refused at once (a
/// `SyntaxError` in a browser; here a builder error).
#[test]
fn wpt_eventsource_constructor_url_bogus() {
    let error = EventSource::new("http://this is invalid/").expect_err("refused");
    assert!(error.is_builder(), "{error}");
}

/// eventsource-constructor-non-same-origin: URLs fetch cannot open as an event stream. A
/// browser fires `error` and is CLOSED; with no fetch to try, they are refused when built.
#[test]
fn wpt_eventsource_constructor_non_same_origin() {
    for url in [
        "ftp://example.not/",
        "about:blank",
        "mailto:whatwg@awesome.example",
        "javascript:alert('FAIL')",
        "",
    ] {
        let error = EventSource::new(url).expect_err("refused");
        assert!(error.is_builder(), "{url}: {error}");
    }
}

/// eventsource-url: `url` is the absolute URL, as parsed, and stays the source's own.
#[test]
fn wpt_eventsource_url() {
    let source = EventSource::new("HTTP://Example.COM:80/a/../events?x").expect("source");
    assert_eq!(source.url().as_str(), "http://example.com/events?x");
    assert_eq!(source.ready_state(), ReadyState::Connecting);
}

/// format-utf-8: the stream is UTF-8 whatever `charset` says.
#[tokio::test]
async fn wpt_format_utf_8() {
    let server = Server::start(vec![vec![
        head(
            "200 OK",
            &[("Content-Type", "text/event-stream;charset=windows-1252")],
        ),
        write("data:ok\u{2026}\n\n"),
        Step::Hold,
    ]])
    .await;
    let mut source = EventSource::new(&server.url("/")).expect("source");
    expect_open(&mut source).await;
    assert_eq!(expect_message(&mut source).await.1, "ok\u{2026}");
}

/// format-null-character: U+0000 in data is kept.
#[tokio::test]
async fn wpt_format_null_character() {
    let server = Server::start(vec![sse_then_hold("data:\0\n\n\n")]).await;
    let mut source = EventSource::new(&server.url("/")).expect("source");
    expect_open(&mut source).await;
    assert_eq!(expect_message(&mut source).await.1, "\0");
}

/// format-field-event-empty: an empty `event` field leaves the type `message`.
#[tokio::test]
async fn wpt_format_field_event_empty() {
    let server = Server::start(vec![sse_then_hold("event: \ndata:data\n\n\n")]).await;
    let mut source = EventSource::new(&server.url("/")).expect("source");
    expect_open(&mut source).await;
    assert_eq!(
        expect_message(&mut source).await,
        ("message".into(), "data".into(), "".into())
    );
}
