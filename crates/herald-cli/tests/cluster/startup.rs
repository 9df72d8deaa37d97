//! Start-up: a shared transport beside a data directory, one of an unknown kind, or a NATS one
//! with settings it cannot use, is a clear error before the node serves anything (and never
//! echoes the URL's credentials).

use std::process::{ExitStatus, Stdio};
use std::time::Instant;

use crate::harness::PATIENCE;
use crate::harness::http::KEY;
use crate::support::herald;

/// Runs `herald serve` with `args` until it exits (killed, and the test failed, if it serves
/// instead); its status and stderr.
fn refused_start(args: &[&str]) -> (ExitStatus, String) {
    let mut child = herald()
        .args(["serve", "--addr", "127.0.0.1:0", "--jwt-key", KEY])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("herald serve runs");
    let mut stderr = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > PATIENCE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("herald serve {args:?} did not refuse to start");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    (status, reader.join().expect("stderr"))
}

#[test]
fn a_shared_transport_with_a_data_directory_is_a_start_up_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_str().expect("utf-8 path");
    let (status, stderr) =
        refused_start(&["--transport", "redis://127.0.0.1:6379", "--data-dir", path]);
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("cannot be used together")
            && stderr.contains("--data-dir")
            && stderr.contains("--transport"),
        "{stderr}"
    );
    assert!(
        std::fs::read_dir(dir.path()).expect("dir").next().is_none(),
        "nothing written to the data directory"
    );
}

#[test]
fn an_unknown_or_malformed_transport_is_a_start_up_error_that_names_it() {
    let (status, stderr) = refused_start(&["--transport", "kafka://user:hunter2@127.0.0.1:9092"]);
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("unknown transport"), "{stderr}");
    assert!(
        stderr.contains("kafka://"),
        "names what it was given: {stderr}"
    );
    assert!(
        !stderr.contains("hunter2"),
        "never echoes a password: {stderr}"
    );

    let (status, stderr) = refused_start(&["--transport", "127.0.0.1:6379"]);
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("unknown transport"), "{stderr}");

    let (status, stderr) = refused_start(&["--transport", "redis://127.0.0.1:notaport"]);
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("Redis URL"), "{stderr}");

    let (status, stderr) = refused_start(&[
        "--transport",
        "nats://127.0.0.1:4222,nats://user:hunter2@127.0.0.1:notaport",
    ]);
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("NATS URL"), "{stderr}");
    assert!(
        !stderr.contains("hunter2"),
        "never echoes a password: {stderr}"
    );
}

#[test]
fn a_nats_transport_refuses_a_prefix_that_cannot_name_a_stream_or_bad_replicas() {
    let (status, stderr) = refused_start(&[
        "--transport",
        "nats://127.0.0.1:4222",
        "--transport-prefix",
        "my.hub",
    ]);
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("my.hub") && stderr.contains("letters, digits"),
        "{stderr}"
    );

    let (status, stderr) = refused_start(&[
        "--transport",
        "nats://127.0.0.1:4222",
        "--nats-replicas",
        "7",
    ]);
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("--nats-replicas"), "{stderr}");

    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("nope.creds");
    let (status, stderr) = refused_start(&[
        "--transport",
        "nats://127.0.0.1:4222",
        "--nats-credentials",
        missing.to_str().expect("utf-8 path"),
    ]);
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("nope.creds"), "{stderr}");
}
