//! Operations: `/metrics`, `/healthz`, `/readyz`, slow consumers, and graceful shutdown.

use std::time::Duration;

use herald_hub::{Hub, HubConfig, JwtKey, Update};
use http::StatusCode;

use crate::common::{
    KEY, Stoppable, get, publish_ok, publish_with, serve_stoppable, start, subscribe,
};

/// The value of the sample `name` (with its labels, exactly) in a Prometheus text page.
fn sample(page: &str, name: &str) -> f64 {
    page.lines()
        .find_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            (key == name).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or_else(|| panic!("{name} in\n{page}"))
}

#[tokio::test]
async fn metrics_count_connections_updates_bytes_refusals_and_history() {
    let hub = start(|c| {
        c.anonymous = true;
        c.max_update_size = 512;
    })
    .await;
    let mut stream = subscribe(hub.addr, "/.well-known/mercure?topic=t", &[]).await;
    publish_ok(hub.addr, &[("topic", "t"), ("id", "m1")]).await;
    publish_ok(hub.addr, &[("topic", "t"), ("id", "m2")]).await;
    assert_eq!(stream.event().await.last_event_id(), "m1");
    assert_eq!(stream.event().await.last_event_id(), "m2");
    let refused = publish_with(hub.addr, &[], &[("topic", "t")]).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);

    let page = get(hub.addr, "/metrics", &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    let content_type = page.headers.get("content-type").expect("content type");
    assert!(content_type.to_str().expect("ascii").contains("text"));
    let body = &page.body;
    // The subscription and the metrics request itself are open.
    assert!(sample(body, "herald_open_connections") >= 2.0, "{body}");
    assert_eq!(sample(body, "herald_subscriptions"), 1.0);
    assert_eq!(sample(body, "herald_updates_published_total"), 2.0);
    assert_eq!(sample(body, "herald_updates_delivered_total"), 2.0);
    assert!(sample(body, "herald_bytes_written_total") > 20.0);
    assert_eq!(
        sample(
            body,
            r#"herald_rejected_requests_total{reason="unauthorized"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(body, "herald_publish_to_delivery_seconds_count"),
        2.0
    );
    assert_eq!(sample(body, "herald_history_size"), 2.0);
    assert_eq!(sample(body, "herald_slow_consumer_disconnects_total"), 0.0);
}

#[tokio::test]
async fn a_slow_consumer_is_disconnected_and_counted() {
    let hub = start(|c| {
        c.anonymous = true;
        c.subscriber_queue = 2;
    })
    .await;
    // Subscribes and then never reads: the socket buffers fill, then its queue.
    let _stuck = subscribe(hub.addr, "/.well-known/mercure?topic=t", &[]).await;
    assert_eq!(hub.hub.subscriber_count(), 1);
    let data = "x".repeat(64 * 1024);
    let mut published = 0;
    while hub.hub.subscriber_count() == 1 {
        assert!(
            published < 2_000,
            "the stuck subscriber was never disconnected"
        );
        hub.hub
            .publish(Update::new(vec!["t".into()], data.clone()))
            .await
            .expect("publish");
        published += 1;
        tokio::task::yield_now().await;
    }
    let page = get(hub.addr, "/metrics", &[]).await.body;
    assert_eq!(sample(&page, "herald_slow_consumer_disconnects_total"), 1.0);
    // It can come back and resume from history.
    let again = subscribe(hub.addr, "/.well-known/mercure?topic=t", &[]).await;
    assert_eq!(again.status, StatusCode::OK);
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let hub = start(|_| {}).await;
    let live = get(hub.addr, "/healthz", &[]).await;
    assert_eq!(live.status, StatusCode::OK);
    let ready = get(hub.addr, "/readyz", &[]).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.body, "ready\n");
}

#[tokio::test]
async fn shutdown_ends_streams_cleanly_and_stops_accepting() {
    let hub = Hub::new(HubConfig {
        publisher_jwt: Some(JwtKey::new(KEY, "HS256")),
        anonymous: true,
        grace_period: Duration::from_secs(2),
        ..HubConfig::default()
    })
    .expect("hub");
    let Stoppable { addr, stop, server } = serve_stoppable(&hub).await;
    let mut stream = subscribe(addr, "/.well-known/mercure?topic=t", &[]).await;
    publish_ok(addr, &[("topic", "t"), ("id", "before")]).await;
    stop.send(()).expect("server running");
    let events = stream.until_end(Duration::from_secs(3)).await;
    assert_eq!(
        events.iter().map(|e| e.last_event_id()).collect::<Vec<_>>(),
        ["before"]
    );
    tokio::time::timeout(Duration::from_secs(3), server)
        .await
        .expect("the server returns within the grace period")
        .expect("join")
        .expect("clean exit");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn the_openapi_document_is_served_and_names_every_route() {
    let hub = start(|c| {
        c.anonymous = true;
        c.subscriptions = true;
    })
    .await;
    let page = get(hub.addr, "/openapi.yaml", &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        page.headers["content-type"],
        "application/yaml; charset=utf-8"
    );
    assert_eq!(page.body, include_str!("../../openapi.yaml"));
    assert!(
        page.body.starts_with("openapi: 3.1"),
        "{}",
        &page.body[..40]
    );
    for route in [
        "/.well-known/mercure",
        "/.well-known/mercure/subscriptions",
        "/.well-known/mercure/subscriptions/{topic}",
        "/.well-known/mercure/subscriptions/{topic}/{subscriber}",
        "/.well-known/mercure/subscriptions/{match_type}/{match}/{subscriber}",
        "/.well-known/oauth-protected-resource/.well-known/mercure",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.yaml",
        "/",
    ] {
        assert!(
            page.body.contains(&format!("\n  {route}:\n")),
            "{route} is described"
        );
    }
}

#[tokio::test]
async fn operations_leave_the_public_listener_when_asked_and_serve_on_their_own() {
    let hub = Hub::new(HubConfig {
        public_metrics: false,
        anonymous: true,
        ..HubConfig::default()
    })
    .expect("hub");
    let public = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let private = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let (public_addr, private_addr) = (
        public.local_addr().expect("address"),
        private.local_addr().expect("address"),
    );
    let server = herald_hub::server::Server::new(hub)
        .listener(public)
        .metrics_listener(private);
    assert_eq!(server.metrics_addrs().expect("addresses"), [private_addr]);
    tokio::spawn(server.run(std::future::pending()));
    for path in ["/metrics", "/healthz", "/readyz"] {
        assert_eq!(
            get(private_addr, path, &[]).await.status,
            StatusCode::OK,
            "{path}"
        );
        assert_eq!(
            get(public_addr, path, &[]).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let hub_path = get(private_addr, "/.well-known/mercure?topic=t", &[]).await;
    assert_eq!(hub_path.status, StatusCode::NOT_FOUND);
}
