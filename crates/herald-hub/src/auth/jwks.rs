//! Keys published as a JWK Set (RFC 7517) at an HTTPS URL, as identity providers publish them:
//! fetched once, cached, and fetched again when a token names a key (`kid`) the cache lacks
//! (a rotation), at most once per refresh interval, or in the background once the cached set
//! is older than that interval.
//!
//! Only asymmetric keys are used (RSA, ECDSA P-256/P-384, Ed25519): a symmetric (`oct`) key
//! in the set is skipped, and a token signed with `none` or an HMAC algorithm never matches a
//! key of the set. A fetch is bounded in time and size, runs once however many requests wait
//! for it, and never holds a lock that a request with a known key needs.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use herald_hub::auth::KeySet;
//! use jsonwebtoken::Algorithm;
//!
//! let keys = KeySet::builder("https://auth.example.com/.well-known/jwks.json")
//!     .refresh(Duration::from_secs(60))
//!     .build()?;
//! let key = keys.key(Some("2024-06"), Algorithm::RS256).await?;
//! # let _ = key; Ok(()) }
//! ```

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_LENGTH, USER_AGENT};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::watch;
use tokio::time::Instant;

/// How often a set may be fetched again, by default.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(60);
/// How long one fetch may take (connection, TLS, answer), by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest JWK Set document accepted, by default.
pub const DEFAULT_MAX_BYTES: usize = 256 * 1024;
/// The most keys kept from one set; the rest are ignored.
const MAX_KEYS: usize = 100;
/// A failed fetch is retried no sooner than this (or the refresh interval, if shorter).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

/// Why a JWK Set could not be set up or fetched. Each message names the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// The URL is not an absolute `https://` URL.
    #[error("JWK Set URL {url:?}: {reason}")]
    Url {
        /// The URL as configured.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The set could not be fetched or read.
    #[error("cannot fetch the JWK Set at {url}: {reason}")]
    Fetch {
        /// The set's URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

/// Why no key of the set verifies a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The token's algorithm is `none` or HMAC, which a JWK Set never serves.
    #[error("the algorithm {0:?} is not used with a JWK Set")]
    Algorithm(Algorithm),
    /// The set has no key with the token's `kid` (or, without `kid`, no key for its algorithm).
    #[error("no key {} in the JWK Set", .0.as_deref().map_or("for the algorithm".to_owned(), |k| format!("{k:?}")))]
    Unknown(Option<String>),
    /// The key named by `kid` is for another algorithm.
    #[error("the key {kid:?} of the JWK Set is not for {algorithm:?}")]
    WrongAlgorithm {
        /// The key's ID.
        kid: String,
        /// The token's algorithm.
        algorithm: Algorithm,
    },
    /// The token names no key and several keys of the set fit its algorithm.
    #[error("the token names no key (kid) and several keys of the JWK Set fit")]
    Ambiguous,
    /// The set has never been fetched successfully.
    #[error("the JWK Set is not available")]
    Unavailable,
}

/// A cached JWK Set. Cloning is cheap and shares the cache.
#[derive(Clone)]
pub struct KeySet {
    inner: Arc<Inner>,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("url", &self.inner.url)
            .field("keys", &self.cached_keys())
            .finish_non_exhaustive()
    }
}

struct Inner {
    url: String,
    uri: Uri,
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    refresh: Duration,
    timeout: Duration,
    max_bytes: usize,
    state: RwLock<State>,
    /// Counts finished fetches, so that requests can wait for the one in flight.
    fetched: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    keys: Arc<Vec<Entry>>,
    /// When the set was last fetched successfully.
    loaded: Option<Instant>,
    /// No fetch starts before this.
    next_fetch: Option<Instant>,
    in_flight: bool,
}

struct Entry {
    kid: Option<String>,
    /// The algorithms the key may verify: its `alg`, or every one its type allows.
    algorithms: Vec<Algorithm>,
    key: DecodingKey,
}

