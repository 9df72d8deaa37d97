//! `herald bench` against a real `herald serve`: small runs must see every update once, in
//! order, and report sane figures; a run whose publishes are refused must report the loss; bad
//! arguments get a clear error.

use std::process::Output;

use serde_json::Value;

mod support;

use support::{ServeProcess, herald, spawn_serve};

/// A development-mode hub without publish-rate or connection bounds, and its publisher token.
fn hub() -> (ServeProcess, String) {
    hub_with(&[])
}

/// The same, with more arguments for `herald serve`.
fn hub_with(extra: &[&str]) -> (ServeProcess, String) {
    let mut process = spawn_serve(
        herald()
            .args([
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--publish-rate",
                "0",
                "--max-connections",
                "0",
            ])
            .args(extra),
        1,
    );
    let token = process
        .stderr()
        .take(4)
        .map(|line| line.expect("utf-8"))
        .find_map(|line| {
            line.strip_prefix("publisher token:")
                .map(|t| t.trim().to_owned())
        })
        .expect("the development banner prints a publisher token");
    process.drain_stderr();
    (process, token)
}

fn bench(args: &[&str]) -> Output {
    herald()
        .arg("bench")
        .args(args)
        .output()
        .expect("herald bench runs")
}

fn report(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout.lines().count(),
        1,
        "one JSON line: {stdout} / {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).expect("the report is JSON")
}

fn number(report: &Value, path: &str) -> f64 {
    report
        .pointer(path)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{path} in {report}"))
}

