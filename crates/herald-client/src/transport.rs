//! Opening the byte streams requests travel on: TCP by default, or the application's own
//! connector (a Unix socket, a custom resolver), through an HTTP proxy when one applies (an
//! absolute-form request for `http://` URLs, a `CONNECT` tunnel for `https://` ones). TLS goes on
//! top, in the HTTP client.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Uri};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::proxy::matcher::{Intercept, Matcher};
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;
use tower_service::Service;

use crate::error::BoxError;

/// The bytes of one connection, whatever carries them.
pub(crate) trait Io: Read + Write + Send + Unpin + 'static {}
impl<T: Read + Write + Send + Unpin + 'static> Io for T {}

/// Opens a byte stream to the host and port of a URI.
pub(crate) type Open = BoxCloneSyncService<Uri, Box<dyn Io>, BoxError>;

/// Boxes an application's connector into an [`Open`].
pub(crate) fn open_with<C, T>(connector: C) -> Open
where
    C: Service<Uri, Response = T> + Clone + Send + Sync + 'static,
    C::Future: Send + 'static,
    C::Error: Into<BoxError>,
    T: Read + Write + Send + Unpin + 'static,
{
    BoxCloneSyncService::new(
        connector
            .map_response(|io| Box::new(io) as Box<dyn Io>)
            .map_err(Into::into),
    )
}

/// Where proxies come from.
#[derive(Debug, Clone, Default)]
pub(crate) enum ProxyConfig {
    /// `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY` (or their lowercase forms), read
    /// when the source is built, with curl's rules; loopback hosts are always reached directly.
    #[default]
    Environment,
    /// This proxy for every URL but those the bypass list matches.
    Explicit { url: String, bypass: String },
    /// Direct connections only.
    None,
}

impl ProxyConfig {
    /// The proxies to use, or why the configured one cannot be.
    pub(crate) fn resolve(&self) -> Result<Proxies, String> {
        let matcher = match self {
            ProxyConfig::Environment => {
                return Ok(Proxies {
                    matcher: Some(Arc::new(Matcher::from_env())),
                    loopback_direct: true,
                });
            }
            ProxyConfig::Explicit { url, bypass } => {
                // The proxy alone, to check it: the matcher drops a URL it cannot parse.
                let alone = Matcher::builder().all(url.as_str()).build();
                match alone.intercept(&Uri::from_static("http://probe.invalid/")) {
                    Some(proxy) => check_scheme(&proxy)?,
                    None => return Err(format!("invalid proxy URL {url:?}")),
                }
                Matcher::builder()
                    .all(url.as_str())
                    .no(bypass.as_str())
                    .build()
            }
            ProxyConfig::None => {
                return Ok(Proxies {
                    matcher: None,
                    loopback_direct: true,
                });
            }
        };
        Ok(Proxies {
            matcher: Some(Arc::new(matcher)),
            loopback_direct: false,
        })
    }
}

/// Only HTTP proxies are spoken to (in HTTP/1.1, in clear text).
fn check_scheme(proxy: &Intercept) -> Result<(), String> {
    match proxy.uri().scheme_str() {
        Some("http") => Ok(()),
        other => Err(format!(
            "the proxy {} uses {}://, which is not supported: only http:// proxies are",
            proxy.uri(),
            other.unwrap_or("no scheme")
        )),
    }
}

/// The proxy rules in force.
#[derive(Debug, Clone)]
pub(crate) struct Proxies {
    matcher: Option<Arc<Matcher>>,
    /// Whether `localhost` and loopback addresses are reached directly whatever the rules say,
    /// as browsers and Go's `net/http` do with proxies from the environment: a proxy elsewhere
    /// could not reach this machine's own services.
    loopback_direct: bool,
}

impl Proxies {
    /// The proxy for this URL, if one applies.
    pub(crate) fn intercept(&self, uri: &Uri) -> Option<Intercept> {
        let matcher = self.matcher.as_ref()?;
        if self.loopback_direct && uri.host().is_some_and(is_loopback) {
            return None;
        }
        matcher.intercept(uri)
    }

    /// The `Proxy-Authorization` an `http://` request sent to its proxy carries (for `https://`
    /// URLs it goes in the `CONNECT` request instead, never to the server).
    pub(crate) fn http_auth(&self, uri: &Uri) -> Option<HeaderValue> {
        if uri.scheme_str() != Some("http") {
            return None;
        }
        self.intercept(uri)?.basic_auth().cloned()
    }
}

/// `localhost` (and its subdomains), or a loopback address.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// The connector the HTTP client uses: opens streams directly or through the proxy.
#[derive(Clone)]
pub(crate) struct Transport {
    open: Open,
    proxies: Proxies,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("proxies", &self.proxies)
            .finish_non_exhaustive()
    }
}

impl Transport {
    pub(crate) fn new(open: Open, proxies: Proxies) -> Transport {
        Transport { open, proxies }
    }
}

