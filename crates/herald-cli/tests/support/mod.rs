//! Running the real `herald` binary in tests: a command that ignores the caller's Herald and
//! Mercure variables, and `herald serve` children that are killed when dropped.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::io::{BufRead, BufReader, Lines, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The binary under test, without the caller's `HERALD_*`, `MERCURE_*` or `RUST_LOG` variables,
/// so that only what a test sets reaches it.
pub(crate) fn herald() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
    for (name, _) in std::env::vars() {
        if name.starts_with("HERALD_") || name.starts_with("MERCURE_") || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    command
}

/// A running `herald serve`, killed and reaped when dropped.
pub(crate) struct ServeProcess {
    child: Option<Child>,
    /// Every URL it said it listens on, in order (`hub:` in development mode).
    pub(crate) urls: Vec<String>,
    /// The stderr lines read up to the last of those URLs.
    pub(crate) banner: Vec<String>,
    stderr: Option<Lines<BufReader<ChildStderr>>>,
    /// The stderr lines still to come once [`ServeProcess::lines_until`] took the pipe.
    /// Behind a lock only so that a process can be shared between test threads.
    rest: Option<std::sync::Mutex<mpsc::Receiver<String>>>,
}

/// Spawns `command` (a `herald serve` invocation) and reads its stderr until it has announced
/// `listeners` addresses.
pub(crate) fn spawn_serve(command: &mut Command, listeners: usize) -> ServeProcess {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("herald serve runs");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut process = ServeProcess {
        child: Some(child),
        urls: Vec::new(),
        banner: Vec::new(),
        stderr: None,
        rest: None,
    };
    while process.urls.len() < listeners {
        let line = lines.next().expect("a line").expect("utf-8");
        let url = line
            .strip_prefix("herald: hub listening on ")
            .or_else(|| line.strip_prefix("hub:"));
        if let Some(url) = url {
            // A wildcard bind adds `(listening on 0.0.0.0:PORT: every interface)`.
            let url = url.split_whitespace().next().unwrap_or_default();
            process.urls.push(url.to_owned());
        }
        process.banner.push(line);
    }
    process.stderr = Some(lines);
    process
}

/// One HTTP/1.1 request with `Connection: close` (`head` is the request line and any headers);
/// returns the whole answer.
pub(crate) fn request(authority: &str, head: &str, body: &str) -> String {
    let mut socket = TcpStream::connect(authority).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
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

/// Sends a bodiless request and returns only the response head (for a stream that does not
/// end).
pub(crate) fn response_head(authority: &str, head: &str) -> String {
    let mut socket = TcpStream::connect(authority).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(socket, "{head}\r\nHost: localhost\r\n\r\n").expect("write");
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") {
        match socket.read(&mut byte) {
            Ok(1) => answer.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

impl ServeProcess {
    /// `host:port` of the first URL.
    pub(crate) fn authority(&self) -> &str {
        let url = &self.urls[0];
        let rest = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
        rest.split('/').next().expect("authority")
    }

    /// The stderr lines not read yet.
    pub(crate) fn stderr(&mut self) -> &mut Lines<BufReader<ChildStderr>> {
        self.stderr.as_mut().expect("stderr not drained")
    }

    /// Reads stderr lines (on a thread, so that a silent process cannot block the test) until
    /// one contains `needle` or `within` is over; returns the lines read.
    pub(crate) fn lines_until(&mut self, needle: &str, within: Duration) -> Vec<String> {
        let lines = self.stderr.take().expect("stderr not drained");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        self.rest = Some(std::sync::Mutex::new(rx));
        self.more_lines_until(needle, within)
    }

    /// The stderr lines that arrived after [`ServeProcess::lines_until`], waiting until one
    /// contains `needle` or `within` is over.
    pub(crate) fn more_lines_until(&mut self, needle: &str, within: Duration) -> Vec<String> {
        let rx = self
            .rest
            .as_mut()
            .expect("lines_until first")
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        while !seen.iter().any(|l: &String| l.contains(needle)) {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        seen
    }

    /// Takes the stderr lines not read yet, for the caller to read (and keep reading, so that
    /// the pipe never fills up).
    pub(crate) fn take_stderr(&mut self) -> Option<Lines<BufReader<ChildStderr>>> {
        self.stderr.take()
    }

    /// Reads the rest of stderr on a thread of its own, so that the pipe never fills up.
    pub(crate) fn drain_stderr(&mut self) {
        if let Some(lines) = self.stderr.take() {
            std::thread::spawn(move || for _ in lines {});
        }
    }

    /// The process.
    pub(crate) fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("running")
    }

    /// Takes the process over: it is no longer killed on drop.
    pub(crate) fn into_child(mut self) -> Child {
        self.child.take().expect("running")
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