#[test]
fn fanout_delivers_every_update_once_and_reports_sane_figures() {
    let (mut hub, token) = hub();
    let pid = hub.child().id().to_string();
    let url = hub.urls[0].clone();
    let output = bench(&[
        "fanout",
        "--hub",
        &url,
        "--subscribers",
        "20",
        "--messages",
        "50",
        "--rate",
        "500",
        "--payload-bytes",
        "100",
        "--token",
        &token,
        "--hub-pid",
        &pid,
        "--json",
    ]);
    assert!(output.status.success(), "{output:?}");
    let report = report(&output);
    assert_eq!(report["bench"], "fanout");
    assert_eq!(number(&report, "/subscribers_connected"), 20.0);
    assert_eq!(number(&report, "/publish_accepted"), 50.0);
    assert_eq!(number(&report, "/deliveries_expected"), 1000.0);
    assert_eq!(number(&report, "/deliveries_received"), 1000.0);
    for zero in [
        "/lost",
        "/duplicates",
        "/out_of_order",
        "/foreign",
        "/publish_failed",
    ] {
        assert_eq!(number(&report, zero), 0.0, "{zero} in {report}");
    }
    let (p50, p99, max) = (
        number(&report, "/latency/p50_us"),
        number(&report, "/latency/p99_us"),
        number(&report, "/latency/max_us"),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{report}");
    assert!(max < 10e6, "latency under 10 s: {report}");
    let rate = number(&report, "/rate_achieved");
    assert!(rate > 0.0 && rate < 600.0, "about 500/s asked: {report}");
    assert!(number(&report, "/deliveries_per_second") > 0.0, "{report}");
    let before = number(&report, "/hub/rss_before_bytes");
    assert!(before > 1e6, "a hub takes more than 1 MB: {report}");
    assert!(number(&report, "/hub/rss_idle_bytes") >= before, "{report}");
    assert!(number(&report, "/hub/cpu_seconds") >= 0.0, "{report}");
    assert!(number(&report, "/generator_cpu_seconds") >= 0.0, "{report}");
}

#[test]
fn fanout_spreads_subscribers_and_updates_over_topics() {
    let (hub, token) = hub();
    let output = bench(&[
        "fanout",
        "--hub",
        &hub.urls[0],
        "--subscribers",
        "20",
        "--topics",
        "3",
        "--messages",
        "50",
        "--rate",
        "1000",
        "--token",
        &token,
        "--json",
    ]);
    assert!(output.status.success(), "{output:?}");
    let report = report(&output);
    // Topics get 17, 17 and 16 updates; 7, 7 and 6 subscribers.
    assert_eq!(number(&report, "/deliveries_expected"), 334.0, "{report}");
    assert_eq!(number(&report, "/deliveries_received"), 334.0, "{report}");
    assert_eq!(number(&report, "/lost"), 0.0, "{report}");
    assert!(
        report["hub"].is_null(),
        "no --hub-pid, no hub figures: {report}"
    );
}

#[test]
fn refused_publishes_show_as_loss_and_an_unclean_exit() {
    let (hub, _token) = hub();
    // No token: the hub refuses every publish, so nothing is delivered.
    let output = bench(&[
        "fanout",
        "--hub",
        &hub.urls[0],
        "--subscribers",
        "5",
        "--messages",
        "4",
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let report = report(&output);
    assert_eq!(number(&report, "/publish_failed"), 4.0, "{report}");
    assert_eq!(number(&report, "/lost"), 20.0, "{report}");
    let errors = report["errors"].to_string();
    assert!(errors.contains("401"), "the refusal is reported: {report}");
}

#[test]
fn a_url_that_is_not_an_event_stream_is_named_as_such() {
    let (hub, _token) = hub();
    let healthz = hub.urls[0].replace("/.well-known/mercure", "/healthz");
    let output = bench(&[
        "connections",
        "--hub",
        &healthz,
        "--subscribers",
        "2",
        "--json",
    ]);
    assert!(!output.status.success(), "{output:?}");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        all.contains("not text/event-stream"),
        "the wrong content type is named: {all}"
    );
    assert!(!all.contains("panicked"), "{all}");
}

#[test]
fn connections_reports_memory_per_idle_connection() {
    let (mut hub, _token) = hub();
    let pid = hub.child().id().to_string();
    let url = hub.urls[0].clone();
    let output = bench(&[
        "connections",
        "--hub",
        &url,
        "--subscribers",
        "200",
        "--hub-pid",
        &pid,
        "--json",
    ]);
    assert!(output.status.success(), "{output:?}");
    let report = report(&output);
    assert_eq!(report["bench"], "connections");
    assert_eq!(number(&report, "/subscribers_connected"), 200.0, "{report}");
    let per_connection = number(&report, "/hub/memory_per_connection_bytes");
    assert!(
        per_connection > 0.0 && per_connection < 1e6,
        "between 0 and 1 MB per connection: {report}"
    );
    // The table says the same for people.
    let table = bench(&["connections", "--hub", &url, "--subscribers", "10"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("10 connected of 10 asked"), "{table}");
}

#[test]
fn bad_arguments_get_a_clear_error() {
    let cases: [(&[&str], &str); 9] = [
        (
            &[
                "fanout",
                "--hub",
                "http://127.0.0.1:9/s",
                "--publish-style",
                "nchan",
            ],
            "--publish-style nchan needs --publish-url",
        ),
        (
            &["fanout", "--hub", "http://127.0.0.1:9/s", "--rate", "0"],
            "is not a rate from",
        ),
        (
            // Slow enough to overflow a clock if it were taken as asked.
            &["fanout", "--hub", "http://127.0.0.1:9/s", "--rate", "1e-20"],
            "is not a rate from",
        ),
        (
            &[
                "fanout",
                "--hub",
                "http://127.0.0.1:9/s",
                "--payload-bytes",
                "18446744073709551615",
            ],
            "is not a size from",
        ),
        (
            &[
                "fanout",
                "--hub",
                "http://127.0.0.1:9/s",
                "--messages",
                "1000000000",
            ],
            "--messages",
        ),
        (
            &[
                "fanout",
                "--hub",
                "http://127.0.0.1:9/s",
                "--publish-style",
                "raw-post",
                "--publish-url",
                "http://127.0.0.1:9/p",
                "--topics",
                "2",
            ],
            "--topics must be 1",
        ),
        (
            &["connections", "--hub", "ftp://127.0.0.1:9/s"],
            "must be an http:// or https:// URL",
        ),
        (
            &[
                "connections",
                "--hub",
                "https://127.0.0.1:9/s",
                "--insecure",
                "--cacert",
                "ca.pem",
            ],
            "cannot be used with",
        ),
        (
            &[
                "connections",
                "--hub",
                "http://127.0.0.1:9/s",
                "--subscribers",
                "4000000000",
            ],
            "RLIMIT_NOFILE",
        ),
    ];
    for (args, message) in cases {
        let output = bench(args);
        assert!(!output.status.success(), "{args:?} must fail");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn fanout_over_tls_with_http2_sessions_shared_by_streams_delivers_every_update_once() {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).expect("write");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write");
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let (mut hub, token) = hub_with(&["--tls-cert", &cert, "--tls-key", &key]);
    // The certificate names localhost: the hub is reached by that name, checked with --cacert.
    let url = hub.urls[0].replace("127.0.0.1", "localhost");
    assert!(url.starts_with("https://"), "{url}");
    let pid = hub.child().id().to_string();
    let output = bench(&[
        "fanout",
        "--hub",
        &url,
        "--cacert",
        &cert,
        "--subscribers",
        "12",
        "--streams-per-session",
        "5",
        "--messages",
        "30",
        "--rate",
        "500",
        "--token",
        &token,
        "--hub-pid",
        &pid,
        "--json",
    ]);
    assert!(output.status.success(), "{output:?}");
    let fanout = report(&output);
    assert_eq!(number(&fanout, "/subscribers_connected"), 12.0, "{fanout}");
    assert_eq!(number(&fanout, "/deliveries_received"), 360.0, "{fanout}");
    assert_eq!(number(&fanout, "/lost"), 0.0, "{fanout}");
    // HTTP/1.1 over TLS, and one HTTP/2 session per subscription, skipping the check.
    for http2 in [false, true] {
        let mut args = vec![
            "connections",
            "--hub",
            &url,
            "--insecure",
            "--subscribers",
            "10",
            "--hub-pid",
            &pid,
            "--json",
        ];
        if http2 {
            args.push("--http2");
        }
        let output = bench(&args);
        assert!(output.status.success(), "{output:?}");
        let report = report(&output);
        assert_eq!(number(&report, "/subscribers_connected"), 10.0, "{report}");
        assert!(
            number(&report, "/hub/memory_per_connection_bytes") >= 0.0,
            "{report}"
        );
    }
    // Without --insecure or --cacert, the self-signed certificate is refused, saying why.
    let output = bench(&["connections", "--hub", &url, "--subscribers", "1", "--json"]);
    assert!(!output.status.success(), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("TLS handshake"),
        "{output:?}"
    );
}

#[test]
fn connections_over_h2c_share_sessions_as_asked() {
    let (hub, _token) = hub();
    let output = bench(&[
        "connections",
        "--hub",
        &hub.urls[0],
        "--subscribers",
        "7",
        "--streams-per-session",
        "3",
        "--json",
    ]);
    assert!(output.status.success(), "{output:?}");
    let report = report(&output);
    assert_eq!(number(&report, "/subscribers_connected"), 7.0, "{report}");
    assert_eq!(number(&report, "/subscribe_failures"), 0.0, "{report}");
}
