//! Running the real `herald` binary in tests: a command that ignores the caller's Herald and
//! Mercure variables, and `herald serve` children that are killed when dropped.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStderr, Command, Stdio};

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
    };
    while process.urls.len() < listeners {
        let line = lines.next().expect("a line").expect("utf-8");
        let url = line
            .strip_prefix("herald: hub listening on ")
            .or_else(|| line.strip_prefix("hub:"));
        if let Some(url) = url {
            process.urls.push(url.trim().to_owned());
        }
        process.banner.push(line);
    }
    process.stderr = Some(lines);
    process
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
