//! Fuzzes the publish form parser: any body must be accepted or refused with a reason, never
//! panic; an accepted update always encodes, and its ID never contains a line break.
//!
//! The first input byte bounds the number of topics; the rest is the body.

#![no_main]

use herald_hub::form::parse_publish_form;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&max_topics, body)) = input.split_first() else {
        return;
    };
    let content_type = Some("application/x-www-form-urlencoded");
    match parse_publish_form(content_type, body, usize::from(max_topics)) {
        Ok(update) => {
            assert!(!update.topics.is_empty());
            assert!(update.topics.len() <= usize::from(max_topics));
            assert!(!update.id.contains(['\r', '\n', '\0']));
            update.encode().expect("an accepted update encodes");
        }
        Err(error) => assert!(!error.to_string().is_empty()),
    }
});
