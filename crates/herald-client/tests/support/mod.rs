//! A scripted HTTP/1.1 server on a real loopback socket: each connection plays the next script
//! (raw bytes, so it can split them anywhere, pause, or hang up mid-event) and every request is
//! recorded with the time it arrived.
#![allow(dead_code, unreachable_pub)]

pub mod proxy;
pub mod tls;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// How long a test waits for something that should happen.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// One thing a connection does.
#[derive(Debug, Clone)]
pub enum Step {
    /// Writes these bytes (flushed at once: one write, usually one TCP segment).
    Write(Vec<u8>),
    /// Waits before the next step.
    Pause(Duration),
    /// Hangs up now.
    Close,
    /// Keeps the connection open until the client closes it (reported by
    /// [`Server::client_closed`]).
    Hold,
}

/// A connection's script.
pub type Script = Vec<Step>;

/// Writes text.
pub fn write(text: &str) -> Step {
    Step::Write(text.as_bytes().to_vec())
}

/// Waits this many milliseconds.
pub fn pause(millis: u64) -> Step {
    Step::Pause(Duration::from_millis(millis))
}

/// The head of a `200 text/event-stream` response whose body ends when the connection does.
pub fn sse_head() -> Step {
    head("200 OK", &[("Content-Type", "text/event-stream")])
}

/// A response head with this status line and these headers, body delimited by the close.
pub fn head(status: &str, headers: &[(&str, &str)]) -> Step {
    let mut text = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    write(&text)
}

/// An event stream with this body, then the connection closes.
pub fn sse(body: &str) -> Script {
    vec![sse_head(), write(body), Step::Close]
}

/// An event stream with this body, then the connection stays open.
pub fn sse_then_hold(body: &str) -> Script {
    vec![sse_head(), write(body), Step::Hold]
}

/// An empty response with this status line and headers, then the connection closes.
pub fn status(status: &str, headers: &[(&str, &str)]) -> Script {
    let mut all = vec![("Content-Length", "0")];
    all.extend_from_slice(headers);
    vec![head(status, &all), Step::Close]
}

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Recorded {
    /// The first value of this header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The scripted server. Connections past the last script are recorded and held unanswered.
pub struct Server {
    pub addr: SocketAddr,
    requests: mpsc::UnboundedReceiver<Recorded>,
    closed: mpsc::UnboundedReceiver<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// Listens on an ephemeral loopback port; connection `i` plays `scripts[i]`.
    pub async fn start(scripts: Vec<Script>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let (request_tx, requests) = mpsc::unbounded_channel();
        let (closed_tx, closed) = mpsc::unbounded_channel();
        let scripts = Arc::new(Mutex::new(scripts.into_iter()));
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let script = scripts.lock().expect("scripts").next();
                let request_tx = request_tx.clone();
                let closed_tx = closed_tx.clone();
                tokio::spawn(async move {
                    let _ = serve(socket, script, request_tx, closed_tx).await;
                });
            }
        });
        Server {
            addr,
            requests,
            closed,
            task,
        }
    }

    /// The URL of this path on the server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The next request received, waiting for it.
    pub async fn next_request(&mut self) -> Recorded {
        tokio::time::timeout(PATIENCE, self.requests.recv())
            .await
            .expect("a request within the time allowed")
            .expect("the server is running")
    }

    /// Asserts that no request arrives within this time.
    pub async fn no_request_within(&mut self, window: Duration) {
        if let Ok(Some(request)) = tokio::time::timeout(window, self.requests.recv()).await {
            panic!("unexpected request: {} {}", request.method, request.target);
        }
    }

    /// Waits until the client closes a held connection.
    pub async fn client_closed(&mut self) {
        tokio::time::timeout(PATIENCE, self.closed.recv())
            .await
            .expect("the client closes within the time allowed")
            .expect("the server is running");
    }
}

