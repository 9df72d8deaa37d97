//! Running where Mercure ran: the variables a Mercure deployment sets, read into a layer of
//! settings below flags, `HERALD_*` variables and the configuration file.
//!
//! - `MERCURE_PUBLISHER_JWT_KEY`, `MERCURE_SUBSCRIBER_JWT_KEY` and their `_ALG` companions. A
//!   key variable that is set but empty stops the start-up: it is a secret that did not arrive.
//! - `SERVER_NAME`, the addresses Caddy serves (`:80`, `http://example.com:8080`): plain HTTP
//!   addresses become listeners; an address Caddy would serve over automatic HTTPS needs
//!   `--tls-cert`/`--tls-key`, since Herald obtains no certificate.
//! - `MERCURE_EXTRA_DIRECTIVES`, lines of Caddyfile directives of the `mercure` block: those
//!   with an equivalent are honoured, any other stops the start-up with its name.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::{Context as _, bail};
use herald_hub::config::duration_text;

use super::settings::{Settings, Span};

/// The settings a Mercure deployment's variables give; `env` reads a variable, `tls` says
/// whether a certificate is configured.
pub(crate) fn settings(
    env: &dyn Fn(&str) -> Option<String>,
    tls: bool,
) -> anyhow::Result<Settings> {
    let mut settings = Settings::default();
    for (variable, key) in [
        ("MERCURE_PUBLISHER_JWT_KEY", &mut settings.publisher_jwt_key),
        (
            "MERCURE_SUBSCRIBER_JWT_KEY",
            &mut settings.subscriber_jwt_key,
        ),
    ] {
        if let Some(value) = env(variable) {
            if value.trim().is_empty() {
                bail!("{variable} is set but empty: refusing to start without its key");
            }
            *key = Some(value);
        }
    }
    for (variable, alg) in [
        ("MERCURE_PUBLISHER_JWT_ALG", &mut settings.publisher_jwt_alg),
        (
            "MERCURE_SUBSCRIBER_JWT_ALG",
            &mut settings.subscriber_jwt_alg,
        ),
    ] {
        // An empty algorithm is Mercure's default, HS256.
        *alg = env(variable).filter(|value| !value.trim().is_empty());
    }
    if let Some(names) = env("SERVER_NAME").filter(|v| !v.trim().is_empty()) {
        settings.addr = server_name(&names, tls)?;
    }
    if let Some(directives) = env("MERCURE_EXTRA_DIRECTIVES") {
        apply_directives(&mut settings, &directives, env).context("in MERCURE_EXTRA_DIRECTIVES")?;
    }
    Ok(settings)
}

/// The listeners for Caddy's site addresses (comma- or space-separated).
fn server_name(names: &str, tls: bool) -> anyhow::Result<Vec<SocketAddr>> {
    let mut addrs = Vec::new();
    for name in names
        .split([',', ' ', '\t', '\n'])
        .filter(|n| !n.is_empty())
    {
        let addr = site_address(name, tls).with_context(|| format!("SERVER_NAME={name:?}"))?;
        if !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }
    Ok(addrs)
}

fn site_address(name: &str, tls: bool) -> anyhow::Result<SocketAddr> {
    let (scheme, rest) = match name.split_once("://") {
        Some((scheme, rest)) => (Some(scheme.to_ascii_lowercase()), rest),
        None => (None, name),
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => {
            let port: u16 = port
                .parse()
                .with_context(|| format!("{port:?} is not a port"))?;
            (host, Some(port))
        }
        _ => (authority, None),
    };
    // Caddy serves a site over automatic HTTPS when asked (`https://`), or when it has a host
    // name and no scheme, unless its port is 80.
    let https = match scheme.as_deref() {
        Some("https") => true,
        Some("http") => false,
        Some(other) => bail!("unknown scheme {other:?}"),
        None => !host.is_empty() && port != Some(80),
    };
    if https && !tls {
        bail!(
            "this address is served over automatic HTTPS by Mercure (Caddy), and Herald obtains \
             no certificate: give --tls-cert and --tls-key, or a plain HTTP address such as \
             SERVER_NAME=':80' (or --addr)"
        );
    }
    let port = port.unwrap_or(if https { 443 } else { 80 });
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip = match host {
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        // Herald does not route by host name: a named site listens on every interface.
        host => host.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
    };
    Ok(SocketAddr::new(ip, port))
}

