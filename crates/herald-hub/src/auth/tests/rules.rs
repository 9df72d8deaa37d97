//! Claim rules, token lookup, the CSRF rule and refusal messages.

use super::*;

#[test]
fn publish_and_private_receive_rules() {
    let claims = Claims {
        publish: Some(vec!["https://example.com/books/{id}".into(), "news".into()]),
        subscribe: Some(vec!["https://example.com/users/foo/{?topic}".into()]),
        ..Claims::default()
    };
    assert!(claims.can_publish(&["https://example.com/books/1", "news"]));
    assert_eq!(
        claims.check_publish(&["https://example.com/books/1", "sport"]),
        Err(AuthError::NotAllowedToPublish {
            topic: "sport".into()
        })
    );
    assert!(claims.can_receive_private(&[
        "https://example.com/books/1",
        "https://example.com/users/foo/?topic=x"
    ]));
    assert!(!claims.can_receive_private(&["https://example.com/books/1"]));
    let grants = claims.grants();
    assert_eq!(grants.publish().len(), 2);
    assert_eq!(grants.subscribe().len(), 1);
    assert!(grants.can_publish(&["news"]));
    assert!(!grants.can_publish(&["sport"]));
    assert!(grants.can_receive_private(&["https://example.com/users/foo/"]));

    let none = Claims::default();
    assert_eq!(
        none.check_publish(&["news"]),
        Err(AuthError::NoPublishRights)
    );
    assert!(!none.can_receive_private(&["news"]));
    let empty = Claims {
        publish: Some(vec![]),
        ..Claims::default()
    };
    assert_eq!(
        empty.check_publish(&["news"]),
        Err(AuthError::NoPublishRights)
    );
    let star = Claims {
        publish: Some(vec!["*".into()]),
        subscribe: Some(vec!["*".into()]),
        ..Claims::default()
    };
    assert!(star.can_publish(&["a", "b"]) && star.can_receive_private(&["a"]));
}

fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            name.clone(),
            HeaderValue::from_str(value).expect("header value"),
        );
    }
    map
}

fn extract(
    pairs: &[(header::HeaderName, &str)],
    query: Option<&str>,
) -> Result<Option<(String, TokenSource)>, AuthError> {
    extract_token(&headers(pairs), query, DEFAULT_COOKIE_NAME)
}

#[test]
fn token_precedence_is_header_then_query_then_cookie() {
    let bearer = format!("Bearer {CONFORMANCE_TOKEN}");
    let query = format!("topic=x&authorization={SUBSCRIBER_SECRET}-{CONFORMANCE_TOKEN}");
    let cookie = "other=1; mercureAuthorization=cookie-token";
    let all = extract(
        &[(header::AUTHORIZATION, &bearer), (header::COOKIE, cookie)],
        Some(&query),
    );
    assert_eq!(
        all,
        Ok(Some((CONFORMANCE_TOKEN.to_owned(), TokenSource::Header)))
    );
    let no_header = extract(&[(header::COOKIE, cookie)], Some(&query)).expect("query");
    assert_eq!(
        no_header,
        Some((
            format!("{SUBSCRIBER_SECRET}-{CONFORMANCE_TOKEN}"),
            TokenSource::Query
        ))
    );
    let cookie_only = extract(&[(header::COOKIE, cookie)], Some("topic=x"));
    assert_eq!(
        cookie_only,
        Ok(Some(("cookie-token".to_owned(), TokenSource::Cookie)))
    );
    assert_eq!(extract(&[(header::COOKIE, "other=1")], None), Ok(None));
    assert_eq!(extract(&[], Some("topic=x")), Ok(None));
    // The header wins even when the query parameter is malformed.
    assert!(
        extract(
            &[(header::AUTHORIZATION, &bearer)],
            Some("authorization=short")
        )
        .is_ok()
    );
}

#[test]
fn cookie_name_and_value_forms() {
    let map = headers(&[
        (header::COOKIE, "a=b"),
        (
            header::COOKIE,
            "custom=\"quoted-token\"; mercureAuthorization=x",
        ),
    ]);
    assert_eq!(
        extract_token(&map, None, "custom"),
        Ok(Some(("quoted-token".to_owned(), TokenSource::Cookie)))
    );
    assert_eq!(extract_token(&map, None, "missing"), Ok(None));
    let empty = extract(&[(header::COOKIE, "mercureAuthorization=")], None).expect_err("empty");
    assert_eq!(
        empty,
        AuthError::MalformedAuthorizationCookie {
            name: DEFAULT_COOKIE_NAME.into()
        }
    );
    assert_eq!(empty.error_code(), "invalid_request");
}

