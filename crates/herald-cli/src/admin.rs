//! `herald admin`: the hub's control API from the command line: end live streams, revoke
//! tokens (with a publisher token carrying `{"herald": {"admin": true}}`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http_body_util::Full;

/// Control a hub's live streams and tokens: end the streams of a user, a subscriber or a
/// topic (browsers reconnect with Last-Event-ID, authorized by their new credentials), or
/// revoke a token until it expires. Needs a publisher token with the claim
/// {"herald": {"admin": true}}.
///
/// Exit status: 0 when the hub applied the action; 1 when it refused it (its status and
/// reason are printed) or could not be reached.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    Disconnect(DisconnectArgs),
    Revoke(RevokeArgs),
}

/// Where the hub is and how to reach it.
#[derive(Debug, clap::Args)]
struct Hub {
    /// The hub's URL (`http` or `https`); the control API is under it (`.../control/...`).
    #[arg(
        long,
        env = "HERALD_HUB",
        default_value = "http://127.0.0.1:8080/.well-known/mercure"
    )]
    hub: url::Url,
    /// A publisher JWT with the claim {"herald": {"admin": true}}.
    #[arg(long, env = "HERALD_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A PEM file of extra root certificates to trust (a hub with a private CA).
    #[arg(long, value_name = "PEM_FILE")]
    cacert: Option<PathBuf>,
    /// Print the hub's JSON answer instead of its one-line summary.
    #[arg(long)]
    json: bool,
}

/// End live streams: those matching every criterion given (at least one). Each stream ends
/// cleanly, and a browser's EventSource reconnects by itself with its Last-Event-ID.
#[derive(Debug, clap::Args)]
#[command(
    group = clap::ArgGroup::new("criteria").required(true).multiple(true),
    after_help = "Examples:
  herald admin disconnect --token \"$ADMIN_TOKEN\" --sub alice
  herald admin disconnect --token \"$ADMIN_TOKEN\" --topic 'https://example.com/books/{id}'
  herald admin disconnect --hub https://hub.example.com/.well-known/mercure \\
      --token \"$ADMIN_TOKEN\" --subscriber urn:uuid:0f1e...")]
struct DisconnectArgs {
    #[command(flatten)]
    hub: Hub,
    /// The streams whose token's `sub` claim is USER.
    #[arg(long, value_name = "USER", group = "criteria")]
    sub: Option<String>,
    /// The streams of this subscriber ID (`urn:uuid:...`, as the subscriptions API lists it).
    #[arg(long, value_name = "ID", group = "criteria")]
    subscriber: Option<String>,
    /// The stream holding this subscription ID (/.well-known/mercure/subscriptions/...).
    #[arg(long, value_name = "ID", group = "criteria")]
    subscription: Option<String>,
    /// The streams subscribed to this topic selector, or to a topic it matches (`*`: all).
    #[arg(long, value_name = "SELECTOR", group = "criteria")]
    topic: Option<String>,
}

/// Revoke one token (--jti) or every token of a user issued before a time (--sub): until
/// the revocation ends (--exp), the hub refuses them with 401, and their live streams end.
#[derive(Debug, clap::Args)]
#[command(
    group = clap::ArgGroup::new("target").required(true),
    after_help = "Examples:
  herald admin revoke --token \"$ADMIN_TOKEN\" --jti 3f2a9c --exp 1767225600
  herald admin revoke --token \"$ADMIN_TOKEN\" --sub alice --exp 1h
  herald admin revoke --token \"$ADMIN_TOKEN\" --sub alice --before 1767200000 --exp 2h")]
struct RevokeArgs {
    #[command(flatten)]
    hub: Hub,
    /// The token whose `jti` claim is ID.
    #[arg(long, value_name = "ID", group = "target")]
    jti: Option<String>,
    /// The tokens whose `sub` claim is USER (issued before --before).
    #[arg(long, value_name = "USER", group = "target")]
    sub: Option<String>,
    /// With --sub: the tokens issued before this time (`iat`), in seconds since the Unix epoch
    /// [default: now].
    #[arg(long, value_name = "TIME", requires = "sub")]
    before: Option<u64>,
    /// When the revocation ends: the tokens' `exp`, in seconds since the Unix epoch, or a
    /// duration from now (`90m`, `2h`) [default: the hub's revocation TTL].
    #[arg(long, value_name = "TIME")]
    exp: Option<String>,
}

/// `1767225600` (seconds since the epoch) or `2h` (from now).
fn parse_time(text: &str) -> anyhow::Result<u64> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .with_context(|| format!("--exp {text}: not a number of seconds"));
    }
    let span = herald_hub::config::duration_text::parse(text)
        .map_err(|e| anyhow::anyhow!("--exp: {e} (or seconds since the Unix epoch)"))?;
    Ok(herald_hub::control::now_secs().saturating_add(span.as_secs()))
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (hub, action, body) = match args.command {
        Command::Disconnect(a) => {
            let body = serde_json::json!({
                "sub": a.sub, "subscriber": a.subscriber,
                "subscription": a.subscription, "topic": a.topic,
            });
            (a.hub, "disconnect", without_nulls(body))
        }
        Command::Revoke(a) => {
            let exp = a.exp.as_deref().map(parse_time).transpose()?;
            let body = serde_json::json!({
                "jti": a.jti, "sub": a.sub, "before": a.before, "exp": exp,
            });
            (a.hub, "revoke", without_nulls(body))
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let answer = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), post(&hub, action, body))
            .await
            .context("the hub did not answer within 30 s")?
    })?;
    #[allow(clippy::print_stdout)]
    {
        if hub.json {
            println!("{answer}");
        } else {
            println!("{}", answer["message"].as_str().unwrap_or("done"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn without_nulls(mut body: serde_json::Value) -> serde_json::Value {
    if let Some(object) = body.as_object_mut() {
        object.retain(|_, v| !v.is_null());
    }
    body
}

async fn post(
    hub: &Hub,
    action: &str,
    body: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    if !matches!(hub.hub.scheme(), "http" | "https") {
        bail!("the hub URL must be http or https: {}", hub.hub);
    }
    let Some(token) = &hub.token else {
        bail!(
            "no token: pass --token (or HERALD_TOKEN) with a publisher JWT carrying the claim \
             {{\"herald\": {{\"admin\": true}}}}"
        );
    };
    let url = format!(
        "{}/control/{action}",
        hub.hub
            .as_str()
            .split('?')
            .next()
            .unwrap_or_default()
            .trim_end_matches('/')
    );
    let client = crate::publish::client(hub.cacert.as_deref())?;
    let request = http::Request::post(&url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Full::new(Bytes::from(body.to_string())))
        .context("building the request")?;
    let (status, text) = crate::publish::exchange(&client, request, &url).await?;
    if status == http::StatusCode::NOT_FOUND || status == http::StatusCode::METHOD_NOT_ALLOWED {
        bail!(
            "the hub has no control API at {url} ({status}): --hub must be the hub's URL \
             (ending in /.well-known/mercure) of a Herald hub with a publisher key"
        );
    }
    if !status.is_success() {
        bail!("the hub refused the {action}: {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("the hub's answer is not JSON: {text}"))
}
