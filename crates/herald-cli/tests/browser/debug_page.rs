//! The hub's debug page at `/` in development mode: subscribe and publish from its forms, see the
//! events in the log and the subscription in the list, resume from a `Last-Event-ID` or replay
//! from the earliest update, see why a refused subscription was refused, and leave a screenshot
//! in `target/`.

use std::path::PathBuf;

use fantoccini::Locator;
use fantoccini::elements::Element;
use fantoccini::key::Key;

use crate::DevHub;
use crate::chromium::{Browser, launch};

async fn field(browser: &Browser, id: &str) -> Element {
    browser.client.find(Locator::Id(id)).await.unwrap()
}

/// Loads the debug page and waits until it has filled in the development tokens.
async fn open_page(browser: &Browser, hub: &DevHub) {
    browser
        .client
        .goto(&format!("{}/", hub.origin))
        .await
        .unwrap();
    browser
        .until("document.getElementById('sub-token').value")
        .await;
}

/// Connects, waits until the log shows the update `last`, and returns the logged IDs, newest
/// first.
async fn connect_and_log_until(browser: &Browser, last: &str) -> serde_json::Value {
    field(browser, "connect").await.click().await.unwrap();
    browser
        .until(&format!(
            "document.querySelector('#log tr[data-id=\"{last}\"]')"
        ))
        .await;
    browser
        .run(
            "return [...document.querySelectorAll('#log tr[data-id]')].map((r) => r.dataset.id);",
            Vec::new(),
        )
        .await
}

async fn fill(browser: &Browser, id: &str, text: &str) {
    let element = field(browser, id).await;
    element.clear().await.unwrap();
    element.send_keys(text).await.unwrap();
}

/// Where the screenshot goes: the workspace's `target/` (or `CARGO_TARGET_DIR`).
fn screenshot_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    target.join("debug-page.png")
}