/// Builds a [`KeySet`].
#[derive(Debug)]
#[must_use = "a KeySetBuilder does nothing until `build` is called"]
pub struct KeySetBuilder {
    url: String,
    refresh: Duration,
    timeout: Duration,
    max_bytes: usize,
    roots: Option<rustls::RootCertStore>,
}

impl KeySetBuilder {
    /// The shortest time between two fetches, and the age after which the cached set is
    /// fetched again in the background ([`DEFAULT_REFRESH`]).
    pub fn refresh(mut self, interval: Duration) -> Self {
        self.refresh = interval;
        self
    }

    /// How long one fetch may take ([`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest document accepted ([`DEFAULT_MAX_BYTES`]).
    pub fn max_bytes(mut self, max: usize) -> Self {
        self.max_bytes = max;
        self
    }

    /// Trusts these roots instead of the web's public roots and the system's store (which
    /// honours `SSL_CERT_FILE` and `SSL_CERT_DIR`).
    pub fn root_certificates(mut self, roots: rustls::RootCertStore) -> Self {
        self.roots = Some(roots);
        self
    }

    /// Checks the URL and prepares the client; nothing is fetched yet.
    pub fn build(self) -> Result<KeySet, JwksError> {
        let invalid = |reason: &str| JwksError::Url {
            url: self.url.clone(),
            reason: reason.to_owned(),
        };
        let parsed = url::Url::parse(&self.url).map_err(|e| invalid(&e.to_string()))?;
        if parsed.scheme() != "https" {
            return Err(invalid("a JWK Set is fetched over HTTPS only"));
        }
        let uri: Uri = self
            .url
            .parse()
            .map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
        let roots = self.roots.unwrap_or_else(default_roots);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(&e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .build();
        Ok(KeySet {
            inner: Arc::new(Inner {
                url: self.url,
                uri,
                client: Client::builder(TokioExecutor::new()).build(connector),
                refresh: self.refresh,
                timeout: self.timeout,
                max_bytes: self.max_bytes,
                state: RwLock::new(State::default()),
                fetched: watch::Sender::new(0),
            }),
        })
    }
}

/// The web's public roots and the system's store.
fn default_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::warn!(%error, "cannot load a system root certificate");
    }
    roots.add_parsable_certificates(native.certs);
    roots
}

impl KeySet {
    /// A set fetched from `url` (`https://` only).
    pub fn builder(url: impl Into<String>) -> KeySetBuilder {
        KeySetBuilder {
            url: url.into(),
            refresh: DEFAULT_REFRESH,
            timeout: DEFAULT_TIMEOUT,
            max_bytes: DEFAULT_MAX_BYTES,
            roots: None,
        }
    }

    /// The set's URL.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// How many usable keys are cached.
    pub fn cached_keys(&self) -> usize {
        self.read_state(|state| state.keys.len())
    }

    /// The key that verifies a token with this `kid` and algorithm, fetching the set when the
    /// cache lacks it and the last fetch is at least one refresh interval old. Waits at most
    /// about one fetch timeout.
    pub async fn key(
        &self,
        kid: Option<&str>,
        algorithm: Algorithm,
    ) -> Result<DecodingKey, KeyError> {
        if !asymmetric(algorithm) {
            return Err(KeyError::Algorithm(algorithm));
        }
        if let Some(key) = self.cached(kid, algorithm)? {
            if self.read_state(|s| s.loaded.is_none_or(|at| at.elapsed() >= self.inner.refresh)) {
                // Stale: fetch in the background, answer from the cache now.
                let _ = self.start_fetch();
            }
            return Ok(key);
        }
        let mut done = self.inner.fetched.subscribe();
        done.mark_unchanged();
        if self.start_fetch() || self.read_state(|s| s.in_flight) {
            let _ = tokio::time::timeout(self.inner.timeout * 2, done.changed()).await;
        }
        match self.cached(kid, algorithm)? {
            Some(key) => Ok(key),
            None if self.read_state(|s| s.loaded.is_none()) => Err(KeyError::Unavailable),
            None => Err(KeyError::Unknown(kid.map(str::to_owned))),
        }
    }

