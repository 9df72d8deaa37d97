//! `herald decode` end to end: the real binary, real pipes.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn herald() -> Command {
    Command::new(env!("CARGO_BIN_EXE_herald"))
}

fn decode(input: &[u8], args: &[&str]) -> Output {
    let mut child = herald()
        .arg("decode")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("herald runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("input written");
    child.wait_with_output().expect("herald exits")
}

fn stdout_lines(output: &Output) -> Vec<String> {
    String::from_utf8(output.stdout.clone())
        .expect("utf-8 output")
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn events_then_final_state_as_json_lines() {
    let output = decode(
        b"\xEF\xBB\xBFevent: greeting\r\nid: 1\rdata: hello\ndata: \"world\"\n\nretry: 5000\ndata: a\xFFb\n\nid: 9\ndata: unfinished",
        &[],
    );
    assert!(output.status.success());
    assert_eq!(
        stdout_lines(&output),
        [
            r#"{"type":"greeting","data":"hello\n\"world\"","id":"1"}"#,
            r#"{"type":"message","data":"a�b","id":"1"}"#,
            r#"{"retry":5000,"last_event_id":"1"}"#,
        ]
    );
}

#[test]
fn retry_is_null_when_never_set() {
    let output = decode(b"data: x\n\n", &[]);
    assert_eq!(
        stdout_lines(&output),
        [
            r#"{"type":"message","data":"x","id":""}"#,
            r#"{"retry":null,"last_event_id":""}"#,
        ]
    );
}

#[test]
fn empty_input_gives_only_the_final_line() {
    let output = decode(b"", &[]);
    assert!(output.status.success());
    assert_eq!(
        stdout_lines(&output),
        [r#"{"retry":null,"last_event_id":""}"#]
    );
}

#[test]
fn comments_are_written_when_asked() {
    let output = decode(b": hi\ndata: x\n\n", &["--comments"]);
    assert_eq!(stdout_lines(&output)[0], r#"{"comment":"hi"}"#);
    let output = decode(b": hi\ndata: x\n\n", &[]);
    assert_eq!(stdout_lines(&output).len(), 2, "no comment line by default");
}

#[test]
fn event_over_a_limit_is_reported_and_the_rest_decoded() {
    let output = decode(
        b"data: 0123456789\n\ndata: ok\n\n",
        &["--max-line-len", "8"],
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("line longer than the limit of 8 bytes"),
        "{stderr}"
    );
    assert_eq!(
        stdout_lines(&output),
        [
            r#"{"type":"message","data":"ok","id":""}"#,
            r#"{"retry":null,"last_event_id":""}"#,
        ]
    );
}

#[test]
fn each_event_is_flushed_as_soon_as_it_is_dispatched() {
    let mut child = herald()
        .arg("decode")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("herald runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines_tx.send(line.expect("line")).is_err() {
                break;
            }
        }
    });
    for n in 0..3 {
        stdin
            .write_all(format!("id: {n}\ndata: live {n}\n\n").as_bytes())
            .expect("write");
        stdin.flush().expect("flush");
        let line = lines_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the event arrives while stdin is still open");
        assert_eq!(
            line,
            format!(r#"{{"type":"message","data":"live {n}","id":"{n}"}}"#)
        );
    }
    drop(stdin);
    let last = lines_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("final line");
    assert_eq!(last, r#"{"retry":null,"last_event_id":"2"}"#);
    assert!(child.wait().expect("exit").success());
}

#[test]
fn help_documents_the_output_format() {
    let output = herald().args(["decode", "--help"]).output().expect("runs");
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(
        help.contains(r#"{"type":"message","data":"...","id":"..."}"#),
        "{help}"
    );
    assert!(
        help.contains(r#"{"retry":3000,"last_event_id":"..."}"#),
        "{help}"
    );
}

#[test]
fn input_that_is_not_an_event_stream_gets_a_warning() {
    let page =
        b"<!DOCTYPE html>\n<html><head><title>Not found</title></head>\n<body>404</body></html>\n";
    let output = decode(page, &[]);
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("warning: no event was dispatched"),
        "{stderr}"
    );
    assert!(stderr.contains("3 lines"), "{stderr}");

    let random: Vec<u8> = (0u32..4096)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let output = decode(&random, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("is the input a text/event-stream?"),
        "{stderr}"
    );
}

#[test]
fn an_event_stream_without_events_or_with_odd_lines_is_not_warned_about() {
    // Comments, a retry and blank lines: nothing dispatched, but nothing foreign either.
    let quiet = decode(b": keep-alive\n\nretry: 100\n\n", &[]);
    assert!(quiet.stderr.is_empty(), "{quiet:?}");
    // A foreign field beside real events: the stream dispatched, so no warning.
    let mixed = decode(b"x-custom: 1\ndata: hi\n\n", &[]);
    assert!(mixed.stderr.is_empty(), "{mixed:?}");
    assert_eq!(stdout_lines(&mixed).len(), 2);
}
