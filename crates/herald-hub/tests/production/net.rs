//! Clients for these tests: HTTP/2 over TLS or with prior knowledge, and a self-signed
//! certificate for `localhost`.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use herald_hub::server::{Server, server_config_from_der};
use herald_hub::{Hub, HubConfig};
use http_body_util::Full;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

/// A self-signed certificate for `localhost` and its key.
pub struct Cert {
    pub der: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
    pub cert_pem: String,
    pub key_pem: String,
}

pub fn self_signed() -> Cert {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
        .expect("self-signed certificate");
    Cert {
        der: certified.cert.der().clone(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            certified.signing_key.serialize_der(),
        )),
        cert_pem: certified.cert.pem(),
        key_pem: certified.signing_key.serialize_pem(),
    }
}

/// A client configuration trusting `cert`, offering these ALPN protocols.
pub fn client_config(cert: &Cert, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der.clone()).expect("root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A hub configured by `edit`, served over TLS with a fresh certificate on 127.0.0.1.
pub async fn start_tls(edit: impl FnOnce(&mut HubConfig)) -> (SocketAddr, Hub, Cert) {
    let mut config = HubConfig {
        publisher_jwt: Some(herald_hub::JwtKey::new(crate::common::KEY, "HS256")),
        subscriber_jwt: Some(herald_hub::JwtKey::new(crate::common::KEY, "HS256")),
        ..HubConfig::default()
    };
    edit(&mut config);
    let hub = Hub::new(config).expect("hub");
    let cert = self_signed();
    let tls = server_config_from_der(vec![cert.der.clone()], cert.key.clone_key()).expect("tls");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = Server::new(hub.clone()).listener(listener).tls(tls);
    tokio::spawn(server.run(std::future::pending()));
    (addr, hub, cert)
}

/// Opens a TLS connection to `addr` as `localhost`; returns the stream and the ALPN result.
pub async fn tls_connect(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> (
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    Option<Vec<u8>>,
) {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("name");
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .expect("TLS handshake");
    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    (tls, alpn)
}

/// One HTTP/2 connection over `io`.
pub async fn h2<I>(io: I) -> SendRequest<Full<Bytes>>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .expect("HTTP/2 handshake");
    tokio::spawn(conn);
    sender
}
