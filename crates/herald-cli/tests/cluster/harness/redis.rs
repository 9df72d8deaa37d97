//! The Redis a test runs against.
//!
//! - [`SharedRedis`]: the machine's Redis (`HERALD_TEST_REDIS_URL`), under a fresh key prefix
//!   whose keys are deleted when the test ends. It is never flushed, stopped or reconfigured.
//! - [`PrivateRedis`]: a `redis-server` of the test's own, on a free port with its own data
//!   directory and no persistence, for tests that stop, pause or restart Redis; it is stopped by
//!   its PID.
//!
//! Without `HERALD_TEST_REDIS_URL` (or `redis-server` on the PATH) a test is skipped with a
//! printed reason, except under `CI=true`, where it fails. A Redis that is named but does not
//! answer always fails.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{PATIENCE, end, have, kill_left, random, signal, skip_or_fail, wait_for};

/// A connection for the test's own commands.
fn connect(url: &str) -> redis::RedisResult<redis::Connection> {
    let client = redis::Client::open(url)?;
    let connection = client.get_connection_with_timeout(Duration::from_secs(5))?;
    connection.set_read_timeout(Some(Duration::from_secs(10)))?;
    Ok(connection)
}

/// A key prefix no other test uses.
fn fresh_prefix() -> String {
    format!("herald-test-{:016x}", random())
}

/// The entries of a stream, oldest first: each one's offset and the update ID it holds.
pub(crate) fn stream_ids(connection: &mut redis::Connection, key: &str) -> Vec<(u64, String)> {
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query(connection)
        .expect("XRANGE");
    reply
        .ids
        .iter()
        .map(|entry| {
            let offset = entry
                .id
                .split_once('-')
                .and_then(|(ms, _)| ms.parse().ok())
                .expect("entry IDs are <offset>-0");
            let data: Vec<u8> = entry.get("d").expect("an entry holds d");
            let stored: serde_json::Value = serde_json::from_slice(&data).expect("JSON entry");
            let id = stored["id"].as_str().expect("an update ID").to_owned();
            (offset, id)
        })
        .collect()
}

/// Kills the connections of the nodes' readers (those blocked in `XREAD`); how many.
pub(crate) fn kill_readers(connection: &mut redis::Connection) -> usize {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(connection)
        .expect("CLIENT LIST");
    let readers: Vec<&str> = list
        .lines()
        .filter(|line| line.contains(" cmd=xread "))
        .filter_map(|line| line.split_whitespace().find_map(|f| f.strip_prefix("id=")))
        .collect();
    for id in &readers {
        let _: redis::RedisResult<u64> = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(*id)
            .query(connection);
    }
    readers.len()
}

/// The machine's Redis under a fresh key prefix.
pub(crate) struct SharedRedis {
    pub(crate) url: String,
    pub(crate) prefix: String,
}

impl SharedRedis {
    /// `HERALD_TEST_REDIS_URL`'s Redis, or `None` (the test is skipped) when it is not set
    /// outside CI.
    pub(crate) fn get() -> Option<SharedRedis> {
        let url = match std::env::var("HERALD_TEST_REDIS_URL") {
            Ok(url) if !url.is_empty() => url,
            _ => {
                skip_or_fail("HERALD_TEST_REDIS_URL is not set (e.g. redis://127.0.0.1:6379)");
                return None;
            }
        };
        let mut connection = connect(&url)
            .unwrap_or_else(|e| panic!("HERALD_TEST_REDIS_URL={url}: Redis is unreachable: {e}"));
        let pong: String = redis::cmd("PING")
            .query(&mut connection)
            .unwrap_or_else(|e| panic!("HERALD_TEST_REDIS_URL={url}: PING failed: {e}"));
        assert_eq!(pong, "PONG");
        Some(SharedRedis {
            url,
            prefix: fresh_prefix(),
        })
    }

    /// A connection for the test's own commands.
    pub(crate) fn connection(&self) -> redis::Connection {
        connect(&self.url).expect("Redis answers")
    }
}

impl Drop for SharedRedis {
    /// Deletes the test's keys (`{prefix}:*`), and nothing else.
    fn drop(&mut self) {
        let Ok(mut connection) = connect(&self.url) else {
            return;
        };
        let pattern = format!("{{{}}}:*", self.prefix);
        let mut cursor = 0u64;
        loop {
            let Ok((next, keys)): redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query(&mut connection)
            else {
                return;
            };
            if !keys.is_empty() {
                let _: redis::RedisResult<u64> =
                    redis::cmd("DEL").arg(&keys).query(&mut connection);
            }
            if next == 0 {
                return;
            }
            cursor = next;
        }
    }
}

/// A port nothing listens on now.
pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A `redis-server` of the test's own, stopped (by PID) when dropped.
pub(crate) struct PrivateRedis {
    pub(crate) port: u16,
    pub(crate) prefix: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl PrivateRedis {
    /// A private Redis on a free port, not started yet.
    pub(crate) fn reserve() -> Option<PrivateRedis> {
        if !have("redis-server") {
            skip_or_fail("redis-server is not on the PATH (apt-get install redis-server)");
            return None;
        }
        Some(PrivateRedis {
            port: free_port(),
            prefix: fresh_prefix(),
            dir: tempfile::tempdir().expect("temp dir"),
            child: None,
        })
    }

    /// `redis://127.0.0.1:<port>`.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The server's PID.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Starts `redis-server` (empty: nothing is saved) on the port, and waits until it answers.
    pub(crate) fn launch(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let url = self.url();
        wait_for(
            &format!("redis-server on port {}", self.port),
            PATIENCE,
            || {
                if let Some(status) = self
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten())
                {
                    panic!("redis-server on port {} exited: {status}", self.port);
                }
                let mut connection = connect(&url).ok()?;
                redis::cmd("PING").query::<String>(&mut connection).ok()
            },
        );
    }

    /// Stops the server with SIGTERM (SIGKILL if it lingers) and reaps it: its data is gone.
    pub(crate) fn stop(&mut self) {
        let Some(child) = self.child.take() else {
            return;
        };
        end(child, "TERM");
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing is answered.
    pub(crate) fn pause(&self) {
        signal(self.pid(), "STOP");
    }

    /// Thaws the server (SIGCONT).
    pub(crate) fn resume(&self) {
        signal(self.pid(), "CONT");
    }

    /// A connection for the test's own commands.
    pub(crate) fn connection(&self) -> redis::Connection {
        connect(&self.url()).expect("the private Redis answers")
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        kill_left(self.child.take());
    }
}
