//! `herald serve`'s keys on the real binary: PEM keys as separate arguments, key files and
//! their variables, JWK Sets over HTTPS, and every empty key refused at start-up.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

mod support;

use support::{herald, request, response_head, spawn_serve};

const RSA_PUBLIC: &str = include_str!("../../herald-hub/tests/keys/rsa_public.pem");
const RSA_PRIVATE: &str = include_str!("../../herald-hub/tests/keys/rsa_private.pem");

fn run(command: &mut Command) -> Output {
    command.output().expect("herald runs")
}

fn token(
    alg: Algorithm,
    key: &EncodingKey,
    kid: Option<&str>,
    mercure: serde_json::Value,
) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, &serde_json::json!({ "mercure": mercure }), key).expect("sign")
}

fn publish_form(authority: &str, token: &str) -> String {
    request(
        authority,
        &format!(
            "POST /.well-known/mercure HTTP/1.1\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/x-www-form-urlencoded"
        ),
        "topic=t&data=x",
    )
}

#[test]
fn a_pem_key_is_accepted_as_a_separate_argument() {
    let running = spawn_serve(
        herald().args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--jwt-alg",
            "RS256",
            "--jwt-key",
            RSA_PUBLIC,
        ]),
        1,
    );
    let key = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).expect("key");
    let rs256 = token(
        Algorithm::RS256,
        &key,
        None,
        serde_json::json!({"publish": ["*"]}),
    );
    let answer = publish_form(running.authority(), &rs256);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let hs256 = herald_hub::dev::hs256_token("k", serde_json::json!({"publish": ["*"]}), None)
        .expect("token");
    let answer = publish_form(running.authority(), &hs256);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("expects RS256"), "{answer}");
}

#[test]
fn keys_come_from_files_named_by_flags_or_variables() {
    let dir = tempfile::tempdir().expect("temp dir");
    let shared = dir.path().join("jwt");
    let publisher = dir.path().join("publisher-jwt");
    // A mounted secret often ends with a line break: it is not part of the key.
    std::fs::write(&shared, "shared-secret\n").expect("write");
    std::fs::write(&publisher, "publisher-secret").expect("write");
    let running = spawn_serve(
        herald()
            .args(["serve", "--addr", "127.0.0.1:0", "--jwt-key-file"])
            .arg(&shared)
            .env("HERALD_PUBLISHER_JWT_KEY_FILE", &publisher),
        1,
    );
    let claims = serde_json::json!({"publish": ["*"], "subscribe": ["*"]});
    let publisher_token =
        herald_hub::dev::hs256_token("publisher-secret", claims.clone(), None).expect("token");
    let answer = publish_form(running.authority(), &publisher_token);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let shared_token = herald_hub::dev::hs256_token("shared-secret", claims, None).expect("token");
    let answer = publish_form(running.authority(), &shared_token);
    assert!(
        answer.starts_with("HTTP/1.1 401"),
        "the role's own file wins: {answer}"
    );
    let head = response_head(
        running.authority(),
        &format!(
            "GET /.well-known/mercure?topic=t HTTP/1.1\r\nAuthorization: Bearer {shared_token}"
        ),
    );
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "subscribers use the shared file: {head}"
    );
}

#[test]
fn an_empty_key_anywhere_stops_the_start_and_names_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").expect("write");
    let config = dir.path().join("herald.toml");
    std::fs::write(&config, "publisher-jwt-key = \"\"\n").expect("write");
    let missing = dir.path().join("missing");
    // Each: the arguments, the variables, and what the error must name.
    type Case<'a> = (Vec<String>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            vec![],
            vec![("MERCURE_PUBLISHER_JWT_KEY", "")],
            "MERCURE_PUBLISHER_JWT_KEY",
        ),
        (
            vec![],
            vec![("MERCURE_SUBSCRIBER_JWT_KEY", "")],
            "MERCURE_SUBSCRIBER_JWT_KEY",
        ),
        (vec![], vec![("HERALD_JWT_KEY", "")], "jwt-key is empty"),
        (
            vec!["--subscriber-jwt-key".into(), String::new()],
            vec![],
            "subscriber-jwt-key is empty",
        ),
        (
            vec!["--jwt-key-file".into(), empty.display().to_string()],
            vec![],
            "is empty",
        ),
        (
            vec!["--config".into(), config.display().to_string()],
            vec![],
            "publisher-jwt-key is empty",
        ),
        (
            vec!["--jwt-key-file".into(), missing.display().to_string()],
            vec![],
            "cannot read the key file",
        ),
        (
            vec![],
            vec![("MERCURE_EXTRA_DIRECTIVES", "publisher_jwt \"\"")],
            "empty key",
        ),
    ];
    for (args, env, named) in cases {
        let output = run(herald()
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(&args)
            .envs(env.iter().copied()));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} {env:?}: {stderr}");
        assert!(stderr.contains(named), "{args:?} {env:?}: {stderr}");
        assert!(
            !stderr.contains("DEVELOPMENT"),
            "{args:?} {env:?}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

/// A one-thread HTTPS server answering every request with `body` (a JWK Set).
fn jwks_server(body: String) -> (String, tempfile::NamedTempFile) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let mut ca = tempfile::NamedTempFile::new().expect("temp file");
    ca.write_all(certified.cert.pem().as_bytes())
        .expect("write");
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .expect("server config"),
    );
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "https://localhost:{}/jwks.json",
        listener.local_addr().expect("address").port()
    );
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let connection = rustls::ServerConnection::new(config.clone()).expect("connection");
            let mut tls = rustls::StreamOwned::new(connection, stream);
            let mut reader = BufReader::new(&mut tls);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let _ = write!(
                tls,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    (url, ca)
}

