//! One connection attempt: the request an `EventSource` sends, redirects and cookies, and what
//! the response means for the source.

use std::time::Duration;

use bytes::Bytes;
use http::header::{
    ACCEPT, AUTHORIZATION, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LANGUAGE, CONTENT_LOCATION,
    CONTENT_TYPE, COOKIE, HeaderName, HeaderValue, LOCATION, PRAGMA, PROXY_AUTHORIZATION,
    SET_COOKIE,
};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use url::Url;

use crate::backoff::retry_after;
use crate::builder::Config;
use crate::error::{Error, Kind};
use crate::event_source::Opened;
use crate::http_client::{HttpClient, ResponseBody};

/// The `Last-Event-ID` request header.
pub(crate) const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// What one connection attempt came to.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A `200 text/event-stream`: the stream is open.
    Open(Box<Opened>, ResponseBody),
    /// The connection failed for good: the source closes.
    Fail(Error),
    /// A network error, or a status the policy retries (with the delay `Retry-After` asked for).
    Retry(Error, Option<Duration>),
}

/// Connects to the source's URL, following redirects, within the connect timeout.
pub(crate) async fn open(config: &Config, client: &HttpClient, last_event_id: &str) -> Outcome {
    let attempt = follow(config, client, last_event_id);
    match config.connect_timeout {
        None => attempt.await,
        Some(limit) => match tokio::time::timeout(limit, attempt).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::Retry(Error::new(Kind::ConnectTimeout(limit)), None),
        },
    }
}

async fn follow(config: &Config, client: &HttpClient, last_event_id: &str) -> Outcome {
    let mut url = config.url.clone();
    let mut method = config.method.clone();
    let mut body = config.body.clone();
    let mut headers = config.headers.clone();
    let mut redirects = 0;
    loop {
        let request = match request(config, &url, &method, &headers, &body, last_event_id) {
            Ok(request) => request,
            Err(error) => return Outcome::Fail(error),
        };
        tracing::debug!(%url, %method, "connecting to the event source");
        let response = match client.send(request).await {
            Ok(response) => response,
            Err(error) => return Outcome::Retry(Error::new(Kind::Connect(error)), None),
        };
        store_cookies(config, &url, response.headers());
        let status = response.status();
        let location = response.headers().get(LOCATION);
        if !is_redirect(status) || location.is_none() {
            return outcome(config, response, url);
        }
        redirects += 1;
        if redirects > config.max_redirects {
            return redirect_failure(format!("more than {} redirects", config.max_redirects));
        }
        let next = match location
            .and_then(|value| value.to_str().ok())
            .map(|l| url.join(l))
        {
            Some(Ok(next)) => next,
            _ => return redirect_failure(format!("{status} with an invalid Location")),
        };
        if !matches!(next.scheme(), "http" | "https") {
            return redirect_failure(format!("redirect to a {} URL", next.scheme()));
        }
        // Fetch's HTTP-redirect fetch: POST becomes GET after a 301 or 302, anything but GET
        // and HEAD after a 303, and the body and its headers go.
        let to_get = match status {
            StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND => method == Method::POST,
            StatusCode::SEE_OTHER => method != Method::GET && method != Method::HEAD,
            _ => false,
        };
        if to_get {
            method = Method::GET;
            body = Bytes::new();
            for name in [
                CONTENT_ENCODING,
                CONTENT_LANGUAGE,
                CONTENT_LOCATION,
                CONTENT_TYPE,
            ] {
                headers.remove(name);
            }
        }
        if next.origin() != url.origin() {
            // Credentials given by hand are for the origin they were given for (a browser's
            // script cannot set `Cookie` at all; the cookie store's are chosen per URL).
            for name in [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION] {
                headers.remove(name);
            }
        }
        tracing::debug!(%status, from = %url, to = %next, "following a redirect");
        url = next;
    }
}

