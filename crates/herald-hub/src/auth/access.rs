//! Mercure 1.0 access tokens (draft-08, RFC 9068): which issuers the hub trusts, each with its
//! own keys, and what a token must be to be accepted.
//!
//! A token is checked in this order, every failure being `invalid_token`: its header says
//! `typ: at+jwt` (or `application/at+jwt`, any case) and names an algorithm other than `none`;
//! its `iss` is exactly one of the trusted issuers; that issuer's key material allows the
//! algorithm (an HMAC secret allows HS256/384/512, an RSA key RS* and PS*, a P-256 key ES256, a
//! P-384 key ES384, an Ed25519 key EdDSA, a JWK Set what each of its keys allows); the
//! signature verifies with that issuer's keys alone (`kid` only picks among them; `jwk`, `jku`
//! and `x5u` are never followed); `exp` and `aud` are present, `exp` is in the future, `nbf` (if
//! any) in the past, and `aud` holds the hub's resource identifier; and `authorization_details`
//! parses strictly ([`super::details`]). `sub`, `client_id`, `iat` and `jti` are not required:
//! the reference hub does not require them and its own conformance suite's token has none.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use url::Url;

use super::details::{Grant, parse_details};
use super::keys::{ENGINE, JoseHeader, key_error, map_jwt_error, parse_algorithm, peek_header};
use super::{AuthError, KeySet};
use crate::topic::{TopicSelector, first_unmatched};

/// A trusted issuer and its key material, as configured: a shared secret, a PEM public key
/// (`PUBLIC KEY`, `RSA PUBLIC KEY` or `CERTIFICATE`), or the `https://` URL of its JWK Set.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerKey {
    /// The issuer, exactly as tokens spell it in `iss`.
    pub issuer: String,
    /// Its secret, PEM public key, or JWK Set URL.
    pub key: String,
}

/// Never prints the key: it may be a shared secret.
impl fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerKey")
            .field("issuer", &self.issuer)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Why the issuers could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssuerSetupError {
    /// The issuer's key is empty.
    #[error("issuer {0:?}: the key is empty")]
    EmptyKey(String),
    /// The issuer is empty.
    #[error("an issuer name is empty (--issuer ISS=KEY)")]
    EmptyIssuer,
    /// The same issuer is configured twice.
    #[error("issuer {0:?} is configured twice")]
    Duplicate(String),
    /// The key is a private key.
    #[error(
        "issuer {0:?}: the key is a private key; configure its public key, the hub only verifies"
    )]
    PrivateKey(String),
    /// The PEM text is no public key the hub can use.
    #[error(
        "issuer {issuer:?}: the key is not a usable PEM public key (RSA, EC P-256/P-384 or Ed25519): {reason}"
    )]
    InvalidPublicKey {
        /// The issuer.
        issuer: String,
        /// Why.
        reason: String,
    },
    /// The JWK Set URL is unusable.
    #[error("issuer {issuer:?}: {reason}")]
    Jwks {
        /// The issuer.
        issuer: String,
        /// Why.
        reason: String,
    },
    /// The resource identifier is missing or not an absolute URL.
    #[error("{0}")]
    Audience(String),
}

/// One issuer's keys.
#[derive(Clone)]
enum Keys {
    /// One key and the algorithms its type allows.
    Static {
        key: DecodingKey,
        algorithms: Vec<Algorithm>,
    },
    /// The keys of a JWK Set.
    Jwks(KeySet),
}

/// Verifies Mercure 1.0 access tokens: the trusted issuers with their keys, and the hub's
/// resource identifier. Cloning is cheap.
#[derive(Clone)]
pub struct AccessTokens {
    inner: Arc<Inner>,
}

struct Inner {
    issuers: HashMap<String, Keys>,
    audience: String,
    base: Url,
    leeway: u64,
}

impl fmt::Debug for AccessTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut issuers: Vec<&String> = self.inner.issuers.keys().collect();
        issuers.sort();
        f.debug_struct("AccessTokens")
            .field("issuers", &issuers)
            .field("audience", &self.inner.audience)
            .finish()
    }
}

