//! The application's own ways to reach the server: a connector (a Unix socket; a resolver of its
//! own, with TLS on top), and its whole HTTP client (a `hyper_util` client behind its own
//! middleware) used instead of the source's.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use herald_client::EventSource;
use http::{Request, Uri};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::tls::{expect_http2_echo, tls_server_for};
use support::*;
use tokio::io::AsyncWriteExt;

/// Serves `count` connections on a Unix socket, each one event with the connection's number as
/// its ID, then the end of the response.
async fn unix_server(path: &std::path::Path, count: usize) {
    let listener = tokio::net::UnixListener::bind(path).expect("bind the socket");
    tokio::spawn(async move {
        for n in 1..=count {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            if !matches!(read_head(&mut socket).await, Ok(Some(_))) {
                return;
            }
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n\
                 id: {n}\ndata: over a unix socket\n\n"
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
}

#[tokio::test]
async fn a_unix_socket_connector_carries_every_connection() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let path = directory.path().join("events.sock");
    unix_server(&path, 2).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let connector = {
        let (path, calls) = (path.clone(), Arc::clone(&calls));
        tower::service_fn(move |uri: Uri| {
            let (path, calls) = (path.clone(), Arc::clone(&calls));
            async move {
                assert_eq!(uri.host(), Some("daemon"));
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::net::UnixStream::connect(path)
                    .await
                    .map(TokioIo::new)
            }
        })
    };
    let mut source = fast("http://daemon/events")
        .connector(connector)
        .build()
        .expect("source");
    expect_open(&mut source).await;
    let (_, data, id) = expect_message(&mut source).await;
    assert_eq!((data.as_str(), id.as_str()), ("over a unix socket", "1"));
    // The response ends: the source reconnects through the connector again.
    assert!(expect_error(&mut source).await.is_end_of_stream());
    expect_open(&mut source).await;
    assert_eq!(expect_message(&mut source).await.2, "2");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_connector_with_its_own_resolver_keeps_tls_and_http2_on_top() {
    let (addr, certificate, _) = tls_server_for("events.test").await;
    // "events.test" resolves nowhere but here.
    let resolver = tower::service_fn(move |uri: Uri| async move {
        assert_eq!(uri.host(), Some("events.test"));
        tokio::net::TcpStream::connect(addr).await.map(TokioIo::new)
    });
    let mut source = fast("https://events.test/events")
        .connector(resolver)
        .add_root_certificate(certificate)
        .build()
        .expect("source");
    expect_http2_echo(&mut source).await;
}

#[tokio::test]
async fn a_connector_error_is_a_network_error_then_a_retry() {
    let refuse = tower::service_fn(|_: Uri| async {
        Err::<TokioIo<tokio::net::TcpStream>, _>(std::io::Error::other("no route to the daemon"))
    });
    let mut source = fast("http://daemon/")
        .connector(refuse)
        .build()
        .expect("source");
    for _ in 0..2 {
        let error = expect_error(&mut source).await;
        assert!(error.is_connect() && !error.is_fatal(), "{error:?}");
    }
}

#[tokio::test]
async fn the_applications_http_client_sends_the_requests() {
    let mut server = Server::start(vec![
        sse("id: 1\ndata: a\n\n"),
        sse_then_hold("data: b\n\n"),
    ])
    .await;
    // The application's client and its middleware: every request it sends carries its header.
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let client = tower::ServiceBuilder::new()
        .map_request(|mut request: Request<Full<Bytes>>| {
            request
                .headers_mut()
                .insert("x-app-client", http::HeaderValue::from_static("yes"));
            request
        })
        .service(client);
    let mut source = fast(&server.url("/events"))
        .header("x-source", "1")
        .http_client(client)
        .build()
        .expect("source");
    expect_open(&mut source).await;
    assert_eq!(expect_message(&mut source).await.1, "a");
    assert!(expect_error(&mut source).await.is_end_of_stream());
    expect_open(&mut source).await;
    assert_eq!(expect_message(&mut source).await.1, "b");
    // Both connections: the source's request (its headers, Last-Event-ID on the second) sent
    // through the application's middleware.
    for last_event_id in [None, Some("1")] {
        let request = server.next_request().await;
        assert_eq!(request.header("x-app-client"), Some("yes"));
        assert_eq!(request.header("x-source"), Some("1"));
        assert_eq!(request.header("accept"), Some("text/event-stream"));
        assert_eq!(request.header("last-event-id"), last_event_id);
    }
}

#[test]
fn settings_of_the_own_client_are_refused_beside_an_application_client() {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let error = EventSource::builder("http://127.0.0.1:1/")
        .http1_only()
        .proxy("http://127.0.0.1:3128")
        .http_client(client)
        .build()
        .expect_err("conflicting settings");
    assert!(error.is_builder());
    let message = error.to_string();
    assert!(message.contains("http1_only, proxy"), "{message}");
}