    /// The key for `kid` and `algorithm` among the cached ones, without fetching.
    pub fn cached(
        &self,
        kid: Option<&str>,
        algorithm: Algorithm,
    ) -> Result<Option<DecodingKey>, KeyError> {
        let keys = self.read_state(|state| state.keys.clone());
        match kid {
            Some(kid) => match keys.iter().find(|e| e.kid.as_deref() == Some(kid)) {
                Some(entry) if entry.algorithms.contains(&algorithm) => Ok(Some(entry.key.clone())),
                Some(_) => Err(KeyError::WrongAlgorithm {
                    kid: kid.to_owned(),
                    algorithm,
                }),
                None => Ok(None),
            },
            None => {
                let mut fitting = keys.iter().filter(|e| e.algorithms.contains(&algorithm));
                match (fitting.next(), fitting.next()) {
                    (Some(entry), None) => Ok(Some(entry.key.clone())),
                    (Some(_), Some(_)) => Err(KeyError::Ambiguous),
                    (None, _) => Ok(None),
                }
            }
        }
    }

    /// Fetches the set now, whatever the refresh interval, and returns how many usable keys
    /// it holds. On failure the cached keys stay in use.
    pub async fn refresh(&self) -> Result<usize, JwksError> {
        self.write_state(|state| state.in_flight = true);
        let result = self.fetch_and_store().await;
        self.inner.fetched.send_modify(|n| *n += 1);
        result
    }

    /// Starts a fetch in the background unless one is in flight or the last one is too
    /// recent; true when one started.
    fn start_fetch(&self) -> bool {
        let now = Instant::now();
        let claimed = self.write_state(|state| {
            if state.in_flight || state.next_fetch.is_some_and(|at| now < at) {
                return false;
            }
            state.in_flight = true;
            true
        });
        if claimed {
            // A task of its own: it completes even when the request that started it is gone.
            let set = self.clone();
            tokio::spawn(async move {
                if let Err(error) = set.fetch_and_store().await {
                    tracing::warn!(%error, "JWK Set fetch failed; the cached keys stay in use");
                }
                set.inner.fetched.send_modify(|n| *n += 1);
            });
        }
        claimed
    }

    async fn fetch_and_store(&self) -> Result<usize, JwksError> {
        let inner = &self.inner;
        let result = match tokio::time::timeout(inner.timeout, self.fetch()).await {
            Ok(result) => result,
            Err(_) => Err(format!("no complete answer within {:?}", inner.timeout)),
        };
        let now = Instant::now();
        self.write_state(|state| {
            state.in_flight = false;
            match result {
                Ok(keys) => {
                    let count = keys.len();
                    state.keys = Arc::new(keys);
                    state.loaded = Some(now);
                    state.next_fetch = Some(now + inner.refresh);
                    tracing::debug!(url = %inner.url, keys = count, "JWK Set fetched");
                    Ok(count)
                }
                Err(reason) => {
                    state.next_fetch = Some(now + inner.refresh.min(RETRY_AFTER_FAILURE));
                    Err(JwksError::Fetch {
                        url: inner.url.clone(),
                        reason,
                    })
                }
            }
        })
    }

