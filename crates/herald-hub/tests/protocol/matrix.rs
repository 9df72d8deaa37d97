//! No cross-generation privilege on a hub serving both (`--protocol both`): every kind of
//! request against every kind of token, each getting exactly what its own generation's rules
//! give it. The 0.x key and the 1.0 issuer's secret are the same here, the worst case: a
//! token's shape, not its signature, must keep the generations apart.

use http::StatusCode;
use serde_json::json;

use crate::common::*;

const BOOK: &str = "https://example.com/books/1";

/// A hub whose issuer signs with the 0.x key itself.
async fn same_key_hub() -> TestHub {
    start(|c| {
        c.anonymous = true;
        c.subscriptions = true;
        c.issuers = vec![herald_hub::config::IssuerKey {
            issuer: ISSUER.to_owned(),
            key: KEY.to_owned(),
        }];
        c.audience = Some(AUDIENCE.to_owned());
    })
    .await
}

/// A 1.0 access token signed with the 0.x key, also carrying a `mercure` claim granting all.
fn modern_everything() -> String {
    let mut claims = access_claims(json!([grant(&["publish", "subscribe"], &["*"])]));
    claims["mercure"] = json!({"publish": ["*"], "subscribe": ["*"]});
    sign_with(&claims, "at+jwt", KEY)
}

/// A 0.x token granting all, also carrying 1.0 claims.
fn legacy_everything() -> String {
    let mut claims = access_claims(json!([grant(&["publish", "subscribe"], &["*"])]));
    claims["mercure"] = json!({"publish": ["*"], "subscribe": ["*"]});
    sign_with(&claims, "JWT", KEY)
}

#[tokio::test]
async fn subscribing_each_token_gets_only_what_its_generation_allows() {
    let hub = same_key_hub().await;
    let legacy = legacy_everything();
    let modern = modern_everything();
    let topic = format!("/.well-known/mercure?topic={}", enc(BOOK));
    let matcher = format!("/.well-known/mercure?match={}", enc(BOOK));
    let legacy_header = format!("Bearer {legacy}");
    let modern_header = format!("Bearer {modern}");
    let legacy_in_query = format!("{topic}&authorization={modern}");
    let legacy_cookie = format!("mercureAuthorization={modern}");
    let modern_cookie = format!("__Secure-mercure_access_token={legacy}");
    let modern_in_query = format!("{matcher}&access_token={modern}");

    // (request, headers, expected status, receives the private update)
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, StatusCode, bool);
    let cases: Vec<Case<'_>> = vec![
        ("0.x, no token", &topic, vec![], StatusCode::OK, false),
        (
            "0.x, 0.x token",
            &topic,
            vec![("authorization", &legacy_header)],
            StatusCode::OK,
            true,
        ),
        (
            "0.x, 1.0 token in the header",
            &topic,
            vec![("authorization", &modern_header)],
            StatusCode::BAD_REQUEST,
            false,
        ),
        (
            "0.x, 1.0 token in the query",
            &legacy_in_query,
            vec![],
            StatusCode::UNAUTHORIZED,
            false,
        ),
        (
            "0.x, 1.0 token in the 0.x cookie",
            &topic,
            vec![("cookie", &legacy_cookie)],
            StatusCode::UNAUTHORIZED,
            false,
        ),
        ("1.0, no token", &matcher, vec![], StatusCode::OK, false),
        (
            "1.0, 1.0 token",
            &matcher,
            vec![("authorization", &modern_header)],
            StatusCode::OK,
            true,
        ),
        (
            "1.0, 0.x token in the header",
            &matcher,
            vec![("authorization", &legacy_header)],
            StatusCode::BAD_REQUEST,
            false,
        ),
        (
            "1.0, 0.x token in the 1.0 cookie",
            &matcher,
            vec![("cookie", &modern_cookie)],
            StatusCode::UNAUTHORIZED,
            false,
        ),
        (
            "1.0, 1.0 token in the URL",
            &modern_in_query,
            vec![],
            StatusCode::BAD_REQUEST,
            false,
        ),
    ];
    let mut open = Vec::new();
    for (name, path, headers, status, _) in &cases {
        let stream = subscribe(hub.addr, path, headers).await;
        assert_eq!(stream.status, *status, "{name}");
        if *status == StatusCode::OK {
            open.push((name, stream));
        }
    }
    publish_ok(
        hub.addr,
        &[("topic", BOOK), ("id", "private-0x"), ("private", "on")],
    )
    .await;
    let answer = publish_with(
        hub.addr,
        &[("authorization", &modern_header)],
        &[("topic", BOOK), ("id", "private-1"), ("private", "on")],
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    for ((name, mut stream), (_, _, _, _, private)) in open
        .into_iter()
        .zip(cases.iter().filter(|c| c.3 == StatusCode::OK))
    {
        let got = events_before_marker(hub.addr, &mut stream, BOOK).await;
        let expected: &[&str] = if *private {
            &["private-0x", "private-1"]
        } else {
            &[]
        };
        assert_eq!(
            ids(&got),
            expected,
            "{name}: private updates of either publisher, only with its own generation's grant"
        );
    }
}

