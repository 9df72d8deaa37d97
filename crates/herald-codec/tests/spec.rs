//! The WHATWG HTML "Server-sent events" interpretation rules, one vector per rule.
//!
//! Every vector is decoded whole, split in two at every byte offset, and one byte at a time; all
//! of them must give the same events, last event ID and reconnection time.

use std::time::Duration;

use herald_codec::{DecodeError, Decoder, Frame};

/// What decoding a whole stream produced.
#[derive(Debug, Default, PartialEq)]
struct Outcome {
    events: Vec<(String, String, String)>,
    retries: Vec<u64>,
    last_event_id: String,
    retry: Option<u64>,
}

impl Outcome {
    fn record(&mut self, frame: Frame) {
        match frame {
            Frame::Event(e) => self.events.push((
                e.event_type().to_owned(),
                e.data().to_owned(),
                e.last_event_id().to_owned(),
            )),
            Frame::Retry(retry) => self.retries.push(millis(retry)),
            Frame::Comment(_) => panic!("comments are off by default"),
        }
    }
}

/// Decodes `chunks` both ways (owned frames from `push`, borrowed ones from `feed`), asserts
/// they agree, and returns the outcome.
fn decode_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]> + Clone) -> Outcome {
    let owned = decode_with(chunks.clone(), |decoder, chunk, outcome| {
        decoder.push_slice(chunk);
        for frame in decoder {
            outcome.record(frame.expect("no decode error"));
        }
    });
    let borrowed = decode_with(chunks, |decoder, chunk, outcome| {
        decoder.feed(chunk, |frame| {
            outcome.record(frame.expect("no decode error").to_owned_frame());
        });
    });
    assert_eq!(borrowed, owned, "push and feed agree");
    owned
}

/// Reads each chunk with `read`, then ends the stream and records the decoder's final state.
fn decode_with<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
    read: impl Fn(&mut Decoder, &[u8], &mut Outcome),
) -> Outcome {
    let mut decoder = Decoder::new();
    let mut outcome = Outcome::default();
    for chunk in chunks {
        read(&mut decoder, chunk, &mut outcome);
    }
    decoder.finish();
    outcome.last_event_id = decoder.last_event_id().to_owned();
    outcome.retry = decoder.retry().map(millis);
    outcome
}

fn millis(retry: Duration) -> u64 {
    u64::try_from(retry.as_millis()).expect("fits")
}

/// Decodes `input` whole and under every chunking, asserting they agree, and returns the outcome.
fn decode(input: &[u8]) -> Outcome {
    let whole = decode_chunks([input]);
    for split in 0..=input.len() {
        let (a, b) = input.split_at(split);
        assert_eq!(
            decode_chunks([a, b]),
            whole,
            "split at {split} of {input:?}"
        );
    }
    let bytes = input.chunks(1);
    assert_eq!(decode_chunks(bytes), whole, "one byte at a time: {input:?}");
    whole
}

fn events(input: &[u8]) -> Vec<(String, String, String)> {
    decode(input).events
}

fn ev(event_type: &str, data: &str, id: &str) -> (String, String, String) {
    (event_type.to_owned(), data.to_owned(), id.to_owned())
}

fn message(data: &str) -> (String, String, String) {
    ev("message", data, "")
}

