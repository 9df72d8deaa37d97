//! `herald serve` configuration: flags, `HERALD_*` variables and `--config` TOML with the same
//! keys, `--print-config`, `--log-format json`, and the production flags reaching the running
//! hub (CORS, limits, metrics, readiness) on the real binary.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output};
use std::time::Duration;

mod support;

use support::{ServeProcess, herald, spawn_serve};

fn run(command: &mut Command) -> Output {
    command.output().expect("herald runs")
}

fn start(args: &[&str]) -> ServeProcess {
    spawn_serve(
        herald().args(["serve", "--addr", "127.0.0.1:0"]).args(args),
        1,
    )
}

/// One HTTP/1.1 request with `Connection: close`; returns the whole answer.
fn request(authority: &str, head: &str, body: &str) -> String {
    let mut socket = TcpStream::connect(authority).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(
        socket,
        "{head}\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut answer = String::new();
    socket.read_to_string(&mut answer).expect("read");
    answer
}

#[test]
fn print_config_merges_file_variables_and_flags_and_masks_secrets() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("herald.toml");
    std::fs::write(
        &file,
        "addr = \"127.0.0.1:9999\"\njwt-key = \"file-secret\"\nhistory-size = 5\n\
         heartbeat = \"5s\"\nmax-connections = 7\ncors-origin = [\"https://a.example\"]\n",
    )
    .expect("write");
    let output = run(herald()
        .args(["serve", "--print-config", "--config"])
        .arg(&file)
        .args(["--max-connections", "9"])
        .env("HERALD_HEARTBEAT", "7s")
        .env("HERALD_SUBSCRIBER_JWT_KEY", "env-secret"));
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).expect("utf-8");
    for line in [
        "addr = [\"127.0.0.1:9999\"]",
        "history-size = 5",
        "heartbeat = \"7s\"",
        "max-connections = 9",
        "jwt-key = \"********\"",
        "subscriber-jwt-key = \"********\"",
        "cors-origin = [\"https://a.example\"]",
        "publish-rate = 1000",
        "grace-period = \"10s\"",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} in\n{text}");
    }
    assert!(!text.contains("secret"), "secrets are masked:\n{text}");
    // What it prints is itself a valid configuration file.
    let again = dir.path().join("again.toml");
    std::fs::write(&again, text.replace("\"********\"", "\"k\"")).expect("write");
    let reread = run(herald()
        .args(["serve", "--print-config", "--config"])
        .arg(&again));
    assert!(reread.status.success(), "{reread:?}");
}

#[test]
fn bad_configurations_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("herald.toml");
    std::fs::write(&file, "history-sise = 5\n").expect("write");
    let unknown = run(herald().args(["serve", "--config"]).arg(&file));
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(stderr.contains("history-sise"), "{stderr}");

    let star = run(herald().args(["serve", "--addr", "127.0.0.1:0", "--cors-origin", "*"]));
    assert!(!star.status.success());
    let stderr = String::from_utf8_lossy(&star.stderr);
    assert!(
        stderr.contains("`*`") && stderr.contains("cors-credentials"),
        "{stderr}"
    );

    let duration = run(herald().args(["serve", "--heartbeat", "soon"]));
    assert!(!duration.status.success());
    assert!(String::from_utf8_lossy(&duration.stderr).contains("soon"));
}

#[test]
fn json_logs_are_one_object_per_line() {
    let mut running = start(&["--jwt-key", "k", "--log-format", "json"]);
    let line = running
        .stderr()
        .find_map(|line| line.ok().filter(|l| l.starts_with('{')))
        .expect("a JSON log line");
    let value: serde_json::Value = serde_json::from_str(&line).expect("JSON");
    assert_eq!(value["level"], "INFO", "{line}");
    assert_eq!(value["fields"]["message"], "hub started", "{line}");
}

#[test]
fn production_flags_reach_the_running_hub() {
    let running = start(&[
        "--jwt-key",
        "k",
        "--anonymous",
        "--cors-origin",
        "https://app.example",
        "--max-update-size",
        "64",
        "--max-url-size",
        "256",
    ]);
    let authority = running.authority();
    let cors = request(
        authority,
        "GET /healthz HTTP/1.1\r\nOrigin: https://app.example",
        "",
    );
    assert!(cors.starts_with("HTTP/1.1 200"), "{cors}");
    assert!(
        cors.to_ascii_lowercase()
            .contains("access-control-allow-origin: https://app.example")
    );
    let other = request(
        authority,
        "GET /healthz HTTP/1.1\r\nOrigin: https://evil.example",
        "",
    );
    assert!(
        !other.to_ascii_lowercase().contains("access-control-"),
        "{other}"
    );

    let token = herald_hub::dev::hs256_token("k", serde_json::json!({"publish": ["*"]}), None)
        .expect("token");
    let big = format!("topic=t&data={}", "x".repeat(100));
    let head = format!(
        "POST /.well-known/mercure HTTP/1.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/x-www-form-urlencoded"
    );
    let too_large = request(authority, &head, &big);
    assert!(too_large.starts_with("HTTP/1.1 413"), "{too_large}");
    let long = format!(
        "GET /.well-known/mercure?topic={} HTTP/1.1",
        "a".repeat(300)
    );
    assert!(request(authority, &long, "").starts_with("HTTP/1.1 414"));

    let ready = request(authority, "GET /readyz HTTP/1.1", "");
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    let metrics = request(authority, "GET /metrics HTTP/1.1", "");
    assert!(
        metrics.contains("herald_rejected_requests_total{reason=\"update_too_large\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("herald_rejected_requests_total{reason=\"url_too_long\"} 1"));
}
