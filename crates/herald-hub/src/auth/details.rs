//! The grants of a Mercure 1.0 access token: the Mercure entries of its
//! `authorization_details` claim (RFC 9396), read strictly.
//!
//! An entry whose `type` is [`DETAIL_TYPE`] is a Mercure grant and must be well formed: a
//! non-empty `actions` array of strings (`publish`, `subscribe`; other strings are ignored), a
//! non-empty `topics` array of `{"match": "...", "match_type": "exact" | "urlpattern"}` objects
//! (`exact` by default, `*` the wildcard of both, no control or format character, a URL pattern
//! that compiles), and an optional `payload` object. A malformed Mercure entry invalidates the
//! whole token: a grant half understood could grant more than its issuer meant. Entries of
//! other types are ignored.

use serde_json::Value;
use url::Url;

use super::{AuthError, MAX_CLAIM_SELECTORS};
use crate::protocol::is_clean_text;
use crate::topic::{MatchType, TopicSelector};

/// The `type` of Mercure's authorization details.
pub const DETAIL_TYPE: &str = "https://mercure.rocks/authorization-detail";
/// The most entries `authorization_details` may hold.
pub const MAX_DETAILS: usize = 100;
/// The longest matcher in a grant, in bytes.
pub const MAX_GRANT_MATCHER: usize = 4096;

/// One Mercure grant.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The grant allows publishing to its topics.
    pub publish: bool,
    /// The grant allows receiving private updates of its topics.
    pub subscribe: bool,
    /// The topics, compiled.
    pub topics: Vec<TopicSelector>,
    /// Data attached to the subscriptions it covers.
    pub payload: Option<Value>,
}

fn invalid(why: impl Into<String>) -> AuthError {
    AuthError::InvalidAuthorizationDetails(why.into())
}

/// The Mercure grants of `details` (the claim's value; absent: no grant), URL patterns
/// resolving against `base`.
pub fn parse_details(details: Option<&Value>, base: &Url) -> Result<Vec<Grant>, AuthError> {
    let Some(details) = details else {
        return Ok(Vec::new());
    };
    let Value::Array(entries) = details else {
        return Err(invalid("it is not an array"));
    };
    if entries.len() > MAX_DETAILS {
        return Err(invalid(format!(
            "it holds {} entries; at most {MAX_DETAILS} are accepted",
            entries.len()
        )));
    }
    let mut grants = Vec::new();
    let mut topics_seen = 0;
    for (n, entry) in entries.iter().enumerate() {
        let Value::Object(entry) = entry else {
            return Err(invalid(format!("entry {n} is not an object")));
        };
        let Some(Value::String(kind)) = entry.get("type") else {
            return Err(invalid(format!("entry {n} has no string `type`")));
        };
        if kind != DETAIL_TYPE {
            continue;
        }
        let grant = grant(entry, base).map_err(|why| invalid(format!("entry {n}: {why}")))?;
        topics_seen += grant.topics.len();
        if topics_seen > MAX_CLAIM_SELECTORS {
            return Err(invalid(format!(
                "its grants list more than {MAX_CLAIM_SELECTORS} topics"
            )));
        }
        grants.push(grant);
    }
    Ok(grants)
}

fn grant(entry: &serde_json::Map<String, Value>, base: &Url) -> Result<Grant, String> {
    let Some(Value::Array(actions)) = entry.get("actions") else {
        return Err("`actions` is missing or not an array".to_owned());
    };
    if actions.is_empty() {
        return Err("`actions` is empty".to_owned());
    }
    let (mut publish, mut subscribe) = (false, false);
    for action in actions {
        match action {
            Value::String(a) if a == "publish" => publish = true,
            Value::String(a) if a == "subscribe" => subscribe = true,
            Value::String(_) => {}
            _ => return Err("an action is not a string".to_owned()),
        }
    }
    let Some(Value::Array(topics)) = entry.get("topics") else {
        return Err("`topics` is missing or not an array".to_owned());
    };
    if topics.is_empty() {
        return Err("`topics` is empty".to_owned());
    }
    if topics.len() > MAX_CLAIM_SELECTORS {
        return Err(format!("more than {MAX_CLAIM_SELECTORS} topics"));
    }
    let topics = topics
        .iter()
        .map(|topic| matcher(topic, base))
        .collect::<Result<Vec<_>, _>>()?;
    let payload = match entry.get("payload") {
        None => None,
        Some(payload @ Value::Object(_)) => Some(payload.clone()),
        Some(_) => return Err("`payload` is not an object".to_owned()),
    };
    Ok(Grant {
        publish,
        subscribe,
        topics,
        payload,
    })
}