/// Applies Caddyfile directives of the `mercure` block, one per line.
fn apply_directives(
    settings: &mut Settings,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<()> {
    for line in lines(text, env)? {
        let (name, args) = line.split_first().context("an empty directive")?;
        let arity = |min: usize, max: usize| -> anyhow::Result<()> {
            if args.len() < min || args.len() > max {
                let wanted = match (min, max) {
                    (0, 0) => "no argument".to_owned(),
                    (a, b) if a == b => format!("{a} argument(s)"),
                    (a, usize::MAX) => format!("at least {a} argument(s)"),
                    (a, b) => format!("{a} to {b} arguments"),
                };
                bail!("`{name}` takes {wanted}, got {}", args.len());
            }
            Ok(())
        };
        let duration = |text: &str| -> anyhow::Result<Option<Span>> {
            let parsed = duration_text::parse(text).map_err(anyhow::Error::msg)?;
            Ok(Some(Span(parsed)))
        };
        match name.as_str() {
            "anonymous" => {
                arity(0, 0)?;
                settings.anonymous = Some(true);
            }
            "subscriptions" => {
                arity(0, 0)?;
                settings.subscriptions = Some(true);
            }
            "ui" | "demo" | "debugger" => {
                arity(0, 0)?;
                settings.ui = Some(true);
            }
            "heartbeat" => {
                arity(1, 1)?;
                settings.heartbeat = duration(&args[0])?;
            }
            "write_timeout" => {
                arity(1, 1)?;
                settings.write_timeout = duration(&args[0])?;
            }
            "cookie_name" => {
                arity(1, 1)?;
                settings.cookie_name = Some(args[0].clone());
            }
            "cors_origins" => {
                arity(1, usize::MAX)?;
                settings.cors_origin = args.to_vec();
            }
            "publish_origins" => {
                arity(1, usize::MAX)?;
                settings.publish_origin = args.to_vec();
            }
            "publisher_jwt" | "subscriber_jwt" => {
                arity(1, 2)?;
                if args[0].trim().is_empty() {
                    bail!("`{name}` is given an empty key: refusing to start without it");
                }
                let alg = args.get(1).filter(|a| !a.is_empty()).cloned();
                if name == "publisher_jwt" {
                    settings.publisher_jwt_key = Some(args[0].clone());
                    settings.publisher_jwt_alg = alg;
                } else {
                    settings.subscriber_jwt_key = Some(args[0].clone());
                    settings.subscriber_jwt_alg = alg;
                }
            }
            "publisher_jwks_url" => {
                arity(1, 1)?;
                settings.publisher_jwks_url = Some(args[0].clone());
            }
            "subscriber_jwks_url" => {
                arity(1, 1)?;
                settings.subscriber_jwks_url = Some(args[0].clone());
            }
            "max_request_body_size" => {
                arity(1, 1)?;
                let size = args[0].parse().with_context(|| {
                    format!("`{name}` takes a number of bytes, got {:?}", args[0])
                })?;
                settings.max_update_size = Some(size);
            }
            other => bail!(
                "the directive `{other}` has no equivalent in Herald{}",
                hint(other)
            ),
        }
    }
    Ok(())
}

/// What to do instead of a directive Herald does not have.
fn hint(directive: &str) -> &'static str {
    match directive {
        "transport" | "transport_url" => {
            "; remove it: the history is kept in memory, durably with --data-dir, or shared by \
             several nodes with --transport redis://... or nats://..."
        }
        "dispatch_timeout" => "; remove it: a publish is answered once the update is stored",
        _ => "; remove it (`herald serve --help` lists what Herald offers)",
    }
}

