//! Serving the hub on real sockets: several listeners (IPv4 and IPv6), TLS with ALPN (`h2`,
//! `http/1.1`), HTTP/2 with prior knowledge on plain sockets (h2c), a bound on open
//! connections, and a graceful shutdown with a grace period.
//!
//! axum's own `serve` speaks only plain sockets, so the accept loop lives here, with rustls
//! driven by `lean_tls`. Subscriptions over HTTP/1.1 take a lean path (`lean`), HTTP/2
//! connections a lean server of their own (`h2`), and hyper serves the rest of HTTP/1.1.

mod h2;
mod lean;
mod lean_tls;
mod per_address;
mod stall;
pub mod tls;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use futures::StreamExt;
use http::header::{CONNECTION, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::hub::{Hub, HubState};

pub use tls::{TlsError, server_config, server_config_from_der};

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// What a refused connection is told to wait before trying again, in seconds.
pub const RETRY_AFTER_SECS: u64 = 1;
/// The most refused connections answered at once: each is told why (and may take a TLS
/// handshake to tell), so a flood of them would otherwise hold a task and a descriptor each for
/// seconds; beyond this, refused connections are closed without an answer.
const MAX_REFUSING: usize = 256;

/// Serves a [`Hub`] on one or more listeners, over plain HTTP (HTTP/1.1 and h2c) or TLS.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use herald_hub::{Hub, server::Server};
///
/// let hub = Hub::builder().anonymous(true).build()?;
/// let v4 = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// let v6 = tokio::net::TcpListener::bind("[::1]:8080").await?;
/// Server::new(hub).listener(v4).listener(v6).run(std::future::pending()).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a Server does nothing until `run` is awaited"]
pub struct Server {
    hub: Hub,
    listeners: Vec<TcpListener>,
    metrics_listeners: Vec<TcpListener>,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Server {
    /// A server for `hub`, with no listener yet.
    pub fn new(hub: Hub) -> Server {
        Server {
            hub,
            listeners: Vec::new(),
            metrics_listeners: Vec::new(),
            tls: None,
        }
    }

    /// Adds a listener.
    pub fn listener(mut self, listener: TcpListener) -> Server {
        self.listeners.push(listener);
        self
    }

    /// Adds a listener that serves only `/metrics`, `/healthz` and `/readyz`, over plain HTTP
    /// (a loopback or private address, for the monitoring system). Its connections do not
    /// count against `max_connections`. To keep those routes off the other listeners, turn
    /// `public_metrics` off in the hub's configuration.
    pub fn metrics_listener(mut self, listener: TcpListener) -> Server {
        self.metrics_listeners.push(listener);
        self
    }

    /// Serves HTTPS with this configuration (see [`server_config`]) on every listener.
    pub fn tls(mut self, config: Arc<rustls::ServerConfig>) -> Server {
        self.tls = Some(config);
        self
    }

    /// The addresses of the listeners.
    pub fn local_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        self.listeners.iter().map(TcpListener::local_addr).collect()
    }

    /// The addresses of the metrics listeners.
    pub fn metrics_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        self.metrics_listeners
            .iter()
            .map(TcpListener::local_addr)
            .collect()
    }

    /// Serves until `signal` completes, then stops accepting, ends every subscription stream
    /// (clients resume with `Last-Event-ID`), lets in-flight requests finish, and returns once
    /// every connection is closed or the configured grace period is over.
    pub async fn run(self, signal: impl Future<Output = ()> + Send + 'static) -> io::Result<()> {
        if self.listeners.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the server has no listener",
            ));
        }
        let state = self.hub.state.clone();
        let per_address = per_address::PerAddress::new(state.config.max_connections_per_ip);
        let public = Shared::new(&state, self.hub.router(), self.tls, per_address);
        let operations = Shared::new(
            &state,
            crate::http::operations_router(state.clone()),
            None,
            None,
        );
        let refusing = Arc::new(AtomicUsize::new(0));
        let (stop, stopped) = watch::channel(false);
        let mut connections = JoinSet::new();
        let listeners = (self.listeners.into_iter().map(|l| (l, public.clone()))).chain(
            self.metrics_listeners
                .into_iter()
                .map(|l| (l, operations.clone())),
        );
        let mut accept = futures::stream::select_all(listeners.map(|(listener, shared)| {
            Box::pin(futures::stream::poll_fn(move |cx| {
                listener
                    .poll_accept(cx)
                    .map(|accepted| Some(accepted.map(|a| (a, shared.clone()))))
            }))
        }));
        let mut signal = pin!(signal);
        loop {
            tokio::select! {
                () = &mut signal => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                Some(accepted) = accept.next() => {
                    let ((stream, peer), shared) = match accepted {
                        Ok(accepted) => accepted,
                        Err(error) => {
                            // Out of descriptors and the like: back off instead of spinning.
                            tracing::warn!(%error, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let max = state.config.max_connections;
                    let counted = !Arc::ptr_eq(&shared, &operations);
                    if counted && max != 0 && connections.len() >= max {
                        refused(&state, peer, Refusal::Connections);
                        refuse_at_most(&refusing, stream, &shared, Refusal::Connections);
                        continue;
                    }
                    let held = match &shared.per_address {
                        None => None,
                        Some(counts) => match counts.hold(peer.ip()) {
                            Some(held) => Some(held),
                            None => {
                                refused(&state, peer, Refusal::PerAddress);
                                refuse_at_most(&refusing, stream, &shared, Refusal::PerAddress);
                                continue;
                            }
                        },
                    };
                    // Two kinds of task, each as small as its own connections allow.
                    if shared.acceptor.is_some() {
                        connections.spawn(tls_connection(stream, peer, shared, stopped.clone(), held));
                    } else {
                        connections.spawn(plain_connection(stream, peer, shared, stopped.clone(), held));
                    }
                }
            }
        }
        drop(accept);
        tracing::info!(
            connections = connections.len(),
            "shutting down: no longer accepting, ending subscription streams"
        );
        state.fanout.close_all();
        let _ = stop.send(true);
        let grace = state.config.grace_period;
        let drained = tokio::time::timeout(grace, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                remaining = connections.len(),
                ?grace,
                "grace period over: closing the remaining connections"
            );
            connections.shutdown().await;
        }
        state.transport.close();
        Ok(())
    }
}

