//! URI-template matching: Herald's matcher against the regular expression the Mercure reference
//! hub compiles for the same template (the same shape, through the `regex` crate), on topics
//! that match, that fail late and that fail at once; and what compiling each costs.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use herald_hub::topic::TopicSelector;
use regex::Regex;

/// Unreserved characters, then `%XX`: the value class of a simple expression, with `,`.
const VALUE: &str =
    r"(?:[\x2c\x2d\x2e\x30-\x39\x41-\x5a\x5f\x61-\x7a\x7e]|%[[:xdigit:]][[:xdigit:]])*";

struct Case {
    name: &'static str,
    template: &'static str,
    regex: String,
    topics: [&'static str; 3],
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "books_id",
            template: "https://example.com/books/{id}",
            regex: format!(r"^https://example\.com/books/(?:{VALUE})?$"),
            topics: [
                "https://example.com/books/the-hobbit",
                "https://example.com/books/the-hobbit/reviews",
                "https://example.org/users/1",
            ],
        },
        Case {
            name: "two_expressions",
            template: "https://example.com/{section}/{id}",
            regex: format!(r"^https://example\.com/(?:{VALUE})?/(?:{VALUE})?$"),
            topics: [
                "https://example.com/books/1",
                "https://example.com/books/1/reviews/2",
                "urn:isbn:0-486-27557-4",
            ],
        },
        Case {
            name: "twenty_variables",
            template: "c7-i/{a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t}",
            regex: format!(r"^c7\-i/(?:{VALUE}(?:,{VALUE}){{0,19}})?$"),
            topics: ["c7-i/x,y,z", "c7-i/x/y", "c8-i/x"],
        },
    ]
}

fn matching(c: &mut Criterion) {
    let mut group = c.benchmark_group("template_match");
    for case in cases() {
        let selector = TopicSelector::new(case.template);
        let regex = Regex::new(&case.regex).unwrap();
        for (topic, expected) in case.topics.iter().zip([true, false, false]) {
            assert_eq!(selector.matches(topic), expected, "{} {topic}", case.name);
            assert_eq!(
                regex.is_match(topic),
                expected,
                "regex {} {topic}",
                case.name
            );
        }
        let kinds = ["match", "late_miss", "early_miss"];
        for (topic, kind) in case.topics.iter().zip(kinds) {
            group.bench_function(format!("herald/{}/{kind}", case.name), |b| {
                b.iter(|| selector.matches(black_box(topic)));
            });
            group.bench_function(format!("regex/{}/{kind}", case.name), |b| {
                b.iter(|| regex.is_match(black_box(topic)));
            });
        }
    }
    group.finish();
}

fn compiling(c: &mut Criterion) {
    let mut group = c.benchmark_group("template_compile");
    let mut n = 0u64;
    for case in cases() {
        group.bench_function(format!("herald/{}", case.name), |b| {
            b.iter(|| {
                // A new text each time, so that the shared cache does not answer.
                n += 1;
                TopicSelector::new(&format!("{}?{n}", case.template))
            });
        });
        group.bench_function(format!("regex/{}", case.name), |b| {
            b.iter(|| Regex::new(black_box(&case.regex)).unwrap());
        });
    }
    group.finish();
}

criterion_group!(benches, matching, compiling);
criterion_main!(benches);
