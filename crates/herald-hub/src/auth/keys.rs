//! Which tokens the hub accepts: key material and algorithm per role, and signature checks.

use std::fmt;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::claims::RawClaims;
use super::jwks::{KeyError, KeySet};
use super::{AuthError, Claims, Role};

/// Algorithms the hub verifies, as configuration spells them.
const SUPPORTED_ALGORITHMS: &str = "HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, \
                                    PS512, ES256, ES384, EdDSA";

/// The key and algorithm one role's tokens must be signed with.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyConfig {
    /// The shared secret for HS256/384/512, or a PEM public key (`PUBLIC KEY`, `RSA PUBLIC KEY`
    /// or a `CERTIFICATE`) for the RSA, ECDSA and EdDSA algorithms.
    pub key: String,
    /// The JWS algorithm, e.g. `HS256`, `RS256`, `ES256`, `EdDSA` (case-insensitive). Empty
    /// means `HS256`, the reference hub's default.
    pub algorithm: String,
}

impl KeyConfig {
    /// A key with its algorithm.
    pub fn new(key: impl Into<String>, algorithm: impl Into<String>) -> KeyConfig {
        KeyConfig {
            key: key.into(),
            algorithm: algorithm.into(),
        }
    }
}

/// Never prints the key: it may be a shared secret.
impl fmt::Debug for KeyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyConfig")
            .field("key", &"<redacted>")
            .field("algorithm", &self.algorithm)
            .finish()
    }
}

/// Why a key configuration was refused when the hub was set up.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthSetupError {
    /// The algorithm is unknown or not supported.
    #[error(
        "unsupported JWT algorithm {algorithm:?} for the {role} key (supported: {SUPPORTED_ALGORITHMS})"
    )]
    UnsupportedAlgorithm {
        /// The role being configured.
        role: Role,
        /// The algorithm as configured.
        algorithm: String,
    },
    /// The key is empty.
    #[error("the {role} JWT key is empty")]
    EmptyKey {
        /// The role being configured.
        role: Role,
    },
    /// A PEM key was given with an HMAC algorithm.
    #[error(
        "the {role} JWT key is a PEM key but the algorithm {algorithm} needs a shared secret; \
         configure an RS*, PS*, ES* or EdDSA algorithm for a PEM public key"
    )]
    PemWithHmac {
        /// The role being configured.
        role: Role,
        /// The configured HMAC algorithm.
        algorithm: String,
    },
    /// A private key was given where the public key belongs.
    #[error(
        "the {role} JWT key is a private key; configure its public key (PEM `PUBLIC KEY` or \
         `CERTIFICATE`) instead, the hub only verifies"
    )]
    PrivateKey {
        /// The role being configured.
        role: Role,
    },
    /// The PEM could not be read as a public key for the algorithm.
    #[error("the {role} JWT key is not a valid PEM public key for {algorithm}: {reason}")]
    InvalidPublicKey {
        /// The role being configured.
        role: Role,
        /// The configured algorithm.
        algorithm: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Verifies tokens for both roles with their own keys.
#[derive(Clone)]
pub struct Authorizer {
    publisher: Option<Verifier>,
    subscriber: Option<Verifier>,
    /// Clock leeway on `exp` and `nbf`, in seconds.
    leeway: u64,
    /// Refuses Mercure 1.0 access tokens (`typ: at+jwt`): on a hub that serves both
    /// generations, one never stands for a 0.x token.
    refuse_access_tokens: bool,
    /// The Mercure 1.0 access tokens' issuers, when the hub serves 1.0.
    access: Option<super::access::AccessTokens>,
}

/// How one role's tokens are verified (two per hub, so the size difference does not matter).
#[derive(Clone)]
#[allow(clippy::large_enum_variant)]
enum Verifier {
    /// One configured key and algorithm.
    Static {
        name: &'static str,
        key: DecodingKey,
        validation: Validation,
    },
    /// The keys of a JWK Set, each with the algorithms it allows.
    Jwks(KeySet),
}

impl Verifier {
    fn describe(&self) -> String {
        match self {
            Verifier::Static { name, .. } => (*name).to_owned(),
            Verifier::Jwks(set) => format!("JWK Set {}", set.url()),
        }
    }
}

/// Never prints keys.
impl fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorizer")
            .field(
                "publisher",
                &self.publisher.as_ref().map(Verifier::describe),
            )
            .field(
                "subscriber",
                &self.subscriber.as_ref().map(Verifier::describe),
            )
            .finish()
    }
}

