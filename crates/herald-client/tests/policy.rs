//! The opt-in status policy: 429 and 5xx retried (honouring `Retry-After`) instead of failing.

mod support;

use std::time::{Duration, Instant};

use herald_client::{ReadyState, StatusPolicy};
use support::*;

#[tokio::test]
async fn transient_statuses_are_retried_after_retry_after() {
    let mut server = Server::start(vec![
        status("503 Service Unavailable", &[("Retry-After", "1")]),
        sse_then_hold("data: ok\n\n"),
    ])
    .await;
    let mut source = fast(&server.url("/"))
        .status_policy(StatusPolicy::RetryTransient)
        .build()
        .expect("source");
    let error = expect_error(&mut source).await;
    let failed_at = Instant::now();
    assert!(error.is_status() && !error.is_fatal(), "{error}");
    assert_eq!(error.status(), Some(http::StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(source.ready_state(), ReadyState::Connecting);
    expect_open(&mut source).await;
    assert_eq!(expect_message(&mut source).await.1, "ok");
    server.next_request().await;
    let waited = server.next_request().await.at.duration_since(failed_at);
    assert!(waited >= Duration::from_secs(1), "{waited:?}");
    assert!(waited < Duration::from_millis(2500), "{waited:?}");
}

#[tokio::test]
async fn too_many_requests_without_retry_after_waits_the_reconnection_time() {
    let mut server = Server::start(vec![
        status("429 Too Many Requests", &[]),
        sse_then_hold(""),
    ])
    .await;
    let mut source = fast(&server.url("/"))
        .status_policy(StatusPolicy::RetryTransient)
        .build()
        .expect("source");
    assert_eq!(
        expect_error(&mut source).await.status(),
        Some(http::StatusCode::TOO_MANY_REQUESTS)
    );
    let failed_at = Instant::now();
    expect_open(&mut source).await;
    server.next_request().await;
    let waited = server.next_request().await.at.duration_since(failed_at);
    assert!(
        waited >= Duration::from_millis(50) && waited < Duration::from_millis(900),
        "{waited:?}"
    );
}

#[tokio::test]
async fn other_statuses_still_fail_under_the_retry_policy() {
    let mut server = Server::start(vec![status("401 Unauthorized", &[]), sse_then_hold("")]).await;
    let mut source = fast(&server.url("/"))
        .status_policy(StatusPolicy::RetryTransient)
        .build()
        .expect("source");
    let error = expect_error(&mut source).await;
    assert!(error.is_fatal(), "{error}");
    assert_eq!(source.ready_state(), ReadyState::Closed);
    expect_end(&mut source).await;
    server.next_request().await;
    server.no_request_within(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn the_default_policy_fails_on_503() {
    let mut server = Server::start(vec![
        status("503 Service Unavailable", &[("Retry-After", "0")]),
        sse_then_hold(""),
    ])
    .await;
    let mut source = fast(&server.url("/")).build().expect("source");
    assert!(expect_error(&mut source).await.is_fatal());
    expect_end(&mut source).await;
    server.next_request().await;
    server.no_request_within(Duration::from_millis(300)).await;
}
