//! `herald listen` end to end: the real binary against a tiny local HTTP server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How the server answers one connection: these bytes, then either a hang-up or holding on.
struct Reply {
    bytes: Vec<u8>,
    hold: bool,
}

fn sse(body: &str, hold: bool) -> Reply {
    Reply {
        bytes: format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n{body}"
        )
        .into_bytes(),
        hold,
    }
}

fn answer(status: &str, content_type: &str) -> Reply {
    Reply {
        bytes: format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .into_bytes(),
        hold: false,
    }
}

/// A request head (lower-cased header names) and body, as received.
struct Received {
    head: String,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

/// Serves connection `i` with `replies[i]` on a thread; requests come out of the receiver.
fn server(replies: Vec<Reply>) -> (SocketAddr, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for reply in replies {
            let Ok((socket, _)) = listener.accept() else {
                return;
            };
            let tx = tx.clone();
            thread::spawn(move || serve(socket, reply, &tx));
        }
    });
    (addr, rx)
}

fn serve(mut socket: TcpStream, reply: Reply, requests: &mpsc::Sender<Received>) {
    let mut reader = BufReader::new(socket.try_clone().expect("clone"));
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let mut received = Received {
        head,
        body: Vec::new(),
    };
    let length: usize = received
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    received.body = vec![0; length];
    reader.read_exact(&mut received.body).expect("body");
    let _ = requests.send(received);
    let _ = socket.write_all(&reply.bytes);
    if reply.hold {
        let mut sink = [0u8; 256];
        while socket.read(&mut sink).unwrap_or(0) > 0 {}
    }
}

fn listen(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("listen")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("herald runs")
}

/// Waits for the child to exit, killing it if it takes longer than a few seconds.
fn finish(mut child: Child) -> Output {
    let deadline = Instant::now() + Duration::from_secs(8);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            child.kill().expect("kill");
            panic!("herald listen did not exit: {:?}", child.wait_with_output());
        }
        thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

const STREAM: &str = "retry: 50\nevent: greeting\nid: 1\ndata: hello\ndata: \"world\" \u{e9}\n\n: keep-alive\ndata: second\n\nid\ndata: third\n\n";

#[test]
fn json_lines_are_exactly_what_decode_writes_and_204_exits_0() {
    let (addr, requests) = server(vec![
        sse(STREAM, false),
        answer("204 No Content", "text/plain"),
    ]);
    let output = finish(listen(&["--json", &format!("http://{addr}/events")]));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("204"),
        "{}",
        text(&output.stderr)
    );

    let mut decode = Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("decode")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("herald decode runs");
    decode
        .stdin
        .take()
        .expect("stdin")
        .write_all(STREAM.as_bytes())
        .expect("written");
    let decoded = text(&decode.wait_with_output().expect("decode exits").stdout);
    let mut decoded: Vec<&str> = decoded.lines().collect();
    decoded.pop(); // the final state line is decode's alone
    assert_eq!(text(&output.stdout).lines().collect::<Vec<_>>(), decoded);
    assert_eq!(decoded.len(), 3);

    let first = requests
        .recv_timeout(Duration::from_secs(5))
        .expect("request");
    assert!(
        first.head.starts_with("GET /events HTTP/1.1"),
        "{}",
        first.head
    );
    assert_eq!(first.header("accept").as_deref(), Some("text/event-stream"));
    // The last ID was reset by the empty `id`, so the reconnection sends none.
    let second = requests
        .recv_timeout(Duration::from_secs(5))
        .expect("request");
    assert_eq!(second.header("last-event-id"), None);
}

#[test]
fn readable_output_and_reconnection_with_the_last_event_id() {
    let (addr, requests) = server(vec![
        sse("retry: 50\nid: 5\nevent: tick\ndata: a\ndata: b\n\n", false),
        sse("data: c\n\n", true),
    ]);
    let output = finish(listen(&["--max-events", "2", &format!("http://{addr}/")]));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout),
        "tick id=5\na\nb\n\nmessage id=5\nc\n\n"
    );
    let stderr = text(&output.stderr);
    assert!(stderr.contains("open"), "{stderr}");
    assert!(stderr.contains("reconnecting"), "{stderr}");
    requests
        .recv_timeout(Duration::from_secs(5))
        .expect("first request");
    let again = requests
        .recv_timeout(Duration::from_secs(5))
        .expect("second request");
    assert_eq!(again.header("last-event-id").as_deref(), Some("5"));
}

