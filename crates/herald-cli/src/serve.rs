//! `herald serve`: run the Mercure hub. With no key configured it starts in development mode.

mod keys;
mod mercure;
mod settings;

use std::io::IsTerminal as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use herald_hub::Hub;
use herald_hub::config::UiTokens;
use herald_hub::dev::DevCredentials;
use herald_hub::server::Server;

use keys::Keys;
use settings::{LogFormat, Settings};

/// Run the push hub (Mercure protocol). With no key at all it starts in development mode.
///
/// Every setting is a flag, a `HERALD_*` variable (shown) and a key of the `--config` TOML file
/// (the flag's name: `history-size = 100`); flags and variables win over the file. Durations
/// are written `40s`, `500ms`, `10m`, `1h 30m` or as seconds. Logs go to stderr, filtered by
/// `RUST_LOG` (or `HERALD_LOG`; default `info`); every refused request is logged at `info`.
///
/// A Mercure deployment's variables are honoured below the settings: `MERCURE_PUBLISHER_JWT_KEY`,
/// `MERCURE_SUBSCRIBER_JWT_KEY` and their `_ALG` companions, `SERVER_NAME` (plain HTTP
/// addresses, or HTTPS ones with --tls-cert) and `MERCURE_EXTRA_DIRECTIVES` (`anonymous`,
/// `subscriptions`, `cors_origins`, `publish_origins`, `heartbeat`, `write_timeout`,
/// `cookie_name`, `publisher_jwt`, `subscriber_jwt`, `*_jwks_url`, `ui`; any other directive
/// is refused). An empty key, key variable or key file is refused.
///
/// Development mode (no key, key file or JWK Set at all) generates a key, prints tokens, and
/// turns on anonymous subscribers, the subscriptions API, the debug page and pages on loopback
/// origins, each unless set explicitly.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  herald serve                                   # development mode on 127.0.0.1:8080
  herald serve --jwt-key \"$SECRET\" --addr 0.0.0.0:8080 --metrics-addr 127.0.0.1:9090
  herald serve --jwt-key-file /run/secrets/jwt --data-dir /var/lib/herald
  herald serve --jwt-alg RS256 --jwt-key \"$(cat public.pem)\" --cors-origin https://app.example.com
  herald serve --publisher-jwt-key \"$SECRET\" --subscriber-jwks-url https://auth.example.com/jwks.json
  herald serve --config /etc/herald/herald.toml --print-config")]
