//! How a refusal explains itself: the reason, the HTTP status, and the `WWW-Authenticate` value.

use http::StatusCode;

use super::{MAX_CLAIM_SELECTORS, REALM, Role, TokenSource};

/// Why a request was refused. The message is meant for the client: it is the response body and
/// the `error_description` of [`www_authenticate`](AuthError::www_authenticate).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token was presented and anonymous access is off.
    #[error(
        "no token: send `Authorization: Bearer <JWT>`, the `authorization` query parameter, or the authorization cookie"
    )]
    Missing,
    /// The `Authorization` header is unusable.
    #[error("malformed Authorization header: {0}")]
    MalformedAuthorizationHeader(&'static str),
    /// The `authorization` query parameter is unusable.
    #[error("malformed authorization query parameter: {0}")]
    MalformedAuthorizationQuery(&'static str),
    /// The token in the header or query parameter is too short to be a JWT.
    #[error("the token in the {0} is too short to be a JWT")]
    TokenTooShort(TokenSource),
    /// The authorization cookie is empty.
    #[error("the {name} cookie is empty")]
    MalformedAuthorizationCookie {
        /// The cookie's name.
        name: String,
    },
    /// No key is configured for this role, so no token can be valid.
    #[error("this hub accepts no {0} tokens")]
    RoleNotConfigured(Role),
    /// The token is not a well-formed JWS.
    #[error("malformed token: {0}")]
    MalformedToken(&'static str),
    /// The token is unsigned (`alg: none`).
    #[error("unsigned tokens (`alg: none`) are refused")]
    AlgNone,
    /// The token is signed with another algorithm than the configured one.
    #[error("the token is signed with {found} but this hub expects {expected}")]
    WrongAlgorithm {
        /// The configured algorithm.
        expected: &'static str,
        /// The token's `alg`.
        found: String,
    },
    /// The signature does not verify with the configured key.
    #[error("the token's signature does not match the hub's key")]
    BadSignature,
    /// `exp` is in the past.
    #[error("the token has expired")]
    Expired,
    /// The token was revoked through the control API (until its `exp`).
    #[error("the token was revoked: the hub refuses it until it expires; get a new token")]
    Revoked,
    /// `nbf` is in the future.
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    /// The claims are not valid Mercure claims.
    #[error("invalid claims: {0}")]
    MalformedClaims(String),
    /// `publish` or `subscribe` lists more than [`MAX_CLAIM_SELECTORS`] selectors.
    #[error(
        "the token's mercure.{claim} claim lists {count} selectors; at most {MAX_CLAIM_SELECTORS} are accepted"
    )]
    TooManySelectors {
        /// `publish` or `subscribe`.
        claim: &'static str,
        /// How many it lists.
        count: usize,
    },
    /// No key of the role's JWK Set verifies the token (unknown `kid`, or a key for another
    /// algorithm).
    #[error("the token's key is not in the hub's JWK Set: {0}")]
    UnknownKey(String),
    /// The role's JWK Set could not be fetched yet, so no token can be verified now.
    #[error("the hub cannot fetch its JWK Set to verify the token; retry later")]
    KeySetUnavailable,
    /// The token is invalid for another reason.
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// The token grants no publishing at all.
    #[error("the token's mercure.publish claim is missing or empty: it may not publish")]
    NoPublishRights,
    /// A topic of the update is not covered by the token's publish selectors.
    #[error("the token may not publish to topic {topic:?}")]
    NotAllowedToPublish {
        /// The first refused topic.
        topic: String,
    },
    /// The token lacks a right the request needs.
    #[error("{0}")]
    Forbidden(String),
    /// A cookie-authenticated publish came with neither `Origin` nor `Referer`.
    #[error("an Origin or Referer header is required to publish with the authorization cookie")]
    NoOrigin,
    /// The `Referer` of a cookie-authenticated publish is not a URL.
    #[error("the Referer {0:?} is not a valid URL")]
    RefererUnparsable(String),
    /// A Mercure 1.0 access token (`typ: at+jwt`) was presented with a 0.x request.
    #[error(
        "a Mercure 1.0 access token (typ at+jwt) cannot be used with a Mercure 0.x request; \
         0.x takes a token with the mercure claim"
    )]
    AccessTokenOnLegacy,
    /// A Mercure 1.0 request presented a token that is not an access token.
    #[error(
        "Mercure 1.0 takes an RFC 9068 access token: the token's header must say typ at+jwt \
         (a token with the mercure claim is Mercure 0.x)"
    )]
    NotAccessToken,
    /// The token's issuer is not trusted.
    #[error("the token's issuer {0:?} is not trusted by this hub")]
    UntrustedIssuer(String),
    /// A required claim is missing.
    #[error("the token has no `{0}` claim, which Mercure 1.0 requires")]
    MissingClaim(String),
    /// `aud` does not hold the hub's resource identifier.
    #[error("the token's audience (aud) does not include this hub ({0})")]
    WrongAudience(String),
    /// The algorithm is not one the issuer's key allows.
    #[error(
        "the token is signed with {algorithm}, which the key of issuer {issuer:?} does not allow"
    )]
    AlgorithmNotForKey {
        /// The token's `alg`.
        algorithm: String,
        /// The issuer.
        issuer: String,
    },
    /// `authorization_details` is malformed.
    #[error("invalid authorization_details: {0}")]
    InvalidAuthorizationDetails(String),
    /// The token grants no publishing.
    #[error("the token has no publish grant in authorization_details: it may not publish")]
    NoPublishGrant,
    /// A Mercure 1.0 request carried a token in its URL.
    #[error(
        "Mercure 1.0 takes no token in the URL ({0}): send `Authorization: Bearer <token>` \
         or the access-token cookie"
    )]
    TokenInUrl(&'static str),
    /// A cookie-authenticated publish came from an origin that may not publish.
    #[error("origin {origin:?} is not allowed to publish with the authorization cookie")]
    OriginNotAllowed {
        /// The request's origin.
        origin: String,
    },
}

