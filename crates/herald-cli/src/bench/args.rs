//! The command line of `herald bench`: what to load, how hard, and where to publish. Kept apart
//! from the run so that every rule about valid combinations lives in one place.

use std::net::{SocketAddr, ToSocketAddrs as _};

use anyhow::{Context as _, bail};
use url::Url;

/// Load-test an SSE hub: Herald, nginx+nchan, or any server with a subscribe URL and a
/// publish URL.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub(crate) command: BenchCommand,
}

/// The two measurements.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum BenchCommand {
    /// Open N subscriptions, publish M updates at a fixed rate, and check that every subscriber
    /// got every update once and in order; report throughput, latency, memory and CPU.
    Fanout(FanoutArgs),
    /// Hold N idle subscriptions and report the hub's memory per connection.
    Connections(ConnectionsArgs),
}

/// What both measurements share: the subscribers and the report.
#[derive(Debug, clap::Args)]
pub(crate) struct SubscribeArgs {
    /// The URL subscribers GET (`?topic=` is appended): the hub's `/.well-known/mercure`, an
    /// nchan eventsource location, a plain SSE endpoint. Given once per node of a cluster,
    /// subscribers are spread round robin over the nodes, and updates (`--publish-style
    /// herald` without `--publish-url`) published round robin through them.
    #[arg(long, required = true)]
    pub(crate) hub: Vec<Url>,
    /// How many subscriptions to open (one HTTP/1.1 connection each, or HTTP/2 streams with
    /// `--http2`).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) subscribers: u32,
    /// Connect over TLS (implied by an https:// URL), offering HTTP/1.1 by ALPN, or h2 with
    /// `--http2`.
    #[arg(long)]
    pub(crate) tls: bool,
    /// Accept any server certificate (a hub with a self-signed test certificate).
    #[arg(long, conflicts_with = "cacert")]
    pub(crate) insecure: bool,
    /// Also trust the certificates in this PEM file (a private CA, a self-signed hub).
    #[arg(long)]
    pub(crate) cacert: Option<std::path::PathBuf>,
    /// Subscribe over HTTP/2: h2 by ALPN over TLS, h2c with prior knowledge otherwise; one
    /// session per subscription unless `--streams-per-session` says more.
    #[arg(long)]
    pub(crate) http2: bool,
    /// With HTTP/2, how many subscriptions share one session (as a browser's tabs share one
    /// connection); implies `--http2`.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) streams_per_session: Option<u32>,
    /// How many topics the subscribers are spread over (round robin).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) topics: u32,
    /// The hub's process ID, to report its memory (RSS) and CPU time, children included (nginx
    /// workers); read from /proc.
    #[arg(long)]
    pub(crate) hub_pid: Option<u32>,
    /// Print the report as one JSON line instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `herald bench fanout`.
#[derive(Debug, clap::Args)]
pub(crate) struct FanoutArgs {
    #[command(flatten)]
    pub(crate) subscribe: SubscribeArgs,
    /// How many updates to publish (each goes to one topic, round robin), at most 100 million.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub(crate) messages: u64,
    /// The publish rate asked for, in updates per second.
    #[arg(long, default_value_t = 1000.0, value_parser = positive_rate)]
    pub(crate) rate: f64,
    /// The size of each update's data; it carries a sequence number and its send time, padded
    /// to this size (at least that header's size), at most 16 MiB.
    #[arg(long, default_value_t = 64, value_parser = payload_size)]
    pub(crate) payload_bytes: usize,
    /// The publisher's JWT, sent as a bearer token (whatever the publish style).
    #[arg(long, env = "HERALD_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// How to publish: a Mercure form POST to the hub (`herald`), the raw body POSTed to an
    /// nchan publisher location with `?topic=` (`nchan`), or the raw body POSTed as is
    /// (`raw-post`, a single-channel server).
    #[arg(long, value_enum, default_value_t = PublishStyle::Herald)]
    pub(crate) publish_style: PublishStyle,
    /// Where to publish; defaults to `--hub` for the `herald` style, required otherwise.
    #[arg(long)]
    pub(crate) publish_url: Option<Url>,
}

/// `herald bench connections`.
#[derive(Debug, clap::Args)]
pub(crate) struct ConnectionsArgs {
    #[command(flatten)]
    pub(crate) subscribe: SubscribeArgs,
}

/// How updates are published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum PublishStyle {
    /// Mercure: `POST` form `topic=..&data=..` with a bearer token.
    Herald,
    /// nchan: the raw body to the publisher location, the topic as `?topic=`.
    Nchan,
    /// The raw body to one URL (a server with a single channel).
    RawPost,
}

