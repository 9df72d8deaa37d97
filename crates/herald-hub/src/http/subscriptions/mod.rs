//! The subscriptions API (A8 #40-41): the active subscriptions as JSON-LD, for tokens whose
//! subscribe claim covers the requested URL; and, for a Mercure 1.0 access token, in 1.0's
//! shapes ([`modern`]). Each generation sees only its own generation's subscriptions.

mod modern;

use std::sync::Arc;

use axum::extract::{OriginalUri, RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_TYPE, ETAG, HeaderValue, IF_NONE_MATCH};
use http::{HeaderMap, StatusCode, Uri};
use serde::Serialize;

use super::{Refusal, claims};
use crate::auth::{AuthError, Role};
use crate::hub::HubState;
use crate::protocol::Generation;
use crate::subscriptions::{CONTEXT, SUBSCRIPTIONS_PATH, SubscriptionDoc, node_docs, unescape};
use crate::topic::TopicSelector;

#[derive(Serialize)]
struct Collection {
    #[serde(rename = "@context")]
    context: &'static str,
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "lastEventID")]
    last_event_id: String,
    subscriptions: Vec<SubscriptionDoc>,
}

#[derive(Serialize)]
struct Single {
    #[serde(flatten)]
    doc: SubscriptionDoc,
    #[serde(rename = "lastEventID")]
    last_event_id: String,
}

pub(crate) async fn collection(
    State(state): State<Arc<HubState>>,
    OriginalUri(uri): OriginalUri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    respond(&state, &uri, query.as_deref(), &headers, None).await
}

pub(crate) async fn by_path(
    State(state): State<Arc<HubState>>,
    OriginalUri(uri): OriginalUri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let rest = uri
        .path()
        .strip_prefix(SUBSCRIPTIONS_PATH)
        .and_then(|r| r.strip_prefix('/'))
        .unwrap_or_default()
        .to_owned();
    respond(&state, &uri, query.as_deref(), &headers, Some(&rest)).await
}

/// The active subscriptions of `generation`, of this node and, in a cluster, of every other
/// live node, sorted by ID.
async fn cluster_docs(
    state: &HubState,
    generation: Generation,
) -> Result<Vec<SubscriptionDoc>, Refusal> {
    let mut docs = node_docs(&state.fanout);
    let others = state
        .transport
        .other_nodes_subscriptions()
        .await
        .map_err(|error| {
            tracing::warn!(%error, "cannot read the other nodes' subscriptions");
            Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the subscriptions of the cluster's other nodes cannot be read now",
            )
            .retry_after(1)
        })?;
    docs.extend(others.iter().filter_map(|json| {
        serde_json::from_slice::<SubscriptionDoc>(json)
            .ok()
            .map(|doc| SubscriptionDoc {
                context: None,
                ..doc
            })
    }));
    docs.retain(|doc| doc.generation() == generation);
    docs.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(docs)
}

async fn respond(
    state: &HubState,
    uri: &Uri,
    query: Option<&str>,
    headers: &HeaderMap,
    rest: Option<&str>,
) -> Result<Response, Refusal> {
    if super::token_generation(state, query, headers)? == Generation::Modern {
        return modern::respond(state, uri, headers, rest).await;
    }
    let (claims, _) = claims(state, Role::Subscriber, headers, query)
        .await?
        .ok_or(AuthError::Missing)?;
    let requested = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned());
    let allowed: Vec<TopicSelector> = claims
        .subscribe
        .iter()
        .flatten()
        .map(|s| TopicSelector::new(s))
        .collect();
    if !allowed.iter().any(|s| s.matches(&requested)) {
        return Err(Refusal::from(AuthError::Forbidden(format!(
            "the token's mercure.subscribe claim does not cover {requested}"
        ))));
    }
    let last_event_id = state.transport.last_event_id();
    if headers
        .get(IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == last_event_id.as_bytes())
    {
        return Ok(with_etag(
            StatusCode::NOT_MODIFIED.into_response(),
            &last_event_id,
        ));
    }
    let docs = cluster_docs(state, Generation::Legacy).await?;
    let body = match rest.map(|r| r.split('/').collect::<Vec<_>>()).as_deref() {
        None => serde_json::to_vec(&Collection {
            context: CONTEXT,
            id: uri.path().to_owned(),
            kind: "Subscriptions",
            last_event_id: last_event_id.clone(),
            subscriptions: docs,
        }),
        Some([topic]) => {
            let topic = unescape(topic);
            serde_json::to_vec(&Collection {
                context: CONTEXT,
                id: uri.path().to_owned(),
                kind: "Subscriptions",
                last_event_id: last_event_id.clone(),
                subscriptions: docs.into_iter().filter(|d| d.topic == topic).collect(),
            })
        }
        Some([topic, subscriber]) => {
            let (topic, subscriber) = (unescape(topic), unescape(subscriber));
            let Some(doc) = docs
                .into_iter()
                .find(|d| d.topic == topic && d.subscriber == subscriber)
            else {
                return Err(Refusal::new(
                    StatusCode::NOT_FOUND,
                    "no such active subscription",
                ));
            };
            serde_json::to_vec(&Single {
                doc: SubscriptionDoc {
                    context: Some(CONTEXT.to_owned()),
                    ..doc
                },
                last_event_id: last_event_id.clone(),
            })
        }
        Some(_) => return Err(Refusal::new(StatusCode::NOT_FOUND, "no such resource")),
    }
    .map_err(|_| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"))?;
    let mut response = body.into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/ld+json"),
    );
    Ok(with_etag(response, &last_event_id))
}

fn with_etag(mut response: Response, last_event_id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(last_event_id) {
        response.headers_mut().insert(ETAG, value);
    }
    response
}
