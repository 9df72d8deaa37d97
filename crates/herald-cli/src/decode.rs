//! `herald decode`: a `text/event-stream` on stdin, one JSON line per dispatched event on stdout.

use std::io::{self, BufWriter, Read, Write};
use std::process::ExitCode;

use anyhow::Context;
use herald_codec::{Decoder, EventRef, FrameRef, MessageEvent};
use serde::Serialize;

/// Decode an event stream from stdin into JSON lines, exactly as a browser would dispatch it.
///
/// Each dispatched event is written, and flushed, as soon as its closing blank line arrives, so
/// a live stream can be piped in:
///
///   {"type":"message","data":"...","id":"..."}
///
/// `type` is the event type (`message` unless the stream named it), `data` the event's data
/// lines joined with LF, and `id` the last event ID in force ("" if none). At the end of input
/// one more line gives the stream's final state:
///
///   {"retry":3000,"last_event_id":"..."}
///
/// where `retry` is the last reconnection time the stream set, in milliseconds, or null if it
/// set none. Bytes that are not UTF-8 become U+FFFD; an event without its blank line at the end
/// of input is dropped, as browsers drop it.
///
/// When nothing was dispatched and some lines had a field name event streams never use (an HTML
/// page, random bytes), a warning on stderr says the input does not look like an event stream.
///
/// Exit status: 0 on success; 1 if reading failed or an event was dropped because it broke a
/// size limit (each such event is reported on stderr).
#[derive(Debug, clap::Args)]
#[command(
    verbatim_doc_comment,
    after_help = "Example:\n  curl -sN http://127.0.0.1:8080/events | herald decode\n  printf 'event: ping\\nid: 1\\ndata: hi\\n\\n' | herald decode"
)]
pub(crate) struct Args {
    /// Also write each comment line, as {"comment":"..."}.
    #[arg(long)]
    comments: bool,
    /// Longest line accepted, in bytes; an event with a longer line is dropped and reported.
    #[arg(long, value_name = "BYTES", default_value_t = herald_codec::DEFAULT_MAX_LINE_LEN)]
    max_line_len: usize,
    /// Largest event data accepted, in bytes; a larger event is dropped and reported.
    #[arg(long, value_name = "BYTES", default_value_t = herald_codec::DEFAULT_MAX_EVENT_SIZE)]
    max_event_size: usize,
}

/// One dispatched event, as `herald decode` and `herald listen --json` write it.
#[derive(Debug, Serialize)]
pub(crate) struct EventLine<'a> {
    #[serde(rename = "type")]
    event_type: &'a str,
    data: &'a str,
    id: &'a str,
}

impl<'a> From<EventRef<'a>> for EventLine<'a> {
    fn from(event: EventRef<'a>) -> Self {
        EventLine {
            event_type: event.event_type(),
            data: event.data(),
            id: event.last_event_id(),
        }
    }
}

impl<'a> From<&'a MessageEvent> for EventLine<'a> {
    fn from(event: &'a MessageEvent) -> Self {
        EventLine {
            event_type: event.event_type(),
            data: event.data(),
            id: event.last_event_id(),
        }
    }
}

#[derive(Debug, Serialize)]
struct CommentLine<'a> {
    comment: &'a str,
}

