//! `GET /.well-known/mercure?topic=...` (0.x) or `?match=...` (1.0, also by the `QUERY`
//! method): read the request's generation, authorize the subscriber, register it with the
//! fan-out, replay history when asked, then stream live updates until the client leaves, the
//! token expires or the stream's lifetime ends.
//!
//! The two generations differ only in how the request is read (`legacy` here, `modern`)
//! and in the name of the response's last-event-ID header; the stream is the same.

mod modern;

pub(crate) use modern::verify_access;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use herald_server::{Coalesce, ReplayThenLive, Sse, last_event_id};
use http::header::{AUTHORIZATION, HeaderName, HeaderValue};
use http::{HeaderMap, Method};
use rand::Rng;
use tokio::time::Instant;

use super::{Refusal, claims, query_values};
use crate::auth::{AuthError, Role, is_access_token};
use crate::fanout::{Heartbeats, Registration, Subscriber};
use crate::hub::HubState;
use crate::protocol::{Generation, Markers, Protocol};
use crate::replay::{Replay, replay};
use crate::topic::TopicSelector;
use crate::transport::Since;
use crate::update::Record;

/// Largest single write when several updates are waiting.
const MAX_WRITE: usize = 64 * 1024;
/// The method Mercure 1.0 subscribes with when its matchers are in the body.
pub(crate) const QUERY: &str = "QUERY";

/// What a subscription request asks for, once read and authorized.
struct Plan {
    subscriber: Subscriber,
    /// The last event ID it resumes after, if it sent one.
    requested: Option<String>,
    /// When its token expires.
    expires_at: Option<SystemTime>,
}

