//! The HTTP client a source sends its requests with: its own (rustls, HTTP/1.1 and HTTP/2,
//! proxies, over TCP or the application's connector), or the application's, reused with its
//! connection pool and middleware.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::PROXY_AUTHORIZATION;
use http::{Request, Response};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::CertificateDer;
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;
use tower_service::Service;

use crate::builder::{TlsRoots, Versions};
use crate::error::{BoxError, Error};
use crate::transport::{Open, Proxies, ProxyConfig, Transport, open_with};

/// A response body, whichever client read it.
pub(crate) type ResponseBody = UnsyncBoxBody<Bytes, BoxError>;

type OwnClient = Client<HttpsConnector<Transport>, Full<Bytes>>;
type AppClient = BoxCloneSyncService<Request<Bytes>, Response<ResponseBody>, BoxError>;

/// What the source's own client is made of.
#[derive(Debug)]
pub(crate) struct OwnSettings {
    pub(crate) tls_config: Option<rustls::ClientConfig>,
    pub(crate) roots: TlsRoots,
    pub(crate) extra_roots: Vec<CertificateDer<'static>>,
    pub(crate) versions: Versions,
    pub(crate) connector: Option<Open>,
    pub(crate) proxy: ProxyConfig,
}

/// The client of one source.
pub(crate) enum HttpClient {
    /// The source's own.
    Own(Box<OwnClients>),
    /// The application's.
    App(AppClient),
}

/// One client for everything, and one speaking HTTP/2 with prior knowledge to `http://` URLs
/// when asked.
pub(crate) struct OwnClients {
    client: OwnClient,
    h2c: Option<OwnClient>,
    proxies: Proxies,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpClient::Own(own) => f
                .debug_struct("Own")
                .field("proxies", &own.proxies)
                .field("h2c", &own.h2c.is_some())
                .finish_non_exhaustive(),
            HttpClient::App(_) => f.write_str("App"),
        }
    }
}

impl HttpClient {
    /// The source's own client.
    pub(crate) fn own(settings: OwnSettings) -> Result<HttpClient, Error> {
        let tls = match settings.tls_config {
            Some(mut config) => {
                config.alpn_protocols.clear();
                config
            }
            None => tls_config_with_roots(settings.roots, settings.extra_roots)?,
        };
        let proxies = settings
            .proxy
            .resolve()
            .map_err(|message| Error::builder(format!("proxy: {message}")))?;
        let open = settings.connector.unwrap_or_else(tcp);
        let transport = Transport::new(open, proxies.clone());
        let https = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1();
        let https = match settings.versions {
            Versions::Http1Only => https.wrap_connector(transport),
            Versions::Auto | Versions::Http2PriorKnowledge => {
                https.enable_http2().wrap_connector(transport)
            }
        };
        // An event stream holds its connection for its whole life; an idle pooled connection
        // would only be a stale one by the next reconnection.
        let mut builder = Client::builder(TokioExecutor::new());
        builder.pool_max_idle_per_host(0);
        let client = builder.build(https.clone());
        let h2c = (settings.versions == Versions::Http2PriorKnowledge)
            .then(|| builder.http2_only(true).build(https));
        Ok(HttpClient::Own(Box::new(OwnClients {
            client,
            h2c,
            proxies,
        })))
    }

    /// The application's client: any service from `http::Request` to `http::Response`.
    pub(crate) fn app<S, B, R>(service: S) -> HttpClient
    where
        S: Service<Request<B>, Response = Response<R>> + Clone + Send + Sync + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: From<Bytes> + 'static,
        R: http_body::Body<Data = Bytes> + Send + 'static,
        R::Error: Into<BoxError>,
    {
        let service = service
            .map_request(|request: Request<Bytes>| request.map(B::from))
            .map_response(|response: Response<R>| {
                response.map(|body| body.map_err(Into::into).boxed_unsync())
            })
            .map_err(Into::into);
        HttpClient::App(BoxCloneSyncService::new(service))
    }

    /// Sends one request and waits for the response's head.
    pub(crate) async fn send(
        &self,
        mut request: Request<Bytes>,
    ) -> Result<Response<ResponseBody>, BoxError> {
        match self {
            HttpClient::Own(own) => {
                let OwnClients {
                    client,
                    h2c,
                    proxies,
                } = &**own;
                if let Some(auth) = proxies.http_auth(request.uri()) {
                    request
                        .headers_mut()
                        .entry(PROXY_AUTHORIZATION)
                        .or_insert(auth);
                }
                // Proxies are spoken to in HTTP/1.1: prior knowledge is for direct connections.
                let client = match h2c {
                    Some(h2c)
                        if request.uri().scheme_str() == Some("http")
                            && proxies.intercept(request.uri()).is_none() =>
                    {
                        h2c
                    }
                    _ => client,
                };
                let response = client.request(request.map(Full::new)).await?;
                Ok(response.map(|body| body.map_err(BoxError::from).boxed_unsync()))
            }
            HttpClient::App(service) => service.clone().oneshot(request).await,
        }
    }
}

/// Plain TCP, with TCP keep-alive probes.
fn tcp() -> Open {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    // Without an idle timeout a stream may wait forever; TCP keep-alive probes at least find
    // a server that vanished without a word (about a minute after the line went quiet).
    http.set_keepalive(Some(Duration::from_secs(30)));
    http.set_keepalive_interval(Some(Duration::from_secs(10)));
    http.set_keepalive_retries(Some(3));
    open_with(http)
}

fn tls_config_with_roots(
    roots: TlsRoots,
    extra_roots: Vec<CertificateDer<'static>>,
) -> Result<rustls::ClientConfig, Error> {
    let mut store = rustls::RootCertStore::empty();
    if matches!(roots, TlsRoots::WebPki | TlsRoots::WebPkiAndNative) {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if matches!(roots, TlsRoots::Native | TlsRoots::WebPkiAndNative) {
        let native = rustls_native_certs::load_native_certs();
        for error in &native.errors {
            tracing::warn!(%error, "could not load some of the system's root certificates");
        }
        let (added, ignored) = store.add_parsable_certificates(native.certs);
        tracing::debug!(added, ignored, "loaded the system's root certificates");
    }
    for certificate in extra_roots {
        store
            .add(certificate)
            .map_err(|error| Error::builder(format!("unusable root certificate: {error}")))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| Error::builder(format!("TLS configuration: {error}")))?
        .with_root_certificates(store)
        .with_no_client_auth())
}