fn matcher(topic: &Value, base: &Url) -> Result<TopicSelector, String> {
    let Value::Object(topic) = topic else {
        return Err("a topic is not an object {\"match\": ...}".to_owned());
    };
    let Some(Value::String(text)) = topic.get("match") else {
        return Err("a topic has no string `match`".to_owned());
    };
    if text.is_empty() || text.len() > MAX_GRANT_MATCHER || !is_clean_text(text) {
        return Err(format!(
            "a topic's `match` is empty, longer than {MAX_GRANT_MATCHER} bytes, or holds a \
             control or format character"
        ));
    }
    let match_type = match topic.get("match_type") {
        None => MatchType::Exact,
        Some(Value::String(name)) => MatchType::from_name(name)
            .ok_or_else(|| format!("unknown match_type {name:?} (exact or urlpattern)"))?,
        Some(_) => return Err("`match_type` is not a string".to_owned()),
    };
    TopicSelector::matcher(match_type, text, base)
        .ok_or_else(|| format!("{text:?} is not a valid URL pattern"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn base() -> Url {
        Url::parse("https://hub.example.com/.well-known/mercure").expect("url")
    }

    fn parse(details: Value) -> Result<Vec<Grant>, AuthError> {
        parse_details(Some(&details), &base())
    }

    fn entry(actions: Value, topics: Value) -> Value {
        json!({"type": DETAIL_TYPE, "actions": actions, "topics": topics})
    }

    #[test]
    fn b56_a_well_formed_grant_is_read() {
        let grants = parse(json!([
            entry(json!(["publish", "subscribe", "audit"]), json!([
                {"match": "https://example.com/books/1"},
                {"match": "https://example.com/users/:id", "match_type": "urlpattern"},
            ])),
            {"type": "https://other.example/detail", "whatever": 1},
        ]))
        .expect("valid");
        assert_eq!(grants.len(), 1, "the foreign entry is ignored");
        let grant = &grants[0];
        assert!(grant.publish && grant.subscribe);
        assert!(grant.topics[0].matches("https://example.com/books/1"));
        assert!(!grant.topics[0].matches("https://example.com/books/2"));
        assert!(grant.topics[1].matches("https://example.com/users/7"));
        assert!(parse_details(None, &base()).expect("absent").is_empty());
    }

    #[test]
    fn b56_a_malformed_mercure_entry_invalidates_the_token() {
        let topics = json!([{"match": "a"}]);
        for bad in [
            json!({"type": DETAIL_TYPE}),
            json!("not an array"),
            json!([entry(json!([]), topics.clone())]),
            json!([entry(json!("publish"), topics.clone())]),
            json!([entry(json!([1]), topics.clone())]),
            json!([entry(json!(["publish"]), json!([]))]),
            json!([entry(json!(["publish"]), json!(["a"]))]),
            json!([entry(
                json!(["publish"]),
                json!([{"match": "a", "match_type": "regex"}])
            )]),
            json!([entry(
                json!(["publish"]),
                json!([{"match": "https://x/:id(", "match_type": "urlpattern"}])
            )]),
            json!([entry(json!(["publish"]), json!([{"match": "a\u{0}"}]))]),
            json!([entry(json!(["publish"]), json!([{"match": "a\u{200b}"}]))]),
            json!([entry(json!(["publish"]), json!([{"match": 1}]))]),
            json!([{"type": DETAIL_TYPE, "actions": ["subscribe"], "topics": topics, "payload": "x"}]),
            json!([{"no": "type"}]),
        ] {
            let error = parse(bad.clone()).expect_err(&bad.to_string());
            assert_eq!(error.error_code(), "invalid_token", "{bad}");
        }
    }

    #[test]
    fn b56_too_many_entries_invalidate_the_token() {
        let many: Vec<Value> = (0..=MAX_DETAILS)
            .map(|_| entry(json!(["publish"]), json!([{"match": "a"}])))
            .collect();
        assert!(parse(Value::Array(many)).is_err());
    }

    #[test]
    fn b56_the_wildcard_works_for_both_types() {
        let grants = parse(json!([entry(
            json!(["publish"]),
            json!([
                {"match": "*"}, {"match": "*", "match_type": "urlpattern"}
            ])
        )]))
        .expect("valid");
        assert!(grants[0].topics.iter().all(|t| t.is_wildcard()));
    }
}
