//! Keys, algorithms and signatures.

use super::*;

#[test]
fn verifies_a_real_hs256_token_so_a_crypto_backend_is_compiled_in() {
    let claims = hub()
        .verify(Role::Publisher, CONFORMANCE_TOKEN)
        .expect("the conformance suite's token is valid");
    assert_eq!(claims.publish, Some(vec!["*".to_owned()]));
    assert_eq!(claims.subscribe, Some(vec!["*".to_owned()]));
    assert_eq!(claims.payload, None);
    assert_eq!(claims.expires_at, None, "tokens without exp are accepted");
    assert!(claims.can_publish(&["https://example.com/anything"]));
}

#[test]
fn returns_payload_and_expiry() {
    let exp = now() + 600;
    let token = hmac_token(
        Algorithm::HS256,
        SUBSCRIBER_SECRET,
        &json!({"exp": exp, "aud": "someone", "mercure": {"subscribe": ["a"], "payload": {"user": 7}}}),
    );
    let claims = hub().verify(Role::Subscriber, &token).expect("valid token");
    assert_eq!(claims.payload, Some(json!({"user": 7})));
    assert_eq!(claims.publish, None);
    assert_eq!(
        claims.expires_at,
        Some(UNIX_EPOCH + Duration::from_secs(exp))
    );
}

#[test]
fn publisher_and_subscriber_keys_are_separate() {
    let publisher = hmac_token(Algorithm::HS256, SECRET, &claims(&["*"], &[]));
    assert!(hub().verify(Role::Publisher, &publisher).is_ok());
    assert_eq!(
        hub().verify(Role::Subscriber, &publisher),
        Err(AuthError::BadSignature)
    );
    let only_publisher = one_key(Role::Publisher, SECRET, "HS256");
    assert!(only_publisher.has_key(Role::Publisher));
    assert!(!only_publisher.has_key(Role::Subscriber));
    assert_eq!(only_publisher.algorithm(Role::Publisher), Some("HS256"));
    let refused = only_publisher.verify(Role::Subscriber, &publisher);
    assert_eq!(refused, Err(AuthError::RoleNotConfigured(Role::Subscriber)));
}