async fn serve(
    mut socket: TcpStream,
    script: Option<Script>,
    requests: mpsc::UnboundedSender<Recorded>,
    closed: mpsc::UnboundedSender<()>,
) -> std::io::Result<()> {
    socket.set_nodelay(true)?;
    let Some(request) = read_request(&mut socket).await? else {
        return Ok(());
    };
    let _ = requests.send(request);
    for step in script.unwrap_or_else(|| vec![Step::Hold]) {
        match step {
            Step::Write(bytes) => {
                socket.write_all(&bytes).await?;
                socket.flush().await?;
            }
            Step::Pause(delay) => tokio::time::sleep(delay).await,
            Step::Close => return Ok(()),
            Step::Hold => {
                let mut sink = [0u8; 1024];
                while socket.read(&mut sink).await.unwrap_or(0) > 0 {}
                let _ = closed.send(());
                return Ok(());
            }
        }
    }
    Ok(())
}

/// A request head as read from a socket, and the bytes read past it.
pub struct Head {
    pub method: String,
    pub target: String,
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub rest: Vec<u8>,
}

impl Head {
    /// The first value of this header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a request head up to its blank line; `None` if the peer closes first.
pub async fn read_head<S>(socket: &mut S) -> std::io::Result<Option<Head>>
where
    S: tokio::io::AsyncRead + Unpin,
{
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let read = socket.read(&mut chunk).await?;
        if read == 0 {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_owned();
    let target = request_line.next().unwrap_or_default().to_owned();
    let version = request_line.next().unwrap_or("HTTP/1.1").to_owned();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    Ok(Some(Head {
        method,
        target,
        version,
        headers,
        rest: buffer[head_end + 4..].to_vec(),
    }))
}

/// Reads one request: the head up to the blank line, then a `Content-Length` body.
async fn read_request(socket: &mut TcpStream) -> std::io::Result<Option<Recorded>> {
    let Some(head) = read_head(socket).await? else {
        return Ok(None);
    };
    let at = Instant::now();
    let length: usize = head
        .header("content-length")
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    let Head {
        method,
        target,
        headers,
        rest: mut body,
        ..
    } = head;
    let mut chunk = [0u8; 4096];
    while body.len() < length {
        let read = socket.read(&mut chunk).await?;
        if read == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..read]);
    }
    Ok(Some(Recorded {
        method,
        target,
        headers,
        body,
        at,
    }))
}

/// Polls the source for its next item, within the time allowed.
pub async fn next<S: futures::Stream + Unpin>(source: &mut S) -> Option<S::Item> {
    use futures::StreamExt;
    tokio::time::timeout(PATIENCE, source.next())
        .await
        .expect("an item within the time allowed")
}

/// The next item must be an open stream.
pub async fn expect_open(source: &mut herald_client::EventSource) -> herald_client::Opened {
    match next(source).await {
        Some(Ok(herald_client::Item::Open(opened))) => opened,
        other => panic!("expected the stream to open, got {other:?}"),
    }
}

/// The next item must be an event; returns (type, data, last event ID).
pub async fn expect_message(source: &mut herald_client::EventSource) -> (String, String, String) {
    match next(source).await {
        Some(Ok(herald_client::Item::Message(event))) => (
            event.event_type().to_owned(),
            event.data().to_owned(),
            event.last_event_id().to_owned(),
        ),
        other => panic!("expected an event, got {other:?}"),
    }
}

/// The next item must be an error.
pub async fn expect_error(source: &mut herald_client::EventSource) -> herald_client::Error {
    match next(source).await {
        Some(Err(error)) => error,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// The source must end.
pub async fn expect_end(source: &mut herald_client::EventSource) {
    if let Some(item) = next(source).await {
        panic!("expected the end, got {item:?}");
    }
}

/// A source for this URL with tiny delays, for fast tests.
pub fn fast(url: &str) -> herald_client::EventSourceBuilder {
    herald_client::EventSource::builder(url)
        .reconnection_time(Duration::from_millis(50))
        .backoff(herald_client::Backoff::none())
}