/// The slowest and fastest publish rates accepted, in updates per second.
const RATES: std::ops::RangeInclusive<f64> = 0.001..=10_000_000.0;

fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if RATES.contains(&rate) => Ok(rate),
        _ => Err(format!(
            "`{text}` is not a rate from {} to {} updates per second",
            RATES.start(),
            RATES.end()
        )),
    }
}

/// The largest payload: the event size a decoder accepts by default.
const MAX_PAYLOAD: usize = herald_codec::DEFAULT_MAX_EVENT_SIZE;

fn payload_size(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(size) if size <= MAX_PAYLOAD => Ok(size),
        _ => Err(format!(
            "`{text}` is not a size from 0 to {MAX_PAYLOAD} bytes"
        )),
    }
}

/// An endpoint resolved once: where to connect and what to ask for.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// The address connections go to.
    pub(crate) addr: SocketAddr,
    /// The `Host` header.
    pub(crate) host: String,
    /// The URL itself.
    pub(crate) url: Url,
}

impl Endpoint {
    /// Resolves `url`, an `http` or `https` URL.
    pub(crate) fn resolve(url: &Url) -> anyhow::Result<Endpoint> {
        if url.scheme() != "http" && url.scheme() != "https" {
            bail!("`{url}` must be an http:// or https:// URL");
        }
        let host = url
            .host_str()
            .with_context(|| format!("`{url}` has no host"))?;
        let port = url.port_or_known_default().unwrap_or(80);
        let addr = (host, port)
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve {host}"))?
            .next()
            .with_context(|| format!("{host} has no address"))?;
        let host = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        Ok(Endpoint {
            addr,
            host,
            url: url.clone(),
        })
    }

    /// The path and query of this URL with `topic=TOPIC` appended.
    pub(crate) fn path_with_topic(&self, topic: &str) -> String {
        let mut url = self.url.clone();
        url.query_pairs_mut().append_pair("topic", topic);
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }
}

impl SubscribeArgs {
    /// Whether subscriptions go over TLS.
    pub(crate) fn uses_tls(&self) -> bool {
        self.tls || self.hub.iter().any(|hub| hub.scheme() == "https")
    }

    /// The hubs, as one text (for reports).
    pub(crate) fn hub_list(&self) -> String {
        self.hub
            .iter()
            .map(Url::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// How many subscriptions share an HTTP/2 session; `None` for HTTP/1.1.
    pub(crate) fn streams_per_session(&self) -> Option<u32> {
        match (self.http2, self.streams_per_session) {
            (_, Some(streams)) => Some(streams),
            (true, None) => Some(1),
            (false, None) => None,
        }
    }
}

impl FanoutArgs {
    /// Where updates go (round robin), after checking that the style has what it needs.
    pub(crate) fn publish_endpoints(&self) -> anyhow::Result<Vec<Endpoint>> {
        if self.publish_style == PublishStyle::RawPost && self.subscribe.topics != 1 {
            bail!("--publish-style raw-post publishes to a single channel: --topics must be 1");
        }
        match (self.publish_style, &self.publish_url) {
            (_, Some(url)) => Ok(vec![Endpoint::resolve(url)?]),
            (PublishStyle::Herald, None) => self
                .subscribe
                .hub
                .iter()
                .map(|hub| {
                    let mut hub = hub.clone();
                    if self.subscribe.uses_tls() {
                        // `--tls` with an http:// URL: the hub speaks TLS on that port.
                        let _ = hub.set_scheme("https");
                    }
                    Endpoint::resolve(&hub)
                })
                .collect(),
            (style, None) => bail!(
                "--publish-style {} needs --publish-url (the URL updates are POSTed to)",
                style.name()
            ),
        }
    }
}

impl PublishStyle {
    /// The name as given on the command line.
    pub(crate) fn name(self) -> &'static str {
        match self {
            PublishStyle::Herald => "herald",
            PublishStyle::Nchan => "nchan",
            PublishStyle::RawPost => "raw-post",
        }
    }
}
