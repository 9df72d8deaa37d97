//! `herald serve` configuration: flags, `HERALD_*` variables and `--config` TOML with the same
//! keys, `--print-config`, `--log-format json`, and the production flags reaching the running
//! hub (CORS, limits, metrics, readiness) on the real binary.

use std::process::{Command, Output};

mod support;

use support::{ServeProcess, herald, request, response_head, spawn_serve};

fn run(command: &mut Command) -> Output {
    command.output().expect("herald runs")
}

fn start(args: &[&str]) -> ServeProcess {
    spawn_serve(
        herald().args(["serve", "--addr", "127.0.0.1:0"]).args(args),
        1,
    )
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
        "publish-rate = 0",
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

/// `herald serve --print-config` with these flags and variables; its stdout.
fn print_config(args: &[&str], env: &[(&str, &str)]) -> String {
    let output = run(herald()
        .args(["serve", "--print-config"])
        .args(args)
        .envs(env.iter().copied()));
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).expect("utf-8")
}

fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

#[test]
fn print_config_shows_what_development_mode_and_mercure_variables_put_in_force() {
    let development = print_config(&[], &[]);
    assert!(
        development.starts_with("# development mode"),
        "{development}"
    );
    for line in ["anonymous = true", "subscriptions = true", "ui = true"] {
        assert!(has_line(&development, line), "{line} in\n{development}");
    }
    assert!(
        development.contains("\"http://localhost:*\""),
        "{development}"
    );

    let explicit = print_config(
        &["--anonymous=false", "--subscriptions=false", "--ui=false"],
        &[],
    );
    for line in ["anonymous = false", "subscriptions = false", "ui = false"] {
        assert!(has_line(&explicit, line), "{line} in\n{explicit}");
    }

    let mercure = print_config(
        &[],
        &[
            ("MERCURE_PUBLISHER_JWT_KEY", "pub-secret"),
            ("MERCURE_SUBSCRIBER_JWT_KEY", "sub-secret"),
            ("MERCURE_SUBSCRIBER_JWT_ALG", "HS512"),
        ],
    );
    assert!(!mercure.contains("development"), "{mercure}");
    for line in [
        "publisher-jwt-key = \"********\"",
        "subscriber-jwt-key = \"********\"",
        "subscriber-jwt-alg = \"HS512\"",
        "anonymous = false",
        "ui = false",
    ] {
        assert!(has_line(&mercure, line), "{line} in\n{mercure}");
    }
    assert!(!mercure.contains("secret"), "{mercure}");
}

#[test]
fn development_mode_never_overrides_an_explicit_setting() {
    let running = start(&["--anonymous=false", "--subscriptions=false"]);
    let authority = running.authority();
    let anonymous = request(authority, "GET /.well-known/mercure?topic=t HTTP/1.1", "");
    assert!(anonymous.starts_with("HTTP/1.1 401"), "{anonymous}");
    let api = request(
        authority,
        "GET /.well-known/mercure/subscriptions HTTP/1.1",
        "",
    );
    assert!(api.starts_with("HTTP/1.1 404"), "{api}");
    // The banner says what is in force.
    assert!(
        running
            .banner
            .iter()
            .any(|l| l.contains("anonymous subscribers: off; subscriptions API: off")),
        "{:?}",
        running.banner
    );
}

#[test]
fn development_mode_lets_pages_on_loopback_origins_in_and_says_so() {
    let running = start(&[]);
    assert!(
        running
            .banner
            .iter()
            .any(|l| l.contains("CORS") && l.contains("http://localhost:*")),
        "{:?}",
        running.banner
    );
    let authority = running.authority();
    let preflight = request(
        authority,
        "OPTIONS /.well-known/mercure HTTP/1.1\r\nOrigin: http://localhost:3000\r\n\
         Access-Control-Request-Method: GET",
        "",
    );
    assert!(preflight.starts_with("HTTP/1.1 204"), "{preflight}");
    assert!(
        preflight
            .to_ascii_lowercase()
            .contains("access-control-allow-origin: http://localhost:3000"),
        "{preflight}"
    );
    let elsewhere = request(
        authority,
        "OPTIONS /.well-known/mercure HTTP/1.1\r\nOrigin: https://evil.example\r\n\
         Access-Control-Request-Method: GET",
        "",
    );
    assert!(elsewhere.starts_with("HTTP/1.1 403"), "{elsewhere}");
}

#[test]
fn a_typo_in_the_file_gets_one_line_with_the_closest_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("herald.toml");
    std::fs::write(&file, "jwt-key = \"k\"\nhistroy-size = 5\n").expect("write");
    let output = run(herald().args(["serve", "--config"]).arg(&file));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("unknown key `histroy-size`"), "{stderr}");
    assert!(stderr.contains("(line 2)"), "{stderr}");
    assert!(stderr.contains("did you mean `history-size`?"), "{stderr}");
    assert!(!stderr.contains("max-topics"), "not every key: {stderr}");
}

#[test]
fn mercure_server_name_and_extra_directives_are_honoured() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("address").port()
    };
    let running = spawn_serve(
        herald().args(["serve"]).envs([
            ("SERVER_NAME", format!("http://127.0.0.1:{port}")),
            ("MERCURE_PUBLISHER_JWT_KEY", "k".to_owned()),
            ("MERCURE_SUBSCRIBER_JWT_KEY", "k".to_owned()),
            (
                "MERCURE_EXTRA_DIRECTIVES",
                "anonymous\ncors_origins https://app.example\nsubscriptions".to_owned(),
            ),
        ]),
        1,
    );
    assert_eq!(running.authority(), format!("127.0.0.1:{port}"));
    let authority = running.authority();
    let anonymous = response_head(
        authority,
        "GET /.well-known/mercure?topic=t HTTP/1.1\r\nOrigin: https://app.example",
    );
    assert!(anonymous.starts_with("HTTP/1.1 200"), "{anonymous}");
    assert!(
        anonymous
            .to_ascii_lowercase()
            .contains("access-control-allow-origin: https://app.example"),
        "{anonymous}"
    );
    let api = request(
        authority,
        "GET /.well-known/mercure/subscriptions HTTP/1.1",
        "",
    );
    assert!(api.starts_with("HTTP/1.1 401"), "the API exists: {api}");
}

#[test]
fn a_mercure_directive_without_equivalent_stops_the_start_with_its_name() {
    for (name, value) in [
        ("MERCURE_EXTRA_DIRECTIVES", "anonymous\ndispatch_timeout 5s"),
        ("SERVER_NAME", "localhost"),
    ] {
        let output = run(herald()
            .args(["serve", "--addr", "127.0.0.1:0", "--jwt-key", "k"])
            .env(name, value));
        assert!(!output.status.success(), "{name}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        let named = if name == "SERVER_NAME" {
            "SERVER_NAME"
        } else {
            "dispatch_timeout"
        };
        assert!(stderr.contains(named), "{stderr}");
    }
}
