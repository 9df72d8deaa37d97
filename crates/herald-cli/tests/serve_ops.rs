//! `herald serve` as an operator runs it, on the real binary: refusals in the log (with their
//! reason, never the token), colours only on a terminal, the metrics listener, one-line start-up
//! errors, reachable addresses in the banner, and publishers' bursts.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output};
use std::time::Duration;

mod support;

use support::{ServeProcess, herald, request, spawn_serve};

fn run(command: &mut Command) -> Output {
    command.output().expect("herald runs")
}

fn start(args: &[&str]) -> ServeProcess {
    spawn_serve(
        herald().args(["serve", "--addr", "127.0.0.1:0"]).args(args),
        1,
    )
}

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn refusals_are_logged_with_their_reason_and_never_the_token() {
    let mut running = start(&["--jwt-key", "right-key"]);
    let forged = herald_hub::dev::hs256_token(
        "wrong-key",
        serde_json::json!({"subscribe": ["*"], "publish": ["*"]}),
        None,
    )
    .expect("token");
    let authority = running.authority().to_owned();
    let header = request(
        &authority,
        &format!("GET /.well-known/mercure?topic=t HTTP/1.1\r\nAuthorization: Bearer {forged}"),
        "",
    );
    assert!(header.starts_with("HTTP/1.1 401"), "{header}");
    let query = request(
        &authority,
        &format!("GET /.well-known/mercure?topic=t&authorization={forged} HTTP/1.1"),
        "",
    );
    assert!(query.starts_with("HTTP/1.1 401"), "{query}");
    let cookie = request(
        &authority,
        &format!(
            "POST /.well-known/mercure HTTP/1.1\r\nCookie: mercureAuthorization={forged}\r\n\
             Origin: http://localhost\r\nContent-Type: application/x-www-form-urlencoded"
        ),
        "topic=t&data=x",
    );
    assert!(cookie.starts_with("HTTP/1.1 40"), "{cookie}");

    let mut lines = running.lines_until("request refused", WAIT);
    while lines
        .iter()
        .filter(|l| l.contains("request refused"))
        .count()
        < 3
    {
        let more = running.more_lines_until("request refused", WAIT);
        assert!(!more.is_empty(), "three refusals logged: {lines:?}");
        lines.extend(more);
    }
    let refused: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("request refused"))
        .collect();
    for line in &refused {
        assert!(line.contains("INFO"), "{line}");
        assert!(line.contains("remote=127.0.0.1:"), "{line}");
        assert!(line.contains("path=/.well-known/mercure"), "{line}");
    }
    assert!(
        refused
            .iter()
            .any(|l| l.contains("signature does not match") && l.contains("method=GET")),
        "{refused:?}"
    );
    assert!(
        refused.iter().any(|l| l.contains("method=POST")),
        "{refused:?}"
    );
    let signature = forged.rsplit('.').next().expect("signature");
    for line in &lines {
        assert!(!line.contains(signature), "the token leaked: {line}");
        assert!(
            !line.contains('\u{1b}'),
            "no colours off a terminal: {line:?}"
        );
    }
}

#[test]
fn a_flood_of_refusals_is_summed_up_instead_of_flooding_the_log() {
    let mut running = start(&["--jwt-key", "k"]);
    let authority = running.authority().to_owned();
    let mut socket = TcpStream::connect(&authority).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    // Pipelined on one connection: as fast as the hub answers.
    let requests: String = (0..300)
        .map(|i| format!("GET /nothing-here-{i} HTTP/1.1\r\nHost: localhost\r\n\r\n"))
        .collect();
    socket.write_all(requests.as_bytes()).expect("write");
    let mut answers = String::new();
    let mut reader = BufReader::new(socket);
    while answers.matches("HTTP/1.1 404").count() < 300 {
        let mut line = String::new();
        if reader.read_line(&mut line).expect("read") == 0 {
            break;
        }
        answers.push_str(&line);
    }
    assert_eq!(answers.matches("HTTP/1.1 404").count(), 300);
    let lines = running.lines_until("more refused requests than the log takes", WAIT);
    let logged = lines
        .iter()
        .filter(|l| l.contains("request refused"))
        .count();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("WARN") && l.contains("more refused requests")),
        "{lines:?}"
    );
    assert!(logged < 300, "{logged} lines for 300 refusals");
}

