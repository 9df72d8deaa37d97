//! `herald listen`: connect to an event stream as a browser's `EventSource` would, and print its
//! events live.

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::StreamExt;
use herald_client::{EventSource, Item, MessageEvent, ReadyState, StatusPolicy};

use crate::decode::write_event_line;

/// Listen to an event stream, reconnecting as a browser does, and print its events live.
///
/// Each event is printed as it arrives: by default its type and ID on one line, its data lines
/// below, and a blank line; with --json, exactly the lines `herald decode` writes:
///
///   {"type":"message","data":"...","id":"..."}
///
/// Connection state changes (open, lost and reconnecting, cannot connect and retrying, closed)
/// go to stderr. The stream is reconnected after a network error or its end, after the
/// server's `retry` delay (3 s until it sets one), sending Last-Event-ID. Durations are
/// written `500ms`, `10s`, `1m` or as a number of seconds, as in every herald command.
///
/// Exit status: 0 once --max-events events were printed, or when the server answers
/// 204 No Content (it asks clients to stop); 1 when the connection fails for good (a status
/// other than 200, a content type other than text/event-stream, too many redirects); 130 when
/// interrupted with Ctrl-C.
#[derive(Debug, clap::Args)]
#[command(
    verbatim_doc_comment,
    after_help = "Examples:\n  herald listen http://127.0.0.1:8080/events\n  herald listen --json --event tick --max-events 10 http://127.0.0.1:8080/clock\n  herald listen -H 'Authorization: Bearer TOKEN' -H 'Content-Type: application/json' \\\n      --data '{\"stream\":true}' https://api.example.com/v1/stream"
)]
pub(crate) struct Args {
    /// The event stream's URL (http or https).
    url: String,
    /// Print each event as the JSON line `herald decode` writes.
    #[arg(long)]
    json: bool,
    /// Print only events of this type (repeatable); --max-events counts only those printed.
    #[arg(long = "event", value_name = "NAME")]
    events: Vec<String>,
    /// Add a request header, as 'Name: value' (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// Resume from this ID: sent as Last-Event-ID on the first request.
    #[arg(long, value_name = "ID")]
    last_event_id: Option<String>,
    /// The request method (default GET, or POST with --data).
    #[arg(short = 'X', long, value_name = "METHOD")]
    method: Option<String>,
    /// Send this request body on every connection; @FILE reads it from a file, - (or @-) from
    /// stdin.
    #[arg(short = 'd', long, value_name = "BODY")]
    data: Option<String>,
    /// Exit with status 0 after printing this many events (at least 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_events: Option<u64>,
    /// Give up on a connection attempt that gets no response head within DURATION (`10s`,
    /// `500ms`, or a number of seconds).
    #[arg(long, value_name = "DURATION", value_parser = timeout)]
    connect_timeout: Option<Duration>,
    /// Reconnect when the stream stays silent (keep-alive comments included) for DURATION
    /// (`1m`, `45s`, or a number of seconds).
    #[arg(long, value_name = "DURATION", value_parser = timeout)]
    idle_timeout: Option<Duration>,
    /// Also retry on 429 and 5xx answers (honouring Retry-After), as streaming APIs expect.
    #[arg(long)]
    retry_transient: bool,
    /// Keep cookies the server sets and send them back (withCredentials).
    #[arg(long)]
    cookies: bool,
    /// Also trust the certificates in this PEM file (a private CA, a self-signed server).
    #[arg(long, value_name = "FILE")]
    cacert: Option<std::path::PathBuf>,
    /// Speak HTTP/2 with prior knowledge to http:// URLs (h2c).
    #[arg(long, conflicts_with = "http1")]
    http2_prior_knowledge: bool,
    /// Speak HTTP/1.1 only.
    #[arg(long)]
    http1: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime failed")?;
    runtime.block_on(listen(args))
}