impl Authorizer {
    /// Builds the verifiers. A role without a key accepts no token ([`AuthError::RoleNotConfigured`]).
    ///
    /// Tokens are checked with no clock leeway on `exp` and `nbf`, as in the reference hub; see
    /// [`Authorizer::with_leeway`].
    pub fn new(
        publisher: Option<KeyConfig>,
        subscriber: Option<KeyConfig>,
    ) -> Result<Authorizer, AuthSetupError> {
        Ok(Authorizer {
            publisher: publisher
                .map(|config| Verifier::new(Role::Publisher, &config))
                .transpose()?,
            subscriber: subscriber
                .map(|config| Verifier::new(Role::Subscriber, &config))
                .transpose()?,
            leeway: 0,
            refuse_access_tokens: false,
            access: None,
        })
    }

    /// Refuses Mercure 1.0 access tokens (`typ: at+jwt`) as 0.x tokens, whatever key signed
    /// them ([`AuthError::AccessTokenOnLegacy`]).
    pub fn refusing_access_tokens(mut self) -> Authorizer {
        self.refuse_access_tokens = true;
        self
    }

    /// Verifies Mercure 1.0 access tokens with these issuers' keys.
    pub fn access_tokens(mut self, access: super::access::AccessTokens) -> Authorizer {
        self.access = Some(access);
        self
    }

    /// The Mercure 1.0 access-token verifier, if the hub has trusted issuers.
    pub fn access(&self) -> Option<&super::access::AccessTokens> {
        self.access.as_ref()
    }

    /// Verifies `role`'s tokens with the keys of a JWK Set, instead of a configured key.
    pub fn key_set(mut self, role: Role, set: KeySet) -> Authorizer {
        let verifier = Some(Verifier::Jwks(set));
        match role {
            Role::Publisher => self.publisher = verifier,
            Role::Subscriber => self.subscriber = verifier,
        }
        self
    }

    /// The JWK Set `role`'s tokens are verified with, if any.
    pub fn jwks(&self, role: Role) -> Option<&KeySet> {
        match self.verifier(role)? {
            Verifier::Jwks(set) => Some(set),
            Verifier::Static { .. } => None,
        }
    }

    /// Tolerates clocks that differ by up to `leeway` when checking `exp` and `nbf`.
    pub fn with_leeway(mut self, leeway: Duration) -> Authorizer {
        self.leeway = leeway.as_secs();
        for verifier in [&mut self.publisher, &mut self.subscriber]
            .into_iter()
            .flatten()
        {
            if let Verifier::Static { validation, .. } = verifier {
                validation.leeway = leeway.as_secs();
            }
        }
        self
    }

    /// Whether tokens are accepted for `role`.
    pub fn has_key(&self, role: Role) -> bool {
        self.verifier(role).is_some()
    }

    /// The algorithm configured for `role`, as JOSE spells it (`None` for a JWK Set, whose
    /// keys each have their own).
    pub fn algorithm(&self, role: Role) -> Option<&'static str> {
        match self.verifier(role)? {
            Verifier::Static { name, .. } => Some(name),
            Verifier::Jwks(_) => None,
        }
    }

    fn verifier(&self, role: Role) -> Option<&Verifier> {
        match role {
            Role::Publisher => self.publisher.as_ref(),
            Role::Subscriber => self.subscriber.as_ref(),
        }
    }

    /// Verifies a compact JWS for `role` and returns its Mercure claims.
    ///
    /// Only the configured algorithm is accepted (`alg: none` never is); the signature, `exp` and
    /// `nbf` are checked when present; `aud` is not checked (Mercure 0.x defines none). The claims
    /// come from `mercure`, or from `https://mercure.rocks/` when that namespaced claim is present.
    ///
    /// For a role verified with a JWK Set, only the keys already cached are used; see
    /// [`Authorizer::verify_fetching`].
    pub fn verify(&self, role: Role, token: &str) -> Result<Claims, AuthError> {
        let verifier = self
            .verifier(role)
            .ok_or(AuthError::RoleNotConfigured(role))?;
        let header = peek_header(token)?;
        if self.refuse_access_tokens && header.is_access_token() {
            return Err(AuthError::AccessTokenOnLegacy);
        }
        match verifier {
            Verifier::Static {
                name,
                key,
                validation,
            } => {
                if header.alg != *name {
                    return Err(AuthError::WrongAlgorithm {
                        expected: name,
                        found: header.alg,
                    });
                }
                decode(token, key, validation, name)
            }
            Verifier::Jwks(set) => {
                let algorithm = jwks_algorithm(&header.alg)?;
                let key = set
                    .cached(header.kid.as_deref(), algorithm)
                    .map_err(key_error)?
                    .ok_or_else(|| key_error(KeyError::Unknown(header.kid.clone())))?;
                self.decode_with(token, &key, algorithm)
            }
        }
    }

    /// Like [`Authorizer::verify`], and for a role verified with a JWK Set, fetches the set
    /// when the token names a key the cache lacks (at most once per refresh interval, waiting
    /// at most about one fetch timeout).
    pub async fn verify_fetching(&self, role: Role, token: &str) -> Result<Claims, AuthError> {
        let Some(Verifier::Jwks(set)) = self.verifier(role) else {
            return self.verify(role, token);
        };
        let header = peek_header(token)?;
        if self.refuse_access_tokens && header.is_access_token() {
            return Err(AuthError::AccessTokenOnLegacy);
        }
        let algorithm = jwks_algorithm(&header.alg)?;
        let key = set
            .key(header.kid.as_deref(), algorithm)
            .await
            .map_err(key_error)?;
        self.decode_with(token, &key, algorithm)
    }

    fn decode_with(
        &self,
        token: &str,
        key: &DecodingKey,
        algorithm: Algorithm,
    ) -> Result<Claims, AuthError> {
        let mut validation = validation(algorithm);
        validation.leeway = self.leeway;
        let name = parse_algorithm(&format!("{algorithm:?}")).map_or("", |(_, name)| name);
        decode(token, key, &validation, name)
    }
}

