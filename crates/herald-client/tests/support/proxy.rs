//! A real HTTP proxy on a loopback port, as corporate networks run: `CONNECT` tunnels for
//! `https://` URLs, absolute-form requests forwarded for `http://` ones, and `407` without the
//! right `Proxy-Authorization`. It records every request it gets, and only ever connects to
//! loopback addresses: names under `.test` are its own, all on 127.0.0.1 (no DNS query leaves).

use std::net::SocketAddr;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::{Head, PATIENCE, read_head};

/// A request as the proxy received it.
#[derive(Debug, Clone)]
pub struct ProxyRequest {
    pub method: String,
    pub target: String,
    pub proxy_authorization: Option<String>,
}

/// The proxy.
pub struct Proxy {
    pub addr: SocketAddr,
    requests: mpsc::UnboundedReceiver<ProxyRequest>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// A proxy that wants `Proxy-Authorization: <required>` when `required` is given.
    pub async fn start(required: Option<&'static str>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let (tx, requests) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _ = relay(socket, required, tx).await;
                });
            }
        });
        Proxy {
            addr,
            requests,
            task,
        }
    }

    /// The proxy's URL with these credentials (`user:password`), or none.
    pub fn url(&self, credentials: Option<&str>) -> String {
        match credentials {
            Some(credentials) => format!("http://{credentials}@{}", self.addr),
            None => format!("http://{}", self.addr),
        }
    }

    /// The next request received, waiting for it.
    pub async fn next_request(&mut self) -> ProxyRequest {
        tokio::time::timeout(PATIENCE, self.requests.recv())
            .await
            .expect("a request to the proxy within the time allowed")
            .expect("the proxy is running")
    }

    /// Asserts that the proxy received nothing so far.
    pub fn assert_unused(&mut self) {
        if let Ok(request) = self.requests.try_recv() {
            panic!("the proxy was used: {request:?}");
        }
    }
}

async fn relay(
    mut client: TcpStream,
    required: Option<&'static str>,
    requests: mpsc::UnboundedSender<ProxyRequest>,
) -> std::io::Result<()> {
    let Some(Head {
        method,
        target,
        version,
        headers,
        rest,
    }) = read_head(&mut client).await?
    else {
        return Ok(());
    };
    let proxy_authorization = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("proxy-authorization"))
        .map(|(_, value)| value.clone());
    let _ = requests.send(ProxyRequest {
        method: method.clone(),
        target: target.clone(),
        proxy_authorization: proxy_authorization.clone(),
    });
    if required.is_some() && proxy_authorization.as_deref() != required {
        client
            .write_all(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                  Proxy-Authenticate: Basic realm=\"test\"\r\n\
                  Content-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await?;
        return Ok(());
    }
    if method == "CONNECT" {
        let mut upstream = connect_loopback(&target).await?;
        client
            .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            .await?;
        upstream.write_all(&rest).await?;
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
        return Ok(());
    }
    // Absolute form: forward in origin form, without the proxy's own headers.
    let Some(after_scheme) = target.strip_prefix("http://") else {
        client
            .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            .await?;
        return Ok(());
    };
    let (authority, path) = match after_scheme.find('/') {
        Some(slash) => after_scheme.split_at(slash),
        None => (after_scheme, "/"),
    };
    let mut upstream = connect_loopback(authority).await?;
    let mut forwarded = format!("{method} {path} {version}\r\n");
    for (name, value) in &headers {
        if !name.to_ascii_lowercase().starts_with("proxy-") {
            forwarded.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    forwarded.push_str("\r\n");
    upstream.write_all(forwarded.as_bytes()).await?;
    upstream.write_all(&rest).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

/// Connects to `host:port`, but only to a loopback address; `*.test` hosts are 127.0.0.1.
async fn connect_loopback(authority: &str) -> std::io::Result<TcpStream> {
    if let Some((host, port)) = authority.rsplit_once(':')
        && host.ends_with(".test")
    {
        return TcpStream::connect(format!("127.0.0.1:{port}")).await;
    }
    let mut last = std::io::Error::other(format!("{authority} is not on loopback"));
    for addr in tokio::net::lookup_host(authority).await? {
        if !addr.ip().is_loopback() {
            continue;
        }
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(error) => last = error,
        }
    }
    Err(last)
}
