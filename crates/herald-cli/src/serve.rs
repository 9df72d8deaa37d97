//! `herald serve`: run the Mercure hub. With no key configured it starts in development mode.

mod settings;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use herald_hub::Hub;
use herald_hub::config::UiTokens;
use herald_hub::dev::DevCredentials;
use herald_hub::server::Server;

use settings::{LogFormat, Settings};

/// Run the push hub (Mercure protocol). With no key at all it starts in development mode.
///
/// Every setting is a flag, a `HERALD_*` variable (shown) and a key of the `--config` TOML file
/// (the flag's name: `history-size = 100`); flags and variables win over the file. A Mercure
/// deployment's `MERCURE_PUBLISHER_JWT_KEY`, `MERCURE_SUBSCRIBER_JWT_KEY` and their `_ALG`
/// variables are honoured too, when no corresponding setting is given. Logs go to stderr,
/// filtered by `RUST_LOG` (or `HERALD_LOG`; default `info`).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// TOML file with the same keys as the flags (`addr = ["127.0.0.1:8080", "[::1]:8080"]`).
    #[arg(long, env = "HERALD_CONFIG")]
    config: Option<PathBuf>,
    /// Print the effective configuration (secrets masked) as TOML, and exit.
    #[arg(long)]
    print_config: bool,
    #[command(flatten)]
    settings: Box<Settings>,
}

fn env_fallback(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

#[allow(clippy::print_stdout)]
pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let file = match &args.config {
        Some(path) => Settings::from_file(path)?,
        None => Settings::default(),
    };
    let settings = args.settings.or(file).with_defaults();
    if args.print_config {
        print!("{}", settings.masked_toml()?);
        return Ok(ExitCode::SUCCESS);
    }
    init_logs(settings.log_format.unwrap_or(LogFormat::Pretty));
    let (mut config, development) = settings.hub_config(env_fallback)?;
    let tls = match (&settings.tls_cert, &settings.tls_key) {
        (Some(cert), Some(key)) => Some(herald_hub::server::server_config(cert, key)?),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let credentials = if development {
        let (dev_config, credentials) =
            herald_hub::dev::development(config).context("development mode")?;
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
    runtime.block_on(async move {
        let mut server = Server::new(hub);
        for addr in addrs {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?;
            server = server.listener(listener);
        }
        if let Some(tls) = tls {
            server = server.tls(tls);
        }
        let locals = server.local_addrs()?;
        let urls: Vec<String> = locals
            .iter()
            .map(|addr| format!("{scheme}://{addr}/.well-known/mercure"))
            .collect();
        match &credentials {
            Some(credentials) => {
                print_development_banner(&urls, credentials);
                announce(&urls[1..]);
            }
            None => announce(&urls),
        }
        if ui {
            announce_page(&locals, scheme);
        }
        tracing::info!(addresses = ?locals, tls = scheme == "https", "hub started");
        server.run(shutdown_signal()).await.context("serving")?;
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
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
        })
}

/// Logs to stderr in `format`, filtered by `RUST_LOG`, else `HERALD_LOG`, else `info`.
fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_env("HERALD_LOG"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
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
fn announce(urls: &[String]) {
    for url in urls {
        eprintln!("herald: hub listening on {url}");
    }
}

#[allow(clippy::print_stderr)]
fn announce_page(addrs: &[SocketAddr], scheme: &str) {
    if let Some(addr) = addrs.first() {
        eprintln!("herald: debug page on {scheme}://{addr}/");
    }
}

#[allow(clippy::print_stderr)]
fn print_development_banner(urls: &[String], credentials: &DevCredentials) {
    let hub = urls.first().map(String::as_str).unwrap_or_default();
    eprintln!(
        "\
herald: DEVELOPMENT MODE (no JWT key configured): a random key was generated, anonymous
herald: subscribers are allowed and the tokens below grant everything. Never use this in
herald: production; set --jwt-key (or HERALD_JWT_KEY) instead.

hub:               {hub}
key (HS256):       {key}
publisher token:   {publisher}
subscriber token:  {subscriber}

subscribe:  curl -N '{hub}?topic=https://example.com/books/1'
publish:    curl -d 'topic=https://example.com/books/1' -d 'data=hello' \\
              -H 'Authorization: Bearer {publisher}' {hub}
        or: herald publish --hub {hub} --token {publisher} \\
              --topic https://example.com/books/1 --data hello
",
        key = credentials.key,
        publisher = credentials.publisher_token,
        subscriber = credentials.subscriber_token,
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
        };
        let loopback: Vec<SocketAddr> = vec![
            ([127, 0, 0, 1], 8080).into(),
            "[::1]:8080".parse().expect("address"),
        ];
        let tokens = page_tokens(&loopback, &credentials).expect("tokens on loopback");
        assert_eq!(tokens.publisher.as_deref(), Some("p"));
        assert_eq!(tokens.subscriber.as_deref(), Some("s"));
        for exposed in ["0.0.0.0:8080", "[::]:8080", "192.168.1.2:8080"] {
            let addrs = vec![loopback[0], exposed.parse().expect("address")];
            assert_eq!(page_tokens(&addrs, &credentials), None, "{exposed}");
        }
    }
}