#[test]
fn metrics_move_to_their_own_listener() {
    let mut running = start(&["--jwt-key", "k", "--metrics-addr", "127.0.0.1:0"]);
    let lines = running.lines_until("metrics on", WAIT);
    let line = lines
        .iter()
        .find(|l| l.contains("herald: metrics on http://"))
        .unwrap_or_else(|| panic!("{lines:?}"));
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("a URL");
    let metrics_authority = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .expect("authority")
        .to_owned();
    for path in ["/metrics", "/healthz", "/readyz"] {
        let private = request(&metrics_authority, &format!("GET {path} HTTP/1.1"), "");
        assert!(private.starts_with("HTTP/1.1 200"), "{path}: {private}");
        let public = request(running.authority(), &format!("GET {path} HTTP/1.1"), "");
        assert!(
            public.starts_with("HTTP/1.1 404"),
            "{path} off the public listener: {public}"
        );
    }
    let metrics = request(&metrics_authority, "GET /metrics HTTP/1.1", "");
    assert!(metrics.contains("herald_open_connections"), "{metrics}");
    let hub = request(
        &metrics_authority,
        "GET /.well-known/mercure?topic=t HTTP/1.1",
        "",
    );
    assert!(hub.starts_with("HTTP/1.1 404"), "only metrics there: {hub}");

    let both = start(&[
        "--jwt-key",
        "k",
        "--metrics-addr",
        "127.0.0.1:0",
        "--public-metrics",
    ]);
    let public = request(both.authority(), "GET /metrics HTTP/1.1", "");
    assert!(public.starts_with("HTTP/1.1 200"), "{public}");
}

/// `herald serve --addr 127.0.0.1:0 --jwt-key k ARGS...`, which must fail: its one line.
fn start_up_error(args: &[&std::ffi::OsStr]) -> String {
    let output = run(herald()
        .args(["serve", "--addr", "127.0.0.1:0", "--jwt-key", "k"])
        .args(args));
    assert!(!output.status.success(), "{args:?}");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

#[test]
fn start_up_errors_are_one_line_that_names_the_file_or_value() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").expect("write");
    let stderr = start_up_error(&["--data-dir".as_ref(), file.as_os_str()]);
    assert!(stderr.contains(&file.display().to_string()), "{stderr}");
    assert!(stderr.contains("not a directory"), "{stderr}");
    assert_eq!(stderr.matches("history store").count(), 1, "{stderr}");

    let stderr = start_up_error(&["--jwt-alg".as_ref(), "HS257".as_ref()]);
    assert_eq!(stderr.matches("HS257").count(), 1, "{stderr}");

    let one = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, one.cert.pem()).expect("write");
    std::fs::write(&key, other.signing_key.serialize_pem()).expect("write");
    let stderr = start_up_error(&[
        "--tls-cert".as_ref(),
        cert.as_os_str(),
        "--tls-key".as_ref(),
        key.as_os_str(),
    ]);
    assert!(stderr.contains(&key.display().to_string()), "{stderr}");
    assert!(
        stderr.contains("not the private key of the certificate"),
        "{stderr}"
    );
}

#[test]
fn a_wildcard_bind_is_announced_with_a_reachable_address() {
    let running = spawn_serve(
        herald().args(["serve", "--addr", "0.0.0.0:0", "--jwt-key", "k"]),
        1,
    );
    assert!(
        running.urls[0].starts_with("http://127.0.0.1:"),
        "{:?}",
        running.urls
    );
    let line = running
        .banner
        .iter()
        .find(|l| l.contains("hub listening on"))
        .expect("announced");
    assert!(line.contains("(listening on 0.0.0.0:"), "{line}");
    assert!(line.contains("every interface"), "{line}");
    let health = request(running.authority(), "GET /healthz HTTP/1.1", "");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
}

/// Publishes `count` updates one after another on one keep-alive connection; the statuses.
fn publish_burst(authority: &str, token: &str, count: usize) -> Vec<u16> {
    let socket = TcpStream::connect(authority).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    socket.set_nodelay(true).expect("nodelay");
    let mut writer = socket.try_clone().expect("clone");
    let mut reader = BufReader::new(socket);
    let body = "topic=https%3A%2F%2Fexample.com%2Fimport&data=row";
    (0..count)
        .map(|_| {
            // One write per request: several small ones would wait on delayed ACKs.
            let request = format!(
                "POST /.well-known/mercure HTTP/1.1\r\nHost: localhost\r\n\
                 Authorization: Bearer {token}\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            writer.write_all(request.as_bytes()).expect("write");
            let mut status = String::new();
            reader.read_line(&mut status).expect("status line");
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).expect("header");
                if line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().expect("length");
                }
            }
            let mut answer = vec![0; length];
            reader.read_exact(&mut answer).expect("body");
            status[9..12].parse().expect("status")
        })
        .collect()
}

#[test]
fn a_publishers_burst_is_not_refused_by_default_and_the_bound_still_works() {
    let token = herald_hub::dev::hs256_token("k", serde_json::json!({"publish": ["*"]}), None)
        .expect("token");
    let unbounded = start(&["--jwt-key", "k"]);
    let statuses = publish_burst(unbounded.authority(), &token, 2_000);
    let refused = statuses.iter().filter(|&&s| s != 200).count();
    assert_eq!(refused, 0, "{refused} of 2000 refused");

    let bounded = start(&["--jwt-key", "k", "--publish-rate", "20"]);
    let statuses = publish_burst(bounded.authority(), &token, 400);
    assert!(statuses.contains(&429), "the bound holds");
    assert!(
        statuses[..20].iter().all(|&s| s == 200),
        "a burst of 20 passes"
    );
}
