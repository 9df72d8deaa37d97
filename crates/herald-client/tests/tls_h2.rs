//! TLS with rustls (a self-signed certificate made at test time), HTTP/2 negotiated with ALPN,
//! HTTP/1.1 only when asked, and HTTP/2 with prior knowledge over clear text (h2c), against a
//! real hyper server.

mod support;

use std::net::SocketAddr;

use herald_client::{EventSource, ReadyState, TlsRoots};
use http::Version;
use support::tls::{serve, tls_server};
use support::*;
use tokio::net::TcpListener;

fn https_url(addr: SocketAddr) -> String {
    format!("https://localhost:{}/events", addr.port())
}

#[tokio::test]
async fn https_with_a_trusted_self_signed_certificate_negotiates_http2() {
    let (addr, certificate, _) = tls_server().await;
    let mut source = fast(&https_url(addr))
        .add_root_certificate(certificate)
        .build()
        .expect("source");
    let opened = expect_open(&mut source).await;
    assert_eq!(opened.version(), Version::HTTP_2);
    assert_eq!(
        expect_message(&mut source).await.1,
        "HTTP/2.0 text/event-stream"
    );
    assert!(expect_error(&mut source).await.is_end_of_stream());
    expect_open(&mut source).await;
}

#[tokio::test]
async fn a_certificate_given_as_pem_is_trusted() {
    let (addr, _, pem) = tls_server().await;
    let mut source = fast(&https_url(addr))
        .tls_roots(TlsRoots::Empty)
        .add_root_certificates_pem(pem.as_bytes())
        .build()
        .expect("source");
    expect_open(&mut source).await;
}

#[tokio::test]
async fn http1_only_over_tls() {
    let (addr, certificate, _) = tls_server().await;
    let mut source = fast(&https_url(addr))
        .add_root_certificate(certificate)
        .http1_only()
        .build()
        .expect("source");
    assert_eq!(expect_open(&mut source).await.version(), Version::HTTP_11);
    assert_eq!(
        expect_message(&mut source).await.1,
        "HTTP/1.1 text/event-stream"
    );
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_network_error() {
    let (addr, _, _) = tls_server().await;
    let mut source = fast(&https_url(addr)).build().expect("source");
    let error = expect_error(&mut source).await;
    assert!(error.is_connect(), "{error}");
    assert_eq!(source.ready_state(), ReadyState::Connecting);
}

#[tokio::test]
async fn http2_with_prior_knowledge_over_clear_text() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            serve(tcp);
        }
    });
    let url = format!("http://{addr}/events");
    let mut source = fast(&url).http2_prior_knowledge().build().expect("source");
    assert_eq!(expect_open(&mut source).await.version(), Version::HTTP_2);
    assert_eq!(
        expect_message(&mut source).await.1,
        "HTTP/2.0 text/event-stream"
    );

    let mut plain = EventSource::new(&url).expect("source");
    assert_eq!(expect_open(&mut plain).await.version(), Version::HTTP_11);
}
