//! Which tokens the hub accepts: key material and algorithm per role, and signature checks.

use std::fmt;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::claims::RawClaims;
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
}

#[derive(Clone)]
struct Verifier {
    name: &'static str,
    key: DecodingKey,
    validation: Validation,
}

/// Never prints keys.
impl fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorizer")
            .field("publisher", &self.publisher.as_ref().map(|v| v.name))
            .field("subscriber", &self.subscriber.as_ref().map(|v| v.name))
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
        })
    }

    /// Tolerates clocks that differ by up to `leeway` when checking `exp` and `nbf`.
    pub fn with_leeway(mut self, leeway: Duration) -> Authorizer {
        for verifier in [&mut self.publisher, &mut self.subscriber]
            .into_iter()
            .flatten()
        {
            verifier.validation.leeway = leeway.as_secs();
        }
        self
    }

    /// Whether tokens are accepted for `role`.
    pub fn has_key(&self, role: Role) -> bool {
        self.verifier(role).is_some()
    }

    /// The algorithm configured for `role`, as JOSE spells it.
    pub fn algorithm(&self, role: Role) -> Option<&'static str> {
        self.verifier(role).map(|v| v.name)
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
    pub fn verify(&self, role: Role, token: &str) -> Result<Claims, AuthError> {
        let verifier = self
            .verifier(role)
            .ok_or(AuthError::RoleNotConfigured(role))?;
        let alg = peek_algorithm(token)?;
        if alg != verifier.name {
            return Err(AuthError::WrongAlgorithm {
                expected: verifier.name,
                found: alg,
            });
        }
        let data = jsonwebtoken::decode::<RawClaims>(token, &verifier.key, &verifier.validation)
            .map_err(|error| map_jwt_error(error, verifier.name))?;
        let claims = Claims::from_raw(data.claims)?;
        // RFC 7519: not accepted on or after `exp`. The library compares whole seconds, which
        // accepts a token up to a second after it expired.
        let leeway = Duration::from_secs(verifier.validation.leeway);
        if let Some(expires_at) = claims.expires_at
            && SystemTime::now() >= expires_at + leeway
        {
            return Err(AuthError::Expired);
        }
        Ok(claims)
    }
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
        let mut validation = Validation::new(algorithm);
        validation.required_spec_claims.clear();
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        Ok(Verifier {
            name,
            key,
            validation,
        })
    }
}

/// Maps a configured algorithm name (case-insensitive, empty = HS256) to the algorithm and its
/// JOSE spelling.
fn parse_algorithm(configured: &str) -> Option<(Algorithm, &'static str)> {
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

/// Reads the `alg` of a compact JWS without trusting anything else in it, to refuse
/// `alg: none` and algorithm substitution with a precise reason.
fn peek_algorithm(token: &str) -> Result<String, AuthError> {
    #[derive(Deserialize)]
    struct JoseHeader {
        alg: Option<String>,
    }
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new()
            .with_encode_padding(false)
            .with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
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
    let header: JoseHeader = serde_json::from_slice(&header)
        .map_err(|_| AuthError::MalformedToken("the JOSE header is not a JSON object"))?;
    let alg = header
        .alg
        .ok_or(AuthError::MalformedToken("the JOSE header has no `alg`"))?;
    if alg.eq_ignore_ascii_case("none") {
        return Err(AuthError::AlgNone);
    }
    Ok(alg)
}

fn map_jwt_error(error: jsonwebtoken::errors::Error, expected: &'static str) -> AuthError {
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
