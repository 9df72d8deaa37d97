//! `herald serve --data-dir`: `kill -9` in the middle of 10,000 publishes loses no answered
//! update, and resuming from any of them gets exactly the rest; SIGTERM then restart lets a
//! subscriber resume without a gap.
#![cfg(unix)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use herald_codec::{Decoder, Frame};

const KEY: &str = "durable-test-key";
const WRITERS: usize = 16;
const PER_WRITER: usize = 625;

mod support;

use support::{ServeProcess, herald, spawn_serve};

fn start(dir: &std::path::Path) -> ServeProcess {
    let mut hub = spawn_serve(
        herald()
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(["--jwt-key", KEY, "--anonymous"])
            .args(["--history-size", "20000", "--publish-rate", "0"])
            .arg("--data-dir")
            .arg(dir),
        1,
    );
    hub.drain_stderr();
    hub
}

fn token() -> String {
    herald_hub::dev::hs256_token(KEY, serde_json::json!({"publish": ["*"]}), None).expect("token")
}

/// Publishes on a kept-alive connection; `Err` once the hub is gone.
fn publish(socket: &mut BufReader<TcpStream>, token: &str, id: &str) -> std::io::Result<()> {
    let body = format!("topic=t&id={id}&data=payload+{id}");
    // One write per request: no small segments waiting on delayed acknowledgements.
    let request = format!(
        "POST /.well-known/mercure HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    socket.get_mut().write_all(request.as_bytes())?;
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") {
        if socket.read_line(&mut head)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    let head = head.to_ascii_lowercase();
    if !head.starts_with("http/1.1 200") {
        return Err(std::io::Error::other(head));
    }
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| std::io::Error::other("no content-length"))?;
    let mut answer = vec![0; length];
    socket.read_exact(&mut answer)?;
    Ok(())
}

/// Subscribes (HTTP/1.0, so the body is the raw stream), publishes a marker, and returns every
/// event ID before it.
fn ids_until_marker(hub: &ServeProcess, resume: &str, marker: &str) -> Vec<String> {
    let mut socket = TcpStream::connect(hub.authority()).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(
        socket,
        "GET /.well-known/mercure?topic=t HTTP/1.0\r\nHost: localhost\r\nLast-Event-ID: {resume}\r\n\r\n"
    )
    .expect("request");
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let body_start = loop {
        let n = socket.read(&mut buf).expect("read");
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&raw));
        raw.extend_from_slice(&buf[..n]);
        if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    assert!(
        raw.starts_with(b"HTTP/1.0 200"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    let mut publisher = BufReader::new(TcpStream::connect(hub.authority()).expect("connect"));
    publish(&mut publisher, &token(), marker).expect("marker");
    let mut decoder = Decoder::new();
    decoder.push(bytes::Bytes::copy_from_slice(&raw[body_start..]));
    let mut ids = Vec::new();
    loop {
        while let Some(frame) = decoder.next_frame().expect("valid stream") {
            if let Frame::Event(event) = frame {
                if event.last_event_id() == marker {
                    return ids;
                }
                ids.push(event.last_event_id().to_owned());
            }
        }
        let n = socket.read(&mut buf).expect("read");
        assert!(n > 0, "stream closed before the marker");
        decoder.push(bytes::Bytes::copy_from_slice(&buf[..n]));
    }
}

fn pseudo_random(below: usize) -> usize {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(7, |d| d.subsec_nanos());
    usize::try_from(nanos).unwrap_or(7) % below
}

/// A directory for the store: on tmpfs when there is one, so that each commit's `fsync` (which
/// the hub still calls) costs little; a process kill is what is tested, not a power cut.
fn data_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().expect("temp dir")
}