#[test]
fn bom_is_stripped_once_at_the_start() {
    assert_eq!(events(b"\xEF\xBB\xBFdata: a\n\n"), [message("a")]);
    // A second BOM belongs to the first field name, which is then unknown.
    assert_eq!(
        events(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\ndata: b\n\n"),
        [message("b")]
    );
}

#[test]
fn bom_later_in_the_stream_is_not_stripped() {
    assert_eq!(
        events(b"data: a\n\n\xEF\xBB\xBFdata: b\n\n"),
        [message("a")]
    );
    assert_eq!(events(b"data: \xEF\xBB\xBFb\n\n"), [message("\u{FEFF}b")]);
}

#[test]
fn partial_bom_is_data() {
    assert_eq!(events(b"\xEF\xBBdata: a\n\ndata: b\n\n"), [message("b")]);
    assert_eq!(events(b"\xEF\n\ndata: b\n\n"), [message("b")]);
}

#[test]
fn invalid_utf8_becomes_replacement_characters() {
    assert_eq!(events(b"data: a\xFFb\n\n"), [message("a\u{FFFD}b")]);
    // An incomplete sequence before a line end is one replacement character.
    assert_eq!(events(b"data: \xE2\x82\n\n"), [message("\u{FFFD}")]);
    assert_eq!(events(b"event: \xC0x\ndata\n\n"), [ev("\u{FFFD}x", "", "")]);
    assert_eq!(events(b"id: \xFF\n\n"), []);
    assert_eq!(decode(b"id: \xFF\n\n").last_event_id, "\u{FFFD}");
}

#[test]
fn multibyte_characters_survive_any_split() {
    // `decode` splits inside every character.
    assert_eq!(events("data: é€😀\n\n".as_bytes()), [message("é€😀")]);
}

#[test]
fn lines_end_at_crlf_lf_and_cr() {
    assert_eq!(events(b"data: a\r\n\r\n"), [message("a")]);
    assert_eq!(events(b"data: a\n\n"), [message("a")]);
    assert_eq!(events(b"data: a\r\r"), [message("a")]);
    assert_eq!(
        events(b"data: a\rdata: b\ndata: c\r\n\n"),
        [message("a\nb\nc")]
    );
}

#[test]
fn cr_then_lf_is_one_line_ending_even_across_chunks() {
    let whole = decode_chunks([&b"data: a\r\ndata: b\r\n\r\n"[..]]);
    assert_eq!(whole.events, [message("a\nb")]);
    let split = decode_chunks([&b"data: a\r"[..], b"\ndata: b\r", b"\n\r", b"\n"]);
    assert_eq!(split, whole);
}

#[test]
fn lf_then_cr_is_two_line_endings() {
    assert_eq!(
        events(b"data: a\n\rdata: b\n\n"),
        [message("a"), message("b")]
    );
}

#[test]
fn field_and_value_split_at_the_first_colon() {
    assert_eq!(events(b"data: a:b: c\n\n"), [message("a:b: c")]);
    assert_eq!(events(b"data:a\n\n"), [message("a")]);
}

#[test]
fn one_leading_space_is_removed() {
    assert_eq!(events(b"data:  a\n\n"), [message(" a")]);
    assert_eq!(events(b"data:\ta\n\n"), [message("\ta")]);
    assert_eq!(events(b"data: \n\n"), [message("")]);
}

#[test]
fn line_without_colon_is_a_field_with_empty_value() {
    assert_eq!(events(b"data\n\n"), [message("")]);
    assert_eq!(events(b"data\ndata\n\n"), [message("\n")]);
    assert_eq!(events(b"event\ndata: x\n\n"), [message("x")]);
}

#[test]
fn line_starting_with_colon_is_a_comment() {
    assert_eq!(events(b":data: no\n\n"), []);
    assert_eq!(
        events(b"data: a\n: comment\ndata: b\n\n"),
        [message("a\nb")]
    );
}

#[test]
fn unknown_and_misspelled_fields_are_ignored() {
    assert_eq!(events(b"foo: bar\ndata: a\n\n"), [message("a")]);
    assert_eq!(events(b"Data: a\n\n"), []);
    assert_eq!(events(b"data : a\n\n"), []);
    assert_eq!(events(b" data: a\n\n"), []);
    assert_eq!(events(b"data: x\nEvent: y\n\n"), [message("x")]);
}

#[test]
fn data_lines_join_with_lf_and_the_final_lf_is_removed() {
    assert_eq!(events(b"data: a\ndata: b\n\n"), [message("a\nb")]);
    assert_eq!(events(b"data: a\ndata\n\n"), [message("a\n")]);
    assert_eq!(events(b"data\ndata: a\n\n"), [message("\na")]);
}

#[test]
fn empty_data_buffer_dispatches_nothing_but_resets_the_type() {
    assert_eq!(events(b"event: x\n\ndata: y\n\n"), [message("y")]);
    assert_eq!(events(b"\n\n\n"), []);
}

#[test]
fn event_sets_the_type_until_the_next_dispatch() {
    assert_eq!(
        events(b"event: a\ndata: 1\n\ndata: 2\n\n"),
        [ev("a", "1", ""), message("2")]
    );
    assert_eq!(events(b"event: a\nevent: b\ndata\n\n"), [ev("b", "", "")]);
    assert_eq!(events(b"event: a\nevent\ndata\n\n"), [message("")]);
    assert_eq!(events(b"event: \ndata: x\n\n"), [message("x")]);
}

#[test]
fn id_persists_across_events() {
    assert_eq!(
        events(b"id: 1\ndata: a\n\ndata: b\n\n"),
        [ev("message", "a", "1"), ev("message", "b", "1")]
    );
}

#[test]
fn id_after_data_in_the_same_block_applies_to_that_event() {
    assert_eq!(events(b"data: a\nid: 7\n\n"), [ev("message", "a", "7")]);
}

#[test]
fn id_becomes_last_event_id_at_a_blank_line_without_data() {
    let outcome = decode(b"id: 1\n\ndata: a\n\n");
    assert_eq!(outcome.events, [ev("message", "a", "1")]);
    assert_eq!(outcome.last_event_id, "1");
}

#[test]
fn empty_id_resets_the_last_event_id() {
    assert_eq!(
        events(b"id: 1\ndata: a\n\nid\ndata: b\n\nid: 2\ndata: c\n\nid:\ndata: d\n\n"),
        [
            ev("message", "a", "1"),
            message("b"),
            ev("message", "c", "2"),
            message("d")
        ]
    );
}

#[test]
fn id_with_nul_is_ignored() {
    let outcome = decode(b"id: 1\n\nid: 2\x003\ndata: a\n\n");
    assert_eq!(outcome.events, [ev("message", "a", "1")]);
    assert_eq!(outcome.last_event_id, "1");
}

#[test]
fn id_without_a_blank_line_changes_nothing() {
    let outcome = decode(b"id: 1\ndata: a\n\nid: 2\ndata: b\n");
    assert_eq!(outcome.events, [ev("message", "a", "1")]);
    assert_eq!(outcome.last_event_id, "1");
}

#[test]
fn retry_with_only_ascii_digits_is_applied() {
    let outcome = decode(b"retry: 1500\n");
    assert_eq!((outcome.retries, outcome.retry), (vec![1500], Some(1500)));
    assert_eq!(decode(b"retry:0\n").retry, Some(0));
    assert_eq!(decode(b"retry: 007\n").retry, Some(7));
}

#[test]
fn retry_with_anything_else_is_ignored() {
    for bad in [
        &b"retry: 1.5\n"[..],
        b"retry: -1\n",
        b"retry: 10a\n",
        b"retry:\n",
        b"retry\n",
        b"retry:  10\n",
        b"retry: 10 \n",
        b"retry: +10\n",
        "retry: \u{0661}\n".as_bytes(),
    ] {
        let outcome = decode(bad);
        assert_eq!(outcome.retry, None, "{bad:?}");
        assert!(outcome.retries.is_empty(), "{bad:?}");
    }
}

#[test]
fn retry_keeps_the_last_valid_value() {
    assert_eq!(decode(b"retry: 10\nretry: x\n").retry, Some(10));
    assert_eq!(decode(b"retry: 10\nretry: 20\n").retries, [10, 20]);
}

#[test]
fn huge_retry_saturates() {
    assert_eq!(
        decode(b"retry: 99999999999999999999999\n").retry,
        Some(u64::MAX)
    );
}

#[test]
fn retry_does_not_need_a_blank_line_or_dispatch() {
    let outcome = decode(b"data: a\nretry: 5\n");
    assert_eq!(outcome.events, []);
    assert_eq!(outcome.retry, Some(5));
}

#[test]
fn event_is_dispatched_only_at_a_blank_line() {
    assert_eq!(events(b"data: a\n"), []);
    assert_eq!(events(b"data: a"), []);
    assert_eq!(events(b"data: a\n\ndata: b"), [message("a")]);
}

#[test]
fn nul_and_control_bytes_in_data_are_kept() {
    assert_eq!(events(b"data: a\x00b\x01\n\n"), [message("a\0b\u{1}")]);
}

#[test]
fn whatwg_examples() {
    // The stream examples of the spec's "Interpreting an event stream" section.
    assert_eq!(
        events(b"data: YHOO\ndata: +2\ndata: 10\n\n"),
        [message("YHOO\n+2\n10")]
    );
    assert_eq!(
        events(b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n"),
        [ev("message", "first event", "1"), message("second event")]
    );
    assert_eq!(
        events(b"data\n\ndata\ndata\n\ndata:\n"),
        [message(""), message("\n")]
    );
    assert_eq!(
        events(b"data:test\n\ndata: test\n\n"),
        [message("test"), message("test")]
    );
}

#[test]
fn comments_are_reported_when_asked() {
    let mut decoder = Decoder::builder().comments(true).build();
    decoder.push(": hello\n:\n:  two\ndata: x\n\n");
    let frames: Vec<Frame> = decoder.map(|f| f.expect("ok")).collect();
    assert!(matches!(&frames[0], Frame::Comment(c) if c == "hello"));
    assert!(matches!(&frames[1], Frame::Comment(c) if c.is_empty()));
    assert!(matches!(&frames[2], Frame::Comment(c) if c == " two"));
    assert!(matches!(&frames[3], Frame::Event(e) if e.data() == "x"));
    assert_eq!(frames.len(), 4);
}

#[test]
fn too_long_line_is_an_error_and_drops_only_its_event() {
    for chunk in [1, 3, 7, 100] {
        let input = b"data: ok\n\nid: 1\ndata: 0123456789abcdef\ndata: more\n\ndata: after\n\n";
        let mut decoder = Decoder::builder().max_line_len(12).build();
        let mut seen = Vec::new();
        let mut errors = 0;
        for piece in input.chunks(chunk) {
            decoder.push_slice(piece);
            for frame in &mut decoder {
                match frame {
                    Ok(Frame::Event(e)) => {
                        seen.push((e.data().to_owned(), e.last_event_id().to_owned()))
                    }
                    Ok(_) => {}
                    Err(DecodeError::LineTooLong { limit: 12 }) => errors += 1,
                    Err(other) => panic!("unexpected {other}"),
                }
            }
        }
        assert_eq!(errors, 1, "chunk size {chunk}");
        let expected = [("ok", ""), ("after", "1")].map(|(d, i)| (d.to_owned(), i.to_owned()));
        assert_eq!(seen, expected, "chunk size {chunk}");
        assert!(decoder.buffered_len() <= 12);
    }
}

#[test]
fn unterminated_long_line_does_not_grow_memory() {
    let mut decoder = Decoder::builder().max_line_len(1024).build();
    let mut errors = 0;
    for _ in 0..1000 {
        decoder.push_slice(&[b'x'; 100]);
        errors += decoder.by_ref().filter(|f| f.is_err()).count();
        assert!(decoder.buffered_len() <= 1024);
    }
    assert_eq!(errors, 1);
    // The long line's event ends at the next blank line; the one after it is whole.
    decoder.push("\ndata: lost with the long line\n\ndata: fine\n\n");
    let data: Vec<String> = decoder
        .filter_map(|f| f.ok()?.into_event())
        .map(|e| e.data().to_owned())
        .collect();
    assert_eq!(data, ["fine"]);
}

#[test]
fn too_large_event_is_an_error_and_drops_only_that_event() {
    let input = b"data: 12345\ndata: 67890\ndata: x\n\ndata: small\n\n";
    let mut decoder = Decoder::builder().max_event_size(10).build();
    decoder.push_slice(input);
    let frames: Vec<_> = decoder.collect();
    assert_eq!(frames.len(), 2);
    assert!(matches!(
        frames[0],
        Err(DecodeError::EventTooLarge { limit: 10 })
    ));
    assert!(matches!(&frames[1], Ok(Frame::Event(e)) if e.data() == "small"));
}

#[test]
fn event_exactly_at_the_limits_is_accepted() {
    let mut decoder = Decoder::builder().max_line_len(9).max_event_size(9).build();
    decoder.push("data: abc\ndata: def\n\n");
    let frames: Vec<_> = decoder.collect();
    assert!(
        matches!(&frames[..], [Ok(Frame::Event(e))] if e.data() == "abc\ndef"),
        "{frames:?}"
    );
}

#[test]
fn finish_starts_a_new_stream_but_keeps_id_and_retry() {
    let mut decoder = Decoder::new();
    decoder.push("retry: 10\nid: 5\n\ndata: half");
    decoder.by_ref().for_each(drop);
    decoder.finish();
    decoder.push("\u{FEFF}data: next\n\n");
    let events: Vec<_> = decoder
        .by_ref()
        .filter_map(|f| f.ok()?.into_event())
        .collect();
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].data(), events[0].last_event_id()), ("next", "5"));
    assert_eq!(decoder.retry(), Some(Duration::from_millis(10)));
}

#[test]
fn a_starting_last_event_id_is_carried() {
    let mut decoder = Decoder::new();
    decoder.set_last_event_id("42");
    decoder.push("data: a\n\n");
    let event = decoder
        .next()
        .and_then(|f| f.ok()?.into_event())
        .expect("event");
    assert_eq!(event.last_event_id(), "42");
}

#[test]
fn single_line_data_is_a_slice_of_the_input() {
    let input = bytes::Bytes::from_static(b"data: zero-copy\n\n");
    let mut decoder = Decoder::new();
    decoder.push(input.clone());
    let event = decoder
        .next()
        .and_then(|f| f.ok()?.into_event())
        .expect("event");
    let data = event.into_data().into_bytes();
    let range = input.as_ptr_range();
    assert!(
        range.contains(&data.as_ptr()),
        "data points into the pushed chunk"
    );
}
