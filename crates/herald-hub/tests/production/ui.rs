//! The debug page's routes: served only when `ui` is on, as separate assets the hub's
//! `Content-Security-Policy` allows, with tokens only when they were given to the page.

use bytes::Bytes;
use herald_hub::config::UiTokens;
use http::{Request, StatusCode};
use http_body_util::Full;

use crate::common::{full, get, send, start};

fn header<'a>(answer: &'a crate::common::Answer, name: &str) -> &'a str {
    answer.headers[name].to_str().unwrap()
}

#[tokio::test]
async fn page_is_off_by_default_and_root_describes_the_hub() {
    let hub = start(|_| {}).await;
    let root = get(hub.addr, "/", &[]).await;
    assert_eq!(root.status, StatusCode::OK);
    assert!(root.body.contains("This is a Mercure hub"), "{}", root.body);
    for asset in ["/ui/app.js", "/ui/style.css", "/ui/config.json"] {
        assert_eq!(
            get(hub.addr, asset, &[]).await.status,
            StatusCode::NOT_FOUND,
            "{asset}"
        );
    }
}

#[tokio::test]
async fn page_and_assets_are_served_under_the_content_security_policy() {
    let hub = start(|c| c.ui = true).await;
    let root = get(hub.addr, "/", &[]).await;
    assert_eq!(root.status, StatusCode::OK);
    assert_eq!(header(&root, "content-type"), "text/html; charset=utf-8");
    assert_eq!(
        header(&root, "content-security-policy"),
        "default-src 'self'"
    );
    // No inline script or style: the policy would block them.
    assert!(
        root.body
            .contains("<script src=\"/ui/app.js\" defer></script>")
    );
    assert!(
        !root.body.contains("<script>")
            && !root.body.contains("<style")
            && !root.body.contains("style=\"")
    );
    let js = get(hub.addr, "/ui/app.js", &[]).await;
    assert_eq!(
        header(&js, "content-type"),
        "text/javascript; charset=utf-8"
    );
    assert!(js.body.contains("new EventSource("));
    let css = get(hub.addr, "/ui/style.css", &[]).await;
    assert_eq!(header(&css, "content-type"), "text/css; charset=utf-8");

    let config: serde_json::Value =
        serde_json::from_str(&get(hub.addr, "/ui/config.json", &[]).await.body).unwrap();
    assert_eq!(
        config,
        serde_json::json!({
            "hub": "/.well-known/mercure",
            "publish": true,
            "anonymous": false,
            "subscriptions": false,
            "protocol": "both",
            "publisherToken": null,
            "subscriberToken": null,
            "adminToken": null,
            "control": true,
        }),
        "without tokens given to the page, it hands out none"
    );
}

#[tokio::test]
async fn page_hands_out_only_the_tokens_it_was_given() {
    let hub = start(|c| {
        c.ui = true;
        c.subscriptions = true;
        c.ui_tokens = Some(UiTokens {
            publisher: Some("publisher-token".into()),
            subscriber: None,
            admin: Some("admin-token".into()),
        });
    })
    .await;
    let answer = get(hub.addr, "/ui/config.json", &[]).await;
    assert_eq!(header(&answer, "cache-control"), "no-store");
    let config: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(config["publisherToken"], "publisher-token");
    assert_eq!(config["subscriberToken"], serde_json::Value::Null);
    assert_eq!(config["adminToken"], "admin-token");
    assert_eq!(config["subscriptions"], true);
}

#[tokio::test]
async fn tokens_go_only_to_the_page_itself_on_a_loopback_name() {
    let hub = start(|c| {
        c.ui = true;
        c.ui_tokens = Some(UiTokens {
            publisher: Some("publisher-token".into()),
            subscriber: Some("subscriber-token".into()),
            admin: None,
        });
    })
    .await;
    let port = hub.addr.port();
    let loopback = format!("127.0.0.1:{port}");
    let same = format!("http://{loopback}");
    for (host, origin, handed) in [
        ("localhost", None, true),
        (loopback.as_str(), Some(same.as_str()), true),
        ("[::1]:8080", None, true),
        // A DNS name rebound to this address.
        ("evil.example", None, false),
        ("evil.example:80", Some("http://evil.example:80"), false),
        // A script of another origin.
        ("localhost", Some("https://evil.example"), false),
    ] {
        let mut request =
            Request::get(format!("http://{}/ui/config.json", hub.addr)).header("host", host);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let request = request.body(Full::<Bytes>::default()).unwrap();
        let answer = full(send(hub.addr, request).await).await;
        let config: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        let expected = if handed {
            serde_json::json!("publisher-token")
        } else {
            serde_json::Value::Null
        };
        assert_eq!(config["publisherToken"], expected, "{host} {origin:?}");
        assert_eq!(
            config["subscriberToken"].is_null(),
            !handed,
            "{host} {origin:?}"
        );
    }
}