fn redirect_failure(message: String) -> Outcome {
    Outcome::Fail(Error::new(Kind::Redirect(message)))
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

fn request(
    config: &Config,
    url: &Url,
    method: &Method,
    user_headers: &HeaderMap,
    body: &Bytes,
    last_event_id: &str,
) -> Result<Request<Bytes>, Error> {
    let mut headers = user_headers.clone();
    headers.remove(LAST_EVENT_ID);
    if !headers.contains_key(ACCEPT) {
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
    }
    // The request's cache mode is `no-store`: fetch then adds both of these unless present.
    if !headers.contains_key(PRAGMA) {
        headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    }
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    if !last_event_id.is_empty() {
        match last_event_id_value(last_event_id) {
            Some(value) => {
                headers.insert(LAST_EVENT_ID, value);
            }
            None => tracing::warn!(
                id = last_event_id,
                "the last event ID has control characters: Last-Event-ID cannot carry it"
            ),
        }
    }
    if let Some(cookies) = request_cookies(config, url) {
        // One `Cookie` header only (RFC 6265 §5.4): join the store's to any set by hand.
        let value = match headers.remove(COOKIE) {
            Some(own) => {
                let mut joined = own.as_bytes().to_vec();
                joined.extend_from_slice(b"; ");
                joined.extend_from_slice(cookies.as_bytes());
                HeaderValue::from_bytes(&joined).unwrap_or(cookies)
            }
            None => cookies,
        };
        headers.insert(COOKIE, value);
    }
    let mut request = Request::builder()
        .method(method.clone())
        .uri(url.as_str())
        .body(body.clone())
        .map_err(|error| Error::builder(format!("invalid request to {url}: {error}")))?;
    *request.headers_mut() = headers;
    Ok(request)
}

/// The `Last-Event-ID` value: the ID encoded as UTF-8, as the spec has it (non-ASCII included);
/// `None` for an ID with control characters, which no HTTP header can carry.
pub(crate) fn last_event_id_value(id: &str) -> Option<HeaderValue> {
    HeaderValue::from_bytes(id.as_bytes()).ok()
}

fn request_cookies(config: &Config, url: &Url) -> Option<HeaderValue> {
    let store = config.cookies.as_ref()?;
    let store = store
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let cookies: Vec<String> = store
        .get_request_values(url)
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    if cookies.is_empty() {
        return None;
    }
    HeaderValue::from_str(&cookies.join("; ")).ok()
}

fn store_cookies(config: &Config, url: &Url, headers: &HeaderMap) {
    let Some(store) = &config.cookies else { return };
    let mut store = store
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    for value in headers.get_all(SET_COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        if let Err(error) = store.parse(value, url) {
            tracing::debug!(%error, "ignored a cookie");
        }
    }
}

/// What a final (non-redirect) response means, per the EventSource processing model.
fn outcome(config: &Config, response: Response<ResponseBody>, url: Url) -> Outcome {
    let status = response.status();
    if status == StatusCode::OK {
        if !is_event_stream(response.headers()) {
            let found: Vec<_> = response
                .headers()
                .get_all(CONTENT_TYPE)
                .iter()
                .map(|value| String::from_utf8_lossy(value.as_bytes()))
                .collect();
            let found = (!found.is_empty()).then(|| found.join(", "));
            return Outcome::Fail(Error::new(Kind::ContentType(found)));
        }
        let (parts, body) = response.into_parts();
        let opened = Box::new(Opened {
            url,
            version: parts.version,
            headers: parts.headers,
        });
        return Outcome::Open(opened, body);
    }
    if status == StatusCode::NO_CONTENT {
        return Outcome::Fail(Error::new(Kind::NoContent));
    }
    if config.status_policy.retries(status) {
        let delay = retry_after(response.headers());
        return Outcome::Retry(
            Error::new(Kind::Status {
                status,
                retry: true,
            }),
            delay,
        );
    }
    Outcome::Fail(Error::new(Kind::Status {
        status,
        retry: false,
    }))
}

/// Whether the response's MIME type, extracted as fetch does, has the essence
/// `text/event-stream`: every `Content-Type` value is split at commas outside quotes, each part
/// is parsed as a MIME type, and the last valid one other than `*/*` counts (its parameters,
/// `charset` included, are ignored; the stream is UTF-8 whatever they say).
fn is_event_stream(headers: &HeaderMap) -> bool {
    let mut essence = None;
    for value in headers.get_all(CONTENT_TYPE) {
        for part in split_outside_quotes(value.as_bytes()) {
            match mime_essence(part) {
                Some(found) if found != b"*/*" => essence = Some(found),
                _ => {}
            }
        }
    }
    essence.is_some_and(|essence| essence.eq_ignore_ascii_case(b"text/event-stream"))
}

/// A header value's comma-separated parts, commas inside quoted strings left alone.
fn split_outside_quotes(value: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (index, &byte) in value.iter().enumerate() {
        match byte {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                parts.push(&value[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
}

/// The `type/subtype` of a MIME type, or `None` if it does not parse (the MIME Sniffing
/// standard's parser, up to the parameters).
fn mime_essence(text: &[u8]) -> Option<&[u8]> {
    let is_http_whitespace = |byte: &u8| matches!(byte, b' ' | b'\t' | b'\r' | b'\n');
    let start = text.iter().position(|byte| !is_http_whitespace(byte))?;
    let text = &text[start..];
    let slash = text.iter().position(|&byte| byte == b'/')?;
    let end = text
        .iter()
        .position(|&byte| byte == b';')
        .unwrap_or(text.len());
    if slash > end {
        return None;
    }
    let mut essence = &text[..end];
    while let Some((last, rest)) = essence.split_last() {
        if !is_http_whitespace(last) {
            break;
        }
        essence = rest;
    }
    let (kind, subtype) = (&essence[..slash], &essence[slash + 1..]);
    let is_token = |part: &[u8]| {
        !part.is_empty()
            && part
                .iter()
                .all(|&byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte))
    };
    (is_token(kind) && is_token(subtype)).then_some(essence)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content_types(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(CONTENT_TYPE, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn event_stream_content_types() {
        for accepted in [
            &["text/event-stream"][..],
            &["Text/Event-Stream"],
            &["text/event-stream; charset=utf-8"],
            &["text/event-stream;charset=bogus"],
            &["text/event-stream;"],
            &[" text/event-stream ;charset=UTF-8"],
            &["text/event-stream;x=\"a,b\""],
            // Fetch's extraction: the last valid MIME type wins, `*/*` and junk are skipped.
            &["text/plain, text/event-stream"],
            &["text/plain", "text/event-stream"],
            &["text/event-stream, */*"],
            &["text/event-stream, bogus"],
        ] {
            assert!(is_event_stream(&content_types(accepted)), "{accepted:?}");
        }
        for refused in [
            &["text/plain"][..],
            &["text/event-streams"],
            &["application/json"],
            &[""],
            &[],
            &["x bogus"],
            &["text/x-bogus"],
            &["text /event-stream"],
            &["text/event-stream, text/plain"],
            &["text/event-stream", "text/html"],
            &["*/*"],
        ] {
            assert!(!is_event_stream(&content_types(refused)), "{refused:?}");
        }
    }

    #[test]
    fn last_event_ids_are_sent_as_utf_8() {
        let value = last_event_id_value("\u{2026} caf\u{e9}").expect("a header value");
        assert_eq!(value.as_bytes(), "\u{2026} caf\u{e9}".as_bytes());
        assert!(last_event_id_value("a\u{1}b").is_none());
    }
}