#[test]
fn kill_9_mid_stream_loses_no_answered_update() {
    let dir = data_dir();
    let mut hub = start(dir.path());
    let token = token();
    let (answered, receipts) = mpsc::channel::<(usize, usize)>();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let authority = hub.authority().to_owned();
            let token = token.clone();
            let answered = answered.clone();
            std::thread::spawn(move || {
                let Ok(socket) = TcpStream::connect(&authority) else {
                    return;
                };
                let _ = socket.set_read_timeout(Some(Duration::from_secs(5)));
                let mut socket = BufReader::new(socket);
                for n in 0..PER_WRITER {
                    if publish(&mut socket, &token, &format!("w{w}-{n:05}")).is_err() {
                        return;
                    }
                    let _ = answered.send((w, n));
                }
            })
        })
        .collect();
    drop(answered);
    let kill_at = 1_000 + pseudo_random(WRITERS * PER_WRITER - 2_000);
    let mut confirmed = [0usize; WRITERS];
    let mut count = 0;
    while count < kill_at {
        let (w, n) = receipts
            .recv_timeout(Duration::from_secs(10))
            .expect("publishes are answered");
        assert_eq!(n, confirmed[w], "answers come in order");
        confirmed[w] = n + 1;
        count += 1;
    }
    hub.child().kill().expect("kill -9");
    hub.child().wait().expect("wait");
    for writer in writers {
        writer.join().expect("writer");
    }
    // Answers that arrived before the kill took effect count too.
    for (w, n) in receipts.try_iter() {
        confirmed[w] = confirmed[w].max(n + 1);
    }
    let total: usize = confirmed.iter().sum();
    assert!(
        total < WRITERS * PER_WRITER,
        "killed mid-stream ({total} answered)"
    );

    let hub = start(dir.path());
    let history = ids_until_marker(&hub, "earliest", "marker-all");
    let mut seen = [0usize; WRITERS];
    for id in &history {
        let (w, n) = id[1..].split_once('-').expect("writer-n");
        let (w, n): (usize, usize) = (w.parse().expect("w"), n.parse().expect("n"));
        assert_eq!(
            n, seen[w],
            "writer {w}'s updates are stored in order, once each"
        );
        seen[w] += 1;
    }
    for w in 0..WRITERS {
        assert!(
            seen[w] >= confirmed[w] && seen[w] <= confirmed[w] + 1,
            "writer {w}: {} answered, {} stored",
            confirmed[w],
            seen[w]
        );
    }
    for (round, pick) in [0, history.len() / 2, history.len() - 2]
        .into_iter()
        .enumerate()
    {
        let rest = ids_until_marker(&hub, &history[pick], &format!("marker-{round}"));
        let mut expected = history[pick + 1..].to_vec();
        expected.extend((0..round).map(|r| format!("marker-{r}")));
        expected.insert(expected.len() - round, "marker-all".to_owned());
        assert_eq!(rest.len(), expected.len(), "resume from {}", history[pick]);
        assert_eq!(rest, expected, "resume from {}", history[pick]);
    }
}

#[test]
fn sigterm_then_restart_resumes_without_losing_an_update() {
    let dir = data_dir();
    let mut hub = start(dir.path());
    let token = token();
    let mut socket = TcpStream::connect(hub.authority()).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    socket
        .write_all(b"GET /.well-known/mercure?topic=t HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .expect("request");
    let mut publisher = BufReader::new(TcpStream::connect(hub.authority()).expect("connect"));
    // The subscription is registered once its response head arrived.
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    while !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut buf).expect("read");
        assert!(n > 0);
        raw.extend_from_slice(&buf[..n]);
    }
    for id in ["a1", "a2"] {
        publish(&mut publisher, &token, id).expect("publish");
    }
    let status = Command::new("kill")
        .args(["-TERM", &hub.child().id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    // The stream ends cleanly (end of body) after what was published.
    socket.read_to_end(&mut raw).expect("the stream ends");
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.contains("id: a1\n") && text.contains("id: a2\n"),
        "{text}"
    );
    let exited = hub.child().wait().expect("wait");
    assert!(exited.success(), "{exited:?}");

    let hub = start(dir.path());
    let mut publisher = BufReader::new(TcpStream::connect(hub.authority()).expect("connect"));
    for id in ["b1", "b2"] {
        publish(&mut publisher, &token, id).expect("publish");
    }
    // The browser reconnects with the last ID it saw.
    assert_eq!(ids_until_marker(&hub, "a2", "m1"), ["b1", "b2"]);
    assert_eq!(ids_until_marker(&hub, "a1", "m2"), ["a2", "b1", "b2", "m1"]);
}
