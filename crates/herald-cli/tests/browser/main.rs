//! End-to-end tests in a real browser: headless Chromium's native `EventSource` against
//! `herald serve` (the real binary) on loopback: events and resumption, CORS with cookies,
//! HTTP/1.1's six connections against HTTP/2, the hub's debug page, and the demos' pages.
#![allow(clippy::unwrap_used, missing_docs, unreachable_pub)]

#[path = "../support/mod.rs"]
mod support;

mod chromium;
mod control;
mod cors;
mod debug_page;
mod demos;
mod events;
mod http2;

use std::process::Command;

use serde_json::{Value, json};

use chromium::Browser;
use support::{ServeProcess, herald, spawn_serve};

/// The topic most tests use.
pub(crate) const TOPIC: &str = "https://example.com/books/1";

/// A running `herald serve` in development mode, with its tokens.
pub(crate) struct DevHub {
    /// `scheme://host:port`.
    pub(crate) origin: String,
    pub(crate) publisher_token: String,
    /// A token with the control API's admin claim.
    pub(crate) admin_token: String,
    _process: ServeProcess,
}

impl DevHub {
    /// `herald serve` with no key (development mode) on an ephemeral loopback port, plus `args`.
    pub(crate) fn start(args: &[&str]) -> DevHub {
        let mut process = spawn_serve(
            herald().args(["serve", "--addr", "127.0.0.1:0"]).args(args),
            1,
        );
        let (mut publisher_token, mut admin_token) = (None, None);
        for line in process.stderr().take(4) {
            let line = line.expect("utf-8");
            if let Some(token) = line.strip_prefix("publisher token:") {
                publisher_token = Some(token.trim().to_owned());
            }
            if let Some(token) = line.strip_prefix("admin token:") {
                admin_token = Some(token.trim().to_owned());
            }
        }
        process.drain_stderr();
        DevHub {
            origin: origin_of(&process.urls[0]),
            publisher_token: publisher_token.expect("the banner shows the publisher token"),
            admin_token: admin_token.expect("the banner shows the admin token"),
            _process: process,
        }
    }

    /// The hub's URL.
    pub(crate) fn hub(&self) -> String {
        format!("{}/.well-known/mercure", self.origin)
    }

    /// The subscription URL for `topic`.
    pub(crate) fn subscribe_url(&self, topic: &str) -> String {
        format!("{}?topic={}", self.hub(), encode(topic))
    }
}

/// `scheme://host:port` of a URL.
pub(crate) fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    format!("{scheme}://{}", rest.split('/').next().expect("authority"))
}

pub(crate) fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Publishes with `herald publish` (extra arguments: `--id`, `--type`, `--cacert`...) and
/// returns the update's ID.
pub(crate) async fn publish(hub: &str, token: &str, data: &str, extra: &[&str]) -> String {
    let mut command: Command = herald();
    command.args([
        "publish", "--hub", hub, "--token", token, "--topic", TOPIC, "--data", data,
    ]);
    command.args(extra);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("joined")
        .expect("herald publish runs");
    assert!(
        output.status.success(),
        "herald publish failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// Opens one native `EventSource` per URL in the page; every event (with the listener that got
/// it), open and error is recorded in `window.herald`.
const SUBSCRIBE: &str = r#"
const [urls, types, withCredentials] = arguments;
window.herald = { sources: [], got: [], opens: [], errors: [] };
urls.forEach((url, source) => {
  const es = new EventSource(url, { withCredentials });
  const record = (listener) => (e) =>
    herald.got.push({ source, listener, type: e.type, data: e.data, id: e.lastEventId });
  es.onmessage = record("message");
  types.forEach((t) => es.addEventListener(t, record(t)));
  es.onopen = () => herald.opens.push(source);
  es.onerror = () => herald.errors.push({ source, state: es.readyState });
  herald.sources.push(es);
});
return urls.length;
"#;

/// Subscribes the page to `urls` (see [`SUBSCRIBE`]).
pub(crate) async fn subscribe(
    browser: &Browser,
    urls: &[String],
    types: &[&str],
    credentials: bool,
) {
    browser
        .run(
            SUBSCRIBE,
            vec![json!(urls), json!(types), json!(credentials)],
        )
        .await;
}

/// The events the page recorded so far.
pub(crate) async fn received(browser: &Browser) -> Vec<Value> {
    match browser.run("return herald.got;", Vec::new()).await {
        Value::Array(events) => events,
        other => panic!("not a list: {other}"),
    }
}
