//! Interoperation with other HTTP/2 implementations: curl (libcurl with nghttp2), and
//! nghttp2's own `nghttp` and `h2load` (Debian's `curl` and `nghttp2-client`, which CI
//! installs), over h2c with prior knowledge and over TLS with ALPN.

use std::io::Read;
use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald_hub::{Hub, HubConfig, JwtKey};

use crate::common::{KEY, STEP, Stoppable, publisher, serve_stoppable, start};

/// Runs `program` with `args` to its end (within a minute).
async fn run(program: &str, args: &[&str]) -> Output {
    let mut command = Command::new(program);
    command.args(args).stdin(Stdio::null());
    tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("join")
        .unwrap_or_else(|error| {
            panic!("cannot run {program} (apt-get install curl nghttp2-client): {error}")
        })
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A long-running client whose output is gathered as it comes.
struct Running {
    child: Child,
    out: Arc<Mutex<String>>,
}

impl Running {
    fn start(program: &str, args: &[&str]) -> Running {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot run {program} (apt-get install curl nghttp2-client): {error}")
            });
        let mut stdout = child.stdout.take().expect("stdout");
        let out = Arc::new(Mutex::new(String::new()));
        let gathered = out.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stdout.read(&mut buf) {
                gathered
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Running { child, out }
    }

    /// Waits until the output contains `needle`.
    async fn until(&self, needle: &str) {
        let deadline = tokio::time::Instant::now() + STEP;
        while !self.out.lock().unwrap().contains(needle) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{needle:?} not in {:?}",
                self.out.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for the program to end by itself.
    async fn exited(&mut self) {
        let deadline = tokio::time::Instant::now() + STEP;
        while self.child.try_wait().expect("wait").is_none() {
            assert!(tokio::time::Instant::now() < deadline, "still running");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn until_subscribed(hub: &Hub, count: usize) {
    let deadline = tokio::time::Instant::now() + STEP;
    while hub.subscriber_count() < count {
        assert!(tokio::time::Instant::now() < deadline, "not subscribed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

#[tokio::test]
async fn curl_subscribes_and_publishes_over_h2c_and_tls() {
    let hub = start(|config| config.anonymous = true).await;
    let subscription = url(hub.addr, "/.well-known/mercure?topic=t");
    let subscriber = Running::start(
        "curl",
        &["-sS", "-N", "--http2-prior-knowledge", &subscription],
    );
    until_subscribed(&hub.hub, 1).await;
    let auth = format!("Authorization: Bearer {}", publisher());
    let hub_url = url(hub.addr, "/.well-known/mercure");
    let published = run(
        "curl",
        &[
            "-sS",
            "--http2-prior-knowledge",
            "-H",
            &auth,
            "-d",
            "topic=t",
            "-d",
            "data=over curl",
            &hub_url,
        ],
    )
    .await;
    assert!(
        text(&published.stdout).starts_with("urn:uuid:"),
        "{published:?}"
    );
    subscriber.until("data: over curl\n").await;

    let (addr, _hub, cert) = crate::net::start_tls(|_| {}).await;
    let dir = tempfile::tempdir().expect("dir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &cert.cert_pem).expect("write");
    let resolve = format!("localhost:{}:127.0.0.1", addr.port());
    let https = format!("https://localhost:{}/openapi.yaml", addr.port());
    let fetched = run(
        "curl",
        &[
            "-sS",
            "--http2",
            "--cacert",
            ca.to_str().expect("path"),
            "--resolve",
            &resolve,
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
            &https,
        ],
    )
    .await;
    assert_eq!(text(&fetched.stdout), "2 200", "{fetched:?}");
}

#[tokio::test]
async fn curl_gets_100_continue_only_once_authorized() {
    let hub = start(|_| {}).await;
    let hub_url = url(hub.addr, "/.well-known/mercure");
    let publish = |token: String| {
        let hub_url = hub_url.clone();
        async move {
            let auth = format!("Authorization: Bearer {token}");
            run(
                "curl",
                &[
                    "-sS",
                    "-v",
                    "--http2-prior-knowledge",
                    "--expect100-timeout",
                    "10",
                    "-H",
                    "Expect: 100-continue",
                    "-H",
                    &auth,
                    "-d",
                    "topic=t",
                    "-d",
                    "data=x",
                    &hub_url,
                ],
            )
            .await
        }
    };
    let allowed = publish(publisher()).await;
    let log = text(&allowed.stderr);
    assert!(log.contains("< HTTP/2 100"), "{log}");
    assert!(
        text(&allowed.stdout).starts_with("urn:uuid:"),
        "{allowed:?}"
    );
    let wrong = herald_hub::dev::hs256_token(
        "another key, another key, another key",
        serde_json::json!({"publish": ["*"]}),
        None,
    )
    .expect("token");
    let refused = publish(wrong).await;
    let log = text(&refused.stderr);
    assert!(log.contains("< HTTP/2 401"), "{log}");
    assert!(!log.contains("< HTTP/2 100"), "{log}");
}

#[tokio::test]
async fn nghttp_is_served_over_h2c_and_tls_and_told_goaway_on_shutdown() {
    let hub = start(|_| {}).await;
    let fetched = run("nghttp", &["-nv", &url(hub.addr, "/openapi.yaml")]).await;
    let log = text(&fetched.stdout);
    assert!(fetched.status.success(), "{log}");
    assert!(log.contains(":status: 200"), "{log}");
    let (addr, _hub, _cert) = crate::net::start_tls(|_| {}).await;
    let https = format!("https://127.0.0.1:{}/openapi.yaml", addr.port());
    let fetched = run("nghttp", &["-nv", &https]).await;
    let log = text(&fetched.stdout);
    assert!(fetched.status.success(), "{log}");
    assert!(
        log.contains("negotiated protocol: h2") && log.contains(":status: 200"),
        "{log}"
    );

    let hub = Hub::new(HubConfig {
        publisher_jwt: Some(JwtKey::new(KEY, "HS256")),
        anonymous: true,
        grace_period: Duration::from_secs(3),
        ..HubConfig::default()
    })
    .expect("hub");
    let Stoppable { addr, stop, server } = serve_stoppable(&hub).await;
    let mut subscriber = Running::start(
        "nghttp",
        &["-v", &url(addr, "/.well-known/mercure?topic=t")],
    );
    until_subscribed(&hub, 1).await;
    stop.send(()).expect("running");
    subscriber.exited().await;
    subscriber.until("recv GOAWAY frame").await;
    subscriber.until("error_code=NO_ERROR").await;
    tokio::time::timeout(STEP, server)
        .await
        .expect("the server ends")
        .expect("join")
        .expect("clean");
}

#[tokio::test]
async fn h2load_requests_all_succeed_over_h2c_and_tls() {
    let hub = start(|_| {}).await;
    let load = run(
        "h2load",
        &[
            "-n",
            "400",
            "-c",
            "4",
            "-m",
            "16",
            &url(hub.addr, "/openapi.yaml"),
        ],
    )
    .await;
    let log = text(&load.stdout);
    assert!(log.contains("400 succeeded, 0 failed, 0 errored"), "{log}");
    let (addr, _hub, _cert) = crate::net::start_tls(|_| {}).await;
    let https = format!("https://127.0.0.1:{}/openapi.yaml", addr.port());
    let load = run("h2load", &["-n", "100", "-c", "2", "-m", "8", &https]).await;
    let log = text(&load.stdout);
    assert!(log.contains("100 succeeded, 0 failed, 0 errored"), "{log}");
    assert!(log.contains("Application protocol: h2"), "{log}");
}
