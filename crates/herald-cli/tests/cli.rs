//! The `herald` command line as a newcomer meets it: the commands in the order of their
//! importance, examples in every command's help, and `herald publish` reading its data from a
//! file or standard input.

use std::io::Write;
use std::process::Stdio;

mod support;

use support::{herald, spawn_serve};

fn help(args: &[&str]) -> String {
    let output = herald()
        .args(args)
        .arg("--help")
        .output()
        .expect("herald runs");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).expect("utf-8")
}

#[test]
fn serve_is_listed_first_and_every_command_shows_examples() {
    let top = help(&[]);
    let commands: Vec<&str> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter(|l| !l.starts_with("   ")) // a wrapped description
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        commands[..5],
        ["serve", "publish", "listen", "decode", "bench"],
        "{top}"
    );
    for command in ["serve", "publish", "listen", "decode", "bench"] {
        let text = help(&[command]);
        assert!(
            text.contains("Example") && text.contains(&format!("herald {command}")),
            "{command}:\n{text}"
        );
    }
}

fn publish(hub: &str, token: &str, data: &str, stdin: &str) -> std::process::Output {
    let mut child = herald()
        .args([
            "publish", "--hub", hub, "--token", token, "--topic", "t", "--data", data,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("herald publish runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("stdin written");
    child.wait_with_output().expect("exits")
}

#[test]
fn publish_reads_its_data_from_a_file_or_standard_input() {
    use std::io::Read;

    let running = spawn_serve(
        herald().args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--jwt-key",
            "k",
            "--anonymous",
        ]),
        1,
    );
    let token = herald_hub::dev::hs256_token("k", serde_json::json!({"publish": ["*"]}), None)
        .expect("token");
    let hub = &running.urls[0];
    let mut stream = std::net::TcpStream::connect(running.authority()).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET /.well-known/mercure?topic=t HTTP/1.1\r\nHost: localhost\r\n\r\n"
    )
    .expect("write");
    // The subscription is live once its head has arrived.
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    while !received.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).expect("read");
        assert!(n > 0, "stream ended");
        received.extend_from_slice(&buf[..n]);
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("update.txt");
    std::fs::write(&file, "from a file\nsecond line").expect("write");
    let from_file = publish(hub, &token, &format!("@{}", file.display()), "");
    assert!(from_file.status.success(), "{from_file:?}");
    let from_stdin = publish(hub, &token, "-", "from stdin");
    assert!(from_stdin.status.success(), "{from_stdin:?}");
    let missing = publish(hub, &token, "@/no/such/file", "");
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("/no/such/file"),
        "{missing:?}"
    );

    let wanted: [&[u8]; 2] = [b"data: second line\n", b"data: from stdin\n"];
    while !wanted
        .iter()
        .all(|w| received.windows(w.len()).any(|window| window == *w))
    {
        let n = stream.read(&mut buf).expect("read");
        assert!(
            n > 0,
            "stream ended: {}",
            String::from_utf8_lossy(&received)
        );
        received.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&received);
    assert!(
        text.contains("data: from a file\ndata: second line\n"),
        "{text}"
    );
    assert!(
        !text.contains("data: @"),
        "the file's name is not the data: {text}"
    );
}
