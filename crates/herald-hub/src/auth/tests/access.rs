//! Mercure 1.0 access tokens: keys bound to their issuer and their type, and the claims.

use super::*;

const ISSUER: &str = "https://auth.example.com";
const AUDIENCE: &str = "https://hub.example.com/.well-known/mercure";

fn issuers(list: &[(&str, &str)]) -> Result<AccessTokens, IssuerSetupError> {
    let keys: Vec<IssuerKey> = list
        .iter()
        .map(|(issuer, key)| IssuerKey {
            issuer: (*issuer).to_owned(),
            key: (*key).to_owned(),
        })
        .collect();
    AccessTokens::new(
        &keys,
        AUDIENCE,
        url::Url::parse(AUDIENCE).expect("url"),
        Duration::from_secs(60),
    )
}

fn at_claims(issuer: &str) -> Value {
    json!({
        "iss": issuer,
        "aud": AUDIENCE,
        "exp": now() + 600,
        "authorization_details": [{
            "type": "https://mercure.rocks/authorization-detail",
            "actions": ["publish", "subscribe"],
            "topics": [{"match": "https://example.com/books/:id", "match_type": "urlpattern"}],
            "payload": {"user": 7},
        }],
    })
}

fn at_token(alg: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.typ = Some("at+jwt".to_owned());
    encode(&header, claims, key).expect("token")
}

fn pem_key(alg: Algorithm, private_pem: &str) -> EncodingKey {
    match alg {
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(private_pem.as_bytes()),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(private_pem.as_bytes()),
        _ => EncodingKey::from_rsa_pem(private_pem.as_bytes()),
    }
    .expect("test private key")
}

#[tokio::test]
async fn b54_each_key_type_allows_its_own_algorithms_only() {
    let access = issuers(&[
        ("hmac", SECRET),
        ("rsa", RSA_PUBLIC),
        ("rsa-cert", RSA_CERT),
        ("ec", EC_PUBLIC),
        ("ed", ED_PUBLIC),
    ])
    .expect("issuers");
    let hmac = EncodingKey::from_secret(SECRET.as_bytes());
    for (issuer, alg, key) in [
        ("hmac", Algorithm::HS256, hmac.clone()),
        ("hmac", Algorithm::HS512, hmac.clone()),
        (
            "rsa",
            Algorithm::RS256,
            pem_key(Algorithm::RS256, RSA_PRIVATE),
        ),
        (
            "rsa",
            Algorithm::PS384,
            pem_key(Algorithm::PS384, RSA_PRIVATE),
        ),
        (
            "rsa-cert",
            Algorithm::RS512,
            pem_key(Algorithm::RS512, RSA_PRIVATE),
        ),
        (
            "ec",
            Algorithm::ES256,
            pem_key(Algorithm::ES256, EC_PRIVATE),
        ),
        (
            "ed",
            Algorithm::EdDSA,
            pem_key(Algorithm::EdDSA, ED_PRIVATE),
        ),
    ] {
        let token = at_token(alg, &key, &at_claims(issuer));
        let claims = access
            .verify(&token)
            .await
            .unwrap_or_else(|e| panic!("{issuer} {alg:?}: {e}"));
        assert_eq!(claims.issuer, issuer);
        assert!(
            claims
                .check_publish(&["https://example.com/books/1"])
                .is_ok()
        );
        assert_eq!(
            claims.payload_for("https://example.com/books/2"),
            Some(json!({"user": 7}))
        );
    }
    // The classic confusion: HMAC signed with the RSA public key's text.
    let confused = at_token(
        Algorithm::HS256,
        &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()),
        &at_claims("rsa"),
    );
    assert!(matches!(
        access.verify(&confused).await,
        Err(AuthError::AlgorithmNotForKey { .. })
    ));
    // An EC key does not verify RSA, an issuer's key never verifies another issuer's token.
    let rsa_for_ec = at_token(
        Algorithm::RS256,
        &pem_key(Algorithm::RS256, RSA_PRIVATE),
        &at_claims("ec"),
    );
    assert!(access.verify(&rsa_for_ec).await.is_err());
    let hmac_as_ed = at_token(Algorithm::HS256, &hmac, &at_claims("ed"));
    assert!(access.verify(&hmac_as_ed).await.is_err());
}

#[tokio::test]
async fn b54_required_claims_and_typ() {
    let access = issuers(&[(ISSUER, SECRET)]).expect("issuers");
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let good = at_claims(ISSUER);
    assert!(
        access
            .verify(&at_token(Algorithm::HS256, &key, &good))
            .await
            .is_ok()
    );
    for (claim, error) in [
        ("exp", AuthError::MissingClaim("exp".into())),
        ("aud", AuthError::MissingClaim("aud".into())),
        ("iss", AuthError::MissingClaim("iss".into())),
    ] {
        let mut claims = good.clone();
        claims.as_object_mut().expect("object").remove(claim);
        let token = at_token(Algorithm::HS256, &key, &claims);
        assert_eq!(access.verify(&token).await.err(), Some(error), "{claim}");
    }
    let plain = encode(&Header::new(Algorithm::HS256), &good, &key).expect("token");
    assert_eq!(
        access.verify(&plain).await.err(),
        Some(AuthError::NotAccessToken)
    );
    let mut wrong_aud = good.clone();
    wrong_aud["aud"] = json!("https://elsewhere.example");
    assert!(matches!(
        access
            .verify(&at_token(Algorithm::HS256, &key, &wrong_aud))
            .await,
        Err(AuthError::WrongAudience(_))
    ));
}

#[test]
fn issuer_keys_are_checked_at_setup() {
    assert_eq!(
        issuers(&[("a", "  ")]).err(),
        Some(IssuerSetupError::EmptyKey("a".into()))
    );
    assert_eq!(
        issuers(&[("a", SECRET), ("a", SECRET)]).err(),
        Some(IssuerSetupError::Duplicate("a".into()))
    );
    assert_eq!(
        issuers(&[("a", RSA_PRIVATE)]).err(),
        Some(IssuerSetupError::PrivateKey("a".into()))
    );
    assert!(matches!(
        issuers(&[(
            "a",
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"
        )]),
        Err(IssuerSetupError::InvalidPublicKey { .. })
    ));
    assert!(matches!(
        issuers(&[("a", "http://auth.example.com/jwks.json")]),
        Err(IssuerSetupError::Jwks { .. })
    ));
}

#[test]
fn a_0x_authorizer_refuses_access_tokens_when_both_generations_are_served() {
    let token = at_token(
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        &json!({"mercure": {"publish": ["*"]}}),
    );
    assert!(
        hub().verify(Role::Publisher, &token).is_ok(),
        "0.x alone ignores typ"
    );
    assert_eq!(
        hub()
            .refusing_access_tokens()
            .verify(Role::Publisher, &token),
        Err(AuthError::AccessTokenOnLegacy)
    );
}