/// The largest request head: the request line and the headers each have their own bound,
/// checked with a clear answer by the limits layer, so the buffer fits both.
fn head_limit(config: &crate::config::HubConfig) -> usize {
    (config.max_url_size + config.max_header_size).max(8192)
}

fn connection_builder(state: &HubState) -> auto::Builder<TokioExecutor> {
    let config = &state.config;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    let head = head_limit(config);
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(head);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(head).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(Duration::from_secs(30)));
    builder
}

/// What every connection of a listener shares.
struct Shared {
    builder: auto::Builder<TokioExecutor>,
    /// Serves the lean path's requests.
    router: axum::Router,
    /// Serves hyper's.
    hyper: TowerToHyperService<axum::Router>,
    /// The TLS configuration, when the server speaks TLS.
    acceptor: Option<Arc<rustls::ServerConfig>>,
    /// The bound on each client address's open connections, if any.
    per_address: Option<Arc<per_address::PerAddress>>,
    state: Arc<HubState>,
}

impl Shared {
    fn new(
        state: &Arc<HubState>,
        router: axum::Router,
        acceptor: Option<Arc<rustls::ServerConfig>>,
        per_address: Option<Arc<per_address::PerAddress>>,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            builder: connection_builder(state),
            hyper: TowerToHyperService::new(router.clone()),
            router,
            acceptor,
            per_address,
            state: state.clone(),
        })
    }
}

/// Serves one plain connection until it ends, or gracefully once `stopped` turns true.
///
/// An idle subscription's task holds this future for its whole life, so its size counts: what
/// every connection shares is behind one `Arc`, and the HTTP/1.1 lean path's state is inline,
/// the cheapest for the subscriptions plain connections mostly carry.
async fn plain_connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
    _held: Option<per_address::Held>,
) {
    let _open = shared.state.metrics.connection_opened();
    let stalled = serve_plain(stream, peer, &shared, &mut stopped).await;
    closed(&shared, peer, stalled);
}

