//! Decoding throughput: herald's decoder (both ways of reading: borrowed frames from `feed`,
//! owned ones from `push`) against `sse-stream`, `eventsource-stream` and a bare
//! `memchr2` line scan, on the same corpora under the same chunking.
//!
//! Every parser consumes every event (the data lengths are summed through `black_box`), and
//! before anything is timed, every parser is checked to find the same events.

#![allow(clippy::unwrap_used)]
#![allow(missing_docs)] // criterion_group! generates an undocumented `pub fn`

mod corpus;

use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use eventsource_stream::Eventsource;
use futures::StreamExt;
use futures::executor::block_on;
use futures::stream;
use herald_codec::{Decoder, Frame, FrameRef, FrameStream};

use corpus::Corpus;

/// A realistic socket read size.
const CHUNK: usize = 8 << 10;

/// What a parser found: events and the total length of their data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Found {
    events: usize,
    data_len: usize,
}

impl Found {
    fn add(&mut self, data: &str) {
        self.events += 1;
        self.data_len += black_box(data).len();
    }
}

const NONE: Found = Found {
    events: 0,
    data_len: 0,
};

/// The borrowed way: `Decoder::feed`, events handed to a closure as `&str`s.
fn herald_feed(chunks: &[Bytes]) -> Found {
    let mut found = NONE;
    let mut decoder = Decoder::new();
    for chunk in chunks {
        decoder.feed(chunk, |frame| {
            if let FrameRef::Event(event) = frame.unwrap() {
                found.add(event.data());
            }
        });
    }
    decoder.finish();
    found
}

/// The owned way: `Decoder::push` and `next_frame`, events that share the pushed `Bytes`.
fn herald_push(chunks: &[Bytes]) -> Found {
    let mut found = NONE;
    let mut decoder = Decoder::new();
    for chunk in chunks {
        decoder.push(chunk.clone());
        while let Some(frame) = decoder.next_frame().unwrap() {
            if let Frame::Event(event) = frame {
                found.add(event.data());
            }
        }
    }
    decoder.finish();
    found
}

fn herald_stream(chunks: &[Bytes]) -> Found {
    let source = stream::iter(chunks.iter().cloned().map(Ok::<_, Infallible>));
    block_on(FrameStream::new(source).fold(NONE, |mut found, frame| {
        if let Frame::Event(event) = frame.unwrap() {
            found.add(event.data());
        }
        async move { found }
    }))
}

fn sse_stream(chunks: &[Bytes]) -> Found {
    let source = stream::iter(chunks.iter().cloned().map(Ok::<_, Infallible>));
    block_on(
        sse_stream::SseByteStream::new(source).fold(NONE, |mut found, sse| {
            // sse-stream also yields blocks without data; a browser dispatches none of them.
            if let Some(data) = sse.unwrap().data {
                found.add(&data);
            }
            async move { found }
        }),
    )
}

fn eventsource_stream(chunks: &[Bytes]) -> Found {
    let source = stream::iter(chunks.iter().cloned().map(Ok::<_, Infallible>));
    block_on(source.eventsource().fold(NONE, |mut found, event| {
        found.add(&event.unwrap().data);
        async move { found }
    }))
}

/// The ceiling: find every line end, and do nothing else.
fn line_scan(chunks: &[Bytes]) -> usize {
    let mut lines = 0;
    for chunk in chunks {
        let mut rest = &chunk[..];
        while let Some(end) = memchr::memchr2(b'\r', b'\n', rest) {
            lines += 1;
            rest = &rest[end + 1..];
        }
    }
    black_box(lines)
}

/// Whether eventsource-stream is measured on this input: it copies the rest of its buffer
/// after every line, so one whole multi-megabyte corpus with many lines takes seconds per pass.
fn eventsource_feasible(corpus: &Corpus, chunks: &[Bytes]) -> bool {
    chunks.len() > 1 || corpus.name == "large"
}

fn check(corpus: &Corpus, chunks: &[Bytes]) {
    let expected = Found {
        events: corpus.events.len(),
        data_len: corpus.data_len(),
    };
    assert_eq!(herald_feed(chunks), expected, "feed on {}", corpus.name);
    assert_eq!(herald_push(chunks), expected, "push on {}", corpus.name);
    assert_eq!(
        herald_stream(chunks),
        expected,
        "FrameStream on {}",
        corpus.name
    );
    assert_eq!(
        sse_stream(chunks),
        expected,
        "sse-stream on {}",
        corpus.name
    );
    if eventsource_feasible(corpus, chunks) {
        let found = eventsource_stream(chunks);
        assert_eq!(found, expected, "eventsource-stream on {}", corpus.name);
    }
    assert!(line_scan(chunks) >= 2 * corpus.events.len());
}

fn group(group: &mut BenchmarkGroup<'_, WallTime>, corpus: &Corpus, chunks: &[Bytes]) {
    check(corpus, chunks);
    group.throughput(Throughput::Bytes(corpus.bytes.len() as u64));
    group.bench_function("herald-feed", |b| b.iter(|| herald_feed(chunks)));
    group.bench_function("herald-push", |b| b.iter(|| herald_push(chunks)));
    group.bench_function("herald-FrameStream", |b| b.iter(|| herald_stream(chunks)));
    group.bench_function("sse-stream", |b| b.iter(|| sse_stream(chunks)));
    if eventsource_feasible(corpus, chunks) {
        group.bench_function("eventsource-stream", |b| {
            b.iter(|| eventsource_stream(chunks))
        });
    }
    group.bench_function("memchr2-line-scan", |b| b.iter(|| line_scan(chunks)));
}

fn decode(c: &mut Criterion) {
    for corpus in corpus::all() {
        let whole = vec![corpus.bytes.clone()];
        let mut g = c.benchmark_group(format!("decode/{}/whole", corpus.name));
        group(&mut g, &corpus, &whole);
        g.finish();

        let chunks = corpus.chunks(CHUNK);
        let mut g = c.benchmark_group(format!("decode/{}/8KiB", corpus.name));
        group(&mut g, &corpus, &chunks);
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = decode
}
criterion_main!(benches);
