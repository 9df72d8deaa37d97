//! Client throughput over a real loopback connection: Herald's `EventSource` against a bare
//! hyper client feeding `eventsource-stream` (the parser under `reqwest-eventsource`), both
//! reading the same response from the same local server.
//!
//! Each iteration opens one connection and reads every event of the response, so the figures
//! include connecting, the request, the response head and the body: what a consumer pays.

#![allow(clippy::unwrap_used)]
#![allow(missing_docs)] // criterion_group! generates an undocumented `pub fn`

use std::convert::Infallible;
use std::hint::black_box;
use std::net::SocketAddr;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eventsource_stream::Eventsource;
use futures::StreamExt;
use herald_client::{EventSource, Item};
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// Events per response.
const EVENTS: usize = 20_000;
/// The size of each body frame the server writes.
const FRAME: usize = 16 << 10;

/// `EVENTS` events with an ID and ~100 bytes of JSON-like data each.
fn body() -> Bytes {
    let mut text = String::new();
    for n in 0..EVENTS {
        text.push_str(&format!(
            "id: {n}\ndata: {{\"seq\":{n},\"topic\":\"prices\",\"payload\":\"{}\"}}\n\n",
            "x".repeat(64)
        ));
    }
    Bytes::from(text)
}

/// Serves the body to every connection, in `FRAME`-sized frames.
async fn serve(body: Bytes) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let body = body.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_request| {
                    let frames: Vec<Result<Frame<Bytes>, Infallible>> = body
                        .chunks(FRAME)
                        .map(|chunk| Ok(Frame::data(body.slice_ref(chunk))))
                        .collect();
                    let response = http::Response::builder()
                        .header("content-type", "text/event-stream")
                        .body(StreamBody::new(futures::stream::iter(frames)))
                        .unwrap();
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    addr
}

async fn herald(url: &str) -> usize {
    let mut source = EventSource::new(url).unwrap();
    let mut seen = 0;
    while let Some(item) = source.next().await {
        if let Item::Message(event) = item.unwrap() {
            seen += black_box(event.data()).len();
            if event.last_event_id() == LAST_ID {
                return seen;
            }
        }
    }
    unreachable!("the stream ended early")
}

async fn hyper_eventsource_stream(url: &str) -> usize {
    let client: Client<_, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let response = client.get(url.parse().unwrap()).await.unwrap();
    let mut events = response.into_body().into_data_stream().eventsource();
    let mut seen = 0;
    while let Some(event) = events.next().await {
        let event = event.unwrap();
        seen += black_box(&event.data).len();
        if event.id == LAST_ID {
            return seen;
        }
    }
    unreachable!("the stream ended early")
}

const LAST_ID: &str = "19999";

fn client(c: &mut Criterion) {
    assert_eq!(LAST_ID, (EVENTS - 1).to_string());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let addr = runtime.block_on(serve(body()));
    let url = format!("http://{addr}/events");
    // Both read the same events before anything is timed.
    let expected = runtime.block_on(herald(&url));
    assert_eq!(runtime.block_on(hyper_eventsource_stream(&url)), expected);

    let mut group = c.benchmark_group("client");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(30);
    group.bench_function("herald-EventSource", |b| {
        b.iter(|| runtime.block_on(herald(&url)));
    });
    group.bench_function("hyper+eventsource-stream", |b| {
        b.iter(|| runtime.block_on(hyper_eventsource_stream(&url)));
    });
    group.finish();
}

criterion_group!(benches, client);
criterion_main!(benches);