/// Serves one TLS connection, as [`plain_connection`] does a plain one. The handshake's state
/// is boxed and freed once done; the stream (over a kilobyte of rustls state) is boxed, so that
/// the paths serving it hold a pointer; and the HTTP/1.1 lean path's state is boxed too, so that
/// the HTTP/2 connections browsers mostly open over TLS keep no room for it.
async fn tls_connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
    _held: Option<per_address::Held>,
) {
    let _open = shared.state.metrics.connection_opened();
    let Some(config) = &shared.acceptor else {
        return;
    };
    // What is matched here is the boxed stream, not the stream, whose room would otherwise
    // stay in this future for the connection's life.
    let stalled = match Box::pin(handshake(config, stream)).await {
        Some(tls) => serve_tls(tls, peer, &shared, &mut stopped).await,
        None => false,
    };
    closed(&shared, peer, stalled);
}

/// Notes why a connection ended, when its client stopped reading.
fn closed(shared: &Shared, peer: SocketAddr, stalled: bool) {
    if stalled {
        let timeout = shared.state.config.send_timeout;
        tracing::info!(?timeout, %peer, "connection closed: the client stopped reading");
        shared.state.metrics.rejected("send_timeout");
    }
}

async fn handshake(
    config: &Arc<rustls::ServerConfig>,
    stream: TcpStream,
) -> Option<Box<lean_tls::TlsStream>> {
    let accept = lean_tls::TlsStream::accept(config.clone(), stream);
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, accept).await {
        Ok(Ok(tls)) => Some(Box::new(tls)),
        Ok(Err(error)) => {
            tracing::debug!(%error, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            None
        }
    }
}

/// Serves one plain connection; returns whether it was closed because its client stopped
/// reading for longer than `send_timeout`. The HTTP/1.1 lean path's state is inline.
async fn serve_plain(
    io: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    stopped: &mut watch::Receiver<bool>,
) -> bool {
    let config = &shared.state.config;
    let (io, stalled) = stall::StallDetect::new(io, config.send_timeout);
    let next = lean::subscriptions(
        io,
        peer,
        &shared.router,
        stopped,
        head_limit(config),
        HEADER_READ_TIMEOUT,
    )
    .await;
    if let Some(rest) = rest(next, peer, shared, stopped) {
        rest.await;
    }
    stalled.get()
}

/// Serves one TLS connection, as [`serve_plain`] does a plain one, the lean path's state boxed;
/// a connection whose client chose `h2` by ALPN goes to the HTTP/2 server at once.
async fn serve_tls(
    io: Box<lean_tls::TlsStream>,
    peer: SocketAddr,
    shared: &Shared,
    stopped: &mut watch::Receiver<bool>,
) -> bool {
    let config = &shared.state.config;
    let h2 = io.alpn_protocol() == Some(&b"h2"[..]);
    let (io, stalled) = stall::StallDetect::new(io, config.send_timeout);
    if h2 {
        // The client chose HTTP/2: its first bytes must be the preface, which the HTTP/2
        // server checks (anything else is a connection error there, not an HTTP/1.1 request).
        let serve = h2::serve(io, peer, &shared.router, stopped, head_limit(config));
        Box::pin(serve).await;
        return stalled.get();
    }
    let next = Box::pin(lean::subscriptions(
        io,
        peer,
        &shared.router,
        stopped,
        head_limit(config),
        HEADER_READ_TIMEOUT,
    ))
    .await;
    if let Some(rest) = rest(next, peer, shared, stopped) {
        rest.await;
    }
    stalled.get()
}

