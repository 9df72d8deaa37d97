//! The control API on one hub: disconnect by subject, subscriber, subscription and topic
//! selector; revoke by `jti` and by subject; only admin tokens; nothing of it reaches a
//! subscriber or the history.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use herald_codec::Frame;
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};

use crate::common::{
    Answer, KEY, STEP, Stream, events_before_marker, full, get, publish_ok, send, start, subscribe,
};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("time")
        .as_secs()
}

fn sign(claims: &Value) -> String {
    herald_hub::dev::hs256_claims(KEY, claims).expect("token")
}

/// A publisher token that may use the control API.
fn admin() -> String {
    sign(&json!({"mercure": {"publish": ["*"]}, "herald": {"admin": true}}))
}

/// A subscriber token of `sub`, with this `jti`, issued at `iat`.
fn user(sub: &str, jti: &str, iat: u64) -> String {
    sign(&json!({"mercure": {"subscribe": ["*"]}, "sub": sub, "jti": jti, "iat": iat}))
}

async fn control(addr: std::net::SocketAddr, action: &str, token: &str, body: &Value) -> Answer {
    let request = Request::post(format!(
        "http://{addr}/.well-known/mercure/control/{action}"
    ))
    .header("host", "localhost")
    .header("content-type", "application/json")
    .header("authorization", format!("Bearer {token}"))
    .body(Full::new(Bytes::from(body.to_string())))
    .expect("request");
    full(send(addr, request).await).await
}

async fn control_ok(addr: std::net::SocketAddr, action: &str, body: &Value) -> Value {
    let answer = control(addr, action, &admin(), body).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    serde_json::from_str(&answer.body).expect("JSON answer")
}

