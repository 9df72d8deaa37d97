//! Proxies, through a real HTTP proxy on loopback: `http://` URLs requested in absolute form with
//! `Proxy-Authorization`, `https://` URLs through a `CONNECT` tunnel (TLS and HTTP/2 inside it),
//! credentials refused, bypassed hosts, and the `HTTP_PROXY` / `NO_PROXY` environment variables.

mod support;

use herald_client::EventSource;
use support::proxy::Proxy;
use support::tls::{expect_http2_echo, tls_server};
use support::*;

/// `user:secret` in Basic form.
const USER_SECRET: &str = "Basic dXNlcjpzZWNyZXQ=";

#[tokio::test]
async fn an_http_url_goes_to_the_proxy_in_absolute_form_with_its_credentials() {
    let mut proxy = Proxy::start(Some(USER_SECRET)).await;
    let mut server = Server::start(vec![sse_then_hold("data: via the proxy\n\n")]).await;
    let url = server.url("/events?topic=a");
    let mut source = fast(&url)
        .proxy(&proxy.url(Some("user:secret")))
        .build()
        .expect("source");
    expect_open(&mut source).await;
    assert_eq!(expect_message(&mut source).await.1, "via the proxy");
    let request = proxy.next_request().await;
    assert_eq!(request.method, "GET");
    assert_eq!(request.target, url);
    assert_eq!(request.proxy_authorization.as_deref(), Some(USER_SECRET));
    let at_server = server.next_request().await;
    assert_eq!(at_server.target, "/events?topic=a");
    assert_eq!(at_server.header("accept"), Some("text/event-stream"));
}

#[tokio::test]
async fn an_https_url_goes_through_a_connect_tunnel() {
    let mut proxy = Proxy::start(Some(USER_SECRET)).await;
    let (addr, certificate, _) = tls_server().await;
    let mut source = fast(&format!("https://localhost:{}/events", addr.port()))
        .add_root_certificate(certificate)
        .proxy(&proxy.url(Some("user:secret")))
        .build()
        .expect("source");
    // TLS with the server itself, inside the tunnel: ALPN still settles on HTTP/2.
    expect_http2_echo(&mut source).await;
    let request = proxy.next_request().await;
    assert_eq!(request.method, "CONNECT");
    assert_eq!(request.target, format!("localhost:{}", addr.port()));
    assert_eq!(request.proxy_authorization.as_deref(), Some(USER_SECRET));
}

#[tokio::test]
async fn refused_credentials_are_reported() {
    let mut proxy = Proxy::start(Some(USER_SECRET)).await;
    // https: the tunnel is refused, a network error that names the proxy; the source retries.
    let (addr, certificate, _) = tls_server().await;
    let mut source = fast(&format!("https://localhost:{}/", addr.port()))
        .add_root_certificate(certificate)
        .proxy(&proxy.url(Some("user:wrong")))
        .build()
        .expect("source");
    let error = expect_error(&mut source).await;
    assert!(error.is_connect(), "{error:?}");
    let chain = error_chain(&error);
    assert!(
        chain.contains(&format!("through the proxy http://{}/", proxy.addr)),
        "{chain}"
    );
    assert!(chain.contains("proxy authorization required"), "{chain}");
    assert_eq!(proxy.next_request().await.method, "CONNECT");
    // http: the proxy's 407 is the answer, which fails the source as any other status does.
    let server = Server::start(vec![]).await;
    let mut source = fast(&server.url("/"))
        .proxy(&proxy.url(None))
        .build()
        .expect("source");
    let error = expect_error(&mut source).await;
    assert_eq!(
        error.status(),
        Some(http::StatusCode::PROXY_AUTHENTICATION_REQUIRED)
    );
    assert!(error.is_fatal());
    expect_end(&mut source).await;
}

#[tokio::test]
async fn bypassed_hosts_connect_directly() {
    let mut proxy = Proxy::start(None).await;
    let mut server = Server::start(vec![sse_then_hold("data: direct\n\n")]).await;
    let mut source = fast(&server.url("/"))
        .proxy(&proxy.url(None))
        .proxy_bypass("example.com, 127.0.0.0/8")
        .build()
        .expect("source");
    expect_open(&mut source).await;
    assert_eq!(expect_message(&mut source).await.1, "direct");
    assert_eq!(server.next_request().await.target, "/");
    proxy.assert_unused();
}