type Connecting = Pin<Box<dyn Future<Output = Result<Conn, BoxError>> + Send>>;

impl Service<Uri> for Transport {
    type Response = Conn;
    type Error = BoxError;
    type Future = Connecting;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Each call drives a clone of the opener to readiness itself.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Connecting {
        let open = self.open.clone();
        let Some(proxy) = self.proxies.intercept(&dst) else {
            return Box::pin(async move {
                let io = open.oneshot(dst).await?;
                Ok(Conn { io, proxied: false })
            });
        };
        Box::pin(through_proxy(open, proxy, dst))
    }
}

/// Opens a connection through `proxy`: to the proxy itself for an `http://` URL, a tunnel to
/// the server for an `https://` one.
async fn through_proxy(open: Open, proxy: Intercept, dst: Uri) -> Result<Conn, BoxError> {
    check_scheme(&proxy)?;
    let proxied = dst.scheme_str() == Some("http");
    let opened: Result<Box<dyn Io>, BoxError> = if proxied {
        // The request goes to the proxy in absolute form, with its Proxy-Authorization.
        open.oneshot(proxy.uri().clone()).await
    } else {
        let mut tunnel = Tunnel::new(proxy.uri().clone(), open);
        if let Some(auth) = proxy.basic_auth() {
            tunnel = tunnel.with_auth(auth.clone());
        }
        tunnel_to(tunnel, dst).await
    };
    match opened {
        Ok(io) => Ok(Conn { io, proxied }),
        Err(source) => Err(Box::new(ProxyError {
            proxy: proxy.uri().to_string(),
            source,
        })),
    }
}

/// A `CONNECT` tunnel to `dst`.
async fn tunnel_to(mut tunnel: Tunnel<Open>, dst: Uri) -> Result<Box<dyn Io>, BoxError> {
    std::future::poll_fn(|cx| tunnel.poll_ready(cx)).await?;
    Ok(tunnel.call(dst).await?)
}

/// A failure on the way through a proxy, named so that it can be told from the server's.
#[derive(Debug, thiserror::Error)]
#[error("through the proxy {proxy}")]
struct ProxyError {
    proxy: String,
    #[source]
    source: BoxError,
}

/// One connection: its bytes, and whether requests on it go to a proxy (in absolute form).
pub(crate) struct Conn {
    io: Box<dyn Io>,
    proxied: bool,
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        Connected::new().proxy(self.proxied)
    }
}

impl Read for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Write for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explicit(url: &str, bypass: &str) -> Result<Proxies, String> {
        ProxyConfig::Explicit {
            url: url.to_owned(),
            bypass: bypass.to_owned(),
        }
        .resolve()
    }

    #[test]
    fn an_explicit_proxy_applies_to_both_schemes_but_not_to_bypassed_hosts() {
        let proxies = explicit(
            "http://user:p%40ss@proxy.example:3128",
            "internal.example, 10.0.0.0/8",
        )
        .expect("valid");
        for url in ["http://a.example/x", "https://a.example/x"] {
            let proxy = proxies.intercept(&Uri::from_static(url)).expect("proxied");
            assert_eq!(proxy.uri(), "http://proxy.example:3128/");
        }
        for url in [
            "http://internal.example/",
            "https://api.internal.example/",
            "http://10.1.2.3/",
        ] {
            assert!(proxies.intercept(&Uri::from_static(url)).is_none(), "{url}");
        }
        // user:p@ss
        let auth = proxies.http_auth(&Uri::from_static("http://a.example/"));
        assert_eq!(auth.expect("credentials"), "Basic dXNlcjpwQHNz");
        assert!(
            proxies
                .http_auth(&Uri::from_static("https://a.example/"))
                .is_none()
        );
    }

    #[test]
    fn unsupported_or_invalid_proxies_are_refused() {
        let error = explicit("socks5://proxy.example:1080", "").expect_err("socks");
        assert!(error.contains("socks5://"), "{error}");
        let error = explicit("https://proxy.example", "").expect_err("tls to the proxy");
        assert!(error.contains("only http://"), "{error}");
        assert!(explicit("http://bad host", "").is_err());
    }

    #[test]
    fn loopback_hosts_are_direct_with_environment_proxies_only() {
        for host in [
            "localhost",
            "LOCALHOST.",
            "app.localhost",
            "127.0.0.1",
            "127.9.9.9",
            "[::1]",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["localhost.example", "10.0.0.1", "[::2]", "example.com"] {
            assert!(!is_loopback(host), "{host}");
        }
        let explicit = explicit("http://proxy.example:3128", "").expect("valid");
        assert!(
            explicit
                .intercept(&Uri::from_static("http://127.0.0.1:8080/"))
                .is_some()
        );
    }

    #[test]
    fn no_proxy_means_direct() {
        let proxies = ProxyConfig::None.resolve().expect("valid");
        assert!(
            proxies
                .intercept(&Uri::from_static("http://a.example/"))
                .is_none()
        );
    }
}
