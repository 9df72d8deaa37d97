//! Active subscriptions (A8, and draft-08 for 1.0): the documents describing them, the private
//! updates announcing each start and end, and the topics those updates are published under.
//!
//! Each generation announces its own subscribers in its own shapes: 0.x as JSON-LD under
//! `/.well-known/mercure/subscriptions/{topic}/{subscriber}`, 1.0 as plain JSON with SSE
//! `event: mercure` under `/.well-known/mercure/subscriptions/{match_type}/{match}/{subscriber}`.
//! The two topic shapes differ in their number of segments, which is how an event's generation
//! is told apart: a subscriber never receives the other generation's subscription events.

use std::sync::Arc;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde::{Deserialize, Serialize};

use crate::fanout::{Fanout, Subscriber};
use crate::hub::HubState;
use crate::protocol::Generation;
use crate::topic::{MatchType, TopicSelector};
use crate::update::{Update, generate_id};

/// The SSE event type of Mercure 1.0 subscription events, which publishers may not use.
pub(crate) const EVENT_TYPE: &str = "mercure";

/// RFC 3986 unreserved characters stay, everything else is percent-encoded (1.0 topics).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The path under which subscriptions live.
pub(crate) const SUBSCRIPTIONS_PATH: &str = "/.well-known/mercure/subscriptions";

/// The JSON-LD context of subscription documents.
pub(crate) const CONTEXT: &str = "https://mercure.rocks/";

/// Escapes like a query component: everything but `A-Z a-z 0-9 - _ . ~`, space as `+`.
const QUERY_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

pub(crate) fn escape(text: &str) -> String {
    utf8_percent_encode(text, QUERY_COMPONENT)
        .to_string()
        .replace("%20", "+")
}

pub(crate) fn unescape(text: &str) -> String {
    percent_decode_str(&text.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// `/.well-known/mercure/subscriptions/{topic}/{subscriber}`, both escaped.
pub(crate) fn subscription_topic(selector: &str, subscriber: &str) -> String {
    format!(
        "{SUBSCRIPTIONS_PATH}/{}/{}",
        escape(selector),
        escape(subscriber)
    )
}

/// A segment of a 1.0 subscription topic: percent-encoded once, only unreserved characters
/// left as they are.
pub(crate) fn encode_segment(text: &str) -> String {
    utf8_percent_encode(text, SEGMENT).to_string()
}

/// A segment of a 1.0 subscription topic or API path, decoded (`None`: not UTF-8).
pub(crate) fn decode_segment(text: &str) -> Option<String> {
    percent_decode_str(text)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// `/.well-known/mercure/subscriptions/{match_type}/{match}/{subscriber}`, each variable
/// percent-encoded once (Mercure 1.0).
pub(crate) fn modern_topic(match_type: MatchType, matcher: &str, subscriber: &str) -> String {
    format!(
        "{SUBSCRIPTIONS_PATH}/{}/{}/{}",
        match_type.as_str(),
        encode_segment(matcher),
        encode_segment(subscriber)
    )
}

/// The generation of a subscription event's topic: two segments after the subscriptions path
/// are 0.x (`{topic}/{subscriber}`), three are 1.0 (`{match_type}/{match}/{subscriber}`).
fn event_generation(topic: &str) -> Option<Generation> {
    let rest = topic.strip_prefix(SUBSCRIPTIONS_PATH)?.strip_prefix('/')?;
    match rest.split('/').count() {
        2 => Some(Generation::Legacy),
        3 => Some(Generation::Modern),
        _ => None,
    }
}

/// Whether none of `topics` is a subscription event of another generation than `generation`.
pub(crate) fn same_generation(topics: &[String], generation: Generation) -> bool {
    topics
        .iter()
        .all(|topic| event_generation(topic).is_none_or(|g| g == generation))
}

/// One subscription as a JSON-LD document (0.x), also how a node shares its subscriptions
/// with the others (`match_type` is set for a 1.0 subscription).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SubscriptionDoc {
    #[serde(rename = "@context", skip_serializing_if = "Option::is_none")]
    pub(crate) context: Option<String>,
    pub(crate) id: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) subscriber: String,
    pub(crate) topic: String,
    pub(crate) active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) payload: Option<serde_json::Value>,
    /// 1.0: the matcher's type (`topic` then holds the matcher); absent for 0.x.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) match_type: Option<String>,
}

impl SubscriptionDoc {
    /// The document of `subscriber`'s subscription `index`.
    pub(crate) fn new(subscriber: &Subscriber, index: usize, active: bool) -> SubscriptionDoc {
        let selector = subscriber
            .selectors
            .get(index)
            .map_or("", TopicSelector::as_str);
        let match_type = match subscriber.generation {
            Generation::Legacy => None,
            Generation::Modern => subscriber
                .selectors
                .get(index)
                .map(|s| s.match_type().unwrap_or(MatchType::Exact)),
        };
        SubscriptionDoc {
            context: match_type.is_none().then(|| CONTEXT.to_owned()),
            id: match match_type {
                None => subscription_topic(selector, &subscriber.id),
                Some(match_type) => modern_topic(match_type, selector, &subscriber.id),
            },
            kind: "Subscription".to_owned(),
            subscriber: subscriber.id.clone(),
            topic: selector.to_owned(),
            active,
            payload: subscriber.payload_of(index).cloned(),
            match_type: match_type.map(|m| m.as_str().to_owned()),
        }
    }