#[tokio::test(flavor = "multi_thread")]
async fn debug_page_subscribes_publishes_and_logs_the_event() {
    let Some(browser) = launch("debug_page", &[]).await else {
        return;
    };
    let hub = DevHub::start(&[]);
    browser
        .client
        .goto(&format!("{}/", hub.origin))
        .await
        .unwrap();
    assert_eq!(
        browser.client.title().await.unwrap(),
        "Herald hub · debug page"
    );
    // Development mode on loopback: the page fills in the tokens.
    let token = browser
        .until("document.getElementById('pub-token').value")
        .await;
    assert_eq!(token.as_str(), Some(hub.publisher_token.as_str()));

    field(&browser, "connect").await.click().await.unwrap();
    browser
        .until("document.getElementById('state').dataset.state === 'open'")
        .await;
    browser
        .until("document.getElementById('subs-count').textContent === '1'")
        .await;
    let subscription = browser
        .run(
            "return document.querySelector('#subs-list td').textContent;",
            Vec::new(),
        )
        .await;
    assert_eq!(subscription.as_str(), Some(crate::TOPIC));

    // A named event, published by clicking.
    fill(&browser, "pub-data", "{\"title\": \"Dune\", \"stock\": 3}").await;
    fill(&browser, "pub-type", "book").await;
    fill(&browser, "pub-id", "debug-1").await;
    field(&browser, "publish").await.click().await.unwrap();
    browser
        .until("document.querySelector('#log tr[data-id=\"debug-1\"]')")
        .await;
    let row = browser
        .run(
            "const r = document.querySelector('#log tr[data-id=\"debug-1\"]'); \
             return [...r.cells].map((c) => c.textContent);",
            Vec::new(),
        )
        .await;
    assert_eq!(row[1], "book");
    assert_eq!(row[3], "{\"title\": \"Dune\", \"stock\": 3}");
    let result = browser.until("document.getElementById('pub-result').textContent.includes('debug-1') && document.getElementById('pub-result').textContent").await;
    assert_eq!(result.as_str(), Some("published as debug-1"));

    // A private message, published from the keyboard: Enter in the ID field submits the form.
    // Its data holds markup, which the log must show as text.
    fill(&browser, "pub-data", "<b>a private</b> note").await;
    fill(&browser, "pub-type", "").await;
    field(&browser, "pub-private").await.click().await.unwrap();
    fill(
        &browser,
        "pub-id",
        &format!("debug-2{}", char::from(Key::Enter)),
    )
    .await;
    browser
        .until("document.querySelector('#log tr[data-id=\"debug-2\"]')")
        .await;
    let types = browser
        .run(
            "return [...document.querySelectorAll('#log tr[data-id]')].map((r) => r.dataset.type);",
            Vec::new(),
        )
        .await;
    assert_eq!(
        types,
        serde_json::json!(["message", "book"]),
        "newest first"
    );
    let shown = browser
        .run(
            "const r = document.querySelector('#log tr[data-id=\"debug-2\"]'); \
             return [r.cells[3].textContent, document.querySelectorAll('#log b').length];",
            Vec::new(),
        )
        .await;
    assert_eq!(
        shown,
        serde_json::json!(["<b>a private</b> note", 0]),
        "data is text, never markup"
    );
    assert_eq!(
        browser
            .run(
                "return document.getElementById('event-count').textContent;",
                Vec::new()
            )
            .await,
        "2"
    );

    // Let the new rows' highlight fade before the picture.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let png = browser.client.screenshot().await.unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let path = screenshot_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, png).unwrap();

    // A long event is shown cut, so that hundreds of rows stay light.
    browser
        .run(
            "document.getElementById('pub-data').value = 'x'.repeat(5000); \
             document.getElementById('pub-id').value = 'debug-long';",
            Vec::new(),
        )
        .await;
    field(&browser, "publish").await.click().await.unwrap();
    browser
        .until("document.querySelector('#log tr[data-id=\"debug-long\"]')")
        .await;
    let long = browser
        .run(
            "return document.querySelector('#log tr[data-id=\"debug-long\"]').cells[3].textContent;",
            Vec::new(),
        )
        .await;
    let long = long.as_str().expect("text");
    assert!(
        long.starts_with(&"x".repeat(4096)) && long.ends_with("… (5000 characters in all)"),
        "{}",
        &long[long.len().saturating_sub(60)..]
    );

    // Disconnecting closes the stream and empties the subscription list.
    field(&browser, "disconnect").await.click().await.unwrap();
    browser
        .until("document.getElementById('state').dataset.state === 'closed'")
        .await;
    browser
        .until(
            // The page refreshes the list once after closing; ask again while the hub has not
            // yet seen the stream go.
            "document.getElementById('subs-count').textContent === '0' \
             || (document.getElementById('subs-refresh').click(), false)",
        )
        .await;

    // Resuming from a Last-Event-ID replays what came after it, and only that.
    field(&browser, "clear-log").await.click().await.unwrap();
    fill(&browser, "sub-last-id", "debug-1").await;
    let ids = connect_and_log_until(&browser, "debug-long").await;
    assert_eq!(
        ids,
        serde_json::json!(["debug-long", "debug-2"]),
        "newest first"
    );
    browser.quit().await;
}

/// Streams end after about a second: the page shows the browser's reconnection countdown, then
/// the stream open again; a refused token shows the page's own retry countdown.
#[tokio::test(flavor = "multi_thread")]
async fn debug_page_counts_down_to_reconnections() {
    let Some(browser) = launch("debug_page_countdown", &[]).await else {
        return;
    };
    let hub = DevHub::start(&["--write-timeout", "1s"]);
    open_page(&browser, &hub).await;
    field(&browser, "connect").await.click().await.unwrap();
    browser
        .until("document.getElementById('state').dataset.state === 'open'")
        .await;
    let countdown = browser
        .until("document.getElementById('countdown').textContent.startsWith('browser reconnects in') && document.getElementById('countdown').textContent")
        .await;
    assert!(countdown.as_str().unwrap().ends_with(" s"), "{countdown}");
    assert_eq!(
        browser
            .run(
                "return document.getElementById('state').dataset.state;",
                Vec::new()
            )
            .await,
        "connecting"
    );
    browser.until("document.getElementById('state').dataset.state === 'open' && document.getElementById('countdown').textContent === ''").await;

    // A token the hub refuses: the browser gives up, the page retries with a countdown.
    fill(&browser, "sub-token", &"x".repeat(60)).await;
    field(&browser, "connect").await.click().await.unwrap();
    browser
        .until("document.getElementById('state').dataset.state === 'failed'")
        .await;
    let countdown = browser
        .until("document.getElementById('countdown').textContent.startsWith('page retries in') && document.getElementById('countdown').textContent")
        .await;
    assert!(countdown.as_str().unwrap().ends_with(" s"), "{countdown}");
    // EventSource hides the answer; the page asks once and shows the status and the reason.
    let refusal = browser
        .until("!document.getElementById('sub-refusal').hidden && document.getElementById('sub-refusal').textContent")
        .await;
    let refusal = refusal.as_str().unwrap();
    assert!(
        refusal.starts_with("the hub answered 401 Unauthorized: malformed token"),
        "{refusal}"
    );
    let logged = browser
        .run(
            "return [...document.querySelectorAll('#log tr.bad')].map((r) => r.cells[3].textContent);",
            Vec::new(),
        )
        .await;
    assert!(
        logged
            .as_array()
            .unwrap()
            .iter()
            .any(|row| row.as_str() == Some(refusal)),
        "{logged}"
    );
    field(&browser, "disconnect").await.click().await.unwrap();
    assert_eq!(
        browser
            .run(
                "return document.getElementById('sub-refusal').hidden;",
                Vec::new()
            )
            .await,
        true
    );
    assert_eq!(
        browser.run("return [document.getElementById('state').dataset.state, document.getElementById('countdown').textContent];", Vec::new()).await,
        serde_json::json!(["closed", ""])
    );
    browser.quit().await;
}

