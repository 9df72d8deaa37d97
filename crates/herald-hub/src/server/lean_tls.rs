//! A TLS stream over rustls's unbuffered API, which holds no buffer while its connection is
//! idle. rustls's buffered connection (what tokio-rustls drives) keeps a 4 KiB receive buffer
//! for the connection's whole life, allocated at its first read and never shrunk below that:
//! a third of an idle TLS subscription's cost (see `crates/herald-hub/PERFORMANCE.md`).
//!
//! Here the bytes received wait in a buffer of their own only while a record is incomplete,
//! the bytes to send only until the socket took them, and decrypted data only until it is
//! read; each is freed once empty. rustls does the TLS itself, handshake, records, alerts and
//! key updates included; this only moves the bytes.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, InsufficientSizeError, UnbufferedStatus,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Bytes read from the socket at once.
const READ_SIZE: usize = 4096;
/// Plaintext joined into one record from a vectored write, at most.
const JOIN: usize = 4096;

/// A server-side TLS stream over a TCP socket.
pub(crate) struct TlsStream {
    tcp: TcpStream,
    conn: UnbufferedServerConnection,
    /// TLS bytes received and not yet processed: a partial record, or nothing.
    incoming: Vec<u8>,
    /// TLS bytes to send, and how much of them the socket took.
    outgoing: Vec<u8>,
    sent: usize,
    /// Decrypted application data not yet read, and how much of it was read.
    plaintext: Vec<u8>,
    taken: usize,
    /// The client sent `close_notify` or closed its side.
    read_closed: bool,
    /// The hub queued its `close_notify`.
    write_closed: bool,
}

/// Where processing the received bytes left the connection.
#[derive(Debug, PartialEq, Eq)]
enum Reached {
    /// The handshake needs more bytes from the client.
    Handshaking,
    /// The handshake is done: application data flows.
    Traffic,
    /// Both sides sent `close_notify`.
    Closed,
}

impl TlsStream {
    /// Performs the TLS handshake on `tcp`.
    pub(crate) async fn accept(
        config: Arc<rustls::ServerConfig>,
        tcp: TcpStream,
    ) -> io::Result<TlsStream> {
        let conn = UnbufferedServerConnection::new(config).map_err(tls_error)?;
        let mut stream = TlsStream {
            tcp,
            conn,
            incoming: Vec::new(),
            outgoing: Vec::new(),
            sent: 0,
            plaintext: Vec::new(),
            taken: 0,
            read_closed: false,
            write_closed: false,
        };
        poll_fn(|cx| stream.poll_handshake(cx)).await?;
        Ok(stream)
    }

