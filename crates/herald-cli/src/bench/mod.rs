//! `herald bench`: a load generator for SSE hubs, the way `redis-benchmark` ships with Redis.
//! `fanout` measures deliveries per second, publish-to-delivery latency and loss; `connections`
//! measures what an idle subscription costs the hub. It drives Herald, nginx+nchan or a plain
//! SSE server alike, so that `bench/compare.sh` can put them side by side.
//!
//! Files: `args` (the command line), `subscribers` (the pool of subscriptions), `connect`
//! (HTTP/1.1, TLS and HTTP/2 subscriptions), `tls` (the client's TLS configuration), `body`
//! (chunked bodies), `publisher` (paced, concurrent publishing), `stats` (tallies and /proc),
//! `report` (table and JSON).

mod args;
mod body;
mod connect;
mod publisher;
mod report;
mod stats;
mod subscribers;
mod tls;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::time::Instant;

pub(crate) use args::Args;
use args::{BenchCommand, ConnectionsArgs, Endpoint, FanoutArgs, SubscribeArgs};
use connect::Connector;
use publisher::{PublishPlan, publish};
use report::{ConnectionsReport, FanoutReport, HubUsage, Latency};
use stats::{ProcSample, own_cpu, sample_tree, unix_nanos};
use subscribers::{Pool, PoolPlan};

/// Files kept for the publisher's connections, stdio and the runtime.
const SPARE_FILES: u64 = 128;
/// The ramp gives up when no subscription opens or fails for this long.
const RAMP_STALL: Duration = Duration::from_secs(15);
/// After the last publish, how long to wait for a delivery before counting the rest as lost.
const DRAIN_STALL: Duration = Duration::from_secs(3);
/// How long idle subscriptions settle before the hub's memory is read.
const SETTLE: Duration = Duration::from_secs(1);
/// The exit status when the run finished but lost, refused or failed to open something.
const UNCLEAN: u8 = 3;

/// Runs `herald bench`.
pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        match args.command {
            BenchCommand::Fanout(args) => fanout(args).await,
            BenchCommand::Connections(args) => connections(args).await,
        }
    })
}

/// The same topics never repeat across runs, so a server's buffered messages from an earlier
/// run never reach this one.
fn topic_names(count: u32) -> Vec<String> {
    let run = format!("{:x}{:x}", std::process::id(), unix_nanos() % (1 << 32));
    (0..count).map(|t| format!("bench-{run}-{t}")).collect()
}

/// Raises the open-file limit as far as the OS allows and checks that `subscribers` fit.
fn raise_file_limit(subscribers: u32) -> anyhow::Result<u64> {
    let limit = rlimit::increase_nofile_limit(u64::MAX).context("raising RLIMIT_NOFILE")?;
    let needed = u64::from(subscribers) + SPARE_FILES;
    if needed > limit {
        bail!(
            "{subscribers} subscribers need about {needed} open files, but the OS lets this \
             process hold {limit} (RLIMIT_NOFILE hard limit): run several `herald bench` \
             processes with fewer --subscribers each and add up their reports"
        );
    }
    Ok(limit)
}

/// Every hub of `args`, resolved, with how subscriptions reach it.
fn hubs(args: &SubscribeArgs) -> anyhow::Result<Vec<(Endpoint, Connector)>> {
    args.hub
        .iter()
        .map(|url| {
            let endpoint = Endpoint::resolve(url)?;
            let connector = connector(args, &endpoint)?;
            Ok((endpoint, connector))
        })
        .collect()
}

/// How the subscriptions of `args` reach `endpoint`.
fn connector(args: &SubscribeArgs, endpoint: &Endpoint) -> anyhow::Result<Connector> {
    let streams = args.streams_per_session();
    let tls = if args.uses_tls() {
        let alpn: &[&[u8]] = if streams.is_some() {
            &[b"h2"]
        } else {
            &[b"http/1.1"]
        };
        Some(tls::client_config(
            args.cacert.as_deref(),
            args.insecure,
            alpn,
        )?)
    } else {
        None
    };
    Connector::new(endpoint, tls, streams)
}

