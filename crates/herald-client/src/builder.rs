//! Configuring an [`EventSource`]: the request, the timeouts, TLS, HTTP versions, cookies and the
//! retry policy. Everything defaults to what a browser does.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cookie_store::CookieStore;
use herald_codec::DecoderBuilder;
use http::header::{AUTHORIZATION, HeaderName, HeaderValue};
use http::{HeaderMap, Method};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use url::Url;

use crate::backoff::{Backoff, DEFAULT_RECONNECTION_TIME, StatusPolicy};
use crate::connect::{LAST_EVENT_ID, last_event_id_value};
use crate::error::{BoxError, Error};
use crate::event_source::EventSource;
use crate::http_client::{HttpClient, OwnSettings};
use crate::transport::{Open, ProxyConfig, open_with};

/// The most redirects followed for one connection, as fetch allows.
pub const DEFAULT_MAX_REDIRECTS: usize = 20;

/// Which trusted roots verify servers' certificates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsRoots {
    /// Mozilla's roots, compiled in (the `webpki-roots` crate): works the same everywhere.
    #[default]
    WebPki,
    /// The operating system's roots (the `rustls-native-certs` crate).
    Native,
    /// Both of the above.
    WebPkiAndNative,
    /// None: only the certificates added with
    /// [`add_root_certificate`](EventSourceBuilder::add_root_certificate).
    Empty,
}

/// Which HTTP versions are spoken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Versions {
    /// HTTP/1.1 in clear text; over TLS, HTTP/2 or HTTP/1.1 as ALPN settles.
    #[default]
    Auto,
    /// HTTP/1.1 only.
    Http1Only,
    /// HTTP/2 with prior knowledge for `http://` URLs (h2c); ALPN over TLS.
    Http2PriorKnowledge,
}

/// Everything the processing model needs, fixed when the source is built.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) url: Url,
    pub(crate) method: Method,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) reconnection_time: Duration,
    pub(crate) backoff: Backoff,
    pub(crate) status_policy: StatusPolicy,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) cookies: Option<Arc<Mutex<CookieStore>>>,
    pub(crate) max_redirects: usize,
}

/// Builds an [`EventSource`]; made by [`EventSource::builder`].
///
/// Every setting defaults to what a browser's `EventSource` does: `GET` without a body, the
/// `Accept: text/event-stream` and `Cache-Control: no-cache` headers, no cookies (use
/// [`cookie_store`](Self::cookie_store) as `withCredentials`), a 3 s reconnection time until the
/// server sets one, 20 redirects at most, no timeouts, HTTP/2 when TLS negotiates it.
///
/// Proxies come from the environment (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`, or
/// their lowercase forms, with curl's rules; `localhost` and loopback addresses are always
/// reached directly, as browsers do) unless set with [`proxy`](Self::proxy) or turned off with
/// [`no_proxy`](Self::no_proxy). The
/// connection can come from the application instead ([`connector`](Self::connector)), and so can
/// the whole HTTP client ([`http_client`](Self::http_client)).
///
/// Configuration errors (a bad URL, header, certificate or proxy) are reported by
/// [`build`](Self::build).
#[derive(Debug)]
#[must_use]
pub struct EventSourceBuilder {
    url: Result<Url, Error>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
    last_event_id: Option<String>,
    reconnection_time: Duration,
    backoff: Backoff,
    status_policy: StatusPolicy,
    connect_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    cookies: Option<Arc<Mutex<CookieStore>>>,
    max_redirects: usize,
    roots: TlsRoots,
    extra_roots: Vec<CertificateDer<'static>>,
    tls_config: Option<rustls::ClientConfig>,
    versions: Versions,
    decoder: DecoderBuilder,
    connector: Option<Connector>,
    proxy: ProxyConfig,
    http_client: Option<HttpClient>,
    /// Settings of the source's own HTTP client that were set, which an application's client
    /// would silently ignore.
    own_client_settings: Vec<&'static str>,
    error: Option<Error>,
}

/// An application's connector, boxed.
struct Connector(Open);

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connector")
    }
}

