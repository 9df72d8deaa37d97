//! herald-server with a bare hyper server (no axum): `Sse::into_http` is a hyper response.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use herald_codec::Event;
use herald_server::{LastEventId, Sse};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

#[tokio::test]
async fn a_plain_hyper_service_streams_events() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.expect("accept");
        let service = hyper::service::service_fn(
            |request: http::Request<hyper::body::Incoming>| async move {
                let last = LastEventId::from_request(request.headers(), request.uri().query());
                let events = vec![
                    Event::builder()
                        .id("1")
                        .data(format!("after {:?}", last.0))
                        .build()
                        .expect("valid"),
                ];
                Ok::<_, Infallible>(Sse::new(futures::stream::iter(events)).into_http())
            },
        );
        hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(socket), service)
            .await
            .expect("served");
    });
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let request = http::Request::get("/?last_event_id=7")
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let body = tokio::time::timeout(Duration::from_secs(5), response.into_body().collect())
        .await
        .expect("in time")
        .expect("body")
        .to_bytes();
    assert_eq!(&body[..], b":\nid: 1\ndata: after Some(\"7\")\n\n");
}
