//! The demos' pages in Chromium (the demos themselves are `examples/` of herald-server and
//! herald-hub, included here as modules): each page does what it says.

// Each example is a program of its own declaring the demos' shared `support` module; here they
// are modules of one crate, so that module is loaded once per example.
#![allow(clippy::duplicate_mod)]

use std::time::Duration;

use serde_json::json;

use crate::chromium::{Browser, launch};

#[path = "../../../herald-server/examples/clock.rs"]
#[allow(dead_code)]
mod clock;
#[path = "../../../herald-hub/examples/cors.rs"]
#[allow(dead_code)]
mod cors;
#[path = "../../../herald-server/examples/named-events.rs"]
#[allow(dead_code)]
mod named_events;
#[path = "../../../herald-server/examples/ten-then-close.rs"]
#[allow(dead_code)]
mod ten_then_close;

const PERIOD: Duration = Duration::from_millis(200);

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    origin
}

async fn text(browser: &Browser, id: &str) -> String {
    let script = format!("return document.getElementById('{id}').textContent;");
    browser
        .run(&script, Vec::new())
        .await
        .as_str()
        .unwrap()
        .to_owned()
}

async fn click(browser: &Browser, id: &str) {
    let script = format!("document.getElementById('{id}').click();");
    browser.run(&script, Vec::new()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn clock_page_starts_and_stops_its_event_source() {
    let Some(browser) = launch("clock_demo", &[]).await else {
        return;
    };
    let origin = serve(clock::app(PERIOD)).await;
    browser.client.goto(&format!("{origin}/")).await.unwrap();
    click(&browser, "start").await;
    browser
        .until("Number(document.getElementById('count').textContent) >= 3")
        .await;
    assert_eq!(text(&browser, "state").await, "open");
    assert!(text(&browser, "time").await.ends_with(" UTC"));

    click(&browser, "stop").await;
    let stopped_at = text(&browser, "count").await;
    tokio::time::sleep(PERIOD * 4).await;
    assert_eq!(
        text(&browser, "count").await,
        stopped_at,
        "close() stops the events"
    );
    assert_eq!(text(&browser, "state").await, "closed");

    click(&browser, "start").await;
    let resumed = format!("Number(document.getElementById('count').textContent) > {stopped_at}");
    browser.until(&resumed).await;
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn named_events_page_routes_each_name_to_its_listener() {
    let Some(browser) = launch("named_events_demo", &[]).await else {
        return;
    };
    let origin = serve(named_events::app(PERIOD)).await;
    browser.client.goto(&format!("{origin}/")).await.unwrap();
    browser
        .until("document.querySelectorAll('#age li').length >= 2")
        .await;
    let lists = browser
        .run(
            "return ['name', 'age', 'message'].map((id) => \
             [...document.querySelectorAll(`#${id} li`)].slice(0, 2).map((li) => li.textContent));",
            Vec::new(),
        )
        .await;
    assert_eq!(
        lists,
        json!([
            ["Ada", "Grace"],
            ["36", "85"],
            ["a name and an age follow, as named events"]
        ])
    );
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_then_close_page_gets_ten_messages_and_stays_closed() {
    let Some(browser) = launch("ten_then_close_demo", &[]).await else {
        return;
    };
    let origin = serve(ten_then_close::app(Duration::from_millis(100))).await;
    browser.client.goto(&format!("{origin}/")).await.unwrap();
    browser
        .until("document.getElementById('verdict').textContent")
        .await;
    assert_eq!(text(&browser, "state").await, "closed");
    assert_eq!(
        text(&browser, "opens").await,
        "1",
        "the 204 opened no second stream"
    );
    let messages = browser
        .run(
            "return document.querySelectorAll('#messages li').length;",
            Vec::new(),
        )
        .await;
    assert_eq!(messages, json!(10));
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cors_page_gets_private_news_from_its_origin_only() {
    let Some(browser) = launch("cors_demo", &[]).await else {
        return;
    };
    let bind = || tokio::net::TcpListener::bind("127.0.0.1:0");
    let demo = cors::start(
        bind().await.unwrap(),
        bind().await.unwrap(),
        bind().await.unwrap(),
        PERIOD,
    )
    .await
    .unwrap();
    browser
        .client
        .goto(&format!("{}/", demo.allowed))
        .await
        .unwrap();
    browser
        .until("document.querySelectorAll('#news li').length >= 2")
        .await;
    assert_eq!(text(&browser, "state").await, "open");
    assert!(text(&browser, "news").await.contains("private news #"));

    browser
        .client
        .goto(&format!("{}/", demo.other))
        .await
        .unwrap();
    let verdict = browser
        .until("document.getElementById('verdict').textContent")
        .await;
    assert_eq!(
        verdict,
        json!("Refused: the hub does not allow this origin.")
    );
    tokio::time::sleep(PERIOD * 3).await;
    assert_eq!(text(&browser, "news").await, "");
    browser.quit().await;
}
