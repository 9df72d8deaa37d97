//! `deploy/`: the systemd unit passes `systemd-analyze verify` with no warning, and the command
//! line it runs, with the example configuration, is one `herald serve` accepts.

use std::path::{Path, PathBuf};
use std::process::Command;

mod support;

use support::herald;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

#[test]
#[allow(clippy::print_stderr)] // says why it skips
fn the_systemd_unit_verifies_cleanly() {
    let Ok(version) = Command::new("systemd-analyze").arg("--version").output() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "systemd-analyze is missing (apt-get install systemd): under CI the unit is checked"
        );
        eprintln!("skipped: systemd-analyze is not installed (apt-get install systemd)");
        return;
    };
    assert!(version.status.success());
    let unit = std::fs::read_to_string(deploy().join("herald.service")).expect("the unit");
    // verify checks that the command exists: point it at the binary under test.
    let unit = unit.replace("/usr/local/bin/herald", env!("CARGO_BIN_EXE_herald"));
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("herald.service");
    std::fs::write(&path, unit).expect("write");
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{said}");
    // Unknown keys and bad values are only warnings: any output is a failure.
    assert!(said.trim().is_empty(), "{said}");
}

#[test]
fn the_units_command_line_and_example_configuration_are_accepted() {
    let unit = std::fs::read_to_string(deploy().join("herald.service")).expect("the unit");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart=/usr/local/bin/herald "))
        .expect("ExecStart");
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("jwt-key"), "secret\n").expect("write");
    let state = dir.path().join("state");
    let config = deploy().join("herald.toml");
    let args: Vec<String> = exec
        .split_whitespace()
        .map(|arg| {
            arg.replace(
                "${CREDENTIALS_DIRECTORY}",
                &dir.path().display().to_string(),
            )
            .replace("${STATE_DIRECTORY}", &state.display().to_string())
            .replace("/etc/herald/herald.toml", &config.display().to_string())
        })
        .collect();
    let output = herald()
        .args(&args)
        .arg("--print-config")
        .output()
        .expect("herald runs");
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("metrics-addr = \"127.0.0.1:9090\""), "{text}");
    assert!(text.contains("public-metrics = false"), "{text}");
    assert!(
        !text.contains("development"),
        "the key file is read: {text}"
    );
}
