//! JWK Sets over HTTPS: keys fetched from a local HTTPS server, cached, fetched again on an
//! unknown `kid` at most once per interval, never used for `none` or HMAC, every fetch bounded
//! in time and size, and a stalled fetch never holding up a token whose key is cached.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use herald_hub::auth::{AuthError, Authorizer, KeySet, Role};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tokio_rustls::TlsAcceptor;

use crate::net::{Cert, self_signed};

/// How the test server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Keys,
    Stall,
    NotFound,
    Huge,
}

/// A local HTTPS server publishing a JWK Set, counting the fetches.
struct JwksServer {
    url: String,
    cert: Cert,
    keys: Arc<Mutex<String>>,
    answer: Arc<Mutex<Answer>>,
    fetches: Arc<AtomicUsize>,
}

impl JwksServer {
    async fn start(keys: &[&Signer]) -> JwksServer {
        let cert = self_signed();
        let tls = herald_hub::server::server_config_from_der(
            vec![cert.der.clone()],
            cert.key.clone_key(),
        )
        .expect("tls");
        let acceptor = TlsAcceptor::from(tls);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        let server = JwksServer {
            url: format!("https://localhost:{port}/jwks.json"),
            cert,
            keys: Arc::new(Mutex::new(set(keys))),
            answer: Arc::new(Mutex::new(Answer::Keys)),
            fetches: Arc::new(AtomicUsize::new(0)),
        };
        let (document, answer, fetches) = (
            server.keys.clone(),
            server.answer.clone(),
            server.fetches.clone(),
        );
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, document, answer, fetches) = (
                    acceptor.clone(),
                    document.clone(),
                    answer.clone(),
                    fetches.clone(),
                );
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |_request| {
                        let (document, answer, fetches) =
                            (document.clone(), answer.clone(), fetches.clone());
                        async move {
                            fetches.fetch_add(1, Ordering::SeqCst);
                            let answer = *answer.lock().unwrap();
                            let body = match answer {
                                Answer::Stall => {
                                    tokio::time::sleep(Duration::from_secs(3600)).await;
                                    String::new()
                                }
                                Answer::Huge => " ".repeat(64 * 1024) + "{\"keys\": []}",
                                _ => document.lock().unwrap().clone(),
                            };
                            let mut response = http::Response::new(Full::new(Bytes::from(body)));
                            if answer == Answer::NotFound {
                                *response.status_mut() = http::StatusCode::NOT_FOUND;
                            }
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        server
    }

    fn publish(&self, keys: &[&Signer]) {
        *self.keys.lock().unwrap() = set(keys);
    }

    fn answer(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// A key set of this server, trusting its certificate.
    fn key_set(&self, refresh: Duration, timeout: Duration) -> KeySet {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert.der.clone()).expect("root");
        KeySet::builder(self.url.clone())
            .refresh(refresh)
            .timeout(timeout)
            .max_bytes(16 * 1024)
            .root_certificates(roots)
            .build()
            .expect("key set")
    }
}

/// An ECDSA P-256 key pair with its key ID.
struct Signer {
    kid: String,
    private: EncodingKey,
    jwk: serde_json::Value,
}

impl Signer {
    fn new(kid: &str) -> Signer {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let point = pair.public_key_raw();
        Signer {
            kid: kid.to_owned(),
            private: EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).expect("pem"),
            jwk: serde_json::json!({
                "kty": "EC", "crv": "P-256", "use": "sig", "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
            }),
        }
    }

    fn token(&self) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        self.sign(header)
    }

    fn sign(&self, header: Header) -> String {
        let claims = serde_json::json!({"mercure": {"subscribe": ["*"]}});
        jsonwebtoken::encode(&header, &claims, &self.private).expect("sign")
    }
}

fn set(keys: &[&Signer]) -> String {
    serde_json::json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}).to_string()
}

fn authorizer(set: KeySet) -> Authorizer {
    Authorizer::new(None, None)
        .expect("no keys")
        .key_set(Role::Subscriber, set)
}

