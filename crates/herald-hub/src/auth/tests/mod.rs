//! Unit tests of token verification, claims and token lookup.

mod access;
mod rules;
mod verify;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use jsonwebtoken::Algorithm;

use super::error::describe;
use super::*;
use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::{Value, json};

/// The key and publisher token of the reference hub's conformance suite.
const SECRET: &str = "!ChangeThisMercureHubJWTSecretKey!";
const CONFORMANCE_TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJtZXJjdXJlIjp7InB1Ymxpc2giOlsiKiJdLCJzdWJzY3JpYmUiOlsiKiJdfX0.bVXdlWXwfw9ySx7-iV5OpUSHo34RkjUdVzDLBcc6l_g";
const SUBSCRIBER_SECRET: &str = "a-different-subscriber-secret";
const RSA_PRIVATE: &str = include_str!("../../../tests/keys/rsa_private.pem");
const RSA_PUBLIC: &str = include_str!("../../../tests/keys/rsa_public.pem");
const RSA_CERT: &str = include_str!("../../../tests/keys/rsa_cert.pem");
const RSA_OTHER_PUBLIC: &str = include_str!("../../../tests/keys/rsa_other_public.pem");
const EC_PRIVATE: &str = include_str!("../../../tests/keys/ec_private.pem");
const EC_PUBLIC: &str = include_str!("../../../tests/keys/ec_public.pem");
const ED_PRIVATE: &str = include_str!("../../../tests/keys/ed_private.pem");
const ED_PUBLIC: &str = include_str!("../../../tests/keys/ed_public.pem");

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn hmac_token(alg: Algorithm, secret: &str, claims: &Value) -> String {
    encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign with a secret")
}

fn pem_token(alg: Algorithm, private_pem: &str, claims: &Value) -> String {
    let key = match alg {
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(private_pem.as_bytes()),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(private_pem.as_bytes()),
        _ => EncodingKey::from_rsa_pem(private_pem.as_bytes()),
    }
    .expect("test private key");
    encode(&Header::new(alg), claims, &key).expect("sign with a private key")
}

fn hub() -> Authorizer {
    Authorizer::new(
        Some(KeyConfig::new(SECRET, "HS256")),
        Some(KeyConfig::new(SUBSCRIBER_SECRET, "")),
    )
    .expect("HMAC keys")
}

fn one_key(role: Role, key: &str, alg: &str) -> Authorizer {
    let config = Some(KeyConfig::new(key, alg));
    match role {
        Role::Publisher => Authorizer::new(config, None),
        Role::Subscriber => Authorizer::new(None, config),
    }
    .expect("valid key")
}

fn b64(json: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

fn claims(publish: &[&str], subscribe: &[&str]) -> Value {
    json!({"mercure": {"publish": publish, "subscribe": subscribe}})
}