    async fn fetch(&self) -> Result<Vec<Entry>, String> {
        let inner = &self.inner;
        let request = Request::get(inner.uri.clone())
            .header(ACCEPT, "application/jwk-set+json, application/json")
            .header(USER_AGENT, concat!("herald/", env!("CARGO_PKG_VERSION")))
            .body(Empty::new())
            .map_err(|e| e.to_string())?;
        let response = inner
            .client
            .request(request)
            .await
            .map_err(|e| describe_chain(&e))?;
        if response.status() != StatusCode::OK {
            return Err(format!("the server answered {}", response.status()));
        }
        let announced = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
        let too_large = || format!("the document is larger than {} bytes", inner.max_bytes);
        if announced.is_some_and(|n| n > inner.max_bytes) {
            return Err(too_large());
        }
        let body = Limited::new(response.into_body(), inner.max_bytes)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    too_large()
                } else {
                    format!("reading the answer failed: {e}")
                }
            })?
            .to_bytes();
        parse(&body)
    }

    fn read_state<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        match self.inner.state.read() {
            Ok(state) => f(&state),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    fn write_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        match self.inner.state.write() {
            Ok(mut state) => f(&mut state),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }
}

/// An error and its causes on one line (hyper's client errors say little on their own).
fn describe_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn asymmetric(algorithm: Algorithm) -> bool {
    !matches!(
        algorithm,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
    )
}

/// The usable signature keys of a JWK Set document; keys of unknown or symmetric types,
/// encryption keys and keys that do not parse are skipped.
fn parse(document: &[u8]) -> Result<Vec<Entry>, String> {
    #[derive(serde::Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let document: Document = serde_json::from_slice(document)
        .map_err(|e| format!("not a JWK Set (a JSON object with a `keys` array): {e}"))?;
    let total = document.keys.len();
    let entries: Vec<Entry> = document
        .keys
        .into_iter()
        .filter_map(|value| serde_json::from_value::<Jwk>(value).ok())
        .filter_map(|jwk| entry(&jwk))
        .take(MAX_KEYS)
        .collect();
    if entries.is_empty() {
        return Err(format!(
            "none of its {total} keys is a usable signature key (RSA, EC P-256/P-384, Ed25519)"
        ));
    }
    Ok(entries)
}

fn entry(jwk: &Jwk) -> Option<Entry> {
    let common = &jwk.common;
    if matches!(
        common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return None;
    }
    let allowed: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => vec![
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::EllipticCurve(params) => match params.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(params) if params.curve == EllipticCurve::Ed25519 => {
            vec![Algorithm::EdDSA]
        }
        // Symmetric keys are never taken from a set; other curves are not supported.
        _ => return None,
    };
    let algorithms = match common.key_algorithm {
        None => allowed,
        Some(declared) => {
            let declared = jwk_algorithm(declared)?;
            if !allowed.contains(&declared) {
                return None;
            }
            vec![declared]
        }
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(Entry {
        kid: common.key_id.clone(),
        algorithms,
        key,
    })
}

fn jwk_algorithm(declared: KeyAlgorithm) -> Option<Algorithm> {
    Some(match declared {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_encryption_and_unknown_keys_are_skipped() {
        let document = serde_json::json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "RSA", "use": "enc", "kid": "enc", "n": "sXch", "e": "AQAB"},
            {"kty": "weird", "kid": "weird"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "EC", "crv": "P-256", "kid": "ec", "alg": "ES384",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
        ]});
        let entries = parse(document.to_string().as_bytes()).expect("one usable key");
        let kids: Vec<_> = entries.iter().map(|e| e.kid.as_deref()).collect();
        // The EC key declares an algorithm its curve cannot verify: skipped too.
        assert_eq!(kids, [Some("ed")]);
        assert_eq!(entries[0].algorithms, [Algorithm::EdDSA]);
    }

    #[test]
    fn a_document_without_usable_keys_is_an_error_that_says_so() {
        let error = parse(br#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#)
            .err()
            .expect("refused");
        assert!(error.contains("none of its 1 keys"), "{error}");
        let error = parse(b"<html>").err().expect("refused");
        assert!(error.contains("not a JWK Set"), "{error}");
    }

    #[test]
    fn only_https_urls_are_accepted() {
        let error = KeySet::builder("http://127.0.0.1/jwks.json")
            .build()
            .expect_err("plain HTTP");
        assert!(error.to_string().contains("HTTPS only"), "{error}");
        assert!(KeySet::builder("not a url").build().is_err());
    }
}
