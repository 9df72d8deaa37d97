//! TLS with rustls (a self-signed certificate made at test time), HTTP/2 negotiated with ALPN,
//! HTTP/1.1 only when asked, and HTTP/2 with prior knowledge over clear text (h2c), against a
//! real hyper server.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use herald_client::{EventSource, ReadyState, TlsRoots};
use http::{Request, Response, Version};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use support::*;
use tokio::net::TcpListener;

/// Answers every request with one event whose data tells the HTTP version and `Accept` seen.
async fn echo(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let accept = request
        .headers()
        .get("accept")
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .unwrap_or_default();
    let body = format!("data: {:?} {accept}\n\n", request.version());
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("text/event-stream"),
    );
    Ok(response)
}

fn serve<S>(io: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let _ = auto::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(io), service_fn(echo))
            .await;
    });
}

/// A TLS server offering h2 and http/1.1; returns its address and its certificate (DER, PEM).
async fn tls_server() -> (SocketAddr, CertificateDer<'static>, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
        .expect("self-signed certificate");
    let certificate = certified.cert.der().clone();
    let pem = certified.cert.pem();
    let key = PrivateKeyDer::from(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![certificate.clone()], key)
        .expect("server configuration");
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    serve(tls);
                }
            });
        }
    });
    (addr, certificate, pem)
}

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