    /// The ALPN protocol agreed on, if any.
    pub(crate) fn alpn_protocol(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let reached = self.process(None, false)?;
            // What the handshake produced goes out before anything else waits for the client:
            // with TLS 1.2 the client waits for the hub's Finished.
            ready!(self.poll_send(cx))?;
            match reached {
                Reached::Traffic => return Poll::Ready(Ok(())),
                Reached::Closed => return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into())),
                Reached::Handshaking => {
                    if ready!(self.poll_receive(cx))? == 0 {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the client left during the TLS handshake",
                        )));
                    }
                }
            }
        }
    }

    /// Processes the received bytes: decrypts application data into `plaintext`, encodes what
    /// rustls has to send into `outgoing`, and, once application data may flow, encrypts
    /// `send` and queues `close_notify` if `close`.
    fn process(&mut self, mut send: Option<&[u8]>, close: bool) -> io::Result<Reached> {
        loop {
            let UnbufferedStatus { mut discard, state } =
                self.conn.process_tls_records(&mut self.incoming);
            let state = state.map_err(tls_error)?;
            let reached = match state {
                ConnectionState::ReadTraffic(mut traffic) => {
                    while let Some(record) = traffic.next_record() {
                        let record = record.map_err(tls_error)?;
                        discard += record.discard;
                        self.plaintext.extend_from_slice(record.payload);
                    }
                    None
                }
                ConnectionState::EncodeTlsData(mut encode) => {
                    grow(&mut self.outgoing, 512, |out| match encode.encode(out) {
                        Ok(n) => Ok(n),
                        Err(EncodeError::InsufficientSize(InsufficientSizeError {
                            required_size,
                        })) => Err(Unfilled::Room(required_size)),
                        Err(error) => Err(Unfilled::Failed(tls_error(error))),
                    })?;
                    None
                }
                // The bytes are queued in order: they leave before anything encoded later.
                ConnectionState::TransmitTlsData(transmit) => {
                    transmit.done();
                    None
                }
                ConnectionState::BlockedHandshake => Some(Reached::Handshaking),
                ConnectionState::PeerClosed => {
                    self.read_closed = true;
                    None
                }
                ConnectionState::Closed => {
                    self.read_closed = true;
                    Some(Reached::Closed)
                }
                ConnectionState::WriteTraffic(mut traffic) => {
                    if let Some(data) = send.take() {
                        // Room for the data and each record's header and tag.
                        let room = data.len() + 64 * (data.len() / 16_384 + 1);
                        grow(&mut self.outgoing, room, |out| {
                            encrypted(traffic.encrypt(data, out))
                        })?;
                    }
                    if close && !self.write_closed {
                        self.write_closed = true;
                        grow(&mut self.outgoing, 64, |out| {
                            encrypted(traffic.queue_close_notify(out))
                        })?;
                    }
                    Some(Reached::Traffic)
                }
                // Early data is not enabled, so nothing else is expected.
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "an unexpected TLS state",
                    ));
                }
            };
            self.incoming.drain(..discard);
            if self.incoming.is_empty() {
                self.incoming = Vec::new();
            }
            if let Some(reached) = reached {
                return Ok(reached);
            }
        }
    }

    /// Reads from the socket into `incoming`; the count read (0 once the client closed).
    fn poll_receive(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut chunk = [0u8; READ_SIZE];
        let mut read = ReadBuf::new(&mut chunk);
        ready!(Pin::new(&mut self.tcp).poll_read(cx, &mut read))?;
        self.incoming.extend_from_slice(read.filled());
        Poll::Ready(Ok(read.filled().len()))
    }

    /// Writes `outgoing` to the socket until all of it is sent; frees it then.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.outgoing.len() {
            let n = ready!(Pin::new(&mut self.tcp).poll_write(cx, &self.outgoing[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.outgoing = Vec::new();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }

    /// Encrypts `data` once earlier bytes are sent; they leave as soon as the socket takes them.
    fn poll_encrypt(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        if self.write_closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        // Earlier bytes first: a client that does not read holds back the writer.
        ready!(self.poll_send(cx))?;
        if self.process(Some(data), false)? != Reached::Traffic {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        }
        if let Poll::Ready(Err(error)) = self.poll_send(cx) {
            return Poll::Ready(Err(error));
        }
        Poll::Ready(Ok(data.len()))
    }
}

/// Why a `fill` of [`grow`] wrote nothing.
enum Unfilled {
    /// It needs this much room.
    Room(usize),
    /// It failed.
    Failed(io::Error),
}

/// Runs `fill` on `room` bytes of free space at the end of `buf`, again with more when it asks
/// for more, and keeps what it wrote.
fn grow(
    buf: &mut Vec<u8>,
    mut room: usize,
    mut fill: impl FnMut(&mut [u8]) -> Result<usize, Unfilled>,
) -> io::Result<()> {
    let start = buf.len();
    loop {
        buf.resize(start + room, 0);
        let error = match fill(&mut buf[start..]) {
            Ok(written) => {
                buf.truncate(start + written);
                return Ok(());
            }
            Err(Unfilled::Room(required)) if required > room => {
                room = required;
                continue;
            }
            Err(Unfilled::Room(_)) => io::Error::other("TLS output did not fit the room it asked"),
            Err(Unfilled::Failed(error)) => error,
        };
        buf.truncate(start);
        return Err(error);
    }
}

fn encrypted(result: Result<usize, EncryptError>) -> Result<usize, Unfilled> {
    match result {
        Ok(n) => Ok(n),
        Err(EncryptError::InsufficientSize(InsufficientSizeError { required_size })) => {
            Err(Unfilled::Room(required_size))
        }
        Err(error) => Err(Unfilled::Failed(tls_error(error))),
    }
}

fn tls_error(error: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

impl AsyncRead for TlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.taken < this.plaintext.len() {
                let n = buf.remaining().min(this.plaintext.len() - this.taken);
                buf.put_slice(&this.plaintext[this.taken..this.taken + n]);
                this.taken += n;
                if this.taken == this.plaintext.len() {
                    this.plaintext = Vec::new();
                    this.taken = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.read_closed {
                return Poll::Ready(Ok(()));
            }
            let reached = this.process(None, false)?;
            // A key update's answer, say, leaves without waiting for the next write.
            if let Poll::Ready(Err(error)) = this.poll_send(cx) {
                return Poll::Ready(Err(error));
            }
            if reached == Reached::Closed || !this.plaintext.is_empty() || this.read_closed {
                continue;
            }
            if ready!(this.poll_receive(cx))? == 0 {
                // The socket closed without close_notify: the end of the stream all the same.
                this.read_closed = true;
            }
        }
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_encrypt(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // Small pieces (a chunk's size line, its data, its CRLF) go out as one record.
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total <= JOIN {
            let mut joined = [0u8; JOIN];
            let mut len = 0;
            for buf in bufs {
                joined[len..len + buf.len()].copy_from_slice(buf);
                len += buf.len();
            }
            return self.poll_encrypt(cx, &joined[..len]);
        }
        let first = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map_or(&[][..], |b| &**b);
        self.poll_encrypt(cx, first)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_send(cx))?;
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.write_closed {
            ready!(self.poll_send(cx))?;
            self.process(None, true)?;
        }
        ready!(self.poll_send(cx))?;
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A hub-side stream and a tokio-rustls client talking to it over loopback.
    async fn pair(alpn: &[&[u8]]) -> (TlsStream, tokio_rustls::client::TlsStream<TcpStream>) {
        let certified =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
        let key =
            rustls_pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        let config = crate::server::server_config_from_der(vec![certified.cert.der().clone()], key)
            .expect("server config");
        let mut roots = rustls::RootCertStore::empty();
        roots.add(certified.cert.der().clone()).expect("root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connect = async {
            let tcp = TcpStream::connect(addr).await.expect("connect");
            let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
            tokio_rustls::TlsConnector::from(Arc::new(client))
                .connect(name, tcp)
                .await
                .expect("client handshake")
        };
        let accept = async {
            let (tcp, _) = listener.accept().await.expect("accept");
            TlsStream::accept(config, tcp)
                .await
                .expect("server handshake")
        };
        let (client, server) = tokio::join!(connect, accept);
        (server, client)
    }

    #[tokio::test]
    async fn data_flows_both_ways_and_close_notify_ends_the_stream() {
        let (mut server, mut client) = pair(&[b"h2", b"http/1.1"]).await;
        assert_eq!(server.alpn_protocol(), Some(&b"h2"[..]));
        client.write_all(b"hello hub").await.expect("client write");
        client.flush().await.expect("client flush");
        let mut got = [0u8; 9];
        server.read_exact(&mut got).await.expect("server read");
        assert_eq!(&got, b"hello hub");
        // A large write (several records) and a vectored one arrive whole and in order.
        let large = vec![b'x'; 100_000];
        server.write_all(&large).await.expect("server write");
        let parts = [
            IoSlice::new(b"5\r\n"),
            IoSlice::new(b"hello"),
            IoSlice::new(b"\r\n"),
        ];
        let n = server.write_vectored(&parts).await.expect("vectored");
        assert_eq!(n, 10, "joined into one record");
        server.shutdown().await.expect("close_notify");
        let mut received = Vec::new();
        client
            .read_to_end(&mut received)
            .await
            .expect("client reads to the end");
        assert_eq!(received.len(), 100_010);
        assert!(received.ends_with(b"5\r\nhello\r\n"));
        assert!(server.outgoing.capacity() == 0 && server.incoming.capacity() == 0);
    }

    #[tokio::test]
    async fn an_idle_stream_holds_no_buffer_and_sees_the_client_leave() {
        let (mut server, mut client) = pair(&[b"http/1.1"]).await;
        client.write_all(b"ping").await.expect("write");
        client.flush().await.expect("flush");
        let mut got = [0u8; 4];
        server.read_exact(&mut got).await.expect("read");
        assert_eq!(
            (
                server.incoming.capacity(),
                server.outgoing.capacity(),
                server.plaintext.capacity()
            ),
            (0, 0, 0),
            "nothing kept once read"
        );
        client.shutdown().await.expect("client close_notify");
        let mut rest = Vec::new();
        let n = server.read_to_end(&mut rest).await.expect("clean end");
        assert_eq!(n, 0);
    }
}