async fn subscribe_as(addr: std::net::SocketAddr, topic: &str, token: &str) -> Stream {
    let path = format!(
        "/.well-known/mercure?topic={}",
        form_urlencoded::byte_serialize(topic.as_bytes()).collect::<String>()
    );
    let stream = subscribe(
        addr,
        &path,
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(stream.status, StatusCode::OK, "{}", stream.text());
    stream
}

/// Whether the stream ends (within `STEP`) without another event.
async fn ends(stream: &mut Stream) -> bool {
    loop {
        match stream.next_frame(STEP).await {
            None => return true,
            Some(Frame::Event(event)) => panic!("an event before the end: {event:?}"),
            Some(_) => {}
        }
    }
}

#[tokio::test]
async fn only_an_admin_token_from_a_header_may_use_the_control_api() {
    let hub = start(|_| {}).await;
    let body = json!({"sub": "alice"});
    let none = control(hub.addr, "disconnect", "", &body).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED, "{}", none.body);
    let publisher = sign(&json!({"mercure": {"publish": ["*"]}}));
    let refused = control(hub.addr, "disconnect", &publisher, &body).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(refused.body.contains("herald"), "{}", refused.body);
    let admin_claim_false =
        sign(&json!({"mercure": {"publish": ["*"]}, "herald": {"admin": false}}));
    let refused = control(hub.addr, "revoke", &admin_claim_false, &json!({"jti": "x"})).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);

    // The admin token in the cookie: refused (a page's cookie never controls other streams).
    let request = Request::post(format!(
        "http://{}/.well-known/mercure/control/disconnect",
        hub.addr
    ))
    .header("host", "localhost")
    .header("content-type", "application/json")
    .header("cookie", format!("mercureAuthorization={}", admin()))
    .header("origin", "http://localhost")
    .body(Full::new(Bytes::from(body.to_string())))
    .expect("request");
    let cookie = full(send(hub.addr, request).await).await;
    assert_eq!(cookie.status, StatusCode::FORBIDDEN, "{}", cookie.body);

    // Bad requests say what is wrong.
    for (action, body, status) in [
        ("disconnect", json!({}), StatusCode::BAD_REQUEST),
        (
            "disconnect",
            json!({"user": "alice"}),
            StatusCode::BAD_REQUEST,
        ),
        ("revoke", json!({}), StatusCode::BAD_REQUEST),
        (
            "revoke",
            json!({"jti": "a", "sub": "b"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "revoke",
            json!({"jti": "a", "before": 5}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "revoke",
            json!({"jti": "a", "exp": 5}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let answer = control(hub.addr, action, &admin(), &body).await;
        assert_eq!(answer.status, status, "{action} {body}: {}", answer.body);
    }
    let request = Request::post(format!(
        "http://{}/.well-known/mercure/control/disconnect",
        hub.addr
    ))
    .header("host", "localhost")
    .header("content-type", "application/x-www-form-urlencoded")
    .header("authorization", format!("Bearer {}", admin()))
    .body(Full::new(Bytes::from("sub=alice")))
    .expect("request");
    let form = full(send(hub.addr, request).await).await;
    assert_eq!(
        form.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{}",
        form.body
    );
}

#[tokio::test]
async fn disconnect_ends_the_selected_streams_and_they_resume_without_a_gap() {
    let hub = start(|c| c.subscriptions = true).await;
    let t = now();
    let mut alice = subscribe_as(
        hub.addr,
        "https://example.com/books/1",
        &user("alice", "a1", t),
    )
    .await;
    let mut bob = subscribe_as(
        hub.addr,
        "https://example.com/books/1",
        &user("bob", "b1", t),
    )
    .await;
    let mut carol = subscribe_as(
        hub.addr,
        "https://example.com/news",
        &user("carol", "c1", t),
    )
    .await;
    let first = publish_ok(
        hub.addr,
        &[("topic", "https://example.com/books/1"), ("data", "1")],
    )
    .await;
    assert_eq!(alice.event().await.last_event_id(), first);
    assert_eq!(bob.event().await.last_event_id(), first);

    // By subject.
    let answer = control_ok(hub.addr, "disconnect", &json!({"sub": "alice"})).await;
    assert_eq!(answer["streams"], 1, "{answer}");
    assert_eq!(answer["action"], "disconnect");
    assert!(ends(&mut alice).await, "alice's stream ended");
    let missed = publish_ok(
        hub.addr,
        &[("topic", "https://example.com/books/1"), ("data", "2")],
    )
    .await;
    assert_eq!(
        bob.event().await.last_event_id(),
        missed,
        "bob's stream lives on"
    );
    // Alice reconnects with her Last-Event-ID and misses nothing.
    let mut again = subscribe(
        hub.addr,
        "/.well-known/mercure?topic=https%3A%2F%2Fexample.com%2Fbooks%2F1",
        &[
            (
                "authorization",
                &format!("Bearer {}", user("alice", "a2", t)),
            ),
            ("last-event-id", &first),
        ],
    )
    .await;
    assert_eq!(again.event().await.last_event_id(), missed);

    // By topic selector: a template matching bob's (and alice's new) subscription.
    let answer = control_ok(
        hub.addr,
        "disconnect",
        &json!({"topic": "https://example.com/books/{id}"}),
    )
    .await;
    assert_eq!(answer["streams"], 2, "{answer}");
    assert!(ends(&mut bob).await);
    assert!(ends(&mut again).await);

    // By subscription ID, as the subscriptions API lists it, then by subscriber ID.
    let watcher = sign(&json!({"mercure": {"subscribe": ["*"]}}));
    let list = get(
        hub.addr,
        "/.well-known/mercure/subscriptions",
        &[("authorization", &format!("Bearer {watcher}"))],
    )
    .await;
    let list: Value = serde_json::from_str(&list.body).expect("JSON");
    let subscription = list["subscriptions"]
        .as_array()
        .expect("a list")
        .iter()
        .find(|s| s["topic"] == "https://example.com/news")
        .expect("carol's subscription")
        .clone();
    let answer = control_ok(
        hub.addr,
        "disconnect",
        &json!({"subscription": subscription["id"]}),
    )
    .await;
    assert_eq!(answer["streams"], 1, "{answer}");
    assert!(ends(&mut carol).await);
    let answer = control_ok(
        hub.addr,
        "disconnect",
        &json!({"subscriber": subscription["subscriber"]}),
    )
    .await;
    assert_eq!(answer["streams"], 0, "already gone: {answer}");
}

#[tokio::test]
async fn a_revoked_token_is_refused_until_its_revocation_ends() {
    let hub = start(|_| {}).await;
    let t = now();
    let token = user("alice", "revoked-jti", t);
    let other = user("alice", "other-jti", t);
    let mut stream = subscribe_as(hub.addr, "t", &token).await;
    let mut unaffected = subscribe_as(hub.addr, "t", &other).await;
    let exp = now() + 3;
    let answer = control_ok(
        hub.addr,
        "revoke",
        &json!({"jti": "revoked-jti", "exp": exp}),
    )
    .await;
    assert_eq!(answer["streams"], 1, "the token's stream ended: {answer}");
    assert_eq!(answer["revocation"]["until"], exp);
    assert!(ends(&mut stream).await);
    let refused = get(
        hub.addr,
        "/.well-known/mercure?topic=t",
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.body.contains("revoked"), "{}", refused.body);
    let challenge = refused.headers["www-authenticate"].to_str().expect("ASCII");
    assert!(challenge.contains("revoked"), "{challenge}");
    let id = publish_ok(hub.addr, &[("topic", "t"), ("data", "x")]).await;
    assert_eq!(unaffected.event().await.last_event_id(), id);
    let metrics = get(hub.addr, "/metrics", &[]).await;
    assert!(
        metrics.body.contains("herald_revocations 1"),
        "{}",
        metrics.body
    );

    // Once the revocation ends (the token's exp it was given), the token is accepted again.
    tokio::time::sleep(Duration::from_secs(exp - now() + 1)).await;
    let accepted = subscribe_as(hub.addr, "t", &token).await;
    assert_eq!(accepted.status, StatusCode::OK);
    let metrics = get(hub.addr, "/metrics", &[]).await;
    assert!(
        metrics.body.contains("herald_revocations 0"),
        "{}",
        metrics.body
    );
}

#[tokio::test]
async fn revoking_a_subject_refuses_its_tokens_issued_before_and_accepts_new_ones() {
    let hub = start(|_| {}).await;
    let t = now();
    let old = user("bob", "old", t - 60);
    let mut stream = subscribe_as(hub.addr, "t", &old).await;
    let answer = control_ok(hub.addr, "revoke", &json!({"sub": "bob", "before": t - 30})).await;
    assert_eq!(answer["streams"], 1, "{answer}");
    assert!(ends(&mut stream).await);
    let refused = get(
        hub.addr,
        "/.well-known/mercure?topic=t",
        &[("authorization", &format!("Bearer {old}"))],
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    // A token issued after the revocation's time (the backend's refreshed cookie) is accepted.
    let fresh = user("bob", "fresh", t);
    let cookie = format!("mercureAuthorization={fresh}");
    let accepted = subscribe(
        hub.addr,
        "/.well-known/mercure?topic=t",
        &[("cookie", &cookie)],
    )
    .await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text());
    // A revoked publisher token may not publish either.
    let publisher = sign(&json!({"mercure": {"publish": ["*"]}, "sub": "bob", "iat": t - 60}));
    let refused = crate::common::publish_with(
        hub.addr,
        &[("authorization", &format!("Bearer {publisher}"))],
        &[("topic", "t"), ("data", "x")],
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
}

#[tokio::test]
async fn control_actions_never_reach_subscribers_nor_history() {
    let hub = start(|_| {}).await;
    let everything = sign(&json!({"mercure": {"subscribe": ["*"]}}));
    let mut watcher = subscribe_as(hub.addr, "*", &everything).await;
    let first = publish_ok(hub.addr, &[("topic", "t"), ("data", "1")]).await;
    assert_eq!(watcher.event().await.last_event_id(), first);
    control_ok(hub.addr, "disconnect", &json!({"sub": "nobody"})).await;
    control_ok(hub.addr, "revoke", &json!({"jti": "some-token"})).await;
    control_ok(hub.addr, "revoke", &json!({"sub": "someone"})).await;
    let between = events_before_marker(hub.addr, &mut watcher, "t").await;
    assert!(between.is_empty(), "nothing but the marker: {between:?}");
    let mut replay = subscribe(
        hub.addr,
        "/.well-known/mercure?topic=*",
        &[
            ("authorization", &format!("Bearer {everything}")),
            ("last-event-id", "earliest"),
        ],
    )
    .await;
    assert_eq!(replay.event().await.last_event_id(), first);
    assert!(
        replay.event().await.last_event_id().starts_with("marker-"),
        "history holds the updates alone"
    );
}

/// A Mercure 1.0 access token is revoked by its `jti` too: its stream ends and it is refused.
#[tokio::test]
async fn a_revoked_1_0_access_token_is_refused() {
    let hub = crate::common::start_both(|_| {}).await;
    let mut claims =
        crate::common::access_claims(json!([crate::common::grant(&["subscribe"], &["*"])]));
    claims["jti"] = json!("modern-jti");
    let token = crate::common::sign_at(&claims);
    let auth = format!("Bearer {token}");
    let path = "/.well-known/mercure?match=t";
    let mut stream = crate::common::subscribe(hub.addr, path, &[("authorization", &auth)]).await;
    assert_eq!(stream.status, StatusCode::OK);
    let answer = control_ok(
        hub.addr,
        "revoke",
        &json!({"jti": "modern-jti", "exp": now() + 60}),
    )
    .await;
    assert_eq!(answer["streams"], 1, "the 1.0 stream ended: {answer}");
    assert!(ends(&mut stream).await);
    let refused = get(hub.addr, path, &[("authorization", &auth)]).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.body.contains("revoked"), "{}", refused.body);
}