#[test]
fn bad_signatures_are_refused() {
    let wrong_key = hmac_token(Algorithm::HS256, "another secret", &claims(&["*"], &[]));
    assert_eq!(
        hub().verify(Role::Publisher, &wrong_key),
        Err(AuthError::BadSignature)
    );
    // Same signature, different claims.
    let (_, signature) = CONFORMANCE_TOKEN.rsplit_once('.').expect("three parts");
    let forged = format!(
        "{}.{}.{signature}",
        b64(r#"{"alg":"HS256"}"#),
        b64(r#"{"mercure":{"publish":["*"],"subscribe":["*","x"]}}"#)
    );
    assert_eq!(
        hub().verify(Role::Publisher, &forged),
        Err(AuthError::BadSignature)
    );
    let unsigned = format!("{}.", CONFORMANCE_TOKEN.rsplit_once('.').expect("parts").0);
    assert_eq!(
        hub().verify(Role::Publisher, &unsigned),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn expiry_and_not_before_are_enforced() {
    let expired = hmac_token(Algorithm::HS256, SECRET, &json!({"exp": now() - 5}));
    assert_eq!(
        hub().verify(Role::Publisher, &expired),
        Err(AuthError::Expired)
    );
    let lenient = hub().with_leeway(Duration::from_secs(60));
    assert!(lenient.verify(Role::Publisher, &expired).is_ok());
    let early = hmac_token(Algorithm::HS256, SECRET, &json!({"nbf": now() + 60}));
    assert_eq!(
        hub().verify(Role::Publisher, &early),
        Err(AuthError::NotYetValid)
    );
    let started = hmac_token(Algorithm::HS256, SECRET, &json!({"nbf": now() - 1}));
    assert!(hub().verify(Role::Publisher, &started).is_ok());
    let bad_exp = hmac_token(Algorithm::HS256, SECRET, &json!({"exp": "tomorrow"}));
    assert!(matches!(
        hub().verify(Role::Publisher, &bad_exp),
        Err(AuthError::MalformedClaims(_))
    ));
}

#[test]
fn a_token_is_refused_from_its_exp_on_not_a_second_later() {
    // `now()` is the current whole second, so the instant is already at or after it.
    let at_exp = hmac_token(Algorithm::HS256, SECRET, &json!({"exp": now()}));
    assert_eq!(
        hub().verify(Role::Publisher, &at_exp),
        Err(AuthError::Expired)
    );
    // A fractional `exp` is kept to the fraction, so a stream closes at it, not before.
    let exp = now() as f64 + 30.5;
    let fractional = hmac_token(Algorithm::HS256, SECRET, &json!({"exp": exp}));
    let claims = hub()
        .verify(Role::Publisher, &fractional)
        .expect("valid for 30 s");
    assert_eq!(
        claims.expires_at,
        Some(UNIX_EPOCH + Duration::from_secs_f64(exp))
    );
}

#[test]
fn alg_none_is_refused() {
    let payload = b64(r#"{"mercure":{"publish":["*"]}}"#);
    for header in [
        r#"{"alg":"none","typ":"JWT"}"#,
        r#"{"alg":"None"}"#,
        r#"{"alg":"NONE"}"#,
    ] {
        let token = format!("{}.{payload}.", b64(header));
        let error = hub().verify(Role::Publisher, &token).expect_err("alg none");
        assert_eq!(error, AuthError::AlgNone);
        assert_eq!(error.status(), StatusCode::UNAUTHORIZED);
    }
}

#[test]
fn other_algorithms_are_refused() {
    let rs256 = pem_token(Algorithm::RS256, RSA_PRIVATE, &claims(&["*"], &[]));
    assert_eq!(
        hub().verify(Role::Publisher, &rs256),
        Err(AuthError::WrongAlgorithm {
            expected: "HS256",
            found: "RS256".to_owned()
        })
    );
    let hs384 = hmac_token(Algorithm::HS384, SECRET, &claims(&["*"], &[]));
    assert_eq!(
        hub().verify(Role::Publisher, &hs384),
        Err(AuthError::WrongAlgorithm {
            expected: "HS256",
            found: "HS384".to_owned()
        })
    );
    // An HMAC token signed with the public key's text must not pass an RSA hub.
    let rsa_hub = one_key(Role::Publisher, RSA_PUBLIC, "RS256");
    let confused = hmac_token(Algorithm::HS256, RSA_PUBLIC, &claims(&["*"], &[]));
    assert!(matches!(
        rsa_hub.verify(Role::Publisher, &confused),
        Err(AuthError::WrongAlgorithm {
            expected: "RS256",
            ..
        })
    ));
    let es512 = format!("{}.{}.sig", b64(r#"{"alg":"ES512"}"#), b64("{}"));
    assert!(matches!(
        rsa_hub.verify(Role::Publisher, &es512),
        Err(AuthError::WrongAlgorithm { .. })
    ));
}

#[test]
fn rsa_keys_as_public_key_or_certificate() {
    let token = pem_token(Algorithm::RS256, RSA_PRIVATE, &claims(&["a"], &["b"]));
    for public in [RSA_PUBLIC, RSA_CERT] {
        let claims = one_key(Role::Subscriber, public, "RS256")
            .verify(Role::Subscriber, &token)
            .expect("RS256 verifies");
        assert!(claims.can_receive_private(&["b"]));
    }
    let other = one_key(Role::Subscriber, RSA_OTHER_PUBLIC, "RS256");
    assert_eq!(
        other.verify(Role::Subscriber, &token),
        Err(AuthError::BadSignature)
    );
    let ps512 = pem_token(Algorithm::PS512, RSA_PRIVATE, &claims(&["a"], &[]));
    assert!(
        one_key(Role::Publisher, RSA_PUBLIC, "PS512")
            .verify(Role::Publisher, &ps512)
            .is_ok()
    );
}

#[test]
fn ecdsa_and_eddsa_keys() {
    let es = pem_token(Algorithm::ES256, EC_PRIVATE, &claims(&["a"], &[]));
    let es_hub = one_key(Role::Publisher, EC_PUBLIC, "ES256");
    assert!(
        es_hub
            .verify(Role::Publisher, &es)
            .expect("ES256")
            .can_publish(&["a"])
    );
    let ed = pem_token(Algorithm::EdDSA, ED_PRIVATE, &claims(&["a"], &[]));
    let ed_hub = one_key(Role::Publisher, ED_PUBLIC, "eddsa");
    assert!(
        ed_hub
            .verify(Role::Publisher, &ed)
            .expect("EdDSA")
            .can_publish(&["a"])
    );
    // A token signed by another key of the same kind.
    let mut tampered = ed.clone();
    tampered.replace_range(tampered.len() - 4.., "AAAA");
    assert_eq!(
        ed_hub.verify(Role::Publisher, &tampered),
        Err(AuthError::BadSignature)
    );
    assert!(matches!(
        es_hub.verify(Role::Publisher, &ed),
        Err(AuthError::WrongAlgorithm {
            expected: "ES256",
            ..
        })
    ));
}

#[test]
fn setup_refuses_bad_configurations_with_the_reason() {
    let setup = |key: &str, alg: &str| Authorizer::new(Some(KeyConfig::new(key, alg)), None);
    for alg in ["HS1", "ES512", "none", "RSA"] {
        let error = setup(SECRET, alg).expect_err("unsupported");
        assert!(
            matches!(&error, AuthSetupError::UnsupportedAlgorithm { algorithm, .. } if algorithm == alg)
        );
        assert!(error.to_string().contains("publisher key"), "{error}");
    }
    assert_eq!(
        setup("  ", "HS256").expect_err("empty"),
        AuthSetupError::EmptyKey {
            role: Role::Publisher
        }
    );
    assert!(matches!(
        setup(RSA_PUBLIC, "HS256"),
        Err(AuthSetupError::PemWithHmac { .. })
    ));
    assert!(matches!(
        setup(RSA_PRIVATE, "RS256"),
        Err(AuthSetupError::PrivateKey { .. })
    ));
    assert!(matches!(
        setup(EC_PRIVATE, "ES256"),
        Err(AuthSetupError::PrivateKey { .. })
    ));
    for (key, alg) in [
        ("not a pem", "RS256"),
        (
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            "RS256",
        ),
        (EC_PUBLIC, "RS256"),
        (RSA_PUBLIC, "ES256"),
        (ED_PUBLIC, "ES256"),
        (EC_PUBLIC, "ES384"),
        (RSA_PUBLIC, "EdDSA"),
    ] {
        let error = setup(key, alg).expect_err("unusable key");
        assert!(
            matches!(error, AuthSetupError::InvalidPublicKey { .. }),
            "{key} {alg}: {error:?}"
        );
        assert!(error.to_string().contains(alg), "{error}");
    }
    let error = Authorizer::new(None, Some(KeyConfig::new("", "HS256"))).expect_err("empty");
    assert_eq!(error.to_string(), "the subscriber JWT key is empty");
}

#[test]
fn namespaced_claim_is_accepted_and_wins() {
    let token = hmac_token(
        Algorithm::HS256,
        SECRET,
        &json!({
            "mercure": {"publish": ["ignored"]},
            "https://mercure.rocks/": {"publish": ["https://example.com/{id}"], "payload": "p"}
        }),
    );
    let claims = hub().verify(Role::Publisher, &token).expect("valid");
    assert_eq!(
        claims.publish,
        Some(vec!["https://example.com/{id}".to_owned()])
    );
    assert_eq!(claims.payload, Some(json!("p")));
    let only = hmac_token(
        Algorithm::HS256,
        SECRET,
        &json!({"https://mercure.rocks/": {"subscribe": ["s"]}}),
    );
    let claims = hub().verify(Role::Publisher, &only).expect("valid");
    assert!(claims.can_receive_private(&["s"]));
}

#[test]
fn too_many_selectors_are_refused() {
    let many: Vec<String> = (0..=MAX_CLAIM_SELECTORS).map(|i| format!("t{i}")).collect();
    let token = hmac_token(
        Algorithm::HS256,
        SECRET,
        &json!({"mercure": {"subscribe": many}}),
    );
    let error = hub()
        .verify(Role::Publisher, &token)
        .expect_err("1001 selectors");
    assert_eq!(
        error,
        AuthError::TooManySelectors {
            claim: "subscribe",
            count: 1001
        }
    );
    assert_eq!(error.status(), StatusCode::UNAUTHORIZED);
    let limit = &many[..MAX_CLAIM_SELECTORS];
    let token = hmac_token(
        Algorithm::HS256,
        SECRET,
        &json!({"mercure": {"publish": limit}}),
    );
    assert!(hub().verify(Role::Publisher, &token).is_ok());
}

#[test]
fn malformed_tokens_and_claims_are_refused() {
    for token in [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "!!!.e30.sig",
        &format!("{}.e30.sig", b64("[]")),
        &format!("{}.e30.sig", b64("{}")),
    ] {
        let error = hub().verify(Role::Publisher, token).expect_err("malformed");
        assert!(
            matches!(error, AuthError::MalformedToken(_)),
            "{token}: {error:?}"
        );
        assert_eq!(error.error_code(), "invalid_token");
    }
    for bad in [
        json!({"mercure": {"publish": "*"}}),
        json!({"mercure": "all"}),
        json!({"mercure": {"subscribe": [1]}}),
    ] {
        let token = hmac_token(Algorithm::HS256, SECRET, &bad);
        let error = hub()
            .verify(Role::Publisher, &token)
            .expect_err("bad claims");
        assert!(
            matches!(error, AuthError::MalformedClaims(_)),
            "{bad}: {error:?}"
        );
    }
}
