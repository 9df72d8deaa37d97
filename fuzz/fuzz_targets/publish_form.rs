//! Fuzzes the publish form parser: any body must be accepted or refused with a reason, never
//! panic; an accepted update always encodes, and its ID can be resumed from (no control
//! character, within the size bound, never `earliest`).
//!
//! The first input byte bounds the number of topics; the rest is the body.

#![no_main]

use herald_hub::form::{FormLimits, parse_publish_form};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&max_topics, body)) = input.split_first() else {
        return;
    };
    let content_type = Some("application/x-www-form-urlencoded");
    let limits = FormLimits {
        max_topics: usize::from(max_topics),
        ..FormLimits::default()
    };
    match parse_publish_form(content_type, body, &limits) {
        Ok(update) => {
            assert!(!update.topics.is_empty());
            assert!(update.topics.len() <= usize::from(max_topics));
            assert!(!update.id.chars().any(char::is_control));
            assert!(update.id.len() <= limits.max_id_size);
            assert_ne!(update.id, "earliest");
            update.encode().expect("an accepted update encodes");
        }
        Err(error) => assert!(!error.to_string().is_empty()),
    }
});
