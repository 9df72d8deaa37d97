//! Redirects: followed, bounded, reported; reconnections start again from the source's URL.

mod support;

use std::time::Duration;

use herald_client::{EventSource, ReadyState};
use http::Method;
use support::*;

#[tokio::test]
async fn every_redirect_status_is_followed_and_reconnection_goes_to_the_original_url() {
    for code in [
        "301 Moved Permanently",
        "302 Found",
        "303 See Other",
        "307 Temporary Redirect",
        "308 Permanent Redirect",
    ] {
        let mut server = Server::start(vec![
            status(code, &[("Location", "/moved?to=here")]),
            sse("id: 7\ndata: a\n\n"),
            sse_then_hold(""),
        ])
        .await;
        let mut source = fast(&server.url("/start")).build().expect("source");
        let opened = expect_open(&mut source).await;
        assert_eq!(
            opened.url().as_str(),
            server.url("/moved?to=here"),
            "{code}"
        );
        assert_eq!(source.url().as_str(), server.url("/start"));
        expect_message(&mut source).await;
        expect_error(&mut source).await;
        expect_open(&mut source).await;
        let targets = [
            server.next_request().await,
            server.next_request().await,
            server.next_request().await,
        ];
        assert_eq!(
            targets.each_ref().map(|r| r.target.as_str()),
            ["/start", "/moved?to=here", "/start"],
            "{code}"
        );
        assert_eq!(targets[1].header("accept"), Some("text/event-stream"));
        assert_eq!(targets[2].header("last-event-id"), Some("7"));
    }
}

#[tokio::test]
async fn see_other_turns_a_post_into_a_get_and_307_keeps_it() {
    let mut server = Server::start(vec![
        status("307 Temporary Redirect", &[("Location", "/b")]),
        status("303 See Other", &[("Location", "/c")]),
        sse_then_hold(""),
    ])
    .await;
    let mut source = fast(&server.url("/a"))
        .method(Method::POST)
        .header("content-type", "application/json")
        .body(r#"{"q":1}"#)
        .build()
        .expect("source");
    expect_open(&mut source).await;
    for target in ["/a", "/b"] {
        let request = server.next_request().await;
        assert_eq!(
            (request.method.as_str(), request.target.as_str()),
            ("POST", target)
        );
        assert_eq!(request.body, br#"{"q":1}"#);
        assert_eq!(request.header("content-type"), Some("application/json"));
    }
    let last = server.next_request().await;
    assert_eq!((last.method.as_str(), last.target.as_str()), ("GET", "/c"));
    assert!(last.body.is_empty());
    assert_eq!(last.header("content-type"), None);
    assert_eq!(last.header("content-length"), None);
}

#[tokio::test]
async fn too_many_redirects_fail_the_connection() {
    let loop_back = || status("302 Found", &[("Location", "/again")]);
    let mut server = Server::start((0..6).map(|_| loop_back()).collect()).await;
    let mut source = fast(&server.url("/"))
        .max_redirects(3)
        .build()
        .expect("source");
    let error = expect_error(&mut source).await;
    assert!(error.is_redirect() && error.is_fatal(), "{error}");
    assert_eq!(source.ready_state(), ReadyState::Closed);
    expect_end(&mut source).await;
    for _ in 0..4 {
        server.next_request().await;
    }
    server.no_request_within(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_redirect_without_location_is_a_failed_status() {
    let mut server = Server::start(vec![status("302 Found", &[])]).await;
    let mut source = fast(&server.url("/")).build().expect("source");
    let error = expect_error(&mut source).await;
    assert_eq!(error.status(), Some(http::StatusCode::FOUND));
    assert!(error.is_fatal());
    expect_end(&mut source).await;
    server.next_request().await;
    server.no_request_within(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn a_redirect_to_another_origin_drops_the_authorization_header() {
    let mut other = Server::start(vec![sse_then_hold("")]).await;
    let target = other.url("/elsewhere");
    let mut server = Server::start(vec![status(
        "307 Temporary Redirect",
        &[("Location", &target)],
    )])
    .await;
    let mut source = fast(&server.url("/"))
        .bearer_auth("secret")
        .header("x-custom", "kept")
        .build()
        .expect("source");
    let opened = expect_open(&mut source).await;
    assert_eq!(opened.url().as_str(), target);
    assert_eq!(
        server.next_request().await.header("authorization"),
        Some("Bearer secret")
    );
    let moved = other.next_request().await;
    assert_eq!(moved.header("authorization"), None);
    assert_eq!(moved.header("x-custom"), Some("kept"));
}

#[tokio::test]
async fn a_redirect_to_another_scheme_fails() {
    let server = Server::start(vec![status(
        "302 Found",
        &[("Location", "ftp://127.0.0.1/x")],
    )])
    .await;
    let mut source = EventSource::new(&server.url("/")).expect("source");
    let error = expect_error(&mut source).await;
    assert!(error.is_redirect(), "{error}");
    expect_end(&mut source).await;
}

#[tokio::test]
async fn a_hand_set_cookie_header_does_not_follow_a_redirect_to_another_origin() {
    let mut other = Server::start(vec![sse_then_hold("")]).await;
    let target = other.url("/elsewhere");
    let mut server = Server::start(vec![status("302 Found", &[("Location", &target)])]).await;
    let mut source = fast(&server.url("/"))
        .header("cookie", "session=secret")
        .header("proxy-authorization", "Basic c2VjcmV0")
        .build()
        .expect("source");
    expect_open(&mut source).await;
    let first = server.next_request().await;
    assert_eq!(first.header("cookie"), Some("session=secret"));
    let moved = other.next_request().await;
    assert_eq!(moved.header("cookie"), None);
    assert_eq!(moved.header("proxy-authorization"), None);
    assert_eq!(moved.header("accept"), Some("text/event-stream"));
}
