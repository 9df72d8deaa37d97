//! `herald serve`'s debug page switch: on in development mode (with the development tokens,
//! since the hub is on loopback), off in production unless `--ui` (then without tokens), and
//! `HERALD_UI=false` turns it off in development mode.

use std::io::{Read, Write};
use std::net::TcpStream;

mod support;

use support::{ServeProcess, herald, spawn_serve};

fn start(args: &[&str], env: &[(&str, &str)]) -> ServeProcess {
    let mut process = spawn_serve(
        herald()
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied()),
        1,
    );
    process.drain_stderr();
    process
}

/// The body of `GET path`.
fn get(process: &ServeProcess, path: &str) -> String {
    let mut stream = TcpStream::connect(process.authority()).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("a read timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        process.authority()
    )
    .expect("request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{path}: {answer}");
    answer.split_once("\r\n\r\n").expect("a body").1.to_owned()
}

fn is_page(body: &str) -> bool {
    body.contains("<title>Herald hub · debug page</title>")
}

#[test]
fn development_mode_serves_the_page_with_its_tokens() {
    let process = start(&[], &[]);
    assert!(is_page(&get(&process, "/")));
    let config: serde_json::Value =
        serde_json::from_str(&get(&process, "/ui/config.json")).expect("json");
    let banner = process.banner.join("\n");
    assert!(banner.contains("DEVELOPMENT MODE"), "{banner}");
    let token = config["publisherToken"]
        .as_str()
        .expect("a publisher token");
    assert!(token.len() > 40, "{token}");
    assert!(config["subscriberToken"].is_string(), "{config}");
}

#[test]
fn development_mode_page_can_be_turned_off() {
    let process = start(&[], &[("HERALD_UI", "false")]);
    assert!(!is_page(&get(&process, "/")));
}

#[test]
fn production_serves_the_page_only_with_ui_and_without_tokens() {
    let key = ["--jwt-key", "a-production-key-for-the-ui-switch-test"];
    let off = start(&key, &[]);
    let body = get(&off, "/");
    assert!(
        !is_page(&body) && body.contains("This is a Mercure hub"),
        "{body}"
    );

    let on = start(&[key[0], key[1], "--ui"], &[]);
    assert!(is_page(&get(&on, "/")));
    let config: serde_json::Value =
        serde_json::from_str(&get(&on, "/ui/config.json")).expect("json");
    assert_eq!(config["publisherToken"], serde_json::Value::Null);
    assert_eq!(config["subscriberToken"], serde_json::Value::Null);
}