/// The algorithm of a token verified with a JWK Set: never `none` (refused earlier) nor HMAC.
pub(super) fn jwks_algorithm(alg: &str) -> Result<Algorithm, AuthError> {
    match parse_algorithm(alg) {
        Some((algorithm, _)) if !alg.starts_with("HS") && alg == format!("{algorithm:?}") => {
            Ok(algorithm)
        }
        _ => Err(AuthError::WrongAlgorithm {
            expected: JWKS_ALGORITHMS,
            found: alg.to_owned(),
        }),
    }
}

/// What a JWK Set's tokens may be signed with, as refusals name it.
const JWKS_ALGORITHMS: &str =
    "an asymmetric algorithm of the JWK Set (RS*, PS*, ES256, ES384 or EdDSA)";

pub(super) fn key_error(error: KeyError) -> AuthError {
    match error {
        KeyError::Unavailable => AuthError::KeySetUnavailable,
        KeyError::Algorithm(algorithm) => AuthError::WrongAlgorithm {
            expected: JWKS_ALGORITHMS,
            found: format!("{algorithm:?}"),
        },
        other => AuthError::UnknownKey(other.to_string()),
    }
}

fn decode(
    token: &str,
    key: &DecodingKey,
    validation: &Validation,
    name: &'static str,
) -> Result<Claims, AuthError> {
    let data = jsonwebtoken::decode::<RawClaims>(token, key, validation)
        .map_err(|error| map_jwt_error(error, name))?;
    let claims = Claims::from_raw(data.claims)?;
    // RFC 7519: not accepted on or after `exp`. The library compares whole seconds, which
    // accepts a token up to a second after it expired.
    let leeway = Duration::from_secs(validation.leeway);
    if let Some(expires_at) = claims.expires_at
        && SystemTime::now() >= expires_at + leeway
    {
        return Err(AuthError::Expired);
    }
    Ok(claims)
}

/// What every token is checked against: its signature with `algorithm`, `exp` and `nbf` when
/// present and without leeway, no audience.
fn validation(algorithm: Algorithm) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.required_spec_claims.clear();
    validation.leeway = 0;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.validate_aud = false;
    validation
}

impl Verifier {
    fn new(role: Role, config: &KeyConfig) -> Result<Verifier, AuthSetupError> {
        let (algorithm, name) = parse_algorithm(&config.algorithm).ok_or_else(|| {
            AuthSetupError::UnsupportedAlgorithm {
                role,
                algorithm: config.algorithm.clone(),
            }
        })?;
        let text = config.key.trim();
        if text.is_empty() {
            return Err(AuthSetupError::EmptyKey { role });
        }
        let invalid = |reason: String| AuthSetupError::InvalidPublicKey {
            role,
            algorithm: name.to_owned(),
            reason,
        };
        let key = match algorithm {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                if text.starts_with("-----BEGIN") {
                    return Err(AuthSetupError::PemWithHmac {
                        role,
                        algorithm: name.to_owned(),
                    });
                }
                // The secret is used exactly as configured, surrounding whitespace included.
                DecodingKey::from_secret(config.key.as_bytes())
            }
            _ if text.contains("PRIVATE KEY-----") => {
                return Err(AuthSetupError::PrivateKey { role });
            }
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => DecodingKey::from_rsa_pem(text.as_bytes())
                .map_err(|e| invalid(format!("not an RSA public key ({e})")))?,
            Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(text.as_bytes())
                .map_err(|e| invalid(format!("not an ECDSA public key ({e})")))?,
            Algorithm::EdDSA => {
                let key = DecodingKey::from_ed_pem(text.as_bytes())
                    .map_err(|e| invalid(format!("not an Ed25519 public key ({e})")))?;
                if key.as_bytes().len() != 32 {
                    return Err(invalid("an Ed25519 public key is 32 bytes long".to_owned()));
                }
                key
            }
        };
        // Build a verifier once so that a key of the wrong curve is refused now rather than at
        // the first request (RSA keys are only parsed when a signature is checked).
        if let Err(e) = jsonwebtoken::crypto::verify("AA", b"probe", &key, algorithm) {
            return Err(invalid(e.to_string()));
        }
        Ok(Verifier::Static {
            name,
            key,
            validation: validation(algorithm),
        })
    }
}

