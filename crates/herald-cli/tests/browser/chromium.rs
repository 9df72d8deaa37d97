//! Debian's headless Chromium driven through Debian's chromedriver (WebDriver, with fantoccini),
//! both started by the test on an ephemeral loopback port and killed when dropped.
//!
//! Without Chromium the tests skip with a message, except under `CI` where they fail: CI
//! installs `chromium` and `chromium-driver` (see `.ci/run`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tokio::sync::{Mutex, MutexGuard};

/// The longest a page may take to reach an expected state (a bound, not a speed test).
pub(crate) const PAGE_DEADLINE: Duration = Duration::from_secs(30);

/// One browser at a time: the machine has two cores, and Chromium is heavy.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// The flags every test browser runs with (no network but loopback, no first-run chores).
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--window-size=1280,1100",
];

/// A headless Chromium session; the browser and its driver die with it.
pub(crate) struct Browser {
    pub(crate) client: Client,
    _driver: Driver,
    _profile: tempfile::TempDir,
    _turn: MutexGuard<'static, ()>,
}

/// chromedriver, in a process group of its own: dropping it kills the group, Chromium
/// included, even when the test fails before a session exists.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn find(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Starts Chromium with the common flags and `extra` ones; `None` (after saying why) when
/// Chromium is not installed and this is not CI.
pub(crate) async fn launch(test: &str, extra: &[&str]) -> Option<Browser> {
    let chromium = find("HERALD_CHROMIUM", &["chromium", "chromium-browser"]);
    let driver = find("HERALD_CHROMEDRIVER", &["chromedriver"]);
    let (Some(chromium), Some(driver)) = (chromium, driver) else {
        assert!(
            !in_ci(),
            "{test}: chromium and chromedriver are required under CI (apt-get install chromium chromium-driver)"
        );
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "SKIPPED {test}: no chromium/chromedriver found (apt-get install chromium chromium-driver, or set HERALD_CHROMIUM and HERALD_CHROMEDRIVER)"
            );
        }
        return None;
    };
    let turn = ONE_AT_A_TIME.lock().await;
    let profile = tempfile::tempdir().expect("a profile directory");
    let (driver, port) = start_driver(&driver);
    let mut args: Vec<String> = FLAGS.iter().map(|f| (*f).to_owned()).collect();
    args.push(format!("--user-data-dir={}", profile.path().display()));
    args.extend(extra.iter().map(|f| (*f).to_owned()));
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": chromium, "args": args },
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!("an object")
    };
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a Chromium session");
    Some(Browser {
        client,
        _driver: driver,
        _profile: profile,
        _turn: turn,
    })
}

/// Runs chromedriver in a process group of its own (so that Chromium dies with it) on a port
/// it picks, and returns it with that port.
fn start_driver(path: &Path) -> (Driver, u16) {
    use std::os::unix::process::CommandExt as _;
    let mut driver = Driver(
        Command::new(path)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver runs"),
    );
    let mut lines = BufReader::new(driver.0.stdout.take().expect("stdout")).lines();
    let port = loop {
        let line = lines
            .next()
            .expect("chromedriver says which port it listens on")
            .expect("utf-8");
        if let Some(rest) = line.split("started successfully on port ").nth(1) {
            break rest
                .trim_end_matches('.')
                .trim()
                .parse()
                .expect("a port number");
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (driver, port)
}

impl Browser {
    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub(crate) async fn run(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Evaluates `expression` in the page until it is truthy, and returns its value.
    pub(crate) async fn until(&self, expression: &str) -> Value {
        let deadline = Instant::now() + PAGE_DEADLINE;
        let script = format!("return ({expression});");
        loop {
            let value = self.run(&script, Vec::new()).await;
            let truthy = !matches!(&value, Value::Null | Value::Bool(false))
                && value != json!(0)
                && value != json!("");
            if truthy {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "the page never satisfied `{expression}` (last value {value})"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Ends the session cleanly; dropping the browser kills whatever is left.
    pub(crate) async fn quit(self) {
        let client = self.client.clone();
        let _ = client.close().await;
    }
}