const HOUR: Duration = Duration::from_secs(3600);
const TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_key_of_the_set_verifies_and_an_unknown_kid_fetches_at_most_once_per_interval() {
    let (one, two) = (Signer::new("one"), Signer::new("two"));
    let server = JwksServer::start(&[&one]).await;
    let auth = authorizer(server.key_set(HOUR, TIMEOUT));
    let claims = auth
        .verify_fetching(Role::Subscriber, &one.token())
        .await
        .expect("a key of the set");
    assert_eq!(claims.subscribe, Some(vec!["*".to_owned()]));
    assert_eq!(server.fetches(), 1);
    auth.verify_fetching(Role::Subscriber, &one.token())
        .await
        .expect("cached");
    assert_eq!(server.fetches(), 1, "a known key is served from the cache");

    // The provider rotates; within the interval, an unknown kid does not fetch again.
    server.publish(&[&one, &two]);
    for _ in 0..20 {
        let error = auth
            .verify_fetching(Role::Subscriber, &two.token())
            .await
            .expect_err("rate-limited");
        assert!(matches!(error, AuthError::UnknownKey(_)), "{error:?}");
        assert_eq!(error.status(), http::StatusCode::UNAUTHORIZED);
    }
    assert_eq!(server.fetches(), 1, "no fetch within the interval");
}

#[tokio::test]
async fn a_rotation_is_picked_up_after_the_interval_by_one_fetch_for_many_requests() {
    let (one, two) = (Signer::new("one"), Signer::new("two"));
    let server = JwksServer::start(&[&one]).await;
    let auth = Arc::new(authorizer(
        server.key_set(Duration::from_millis(200), TIMEOUT),
    ));
    auth.verify_fetching(Role::Subscriber, &one.token())
        .await
        .expect("first key");
    server.publish(&[&one, &two]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Many requests with the new kid at once: one fetch serves them all.
    let token = two.token();
    let waiting: Vec<_> = (0..20)
        .map(|_| {
            let (auth, token) = (auth.clone(), token.clone());
            tokio::spawn(async move { auth.verify_fetching(Role::Subscriber, &token).await })
        })
        .collect();
    for task in waiting {
        task.await.expect("task").expect("the rotated key");
    }
    assert_eq!(server.fetches(), 2);
}

#[tokio::test]
async fn none_and_hmac_tokens_never_use_the_set() {
    let one = Signer::new("one");
    let server = JwksServer::start(&[&one]).await;
    let auth = authorizer(server.key_set(HOUR, TIMEOUT));
    // An HMAC token "signed" with the public key's text, the classic confusion attack.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("one".to_owned());
    let hmac = jsonwebtoken::encode(
        &header,
        &serde_json::json!({"mercure": {"subscribe": ["*"]}}),
        &EncodingKey::from_secret(one.jwk.to_string().as_bytes()),
    )
    .expect("sign");
    let error = auth
        .verify_fetching(Role::Subscriber, &hmac)
        .await
        .expect_err("HMAC");
    assert!(
        matches!(&error, AuthError::WrongAlgorithm { found, .. } if found == "HS256"),
        "{error:?}"
    );
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"one"}"#),
        URL_SAFE_NO_PAD.encode(br#"{"mercure":{"subscribe":["*"]}}"#)
    );
    let error = auth
        .verify_fetching(Role::Subscriber, &unsigned)
        .await
        .expect_err("none");
    assert_eq!(error, AuthError::AlgNone);
    assert_eq!(server.fetches(), 0, "neither made the hub fetch");
}

#[tokio::test]
async fn a_token_without_kid_needs_a_single_fitting_key() {
    let (one, two) = (Signer::new("one"), Signer::new("two"));
    let server = JwksServer::start(&[&one]).await;
    let auth = authorizer(server.key_set(HOUR, TIMEOUT));
    let no_kid = one.sign(Header::new(Algorithm::ES256));
    auth.verify_fetching(Role::Subscriber, &no_kid)
        .await
        .expect("the only key");

    let server = JwksServer::start(&[&one, &two]).await;
    let auth = authorizer(server.key_set(HOUR, TIMEOUT));
    let error = auth
        .verify_fetching(Role::Subscriber, &no_kid)
        .await
        .expect_err("ambiguous");
    assert!(error.to_string().contains("no key (kid)"), "{error}");
}

