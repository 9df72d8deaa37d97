//! Starting a hub on an ephemeral port, publishing, and reading subscriptions.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use herald_codec::{Decoder, Frame, MessageEvent};
use herald_hub::{Hub, HubConfig, JwtKey};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::json;

pub const KEY: &str = "!ChangeThisMercureHubJWTSecretKey!";
pub const STEP: Duration = Duration::from_secs(5);

pub struct TestHub {
    pub addr: SocketAddr,
    pub hub: Hub,
}

/// A hub with `KEY` for both roles, configured further by `edit`.
pub async fn start(edit: impl FnOnce(&mut HubConfig)) -> TestHub {
    let mut config = HubConfig {
        publisher_jwt: Some(JwtKey::new(KEY, "HS256")),
        subscriber_jwt: Some(JwtKey::new(KEY, "HS256")),
        ..HubConfig::default()
    };
    edit(&mut config);
    let hub = Hub::new(config).expect("hub");
    let addr = serve(&hub).await;
    TestHub { addr, hub }
}

async fn bind() -> (tokio::net::TcpListener, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    (listener, addr)
}

/// Serves `hub` on an ephemeral loopback port for the rest of the test.
pub async fn serve(hub: &Hub) -> SocketAddr {
    let (listener, addr) = bind().await;
    tokio::spawn(hub.clone().serve(listener));
    addr
}

/// A hub served until `stop` is sent; `server` ends once its connections are closed.
pub struct Stoppable {
    pub addr: SocketAddr,
    pub stop: tokio::sync::oneshot::Sender<()>,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Serves `hub` on an ephemeral loopback port until told to stop.
pub async fn serve_stoppable(hub: &Hub) -> Stoppable {
    let (listener, addr) = bind().await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(hub.clone().serve_with_shutdown(listener, async {
        let _ = stopped.await;
    }));
    Stoppable { addr, stop, server }
}

pub fn token(mercure: serde_json::Value) -> String {
    herald_hub::dev::hs256_token(KEY, mercure, None).expect("token")
}

pub fn token_exp(mercure: serde_json::Value, in_secs: u64) -> String {
    let exp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("time")
        .as_secs()
        + in_secs;
    herald_hub::dev::hs256_token(KEY, mercure, Some(exp)).expect("token")
}

pub fn publisher() -> String {
    token(json!({"publish": ["*"]}))
}

pub async fn send(addr: SocketAddr, request: Request<Full<Bytes>>) -> http::Response<Incoming> {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    tokio::time::timeout(STEP, sender.send_request(request))
        .await
        .expect("response in time")
        .expect("response")
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

pub async fn full(response: http::Response<Incoming>) -> Answer {
    let (parts, body) = response.into_parts();
    let body = tokio::time::timeout(STEP, body.collect())
        .await
        .expect("body in time")
        .expect("body")
        .to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8(body.to_vec()).expect("utf-8"),
    }
}

pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = Request::get(format!("http://{addr}{path}")).header("host", "localhost");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    full(send(addr, request.body(Full::default()).expect("request")).await).await
}

/// POSTs a publish form with these headers.
pub async fn publish_with(
    addr: SocketAddr,
    headers: &[(&str, &str)],
    form: &[(&str, &str)],
) -> Answer {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut request = Request::post(format!("http://{addr}/.well-known/mercure"))
        .header("host", "localhost")
        .header("content-type", "application/x-www-form-urlencoded");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    full(send(addr, request.body(Full::from(body)).expect("request")).await).await
}

/// POSTs a publish form with a `publish: ["*"]` bearer token and expects 200.
pub async fn publish_ok(addr: SocketAddr, form: &[(&str, &str)]) -> String {
    let auth = format!("Bearer {}", publisher());
    let answer = publish_with(addr, &[("authorization", &auth)], form).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer.body
}

/// An open subscription stream.
pub struct Stream {
    pub status: StatusCode,
    pub headers: HeaderMap,
    body: Incoming,
    decoder: Decoder,
    /// Every byte received so far.
    pub raw: Vec<u8>,
    ended: bool,
}

pub async fn subscribe(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Stream {
    let mut request = Request::get(format!("http://{addr}{path}")).header("host", "localhost");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    stream_of(send(addr, request.body(Full::default()).expect("request")).await).await
}

impl Stream {
    /// The next frame, or `None` when the stream ended; panics after `wait` without one.
    pub async fn next_frame(&mut self, wait: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(frame) = self.decoder.next_frame().expect("valid stream") {
                return Some(frame);
            }
            if self.ended {
                return None;
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame())
                .await
                .expect("a frame in time");
            match frame {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.raw.extend_from_slice(&data);
                        self.decoder.push(data);
                    }
                }
                Some(Err(_)) | None => {
                    self.ended = true;
                    self.decoder.finish();
                }
            }
        }
    }

    /// The next event (skipping comments); panics if the stream ends or nothing comes in time.
    pub async fn event(&mut self) -> MessageEvent {
        loop {
            match self.next_frame(STEP).await {
                Some(Frame::Event(event)) => return event,
                Some(_) => {}
                None => panic!("stream ended; received so far: {:?}", self.text()),
            }
        }
    }

    /// Reads until the stream ends; panics if it does not end within `wait`.
    pub async fn until_end(&mut self, wait: Duration) -> Vec<MessageEvent> {
        let mut events = Vec::new();
        while let Some(frame) = self.next_frame(wait).await {
            if let Frame::Event(event) = frame {
                events.push(event);
            }
        }
        events
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }
}