pub(crate) struct Args {
    /// TOML file with the same keys as the flags (`addr = ["127.0.0.1:8080", "[::1]:8080"]`).
    #[arg(long, env = "HERALD_CONFIG")]
    config: Option<PathBuf>,
    /// Print the configuration in force (development mode's choices and Mercure variables
    /// included, secrets masked) as TOML, and exit.
    #[arg(long)]
    print_config: bool,
    #[command(flatten)]
    settings: Box<Settings>,
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The settings in force: flags and variables, the file, Mercure's variables, development
/// mode's choices, the defaults; and whether it is development mode.
fn resolve(args: &Args) -> anyhow::Result<(Settings, Keys, bool)> {
    let file = match &args.config {
        Some(path) => Settings::from_file(path)?,
        None => Settings::default(),
    };
    let explicit = args.settings.as_ref().clone().or(file);
    let tls = explicit.tls_cert.is_some();
    let mut settings = explicit.or(mercure::settings(&env_var, tls)?);
    let development = !settings.has_keys();
    if development {
        settings = settings.or(Settings::development());
    }
    let settings = settings.with_defaults();
    let keys = Keys::resolve(&settings)?;
    Ok((settings, keys, development))
}

#[allow(clippy::print_stdout)]
pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (settings, keys, development) = resolve(&args)?;
    let mut config = settings.hub_config(keys)?;
    if args.print_config {
        if development {
            println!(
                "# development mode: no key is configured, so a random key is generated at \
                 start\n# and printed with ready-made tokens"
            );
        }
        print!("{}", settings.masked_toml()?);
        return Ok(ExitCode::SUCCESS);
    }
    init_logs(settings.log_format.unwrap_or(LogFormat::Pretty));
    let tls = match (&settings.tls_cert, &settings.tls_key) {
        (Some(cert), Some(key)) => Some(herald_hub::server::server_config(cert, key)?),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let credentials = if development {
        let (dev_config, credentials) = herald_hub::dev::development(config)?;
        config = dev_config;
        if config.ui {
            config.ui_tokens = page_tokens(&settings.addr, &credentials);
        }
        Some(credentials)
    } else {
        None
    };
    let ui = config.ui;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    // A shared transport starts its reader on the runtime.
    let hub = {
        let _entered = runtime.enter();
        Hub::new(config)?
    };
    let addrs = settings.addr.clone();
    let metrics_addr = settings.metrics_addr;
    runtime.block_on(async move {
        let mut server = Server::new(hub.clone());
        for addr in addrs {
            server = server.listener(bind(addr).await?);
        }
        if let Some(addr) = metrics_addr {
            server = server.metrics_listener(bind(addr).await?);
        }
        if let Some(tls) = tls {
            server = server.tls(tls);
        }
        let locals = server.local_addrs()?;
        let urls: Vec<String> = locals
            .iter()
            .map(|addr| format!("{scheme}://{}/.well-known/mercure", reachable(*addr)))
            .collect();
        match &credentials {
            Some(credentials) => {
                print_development_banner(&urls, hub.config(), credentials);
                announce(&locals[1..], &urls[1..]);
            }
            None => announce(&locals, &urls),
        }
        if ui {
            announce_page(&locals, scheme);
        }
        for addr in server.metrics_addrs()? {
            announce_metrics(addr);
        }
        tracing::info!(addresses = ?locals, tls = scheme == "https", "hub started");
        hub.fetch_key_sets().await;
        server.run(shutdown_signal()).await.context("serving")?;
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}

/// An address a client on this machine can use: the loopback address for a wildcard bind.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}

/// What a wildcard bind means, after its reachable URL.
fn every_interface(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!(" (listening on {addr}: every interface)")
    } else {
        String::new()
    }
}

/// The development tokens the debug page fills in. The page hands them to whoever loads it, so
/// only when the hub listens on loopback alone; elsewhere the visitor pastes one.
fn page_tokens(addrs: &[SocketAddr], credentials: &DevCredentials) -> Option<UiTokens> {
    addrs
        .iter()
        .all(|addr| addr.ip().is_loopback())
        .then(|| UiTokens {
            publisher: Some(credentials.publisher_token.clone()),
            subscriber: Some(credentials.subscriber_token.clone()),
            admin: Some(credentials.admin_token.clone()),
        })
}

/// Logs to stderr in `format`, filtered by `RUST_LOG`, else `HERALD_LOG`, else `info`.
fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_env("HERALD_LOG"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal: not in a file, a pipe or journald.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // Fails only if a subscriber is already installed, which then keeps logging.
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// Ctrl-C, or SIGTERM (what container runtimes send) on Unix.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutdown requested");
}

#[allow(clippy::print_stderr)]
fn announce(addrs: &[SocketAddr], urls: &[String]) {
    for (addr, url) in addrs.iter().zip(urls) {
        eprintln!("herald: hub listening on {url}{}", every_interface(*addr));
    }
}

#[allow(clippy::print_stderr)]
fn announce_page(addrs: &[SocketAddr], scheme: &str) {
    if let Some(addr) = addrs.first() {
        eprintln!("herald: debug page on {scheme}://{}/", reachable(*addr));
    }
}

#[allow(clippy::print_stderr)]
fn announce_metrics(addr: SocketAddr) {
    eprintln!(
        "herald: metrics on http://{}/metrics (and /healthz, /readyz){}",
        reachable(addr),
        every_interface(addr)
    );
}

#[allow(clippy::print_stderr)]
fn print_development_banner(
    urls: &[String],
    config: &herald_hub::HubConfig,
    credentials: &DevCredentials,
) {
    let hub = urls.first().map(String::as_str).unwrap_or_default();
    let on_off = |on: bool| if on { "on" } else { "off" };
    let cors = if config.cors_origins.is_empty() {
        "none".to_owned()
    } else {
        config.cors_origins.join(" ")
    };
    eprintln!(
        "\
herald: DEVELOPMENT MODE (no JWT key configured): a random key was generated and the tokens
herald: below grant everything. Never use this in production; set --jwt-key (or
herald: HERALD_JWT_KEY, or --jwt-key-file) instead.
herald: anonymous subscribers: {anonymous}; subscriptions API: {subscriptions}; debug page: {ui}
herald: pages allowed cross-origin (CORS): {cors}
herald:   (--cors-origin https://app.example.com sets the origins instead)

hub:               {hub}
key (HS256):       {key}
publisher token:   {publisher}
subscriber token:  {subscriber}
admin token:       {admin}

subscribe:  curl -N '{hub}?topic=https://example.com/books/1'
publish:    curl -d 'topic=https://example.com/books/1' -d 'data=hello' \\
              -H 'Authorization: Bearer {publisher}' {hub}
        or: herald publish --hub {hub} --token {publisher} \\
              --topic https://example.com/books/1 --data hello
disconnect: herald admin disconnect --hub {hub} --token {admin} --topic '*'
",
        key = credentials.key,
        publisher = credentials.publisher_token,
        subscriber = credentials.subscriber_token,
        admin = credentials.admin_token,
        anonymous = on_off(config.anonymous),
        subscriptions = on_off(config.subscriptions),
        ui = on_off(config.ui),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_gets_development_tokens_only_on_loopback() {
        let credentials = DevCredentials {
            key: "k".into(),
            publisher_token: "p".into(),
            subscriber_token: "s".into(),
            admin_token: "a".into(),
        };
        let loopback: Vec<SocketAddr> = vec![
            ([127, 0, 0, 1], 8080).into(),
            "[::1]:8080".parse().expect("address"),
        ];
        let tokens = page_tokens(&loopback, &credentials).expect("tokens on loopback");
        assert_eq!(tokens.publisher.as_deref(), Some("p"));
        assert_eq!(tokens.subscriber.as_deref(), Some("s"));
        assert_eq!(tokens.admin.as_deref(), Some("a"));
        for exposed in ["0.0.0.0:8080", "[::]:8080", "192.168.1.2:8080"] {
            let addrs = vec![loopback[0], exposed.parse().expect("address")];
            assert_eq!(page_tokens(&addrs, &credentials), None, "{exposed}");
        }
    }
}