#[tokio::test]
async fn fetches_are_bounded_in_time_and_size_and_failures_say_why() {
    let one = Signer::new("one");
    let server = JwksServer::start(&[&one]).await;

    server.answer(Answer::Stall);
    let set = server.key_set(HOUR, Duration::from_millis(300));
    let started = std::time::Instant::now();
    let error = authorizer(set.clone())
        .verify_fetching(Role::Subscriber, &one.token())
        .await
        .expect_err("stalled");
    assert_eq!(error, AuthError::KeySetUnavailable);
    assert_eq!(error.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the wait is bounded by the fetch timeout: {:?}",
        started.elapsed()
    );
    let error = set.refresh().await.expect_err("stalled");
    assert!(error.to_string().contains("no complete answer"), "{error}");
    assert!(error.to_string().contains(&server.url), "{error}");

    server.answer(Answer::Huge);
    let error = set.refresh().await.expect_err("too large");
    assert!(error.to_string().contains("larger than"), "{error}");

    server.answer(Answer::NotFound);
    let error = set.refresh().await.expect_err("404");
    assert!(error.to_string().contains("404"), "{error}");

    server.answer(Answer::Keys);
    assert_eq!(set.refresh().await.expect("fetched"), 1);
}

#[tokio::test]
async fn a_stalled_fetch_never_holds_up_a_token_whose_key_is_cached() {
    let (one, two) = (Signer::new("one"), Signer::new("two"));
    let server = JwksServer::start(&[&one]).await;
    let auth = Arc::new(authorizer(
        server.key_set(Duration::from_millis(100), Duration::from_secs(20)),
    ));
    auth.verify_fetching(Role::Subscriber, &one.token())
        .await
        .expect("first key");
    server.answer(Answer::Stall);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // An unknown kid starts a fetch that stalls...
    let stalled = {
        let (auth, token) = (auth.clone(), two.token());
        tokio::spawn(async move { auth.verify_fetching(Role::Subscriber, &token).await })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server.fetches() < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.fetches(), 2, "the fetch is under way");
    // ...while a token whose key is cached is verified at once.
    let known = tokio::time::timeout(
        Duration::from_secs(5),
        auth.verify_fetching(Role::Subscriber, &one.token()),
    )
    .await
    .expect("not held up by the stalled fetch");
    known.expect("cached key");
    assert!(!stalled.is_finished(), "the unknown kid still waits");
    stalled.abort();
}

/// Mercure 1.0: an issuer whose keys are a JWK Set verifies its access tokens with them alone.
#[tokio::test]
async fn an_issuer_with_a_jwk_set_verifies_its_access_tokens() {
    use herald_hub::auth::{AccessTokens, IssuerKey};
    const ISSUER: &str = "https://auth.example.com";
    const AUDIENCE: &str = "https://hub.example.com/.well-known/mercure";
    let one = Signer::new("one");
    let server = JwksServer::start(&[&one]).await;
    let access = AccessTokens::new(
        &[IssuerKey {
            issuer: ISSUER.to_owned(),
            key: server.url.clone(),
        }],
        AUDIENCE,
        url::Url::parse(AUDIENCE).expect("url"),
        HOUR,
    )
    .expect("issuers")
    .key_set(ISSUER, server.key_set(HOUR, TIMEOUT));
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 600;
    let claims = serde_json::json!({
        "iss": ISSUER, "aud": AUDIENCE, "exp": exp,
        "authorization_details": [{"type": "https://mercure.rocks/authorization-detail",
            "actions": ["subscribe"], "topics": [{"match": "*"}]}],
    });
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("one".to_owned());
    header.typ = Some("at+jwt".to_owned());
    let token = jsonwebtoken::encode(&header, &claims, &one.private).expect("sign");
    let verified = access
        .verify(&token)
        .await
        .expect("a key of the issuer's set");
    assert_eq!(verified.issuer, ISSUER);
    assert_eq!(verified.subscribe_selectors().len(), 1);
    assert_eq!(server.fetches(), 1);

    // The classic confusion: HMAC with the public key's text, never verified with the set.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("one".to_owned());
    header.typ = Some("at+jwt".to_owned());
    let hmac = jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_secret(one.jwk.to_string().as_bytes()),
    )
    .expect("sign");
    assert!(access.verify(&hmac).await.is_err());
}