impl EventSourceBuilder {
    pub(crate) fn new(url: &str) -> EventSourceBuilder {
        let url = Url::parse(url)
            .map_err(|error| Error::builder(format!("invalid URL {url:?}: {error}")))
            .and_then(|url| match url.scheme() {
                "http" | "https" => Ok(url),
                scheme => Err(Error::builder(format!(
                    "unsupported URL scheme {scheme:?}: only http and https"
                ))),
            });
        EventSourceBuilder {
            url,
            method: Method::GET,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            last_event_id: None,
            reconnection_time: DEFAULT_RECONNECTION_TIME,
            backoff: Backoff::default(),
            status_policy: StatusPolicy::default(),
            connect_timeout: None,
            idle_timeout: None,
            cookies: None,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            roots: TlsRoots::default(),
            extra_roots: Vec::new(),
            tls_config: None,
            versions: Versions::default(),
            decoder: DecoderBuilder::default(),
            connector: None,
            proxy: ProxyConfig::default(),
            http_client: None,
            own_client_settings: Vec::new(),
            error: None,
        }
    }

    /// Notes that a setting of the source's own HTTP client was set.
    fn own_client(mut self, setting: &'static str) -> Self {
        if !self.own_client_settings.contains(&setting) {
            self.own_client_settings.push(setting);
        }
        self
    }

    fn fail(mut self, error: Error) -> Self {
        self.error.get_or_insert(error);
        self
    }

    /// Adds a request header (sent on every connection, after redirects too, except that
    /// `Authorization` is dropped on a redirect to another origin, as fetch does).
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        K::Error: std::fmt::Display,
        V: TryInto<HeaderValue>,
        V::Error: std::fmt::Display,
    {
        let name = match name.try_into() {
            Ok(name) => name,
            Err(error) => {
                return self.fail(Error::builder(format!("invalid header name: {error}")));
            }
        };
        match value.try_into() {
            Ok(value) => {
                self.headers.append(name, value);
                self
            }
            Err(error) => self.fail(Error::builder(format!("invalid value for {name}: {error}"))),
        }
    }

