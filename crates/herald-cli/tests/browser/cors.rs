//! CORS in Chromium: a page from an allowed loopback origin subscribes with
//! `withCredentials: true`, authorized by the `mercureAuthorization` cookie its server set; a
//! page from another origin gets an error event and nothing else.
//!
//! Both pages are on 127.0.0.1 (other ports than the hub's): different origins, but the same
//! site, as an app and its hub usually are, so the cookie reaches the hub.

use std::time::Duration;

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::get;
use herald_hub::dev::hs256_token;
use serde_json::json;

use crate::chromium::launch;
use crate::support::{herald, spawn_serve};
use crate::{TOPIC, encode, publish, received, subscribe};

const KEY: &str = "a-key-for-the-cors-test-that-is-long-enough";

/// Serves a page that sets the hub's authorization cookie, on a fresh loopback port.
async fn page_server(token: String) -> String {
    let cookie =
        format!("mercureAuthorization={token}; Path=/.well-known/mercure; HttpOnly; SameSite=Lax");
    let page = move || {
        let cookie = cookie.clone();
        async move {
            (
                [
                    ("set-cookie", cookie),
                    ("content-type", "text/html".to_owned()),
                ],
                "<!doctype html><title>app</title><p>An app on another origin.</p>",
            )
                .into_response()
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let router = Router::new().route("/", get(page));
    tokio::spawn(async move { axum::serve(listener, router).await });
    origin
}

#[tokio::test(flavor = "multi_thread")]
async fn allowed_origin_subscribes_with_the_cookie_and_another_origin_is_refused() {
    let Some(browser) = launch("cors_with_cookies", &[]).await else {
        return;
    };
    let subscriber = hs256_token(KEY, json!({"subscribe": [TOPIC]}), None).unwrap();
    let publisher = hs256_token(KEY, json!({"publish": ["*"]}), None).unwrap();
    let allowed = page_server(subscriber.clone()).await;
    let other = page_server(subscriber).await;
    let mut process = spawn_serve(
        herald().args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--jwt-key",
            KEY,
            "--cors-origin",
            &allowed,
        ]),
        1,
    );
    process.drain_stderr();
    let hub = process.urls[0].clone();
    let url = format!("{hub}?topic={}", encode(TOPIC));

    // The allowed origin: the cookie its server set authorizes the subscription.
    browser.client.goto(&format!("{allowed}/")).await.unwrap();
    subscribe(&browser, std::slice::from_ref(&url), &[], true).await;
    browser
        .until("herald.sources[0].readyState === EventSource.OPEN")
        .await;
    publish(
        &hub,
        &publisher,
        "private news",
        &["--id", "p-1", "--private"],
    )
    .await;
    browser.until("herald.got.length >= 1").await;
    assert_eq!(
        received(&browser).await,
        vec![
            json!({"source": 0, "listener": "message", "type": "message", "data": "private news", "id": "p-1"})
        ]
    );

    // Another origin, with the same cookie in the jar: the browser refuses the stream.
    browser.client.goto(&format!("{other}/")).await.unwrap();
    subscribe(&browser, &[url], &[], true).await;
    let errors = browser
        .until("herald.errors.length > 0 && herald.errors")
        .await;
    assert_eq!(
        errors[0]["state"],
        json!(2),
        "a CORS failure closes the EventSource"
    );
    publish(&hub, &publisher, "not for you", &["--private"]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(received(&browser).await.is_empty());
    browser.quit().await;
}