/// Publishes a marker on `topic` and reads events until it arrives, returning what came before:
/// proof that nothing else was sent, without sleeping. Each marker has an ID of its own (IDs are
/// unique in history), starting with `marker-`.
pub async fn events_before_marker(
    addr: SocketAddr,
    stream: &mut Stream,
    topic: &str,
) -> Vec<MessageEvent> {
    let marker = format!("marker-{}", uuid::Uuid::new_v4());
    publish_ok(addr, &[("topic", topic), ("id", &marker)]).await;
    let mut before = Vec::new();
    loop {
        let event = stream.event().await;
        if event.last_event_id() == marker {
            return before;
        }
        before.push(event);
    }
}

/// Mercure 1.0: the trusted issuer the test hubs know, its secret, and the hub's identifier.
pub const ISSUER: &str = "https://auth.example.com";
pub const ISSUER_KEY: &str = "the issuer's own secret, 32 bytes or more";
pub const AUDIENCE: &str = "https://hub.example.com/.well-known/mercure";
pub const METADATA: &str =
    "https://hub.example.com/.well-known/oauth-protected-resource/.well-known/mercure";
pub const DETAIL: &str = "https://mercure.rocks/authorization-detail";

/// A hub serving both generations: `KEY` for 0.x tokens, `ISSUER` with `ISSUER_KEY` for 1.0.
pub async fn start_both(edit: impl FnOnce(&mut HubConfig)) -> TestHub {
    start(|config| {
        config.issuers = vec![herald_hub::config::IssuerKey {
            issuer: ISSUER.to_owned(),
            key: ISSUER_KEY.to_owned(),
        }];
        config.audience = Some(AUDIENCE.to_owned());
        edit(config);
    })
    .await
}

pub fn in_secs(secs: u64) -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("time")
        .as_secs()
        + secs
}

/// Access-token claims from the test issuer for the test hub, with these details.
pub fn access_claims(details: serde_json::Value) -> serde_json::Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "exp": in_secs(3600),
        "sub": "user-1",
        "authorization_details": details,
    })
}

/// Signs `claims` with HS256 and `typ: at+jwt` with the issuer's secret.
pub fn sign_at(claims: &serde_json::Value) -> String {
    sign_with(claims, "at+jwt", ISSUER_KEY)
}

/// Signs `claims` with HS256, this `typ` and this secret.
pub fn sign_with(claims: &serde_json::Value, typ: &str, secret: &str) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.typ = Some(typ.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("token")
}

/// One Mercure grant of `actions` on exact topics.
pub fn grant(actions: &[&str], topics: &[&str]) -> serde_json::Value {
    let topics: Vec<_> = topics.iter().map(|t| json!({"match": t})).collect();
    json!({"type": DETAIL, "actions": actions, "topics": topics})
}

/// An access token holding these grants.
pub fn access_token(grants: &[serde_json::Value]) -> String {
    sign_at(&access_claims(json!(grants)))
}

/// An access token that may publish everywhere.
pub fn access_publisher() -> String {
    access_token(&[grant(&["publish"], &["*"])])
}

/// Sends `method` to `path` with these headers and body.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> http::Response<Incoming> {
    let mut request = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("host", "localhost");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(
        addr,
        request.body(Full::from(body.to_owned())).expect("request"),
    )
    .await
}

/// Opens a subscription from a response: once `200`, the stream starts with a comment, and
/// once it arrived the subscriber is registered.
pub async fn stream_of(response: http::Response<Incoming>) -> Stream {
    let (parts, body) = response.into_parts();
    let mut stream = Stream {
        status: parts.status,
        headers: parts.headers,
        body,
        decoder: Decoder::builder().comments(true).build(),
        raw: Vec::new(),
        ended: false,
    };
    if stream.status == StatusCode::OK {
        match stream.next_frame(STEP).await {
            Some(Frame::Comment(_)) => {}
            other => panic!("expected the initial comment, got {other:?}"),
        }
    }
    stream
}

/// Publishes a form with a 1.0 access token that may publish everywhere; expects 200.
pub async fn publish_modern(addr: SocketAddr, form: &[(&str, &str)]) -> String {
    let auth = format!("Bearer {}", access_publisher());
    let answer = publish_with(addr, &[("authorization", &auth)], form).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer.body
}

/// The IDs of `events`, without the markers of earlier calls to `events_before_marker`.
pub fn ids(events: &[MessageEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| e.last_event_id().to_owned())
        .filter(|id| !id.starts_with("marker-"))
        .collect()
}