/// Maps a configured algorithm name (case-insensitive, empty = HS256) to the algorithm and its
/// JOSE spelling.
pub(super) fn parse_algorithm(configured: &str) -> Option<(Algorithm, &'static str)> {
    const TABLE: [(Algorithm, &str); 12] = [
        (Algorithm::HS256, "HS256"),
        (Algorithm::HS384, "HS384"),
        (Algorithm::HS512, "HS512"),
        (Algorithm::RS256, "RS256"),
        (Algorithm::RS384, "RS384"),
        (Algorithm::RS512, "RS512"),
        (Algorithm::PS256, "PS256"),
        (Algorithm::PS384, "PS384"),
        (Algorithm::PS512, "PS512"),
        (Algorithm::ES256, "ES256"),
        (Algorithm::ES384, "ES384"),
        (Algorithm::EdDSA, "EdDSA"),
    ];
    let configured = configured.trim();
    let configured = if configured.is_empty() {
        "HS256"
    } else {
        configured
    };
    TABLE
        .into_iter()
        .find(|(_, name)| name.eq_ignore_ascii_case(configured))
}

/// The parts of a JOSE header read before verifying.
pub(super) struct JoseHeader {
    pub(super) alg: String,
    pub(super) kid: Option<String>,
    /// The media type of the token (`at+jwt` for a Mercure 1.0 access token).
    pub(super) typ: Option<String>,
}

impl JoseHeader {
    /// Whether the token is an RFC 9068 access token: `typ` is `at+jwt` or
    /// `application/at+jwt`, in any case.
    pub(super) fn is_access_token(&self) -> bool {
        self.typ.as_deref().is_some_and(|typ| {
            typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt")
        })
    }
}

/// Whether `token` says it is a Mercure 1.0 access token (`typ: at+jwt`); false for anything
/// that is not a readable JWS.
pub fn is_access_token(token: &str) -> bool {
    peek_header(token).is_ok_and(|header| header.is_access_token())
}

/// Reads the `alg` (and `kid`) of a compact JWS without trusting anything else in it, to
/// refuse `alg: none` and algorithm substitution with a precise reason.
pub(super) fn peek_header(token: &str) -> Result<JoseHeader, AuthError> {
    #[derive(Deserialize)]
    struct RawHeader {
        alg: Option<String>,
        kid: Option<String>,
        typ: Option<String>,
    }
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::MalformedToken(
            "not a JWS in compact serialization (three base64url parts separated by dots)",
        ));
    };
    let header = ENGINE
        .decode(header)
        .map_err(|_| AuthError::MalformedToken("the JOSE header is not base64url"))?;
    let header: RawHeader = serde_json::from_slice(&header)
        .map_err(|_| AuthError::MalformedToken("the JOSE header is not a JSON object"))?;
    let alg = header
        .alg
        .ok_or(AuthError::MalformedToken("the JOSE header has no `alg`"))?;
    if alg.eq_ignore_ascii_case("none") {
        return Err(AuthError::AlgNone);
    }
    Ok(JoseHeader {
        alg,
        kid: header.kid,
        typ: header.typ,
    })
}

/// Base64url, padded or not, as JOSE parts are.
pub(super) const ENGINE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub(super) fn map_jwt_error(
    error: jsonwebtoken::errors::Error,
    expected: &'static str,
) -> AuthError {
    match error.into_kind() {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            AuthError::WrongAlgorithm {
                expected,
                found: "another algorithm".to_owned(),
            }
        }
        ErrorKind::InvalidClaimFormat(claim) => {
            AuthError::MalformedClaims(format!("`{claim}` is not a NumericDate"))
        }
        ErrorKind::Json(error) => AuthError::MalformedClaims(error.to_string()),
        ErrorKind::Base64(_) => AuthError::MalformedToken("a part of the token is not base64url"),
        ErrorKind::Utf8(_) => AuthError::MalformedToken("the token's claims are not UTF-8"),
        other => AuthError::InvalidToken(format!("{other:?}")),
    }
}
