//! Fuzzes the decoder: it must never panic, and it must report the same frames, errors and final
//! state whether the input arrives whole, cut in two, or one byte at a time, and whether it is
//! read as owned frames (`push`) or borrowed ones (`feed`).
//!
//! The first two bytes of the input choose the configuration and where to cut; the rest is the
//! stream.

#![no_main]

use bytes::Bytes;
use herald_codec::{Decoder, Frame};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, PartialEq)]
struct Outcome {
    frames: Vec<Result<Frame, String>>,
    last_event_id: String,
    retry: Option<std::time::Duration>,
}

fn decoder(config: u8) -> Decoder {
    let builder = Decoder::builder().comments(config & 1 == 1);
    if config & 2 == 2 {
        builder.max_line_len(32).max_event_size(64).build()
    } else {
        builder.build()
    }
}

fn decode<'a>(config: u8, chunks: impl Iterator<Item = &'a [u8]> + Clone) -> Outcome {
    let pushed = decode_with(decoder(config), chunks.clone(), |decoder, chunk, frames| {
        decoder.push(Bytes::copy_from_slice(chunk));
        frames.extend(decoder.map(|frame| frame.map_err(|e| e.to_string())));
    });
    let fed = decode_with(decoder(config), chunks, |decoder, chunk, frames| {
        decoder.feed(chunk, |frame| {
            frames.push(frame.map(|f| f.to_owned_frame()).map_err(|e| e.to_string()));
        });
    });
    assert_eq!(fed, pushed, "push and feed agree");
    pushed
}

/// Reads each chunk with `read`, then ends the stream and records the decoder's final state.
fn decode_with<'a>(
    mut decoder: Decoder,
    chunks: impl Iterator<Item = &'a [u8]>,
    read: impl Fn(&mut Decoder, &[u8], &mut Vec<Result<Frame, String>>),
) -> Outcome {
    let mut frames = Vec::new();
    for chunk in chunks {
        read(&mut decoder, chunk, &mut frames);
    }
    decoder.finish();
    assert_eq!(decoder.buffered_len(), 0);
    Outcome {
        frames,
        last_event_id: decoder.last_event_id().to_owned(),
        retry: decoder.retry(),
    }
}

fuzz_target!(|input: &[u8]| {
    let [config, cut, stream @ ..] = input else {
        return;
    };
    let whole = decode(*config, [stream].into_iter());
    let (a, b) = stream.split_at(usize::from(*cut) * stream.len() / 255);
    assert_eq!(decode(*config, [a, b].into_iter()), whole, "cut in two");
    if stream.len() <= 512 {
        assert_eq!(decode(*config, stream.chunks(1)), whole, "byte by byte");
    }
});
