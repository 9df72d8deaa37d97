//! Properties of the codec over generated inputs: what is encoded decodes back to the events a
//! browser would dispatch, and decoding never depends on how the input is cut into chunks.

use std::time::Duration;

use bytes::Bytes;
use herald_codec::{Decoder, Event, Frame, MessageEvent};
use proptest::collection::vec;
use proptest::prelude::*;

/// Text for an event type or ID: anything but CR, LF and NUL, Unicode included.
fn field_text() -> impl Strategy<Value = String> {
    "[^\r\n\0]{0,12}"
}

/// Data text: any text, with every kind of line break, empty lines and Unicode.
fn data_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("\r\n".to_owned()),
        Just("\r".to_owned()),
        Just("\n".to_owned()),
        Just(String::new()),
        "[^\r\n]{1,10}",
        "[a-z :{}\"é日👍]{1,10}",
    ];
    vec(piece, 0..6).prop_map(|pieces| pieces.concat())
}

fn event() -> impl Strategy<Value = Event> {
    (
        proptest::option::of(field_text()),
        proptest::option::of(field_text()),
        proptest::option::of(0u64..100_000),
        proptest::option::of(data_text()),
        proptest::option::of("[^\r\n]{0,8}"),
    )
        .prop_map(|(event_type, id, retry, data, comment)| {
            let mut builder = Event::builder();
            if let Some(event_type) = event_type {
                builder = builder.event(event_type);
            }
            if let Some(id) = id {
                builder = builder.id(id);
            }
            if let Some(millis) = retry {
                builder = builder.retry(Duration::from_millis(millis));
            }
            if let Some(data) = data {
                builder = builder.data(data);
            }
            if let Some(comment) = comment {
                builder = builder.comment(comment);
            }
            builder.build().expect("generated fields are valid")
        })
}

/// What an `EventSource` dispatches for `events`, in order.
fn expected_frames(events: &[Event]) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut last_event_id = String::new();
    for event in events {
        if let Some(retry) = event.retry() {
            frames.push(Frame::Retry(retry));
        }
        if let Some(id) = event.id() {
            last_event_id = id.to_owned();
        }
        if let Some(data) = event.data() {
            let event_type = match event.event_type() {
                None | Some("") => "message",
                Some(event_type) => event_type,
            };
            let data = data.replace("\r\n", "\n").replace('\r', "\n");
            frames.push(Frame::Event(MessageEvent::new(
                event_type,
                data,
                last_event_id.as_str(),
            )));
        }
    }
    frames
}

/// Everything a decoder reports for `chunks`, errors included, then its final state.
#[derive(Debug, PartialEq)]
struct Outcome {
    frames: Vec<Result<Frame, String>>,
    last_event_id: String,
    retry: Option<Duration>,
}

/// Decodes `chunks` with both of the decoder's ways of reading (owned frames from `push`, and
/// borrowed ones from `feed`), asserts they agree, and returns what they found.
fn decode(decoder: impl Fn() -> Decoder, chunks: &[&[u8]]) -> Outcome {
    let owned = decode_with(decoder(), chunks, |decoder, chunk, frames| {
        decoder.push(Bytes::copy_from_slice(chunk));
        frames.extend(decoder.map(|frame| frame.map_err(|e| e.to_string())));
    });
    let borrowed = decode_with(decoder(), chunks, |decoder, chunk, frames| {
        decoder.feed(chunk, |frame| {
            frames.push(frame.map(|f| f.to_owned_frame()).map_err(|e| e.to_string()));
        });
    });
    assert_eq!(owned, borrowed, "push and feed agree");
    owned
}

/// Reads each chunk with `read`, then ends the stream and records the decoder's final state.
fn decode_with(
    mut decoder: Decoder,
    chunks: &[&[u8]],
    read: impl Fn(&mut Decoder, &[u8], &mut Vec<Result<Frame, String>>),
) -> Outcome {
    let mut frames = Vec::new();
    for chunk in chunks {
        read(&mut decoder, chunk, &mut frames);
    }
    decoder.finish();
    assert_eq!(decoder.buffered_len(), 0, "finish releases the input");
    Outcome {
        frames,
        last_event_id: decoder.last_event_id().to_owned(),
        retry: decoder.retry(),
    }
}

/// Cuts `bytes` at the given offsets (taken modulo its length, in any order).
fn split<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut chunks = Vec::new();
    let mut start = 0;
    for cut in cuts {
        chunks.push(&bytes[start..cut]);
        start = cut;
    }
    chunks.push(&bytes[start..]);
    chunks
}

/// Byte soup rich in what the decoder cares about: line ends, colons, spaces, field names, a
/// BOM, invalid and multi-byte UTF-8, NUL and digits.
fn soup() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(b"\r".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b":".to_vec()),
        Just(b" ".to_vec()),
        Just(b"data".to_vec()),
        Just(b"data: ".to_vec()),
        Just(b"event:".to_vec()),
        Just(b"id:".to_vec()),
        Just(b"retry:".to_vec()),
        Just(b"\xEF\xBB\xBF".to_vec()),
        Just(b"\xEF\xBB".to_vec()),
        Just(b"\xFF".to_vec()),
        Just(b"\xC3".to_vec()),
        Just("é日".as_bytes().to_vec()),
        Just(b"\0".to_vec()),
        Just(b"42".to_vec()),
        Just(b"x".to_vec()),
        vec(any::<u8>(), 1..4),
    ];
    vec(token, 0..60).prop_map(|tokens| tokens.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn encoded_events_decode_to_what_a_browser_dispatches(
        events in vec(event(), 0..8),
        cuts in vec(any::<usize>(), 0..4),
    ) {
        let mut stream = Vec::new();
        for event in &events {
            stream.extend_from_slice(&event.encode());
        }
        let outcome = decode(Decoder::new, &split(&stream, &cuts));
        let frames: Vec<Frame> = outcome
            .frames
            .into_iter()
            .map(|frame| frame.expect("valid events decode without error"))
            .collect();
        prop_assert_eq!(frames, expected_frames(&events));
    }

    #[test]
    fn decoding_does_not_depend_on_chunking(
        bytes in soup(),
        cuts in vec(any::<usize>(), 1..6),
        comments in any::<bool>(),
        small_limits in any::<bool>(),
    ) {
        let decoder = || {
            let builder = Decoder::builder().comments(comments);
            if small_limits {
                builder.max_line_len(24).max_event_size(40).build()
            } else {
                builder.build()
            }
        };
        let whole = decode(decoder, &[&bytes]);
        prop_assert_eq!(&decode(decoder, &split(&bytes, &cuts)), &whole);
        let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
        prop_assert_eq!(&decode(decoder, &bytewise), &whole);
    }
}
