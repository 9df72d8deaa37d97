//! The NATS JetStream a test runs against, as [`super::redis`] does for Redis.
//!
//! - [`SharedNats`]: the machine's NATS (`HERALD_TEST_NATS_URL`), under a fresh prefix whose
//!   streams and bucket are deleted when the test ends. Nothing else on it is touched.
//! - [`PrivateNats`]: a `nats-server -js` of the test's own, on a free port with its own store
//!   directory, for tests that stop, pause or restart NATS; [`NatsCluster`]: three of them
//!   routed as one JetStream cluster. Each is stopped by its PID.
//!
//! Without `HERALD_TEST_NATS_URL` (or `nats-server` on the PATH) a test is skipped with a
//! printed reason, except under `CI=true`, where it fails. A NATS that is named but does not
//! answer always fails.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt as _;

use super::redis::free_port;
use super::{PATIENCE, end, have, kill_left, random, signal, skip_or_fail, wait_for};

/// Runs `future` to its end on a runtime of its own (the tests are plain threads).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(future)
}

/// A JetStream context on `url`, or why not (within a few seconds).
async fn connect(url: &str) -> Result<jetstream::Context, String> {
    let client = tokio::time::timeout(
        Duration::from_secs(5),
        async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(2))
            .connect(url),
    )
    .await
    .map_err(|_| "no connection within 5 s".to_owned())?
    .map_err(|e| e.to_string())?;
    let mut js = jetstream::new(client);
    js.set_timeout(Duration::from_secs(5));
    Ok(js)
}

/// Whether JetStream answers requests (a cluster's servers must elect a leader first).
async fn jetstream_ready(js: &jetstream::Context) -> Result<(), String> {
    let reply = js
        .client()
        .request("$JS.API.INFO", "".into())
        .await
        .map_err(|e| e.to_string())?;
    let info: serde_json::Value =
        serde_json::from_slice(&reply.payload).map_err(|e| e.to_string())?;
    match info.get("error") {
        Some(error) => Err(error.to_string()),
        None => Ok(()),
    }
}

/// A prefix no other test uses.
fn fresh_prefix() -> String {
    format!("herald-test-{:016x}", random())
}

/// The entries of the updates stream of `prefix`, oldest first: each one's offset and the
/// update ID it holds.
fn log_of(url: &str, prefix: &str) -> Vec<(u64, String)> {
    block_on(async {
        let js = connect(url).await.expect("NATS answers");
        let mut stream = js
            .get_stream(format!("{prefix}-updates"))
            .await
            .expect("the updates stream");
        let state = stream.info().await.expect("stream info").state.clone();
        let mut entries = Vec::new();
        if state.messages == 0 {
            return entries;
        }
        for sequence in state.first_sequence..=state.last_sequence {
            let Ok(message) = stream.get_raw_message(sequence).await else {
                continue; // Trimmed meanwhile.
            };
            let stored: serde_json::Value =
                serde_json::from_slice(&message.payload).expect("JSON entry");
            let id = stored["id"].as_str().expect("an update ID").to_owned();
            entries.push((sequence, id));
        }
        entries
    })
}

/// Deletes every consumer of the prefix's streams (the nodes' readers among them): how many.
fn delete_consumers(url: &str, prefix: &str) -> usize {
    block_on(async {
        let js = connect(url).await.expect("NATS answers");
        let mut deleted = 0;
        for channel in ["updates", "events", "control"] {
            let Ok(stream) = js.get_stream(format!("{prefix}-{channel}")).await else {
                continue;
            };
            let names: Vec<String> = stream
                .consumer_names()
                .filter_map(|n| async move { n.ok() })
                .collect()
                .await;
            for name in names {
                if stream.delete_consumer(&name).await.is_ok() {
                    deleted += 1;
                }
            }
        }
        deleted
    })
}

/// Deletes the prefix's streams and bucket.
fn delete_all(url: &str, prefix: &str) {
    block_on(async {
        let Ok(js) = connect(url).await else {
            return;
        };
        for channel in ["updates", "events", "control"] {
            let _ = js.delete_stream(format!("{prefix}-{channel}")).await;
        }
        let _ = js.delete_stream(format!("KV_{prefix}-nodes")).await;
    });
}

/// The machine's NATS under a fresh prefix.
pub(crate) struct SharedNats {
    pub(crate) url: String,
    pub(crate) prefix: String,
}

impl SharedNats {
    /// `HERALD_TEST_NATS_URL`'s NATS, or `None` (the test is skipped) when it is not set
    /// outside CI.
    pub(crate) fn get() -> Option<SharedNats> {
        let url = match std::env::var("HERALD_TEST_NATS_URL") {
            Ok(url) if !url.is_empty() => url,
            _ => {
                skip_or_fail("HERALD_TEST_NATS_URL is not set (e.g. nats://127.0.0.1:4222)");
                return None;
            }
        };
        block_on(async {
            let js = connect(&url)
                .await
                .unwrap_or_else(|e| panic!("HERALD_TEST_NATS_URL={url}: NATS is unreachable: {e}"));
            jetstream_ready(&js)
                .await
                .unwrap_or_else(|e| panic!("HERALD_TEST_NATS_URL={url}: no JetStream there: {e}"));
        });
        Some(SharedNats {
            url,
            prefix: fresh_prefix(),
        })
    }

    /// The updates stream's entries: offsets and update IDs, oldest first.
    pub(crate) fn log(&self) -> Vec<(u64, String)> {
        log_of(&self.url, &self.prefix)
    }
}

impl Drop for SharedNats {
    /// Deletes the test's streams and bucket, and nothing else.
    fn drop(&mut self) {
        delete_all(&self.url, &self.prefix);
    }
}