fn hub_sample(pid: Option<u32>) -> anyhow::Result<Option<ProcSample>> {
    pid.map(sample_tree).transpose()
}

/// Opens every subscription, with a progress bar, and waits until each is open or has failed.
async fn ramp(args: &SubscribeArgs, plan: Arc<PoolPlan>) -> anyhow::Result<Pool> {
    let asked = u64::from(args.subscribers);
    let pool = Pool::start(plan);
    let bar = indicatif::ProgressBar::new(asked).with_style(
        indicatif::ProgressStyle::with_template(
            "subscribing {bar:40} {pos}/{len} ({per_sec}, {elapsed})",
        )
        .context("progress bar template")?,
    );
    let progress = Arc::clone(pool.progress());
    let mut done = 0;
    let mut moved = Instant::now();
    while done < asked {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now =
            progress.connected.load(Ordering::Relaxed) + progress.failed.load(Ordering::Relaxed);
        if now != done {
            done = now;
            moved = Instant::now();
            bar.set_position(done);
        } else if moved.elapsed() > RAMP_STALL {
            bar.abandon();
            bail!(
                "the ramp stalled at {done} of {asked} subscriptions for {} s",
                RAMP_STALL.as_secs()
            );
        }
    }
    bar.finish_and_clear();
    let failed = progress.failed.load(Ordering::Relaxed);
    if failed > 0 {
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "herald bench: {failed} of {asked} subscriptions could not be opened: {}",
                progress.first_error().unwrap_or_default()
            );
        }
    }
    tokio::time::sleep(SETTLE).await;
    Ok(pool)
}

fn usage(before: Option<ProcSample>, idle: Option<ProcSample>, connected: u64) -> Option<HubUsage> {
    let (before, idle) = (before?, idle?);
    Some(HubUsage {
        rss_before_bytes: before.rss,
        rss_idle_bytes: idle.rss,
        memory_per_connection_bytes: idle.rss.saturating_sub(before.rss) / connected.max(1),
        rss_after_bytes: None,
        cpu_seconds: None,
        cpu_percent: None,
    })
}

fn print<T: serde::Serialize>(
    json: bool,
    report: &T,
    table: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    #[allow(clippy::print_stdout)]
    if json {
        println!("{}", serde_json::to_string(report)?);
    } else {
        print!("{}", table());
    }
    Ok(())
}

fn exit(clean: bool) -> ExitCode {
    if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(UNCLEAN)
    }
}

async fn connections(args: ConnectionsArgs) -> anyhow::Result<ExitCode> {
    let args = args.subscribe;
    let fd_limit = raise_file_limit(args.subscribers)?;
    let before = hub_sample(args.hub_pid)?;
    let plan = Arc::new(PoolPlan::new(
        hubs(&args)?,
        &topic_names(args.topics),
        args.subscribers,
        0,
    ));
    let pool = ramp(&args, plan).await?;
    let idle = hub_sample(args.hub_pid)?;
    let generator_rss_bytes = sample_tree(std::process::id()).ok().map(|s| s.rss);
    let progress = Arc::clone(pool.progress());
    let connected = progress.connected.load(Ordering::Relaxed);
    pool.stop().await?;
    let report = ConnectionsReport {
        bench: "connections",
        hub_url: args.hub_list(),
        subscribers_asked: args.subscribers,
        subscribers_connected: connected,
        subscribe_failures: progress.failed.load(Ordering::Relaxed),
        subscribers_dropped: progress.dropped.load(Ordering::Relaxed),
        fd_limit,
        hub: usage(before, idle, connected),
        generator_rss_bytes,
        errors: progress.first_error().into_iter().collect(),
    };
    print(args.json, &report, || report.table())?;
    Ok(exit(report.clean()))
}