    /// The generation of the subscription it describes.
    pub(crate) fn generation(&self) -> Generation {
        if self.match_type.is_some() {
            Generation::Modern
        } else {
            Generation::Legacy
        }
    }

    /// The 1.0 document: plain JSON, `type` `subscription`.
    pub(crate) fn modern(&self) -> ModernDoc {
        ModernDoc {
            id: self.id.clone(),
            kind: "subscription",
            match_type: self
                .match_type
                .clone()
                .unwrap_or_else(|| "exact".to_owned()),
            matcher: self.topic.clone(),
            subscriber: self.subscriber.clone(),
            active: self.active,
            payload: self.payload.clone(),
        }
    }
}

/// One subscription as Mercure 1.0 describes it (plain JSON).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ModernDoc {
    pub(crate) id: String,
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) match_type: String,
    #[serde(rename = "match")]
    pub(crate) matcher: String,
    pub(crate) subscriber: String,
    pub(crate) active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) payload: Option<serde_json::Value>,
}

/// Every subscription of every subscriber connected to this node, without `@context`.
pub(crate) fn node_docs(fanout: &Fanout) -> Vec<SubscriptionDoc> {
    let mut docs: Vec<SubscriptionDoc> = fanout
        .subscribers()
        .iter()
        .flat_map(|s| {
            (0..s.selectors.len()).map(|index| SubscriptionDoc {
                context: None,
                ..SubscriptionDoc::new(s, index, true)
            })
        })
        .collect();
    docs.sort_by(|a, b| a.id.cmp(&b.id));
    docs
}

/// The update announcing subscription `index` of `subscriber`: 0.x as pretty-printed
/// JSON-LD, 1.0 as plain JSON with `event: mercure`; private either way.
fn event(subscriber: &Subscriber, index: usize, active: bool) -> Option<Update> {
    let doc = SubscriptionDoc::new(subscriber, index, active);
    let (data, event_type) = match subscriber.generation {
        Generation::Legacy => (serde_json::to_string_pretty(&doc), None),
        Generation::Modern => (
            serde_json::to_string(&doc.modern()),
            Some(EVENT_TYPE.to_owned()),
        ),
    };
    let data = data
        .inspect_err(|error| tracing::warn!(%error, "cannot serialize a subscription document"))
        .ok()?;
    Some(Update {
        id: generate_id(),
        topics: vec![doc.id],
        data,
        event_type,
        retry: None,
        private: true,
    })
}

/// Publishes one private update per subscription of `subscriber`, saying whether it is active
/// (all at once: a shared log takes them in one round of concurrent appends).
pub(crate) async fn announce(state: &Arc<HubState>, subscriber: &Subscriber, active: bool) {
    state.transport.subscriptions_changed();
    let events =
        (0..subscriber.selectors.len()).filter_map(|index| event(subscriber, index, active));
    let sent = futures::future::join_all(events.map(|update| state.transport.announce(update)));
    for result in sent.await {
        if let Err(error) = result {
            tracing::warn!(%error, "cannot publish a subscription event");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a8_38_topic_escapes_like_a_query_component() {
        assert_eq!(
            subscription_topic("https://example.com/a b/{id}", "urn:uuid:1"),
            "/.well-known/mercure/subscriptions/https%3A%2F%2Fexample.com%2Fa+b%2F%7Bid%7D/urn%3Auuid%3A1"
        );
        assert_eq!(
            unescape("https%3A%2F%2Fexample.com%2Fa+b"),
            "https://example.com/a b"
        );
    }

    #[test]
    fn b61_topic_encodes_each_variable_once() {
        let topic = modern_topic(
            MatchType::UrlPattern,
            "https://example.com/a b/:id",
            "urn:uuid:1",
        );
        assert_eq!(
            topic,
            "/.well-known/mercure/subscriptions/urlpattern/https%3A%2F%2Fexample.com%2Fa%20b%2F%3Aid/urn%3Auuid%3A1"
        );
        assert_eq!(
            decode_segment("https%3A%2F%2Fexample.com%2Fa%20b%2F%3Aid").as_deref(),
            Some("https://example.com/a b/:id")
        );
        assert_eq!(event_generation(&topic), Some(Generation::Modern));
        let legacy = subscription_topic("https://example.com/{id}", "urn:uuid:1");
        assert_eq!(event_generation(&legacy), Some(Generation::Legacy));
        assert!(!same_generation(
            std::slice::from_ref(&topic),
            Generation::Legacy
        ));
        assert!(!same_generation(
            std::slice::from_ref(&legacy),
            Generation::Modern
        ));
        assert!(same_generation(
            &["https://example.com/x".to_owned()],
            Generation::Modern
        ));
    }
}