/// A `nats-server -js` of the test's own, stopped (by PID) when dropped.
pub(crate) struct PrivateNats {
    pub(crate) port: u16,
    pub(crate) prefix: String,
    name: String,
    /// The cluster's routes: this server's port for them, and every server's.
    routes: Option<(u16, Vec<u16>)>,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl PrivateNats {
    /// A private NATS on a free port, not started yet.
    pub(crate) fn reserve() -> Option<PrivateNats> {
        if !have("nats-server") {
            skip_or_fail("nats-server is not on the PATH (apt-get install nats-server)");
            return None;
        }
        Some(PrivateNats {
            port: free_port(),
            prefix: fresh_prefix(),
            name: "n1".to_owned(),
            routes: None,
            dir: tempfile::tempdir().expect("temp dir"),
            child: None,
        })
    }

    /// `nats://127.0.0.1:<port>`.
    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server's PID.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Starts `nats-server` with JetStream on the port and its store directory (kept from a
    /// previous run, unless [`PrivateNats::stop`] wiped it); waits until it listens.
    pub(crate) fn launch(&mut self) {
        assert!(self.child.is_none(), "already running");
        let mut command = Command::new("nats-server");
        command
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-n", &self.name])
            .arg("-sd")
            .arg(self.dir.path());
        if let Some((own, all)) = &self.routes {
            let routes: Vec<String> = all
                .iter()
                .map(|p| format!("nats://127.0.0.1:{p}"))
                .collect();
            command
                .args(["--cluster_name", "herald-test"])
                .args(["--cluster", &format!("nats://127.0.0.1:{own}")])
                .args(["--routes", &routes.join(",")]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let port = self.port;
        wait_for(&format!("nats-server on port {port}"), PATIENCE, || {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("nats-server on port {port} exited: {status}");
            }
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
    }

    /// Waits until JetStream answers requests (a cluster's servers must elect a leader first).
    pub(crate) fn wait_jetstream(&self) {
        let url = self.url();
        wait_for(&format!("JetStream on {url}"), PATIENCE, || {
            block_on(async {
                let js = connect(&url).await.ok()?;
                jetstream_ready(&js).await.ok()
            })
        });
    }

    /// Stops the server with SIGTERM (SIGKILL if it lingers), reaps it, and wipes its store:
    /// its data is gone.
    pub(crate) fn stop(&mut self) {
        self.halt("TERM");
        let _ = std::fs::remove_dir_all(self.dir.path());
        let _ = std::fs::create_dir_all(self.dir.path());
    }

    /// Stops the server with `signal` (TERM: it closes its store; KILL: at once), keeping its
    /// store for [`PrivateNats::launch`].
    pub(crate) fn halt(&mut self, how: &str) {
        let Some(child) = self.child.take() else {
            return;
        };
        end(child, how);
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing is answered.
    pub(crate) fn pause(&self) {
        signal(self.pid(), "STOP");
    }

    /// Thaws the server (SIGCONT).
    pub(crate) fn resume(&self) {
        signal(self.pid(), "CONT");
    }

    /// The updates stream's entries: offsets and update IDs, oldest first.
    pub(crate) fn log(&self) -> Vec<(u64, String)> {
        log_of(&self.url(), &self.prefix)
    }

    /// Deletes the consumers of the prefix's streams: the nodes' readers must create theirs
    /// again, from where they were. How many were deleted.
    pub(crate) fn delete_consumers(&self) -> usize {
        delete_consumers(&self.url(), &self.prefix)
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        kill_left(self.child.take());
    }
}

/// Three private `nats-server -js` routed as one JetStream cluster.
pub(crate) struct NatsCluster {
    pub(crate) servers: Vec<PrivateNats>,
    pub(crate) prefix: String,
}

impl NatsCluster {
    /// Three servers, running, with a JetStream leader; `None` as [`PrivateNats::reserve`].
    pub(crate) fn start() -> Option<NatsCluster> {
        let mut servers = Vec::new();
        for n in 1..=3 {
            let mut server = PrivateNats::reserve()?;
            server.name = format!("n{n}");
            servers.push(server);
        }
        let routes: Vec<u16> = servers.iter().map(|_| free_port()).collect();
        for (server, own) in servers.iter_mut().zip(&routes) {
            server.routes = Some((*own, routes.clone()));
        }
        for server in &mut servers {
            server.launch();
        }
        for server in &servers {
            server.wait_jetstream();
        }
        Some(NatsCluster {
            prefix: fresh_prefix(),
            servers,
        })
    }

    /// Every server's URL, comma-separated (what `--transport` takes).
    pub(crate) fn url(&self) -> String {
        self.servers
            .iter()
            .map(PrivateNats::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The updates stream's entries, as a server that is up reads them.
    pub(crate) fn log(&self) -> Vec<(u64, String)> {
        let up = self
            .servers
            .iter()
            .find(|s| s.child.is_some())
            .expect("a server is up");
        log_of(&up.url(), &self.prefix)
    }

    /// The name of the server that leads the updates stream.
    pub(crate) fn leader(&self) -> String {
        let up = self
            .servers
            .iter()
            .find(|s| s.child.is_some())
            .expect("a server is up");
        let (name, _) = wait_for("the updates stream's leader", PATIENCE, || {
            block_on(async {
                let js = connect(&up.url()).await.ok()?;
                let mut stream = js
                    .get_stream(format!("{}-updates", self.prefix))
                    .await
                    .ok()?;
                let info = stream.info().await.ok()?;
                info.cluster.as_ref()?.leader.clone()
            })
        });
        name
    }

    /// The server named `name`.
    pub(crate) fn server(&mut self, name: &str) -> &mut PrivateNats {
        self.servers
            .iter_mut()
            .find(|s| s.name == name)
            .expect("a server of the cluster")
    }
}