#[tokio::test]
async fn publishing_each_token_is_held_to_its_generation() {
    let hub = same_key_hub().await;
    let legacy = format!("Bearer {}", legacy_everything());
    let modern = format!("Bearer {}", modern_everything());
    // A 1.0 token's `mercure` claim is nothing to 0.x: with the 0.x cookie it is refused.
    let answer = publish_with(
        hub.addr,
        &[
            (
                "cookie",
                &format!("mercureAuthorization={}", modern_everything()),
            ),
            ("origin", "https://a.example"),
        ],
        &[("topic", BOOK)],
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.body);
    // A 0.x token is nothing to 1.0, whatever claims it carries.
    let answer = publish_with(
        hub.addr,
        &[
            (
                "cookie",
                &format!("__Secure-mercure_access_token={}", legacy_everything()),
            ),
            ("origin", "https://a.example"),
        ],
        &[("topic", BOOK)],
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.body);
    // Each held to its own rules: 0.x answers 403 for its reserved namespace, 1.0 400.
    let reserved = [("topic", "/.well-known/mercure/subscriptions/x")];
    let answer = publish_with(hub.addr, &[("authorization", &legacy)], &reserved).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    let answer = publish_with(hub.addr, &[("authorization", &modern)], &reserved).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    // A 1.0 token with the 0.x `authorization` query parameter mixes the generations.
    let path_answer = full(
        request(
            hub.addr,
            "POST",
            &format!("/.well-known/mercure?authorization={}", legacy_everything()),
            &[
                ("authorization", &modern),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            "topic=a",
        )
        .await,
    )
    .await;
    assert_eq!(
        path_answer.status,
        StatusCode::BAD_REQUEST,
        "{}",
        path_answer.body
    );
    for auth in [&legacy, &modern] {
        let answer = publish_with(hub.addr, &[("authorization", auth)], &[("topic", BOOK)]).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }
}

#[tokio::test]
async fn subscription_events_stay_within_their_generation() {
    let hub = same_key_hub().await;
    let legacy = format!("Bearer {}", legacy_everything());
    let modern = format!("Bearer {}", modern_everything());
    // Each watches every topic with every grant.
    let mut legacy_watch = subscribe(
        hub.addr,
        "/.well-known/mercure?topic=*",
        &[("authorization", &legacy)],
    )
    .await;
    let mut modern_watch = subscribe(
        hub.addr,
        "/.well-known/mercure?match=*",
        &[("authorization", &modern)],
    )
    .await;
    // A 1.0 subscription's own event reaches it.
    let own = modern_watch.event().await;
    assert_eq!(own.event_type(), "mercure");
    let own: serde_json::Value = serde_json::from_str(own.data()).expect("plain JSON");
    assert_eq!(own["match"], "*");
    assert_eq!(own["active"], true);

    let _legacy_joiner = subscribe(hub.addr, "/.well-known/mercure?topic=a", &[]).await;
    let _modern_joiner = subscribe(hub.addr, "/.well-known/mercure?match=b", &[]).await;
    let got: Vec<_> = events_before_marker(hub.addr, &mut legacy_watch, BOOK)
        .await
        .into_iter()
        .filter(|e| !e.last_event_id().starts_with("marker-"))
        .collect();
    assert_eq!(
        got.len(),
        1,
        "{:?}",
        got.iter().map(|e| e.data().to_owned()).collect::<Vec<_>>()
    );
    let doc: serde_json::Value = serde_json::from_str(got[0].data()).expect("json");
    assert_eq!(doc["@context"], "https://mercure.rocks/");
    assert_eq!(doc["topic"], "a", "0.x sees the 0.x subscriber only");
    let got: Vec<_> = events_before_marker(hub.addr, &mut modern_watch, BOOK)
        .await
        .into_iter()
        .filter(|e| !e.last_event_id().starts_with("marker-"))
        .collect();
    assert_eq!(
        got.len(),
        1,
        "{:?}",
        got.iter().map(|e| e.data().to_owned()).collect::<Vec<_>>()
    );
    assert_eq!(got[0].event_type(), "mercure");
    let doc: serde_json::Value = serde_json::from_str(got[0].data()).expect("json");
    assert_eq!(doc["match"], "b", "1.0 sees the 1.0 subscriber only");
}

fn enc(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
