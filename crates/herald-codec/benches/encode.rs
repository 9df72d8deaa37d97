//! Encoding throughput: `Event::encode` over each corpus's events, in bytes written per second.

#![allow(missing_docs)] // criterion_group! generates an undocumented `pub fn`

mod corpus;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for corpus in corpus::all() {
        let written: usize = corpus.events.iter().map(|e| e.encode().len()).sum();
        assert_eq!(written, corpus.bytes.len(), "encoding {}", corpus.name);
        group.throughput(Throughput::Bytes(written as u64));
        group.bench_function(corpus.name, |b| {
            b.iter(|| {
                let mut written = 0;
                for event in &corpus.events {
                    written += black_box(event.encode()).len();
                }
                written
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = encode
}
criterion_main!(benches);
