//! What a configured request carries: method, body and headers on every connection; cookies
//! when asked (`withCredentials`), never otherwise.

mod support;

use std::sync::{Arc, Mutex};

use herald_client::cookie_store::CookieStore;
use http::Method;
use support::*;

#[tokio::test]
async fn post_with_a_json_body_and_a_bearer_token_on_every_connection() {
    let body = r#"{"model":"m","stream":true}"#;
    let mut server = Server::start(vec![sse("id: 9\ndata: a\n\n"), sse_then_hold("")]).await;
    let mut source = fast(&server.url("/v1/stream"))
        .method(Method::POST)
        .bearer_auth("t0ken")
        .header("content-type", "application/json")
        .header("x-extra", "1")
        .body(body)
        .build()
        .expect("source");
    expect_open(&mut source).await;
    expect_message(&mut source).await;
    expect_error(&mut source).await;
    expect_open(&mut source).await;
    for last_event_id in [None, Some("9")] {
        let request = server.next_request().await;
        assert_eq!(request.method, "POST");
        assert_eq!(request.body, body.as_bytes());
        assert_eq!(request.header("authorization"), Some("Bearer t0ken"));
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.header("x-extra"), Some("1"));
        assert_eq!(request.header("accept"), Some("text/event-stream"));
        assert_eq!(request.header("last-event-id"), last_event_id);
    }
}

#[tokio::test]
async fn a_user_accept_header_wins() {
    let mut server = Server::start(vec![sse_then_hold("")]).await;
    let mut source = fast(&server.url("/"))
        .header("accept", "text/event-stream, application/json")
        .build()
        .expect("source");
    expect_open(&mut source).await;
    let request = server.next_request().await;
    assert_eq!(
        request.header("accept"),
        Some("text/event-stream, application/json")
    );
    assert_eq!(request.header("cache-control"), Some("no-cache"));
}

fn set_cookie_then_stream() -> Vec<Script> {
    vec![
        vec![
            head(
                "200 OK",
                &[
                    ("Content-Type", "text/event-stream"),
                    ("Set-Cookie", "session=abc; Path=/"),
                ],
            ),
            write("data: a\n\n"),
            Step::Close,
        ],
        sse_then_hold(""),
    ]
}

#[tokio::test]
async fn with_credentials_cookies_are_kept_and_sent() {
    let mut server = Server::start(set_cookie_then_stream()).await;
    let store = Arc::new(Mutex::new(CookieStore::default()));
    let mut source = fast(&server.url("/"))
        .cookie_store(Arc::clone(&store))
        .build()
        .expect("source");
    expect_open(&mut source).await;
    expect_message(&mut source).await;
    expect_error(&mut source).await;
    expect_open(&mut source).await;
    assert_eq!(server.next_request().await.header("cookie"), None);
    assert_eq!(
        server.next_request().await.header("cookie"),
        Some("session=abc")
    );
    let store = store.lock().expect("store");
    assert!(store.contains("127.0.0.1", "/", "session"));
}

#[tokio::test]
async fn without_credentials_no_cookie_is_sent() {
    let mut server = Server::start(set_cookie_then_stream()).await;
    let mut source = fast(&server.url("/")).build().expect("source");
    expect_open(&mut source).await;
    expect_message(&mut source).await;
    expect_error(&mut source).await;
    expect_open(&mut source).await;
    server.next_request().await;
    assert_eq!(server.next_request().await.header("cookie"), None);
}

#[tokio::test]
async fn a_hand_set_cookie_and_stored_cookies_go_in_one_header() {
    let mut server = Server::start(set_cookie_then_stream()).await;
    let mut source = fast(&server.url("/"))
        .header("cookie", "theme=dark")
        .with_credentials()
        .build()
        .expect("source");
    expect_open(&mut source).await;
    expect_message(&mut source).await;
    expect_error(&mut source).await;
    expect_open(&mut source).await;
    assert_eq!(
        server.next_request().await.header("cookie"),
        Some("theme=dark")
    );
    let second = server.next_request().await;
    let cookies: Vec<_> = second
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("cookie"))
        .map(|(_, value)| value.as_str())
        .collect();
    assert_eq!(cookies, ["theme=dark; session=abc"]);
}

#[tokio::test]
async fn bearer_auth_replaces_an_earlier_authorization() {
    let mut server = Server::start(vec![sse_then_hold("")]).await;
    let mut source = fast(&server.url("/"))
        .header("authorization", "Basic b2xkOm9sZA==")
        .bearer_auth("first")
        .bearer_auth("second")
        .build()
        .expect("source");
    expect_open(&mut source).await;
    let request = server.next_request().await;
    let values: Vec<_> = request
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("authorization"))
        .map(|(_, value)| value.as_str())
        .collect();
    assert_eq!(values, ["Bearer second"]);
}
