//! Opening subscriptions the ways browsers do: plain HTTP/1.1, HTTP/1.1 over TLS, and streams
//! of HTTP/2 sessions (over TLS, chosen by ALPN, or h2c with prior knowledge), several
//! subscriptions sharing one session with `--streams-per-session`. Whatever the way, a
//! subscription hands back its body as raw event-stream bytes.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use bytes::{Buf as _, Bytes, BytesMut};
use h2::RecvStream;
use h2::client::SendRequest;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::args::Endpoint;
use super::body::BodyDecoder;

/// Room reserved for each read.
const READ_RESERVE: usize = 4096;
/// The largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// `EMFILE`: this process has as many files open as the OS allows.
const EMFILE: i32 = 24;

/// A connection to the hub, plain or TLS.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// How subscriptions reach the hub.
#[derive(Clone)]
pub(crate) struct Connector {
    addr: SocketAddr,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    /// With HTTP/2: how many subscriptions share a session.
    http2: Option<u32>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("addr", &self.addr)
            .field("tls", &self.tls.is_some())
            .field("http2", &self.http2)
            .finish()
    }
}

impl Connector {
    /// Subscriptions to `endpoint`, over TLS with `tls`, as HTTP/2 streams with `http2`
    /// subscriptions per session (HTTP/1.1, one connection each, without).
    pub(crate) fn new(
        endpoint: &Endpoint,
        tls: Option<Arc<rustls::ClientConfig>>,
        http2: Option<u32>,
    ) -> anyhow::Result<Connector> {
        let tls = match tls {
            None => None,
            Some(config) => {
                let host = endpoint.url.host_str().unwrap_or("localhost");
                let name = ServerName::try_from(host.to_owned())
                    .with_context(|| format!("`{host}` is not a TLS server name"))?;
                Some((TlsConnector::from(config), name))
            }
        };
        Ok(Connector {
            addr: endpoint.addr,
            tls,
            http2,
        })
    }

    /// How many subscriptions share one HTTP/2 session; `None` for HTTP/1.1.
    pub(crate) fn streams_per_session(&self) -> Option<u32> {
        self.http2
    }

    /// The URL scheme subscriptions are made with.
    fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// A new connection, its TLS handshake done.
    async fn connect(&self) -> anyhow::Result<Box<dyn Io>> {
        let addr = self.addr;
        let stream = TcpStream::connect(addr).await.map_err(|error| {
            if error.raw_os_error() == Some(EMFILE) {
                anyhow::anyhow!(
                    "the OS limit on open files stopped the load generator (EMFILE): run several \
                     `herald bench` processes with fewer subscribers each"
                )
            } else {
                anyhow::Error::new(error).context(format!("cannot connect to {addr}"))
            }
        })?;
        stream.set_nodelay(true)?;
        // An abortive close leaves no TIME_WAIT behind: the next run gets its ports back.
        stream.set_zero_linger()?;
        let Some((connector, name)) = &self.tls else {
            return Ok(Box::new(stream));
        };
        let tls = connector
            .connect(name.clone(), stream)
            .await
            .context("the TLS handshake failed")?;
        if self.http2.is_some() && tls.get_ref().1.alpn_protocol() != Some(b"h2") {
            bail!("the server did not choose HTTP/2 (ALPN h2) for a TLS connection");
        }
        Ok(Box::new(tls))
    }

    /// Opens an HTTP/2 session (h2 over TLS, or h2c with prior knowledge); it ends once its
    /// handle and its streams are dropped.
    pub(crate) async fn session(&self) -> anyhow::Result<SendRequest<Bytes>> {
        let io = self.connect().await?;
        let (session, connection) = h2::client::handshake(io)
            .await
            .context("the HTTP/2 handshake failed")?;
        tokio::spawn(connection);
        Ok(session)
    }

