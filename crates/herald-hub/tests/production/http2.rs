//! HTTP/2 and TLS: ALPN, h2c with prior knowledge, many streams over one connection, and
//! several listeners on IPv4 and IPv6.

use std::time::Duration;

use bytes::Bytes;
use futures::future::join_all;
use herald_codec::{Decoder, Frame};
use herald_hub::server::{Server, server_config};
use herald_hub::{Hub, HubConfig, JwtKey};
use http::{Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;

use crate::common::{KEY, STEP, publisher, start};
use crate::net::{client_config, h2, self_signed, start_tls, tls_connect};

const STREAMS: usize = 20;
const UPDATES: usize = 5;

fn subscribe_request(authority: &str, scheme: &str) -> Request<Full<Bytes>> {
    Request::get(format!(
        "{scheme}://{authority}/.well-known/mercure?topic=https%3A%2F%2Fexample.com%2Fbooks%2F1"
    ))
    .body(Full::default())
    .expect("request")
}

fn publish_request(authority: &str, scheme: &str, id: &str) -> Request<Full<Bytes>> {
    Request::post(format!("{scheme}://{authority}/.well-known/mercure"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", format!("Bearer {}", publisher()))
        .body(Full::from(format!(
            "topic=https%3A%2F%2Fexample.com%2Fbooks%2F1&id={id}&data=payload-{id}"
        )))
        .expect("request")
}

/// Reads events from `body` until `count` arrived; returns their IDs.
async fn read_ids(body: Incoming, count: usize) -> Vec<String> {
    let mut body = body;
    let mut decoder = Decoder::new();
    let mut ids = Vec::new();
    while ids.len() < count {
        while let Some(frame) = decoder.next_frame().expect("valid stream") {
            if let Frame::Event(event) = frame {
                ids.push(event.last_event_id().to_owned());
            }
        }
        if ids.len() >= count {
            break;
        }
        let frame = tokio::time::timeout(STEP, body.frame())
            .await
            .expect("a frame in time")
            .expect("the stream is open")
            .expect("a frame");
        if let Ok(data) = frame.into_data() {
            decoder.push(data);
        }
    }
    ids
}

/// Opens `STREAMS` subscriptions on one HTTP/2 connection, publishes `UPDATES` updates on the
/// same connection, and checks that every stream received every update, in order.
async fn many_streams_share_one_connection(
    mut sender: SendRequest<Full<Bytes>>,
    hub: &Hub,
    authority: &str,
    scheme: &str,
) {
    let responses = join_all((0..STREAMS).map(|_| {
        let mut sender = sender.clone();
        let request = subscribe_request(authority, scheme);
        async move { sender.send_request(request).await.expect("response") }
    }))
    .await;
    let mut bodies = Vec::new();
    for response in responses {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.version(), Version::HTTP_2);
        bodies.push(response.into_body());
    }
    assert_eq!(
        hub.subscriber_count(),
        STREAMS,
        "every stream is subscribed"
    );
    let expected: Vec<String> = (0..UPDATES).map(|i| format!("u{i}")).collect();
    for id in &expected {
        let response = sender
            .send_request(publish_request(authority, scheme, id))
            .await
            .expect("publish");
        assert_eq!(response.status(), StatusCode::OK);
    }
    let received = tokio::time::timeout(
        Duration::from_secs(8),
        join_all(bodies.into_iter().map(|body| read_ids(body, UPDATES))),
    )
    .await
    .expect("every stream in time");
    for ids in received {
        assert_eq!(ids, expected);
    }
}

#[tokio::test]
async fn twenty_subscriptions_over_one_tls_http2_connection_receive_every_update() {
    let (addr, hub, cert) = start_tls(|c| c.anonymous = true).await;
    let (tls, alpn) = tls_connect(addr, client_config(&cert, &[b"h2", b"http/1.1"])).await;
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]), "ALPN picks h2");
    let sender = h2(tls).await;
    let authority = format!("localhost:{}", addr.port());
    many_streams_share_one_connection(sender, &hub, &authority, "https").await;
}

#[tokio::test]
async fn twenty_subscriptions_over_one_h2c_connection_receive_every_update() {
    let test = start(|c| c.anonymous = true).await;
    let tcp = tokio::net::TcpStream::connect(test.addr)
        .await
        .expect("connect");
    let sender = h2(tcp).await;
    let authority = test.addr.to_string();
    many_streams_share_one_connection(sender, &test.hub, &authority, "http").await;
}

#[tokio::test]
async fn tls_offers_http1_to_clients_without_h2() {
    let (addr, _hub, cert) = start_tls(|c| c.anonymous = true).await;
    let (tls, alpn) = tls_connect(addr, client_config(&cert, &[b"http/1.1"])).await;
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .expect("handshake");
    tokio::spawn(conn);
    let request = Request::get("/healthz")
        .header("host", "localhost")
        .body(Full::<Bytes>::default())
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), Version::HTTP_11);
}

#[tokio::test]
async fn certificate_and_key_load_from_pem_files() {
    let cert = self_signed();
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, &cert.cert_pem).expect("write");
    std::fs::write(&key_path, &cert.key_pem).expect("write");
    let config = server_config(&cert_path, &key_path).expect("loads");
    assert_eq!(
        config.alpn_protocols,
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    );

    let swapped = server_config(&key_path, &cert_path).expect_err("a key is not a certificate");
    assert!(
        swapped.to_string().contains("cert.pem") || swapped.to_string().contains("key.pem"),
        "{swapped}"
    );
    let missing = server_config(&dir.path().join("nope.pem"), &key_path).expect_err("missing");
    assert!(missing.to_string().contains("nope.pem"), "{missing}");
}

#[tokio::test]
async fn one_hub_serves_several_listeners_including_ipv6() {
    let hub = Hub::new(HubConfig {
        publisher_jwt: Some(JwtKey::new(KEY, "HS256")),
        anonymous: true,
        ..HubConfig::default()
    })
    .expect("hub");
    let mut server = Server::new(hub.clone());
    let mut addrs = Vec::new();
    for spec in ["127.0.0.1:0", "127.0.0.1:0", "[::1]:0"] {
        match tokio::net::TcpListener::bind(spec).await {
            Ok(listener) => {
                addrs.push(listener.local_addr().expect("addr"));
                server = server.listener(listener);
            }
            // Hosts without IPv6 loopback still check the two IPv4 listeners.
            Err(error) if spec.starts_with('[') => eprintln!("no IPv6 loopback: {error}"),
            Err(error) => panic!("bind {spec}: {error}"),
        }
    }
    assert_eq!(server.local_addrs().expect("addrs"), addrs);
    tokio::spawn(server.run(std::future::pending()));
    let mut streams = Vec::new();
    for addr in &addrs {
        streams.push(crate::common::subscribe(*addr, "/.well-known/mercure?topic=t", &[]).await);
    }
    crate::common::publish_ok(addrs[0], &[("topic", "t"), ("id", "everywhere")]).await;
    for stream in &mut streams {
        assert_eq!(stream.event().await.last_event_id(), "everywhere");
    }
}