/// What serves a connection once the lean path hands it on: the HTTP/2 server or hyper, each
/// boxed, so that a connection's task holds the state of neither.
fn rest<'a, I>(
    next: lean::Next<I>,
    peer: SocketAddr,
    shared: &'a Shared,
    stopped: &'a mut watch::Receiver<bool>,
) -> Option<Pin<Box<dyn Future<Output = ()> + Send + 'a>>>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let head_limit = head_limit(&shared.state.config);
    match next {
        lean::Next::Close => None,
        lean::Next::Http2(io) => Some(Box::pin(h2::serve(
            io,
            peer,
            &shared.router,
            stopped,
            head_limit,
        ))),
        lean::Next::Hyper(io) => Some(Box::pin(serve_hyper(
            io,
            peer,
            &shared.builder,
            shared.hyper.clone(),
            stopped,
        ))),
    }
}

/// Serves a connection with hyper until it ends, or gracefully once `stopped` turns true.
/// Each request carries the client's address (`ConnectInfo`).
async fn serve_hyper<I>(
    io: I,
    peer: SocketAddr,
    builder: &auto::Builder<TokioExecutor>,
    service: TowerToHyperService<axum::Router>,
    stopped: &mut watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: http::Request<_>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        hyper::service::Service::call(&service, request)
    });
    let mut conn = pin!(builder.serve_connection_with_upgrades(TokioIo::new(io), service));
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = async { stopped.wait_for(|stop| *stop).await.is_ok() } => {
            conn.as_mut().graceful_shutdown();
            conn.as_mut().await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended with an error");
    }
}

/// Why a connection is refused before it is served.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// The hub holds `max_connections` already.
    Connections,
    /// The client's address holds `max_connections_per_ip` already.
    PerAddress,
}

impl Refusal {
    fn status(self) -> StatusCode {
        match self {
            Refusal::Connections => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::PerAddress => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// The reason, as the client reads it and the log records it.
    fn reason(self) -> &'static str {
        match self {
            Refusal::Connections => "too many connections to the hub (max-connections)",
            Refusal::PerAddress => {
                "too many connections from this address (max-connections-per-ip)"
            }
        }
    }

    fn metric(self) -> &'static str {
        match self {
            Refusal::Connections => "max_connections",
            Refusal::PerAddress => "max_connections_per_ip",
        }
    }
}

/// Logs and counts a refused connection.
fn refused(state: &HubState, peer: SocketAddr, why: Refusal) {
    state.refusal_log.log(&crate::http::refusal_log::Refused {
        status: None,
        reason: why.reason(),
        remote: Some(peer),
        method: "",
        path: "",
    });
    state.metrics.rejected(why.metric());
}

/// Answers a refused connection, unless [`MAX_REFUSING`] are being answered already: then it
/// is closed at once.
fn refuse_at_most(refusing: &Arc<AtomicUsize>, stream: TcpStream, shared: &Shared, why: Refusal) {
    if refusing.fetch_add(1, Ordering::AcqRel) >= MAX_REFUSING {
        refusing.fetch_sub(1, Ordering::AcqRel);
        drop(stream);
        return;
    }
    let refusing = Arc::clone(refusing);
    let (acceptor, builder) = (shared.acceptor.clone(), shared.builder.clone());
    tokio::spawn(async move {
        refuse(stream, acceptor, builder, why).await;
        refusing.fetch_sub(1, Ordering::AcqRel);
    });
}

/// Answers the first request of a refused connection with why, then closes it; gives up after
/// a few seconds.
async fn refuse(
    stream: TcpStream,
    acceptor: Option<Arc<rustls::ServerConfig>>,
    mut builder: auto::Builder<TokioExecutor>,
    why: Refusal,
) {
    builder.http1().keep_alive(false);
    let service = hyper::service::service_fn(move |_request| async move {
        let mut response = Response::new(Body::from(format!("{}: retry shortly\n", why.reason())));
        *response.status_mut() = why.status();
        let headers = response.headers_mut();
        headers.insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        Ok::<_, std::convert::Infallible>(response)
    });
    let serve = async {
        let result = match acceptor {
            None => {
                builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await
            }
            Some(acceptor) => match handshake(&acceptor, stream).await {
                Some(tls) => builder.serve_connection(TokioIo::new(tls), service).await,
                None => Ok(()),
            },
        };
        if let Err(error) = result {
            tracing::debug!(%error, "refused connection ended with an error");
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), serve).await;
}
