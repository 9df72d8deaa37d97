//! A small blocking HTTP/1.1 client: publishes on a kept-alive connection, probes of `/readyz`
//! and `/metrics`. Every read is bounded, so that a hub that hangs fails the test instead.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The longest wait for any answer: far above the hub's own bounds (a publish is answered within
/// its transport timeout), so that reaching it means the hub hung.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The key signing the tests' tokens.
pub(crate) const KEY: &str = "cluster-test-key";

/// A token that may publish on every topic.
pub(crate) fn publisher_token() -> String {
    herald_hub::dev::hs256_token(KEY, serde_json::json!({"publish": ["*"]}), None).expect("token")
}

/// A response, read whole.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    /// Header names in lower case.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
    /// From the request's first byte to the response's last.
    pub(crate) elapsed: Duration,
}

impl Answer {
    /// The first header called `name` (lower case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Requests to one hub, on one connection kept alive between them (and opened again after the
/// hub closed it).
pub(crate) struct Http {
    authority: String,
    token: String,
    socket: Option<BufReader<TcpStream>>,
    /// The next request's body is JSON rather than a form.
    json: bool,
}

impl Http {
    /// A client of the hub at `authority` (`host:port`).
    pub(crate) fn new(authority: &str) -> Http {
        Http {
            authority: authority.to_owned(),
            token: publisher_token(),
            socket: None,
            json: false,
        }
    }

    /// A client of the hub at `authority` sending `token` instead of the publisher's.
    pub(crate) fn with_token(authority: &str, token: &str) -> Http {
        Http {
            token: token.to_owned(),
            ..Http::new(authority)
        }
    }

    /// Sends one request and reads its response. An error means no response was read: the
    /// request may or may not have been handled.
    pub(crate) fn send(&mut self, method: &str, path: &str, body: &str) -> std::io::Result<Answer> {
        let start = Instant::now();
        let result = self.exchange(method, path, body, start);
        if result.is_err() {
            self.socket = None;
        }
        result
    }

    fn exchange(
        &mut self,
        method: &str,
        path: &str,
        body: &str,
        start: Instant,
    ) -> std::io::Result<Answer> {
        if self.socket.is_none() {
            let socket = TcpStream::connect(&self.authority)?;
            socket.set_read_timeout(Some(READ_TIMEOUT))?;
            socket.set_nodelay(true)?;
            self.socket = Some(BufReader::new(socket));
        }
        let socket = self.socket.as_mut().expect("connected");
        // One write per request: no small segments waiting on delayed acknowledgements.
        let content_type = if self.json {
            "application/json"
        } else {
            "application/x-www-form-urlencoded"
        };
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
             Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
            self.token,
            body.len()
        );
        socket.get_mut().write_all(request.as_bytes())?;
        let mut line = String::new();
        if socket.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            if socket.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let text = line.trim_end();
            if text.is_empty() {
                break;
            }
            if let Some((name, value)) = text.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        let find = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v): &(String, String)| v.to_ascii_lowercase())
        };
        let mut bytes = Vec::new();
        let mut close = find("connection").is_some_and(|v| v.contains("close"));
        if let Some(length) = find("content-length") {
            let length: usize = length
                .parse()
                .map_err(|_| std::io::Error::other("bad content-length"))?;
            bytes.resize(length, 0);
            socket.read_exact(&mut bytes)?;
        } else if find("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            loop {
                line.clear();
                socket.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|_| std::io::Error::other("bad chunk size"))?;
                let mut chunk = vec![0; size + 2];
                socket.read_exact(&mut chunk)?;
                if size == 0 {
                    break;
                }
                bytes.extend_from_slice(&chunk[..size]);
            }
        } else {
            socket.read_to_end(&mut bytes)?;
            close = true;
        }
        if close {
            self.socket = None;
        }
        Ok(Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            elapsed: start.elapsed(),
        })
    }

    /// Publishes `data` on `topic` with this `id`.
    pub(crate) fn publish(&mut self, topic: &str, id: &str, data: &str) -> std::io::Result<Answer> {
        self.publish_form(&[("topic", topic), ("id", id), ("data", data)])
    }

    /// Publishes the update this form describes.
    pub(crate) fn publish_form(&mut self, form: &[(&str, &str)]) -> std::io::Result<Answer> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.send("POST", "/.well-known/mercure", &body)
    }

    /// Publishes and expects `200` with the ID as the answer.
    pub(crate) fn publish_ok(&mut self, topic: &str, id: &str, data: &str) {
        let answer = self
            .publish(topic, id, data)
            .unwrap_or_else(|e| panic!("publish {id} on {}: {e}", self.authority));
        assert_eq!(
            answer.status, 200,
            "publish {id} on {}: {}",
            self.authority, answer.body
        );
        assert_eq!(answer.body, id, "the answer is the update's ID");
    }

    /// Publishes, retrying with the same ID and content while the hub answers `503` (or the
    /// connection fails), as a publisher should; panics on any other answer or after `within`.
    /// Returns how many attempts were refused.
    pub(crate) fn publish_retrying(
        &mut self,
        topic: &str,
        id: &str,
        data: &str,
        within: Duration,
    ) -> usize {
        let start = Instant::now();
        let mut refused = 0;
        loop {
            match self.publish(topic, id, data) {
                Ok(answer) if answer.status == 200 => {
                    assert_eq!(answer.body, id, "the answer is the update's ID");
                    return refused;
                }
                Ok(answer) if answer.status == 503 => {
                    assert!(
                        answer.header("retry-after").is_some(),
                        "a 503 says when to retry: {answer:?}"
                    );
                }
                Ok(answer) => panic!("publish {id} on {}: {answer:?}", self.authority),
                Err(_) => {}
            }
            refused += 1;
            assert!(
                start.elapsed() < within,
                "publish {id} on {}: still refused after {within:?}",
                self.authority
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `GET path`.
    pub(crate) fn get(&mut self, path: &str) -> std::io::Result<Answer> {
        self.send("GET", path, "")
    }

    /// POSTs a JSON control action (`disconnect`, `revoke`) and expects `200`; its answer.
    pub(crate) fn control(&mut self, action: &str, body: &serde_json::Value) -> serde_json::Value {
        let answer = self
            .send_json(&format!("/.well-known/mercure/control/{action}"), body)
            .unwrap_or_else(|e| panic!("{action} on {}: {e}", self.authority));
        assert_eq!(
            answer.status, 200,
            "{action} on {}: {}",
            self.authority, answer.body
        );
        serde_json::from_str(&answer.body).expect("a JSON answer")
    }

    fn send_json(&mut self, path: &str, body: &serde_json::Value) -> std::io::Result<Answer> {
        self.json = true;
        let answer = self.send("POST", path, &body.to_string());
        self.json = false;
        answer
    }
}

/// A token that may publish everywhere and use the control API.
pub(crate) fn admin_token() -> String {
    herald_hub::dev::hs256_claims(
        KEY,
        &serde_json::json!({"mercure": {"publish": ["*"]}, "herald": {"admin": true}}),
    )
    .expect("token")
}

/// A subscriber token of `sub` with this `jti`.
pub(crate) fn user_token(sub: &str, jti: &str) -> String {
    herald_hub::dev::hs256_claims(
        KEY,
        &serde_json::json!({"mercure": {"subscribe": ["*"]}, "sub": sub, "jti": jti}),
    )
    .expect("token")
}
