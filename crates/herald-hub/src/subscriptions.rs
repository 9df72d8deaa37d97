//! Active subscriptions (A8): the JSON-LD documents describing them, the private updates
//! announcing each start and end, and the topics those updates are published under.

use std::sync::Arc;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde::Serialize;

use crate::fanout::Subscriber;
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
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SubscriptionDoc {
    #[serde(rename = "@context", skip_serializing_if = "Option::is_none")]
    pub(crate) context: Option<&'static str>,
    pub(crate) id: String,
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) subscriber: String,
    pub(crate) topic: String,
    pub(crate) active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) payload: Option<serde_json::Value>,
}

impl SubscriptionDoc {
    pub(crate) fn new(subscriber: &Subscriber, selector: &str, active: bool) -> SubscriptionDoc {
        SubscriptionDoc {
            context: Some(CONTEXT),
            id: subscription_topic(selector, &subscriber.id),
            kind: "Subscription",
            subscriber: subscriber.id.clone(),
            topic: selector.to_owned(),
            active,
            payload: subscriber.payload.clone(),
        }
    }
}

/// Every subscription of every connected subscriber, without `@context`.
pub(crate) fn all_docs(state: &HubState) -> Vec<SubscriptionDoc> {
    let mut docs: Vec<SubscriptionDoc> = state
        .fanout
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

/// Publishes one private update per subscription of `subscriber`, saying whether it is active.
pub(crate) async fn announce(state: &Arc<HubState>, subscriber: &Subscriber, active: bool) {
    for selector in &subscriber.selectors {
        let doc = SubscriptionDoc::new(subscriber, selector.as_str(), active);
        let data = match serde_json::to_string_pretty(&doc) {
            Ok(data) => data,
            Err(error) => {
                tracing::warn!(%error, "cannot serialize a subscription document");
                continue;
            }
        };
        let update = Update {
            id: generate_id(),
            topics: vec![doc.id.clone()],
            data,
            event_type: None,
            retry: None,
            private: true,
        };
        if let Err(error) = state.transport.announce(update).await {
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
