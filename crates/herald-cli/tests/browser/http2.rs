//! Why HTTP/2 matters: over HTTP/1.1 Chromium opens at most six connections to one host, so a
//! page's seventh `EventSource` never opens; over HTTP/2 (TLS with a self-signed certificate,
//! accepted by this test's browser only) all ten share one connection and get every update.

use std::time::Duration;

use serde_json::{Value, json};

use crate::chromium::{Browser, launch};
use crate::{DevHub, TOPIC, publish, received, subscribe};

const SOURCES: usize = 10;
const UPDATES: usize = 3;

/// Opens `SOURCES` EventSources on the hub's own page, waits until `open` of them are open and
/// a while longer, and returns each source's ready state.
async fn open_sources(browser: &Browser, hub: &DevHub, open: usize) -> Vec<Value> {
    browser
        .client
        .goto(&format!("{}/healthz", hub.origin))
        .await
        .unwrap();
    let urls: Vec<String> = (0..SOURCES)
        .map(|n| format!("{}&n={n}", hub.subscribe_url(TOPIC)))
        .collect();
    subscribe(browser, &urls, &[], false).await;
    browser
        .until(&format!(
            "herald.sources.filter((s) => s.readyState === EventSource.OPEN).length >= {open}"
        ))
        .await;
    // Time for any further source to open, were it able to.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let states = browser
        .run(
            "return herald.sources.map((s) => s.readyState);",
            Vec::new(),
        )
        .await;
    states.as_array().cloned().expect("a list")
}

/// How many updates each source received.
async fn per_source(browser: &Browser) -> Vec<usize> {
    let mut counts = vec![0; SOURCES];
    for event in received(browser).await {
        counts[event["source"].as_u64().expect("source") as usize] += 1;
    }
    counts
}

async fn publish_updates(hub: &DevHub, extra: &[&str]) {
    for n in 0..UPDATES {
        publish(
            &hub.hub(),
            &hub.publisher_token,
            &format!("update {n}"),
            extra,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn http1_opens_only_six_event_sources_per_host() {
    let Some(browser) = launch("http1_six_connections", &[]).await else {
        return;
    };
    let hub = DevHub::start(&[]);
    let states = open_sources(&browser, &hub, 6).await;
    let protocol = browser
        .run(
            "return performance.getEntriesByType('navigation')[0].nextHopProtocol;",
            Vec::new(),
        )
        .await;
    assert_eq!(protocol, json!("http/1.1"));
    let open = states.iter().filter(|s| **s == json!(1)).count();
    let connecting = states.iter().filter(|s| **s == json!(0)).count();
    assert_eq!((open, connecting), (6, SOURCES - 6), "states: {states:?}");

    publish_updates(&hub, &[]).await;
    browser
        .until(&format!("herald.got.length >= {}", 6 * UPDATES))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let counts = per_source(&browser).await;
    let expected: Vec<usize> = states
        .iter()
        .map(|s| if *s == json!(1) { UPDATES } else { 0 })
        .collect();
    assert_eq!(
        counts, expected,
        "the open six get every update, the other four nothing"
    );
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn http2_opens_all_ten_event_sources_on_one_connection() {
    let Some(browser) = launch("http2_ten_streams", &["--ignore-certificate-errors"]).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let hub = DevHub::start(&["--tls-cert", cert, "--tls-key", key]);
    assert!(hub.origin.starts_with("https://"), "{}", hub.origin);

    let states = open_sources(&browser, &hub, SOURCES).await;
    let protocol = browser
        .run(
            "return performance.getEntriesByType('navigation')[0].nextHopProtocol;",
            Vec::new(),
        )
        .await;
    assert_eq!(protocol, json!("h2"));
    assert!(states.iter().all(|s| *s == json!(1)), "states: {states:?}");

    publish_updates(&hub, &["--cacert", cert]).await;
    browser
        .until(&format!("herald.got.length >= {}", SOURCES * UPDATES))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(per_source(&browser).await, vec![UPDATES; SOURCES]);
    browser.quit().await;
}
