//! `herald admin` against a real `herald serve`: help with examples, clear errors (no token, a
//! token without the admin claim, a URL that is not a hub), and the answers of the control API.

use std::process::Output;

mod support;

use support::{herald, spawn_serve};

const KEY: &str = "admin-test-key";

fn sign(claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(KEY.as_bytes()),
    )
    .expect("token")
}

fn admin(args: &[&str]) -> Output {
    herald()
        .arg("admin")
        .args(args)
        .output()
        .expect("herald admin runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn admin_help_shows_both_actions_with_examples() {
    let top = admin(&["--help"]);
    assert!(top.status.success());
    let top = text(&top.stdout);
    assert!(
        top.contains("disconnect") && top.contains("revoke"),
        "{top}"
    );
    for action in ["disconnect", "revoke"] {
        let help = admin(&[action, "--help"]);
        assert!(help.status.success());
        let help = text(&help.stdout);
        assert!(
            help.contains("Examples") && help.contains(&format!("herald admin {action}")),
            "{help}"
        );
    }
    // No criterion: clap says which are wanted.
    let none = admin(&["disconnect", "--token", "t"]);
    assert_eq!(none.status.code(), Some(2));
    assert!(
        text(&none.stderr).contains("--sub"),
        "{}",
        text(&none.stderr)
    );
    let both = admin(&["revoke", "--jti", "a", "--sub", "b"]);
    assert_eq!(both.status.code(), Some(2));
}

#[test]
fn admin_disconnects_and_revokes_with_clear_errors() {
    let mut running = spawn_serve(
        herald().args(["serve", "--addr", "127.0.0.1:0", "--jwt-key", KEY]),
        1,
    );
    running.drain_stderr();
    let hub = running.urls[0].clone();
    let admin_token = sign(&serde_json::json!({
        "mercure": {"publish": ["*"]}, "herald": {"admin": true}
    }));
    let publisher = sign(&serde_json::json!({"mercure": {"publish": ["*"]}}));

    let no_token = admin(&["disconnect", "--hub", &hub, "--sub", "alice"]);
    assert_eq!(no_token.status.code(), Some(1));
    assert!(
        text(&no_token.stderr).contains("no token"),
        "{}",
        text(&no_token.stderr)
    );

    let refused = admin(&[
        "disconnect",
        "--hub",
        &hub,
        "--token",
        &publisher,
        "--sub",
        "alice",
    ]);
    assert_eq!(refused.status.code(), Some(1));
    let said = text(&refused.stderr);
    assert!(said.contains("403") && said.contains("herald"), "{said}");

    let elsewhere = hub.replace("/.well-known/mercure", "/nothing-here");
    let lost = admin(&[
        "disconnect",
        "--hub",
        &elsewhere,
        "--token",
        &admin_token,
        "--sub",
        "a",
    ]);
    assert_eq!(lost.status.code(), Some(1));
    assert!(
        text(&lost.stderr).contains("no control API"),
        "{}",
        text(&lost.stderr)
    );

    let done = admin(&[
        "disconnect",
        "--hub",
        &hub,
        "--token",
        &admin_token,
        "--sub",
        "alice",
    ]);
    assert!(done.status.success(), "{}", text(&done.stderr));
    assert_eq!(text(&done.stdout).trim(), "0 streams ended");

    let revoked = admin(&[
        "revoke",
        "--hub",
        &hub,
        "--token",
        &admin_token,
        "--jti",
        "abc",
        "--exp",
        "1h",
        "--json",
    ]);
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&revoked.stdout).expect("JSON");
    assert_eq!(answer["action"], "revoke");
    assert_eq!(answer["revocation"]["jti"], "abc");
    let until = answer["revocation"]["until"].as_u64().expect("until");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    assert!(
        (now + 3500..=now + 3700).contains(&until),
        "{until} vs {now}"
    );

    let bad_exp = admin(&[
        "revoke",
        "--hub",
        &hub,
        "--token",
        &admin_token,
        "--jti",
        "a",
        "--exp",
        "soon",
    ]);
    assert_eq!(bad_exp.status.code(), Some(1));
    assert!(
        text(&bad_exp.stderr).contains("--exp"),
        "{}",
        text(&bad_exp.stderr)
    );
}
