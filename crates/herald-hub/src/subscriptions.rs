//! Active subscriptions (A8): the JSON-LD documents describing them, the private updates
//! announcing each start and end, and the topics those updates are published under.

use std::sync::Arc;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde::{Deserialize, Serialize};

use crate::fanout::{Fanout, Subscriber};
use crate::hub::HubState;
use crate::update::{Update, generate_id};

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

/// One subscription as a JSON-LD document.
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
}

impl SubscriptionDoc {
    pub(crate) fn new(subscriber: &Subscriber, selector: &str, active: bool) -> SubscriptionDoc {
        SubscriptionDoc {
            context: Some(CONTEXT.to_owned()),
            id: subscription_topic(selector, &subscriber.id),
            kind: "Subscription".to_owned(),
            subscriber: subscriber.id.clone(),
            topic: selector.to_owned(),
            active,
            payload: subscriber.payload.clone(),
        }
    }
}

/// Every subscription of every subscriber connected to this node, without `@context`.
pub(crate) fn node_docs(fanout: &Fanout) -> Vec<SubscriptionDoc> {
    let mut docs: Vec<SubscriptionDoc> = fanout
        .subscribers()
        .iter()
        .flat_map(|s| {
            s.selectors.iter().map(|sel| SubscriptionDoc {
                context: None,
                ..SubscriptionDoc::new(s, sel.as_str(), true)
            })
        })
        .collect();
    docs.sort_by(|a, b| a.id.cmp(&b.id));
    docs
}

/// Publishes one private update per subscription of `subscriber`, saying whether it is active
/// (all at once: a shared log takes them in one round of concurrent appends).
pub(crate) async fn announce(state: &Arc<HubState>, subscriber: &Subscriber, active: bool) {
    state.transport.subscriptions_changed();
    let events = subscriber.selectors.iter().filter_map(|selector| {
        let doc = SubscriptionDoc::new(subscriber, selector.as_str(), active);
        let data = serde_json::to_string_pretty(&doc)
            .inspect_err(|error| tracing::warn!(%error, "cannot serialize a subscription document"))
            .ok()?;
        Some(Update {
            id: generate_id(),
            topics: vec![doc.id],
            data,
            event_type: None,
            retry: None,
            private: true,
        })
    });
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
}
