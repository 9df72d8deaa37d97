//! `herald publish` to an `https` hub whose certificate comes from a private CA (`--cacert`).

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// Answers every request with the form it received, as a hub answers with an ID.
async fn echo(
    request: http::Request<Incoming>,
) -> Result<http::Response<Full<bytes::Bytes>>, Infallible> {
    let authorization = request
        .headers()
        .get("authorization")
        .map(|v| v.to_str().unwrap_or_default().to_owned())
        .unwrap_or_default();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let answer = format!("{authorization}|{}", String::from_utf8_lossy(&body));
    Ok(http::Response::new(Full::from(answer)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_over_https_trusting_cacert() {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, certified.cert.pem()).expect("write pem");
    let key = PrivateKeyDer::from(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), hyper::service::service_fn(echo))
                        .await;
                }
            });
        }
    });
    let hub = format!("https://localhost:{port}/.well-known/mercure");
    let run = |extra: Vec<String>| {
        let hub = hub.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
                .args([
                    "publish", "--hub", &hub, "--topic", "t", "--data", "a b", "--token", "tok",
                ])
                .args(extra)
                .env_remove("HERALD_TOKEN")
                .env_remove("HERALD_HUB")
                .output()
                .expect("herald publish runs")
        })
    };
    let trusted = run(vec!["--cacert".into(), ca_path.display().to_string()])
        .await
        .expect("joined");
    assert!(trusted.status.success(), "{trusted:?}");
    assert_eq!(
        String::from_utf8_lossy(&trusted.stdout).trim(),
        "Bearer tok|topic=t&data=a+b"
    );
    let untrusted = run(Vec::new()).await.expect("joined");
    assert!(
        !untrusted.status.success(),
        "a private CA is not trusted by default"
    );
}