    /// Adds all these headers; a name that was already set gets these values instead.
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        self.headers.extend(headers);
        self
    }

    /// Sends `Authorization: Bearer <token>` (marked sensitive, so never logged), instead of
    /// any `Authorization` set before.
    pub fn bearer_auth(mut self, token: impl std::fmt::Display) -> Self {
        match HeaderValue::try_from(format!("Bearer {token}")) {
            Ok(mut value) => {
                value.set_sensitive(true);
                self.headers.insert(AUTHORIZATION, value);
                self
            }
            Err(_) => self.fail(Error::builder(
                "the bearer token is not a valid header value",
            )),
        }
    }

    /// The request method (default `GET`). A `POST` with a JSON body is how most streaming APIs
    /// are called.
    pub fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    /// The request body, sent on every connection (default none). Set `Content-Type` with
    /// [`header`](Self::header).
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// The last event ID to start from: sent as `Last-Event-ID` on the very first request, to
    /// resume a stream where an earlier client left it. Any text but control characters (which
    /// [`build`](Self::build) refuses); non-ASCII is sent as UTF-8.
    pub fn last_event_id(mut self, id: impl Into<String>) -> Self {
        self.last_event_id = Some(id.into());
        self
    }

    /// The reconnection time until the server sets one with `retry:` (default 3 s, as browsers).
    pub fn reconnection_time(mut self, delay: Duration) -> Self {
        self.reconnection_time = delay;
        self
    }

    /// The extra delay on repeated failures (default [`Backoff::exponential`]);
    /// [`Backoff::none`] keeps to the spec's plain reconnection time.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Which statuses are retried rather than failing the connection (default
    /// [`StatusPolicy::Spec`]: none).
    pub fn status_policy(mut self, policy: StatusPolicy) -> Self {
        self.status_policy = policy;
        self
    }

    /// How long to wait for a connection and the response's head, redirects included (default:
    /// no limit). When it elapses the attempt counts as a network error: the source reconnects.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// How long an open stream may stay silent, keep-alive comments included, before the
    /// connection is deemed dead and the source reconnects (default: no limit). Set it above the
    /// server's keep-alive interval. Without it, TCP keep-alive probes (after 30 s of silence)
    /// still find a server that vanished, within about a minute.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// Sends and stores cookies with this store, as `withCredentials: true` does; share the store
    /// with other clients to share their cookies.
    pub fn cookie_store(mut self, store: Arc<Mutex<CookieStore>>) -> Self {
        self.cookies = Some(store);
        self
    }

    /// Sends and stores cookies with a store of its own (`withCredentials: true`).
    pub fn with_credentials(self) -> Self {
        self.cookie_store(Arc::new(Mutex::new(CookieStore::default())))
    }

    /// The most redirects followed for one connection (default 20).
    pub fn max_redirects(mut self, max: usize) -> Self {
        self.max_redirects = max;
        self
    }

    /// Which roots verify server certificates (default [`TlsRoots::WebPki`]).
    pub fn tls_roots(mut self, roots: TlsRoots) -> Self {
        self.roots = roots;
        self.own_client("tls_roots")
    }

    /// Also trusts this certificate: a private CA, or a server's self-signed certificate.
    pub fn add_root_certificate(mut self, certificate: CertificateDer<'static>) -> Self {
        self.extra_roots.push(certificate);
        self.own_client("add_root_certificate")
    }

    /// Also trusts every certificate in this PEM text.
    pub fn add_root_certificates_pem(mut self, pem: &[u8]) -> Self {
        for certificate in CertificateDer::pem_slice_iter(pem) {
            match certificate {
                Ok(certificate) => self.extra_roots.push(certificate),
                Err(error) => {
                    return self.fail(Error::builder(format!("invalid PEM certificate: {error}")));
                }
            }
        }
        self.own_client("add_root_certificates_pem")
    }

    /// Uses this rustls configuration as it is (roots, client certificates, versions); the
    /// root settings above are then ignored. ALPN is set by the source.
    pub fn tls_config(mut self, config: rustls::ClientConfig) -> Self {
        self.tls_config = Some(config);
        self.own_client("tls_config")
    }

    /// Speaks HTTP/1.1 only, also over TLS.
    pub fn http1_only(mut self) -> Self {
        self.versions = Versions::Http1Only;
        self.own_client("http1_only")
    }

    /// Speaks HTTP/2 from the first byte to `http://` URLs (h2c with prior knowledge), for
    /// servers known to support it. `https://` URLs negotiate with ALPN as usual.
    pub fn http2_prior_knowledge(mut self) -> Self {
        self.versions = Versions::Http2PriorKnowledge;
        self.own_client("http2_prior_knowledge")
    }

    /// Connects through this HTTP proxy for every URL (except those given to
    /// [`proxy_bypass`](Self::proxy_bypass)), instead of the proxies of the environment;
    /// loopback hosts too, unless bypassed.
    ///
    /// Credentials go in the URL (`http://user:password@proxy.example:3128`, percent-encoded)
    /// and are sent as `Proxy-Authorization: Basic`. `http://` URLs are requested from the
    /// proxy in absolute form; `https://` ones through a `CONNECT` tunnel, so the proxy never
    /// sees inside the TLS session. Only `http://` proxies are supported (not SOCKS, nor TLS to
    /// the proxy): [`build`](Self::build) refuses others.
    pub fn proxy(mut self, url: &str) -> Self {
        let bypass = match std::mem::take(&mut self.proxy) {
            ProxyConfig::Explicit { bypass, .. } => bypass,
            _ => String::new(),
        };
        self.proxy = ProxyConfig::Explicit {
            url: url.to_owned(),
            bypass,
        };
        self.own_client("proxy")
    }

    /// Hosts that [`proxy`](Self::proxy) does not apply to, as `NO_PROXY` lists them: comma
    /// separated domain names (each matching its subdomains too), IP addresses or networks
    /// (`10.0.0.0/8`), or `*` for all.
    pub fn proxy_bypass(mut self, hosts: &str) -> Self {
        match &mut self.proxy {
            ProxyConfig::Explicit { bypass, .. } => *bypass = hosts.to_owned(),
            _ => {
                return self.fail(Error::builder(
                    "proxy_bypass applies to the proxy set with `proxy`: set that first",
                ));
            }
        }
        self
    }

    /// Connects directly, ignoring the proxy environment variables.
    pub fn no_proxy(mut self) -> Self {
        self.proxy = ProxyConfig::None;
        self.own_client("no_proxy")
    }

    /// Opens connections with this connector instead of plain TCP: any
    /// [`tower::Service`](tower_service::Service) from the URL's [`Uri`](http::Uri) to a byte
    /// stream implementing hyper's `Read` and `Write` (wrap a Tokio stream in
    /// `hyper_util::rt::TokioIo`). A Unix socket, a custom resolver, an in-memory pipe...
    ///
    /// TLS (for `https://` URLs), HTTP/2 and proxies still apply on top: through a proxy, the
    /// connector is asked for the proxy's URI.
    ///
    /// ```no_run
    /// use futures::StreamExt;
    /// use herald_client::EventSource;
    /// use hyper_util::rt::TokioIo;
    ///
    /// # async fn unix() -> Result<(), herald_client::Error> {
    /// // Every request goes to the daemon's socket, whatever the URL's host.
    /// let socket = tower::service_fn(|_uri: http::Uri| async {
    ///     tokio::net::UnixStream::connect("/run/daemon.sock").await.map(TokioIo::new)
    /// });
    /// let mut source = EventSource::builder("http://daemon/events").connector(socket).build()?;
    /// while let Some(item) = source.next().await {
    ///     println!("{:?}", item?);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn connector<C, T>(mut self, connector: C) -> Self
    where
        C: tower_service::Service<http::Uri, Response = T> + Clone + Send + Sync + 'static,
        C::Future: Send + 'static,
        C::Error: Into<BoxError>,
        T: hyper::rt::Read + hyper::rt::Write + Send + Unpin + 'static,
    {
        self.connector = Some(Connector(open_with(connector)));
        self.own_client("connector")
    }

    /// Sends every request with the application's HTTP client instead of the source's own, so
    /// that its connection pool, TLS setup, proxies and middleware are reused: any
    /// [`tower::Service`](tower_service::Service) from `http::Request<B>` (where `B` can be made
    /// from [`Bytes`]: `Full<Bytes>`, axum's `Body`...) to `http::Response` of a body of
    /// [`Bytes`], such as a `hyper_util` legacy `Client`.
    ///
    /// Everything about the event stream still applies (the request's headers, redirects,
    /// cookies, timeouts, reconnection); the settings of the source's own client (TLS, HTTP
    /// versions, proxy, connector) would be ignored, so [`build`](Self::build) refuses them
    /// alongside this.
    ///
    /// ```no_run
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use herald_client::EventSource;
    /// use hyper_util::client::legacy::Client;
    /// use hyper_util::rt::TokioExecutor;
    ///
    /// # fn shared() -> Result<(), herald_client::Error> {
    /// // The application's client, also used for its other requests.
    /// let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    /// let source = EventSource::builder("http://127.0.0.1:8080/events")
    ///     .http_client(client.clone())
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn http_client<S, B, R>(mut self, client: S) -> Self
    where
        S: tower_service::Service<http::Request<B>, Response = http::Response<R>>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: From<Bytes> + 'static,
        R: http_body::Body<Data = Bytes> + Send + 'static,
        R::Error: Into<BoxError>,
    {
        self.http_client = Some(HttpClient::app(client));
        self
    }

    /// The decoder's limits (line length, event size). Comments are never reported.
    pub fn decoder(mut self, decoder: DecoderBuilder) -> Self {
        self.decoder = decoder;
        self
    }

    /// Builds the source. Nothing is connected until the source is first polled.
    pub fn build(self) -> Result<EventSource, Error> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let url = self.url?;
        let client = match self.http_client {
            Some(_) if !self.own_client_settings.is_empty() => {
                return Err(Error::builder(format!(
                    "http_client replaces the source's own HTTP client, which {} would configure: \
                     configure the application's client instead",
                    self.own_client_settings.join(", ")
                )));
            }
            Some(client) => client,
            None => HttpClient::own(OwnSettings {
                tls_config: self.tls_config,
                roots: self.roots,
                extra_roots: self.extra_roots,
                versions: self.versions,
                connector: self.connector.map(|Connector(open)| open),
                proxy: self.proxy,
            })?,
        };
        let mut headers = self.headers;
        let mut last_event_id = self.last_event_id;
        // A Last-Event-ID header given by hand is a starting ID: the source manages the header.
        if let Some(value) = headers.remove(LAST_EVENT_ID)
            && last_event_id.is_none()
        {
            last_event_id = Some(String::from_utf8_lossy(value.as_bytes()).into_owned());
        }
        if let Some(id) = &last_event_id {
            // A stream can never set such an ID (no CR, LF or NUL), and no header can carry it.
            if id.contains('\0') || last_event_id_value(id).is_none() {
                return Err(Error::builder(format!(
                    "the last event ID {id:?} has control characters: it cannot be sent"
                )));
            }
        }
        let mut decoder = self.decoder.comments(false).build();
        if let Some(id) = last_event_id {
            decoder.set_last_event_id(id);
        }
        let config = Config {
            url,
            method: self.method,
            headers,
            body: self.body,
            reconnection_time: self.reconnection_time,
            backoff: self.backoff,
            status_policy: self.status_policy,
            connect_timeout: self.connect_timeout,
            idle_timeout: self.idle_timeout,
            cookies: self.cookies,
            max_redirects: self.max_redirects,
        };
        Ok(EventSource::from_parts(config, client, decoder))
    }
}