#[derive(Debug, Serialize)]
struct EndLine<'a> {
    retry: Option<u64>,
    last_event_id: &'a str,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut decoder = Decoder::builder()
        .comments(args.comments)
        .max_line_len(args.max_line_len)
        .max_event_size(args.max_event_size)
        .build();
    let mut stdin = io::stdin().lock();
    let mut out = BufWriter::new(io::stdout().lock());
    let mut chunk = vec![0u8; 64 * 1024];
    let mut dropped = 0usize;
    let mut census = FieldCensus::default();
    match decode_all(
        &mut stdin,
        &mut out,
        &mut decoder,
        &mut chunk,
        &mut dropped,
        &mut census,
    ) {
        Err(error) if is_broken_pipe(&error) => return Ok(ExitCode::SUCCESS),
        other => other?,
    }
    if census.dispatched == 0 && census.unknown > 0 {
        warn_not_a_stream(census.unknown);
    }
    Ok(if dropped == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn decode_all(
    input: &mut impl Read,
    out: &mut impl Write,
    decoder: &mut Decoder,
    chunk: &mut [u8],
    dropped: &mut usize,
    census: &mut FieldCensus,
) -> anyhow::Result<()> {
    loop {
        let read = match input.read(chunk) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error).context("reading standard input failed"),
        };
        if census.dispatched == 0 {
            census.feed(&chunk[..read]);
        }
        // Events are written as they are found, straight from the borrowed frames.
        let mut wrote = false;
        let mut failed = Ok(());
        decoder.feed(&chunk[..read], |frame| {
            if failed.is_err() {
                return; // the output is gone: nothing more can be written
            }
            failed = match frame {
                Ok(FrameRef::Event(event)) => {
                    census.dispatched += 1;
                    write_line(out, &EventLine::from(event))
                }
                Ok(FrameRef::Comment(comment)) => write_line(out, &CommentLine { comment }),
                Ok(FrameRef::Retry(_)) => return,
                Err(error) => {
                    *dropped += 1;
                    report_dropped(&error);
                    return;
                }
            };
            wrote = true;
        });
        failed?;
        if wrote {
            out.flush()?;
        }
    }
    decoder.finish();
    let end = EndLine {
        retry: decoder
            .retry()
            .map(|retry| u64::try_from(retry.as_millis()).unwrap_or(u64::MAX)),
        last_event_id: decoder.last_event_id(),
    };
    write_line(out, &end)?;
    out.flush()?;
    Ok(())
}

#[allow(clippy::print_stderr)]
fn warn_not_a_stream(unknown: u64) {
    let lines = if unknown == 1 {
        "line has"
    } else {
        "lines have"
    };
    eprintln!(
        "herald decode: warning: no event was dispatched, and {unknown} {lines} a field name \
         event streams never use (only data, event, id and retry mean something): is the \
         input a text/event-stream?"
    );
}

/// Counts the lines whose field name an event stream never uses, until an event is
/// dispatched: the sign of an input that is not an event stream.
#[derive(Debug, Default)]
struct FieldCensus {
    /// Events dispatched so far.
    dispatched: u64,
    /// Lines with an unknown field name.
    unknown: u64,
    /// The current line's field name so far (its first bytes).
    name: Vec<u8>,
    /// Whether the current line's field name is over (a `:` was seen).
    named: bool,
    /// Whether the previous byte was CR (a CRLF's LF ends nothing more).
    after_cr: bool,
}

impl FieldCensus {
    /// Longer names are unknown whatever follows.
    const LONGEST: usize = 8;

    fn feed(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            let after_cr = std::mem::replace(&mut self.after_cr, byte == b'\r');
            match byte {
                b'\n' if after_cr => {}
                b'\r' | b'\n' => {
                    if !self.named {
                        self.classify();
                    }
                    self.name.clear();
                    self.named = false;
                }
                b':' if !self.named => {
                    self.named = true;
                    self.classify();
                }
                _ if !self.named && self.name.len() <= Self::LONGEST => self.name.push(byte),
                _ => {}
            }
        }
    }

    fn classify(&mut self) {
        let name = self
            .name
            .strip_prefix(b"\xEF\xBB\xBF")
            .unwrap_or(&self.name);
        if !name.is_empty() && !matches!(name, b"data" | b"event" | b"id" | b"retry") {
            self.unknown += 1;
        }
    }
}

#[allow(clippy::print_stderr)]
fn report_dropped(error: &herald_codec::DecodeError) {
    eprintln!("herald decode: dropped an event: {error}");
}

/// Writes one event as the JSON line `herald decode` prints for it (`herald listen --json`).
pub(crate) fn write_event_line(out: &mut impl Write, event: &MessageEvent) -> io::Result<()> {
    write_line(out, &EventLine::from(event))
}

fn write_line(out: &mut impl Write, line: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer(&mut *out, line)?;
    out.write_all(b"\n")
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<io::Error>()
        .is_some_and(|error| error.kind() == io::ErrorKind::BrokenPipe)
}
