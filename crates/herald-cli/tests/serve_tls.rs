//! `herald serve` with `--tls-cert/--tls-key` on several addresses: the real binary, HTTP/2 by
//! ALPN, and `herald publish --cacert` against it.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::ServerName;

const KEY: &str = "production-test-key";

mod support;

use support::{herald, spawn_serve};

fn ipv6_loopback() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_h2_on_ipv4_and_ipv6() {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).expect("write");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write");
    let mut addrs = vec!["127.0.0.1:0"];
    if ipv6_loopback() {
        addrs.push("[::1]:0");
    }
    let mut command = herald();
    command.args(["serve", "--jwt-key", KEY, "--anonymous", "--tls-cert"]);
    command.arg(&cert).arg("--tls-key").arg(&key);
    for addr in &addrs {
        command.args(["--addr", addr]);
    }
    let mut child = spawn_serve(&mut command, addrs.len());
    child.drain_stderr();
    let urls = child.urls.clone();
    assert!(urls.iter().all(|u| u.starts_with("https://")), "{urls:?}");
    if addrs.len() == 2 {
        assert!(urls[1].starts_with("https://[::1]:"), "{urls:?}");
    }

    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).expect("root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));

    let mut bodies = Vec::new();
    for url in &urls {
        let authority = url
            .strip_prefix("https://")
            .and_then(|r| r.split('/').next())
            .expect("authority");
        let tcp = tokio::net::TcpStream::connect(authority)
            .await
            .expect("connect");
        let tls = connector
            .connect(ServerName::try_from("localhost").expect("name"), tcp)
            .await
            .expect("handshake");
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .expect("h2");
        tokio::spawn(conn);
        let request = http::Request::get(format!("{url}?topic=t"))
            .body(Full::<Bytes>::default())
            .expect("request");
        let response = sender.send_request(request).await.expect("response");
        assert_eq!(response.status(), 200);
        assert_eq!(response.version(), http::Version::HTTP_2);
        bodies.push((sender, response.into_body()));
    }

    let token = herald_hub::dev::hs256_token(KEY, serde_json::json!({"publish": ["*"]}), None)
        .expect("token");
    let hub = urls[0].replace("127.0.0.1", "localhost");
    let cert_arg = cert.display().to_string();
    let published = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(["publish", "--hub", &hub, "--token", &token, "--topic", "t"])
            .args(["--data", "over tls", "--id", "tls-1", "--cacert", &cert_arg])
            .output()
            .expect("herald publish runs")
    })
    .await
    .expect("join");
    assert!(published.status.success(), "{published:?}");

    for (_sender, mut body) in bodies {
        let mut text = String::new();
        while !text.contains("id: tls-1\ndata: over tls\n\n") {
            let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
                .await
                .expect("in time")
                .expect("open")
                .expect("frame");
            if let Ok(data) = frame.into_data() {
                text.push_str(&String::from_utf8_lossy(&data));
            }
        }
    }
    drop(child);
}

#[test]
fn tls_cert_without_key_is_refused() {
    let output = herald()
        .args(["serve", "--addr", "127.0.0.1:0", "--tls-cert", "cert.pem"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--tls-key"),
        "{output:?}"
    );
}
