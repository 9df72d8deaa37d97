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
}

/// Why a token could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot sign the token: {0}")]
pub struct TokenError(#[from] jsonwebtoken::errors::Error);

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
    Ok(jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(key.as_bytes()),
    )?)
}

/// A development configuration (random key for both roles, anonymous subscribers allowed,
/// subscriptions on) and its credentials.
pub fn development(mut config: HubConfig) -> Result<(HubConfig, DevCredentials), TokenError> {
    let bytes: [u8; 32] = rand::rng().random();
    let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    config.publisher_jwt = Some(JwtKey::new(key.clone(), "HS256"));
    config.subscriber_jwt = Some(JwtKey::new(key.clone(), "HS256"));
    config.anonymous = true;
    config.subscriptions = true;
    let publisher_token = hs256_token(&key, serde_json::json!({ "publish": ["*"] }), None)?;
    let subscriber_token = hs256_token(&key, serde_json::json!({ "subscribe": ["*"] }), None)?;
    Ok((
        config,
        DevCredentials {
            key,
            publisher_token,
            subscriber_token,
        },
    ))
}