/// Updates published before Connect are seen with "Replay from earliest".
#[tokio::test(flavor = "multi_thread")]
async fn debug_page_replays_from_earliest() {
    let Some(browser) = launch("debug_page_earliest", &[]).await else {
        return;
    };
    let hub = DevHub::start(&[]);
    for id in ["before-1", "before-2"] {
        let published = crate::support::herald()
            .args([
                "publish",
                "--hub",
                &hub.hub(),
                "--token",
                &hub.publisher_token,
            ])
            .args([
                "--topic",
                crate::TOPIC,
                "--data",
                "published before",
                "--id",
                id,
            ])
            .output()
            .unwrap();
        assert!(published.status.success(), "{published:?}");
    }
    open_page(&browser, &hub).await;
    field(&browser, "sub-earliest").await.click().await.unwrap();
    assert_eq!(
        browser
            .run(
                "return document.getElementById('sub-last-id').disabled;",
                Vec::new()
            )
            .await,
        true,
        "earliest replaces the Last-Event-ID"
    );
    let ids = connect_and_log_until(&browser, "before-2").await;
    assert_eq!(
        ids,
        serde_json::json!(["before-2", "before-1"]),
        "newest first"
    );
    browser.quit().await;
}

/// The page subscribes in Mercure 1.0 too: a URL pattern, resumed with `last_event_id` from
/// the earliest update, and the subscription's `EventSource` URL speaks 1.0 only.
#[tokio::test(flavor = "multi_thread")]
async fn debug_page_subscribes_in_mercure_1_0() {
    let Some(browser) = launch("debug_page_1_0", &[]).await else {
        return;
    };
    let hub = DevHub::start(&[]);
    crate::publish(
        &hub.hub(),
        &hub.publisher_token,
        "before",
        &["--id", "v1-before"],
    )
    .await;
    open_page(&browser, &hub).await;
    browser
        .run(
            "const p = document.getElementById('sub-protocol'); p.value = '1'; \
             p.dispatchEvent(new Event('change')); \
             const t = document.getElementById('sub-match-type'); t.value = 'urlpattern';",
            Vec::new(),
        )
        .await;
    fill(&browser, "sub-topics", "https://example.com/books/:id").await;
    field(&browser, "sub-earliest").await.click().await.unwrap();
    let ids = connect_and_log_until(&browser, "v1-before").await;
    assert_eq!(ids, serde_json::json!(["v1-before"]));
    let url = browser
        .run("return page.source.url;", Vec::new())
        .await
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        url.contains("match_urlpattern=") && url.contains("last_event_id=earliest"),
        "{url}"
    );
    assert!(
        !url.contains("topic=") && !url.contains("authorization="),
        "no 0.x parameter, no token in the URL: {url}"
    );
    crate::publish(
        &hub.hub(),
        &hub.publisher_token,
        "live",
        &["--id", "v1-live"],
    )
    .await;
    browser
        .until("document.querySelector('#log tr[data-id=\"v1-live\"]')")
        .await;
    browser.quit().await;
}
