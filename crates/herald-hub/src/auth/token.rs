//! Where a request's token is found (header, query parameter, cookie) and the CSRF origin rule.

use std::fmt;

use http::{HeaderMap, header};

use super::AuthError;

/// Shortest accepted `Authorization` header value (`Bearer ` and a minimal JWT), as in the
/// reference hub.
const MIN_HEADER_LEN: usize = 48;
/// Shortest accepted `authorization` query value, as in the reference hub.
const MIN_QUERY_LEN: usize = 41;

/// Where a request's token was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenSource {
    /// `Authorization: Bearer <token>`.
    Header,
    /// The `authorization` query parameter.
    Query,
    /// The authorization cookie.
    Cookie,
}

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenSource::Header => "Authorization header",
            TokenSource::Query => "authorization query parameter",
            TokenSource::Cookie => "authorization cookie",
        })
    }
}

/// Finds the request's token: the `Authorization: Bearer` header if there is one (everything
/// else is then ignored), else the `authorization` query parameter, else the cookie named
/// `cookie_name` ([`DEFAULT_COOKIE_NAME`] unless configured). `Ok(None)` means anonymous.
///
/// As in the reference hub, there must be exactly one `Authorization` header, with the `Bearer`
/// scheme and at least 48 characters, and exactly one `authorization` query value of at least
/// 41 characters. The `Bearer ` prefix is case-sensitive, as in the reference hub (0.x).
pub fn extract_token(
    headers: &HeaderMap,
    query: Option<&str>,
    cookie_name: &str,
) -> Result<Option<(String, TokenSource)>, AuthError> {
    if let Some(value) = authorization_header(headers)? {
        let Some(token) = value.strip_prefix("Bearer ") else {
            return Err(AuthError::MalformedAuthorizationHeader(
                "it must start with `Bearer ` (case-sensitive): `Authorization: Bearer <token>`",
            ));
        };
        if value.len() < MIN_HEADER_LEN {
            return Err(AuthError::TokenTooShort(TokenSource::Header));
        }
        return Ok(Some((token.trim().to_owned(), TokenSource::Header)));
    }

    if let Some(query) = query {
        let mut values = form_urlencoded::parse(query.as_bytes())
            .filter(|(name, _)| name == "authorization")
            .map(|(_, value)| value);
        if let Some(value) = values.next() {
            if values.next().is_some() {
                return Err(AuthError::MalformedAuthorizationQuery(
                    "more than one `authorization` query parameter",
                ));
            }
            if value.len() < MIN_QUERY_LEN {
                return Err(AuthError::TokenTooShort(TokenSource::Query));
            }
            return Ok(Some((value.into_owned(), TokenSource::Query)));
        }
    }

    cookie_token(headers, cookie_name)
}

/// Finds a Mercure 1.0 request's access token (draft-08): the `Authorization` header, with the
/// `Bearer` scheme in any case, if there is one; else the cookie named `cookie_name`
/// (`__Secure-mercure_access_token` unless configured). A token in the URL (`access_token` or
/// `authorization` query parameter) is refused, never used. `Ok(None)` means anonymous.
pub fn extract_access_token(
    headers: &HeaderMap,
    params: &[(String, String)],
    cookie_name: &str,
) -> Result<Option<(String, TokenSource)>, AuthError> {
    if let Some((name, _)) = params
        .iter()
        .find(|(name, _)| name == "access_token" || name == "authorization")
    {
        return Err(AuthError::TokenInUrl(if name == "access_token" {
            "access_token="
        } else {
            "authorization="
        }));
    }
    if let Some(value) = authorization_header(headers)? {
        let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::MalformedAuthorizationHeader(
                "it must use the Bearer scheme: `Authorization: Bearer <token>`",
            ));
        }
        let token = token.trim_matches(' ');
        if token.is_empty() || !token.bytes().all(is_token68) {
            return Err(AuthError::MalformedAuthorizationHeader(
                "the Bearer token is empty or holds characters a token cannot",
            ));
        }
        return Ok(Some((token.to_owned(), TokenSource::Header)));
    }
    cookie_token(headers, cookie_name)
}

/// The request's one `Authorization` header as text, if it has one: several, or one that is
/// not visible ASCII, are refused.
fn authorization_header(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    let mut authorization = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = authorization.next() else {
        return Ok(None);
    };
    if authorization.next().is_some() {
        return Err(AuthError::MalformedAuthorizationHeader(
            "more than one Authorization header",
        ));
    }
    value.to_str().map(Some).map_err(|_| {
        AuthError::MalformedAuthorizationHeader("it holds non-ASCII or control characters")
    })
}

/// RFC 6750's `b64token` characters.
fn is_token68(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

/// The token in the cookie named `cookie_name`, if any; an empty one is malformed.
fn cookie_token(
    headers: &HeaderMap,
    cookie_name: &str,
) -> Result<Option<(String, TokenSource)>, AuthError> {
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == cookie_name);
    match cookie {
        None => Ok(None),
        Some(cookie) if cookie.value_trimmed().is_empty() => {
            Err(AuthError::MalformedAuthorizationCookie {
                name: cookie_name.to_owned(),
            })
        }
        Some(cookie) => Ok(Some((
            cookie.value_trimmed().to_owned(),
            TokenSource::Cookie,
        ))),
    }
}

/// The CSRF rule for publishing: an update POSTed with the cookie as its credential must come
/// from an allowed origin, taken from `Origin`, or else from the origin of `Referer`; if neither
/// header is there it is refused. `allowed` holds origins (`https://example.com`), `*` (any), or
/// patterns with one `*` (`https://*.example.com`); comparison ignores ASCII case. Tokens from
/// the header or the query parameter are not sent automatically by browsers, so they pass.
///
/// Call it for publish requests before verifying the token. Safe methods need no check.
pub fn check_publish_origin(
    headers: &HeaderMap,
    source: TokenSource,
    allowed: &[String],
) -> Result<(), AuthError> {
    if source != TokenSource::Cookie {
        return Ok(());
    }
    let origin = match headers.get(header::ORIGIN).filter(|v| !v.is_empty()) {
        Some(origin) => String::from_utf8_lossy(origin.as_bytes()).into_owned(),
        None => {
            let referer = headers
                .get(header::REFERER)
                .filter(|v| !v.is_empty())
                .ok_or(AuthError::NoOrigin)?;
            let referer = String::from_utf8_lossy(referer.as_bytes());
            let url = url::Url::parse(&referer)
                .map_err(|_| AuthError::RefererUnparsable(referer.clone().into_owned()))?;
            let mut origin = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
            if let Some(port) = url.port() {
                origin.push_str(&format!(":{port}"));
            }
            origin
        }
    };
    if allowed
        .iter()
        .any(|pattern| origin_allowed(pattern, &origin))
    {
        Ok(())
    } else {
        Err(AuthError::OriginNotAllowed { origin })
    }
}

/// Whether `origin` matches `pattern`: an origin, `*` (any), or an origin with one `*`
/// standing for any run of characters (`https://*.example.com`, `http://localhost:*`);
/// comparison ignores ASCII case.
pub(crate) fn origin_allowed(pattern: &str, origin: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let (pattern, origin) = (pattern.to_ascii_lowercase(), origin.to_ascii_lowercase());
    match pattern.split_once('*') {
        None => pattern == origin,
        Some((prefix, suffix)) => {
            origin.len() >= prefix.len() + suffix.len()
                && origin.starts_with(prefix)
                && origin.ends_with(suffix)
        }
    }
}