#[test]
fn malformed_authorization_headers_and_queries() {
    let bearer = format!("Bearer {CONFORMANCE_TOKEN}");
    let lower = format!("bearer {CONFORMANCE_TOKEN}");
    for bad in [
        vec![(header::AUTHORIZATION, lower.as_str())],
        vec![
            (header::AUTHORIZATION, bearer.as_str()),
            (header::AUTHORIZATION, bearer.as_str()),
        ],
        vec![(
            header::AUTHORIZATION,
            "Basic dXNlcjpwYXNzd29yZHBhc3N3b3JkcGFzc3dvcmRwYXNzd29yZA==",
        )],
        vec![(header::AUTHORIZATION, CONFORMANCE_TOKEN)],
        vec![(header::AUTHORIZATION, "")],
    ] {
        let error = extract(&bad, None).expect_err("malformed header");
        assert!(
            matches!(error, AuthError::MalformedAuthorizationHeader(_)),
            "{bad:?}"
        );
        assert_eq!(error.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(error.error_code(), "invalid_request");
    }
    let short = extract(&[(header::AUTHORIZATION, "Bearer not.a.jwt")], None);
    assert_eq!(short, Err(AuthError::TokenTooShort(TokenSource::Header)));
    let short = extract(&[], Some("authorization=not.a.jwt"));
    assert_eq!(short, Err(AuthError::TokenTooShort(TokenSource::Query)));
    assert_eq!(
        AuthError::TokenTooShort(TokenSource::Header).error_code(),
        "invalid_token"
    );
    let mut map = HeaderMap::new();
    map.insert(
        header::AUTHORIZATION,
        HeaderValue::from_bytes(b"Bearer \xff").expect("opaque bytes"),
    );
    assert!(extract_token(&map, None, DEFAULT_COOKIE_NAME).is_err());
    let twice = format!("authorization={CONFORMANCE_TOKEN}&authorization={CONFORMANCE_TOKEN}");
    let error = extract(&[], Some(&twice)).expect_err("two query tokens");
    assert!(matches!(error, AuthError::MalformedAuthorizationQuery(_)));
    assert_eq!(error.error_code(), "invalid_request");
    // Percent-encoding in the query is decoded.
    let encoded = format!("authorization={}", CONFORMANCE_TOKEN.replace('.', "%2E"));
    assert_eq!(
        extract(&[], Some(&encoded)),
        Ok(Some((CONFORMANCE_TOKEN.to_owned(), TokenSource::Query)))
    );
}

#[test]
fn csrf_rule_for_cookie_publishing() {
    let allowed = vec![
        "https://app.example.com".to_owned(),
        "https://*.example.org".to_owned(),
    ];
    let check = |pairs: &[(header::HeaderName, &str)], source| {
        check_publish_origin(&headers(pairs), source, &allowed)
    };
    // Tokens that browsers do not send on their own need no origin.
    assert_eq!(check(&[], TokenSource::Header), Ok(()));
    assert_eq!(check(&[], TokenSource::Query), Ok(()));
    assert_eq!(check(&[], TokenSource::Cookie), Err(AuthError::NoOrigin));
    assert_eq!(
        check(
            &[(header::ORIGIN, "https://app.example.com")],
            TokenSource::Cookie
        ),
        Ok(())
    );
    assert_eq!(
        check(
            &[(header::ORIGIN, "HTTPS://APP.example.com")],
            TokenSource::Cookie
        ),
        Ok(())
    );
    assert_eq!(
        check(
            &[(header::ORIGIN, "https://a.example.org")],
            TokenSource::Cookie
        ),
        Ok(())
    );
    assert_eq!(
        check(&[(header::ORIGIN, "https://evil.com")], TokenSource::Cookie),
        Err(AuthError::OriginNotAllowed {
            origin: "https://evil.com".into()
        })
    );
    assert!(check(&[(header::ORIGIN, "null")], TokenSource::Cookie).is_err());
    assert!(
        check(
            &[(header::ORIGIN, "https://example.org")],
            TokenSource::Cookie
        )
        .is_err()
    );
    // Referer fallback, and Origin beats Referer.
    assert_eq!(
        check(
            &[(header::REFERER, "https://app.example.com/page?x=1")],
            TokenSource::Cookie
        ),
        Ok(())
    );
    assert_eq!(
        check(
            &[(header::REFERER, "https://app.example.com:8443/page")],
            TokenSource::Cookie
        ),
        Err(AuthError::OriginNotAllowed {
            origin: "https://app.example.com:8443".into()
        })
    );
    assert_eq!(
        check(
            &[(header::REFERER, "https://app.example.com:443/")],
            TokenSource::Cookie
        ),
        Ok(())
    );
    assert_eq!(
        check(&[(header::REFERER, "not a url")], TokenSource::Cookie),
        Err(AuthError::RefererUnparsable("not a url".into()))
    );
    assert!(
        check(
            &[
                (header::ORIGIN, "https://evil.com"),
                (header::REFERER, "https://app.example.com/")
            ],
            TokenSource::Cookie
        )
        .is_err()
    );
    assert!(
        check(
            &[
                (header::ORIGIN, "https://app.example.com"),
                (header::REFERER, "https://evil.com/")
            ],
            TokenSource::Cookie
        )
        .is_ok()
    );
    // `*` allows every origin.
    let any = vec!["*".to_owned()];
    assert_eq!(
        check_publish_origin(
            &headers(&[(header::ORIGIN, "https://evil.com")]),
            TokenSource::Cookie,
            &any
        ),
        Ok(())
    );
    assert_eq!(
        check_publish_origin(&HeaderMap::new(), TokenSource::Cookie, &any),
        Err(AuthError::NoOrigin)
    );
}

#[test]
fn refusals_say_why_with_the_right_status() {
    let cases = [
        (AuthError::Missing, 401, "invalid_request"),
        (
            AuthError::MalformedAuthorizationHeader("x"),
            401,
            "invalid_request",
        ),
        (AuthError::BadSignature, 401, "invalid_token"),
        (AuthError::Expired, 401, "invalid_token"),
        (AuthError::AlgNone, 401, "invalid_token"),
        (
            AuthError::NotAllowedToPublish { topic: "t".into() },
            403,
            "insufficient_scope",
        ),
        (AuthError::NoPublishRights, 403, "insufficient_scope"),
        (AuthError::Forbidden("no".into()), 403, "insufficient_scope"),
        (
            AuthError::RoleNotConfigured(Role::Publisher),
            401,
            "invalid_token",
        ),
        (
            AuthError::OriginNotAllowed { origin: "o".into() },
            403,
            "invalid_request",
        ),
    ];
    for (error, status, code) in cases {
        assert_eq!(error.status().as_u16(), status, "{error}");
        assert_eq!(error.error_code(), code);
        let challenge = error.www_authenticate();
        assert!(
            challenge.starts_with("Bearer realm=\"mercure\""),
            "{challenge}"
        );
        assert!(
            challenge.contains(&format!(", error=\"{code}\", ")),
            "{challenge}"
        );
        assert!(
            challenge.contains(&format!(
                "error_description=\"{}\"",
                describe(&error.to_string())
            )),
            "{challenge}"
        );
        assert!(HeaderValue::from_str(&challenge).is_ok());
    }
    let expired = AuthError::Expired.www_authenticate();
    assert_eq!(
        expired,
        "Bearer realm=\"mercure\", error=\"invalid_token\", error_description=\"the token has expired\""
    );
    // Topic text cannot break out of the quoted description.
    let hostile = AuthError::NotAllowedToPublish {
        topic: format!("a\"b\\c\u{e9}\n{}", "x".repeat(400)),
    };
    let challenge = hostile.www_authenticate();
    assert!(HeaderValue::from_str(&challenge).is_ok());
    let description = challenge
        .split("error_description=\"")
        .nth(1)
        .expect("description");
    assert!(
        !description.trim_end_matches('"').contains(['"', '\\']),
        "{challenge}"
    );
    assert!(description.ends_with("...\""), "{challenge}");
}

#[test]
fn debug_output_never_shows_keys() {
    let config = KeyConfig::new(SECRET, "HS256");
    assert!(!format!("{config:?}").contains(SECRET));
    let authorizer = Authorizer::new(Some(config), None).expect("valid");
    let debug = format!("{authorizer:?}");
    assert!(
        !debug.contains("ChangeThis") && debug.contains("HS256"),
        "{debug}"
    );
}
