//! The four benchmark corpora, generated deterministically so every run and every parser sees
//! the same bytes.
//!
//! * `small`: chat-like events of about 100 bytes (`event`, `id`, one `data` line of JSON,
//!   some of it non-ASCII).
//! * `llm`: an LLM token stream, tiny `data: {"choices":[...]}` events with no type or id.
//! * `large`: 64 KiB single-line JSON events.
//! * `multiline`: log-like events whose data spans 8 to 32 lines.

#![allow(dead_code)] // each bench uses a different part of this module

use bytes::{Bytes, BytesMut};
use herald_codec::Event;

/// One corpus: the events and their encoding, concatenated.
pub(crate) struct Corpus {
    /// Short name, used in benchmark ids.
    pub(crate) name: &'static str,
    /// The events, in order.
    pub(crate) events: Vec<Event>,
    /// Every event encoded, back to back: the stream a client reads.
    pub(crate) bytes: Bytes,
}

impl Corpus {
    fn new(name: &'static str, events: Vec<Event>) -> Corpus {
        let mut buf = BytesMut::new();
        for event in &events {
            event.encode_into(&mut buf);
        }
        Corpus {
            name,
            events,
            bytes: buf.freeze(),
        }
    }

    /// The sum of the data lengths of all events, as a decoder must report them.
    pub(crate) fn data_len(&self) -> usize {
        self.events
            .iter()
            .map(|event| {
                let data = event.data().unwrap_or_default();
                // The encoder writes every CRLF, CR and LF as a line break: decoded, each is one LF.
                data.len() - data.matches("\r\n").count()
            })
            .sum()
    }

    /// The corpus cut into `size`-byte chunks, sharing its buffer (no copy).
    pub(crate) fn chunks(&self, size: usize) -> Vec<Bytes> {
        (0..self.bytes.len())
            .step_by(size)
            .map(|start| {
                self.bytes
                    .slice(start..(start + size).min(self.bytes.len()))
            })
            .collect()
    }
}

/// A small, fast, deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).expect("fits")
    }

    fn pick<'a>(&mut self, words: &[&'a str]) -> &'a str {
        words[self.below(words.len())]
    }
}

const WORDS: &[&str] = &[
    "the",
    "a",
    "stream",
    "event",
    "server",
    "client",
    "hello",
    "world",
    "token",
    "reply",
    "message",
    "sent",
    "over",
    "one",
    "connection",
    "kept",
    "open",
    "data",
    "line",
    "ok",
    "café",
    "naïve",
    "👍",
    "日本",
    "fine",
    "thanks",
    "see",
    "you",
    "later",
    "soon",
];

fn sentence(rng: &mut Rng, words: usize) -> String {
    let mut text = String::new();
    for i in 0..words {
        if i > 0 {
            text.push(' ');
        }
        text.push_str(rng.pick(WORDS));
    }
    text
}

/// About 2 MB of ~100-byte chat events.
pub(crate) fn small() -> Corpus {
    let mut rng = Rng(1);
    let events = (0..20_000)
        .map(|i| {
            let words = 3 + rng.below(5);
            let text = sentence(&mut rng, words);
            let data = format!(
                r#"{{"user":"u{}","room":"r{}","text":"{text}"}}"#,
                rng.below(1000),
                rng.below(20)
            );
            Event::builder()
                .event("chat")
                .id(i.to_string())
                .data(data)
                .build()
                .expect("valid event")
        })
        .collect();
    Corpus::new("small", events)
}

/// About 2 MB of LLM token events.
pub(crate) fn llm() -> Corpus {
    let mut rng = Rng(2);
    let tokens = [
        " the", " a", " of", " stream", "ing", " token", ".", ",", " is", " and", "\\n", " to",
        " model", " reply", " it", "!", " 42", " code", "()", " we",
    ];
    let events = (0..32_000)
        .map(|_| {
            let token = tokens[rng.below(tokens.len())];
            Event::message(format!(
                r#"{{"choices":[{{"delta":{{"content":"{token}"}},"index":0}}]}}"#
            ))
        })
        .collect();
    Corpus::new("llm", events)
}

/// 64 events of 64 KiB of single-line JSON (4 MiB).
pub(crate) fn large() -> Corpus {
    let mut rng = Rng(3);
    let events = (0..64)
        .map(|i| {
            let mut data = String::with_capacity(64 << 10);
            data.push('[');
            while data.len() < (64 << 10) - 200 {
                data.push_str(&format!(
                    r#"{{"id":{},"name":"item-{}","score":{}.{},"tags":["x","y"]}},"#,
                    rng.below(1_000_000),
                    rng.below(10_000),
                    rng.below(100),
                    rng.below(1000)
                ));
            }
            while data.len() < (64 << 10) - 1 {
                data.push(' ');
            }
            data.push(']');
            Event::builder()
                .event("snapshot")
                .id(i.to_string())
                .data(data)
                .build()
                .expect("valid event")
        })
        .collect();
    Corpus::new("large", events)
}

/// About 2 MB of events whose data is 8 to 32 lines of 40 to 100 bytes.
pub(crate) fn multiline() -> Corpus {
    let mut rng = Rng(4);
    let mut events = Vec::new();
    let mut total = 0;
    while total < 2_000_000 {
        let count = 8 + rng.below(25);
        let lines: Vec<String> = (0..count)
            .map(|_| {
                let mut line = format!("{:>6} INFO ", rng.below(1_000_000));
                let len = 40 + rng.below(60);
                while line.len() < len {
                    line.push(' ');
                    line.push_str(rng.pick(WORDS));
                }
                line
            })
            .collect();
        let data = lines.join("\n");
        total += data.len();
        let event = Event::builder()
            .event("log")
            .id(events.len().to_string())
            .data(data)
            .build()
            .expect("valid event");
        events.push(event);
    }
    Corpus::new("multiline", events)
}

/// All four corpora.
pub(crate) fn all() -> Vec<Corpus> {
    vec![small(), llm(), large(), multiline()]
}
