//! `herald serve` and `herald publish` end to end: the real binary on an ephemeral port.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod support;

use support::{ServeProcess, herald, spawn_serve};

/// A running `herald serve` and what its banner said.
struct Server {
    process: ServeProcess,
    hub: String,
    banner: Vec<String>,
}

impl Server {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut process = spawn_serve(
            herald()
                .args(["serve", "--addr", "127.0.0.1:0"])
                .args(args)
                .envs(env.iter().copied()),
            1,
        );
        let mut banner = process.banner.clone();
        // Keep the remaining banner lines (dev mode prints the tokens after the URL).
        if banner[0].contains("DEVELOPMENT") {
            for line in process.stderr().take(4) {
                banner.push(line.expect("utf-8"));
            }
        }
        process.drain_stderr();
        Server {
            hub: process.urls[0].clone(),
            process,
            banner,
        }
    }

    fn banner_value(&self, label: &str) -> String {
        self.banner
            .iter()
            .find_map(|l| l.strip_prefix(label))
            .unwrap_or_else(|| panic!("{label} in {:?}", self.banner))
            .trim()
            .to_owned()
    }

    fn authority(&self) -> &str {
        self.process.authority()
    }

    /// Opens a subscription with a raw HTTP/1.1 request and returns the socket once the
    /// response head and the initial comment have arrived, with what was read so far.
    fn subscribe(&self, query: &str, headers: &str) -> (TcpStream, String) {
        let mut socket = TcpStream::connect(self.authority()).expect("connect");
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        write!(
            socket,
            "GET /.well-known/mercure?{query} HTTP/1.1\r\nHost: localhost\r\n{headers}\r\n"
        )
        .expect("request");
        let text = read_until(&mut socket, String::new(), "\r\n\r\n");
        (socket, text)
    }
}

fn read_until(socket: &mut TcpStream, mut text: String, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 4096];
    while !text.contains(needle) {
        assert!(Instant::now() < deadline, "{needle:?} not in {text:?}");
        let n = socket.read(&mut buf).expect("read");
        assert!(n > 0, "connection closed before {needle:?}: {text:?}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    text
}

fn publish(args: &[&str]) -> Output {
    herald()
        .arg("publish")
        .args(args)
        .output()
        .expect("herald publish runs")
}

#[test]
fn development_mode_serves_publishes_and_delivers() {
    let server = Server::start(&[], &[]);
    assert!(
        server.banner[0].contains("DEVELOPMENT MODE"),
        "{:?}",
        server.banner
    );
    let token = server.banner_value("publisher token:");
    let (mut socket, head) = server.subscribe("topic=https%3A%2F%2Fexample.com%2Fbooks%2F1", "");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/event-stream")
    );
    let published = publish(&[
        "--hub",
        &server.hub,
        "--token",
        &token,
        "--topic",
        "https://example.com/books/1",
        "--data",
        "hello\nworld",
        "--id",
        "e1",
        "--type",
        "greeting",
    ]);
    assert!(published.status.success(), "{published:?}");
    assert_eq!(String::from_utf8_lossy(&published.stdout).trim(), "e1");
    read_until(
        &mut socket,
        head,
        "event: greeting\nid: e1\ndata: hello\ndata: world\n\n",
    );

    let generated = publish(&["--hub", &server.hub, "--token", &token, "--topic", "x"]);
    assert!(String::from_utf8_lossy(&generated.stdout).starts_with("urn:uuid:"));

    let refused = publish(&["--hub", &server.hub, "--topic", "x"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("401"),
        "{refused:?}"
    );
}

#[test]
fn configured_keys_and_mercure_variables_are_honoured() {
    let server = Server::start(
        &["--subscriber-jwt-key", "sub-key"],
        &[("MERCURE_PUBLISHER_JWT_KEY", "pub-key")],
    );
    assert!(
        !server.banner[0].contains("DEVELOPMENT"),
        "{:?}",
        server.banner
    );
    let (_, head) = server.subscribe("topic=t", "");
    assert!(head.starts_with("HTTP/1.1 401"), "not anonymous: {head}");
    let sub =
        herald_hub::dev::hs256_token("sub-key", serde_json::json!({"subscribe": ["*"]}), None)
            .expect("token");
    let (mut socket, head) =
        server.subscribe("topic=t", &format!("Authorization: Bearer {sub}\r\n"));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let publisher =
        herald_hub::dev::hs256_token("pub-key", serde_json::json!({"publish": ["t"]}), None)
            .expect("token");
    let published = publish(&[
        "--hub",
        &server.hub,
        "--token",
        &publisher,
        "--topic",
        "t",
        "--private",
        "--id",
        "p1",
    ]);
    assert!(published.status.success(), "{published:?}");
    read_until(&mut socket, head, "id: p1\ndata: \n\n");
    let wrong = publish(&["--hub", &server.hub, "--token", &sub, "--topic", "t"]);
    assert!(
        !wrong.status.success(),
        "the subscriber key does not sign publishers"
    );
}

#[cfg(unix)]
#[test]
fn sigterm_ends_streams_and_exits_cleanly() {
    let server = Server::start(&[], &[]);
    let (mut socket, head) = server.subscribe("topic=t", "");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut child = server.process.into_child();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    // The chunked stream ends with its terminating chunk, then the server exits.
    read_until(&mut socket, head, "0\r\n\r\n");
    let (exited, exit) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let status = child.wait().expect("wait");
        let _ = exited.send(status);
    });
    let status = exit
        .recv_timeout(Duration::from_secs(5))
        .expect("herald serve exits after SIGTERM");
    assert!(status.success(), "{status:?}");
}