/// The directives of `text`, each a list of tokens: words separated by spaces, `"quoted
/// strings"` and `` `raw strings` ``, `#` comments; `{env.NAME}` and `{$NAME}` (or
/// `{$NAME:default}`) are read from the environment. A block (`{ ... }`) is refused.
fn lines(text: &str, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Vec<Vec<String>>> {
    let mut lines = Vec::new();
    let mut line: Vec<String> = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => {
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
            }
            c if c.is_whitespace() => {}
            '#' => {
                while chars.peek().is_some_and(|&c| c != '\n') {
                    chars.next();
                }
            }
            '"' | '`' => {
                let mut token = String::new();
                loop {
                    match chars.next() {
                        None => bail!("an unterminated {c}quoted{c} string"),
                        Some(end) if end == c => break,
                        Some('\\') if c == '"' => {
                            if let Some(escaped) = chars.next() {
                                token.push(escaped);
                            }
                        }
                        Some(other) => token.push(other),
                    }
                }
                line.push(token);
            }
            _ => {
                let mut token = String::from(c);
                while let Some(&next) = chars.peek() {
                    if next.is_whitespace() {
                        break;
                    }
                    token.push(next);
                    chars.next();
                }
                line.push(placeholder(&token, line.first(), env)?);
            }
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    Ok(lines)
}

/// A token, with an environment placeholder replaced.
fn placeholder(
    token: &str,
    directive: Option<&String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<String> {
    if token == "{" || token == "}" {
        let name = directive.map_or("a directive", String::as_str);
        bail!("`{name}` has a block (`{{ ... }}`), which has no equivalent in Herald");
    }
    if !token.contains('{') {
        return Ok(token.to_owned());
    }
    let inner = token
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .with_context(|| format!("{token:?}: only whole-word placeholders are read"))?;
    if let Some(name) = inner.strip_prefix("env.") {
        return Ok(env(name).unwrap_or_default());
    }
    if let Some(rest) = inner.strip_prefix('$') {
        let (name, default) = rest.split_once(':').unwrap_or((rest, ""));
        return Ok(env(name)
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| default.to_owned()));
    }
    bail!("{token:?}: only {{env.NAME}} and {{$NAME}} placeholders are read")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn directives_with_an_equivalent_are_honoured() {
        let env = with(&[
            (
                "MERCURE_EXTRA_DIRECTIVES",
                "anonymous\nsubscriptions   # the API too\n\
                 cors_origins https://a.example \"https://b.example\"\n\
                 heartbeat 15s\nwrite_timeout 1m30s\npublisher_jwt {env.PUB} RS256\n",
            ),
            ("PUB", "the-key"),
        ]);
        let settings = settings(&env, false).expect("honoured");
        assert_eq!(settings.anonymous, Some(true));
        assert_eq!(settings.subscriptions, Some(true));
        assert_eq!(
            settings.cors_origin,
            ["https://a.example", "https://b.example"]
        );
        assert_eq!(settings.heartbeat.map(|s| s.0.as_secs()), Some(15));
        assert_eq!(settings.write_timeout.map(|s| s.0.as_secs()), Some(90));
        assert_eq!(settings.publisher_jwt_key.as_deref(), Some("the-key"));
        assert_eq!(settings.publisher_jwt_alg.as_deref(), Some("RS256"));
    }

    #[test]
    fn a_directive_without_equivalent_or_with_a_block_is_refused_by_name() {
        for (directives, named) in [
            ("anonymous\ndispatch_timeout 5s", "`dispatch_timeout`"),
            ("transport bolt {\n path /data/mercure.db\n}", "`transport`"),
            ("anonymous yes", "`anonymous` takes no argument"),
        ] {
            let env = with(&[("MERCURE_EXTRA_DIRECTIVES", directives)]);
            let error = format!("{:#}", settings(&env, false).expect_err(directives));
            assert!(error.contains(named), "{error}");
            assert!(error.contains("MERCURE_EXTRA_DIRECTIVES"), "{error}");
        }
    }

    #[test]
    fn server_name_gives_plain_http_listeners_and_refuses_automatic_https() {
        let env = with(&[("SERVER_NAME", ":8080, http://localhost:9000")]);
        let settings = settings(&env, false).expect("plain HTTP");
        assert_eq!(
            settings.addr,
            [
                "0.0.0.0:8080".parse::<SocketAddr>().expect("address"),
                "127.0.0.1:9000".parse().expect("address"),
            ]
        );
        for name in ["localhost", "example.com", "https://:443"] {
            let env = with(&[("SERVER_NAME", name)]);
            let error = format!("{:#}", super::settings(&env, false).expect_err(name));
            assert!(error.contains("--tls-cert"), "{error}");
            assert!(error.contains(name), "{error}");
        }
        let env = with(&[("SERVER_NAME", "example.com")]);
        let with_tls = super::settings(&env, true).expect("TLS configured");
        assert_eq!(
            with_tls.addr,
            ["0.0.0.0:443".parse::<SocketAddr>().expect("address")]
        );
    }

    #[test]
    fn an_empty_key_variable_is_refused_but_an_empty_algorithm_is_the_default() {
        let env = with(&[("MERCURE_SUBSCRIBER_JWT_KEY", "")]);
        let error = settings(&env, false).expect_err("empty key").to_string();
        assert!(error.contains("MERCURE_SUBSCRIBER_JWT_KEY"), "{error}");
        let env = with(&[
            ("MERCURE_PUBLISHER_JWT_KEY", "k"),
            ("MERCURE_PUBLISHER_JWT_ALG", ""),
        ]);
        let settings = settings(&env, false).expect("empty algorithm");
        assert_eq!(settings.publisher_jwt_alg, None);
    }
}