#[test]
fn a_wrong_content_type_exits_1() {
    let (addr, _requests) = server(vec![answer("200 OK", "text/html")]);
    let output = finish(listen(&[&format!("http://{addr}/")]));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("text/html"),
        "{}",
        text(&output.stderr)
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn a_failed_status_exits_1() {
    let (addr, _requests) = server(vec![answer("500 Internal Server Error", "text/plain")]);
    let output = finish(listen(&[&format!("http://{addr}/")]));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("500"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn max_events_exits_0_and_filters_headers_and_post_apply() {
    let (addr, requests) = server(vec![sse(
        "event: a\ndata: 1\n\nevent: skip\ndata: 2\n\nevent: b\ndata: 3\n\nevent: a\ndata: 4\n\n",
        true,
    )]);
    let output = finish(listen(&[
        "--json",
        "--event",
        "a",
        "--event",
        "b",
        "--max-events",
        "2",
        "-H",
        "Authorization: Bearer t0ken",
        "-H",
        "Content-Type: application/json",
        "--last-event-id",
        "41",
        "--data",
        r#"{"stream":true}"#,
        &format!("http://{addr}/v1"),
    ]));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout),
        "{\"type\":\"a\",\"data\":\"1\",\"id\":\"41\"}\n{\"type\":\"b\",\"data\":\"3\",\"id\":\"41\"}\n"
    );
    let request = requests
        .recv_timeout(Duration::from_secs(5))
        .expect("request");
    assert!(request.head.starts_with("POST /v1 "), "{}", request.head);
    assert_eq!(
        request.header("authorization").as_deref(),
        Some("Bearer t0ken")
    );
    assert_eq!(
        request.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(request.header("last-event-id").as_deref(), Some("41"));
    assert_eq!(request.body, br#"{"stream":true}"#);
}

#[test]
fn ctrl_c_exits_130() {
    let (addr, _requests) = server(vec![sse("data: x\n\n", true)]);
    let mut child = listen(&[&format!("http://{addr}/")]);
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("first line");
    assert_eq!(line, "message\n");
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let output = finish(child);
    assert_eq!(output.status.code(), Some(130));
    assert!(
        text(&output.stderr).contains("interrupted"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn a_bad_header_is_a_usage_error() {
    let output = finish(listen(&["-H", "no colon", "http://127.0.0.1:9/"]));
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("no colon"));
}

#[test]
fn max_events_zero_is_a_usage_error() {
    let output = finish(listen(&["--max-events", "0", "http://127.0.0.1:9/"]));
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("--max-events"));
    assert!(output.stdout.is_empty());
}

#[test]
fn a_non_ascii_last_event_id_is_sent_back_as_utf_8() {
    let (addr, requests) = server(vec![
        sse("retry: 20\nid: caf\u{e9} \u{2026}\ndata: a\n\n", false),
        sse("data: b\n\n", true),
    ]);
    let output = finish(listen(&[
        "--json",
        "--max-events",
        "2",
        &format!("http://{addr}/"),
    ]));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    requests
        .recv_timeout(Duration::from_secs(5))
        .expect("first request");
    let again = requests
        .recv_timeout(Duration::from_secs(5))
        .expect("second request");
    assert_eq!(
        again.header("last-event-id").as_deref(),
        Some("caf\u{e9} \u{2026}")
    );
}

#[test]
fn a_zero_or_negative_timeout_is_a_usage_error() {
    for (flag, value) in [("--idle-timeout", "0"), ("--connect-timeout", "-1")] {
        let output = finish(listen(&[&format!("{flag}={value}"), "http://127.0.0.1:9/"]));
        assert_eq!(output.status.code(), Some(2), "{flag} {value}");
        assert!(
            text(&output.stderr).contains(flag),
            "{}",
            text(&output.stderr)
        );
    }
}

#[test]
fn timeouts_take_the_duration_forms_serve_takes_and_bare_seconds() {
    // The first stream goes silent; the idle timeout ends it and the reconnection gets the
    // second event. Both spellings must work the same.
    for value in ["300ms", "0.3"] {
        let (addr, requests) = server(vec![
            sse("retry: 20\ndata: a\n\n", true),
            sse("data: b\n\n", true),
        ]);
        let output = finish(listen(&[
            "--idle-timeout",
            value,
            "--connect-timeout",
            "5s",
            "--max-events",
            "2",
            &format!("http://{addr}/"),
        ]));
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{value}: {stderr}");
        assert_eq!(
            text(&output.stdout),
            "message\na\n\nmessage\nb\n\n",
            "{value}"
        );
        assert!(stderr.contains("closed after 2 events"), "{stderr}");
        for _ in 0..2 {
            requests
                .recv_timeout(Duration::from_secs(5))
                .expect("a request");
        }
    }
}

#[test]
fn a_connection_that_never_opened_is_not_called_lost_and_one_event_is_singular() {
    // Nothing listens on the first port: the attempt fails before any response.
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let refused = closed.local_addr().expect("address");
    drop(closed);
    let mut child = listen(&["--max-events", "1", &format!("http://{refused}/")]);
    let lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.iter().any(|l: &String| l.contains("cannot connect")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    child.kill().expect("kill");
    let _ = child.wait();
    assert!(
        seen.iter().any(|l| l.contains("cannot connect")),
        "{seen:?}"
    );
    assert!(
        !seen.iter().any(|l| l.contains("connection lost")),
        "{seen:?}"
    );

    let (addr, _requests) = server(vec![sse("data: one\n\n", true)]);
    let output = finish(listen(&["--max-events", "1", &format!("http://{addr}/")]));
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("closed after 1 event\n"), "{stderr}");
}
