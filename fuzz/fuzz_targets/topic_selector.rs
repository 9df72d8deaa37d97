//! Fuzzes topic selector parsing (exact topics, `*`, URI templates): any selector and topic,
//! never a panic, a selector keeps its text, and it always matches that text as a topic.
//!
//! The input is `selector\0topic`.

#![no_main]

use herald_hub::topic::TopicSelector;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let (selector, topic) = text.split_once('\0').unwrap_or((text, text));
    let parsed = TopicSelector::new(selector);
    let _ = parsed.matches(topic);
    assert_eq!(parsed.as_str(), selector);
    assert!(parsed.matches(selector), "{selector:?} matches itself");
});