/// The claims of a verified Mercure 1.0 access token.
#[derive(Debug, Clone)]
pub struct AccessClaims {
    /// `iss`.
    pub issuer: String,
    /// `sub`, when present.
    pub subject: Option<String>,
    /// `jti`, when present.
    pub jti: Option<String>,
    /// `iat` in whole seconds since the Unix epoch, when present.
    pub issued_at: Option<u64>,
    /// `exp`: a subscription ends then.
    pub expires_at: SystemTime,
    /// The Mercure entries of `authorization_details`.
    pub grants: Vec<Grant>,
}

impl AccessClaims {
    /// Who the token says it is, as the control API selects and revokes by.
    pub fn identity(&self) -> crate::fanout::Identity {
        crate::fanout::Identity {
            sub: self.subject.clone(),
            jti: self.jti.clone(),
            issued_at: self.issued_at,
        }
    }

    /// Every topic must be covered by a `publish` grant; otherwise `insufficient_scope`,
    /// naming the first topic refused.
    pub fn check_publish(&self, topics: &[impl AsRef<str>]) -> Result<(), AuthError> {
        let selectors = self.selectors(|g| g.publish);
        if selectors.is_empty() {
            return Err(AuthError::NoPublishGrant);
        }
        match first_unmatched(&selectors, topics) {
            Some(topic) => Err(AuthError::NotAllowedToPublish {
                topic: topic.to_owned(),
            }),
            None => Ok(()),
        }
    }

    /// The matchers of the `subscribe` grants: what private updates the token unlocks.
    pub fn subscribe_selectors(&self) -> Vec<TopicSelector> {
        self.selectors(|g| g.subscribe)
    }

    /// The payload of the first `subscribe` grant whose matchers match `text` (a
    /// subscription's matcher, or the subscriptions API's path).
    pub fn payload_for(&self, text: &str) -> Option<serde_json::Value> {
        self.grants
            .iter()
            .filter(|g| g.subscribe)
            .find(|g| g.topics.iter().any(|t| t.matches(text)))
            .and_then(|g| g.payload.clone())
    }

    /// Whether a `subscribe` grant matches `text`.
    pub fn may_subscribe_to(&self, text: &str) -> bool {
        self.grants
            .iter()
            .any(|g| g.subscribe && g.topics.iter().any(|t| t.matches(text)))
    }

    fn selectors(&self, action: impl Fn(&Grant) -> bool) -> Vec<TopicSelector> {
        self.grants
            .iter()
            .filter(|g| action(g))
            .flat_map(|g| g.topics.iter().cloned())
            .collect()
    }
}

#[derive(Deserialize)]
struct RawClaims {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    sub: Option<serde_json::Value>,
    #[serde(default)]
    jti: Option<serde_json::Value>,
    #[serde(default)]
    iat: Option<serde_json::Value>,
    #[serde(default)]
    exp: Option<serde_json::Value>,
    #[serde(default)]
    authorization_details: Option<serde_json::Value>,
}

impl AccessTokens {
    /// The verifier for these issuers; `audience` is the hub's resource identifier (an
    /// absolute URL, which tokens must carry in `aud`), and `base` the hub's URL, against which
    /// relative URL patterns in grants resolve. A JWK Set is fetched again at most every
    /// `jwks_refresh`.
    pub fn new(
        issuers: &[IssuerKey],
        audience: &str,
        base: Url,
        jwks_refresh: Duration,
    ) -> Result<AccessTokens, IssuerSetupError> {
        let mut map = HashMap::new();
        for IssuerKey { issuer, key } in issuers {
            if issuer.is_empty() {
                return Err(IssuerSetupError::EmptyIssuer);
            }
            if map.contains_key(issuer) {
                return Err(IssuerSetupError::Duplicate(issuer.clone()));
            }
            map.insert(issuer.clone(), keys(issuer, key, jwks_refresh)?);
        }
        Ok(AccessTokens {
            inner: Arc::new(Inner {
                issuers: map,
                audience: audience.to_owned(),
                base,
                leeway: 0,
            }),
        })
    }