pub(crate) async fn subscribe(
    State(state): State<Arc<HubState>>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Refusal> {
    let query = query.as_deref();
    let params = super::params(query);
    let querying = method.as_str() == QUERY;
    let generation = generation(&state, querying, &params, &headers)?;
    let plan = match generation {
        Generation::Legacy => legacy(&state, query, &headers).await?,
        Generation::Modern => {
            modern::plan(&state, params, &headers, querying.then_some(body)).await?
        }
    };
    stream(state, plan).await
}

/// The request's generation: by its parameters, its method and, on a hub serving both, the
/// kind of token in its `Authorization` header.
fn generation(
    state: &HubState,
    querying: bool,
    params: &[(String, String)],
    headers: &HeaderMap,
) -> Result<Generation, Refusal> {
    let protocol = state.config.protocol;
    let mut markers = Markers::default();
    markers.of_params(params);
    if querying {
        markers.modern("the QUERY method");
    }
    if protocol == Protocol::Both {
        token_marker(headers, &mut markers);
    }
    markers.generation(protocol).map_err(Refusal::bad_request)
}

/// Notes the generation of the `Authorization` header's token, if it holds a readable one.
pub(super) fn token_marker(headers: &HeaderMap, markers: &mut Markers) {
    let Some(token) = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .map(|(_, token)| token.trim())
    else {
        return;
    };
    if is_access_token(token) {
        markers.modern("an at+jwt access token");
    } else if token.split('.').count() == 3 {
        markers.legacy("a token without typ at+jwt");
    }
}

/// A Mercure 0.x subscription: `topic` selectors, the `mercure` claim, `lastEventID`.
async fn legacy(
    state: &HubState,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Plan, Refusal> {
    let claims = match claims(state, Role::Subscriber, headers, query).await? {
        Some((claims, _)) => Some(claims),
        None if state.config.anonymous => None,
        None => return Err(AuthError::Missing.into()),
    };
    let topics = query_values(query, "topic");
    if topics.is_empty() {
        return Err(Refusal::bad_request(r#"Missing "topic" parameter."#));
    }
    if topics.len() > state.config.max_topics {
        return Err(Refusal::bad_request(format!(
            "Too many \"topic\" parameters: at most {}",
            state.config.max_topics
        )));
    }
    let selectors: Vec<TopicSelector> = topics.iter().map(|t| TopicSelector::new(t)).collect();
    check_cost(selectors.iter().map(TopicSelector::cost).sum(), state)?;
    let requested = last_event_id(headers, query, &["lastEventID"]).filter(|id| !id.is_empty());
    let mut subscriber = Subscriber::new(
        format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        selectors,
        claims
            .as_ref()
            .map(|c| c.subscribe_selectors())
            .unwrap_or_default(),
    );
    subscriber.payload = claims.as_ref().and_then(|c| c.payload.clone());
    subscriber.identity = claims.as_ref().map(|c| c.identity()).unwrap_or_default();
    Ok(Plan {
        subscriber,
        requested,
        expires_at: claims.as_ref().and_then(|c| c.expires_at),
    })
}

/// Refuses a subscription whose selectors cost more than `max_selector_cost`.
fn check_cost(cost: usize, state: &HubState) -> Result<(), Refusal> {
    if cost > state.config.max_selector_cost {
        return Err(Refusal::bad_request(format!(
            "the topic selectors ask for too much matching work: they cost {cost} (an exact topic \
             counts 1, a URI template 1 per literal and expression, a URL pattern 4 plus 1 per \
             group); the hub accepts at most {} per subscription (max-selector-cost)",
            state.config.max_selector_cost
        )));
    }
    Ok(())
}

/// Registers the subscriber, replays what it asked for, and streams.
async fn stream(state: Arc<HubState>, plan: Plan) -> Result<Response, Refusal> {
    let Plan {
        subscriber,
        requested,
        expires_at,
    } = plan;
    let generation = subscriber.generation;
    let deadline = deadline(state.config.write_timeout, expires_at);

    let announce = state.config.subscriptions;
    // 0.x announces a subscription before it is registered (as the reference hub); 1.0 once
    // it is, so that the event reaches the subscriber it describes.
    if announce && generation == Generation::Legacy {
        crate::subscriptions::announce(&state, &subscriber, true).await;
    }
    // Live first, then history: an update stored in between is in both and sent once.
    let registration = state.fanout.register(subscriber);
    if announce && generation == Generation::Modern {
        crate::subscriptions::announce(&state, &registration.subscriber, true).await;
    }
    let connection = Connection {
        registration,
        state: state.clone(),
        announce,
    };
    let history = match &requested {
        Some(id) => {
            let subscriber = &connection.registration.subscriber;
            let replay = replay(&*state.transport, Since::parse(id), subscriber)
                .await
                .map_err(|_| {
                    Refusal::new(
                        http::StatusCode::SERVICE_UNAVAILABLE,
                        "the hub is shutting down",
                    )
                })?;
            if replay.not_found {
                state.metrics.resume_not_found();
            }
            replay
        }
        None => Replay::default(),
    };

    let clock = connection.registration.clock();
    let live = ReplayThenLive::new(history.records, history.up_to, connection, |r| r.seq)
        .map(|record| record.bytes().clone());
    let until = async move {
        match deadline {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    let counted = state.clone();
    let body = Coalesce::new(live, MAX_WRITE)
        .inspect(move |bytes| counted.metrics.bytes_written(bytes.len()))
        .take_until(Box::pin(until));
    // Heartbeats come from the fan-out's shared tick, not from a timer per subscriber.
    let mut sse = Sse::from_bytes(Heartbeats::new(body, clock));
    if requested.is_some()
        && let Ok(value) = HeaderValue::from_bytes(history.last_event_id.as_bytes())
    {
        let name = match generation {
            Generation::Legacy => "last-event-id",
            Generation::Modern => "mercure-last-event-id",
        };
        sse = sse.header(HeaderName::from_static(name), value);
    }
    let mut response = sse.into_response();
    let headers = response.headers_mut();
    headers.insert("expires", HeaderValue::from_static("0"));
    Ok(response)
}

/// When the stream must end: before the lifetime (drawn between 80 % and 100 % of it, so that
/// reconnections spread out), and no later than the token's expiry.
fn deadline(write_timeout: Duration, expires_at: Option<SystemTime>) -> Option<Instant> {
    let now = Instant::now();
    let lifetime = (!write_timeout.is_zero()).then(|| {
        let factor = rand::rng().random_range(0.8..=1.0);
        now + write_timeout.mul_f64(factor)
    });
    let expiry = expires_at.map(|at| {
        now + at
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
    });
    match (lifetime, expiry) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A subscriber's live queue; when the connection goes away the subscriber is unregistered and,
/// with subscriptions on, its end is announced.
struct Connection {
    registration: Registration,
    state: Arc<HubState>,
    announce: bool,
}

impl Stream for Connection {
    type Item = Arc<Record>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Arc<Record>>> {
        self.registration.queue.poll_recv(cx)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if !self.announce {
            return;
        }
        let state = self.state.clone();
        let subscriber = self.registration.subscriber.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                crate::subscriptions::announce(&state, &subscriber, false).await;
            });
        }
    }
}