fn source(args: &Args) -> anyhow::Result<EventSource> {
    let mut builder = EventSource::builder(&args.url);
    for header in &args.headers {
        let Some((name, value)) = header.split_once(':') else {
            bail!("header {header:?} is not 'Name: value'");
        };
        builder = builder.header(name.trim(), value.trim());
    }
    if let Some(id) = &args.last_event_id {
        builder = builder.last_event_id(id);
    }
    if let Some(data) = &args.data {
        builder = builder
            .method(http::Method::POST)
            .body(crate::input::data(data)?);
    }
    if let Some(method) = &args.method {
        let method = http::Method::from_bytes(method.as_bytes())
            .with_context(|| format!("invalid method {method:?}"))?;
        builder = builder.method(method);
    }
    if let Some(timeout) = args.connect_timeout {
        builder = builder.connect_timeout(timeout);
    }
    if let Some(timeout) = args.idle_timeout {
        builder = builder.idle_timeout(timeout);
    }
    if args.retry_transient {
        builder = builder.status_policy(StatusPolicy::RetryTransient);
    }
    if args.cookies {
        builder = builder.with_credentials();
    }
    if let Some(path) = &args.cacert {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        builder = builder.add_root_certificates_pem(&pem);
    }
    if args.http2_prior_knowledge {
        builder = builder.http2_prior_knowledge();
    }
    if args.http1 {
        builder = builder.http1_only();
    }
    Ok(builder.build()?)
}

/// A timeout in the duration syntax every Herald flag takes (bare numbers are seconds).
fn timeout(text: &str) -> Result<Duration, String> {
    let duration = herald_hub::config::duration_text::parse(text)?;
    if duration.is_zero() {
        // A zero timeout would end every attempt at once, reconnecting in a loop.
        return Err("must be more than 0".to_owned());
    }
    Ok(duration)
}

/// Exit status after Ctrl-C: 128 + SIGINT, as shells report it.
const INTERRUPTED: u8 = 130;

async fn listen(args: Args) -> anyhow::Result<ExitCode> {
    let mut source = source(&args)?;
    let mut out = io::stdout().lock();
    let mut printed = 0u64;
    // Whether the current connection got its response: a failure before that is not a loss.
    let mut open = false;
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    status(&format!("connecting to {}", source.url()));
    loop {
        let item = tokio::select! {
            item = source.next() => item,
            _ = &mut interrupt => {
                source.close();
                status("interrupted");
                return Ok(ExitCode::from(INTERRUPTED));
            }
        };
        match item {
            Some(Ok(Item::Open(opened))) => {
                open = true;
                status(&format!("open: {} ({:?})", opened.url(), opened.version()));
            }
            Some(Ok(Item::Message(event))) => {
                if !args.events.is_empty() && !args.events.iter().any(|t| t == event.event_type()) {
                    continue;
                }
                match print(&mut out, &event, args.json) {
                    Err(error) if error.kind() == io::ErrorKind::BrokenPipe => {
                        return Ok(ExitCode::SUCCESS);
                    }
                    other => other.context("writing to stdout failed")?,
                }
                printed += 1;
                if args.max_events.is_some_and(|max| printed >= max) {
                    source.close();
                    let events = if printed == 1 { "event" } else { "events" };
                    status(&format!("closed after {printed} {events}"));
                    return Ok(ExitCode::SUCCESS);
                }
            }
            Some(Err(error)) if source.ready_state() == ReadyState::Closed => {
                status(&format!("closed: {}", describe(&error)));
                return Ok(if error.is_no_content() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                });
            }
            Some(Err(error)) if error.is_decode() => status(&describe(&error)),
            Some(Err(error)) => {
                let what = if std::mem::take(&mut open) {
                    "connection lost: {}; reconnecting"
                } else {
                    "cannot connect: {}; retrying"
                };
                status(&what.replace("{}", &describe(&error)));
            }
            None => {
                status("closed");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
}

fn print(out: &mut impl Write, event: &MessageEvent, json: bool) -> io::Result<()> {
    if json {
        write_event_line(out, event)?;
    } else {
        out.write_all(event.event_type().as_bytes())?;
        if !event.last_event_id().is_empty() {
            write!(out, " id={}", event.last_event_id())?;
        }
        writeln!(out)?;
        writeln!(out, "{}", event.data())?;
        writeln!(out)?;
    }
    out.flush()
}

/// An error and its causes, on one line.
fn describe(error: &herald_client::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[allow(clippy::print_stderr)]
fn status(message: &str) {
    eprintln!("herald listen: {message}");
}
