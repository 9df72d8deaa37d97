//! The control API against a real browser: a backend ends an `EventSource`'s stream, and
//! Chromium reconnects by itself with `Last-Event-ID`, missing nothing published meanwhile;
//! the debug page's subscription list disconnects a subscriber with its button.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::chromium::launch;
use crate::support::herald;
use crate::{DevHub, TOPIC, publish, received, subscribe};

/// Runs `herald admin` with `args` and returns what it printed.
async fn admin(args: Vec<String>) -> String {
    let mut command: Command = herald();
    command.arg("admin").args(args);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("joined")
        .expect("herald admin runs");
    assert!(
        output.status.success(),
        "herald admin failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_ended_by_the_backend_reconnects_with_last_event_id_and_misses_nothing() {
    let Some(browser) = launch("backend_disconnect", &[]).await else {
        return;
    };
    let hub = DevHub::start(&[]);
    browser
        .client
        .goto(&format!("{}/healthz", hub.origin))
        .await
        .unwrap();
    subscribe(&browser, &[hub.subscribe_url(TOPIC)], &[], false).await;
    browser
        .until("herald.sources[0].readyState === EventSource.OPEN")
        .await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(publish(&hub.hub(), &hub.publisher_token, &n.to_string(), &[]).await);
    }
    browser.until("herald.got.length >= 3").await;

    let said = admin(vec![
        "disconnect".into(),
        "--hub".into(),
        hub.hub(),
        "--token".into(),
        hub.admin_token.clone(),
        "--topic".into(),
        TOPIC.into(),
    ])
    .await;
    assert_eq!(said.trim(), "1 stream ended");
    // Published while the browser waits to reconnect (Chromium's default retry is 3 s).
    for n in 3..6 {
        ids.push(publish(&hub.hub(), &hub.publisher_token, &n.to_string(), &[]).await);
    }
    browser.until("herald.got.length >= 6").await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let got = received(&browser).await;
    let data: Vec<&str> = got.iter().filter_map(|e| e["data"].as_str()).collect();
    assert_eq!(
        data,
        ["0", "1", "2", "3", "4", "5"],
        "every update once, in order"
    );
    let seen: Vec<&str> = got.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(seen, ids);
    let opens = browser.run("return herald.opens.length;", Vec::new()).await;
    assert_eq!(opens, json!(2), "the browser reconnected once");
    let Value::Array(errors) = browser.run("return herald.errors;", Vec::new()).await else {
        panic!("errors")
    };
    // The end was a lost connection the browser retried (CONNECTING), never a failure.
    assert!(errors.iter().all(|e| e["state"] == json!(0)), "{errors:?}");
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_debug_page_disconnects_a_subscriber_from_its_list() {
    let Some(browser) = launch("debug_page_disconnect", &[]).await else {
        return;
    };
    let hub = DevHub::start(&[]);
    browser
        .client
        .goto(&format!("{}/", hub.origin))
        .await
        .unwrap();
    // Development mode on loopback: the page fills in the admin token.
    let token = browser
        .until("document.getElementById('admin-token').value")
        .await;
    assert_eq!(token.as_str(), Some(hub.admin_token.as_str()));
    browser
        .run("document.getElementById('connect').click();", Vec::new())
        .await;
    browser
        .until("document.getElementById('state').dataset.state === 'open'")
        .await;
    browser
        .until("document.querySelector('#subs-list button.disconnect-subscriber')")
        .await;
    browser
        .run(
            "document.querySelector('#subs-list button.disconnect-subscriber').click();",
            Vec::new(),
        )
        .await;
    let result = browser
        .until(
            "document.getElementById('admin-result').textContent.includes('ended') && \
             document.getElementById('admin-result').textContent",
        )
        .await;
    assert!(
        result
            .as_str()
            .is_some_and(|r| r.contains("1 stream ended")),
        "{result}"
    );
    // The page's EventSource lost its stream and reconnects by itself.
    browser
        .until(
            "[...document.querySelectorAll('#log tr')].some((r) => \
             r.textContent.includes('the browser reconnects'))",
        )
        .await;
    browser
        .until("document.getElementById('state').dataset.state === 'open'")
        .await;
}