#[test]
fn subscribers_verified_with_a_jwk_set_over_https() {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let point = pair.public_key_raw();
    let set = serde_json::json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "k1",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    }]});
    let (url, ca) = jwks_server(set.to_string());
    let mut running = spawn_serve(
        herald()
            .args([
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--publisher-jwt-key",
                "publisher-secret",
                "--subscriber-jwks-url",
                &url,
            ])
            .env("SSL_CERT_FILE", ca.path()),
        1,
    );
    let lines = running.lines_until("JWK Set", std::time::Duration::from_secs(20));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("JWK Set fetched") && l.contains("keys=1")),
        "{lines:?}"
    );
    let private = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).expect("key");
    let es256 = token(
        Algorithm::ES256,
        &private,
        Some("k1"),
        serde_json::json!({"subscribe": ["*"]}),
    );
    let head = response_head(
        running.authority(),
        &format!("GET /.well-known/mercure?topic=t HTTP/1.1\r\nAuthorization: Bearer {es256}"),
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let hs256 = herald_hub::dev::hs256_token(
        "publisher-secret",
        serde_json::json!({"subscribe": ["*"]}),
        None,
    )
    .expect("token");
    let refused = request(
        running.authority(),
        &format!("GET /.well-known/mercure?topic=t HTTP/1.1\r\nAuthorization: Bearer {hs256}"),
        "",
    );
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    assert!(refused.contains("JWK Set"), "{refused}");

    let plain = run(herald().args([
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--subscriber-jwks-url",
        "http://127.0.0.1:1/jwks.json",
    ]));
    assert!(!plain.status.success());
    assert!(
        String::from_utf8_lossy(&plain.stderr).contains("HTTPS only"),
        "{plain:?}"
    );
}

/// Mercure 1.0 on the real binary: `--issuer ISS=KEY` (twice, one from a file) and
/// `--audience`; the access token of each issuer publishes, a 0.x token of the same secret does
/// not pass as 1.0, the metadata names both issuers; an issuer without an audience stops the
/// start-up with the reason.
#[test]
fn issuers_and_audience_serve_mercure_1_0() {
    const AUDIENCE: &str = "https://hub.example.com/.well-known/mercure";
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("rsa.pem");
    std::fs::write(&file, RSA_PUBLIC).expect("write");
    let running = spawn_serve(
        herald().args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--issuer",
            "https://a.example=an issuer secret of 32 bytes or more",
            "--issuer",
            &format!("https://rsa.example=@{}", file.display()),
            "--audience",
            AUDIENCE,
        ]),
        1,
    );
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 600;
    let access = |alg: Algorithm, key: &EncodingKey, issuer: &str| {
        let mut header = Header::new(alg);
        header.typ = Some("at+jwt".to_owned());
        let claims = serde_json::json!({
            "iss": issuer, "aud": AUDIENCE, "exp": exp,
            "authorization_details": [{"type": "https://mercure.rocks/authorization-detail",
                "actions": ["publish"], "topics": [{"match": "t"}]}],
        });
        jsonwebtoken::encode(&header, &claims, key).expect("sign")
    };
    let secret = EncodingKey::from_secret(b"an issuer secret of 32 bytes or more");
    let rsa = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).expect("key");
    for token in [
        access(Algorithm::HS256, &secret, "https://a.example"),
        access(Algorithm::RS256, &rsa, "https://rsa.example"),
    ] {
        let answer = publish_form(running.authority(), &token);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    let crossed = access(Algorithm::HS256, &secret, "https://rsa.example");
    let answer = publish_form(running.authority(), &crossed);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("invalid_token"), "{answer}");
    let metadata = request(
        running.authority(),
        "GET /.well-known/oauth-protected-resource/.well-known/mercure HTTP/1.1",
        "",
    );
    assert!(metadata.starts_with("HTTP/1.1 200"), "{metadata}");
    assert!(
        metadata.contains("\"https://a.example\"") && metadata.contains("\"https://rsa.example\""),
        "{metadata}"
    );

    let output = run(herald().args([
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--issuer",
        "https://a.example=secret",
    ]));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--audience"), "{stderr}");
}
