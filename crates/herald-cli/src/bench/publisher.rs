//! The publisher: updates at a steady rate, each stamped with its sequence number and send time,
//! over several keep-alive connections so that a slow publish answer (nchan answers once it has
//! fanned out) never holds the next update back. Reports the rate it reached beside the rate
//! asked for.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

use super::args::{Endpoint, PublishStyle};
use super::stats::unix_nanos;

/// Requests in flight at most (and keep-alive connections).
const CONCURRENCY: usize = 32;
/// How long one publish may take, answer included, before it counts as failed.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

/// What to publish, where, how fast.
#[derive(Debug)]
pub(crate) struct PublishPlan {
    /// How updates are sent.
    pub(crate) style: PublishStyle,
    /// Where they go: update `i` to `endpoints[i % len]`.
    pub(crate) endpoints: Vec<Endpoint>,
    /// The bearer token, if any.
    pub(crate) token: Option<String>,
    /// The TLS configuration for an https:// endpoint.
    pub(crate) tls: Arc<rustls::ClientConfig>,
    /// Update `i` goes to `topics[i % len]`.
    pub(crate) topics: Vec<String>,
    /// How many updates.
    pub(crate) messages: u64,
    /// Updates per second asked for.
    pub(crate) rate: f64,
    /// Size of each update's data.
    pub(crate) payload_bytes: usize,
}

/// What the publisher did.
#[derive(Debug)]
pub(crate) struct PublishOutcome {
    /// Updates the server accepted.
    pub(crate) accepted: u64,
    /// Updates refused or not answered.
    pub(crate) failed: u64,
    /// The first refusal or error.
    pub(crate) first_error: Option<String>,
    /// From the first send to the last answer.
    pub(crate) elapsed: Duration,
    /// From the first send to the last.
    pub(crate) send_span: Duration,
}

impl PublishOutcome {
    /// Updates sent per second, from the first send to the last: a server that holds publishes
    /// back (or a publisher that cannot keep up) lowers it; the answer to the last one does not.
    pub(crate) fn achieved_rate(&self) -> f64 {
        let sent = self.accepted + self.failed;
        if sent > 1 && !self.send_span.is_zero() {
            (sent - 1) as f64 / self.send_span.as_secs_f64()
        } else {
            sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
        }
    }
}

/// The data of update `seq`: `SEQ SENT_NANOS ` padded with `x` to `size` bytes.
pub(crate) fn payload(seq: u64, sent: u64, size: usize) -> String {
    let mut data = format!("{seq} {sent} ");
    if data.len() < size {
        data.extend(std::iter::repeat_n('x', size - data.len()));
    }
    data
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

impl PublishPlan {
    /// The URIs of each endpoint: one per topic for nchan, one otherwise.
    fn uris(&self) -> anyhow::Result<Vec<Vec<http::Uri>>> {
        let uri = |url: &url::Url| {
            url.as_str()
                .parse::<http::Uri>()
                .with_context(|| format!("unusable publish URL {url}"))
        };
        self.endpoints
            .iter()
            .map(|endpoint| match self.style {
                PublishStyle::Nchan => self
                    .topics
                    .iter()
                    .map(|topic| {
                        let mut url = endpoint.url.clone();
                        url.query_pairs_mut().append_pair("topic", topic);
                        uri(&url)
                    })
                    .collect(),
                PublishStyle::Herald | PublishStyle::RawPost => Ok(vec![uri(&endpoint.url)?]),
            })
            .collect()
    }

    fn request(
        &self,
        uris: &[Vec<http::Uri>],
        seq: u64,
    ) -> anyhow::Result<http::Request<Full<Bytes>>> {
        let topic = (seq % self.topics.len() as u64) as usize;
        let at = (seq % self.endpoints.len() as u64) as usize;
        let (endpoint, uris) = (&self.endpoints[at], &uris[at]);
        let data = payload(seq, unix_nanos(), self.payload_bytes);
        let (uri, content_type, body) = match self.style {
            PublishStyle::Herald => {
                let form = form_urlencoded::Serializer::new(String::new())
                    .append_pair("topic", &self.topics[topic])
                    .append_pair("data", &data)
                    .finish();
                (&uris[0], "application/x-www-form-urlencoded", form)
            }
            PublishStyle::Nchan => (&uris[topic], "text/plain", data),
            PublishStyle::RawPost => (&uris[0], "text/plain", data),
        };
        let mut request = http::Request::post(uri.clone())
            .header(http::header::HOST, &endpoint.host)
            .header(http::header::CONTENT_TYPE, content_type);
        if let Some(token) = &self.token {
            request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        Ok(request.body(Full::new(Bytes::from(body)))?)
    }
}

/// Publishes every update of `plan`, paced from now on.
pub(crate) async fn publish(plan: Arc<PublishPlan>) -> anyhow::Result<PublishOutcome> {
    let uris = Arc::new(plan.uris()?);
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.enforce_http(false);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config((*plan.tls).clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector);
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(CONCURRENCY)
        .build(connector);
    let next = Arc::new(AtomicU64::new(0));
    let accepted = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(Mutex::new(None::<String>));
    let last_send = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (plan, uris, client) = (Arc::clone(&plan), Arc::clone(&uris), client.clone());
            let (next, accepted, failed) = (
                Arc::clone(&next),
                Arc::clone(&accepted),
                Arc::clone(&failed),
            );
            let (first_error, last_send) = (Arc::clone(&first_error), Arc::clone(&last_send));
            tokio::spawn(async move {
                loop {
                    let seq = next.fetch_add(1, Ordering::Relaxed);
                    if seq >= plan.messages {
                        break;
                    }
                    let due = start + Duration::from_secs_f64(seq as f64 / plan.rate);
                    tokio::time::sleep_until(due).await;
                    let offset = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    last_send.fetch_max(offset, Ordering::Relaxed);
                    let sent = tokio::time::timeout(
                        PUBLISH_TIMEOUT,
                        send(&client, plan.request(&uris, seq)),
                    );
                    let sent = sent.await.unwrap_or_else(|_| {
                        Err(anyhow::anyhow!(
                            "a publish got no complete answer within {PUBLISH_TIMEOUT:?}"
                        ))
                    });
                    match sent {
                        Ok(()) => accepted.fetch_add(1, Ordering::Relaxed),
                        Err(error) => {
                            let mut first =
                                first_error.lock().unwrap_or_else(PoisonError::into_inner);
                            first.get_or_insert_with(|| format!("{error:#}"));
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.context("a publisher task failed")?;
    }
    let elapsed = start.elapsed();
    let first_error = first_error
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    Ok(PublishOutcome {
        accepted: accepted.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        first_error,
        elapsed,
        send_span: Duration::from_nanos(last_send.load(Ordering::Relaxed)),
    })
}

async fn send(
    client: &HttpClient,
    request: anyhow::Result<http::Request<Full<Bytes>>>,
) -> anyhow::Result<()> {
    let response = client
        .request(request?)
        .await
        .context("the publish request failed")?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .context("reading the publish answer")?
        .to_bytes();
    if !status.is_success() {
        anyhow::bail!(
            "a publish was answered {status}: {}",
            String::from_utf8_lossy(&body).trim()
        );
    }
    Ok(())
}