    /// Verifies `issuer`'s tokens with this JWK Set instead of its configured key (a set
    /// built with its own roots, say); call it before the verifier is cloned.
    pub fn key_set(mut self, issuer: &str, set: KeySet) -> AccessTokens {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => {
                inner.issuers.insert(issuer.to_owned(), Keys::Jwks(set));
            }
            None => tracing::warn!(
                issuer,
                "AccessTokens::key_set on a shared verifier: ignored"
            ),
        }
        self
    }

    /// The trusted issuers, sorted.
    pub fn issuers(&self) -> Vec<&str> {
        let mut issuers: Vec<&str> = self.inner.issuers.keys().map(String::as_str).collect();
        issuers.sort_unstable();
        issuers
    }

    /// The JWK Sets of the issuers that have one, with their issuer.
    pub fn key_sets(&self) -> Vec<(&str, &KeySet)> {
        self.inner
            .issuers
            .iter()
            .filter_map(|(issuer, keys)| match keys {
                Keys::Jwks(set) => Some((issuer.as_str(), set)),
                Keys::Static { .. } => None,
            })
            .collect()
    }

    /// The hub's resource identifier.
    pub fn audience(&self) -> &str {
        &self.inner.audience
    }

    /// Verifies an access token and returns its claims (see the module's documentation for
    /// every check). A JWK Set lacking the token's key is fetched again, at most once per
    /// refresh interval.
    pub async fn verify(&self, token: &str) -> Result<AccessClaims, AuthError> {
        let header = peek_header(token)?;
        if !header.is_access_token() {
            return Err(AuthError::NotAccessToken);
        }
        let issuer = unverified_issuer(token)?;
        let keys = self
            .inner
            .issuers
            .get(&issuer)
            .ok_or_else(|| AuthError::UntrustedIssuer(issuer.clone()))?;
        let (algorithm, name) = jose_algorithm(&header)?;
        let key = match keys {
            Keys::Static { key, algorithms } => {
                if !algorithms.contains(&algorithm) {
                    return Err(AuthError::AlgorithmNotForKey {
                        algorithm: name.to_owned(),
                        issuer,
                    });
                }
                key.clone()
            }
            Keys::Jwks(set) => set
                .key(header.kid.as_deref(), algorithm)
                .await
                .map_err(key_error)?,
        };
        self.decode(token, &key, algorithm, name, issuer)
    }

    fn decode(
        &self,
        token: &str,
        key: &DecodingKey,
        algorithm: Algorithm,
        name: &'static str,
        issuer: String,
    ) -> Result<AccessClaims, AuthError> {
        let mut validation = Validation::new(algorithm);
        validation.set_required_spec_claims(&["exp", "aud", "iss"]);
        validation.set_audience(&[&self.inner.audience]);
        validation.set_issuer(&[&issuer]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = self.inner.leeway;
        let data = jsonwebtoken::decode::<RawClaims>(token, key, &validation).map_err(|error| {
            let specific = match error.kind() {
                ErrorKind::MissingRequiredClaim(claim) => {
                    Some(AuthError::MissingClaim(claim.clone()))
                }
                ErrorKind::InvalidAudience => {
                    Some(AuthError::WrongAudience(self.inner.audience.clone()))
                }
                ErrorKind::InvalidIssuer => Some(AuthError::UntrustedIssuer(issuer.clone())),
                _ => None,
            };
            specific.unwrap_or_else(|| map_jwt_error(error, name))
        })?;
        let raw = data.claims;
        let expires_at =
            raw.exp.as_ref().and_then(numeric_date).ok_or_else(|| {
                AuthError::MalformedClaims("`exp` is not a NumericDate".to_owned())
            })?;
        // RFC 7519: not accepted on or after `exp`, to the fraction of a second.
        if SystemTime::now() >= expires_at + Duration::from_secs(self.inner.leeway) {
            return Err(AuthError::Expired);
        }
        let grants = parse_details(raw.authorization_details.as_ref(), &self.inner.base)?;
        Ok(AccessClaims {
            issuer: raw.iss.unwrap_or(issuer),
            subject: raw.sub.and_then(|s| s.as_str().map(str::to_owned)),
            jti: raw.jti.and_then(|s| s.as_str().map(str::to_owned)),
            issued_at: raw.iat.as_ref().and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            }),
            expires_at,
            grants,
        })
    }
}