impl AuthError {
    /// 401 when the token is missing or invalid, 403 when the token is valid but lacks the right
    /// or the request's origin is refused, 503 when the keys to verify it are unavailable.
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::KeySetUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            AuthError::NoPublishRights
            | AuthError::NoPublishGrant
            | AuthError::NotAllowedToPublish { .. }
            | AuthError::Forbidden(_)
            | AuthError::NoOrigin
            | AuthError::RefererUnparsable(_)
            | AuthError::OriginNotAllowed { .. } => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The RFC 6750 error code: `invalid_request` (no token, or no usable place to find one),
    /// `invalid_token` or `insufficient_scope`.
    pub fn error_code(&self) -> &'static str {
        match self {
            AuthError::Missing
            | AuthError::MalformedAuthorizationHeader(_)
            | AuthError::MalformedAuthorizationQuery(_)
            | AuthError::MalformedAuthorizationCookie { .. }
            | AuthError::NoOrigin
            | AuthError::RefererUnparsable(_)
            | AuthError::TokenInUrl(_)
            | AuthError::OriginNotAllowed { .. } => "invalid_request",
            AuthError::NoPublishRights
            | AuthError::NoPublishGrant
            | AuthError::NotAllowedToPublish { .. }
            | AuthError::Forbidden(_) => "insufficient_scope",
            _ => "invalid_token",
        }
    }

    /// The status of the refusal for a Mercure 1.0 request (draft-08, RFC 6750): 401 for a
    /// missing or invalid token, 400 for a malformed presentation (header, cookie, a token in
    /// the URL, a refused origin), 403 for a valid token without the grant, 503 when the keys
    /// cannot be fetched.
    pub fn status_modern(&self) -> StatusCode {
        match self {
            AuthError::KeySetUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            AuthError::Missing => StatusCode::UNAUTHORIZED,
            _ => match self.error_code() {
                "invalid_request" => StatusCode::BAD_REQUEST,
                "insufficient_scope" => StatusCode::FORBIDDEN,
                _ => StatusCode::UNAUTHORIZED,
            },
        }
    }

    /// The `WWW-Authenticate` value for a Mercure 1.0 request: without a token, the bare
    /// challenge (`Bearer realm="mercure"`) pointing at the protected-resource metadata
    /// (RFC 9728) when there is one; otherwise the RFC 6750 error, the metadata too.
    pub fn www_authenticate_modern(&self, metadata: Option<&str>) -> String {
        let mut value = format!("Bearer realm=\"{REALM}\"");
        if *self != AuthError::Missing {
            value.push_str(&format!(
                ", error=\"{}\", error_description=\"{}\"",
                self.error_code(),
                describe(&self.to_string())
            ));
        }
        if let Some(url) = metadata {
            value.push_str(&format!(", resource_metadata=\"{}\"", describe(url)));
        }
        value
    }

    /// The `WWW-Authenticate` value for the refusal, e.g. `Bearer realm="mercure",
    /// error="invalid_token", error_description="the token has expired"`. The description is
    /// restricted to the characters RFC 6750 allows, so the value is always a valid header.
    pub fn www_authenticate(&self) -> String {
        format!(
            "Bearer realm=\"{REALM}\", error=\"{}\", error_description=\"{}\"",
            self.error_code(),
            describe(&self.to_string())
        )
    }
}

/// Keeps an error description inside RFC 6750's `error_description` alphabet (printable ASCII
/// without `"` and `\`) and under 300 characters.
pub(super) fn describe(message: &str) -> String {
    const MAX: usize = 300;
    let mut out: String = message
        .chars()
        .take(MAX)
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            ' '..='~' => c,
            _ => '?',
        })
        .collect();
    if message.chars().nth(MAX).is_some() {
        out.push_str("...");
    }
    out
}
