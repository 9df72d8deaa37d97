//! What a verified token allows: the `mercure` claim's publish and subscribe selectors and payload.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use super::{AuthError, MAX_CLAIM_SELECTORS};
use crate::topic::{TopicSelector, any_matches, first_unmatched};

#[derive(Deserialize)]
pub(super) struct RawClaims {
    #[serde(default)]
    mercure: Option<MercureClaim>,
    #[serde(default, rename = "https://mercure.rocks/")]
    namespaced: Option<MercureClaim>,
    #[serde(default)]
    exp: Option<serde_json::Value>,
    #[serde(default)]
    sub: Option<serde_json::Value>,
    #[serde(default)]
    jti: Option<serde_json::Value>,
    #[serde(default)]
    iat: Option<serde_json::Value>,
    /// Herald's own claim: `{"herald": {"admin": true}}` lets a publisher token use the
    /// control API.
    #[serde(default)]
    herald: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
struct MercureClaim {
    #[serde(default)]
    publish: Option<Vec<String>>,
    #[serde(default)]
    subscribe: Option<Vec<String>>,
    #[serde(default)]
    payload: Option<serde_json::Value>,
}

/// The Mercure claims of a verified token.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Claims {
    /// Selectors of the topics the token may publish to (`mercure.publish`).
    pub publish: Option<Vec<String>>,
    /// Selectors of the private updates the token may receive (`mercure.subscribe`).
    pub subscribe: Option<Vec<String>>,
    /// Data attached to the subscriber's subscription events (`mercure.payload`).
    pub payload: Option<serde_json::Value>,
    /// When the token expires (`exp`); a subscription must end then.
    pub expires_at: Option<SystemTime>,
    /// The token's subject (`sub`), which the control API disconnects and revokes by.
    pub sub: Option<String>,
    /// The token's ID (`jti`), which the control API revokes by.
    pub jti: Option<String>,
    /// When the token was issued (`iat`), in whole seconds since the Unix epoch.
    pub issued_at: Option<u64>,
    /// Whether the token may use the control API: `{"herald": {"admin": true}}` in a publisher
    /// token.
    pub admin: bool,
}

impl Claims {
    pub(super) fn from_raw(raw: RawClaims) -> Result<Claims, AuthError> {
        let mercure = raw.namespaced.or(raw.mercure).unwrap_or_default();
        for (claim, selectors) in [
            ("publish", &mercure.publish),
            ("subscribe", &mercure.subscribe),
        ] {
            let count = selectors.as_ref().map_or(0, Vec::len);
            if count > MAX_CLAIM_SELECTORS {
                return Err(AuthError::TooManySelectors { claim, count });
            }
        }
        // Kept to the fraction of a second: a token is invalid from its `exp` on, not from the
        // next whole second.
        let expires_at = raw.exp.as_ref().and_then(|exp| {
            let after_epoch = match exp.as_u64() {
                Some(secs) => Duration::from_secs(secs),
                None => Duration::try_from_secs_f64(exp.as_f64()?).ok()?,
            };
            UNIX_EPOCH.checked_add(after_epoch)
        });
        // `sub` and `jti` are strings (RFC 7519); a number is taken as its text rather than
        // refusing a token that was accepted before the control API read them.
        let text = |value: Option<serde_json::Value>| match value? {
            serde_json::Value::String(text) => Some(text),
            serde_json::Value::Number(number) => Some(number.to_string()),
            _ => None,
        };
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let issued_at = raw.iat.as_ref().and_then(|iat| {
            iat.as_u64()
                .or_else(|| iat.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
        });
        let admin = raw
            .herald
            .as_ref()
            .and_then(|h| h.get("admin"))
            .and_then(serde_json::Value::as_bool)
            == Some(true);
        Ok(Claims {
            publish: mercure.publish,
            subscribe: mercure.subscribe,
            payload: mercure.payload,
            expires_at,
            sub: text(raw.sub),
            jti: text(raw.jti),
            issued_at,
            admin,
        })
    }

    /// Who the token says it is, for the control API.
    pub fn identity(&self) -> crate::fanout::Identity {
        crate::fanout::Identity {
            sub: self.sub.clone(),
            jti: self.jti.clone(),
            issued_at: self.issued_at,
        }
    }

    /// The publish selectors, compiled.
    pub fn publish_selectors(&self) -> Vec<TopicSelector> {
        compile(self.publish.as_deref())
    }

    /// The subscribe selectors, compiled (compile once per connection, then use
    /// [`topic::any_matches`](crate::topic::any_matches) per update, or [`Grants`]).
    pub fn subscribe_selectors(&self) -> Vec<TopicSelector> {
        compile(self.subscribe.as_deref())
    }

    /// The selectors of both claims, compiled once.
    pub fn grants(&self) -> Grants {
        Grants {
            publish: self.publish_selectors(),
            subscribe: self.subscribe_selectors(),
        }
    }

    /// Whether the token may publish an update with these topics.
    pub fn can_publish(&self, topics: &[impl AsRef<str>]) -> bool {
        self.check_publish(topics).is_ok()
    }

    /// Like [`can_publish`](Claims::can_publish), with the reason for a refusal.
    pub fn check_publish(&self, topics: &[impl AsRef<str>]) -> Result<(), AuthError> {
        check_publish(&self.publish_selectors(), topics)
    }

    /// Whether the token may receive a private update with these topics (canonical and
    /// alternate): some topic matches some `mercure.subscribe` selector.
    pub fn can_receive_private(&self, topics: &[impl AsRef<str>]) -> bool {
        any_matches(&self.subscribe_selectors(), topics)
    }
}

/// A token's selectors compiled once, for checks repeated per update.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    publish: Vec<TopicSelector>,
    subscribe: Vec<TopicSelector>,
}

impl Grants {
    /// The compiled publish selectors.
    pub fn publish(&self) -> &[TopicSelector] {
        &self.publish
    }

    /// The compiled subscribe selectors.
    pub fn subscribe(&self) -> &[TopicSelector] {
        &self.subscribe
    }

    /// Whether an update with these topics may be published: every topic matches some publish
    /// selector (`*` matches all), and there is at least one publish selector.
    pub fn can_publish(&self, topics: &[impl AsRef<str>]) -> bool {
        self.check_publish(topics).is_ok()
    }

    /// Like [`can_publish`](Grants::can_publish), with the reason for a refusal.
    pub fn check_publish(&self, topics: &[impl AsRef<str>]) -> Result<(), AuthError> {
        check_publish(&self.publish, topics)
    }

    /// Whether a private update with these topics may be received.
    pub fn can_receive_private(&self, topics: &[impl AsRef<str>]) -> bool {
        any_matches(&self.subscribe, topics)
    }
}

fn compile(selectors: Option<&[String]>) -> Vec<TopicSelector> {
    selectors
        .unwrap_or_default()
        .iter()
        .map(|s| TopicSelector::new(s))
        .collect()
}

fn check_publish(selectors: &[TopicSelector], topics: &[impl AsRef<str>]) -> Result<(), AuthError> {
    if selectors.is_empty() {
        return Err(AuthError::NoPublishRights);
    }
    match first_unmatched(selectors, topics) {
        Some(topic) => Err(AuthError::NotAllowedToPublish {
            topic: topic.to_owned(),
        }),
        None => Ok(()),
    }
}