async fn fanout(args: FanoutArgs) -> anyhow::Result<ExitCode> {
    let publish_endpoints = args.publish_endpoints()?;
    let sub = &args.subscribe;
    let fd_limit = raise_file_limit(sub.subscribers)?;
    let topics = topic_names(sub.topics);
    let before = hub_sample(sub.hub_pid)?;
    let plan = Arc::new(PoolPlan::new(
        hubs(sub)?,
        &topics,
        sub.subscribers,
        args.messages,
    ));
    let expected = plan.expected_deliveries();
    let pool = ramp(sub, plan).await?;
    let idle = hub_sample(sub.hub_pid)?;
    let progress = Arc::clone(pool.progress());
    let connected = progress.connected.load(Ordering::Relaxed);

    let cpu_start = own_cpu();
    let wall_start = Instant::now();
    let publish_start = unix_nanos();
    let published = publish(Arc::new(PublishPlan {
        style: args.publish_style,
        endpoints: publish_endpoints,
        token: args.token.clone(),
        // No ALPN here: the HTTP client sets its own.
        tls: tls::client_config(sub.cacert.as_deref(), sub.insecure, &[])?,
        topics,
        messages: args.messages,
        rate: args.rate,
        payload_bytes: args.payload_bytes,
    }))
    .await?;
    // Wait for the deliveries still in flight, until all came or none came for a while.
    let mut seen = progress.delivered.load(Ordering::Relaxed);
    let mut moved = Instant::now();
    while seen < expected && moved.elapsed() < DRAIN_STALL {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = progress.delivered.load(Ordering::Relaxed);
        if now != seen {
            (seen, moved) = (now, Instant::now());
        }
    }
    // A hub that died during the run must not take the report (and its loss figures) with it.
    let (after, after_error) = match hub_sample(sub.hub_pid) {
        Ok(after) => (after, None),
        Err(error) => (None, Some(format!("{error:#}"))),
    };
    let wall = wall_start.elapsed().as_secs_f64().max(1e-9);
    let generator_cpu = own_cpu().saturating_sub(cpu_start).as_secs_f64();
    let last_delivery = progress.last_delivery.load(Ordering::Relaxed);
    let outcome = pool.stop().await?;
    let tallies = &outcome.tallies;

    let delivery_span = last_delivery.saturating_sub(publish_start) as f64 / 1e9;
    let mut hub = usage(before, idle, connected);
    if let (Some(hub), Some(idle), Some(after)) = (hub.as_mut(), idle, after) {
        let cpu = after.cpu.saturating_sub(idle.cpu).as_secs_f64();
        hub.rss_after_bytes = Some(after.rss);
        hub.cpu_seconds = Some(cpu);
        hub.cpu_percent = Some(100.0 * cpu / wall);
    }
    let mut errors: Vec<String> = progress.first_error().into_iter().collect();
    errors.extend(published.first_error.clone());
    errors.extend(after_error);
    let report = FanoutReport {
        bench: "fanout",
        hub_url: sub.hub_list(),
        publish_style: args.publish_style.name(),
        subscribers_asked: sub.subscribers,
        subscribers_connected: connected,
        subscribe_failures: progress.failed.load(Ordering::Relaxed),
        subscribers_dropped: progress.dropped.load(Ordering::Relaxed),
        topics: sub.topics,
        messages: args.messages,
        payload_bytes: args.payload_bytes,
        rate_asked: args.rate,
        rate_achieved: published.achieved_rate(),
        publish_accepted: published.accepted,
        publish_failed: published.failed,
        deliveries_expected: expected,
        deliveries_received: tallies.received,
        lost: tallies.lost,
        duplicates: tallies.duplicates,
        out_of_order: tallies.out_of_order(),
        reordered: tallies.reordered,
        foreign: tallies.foreign,
        deliveries_per_second: if delivery_span > 0.0 {
            tallies.received as f64 / delivery_span
        } else {
            0.0
        },
        latency: Latency::of(&outcome.latency),
        duration_seconds: delivery_span,
        hub,
        generator_cpu_seconds: generator_cpu,
        generator_cpu_percent: 100.0 * generator_cpu / wall,
        fd_limit,
        errors,
    };
    print(sub.json, &report, || report.table())?;
    Ok(exit(report.clean()))
}