    /// Opens a subscription over a connection of its own, sending `request` (a whole HTTP/1.1
    /// request head), and reads the response head.
    pub(crate) async fn open_http1(&self, request: &[u8]) -> anyhow::Result<Body> {
        let mut io = self.connect().await?;
        io.write_all(request).await?;
        io.flush().await?;
        let mut buffer = BytesMut::with_capacity(READ_RESERVE);
        loop {
            if io.read_buf(&mut buffer).await? == 0 {
                bail!("the server closed the connection before answering the subscription");
            }
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut response = httparse::Response::new(&mut headers);
            let parsed = response.parse(&buffer).map_err(|error| match error {
                httparse::Error::TooManyHeaders => {
                    anyhow::anyhow!("the response head has more than 64 headers")
                }
                other => anyhow::anyhow!("malformed response head: {other}"),
            })?;
            match parsed {
                httparse::Status::Complete(len) => {
                    let header = |name: &str| {
                        response
                            .headers
                            .iter()
                            .find(|h| h.name.eq_ignore_ascii_case(name))
                            .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase())
                    };
                    check_answer(
                        response.code.unwrap_or(0),
                        response.reason.unwrap_or(""),
                        header("content-type").as_deref(),
                    )?;
                    let chunked =
                        header("transfer-encoding").is_some_and(|t| t.contains("chunked"));
                    buffer.advance(len);
                    return Ok(Body::Http1 {
                        io,
                        buffer,
                        decoder: BodyDecoder::new(chunked),
                    });
                }
                httparse::Status::Partial if buffer.len() > MAX_HEAD => {
                    bail!("the response head is larger than {MAX_HEAD} bytes")
                }
                httparse::Status::Partial => {}
            }
        }
    }

    /// Opens a subscription to `url` as a stream of `session`, and waits for its response head.
    pub(crate) async fn open_http2(
        &self,
        session: &SendRequest<Bytes>,
        url: &url::Url,
    ) -> anyhow::Result<Body> {
        let mut url = url.clone();
        url.set_scheme(self.scheme())
            .map_err(|()| anyhow::anyhow!("cannot make an {} URL", self.scheme()))?;
        let request = http::Request::get(url.as_str())
            .header(http::header::ACCEPT, "text/event-stream")
            .header(http::header::CACHE_CONTROL, "no-cache")
            .body(())?;
        let mut session = session
            .clone()
            .ready()
            .await
            .context("the HTTP/2 session")?;
        let (response, _) = session
            .send_request(request, true)
            .context("sending the subscription")?;
        let response = response.await.context("the subscription's answer")?;
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).to_ascii_lowercase());
        let status = response.status();
        check_answer(
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            content_type.as_deref(),
        )?;
        Ok(Body::Http2 {
            stream: response.into_body(),
            pending: None,
        })
    }
}

/// A subscription must be answered `200` with `text/event-stream`.
fn check_answer(code: u16, reason: &str, content_type: Option<&str>) -> anyhow::Result<()> {
    if code != 200 {
        bail!("the subscription was answered {code} {reason}");
    }
    let is_stream = content_type.is_some_and(|t| {
        t.split(';')
            .next()
            .is_some_and(|m| m.trim() == "text/event-stream")
    });
    if !is_stream {
        bail!(
            "the subscription was answered 200 with Content-Type {}, not text/event-stream",
            content_type.unwrap_or("(none)")
        );
    }
    Ok(())
}

/// A subscription's response body.
pub(crate) enum Body {
    /// Over HTTP/1.1: the connection, what was read and not yet decoded, the framing.
    Http1 {
        io: Box<dyn Io>,
        buffer: BytesMut,
        decoder: BodyDecoder,
    },
    /// A stream of an HTTP/2 session, and the data received and not yet taken.
    Http2 {
        stream: RecvStream,
        pending: Option<Bytes>,
    },
}

impl Body {
    /// Hands what has arrived of the event stream to `sink`.
    pub(crate) fn take(&mut self, sink: impl FnMut(Bytes)) -> anyhow::Result<()> {
        match self {
            Body::Http1 {
                buffer, decoder, ..
            } => decoder.decode(buffer, sink),
            Body::Http2 { pending, .. } => {
                if let Some(data) = pending.take() {
                    let mut sink = sink;
                    sink(data);
                }
                Ok(())
            }
        }
    }

    /// Waits for more of the body; an error once it has ended.
    pub(crate) async fn fill(&mut self) -> anyhow::Result<()> {
        match self {
            Body::Http1 {
                io,
                buffer,
                decoder,
            } => {
                if decoder.is_done() {
                    bail!("the server ended the stream");
                }
                buffer.reserve(READ_RESERVE);
                if io.read_buf(buffer).await? == 0 {
                    bail!("the server closed the stream");
                }
            }
            Body::Http2 { stream, pending } => match stream.data().await {
                None => bail!("the server ended the stream"),
                Some(data) => {
                    let data = data.context("the HTTP/2 stream failed")?;
                    let _ = stream.flow_control().release_capacity(data.len());
                    *pending = Some(data);
                }
            },
        }
        Ok(())
    }
}
