//! Development mode: a random key and ready-to-use tokens, so that `herald serve` works with no
//! configuration. Never for production: the tokens grant everything and never expire.

use jsonwebtoken::{EncodingKey, Header};
use rand::Rng;

use crate::config::{HubConfig, JwtKey};

/// The credentials of a development hub.
#[derive(Debug, Clone)]
pub struct DevCredentials {
    /// The random HS256 key, shared by both roles.
    pub key: String,
    /// A token that may publish to every topic.
    pub publisher_token: String,
    /// A token that may receive every private update.
    pub subscriber_token: String,
    /// A token that may publish everywhere and use the control API (`herald.admin`).
    pub admin_token: String,
}

/// Why a token could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot sign the token: {0}")]
pub struct TokenError(jsonwebtoken::errors::Error);

impl From<jsonwebtoken::errors::Error> for TokenError {
    fn from(error: jsonwebtoken::errors::Error) -> TokenError {
        TokenError(error)
    }
}

/// Signs an HS256 token whose `mercure` claim is `mercure` (for example
/// `{"publish": ["*"]}`), with an optional expiry in seconds since the epoch.
pub fn hs256_token(
    key: &str,
    mercure: serde_json::Value,
    exp: Option<u64>,
) -> Result<String, TokenError> {
    let mut claims = serde_json::json!({ "mercure": mercure });
    if let Some(exp) = exp {
        claims["exp"] = exp.into();
    }
    hs256_claims(key, &claims)
}

/// Signs an HS256 token with these claims as they are (for example
/// `{"mercure": {"publish": ["*"]}, "herald": {"admin": true}, "sub": "ops"}`).
pub fn hs256_claims(key: &str, claims: &serde_json::Value) -> Result<String, TokenError> {
    Ok(jsonwebtoken::encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(key.as_bytes()),
    )?)
}

/// Origins a development hub lets pages use it from (CORS): any port of the loopback names, so
/// that a page served by a local development server works.
pub const LOOPBACK_ORIGINS: [&str; 5] = [
    "http://localhost",
    "http://localhost:*",
    "http://127.0.0.1:*",
    "http://[::1]:*",
    "https://localhost:*",
];

/// `config` with a random HS256 key for both roles, and the tokens it signs. Everything else
/// is left as given: `herald serve` turns anonymous subscribers, the subscriptions API, the
/// debug page and [`LOOPBACK_ORIGINS`] on where they are not set explicitly.
pub fn development(mut config: HubConfig) -> Result<(HubConfig, DevCredentials), TokenError> {
    let bytes: [u8; 32] = rand::rng().random();
    let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    config.publisher_jwt = Some(JwtKey::new(key.clone(), "HS256"));
    config.subscriber_jwt = Some(JwtKey::new(key.clone(), "HS256"));
    let publisher_token = hs256_token(&key, serde_json::json!({ "publish": ["*"] }), None)?;
    let subscriber_token = hs256_token(&key, serde_json::json!({ "subscribe": ["*"] }), None)?;
    let admin_token = hs256_claims(
        &key,
        &serde_json::json!({ "mercure": { "publish": ["*"] }, "herald": { "admin": true } }),
    )?;
    Ok((
        config,
        DevCredentials {
            key,
            publisher_token,
            subscriber_token,
            admin_token,
        },
    ))
}
