//! Part B (Mercure 1.0) subscription events (B61) and the subscriptions API (B62).

use http::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

const SUBSCRIPTIONS: &str = "/.well-known/mercure/subscriptions";

/// A token that may watch every subscription (a relative URL pattern, resolved against the
/// hub's URL), with a payload.
fn watcher() -> String {
    access_token(&[json!({
        "type": DETAIL,
        "actions": ["subscribe"],
        "topics": [{"match": "/.well-known/mercure/subscriptions{/*}?", "match_type": "urlpattern"}],
        "payload": {"role": "watcher"},
    })])
}

#[tokio::test]
async fn b61_subscription_events_are_plain_json_of_type_mercure() {
    let hub = start_both(|c| {
        c.anonymous = true;
        c.subscriptions = true;
    })
    .await;
    let auth = format!("Bearer {}", watcher());
    let mut watch = subscribe(
        hub.addr,
        "/.well-known/mercure?match_urlpattern=%2F.well-known%2Fmercure%2Fsubscriptions%2F*",
        &[("authorization", &auth)],
    )
    .await;
    let own = watch.event().await;
    assert_eq!(own.event_type(), "mercure", "{:?}", watch.text());
    let own: Value = serde_json::from_str(own.data()).expect("plain JSON");
    assert_eq!(own["type"], "subscription");
    assert_eq!(own["match_type"], "urlpattern");
    assert_eq!(
        own["payload"],
        json!({"role": "watcher"}),
        "the payload of the matching grant"
    );
    assert!(own.get("@context").is_none());

    let joiner = subscribe(hub.addr, "/.well-known/mercure?match=a%20b%2Fc", &[]).await;
    let event = watch.event().await;
    assert_eq!(event.event_type(), "mercure");
    assert!(
        !watch.text().contains("data: {\n") && watch.text().contains("data: {\""),
        "one line of JSON: {}",
        watch.text()
    );
    let doc: Value = serde_json::from_str(event.data()).expect("json");
    let subscriber = doc["subscriber"].as_str().expect("subscriber").to_owned();
    assert!(subscriber.starts_with("urn:uuid:"));
    assert_eq!(
        doc["id"],
        format!(
            "{SUBSCRIPTIONS}/exact/a%20b%2Fc/{}",
            subscriber.replace(':', "%3A")
        ),
        "each variable percent-encoded once"
    );
    assert_eq!(doc["match"], "a b/c");
    assert_eq!(doc["active"], true);
    assert!(doc.get("payload").is_none(), "anonymous: no payload");
    drop(joiner);
    let left: Value = serde_json::from_str(watch.event().await.data()).expect("json");
    assert_eq!(left["active"], false);
    assert_eq!(left["subscriber"], subscriber.as_str());

    // Without the grant, nothing.
    let mut anonymous = subscribe(
        hub.addr,
        "/.well-known/mercure?match_urlpattern=%2F.well-known%2Fmercure%2Fsubscriptions%2F*&match=marker",
        &[],
    )
    .await;
    let _other = subscribe(hub.addr, "/.well-known/mercure?match=x", &[]).await;
    let got = events_before_marker(hub.addr, &mut anonymous, "marker").await;
    assert!(got.is_empty(), "{:?}", anonymous.text());
}

#[tokio::test]
async fn b62_subscriptions_api_in_1_0_shapes() {
    let hub = start_both(|c| {
        c.anonymous = true;
        c.subscriptions = true;
    })
    .await;
    let _one = subscribe(hub.addr, "/.well-known/mercure?match=a%2Fb", &[]).await;
    let _two = subscribe(
        hub.addr,
        "/.well-known/mercure?match_urlpattern=https%3A%2F%2Fexample.com%2F%3Aid",
        &[],
    )
    .await;
    let _legacy = subscribe(hub.addr, "/.well-known/mercure?topic=a%2Fb", &[]).await;
    let auth = format!("Bearer {}", watcher());

    let answer = get(hub.addr, SUBSCRIPTIONS, &[("authorization", &auth)]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.headers["content-type"], "application/json");
    let collection: Value = serde_json::from_str(&answer.body).expect("json");
    assert_eq!(collection["id"], SUBSCRIPTIONS);
    assert_eq!(collection["type"], "subscriptions");
    assert!(
        collection.get("lastEventID").is_none(),
        "the cursor is in the Link header"
    );
    let subscriptions = collection["subscriptions"].as_array().expect("array");
    assert_eq!(
        subscriptions.len(),
        2,
        "only 1.0 subscriptions: {subscriptions:?}"
    );
    let link = answer.headers["link"].to_str().expect("ascii");
    assert!(
        link.contains("rel=\"mercure\"")
            && link.contains("last-event-id=\"")
            && link.contains("content-type=\"application/json\""),
        "{link}"
    );
    let etag = answer.headers["etag"].to_str().expect("ascii").to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

    let answer = get(
        hub.addr,
        SUBSCRIPTIONS,
        &[("authorization", &auth), ("if-none-match", &etag)],
    )
    .await;
    assert_eq!(answer.status, StatusCode::NOT_MODIFIED);

    let one = subscriptions
        .iter()
        .find(|s| s["match"] == "a/b")
        .expect("the exact one");
    assert_eq!(one["type"], "subscription");
    assert_eq!(one["match_type"], "exact");
    let subscriber = one["subscriber"].as_str().expect("subscriber");
    let by_match = format!("{SUBSCRIPTIONS}/exact/a%2Fb");
    let answer = get(hub.addr, &by_match, &[("authorization", &auth)]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let collection: Value = serde_json::from_str(&answer.body).expect("json");
    assert_eq!(collection["id"], by_match);
    assert_eq!(
        collection["subscriptions"].as_array().expect("array").len(),
        1
    );

    let single = format!("{by_match}/{}", subscriber.replace(':', "%3A"));
    let answer = get(hub.addr, &single, &[("authorization", &auth)]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let doc: Value = serde_json::from_str(&answer.body).expect("json");
    assert_eq!(doc["subscriber"], subscriber);
    assert_eq!(doc["id"], single, "the document's id round-trips the path");

    for missing in [
        format!("{by_match}/urn%3Auuid%3Anobody"),
        format!("{SUBSCRIPTIONS}/regex/a"),
        format!("{SUBSCRIPTIONS}/exact/a/b/c"),
    ] {
        let answer = get(hub.addr, &missing, &[("authorization", &auth)]).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{missing}");
    }

    // A grant on other topics: 403 insufficient_scope; checked on the path, not the query.
    let other = format!(
        "Bearer {}",
        access_token(&[grant(&["subscribe"], &["https://example.com/x"])])
    );
    let answer = get(hub.addr, SUBSCRIPTIONS, &[("authorization", &other)]).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(
        answer.headers["www-authenticate"]
            .to_str()
            .expect("ascii")
            .contains("insufficient_scope")
    );
    let exact = format!(
        "Bearer {}",
        access_token(&[grant(&["subscribe"], &[SUBSCRIPTIONS])])
    );
    let answer = get(
        hub.addr,
        &format!("{SUBSCRIPTIONS}?x=1"),
        &[("authorization", &exact)],
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let answer = get(hub.addr, SUBSCRIPTIONS, &[]).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
}
