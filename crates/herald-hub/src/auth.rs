//! JWT authorization for the Mercure protocol: where a request's token is found, which
//! tokens the hub accepts, what their `mercure` claim allows, and how a refusal explains itself.
//! Mercure 1.0's access tokens, with their trusted issuers and `authorization_details`
//! grants, live in [`access`] and [`details`].
//!
//! The flow for one request is [`extract_token`] (header, then `authorization` query parameter,
//! then cookie), [`check_publish_origin`] for a publish that authenticated with the cookie, then
//! [`Authorizer::verify`] (or [`Authorizer::verify_fetching`] for a role whose keys come from a
//! JWK Set, [`KeySet`]), then [`Claims::check_publish`] or [`Claims::can_receive_private`].
//! Every refusal is an [`AuthError`] whose [`status`](AuthError::status) is 401 for a missing or
//! invalid token and 403 for a valid token (or request) without the right, and whose message and
//! [`www_authenticate`](AuthError::www_authenticate) value say precisely why.

pub mod access;
mod claims;
pub mod details;
mod error;
pub mod jwks;
mod keys;
#[cfg(test)]
mod tests;
mod token;

use std::fmt;

pub use access::{AccessClaims, AccessTokens, IssuerKey, IssuerSetupError};
pub use claims::{Claims, Grants};
pub use error::AuthError;
pub use jwks::{JwksError, KeyError, KeySet, KeySetBuilder};
pub use keys::{AuthSetupError, Authorizer, KeyConfig, is_access_token};
pub(crate) use token::origin_allowed;
pub use token::{TokenSource, check_publish_origin, extract_access_token, extract_token};

/// The cookie the hub reads a token from unless configured otherwise.
pub const DEFAULT_COOKIE_NAME: &str = "mercureAuthorization";
/// The cookie a Mercure 1.0 request's access token is read from unless configured otherwise.
pub const DEFAULT_ACCESS_TOKEN_COOKIE: &str = "__Secure-mercure_access_token";
/// The most selectors a token may list in `publish` or in `subscribe`, as in the reference hub.
pub const MAX_CLAIM_SELECTORS: usize = 1000;
/// The realm named in `WWW-Authenticate` challenges.
pub const REALM: &str = "mercure";

/// Which side of the hub a token is presented to; each may have its own key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Posts updates.
    Publisher,
    /// Receives updates.
    Subscriber,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Publisher => "publisher",
            Role::Subscriber => "subscriber",
        })
    }
}