#[test]
fn unsupported_proxies_and_a_stray_bypass_list_are_refused_by_build() {
    for (builder, expected) in [
        (
            EventSource::builder("http://127.0.0.1:1/").proxy("socks5://127.0.0.1:1080"),
            "socks5://",
        ),
        (
            EventSource::builder("http://127.0.0.1:1/").proxy("http://bad host:1"),
            "invalid proxy URL",
        ),
        (
            EventSource::builder("http://127.0.0.1:1/").proxy_bypass("localhost"),
            "set that first",
        ),
    ] {
        let error = builder.build().expect_err("refused");
        assert!(error.is_builder(), "{error:?}");
        assert!(error.to_string().contains(expected), "{error}");
    }
}

/// The environment variable that makes this test binary the child of
/// `environment_proxies_and_no_proxy_apply`; it holds the ports of its three servers.
const CHILD: &str = "HERALD_TEST_PROXY_CHILD";

/// Proxy settings live in the process environment, which a test cannot change safely while
/// other tests run: the test runs itself again as a child process with `HTTP_PROXY` and
/// `NO_PROXY` set, and checks what the proxy and the servers saw.
#[tokio::test]
async fn environment_proxies_and_no_proxy_apply() {
    if let Ok(ports) = std::env::var(CHILD) {
        return child(&ports).await;
    }
    let mut proxy = Proxy::start(Some(USER_SECRET)).await;
    let mut proxied = Server::start(vec![sse_then_hold("data: a\n\n")]).await;
    let mut loopback = Server::start(vec![sse_then_hold("data: b\n\n")]).await;
    let mut bypassed = Server::start(vec![sse_then_hold("data: c\n\n")]).await;
    let mut off = Server::start(vec![sse_then_hold("data: d\n\n")]).await;
    let ports: Vec<String> = [&proxied, &loopback, &bypassed, &off]
        .iter()
        .map(|server| server.addr.port().to_string())
        .collect();
    let mut command = tokio::process::Command::new(std::env::current_exe().expect("test binary"));
    command
        .args([
            "environment_proxies_and_no_proxy_apply",
            "--exact",
            "--nocapture",
        ])
        .env(CHILD, ports.join(" "))
        .env("HTTP_PROXY", proxy.url(Some("user:secret")))
        .env("NO_PROXY", "bypassed.test, example.com");
    for name in [
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "no_proxy",
        "REQUEST_METHOD",
    ] {
        command.env_remove(name);
    }
    let output = tokio::time::timeout(PATIENCE * 4, command.output())
        .await
        .expect("the child finishes in time")
        .expect("the child runs");
    assert!(
        output.status.success(),
        "the child failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let request = proxy.next_request().await;
    assert_eq!(request.method, "GET");
    assert_eq!(request.target, format!("http://events.test:{}/a", ports[0]));
    assert_eq!(request.proxy_authorization.as_deref(), Some(USER_SECRET));
    proxy.assert_unused();
    for (server, path) in [
        (&mut proxied, "/a"),
        (&mut loopback, "/b"),
        (&mut bypassed, "/c"),
        (&mut off, "/d"),
    ] {
        assert_eq!(server.next_request().await.target, path);
    }
}

/// The child's part, with `HTTP_PROXY` and `NO_PROXY` set: a name through the proxy, a loopback
/// address directly, a name that `NO_PROXY` lists directly, and a name with proxies turned off
/// directly. "Directly" is seen by a connector that is asked for the URL's own host (and
/// connects to the server on loopback, so no name is ever looked up).
async fn child(ports: &str) {
    let ports: Vec<&str> = ports.split(' ').collect();
    let direct_to = |expected_host: &'static str, port: &str| {
        let addr = format!("127.0.0.1:{port}");
        tower::service_fn(move |uri: http::Uri| {
            let addr = addr.clone();
            async move {
                assert_eq!(uri.host(), Some(expected_host), "a direct connection");
                tokio::net::TcpStream::connect(addr)
                    .await
                    .map(hyper_util::rt::TokioIo::new)
            }
        })
    };
    let builders = [
        fast(&format!("http://events.test:{}/a", ports[0])),
        fast(&format!("http://127.0.0.1:{}/b", ports[1])),
        fast(&format!("http://bypassed.test:{}/c", ports[2]))
            .connector(direct_to("bypassed.test", ports[2])),
        fast(&format!("http://events.test:{}/d", ports[3]))
            .no_proxy()
            .connector(direct_to("events.test", ports[3])),
    ];
    for (builder, data) in builders.into_iter().zip(["a", "b", "c", "d"]) {
        let mut source = builder.build().expect("source");
        expect_open(&mut source).await;
        assert_eq!(expect_message(&mut source).await.1, data);
    }
}

/// The error and all its sources, as one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
