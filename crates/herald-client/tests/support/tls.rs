//! A real TLS server (rustls, a self-signed certificate made at test time, h2 and http/1.1 by
//! ALPN) whose one event tells the HTTP version and `Accept` header it saw.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
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

pub fn serve<S>(io: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let _ = auto::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(io), service_fn(echo))
            .await;
    });
}

/// A TLS server for `localhost` offering h2 and http/1.1; returns its address and its
/// certificate (DER, PEM).
pub async fn tls_server() -> (SocketAddr, CertificateDer<'static>, String) {
    tls_server_for("localhost").await
}

/// A TLS server with a self-signed certificate for `host`, offering h2 and http/1.1.
pub async fn tls_server_for(host: &str) -> (SocketAddr, CertificateDer<'static>, String) {
    let certified =
        rcgen::generate_simple_self_signed(vec![host.to_owned()]).expect("self-signed certificate");
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

/// The source opens over HTTP/2 and reads the one event of [`tls_server`]'s.
pub async fn expect_http2_echo(source: &mut herald_client::EventSource) {
    assert_eq!(
        super::expect_open(source).await.version(),
        http::Version::HTTP_2
    );
    assert_eq!(
        super::expect_message(source).await.1,
        "HTTP/2.0 text/event-stream"
    );
}