fn numeric_date(value: &serde_json::Value) -> Option<SystemTime> {
    let after_epoch = match value.as_u64() {
        Some(secs) => Duration::from_secs(secs),
        None => Duration::try_from_secs_f64(value.as_f64()?).ok()?,
    };
    UNIX_EPOCH.checked_add(after_epoch)
}

/// The token's algorithm, spelled exactly as JOSE does.
fn jose_algorithm(header: &JoseHeader) -> Result<(Algorithm, &'static str), AuthError> {
    match parse_algorithm(&header.alg) {
        Some((algorithm, name)) if name == header.alg => Ok((algorithm, name)),
        _ => Err(AuthError::WrongAlgorithm {
            expected: "an algorithm of the issuer's key (HS*, RS*, PS*, ES256, ES384 or EdDSA)",
            found: header.alg.clone(),
        }),
    }
}

/// The `iss` of a token, read before verifying it, to choose the keys it is verified with.
fn unverified_issuer(token: &str) -> Result<String, AuthError> {
    #[derive(Deserialize)]
    struct Iss {
        iss: Option<serde_json::Value>,
    }
    let payload = token
        .split('.')
        .nth(1)
        .ok_or(AuthError::MalformedToken("no payload"))?;
    let bytes = ENGINE
        .decode(payload)
        .map_err(|_| AuthError::MalformedToken("the payload is not base64url"))?;
    let claims: Iss = serde_json::from_slice(&bytes)
        .map_err(|_| AuthError::MalformedToken("the payload is not a JSON object"))?;
    match claims.iss {
        Some(serde_json::Value::String(iss)) => Ok(iss),
        Some(_) => Err(AuthError::MalformedClaims(
            "`iss` is not a string".to_owned(),
        )),
        None => Err(AuthError::MissingClaim("iss".to_owned())),
    }
}

/// An issuer's keys from its configured material: the algorithms follow from the key's type.
fn keys(issuer: &str, key: &str, jwks_refresh: Duration) -> Result<Keys, IssuerSetupError> {
    let text = key.trim();
    if text.is_empty() {
        return Err(IssuerSetupError::EmptyKey(issuer.to_owned()));
    }
    if text.starts_with("https://") || text.starts_with("http://") {
        let set = KeySet::builder(text)
            .refresh(jwks_refresh)
            .build()
            .map_err(|e| IssuerSetupError::Jwks {
                issuer: issuer.to_owned(),
                reason: e.to_string(),
            })?;
        return Ok(Keys::Jwks(set));
    }
    if !text.starts_with("-----BEGIN") {
        // The secret is used exactly as configured.
        return Ok(Keys::Static {
            key: DecodingKey::from_secret(key.as_bytes()),
            algorithms: vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512],
        });
    }
    if text.contains("PRIVATE KEY-----") {
        return Err(IssuerSetupError::PrivateKey(issuer.to_owned()));
    }
    let probe = |key: &DecodingKey, algorithm| {
        jsonwebtoken::crypto::verify("AA", b"probe", key, algorithm).is_ok()
    };
    if let Ok(key) = DecodingKey::from_ec_pem(text.as_bytes()) {
        for algorithm in [Algorithm::ES256, Algorithm::ES384] {
            if probe(&key, algorithm) {
                return Ok(Keys::Static {
                    key,
                    algorithms: vec![algorithm],
                });
            }
        }
    }
    if let Ok(key) = DecodingKey::from_ed_pem(text.as_bytes())
        && key.as_bytes().len() == 32
        && probe(&key, Algorithm::EdDSA)
    {
        return Ok(Keys::Static {
            key,
            algorithms: vec![Algorithm::EdDSA],
        });
    }
    match DecodingKey::from_rsa_pem(text.as_bytes()) {
        Ok(key) if probe(&key, Algorithm::RS256) => Ok(Keys::Static {
            key,
            algorithms: vec![
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
            ],
        }),
        Ok(_) => Err(IssuerSetupError::InvalidPublicKey {
            issuer: issuer.to_owned(),
            reason: "the RSA key does not parse".to_owned(),
        }),
        Err(error) => Err(IssuerSetupError::InvalidPublicKey {
            issuer: issuer.to_owned(),
            reason: error.to_string(),
        }),
    }
}
