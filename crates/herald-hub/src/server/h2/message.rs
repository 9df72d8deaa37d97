//! From a decoded HTTP/2 header list to an `http::Request` (RFC 9113 §8.3: pseudo-headers
//! first, lowercase names, no connection-specific fields), and from a response head to an HPACK
//! header block.
//!
//! The block is encoded without the dynamic table (each field a literal "without indexing"),
//! so that the encoder keeps no state per connection: a stream's response carries a handful of
//! fields once, and indexing them would only cost memory.

use std::time::SystemTime;

use http::header::{CONNECTION, CONTENT_LENGTH, DATE, SET_COOKIE, TE, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, Version};

/// What was wrong with a request head: the stream is reset with `PROTOCOL_ERROR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Malformed(pub(super) &'static str);

/// A request head being gathered from its header list.
#[derive(Debug, Default)]
pub(super) struct RequestHead {
    method: Option<Method>,
    scheme: Option<String>,
    authority: Option<String>,
    path: Option<String>,
    headers: HeaderMap,
    /// The size of the list as RFC 9113 counts it (name + value + 32 per field).
    size: usize,
    /// Set once the list grew past its limit: the rest is decoded but not kept.
    too_large: bool,
    malformed: Option<&'static str>,
    regular_seen: bool,
}

/// A `100 Continue` head: `:status: 100` as a literal without indexing (its name is the
/// static table's entry 8).
pub(super) const CONTINUE_BLOCK: [u8; 5] = [0x08, 3, b'1', b'0', b'0'];

impl RequestHead {
    /// A head for a request's trailers: regular fields only.
    pub(super) fn trailers() -> RequestHead {
        RequestHead {
            regular_seen: true,
            ..RequestHead::default()
        }
    }

    /// What makes the list malformed, if anything does.
    pub(super) fn malformed(&self) -> Option<&'static str> {
        self.malformed
    }

    /// Takes one field of the list; at most `limit` bytes of list are kept.
    pub(super) fn field(&mut self, name: &[u8], value: &[u8], limit: usize) {
        self.size += name.len() + value.len() + 32;
        if self.size > limit {
            self.too_large = true;
        }
        if self.too_large || self.malformed.is_some() {
            return;
        }
        if let Err(Malformed(why)) = self.take(name, value) {
            self.malformed = Some(why);
        }
    }

    fn take(&mut self, name: &[u8], value: &[u8]) -> Result<(), Malformed> {
        if let Some(pseudo) = name.strip_prefix(b":") {
            if self.regular_seen {
                return Err(Malformed("a pseudo-header after a regular field"));
            }
            let text = || {
                std::str::from_utf8(value)
                    .map(str::to_owned)
                    .map_err(|_| Malformed("a pseudo-header is not text"))
            };
            let slot = match pseudo {
                b"method" => {
                    let method =
                        Method::from_bytes(value).map_err(|_| Malformed("an invalid :method"))?;
                    return set_once(&mut self.method, method);
                }
                b"scheme" => &mut self.scheme,
                b"authority" => &mut self.authority,
                b"path" => &mut self.path,
                _ => return Err(Malformed("an unknown pseudo-header")),
            };
            return set_once(slot, text()?);
        }
        self.regular_seen = true;
        if name.iter().any(u8::is_ascii_uppercase) {
            return Err(Malformed("an uppercase field name"));
        }
        let name = HeaderName::from_bytes(name).map_err(|_| Malformed("an invalid field name"))?;
        // No leading or trailing whitespace, no NUL, CR or LF (RFC 9113 §8.2.1).
        let blank = |b: Option<&u8>| b.is_some_and(|b| *b == b' ' || *b == b'\t');
        if blank(value.first()) || blank(value.last()) {
            return Err(Malformed("a field value with surrounding whitespace"));
        }
        let value =
            HeaderValue::from_bytes(value).map_err(|_| Malformed("an invalid field value"))?;
        let connection_specific = name == CONNECTION
            || name == TRANSFER_ENCODING
            || name == UPGRADE
            || name.as_str() == "keep-alive"
            || name.as_str() == "proxy-connection";
        if connection_specific || (name == TE && value.as_bytes() != b"trailers") {
            return Err(Malformed("a connection-specific field"));
        }
        self.headers.append(name, value);
        Ok(())
    }

    /// Whether the list grew past its limit (the answer is then `431`).
    pub(super) fn too_large(&self) -> bool {
        self.too_large
    }

    /// The request, with an empty body for now.
    pub(super) fn request(self) -> Result<Request<()>, Malformed> {
        if let Some(why) = self.malformed {
            return Err(Malformed(why));
        }
        let method = self.method.ok_or(Malformed("no :method"))?;
        if method == Method::CONNECT {
            return Err(Malformed("CONNECT is not served"));
        }
        let scheme = self.scheme.ok_or(Malformed("no :scheme"))?;
        let path = self
            .path
            .filter(|p| !p.is_empty())
            .ok_or(Malformed("no :path"))?;
        // An origin-form path, or `*` for a server-wide OPTIONS (§8.3.1).
        if !(path.starts_with('/') || (path == "*" && method == Method::OPTIONS)) {
            return Err(Malformed("a :path neither absolute nor * for OPTIONS"));
        }
        if self.authority.as_ref().is_some_and(|a| a.contains('@')) {
            return Err(Malformed("an :authority with userinfo"));
        }
        let authority = match &self.authority {
            Some(authority) => Some(authority.as_bytes()),
            None => self
                .headers
                .get(http::header::HOST)
                .map(HeaderValue::as_bytes),
        };
        // With an authority, an absolute URI as hyper builds it; without, the path alone.
        let uri = match authority {
            Some(authority) => Uri::builder()
                .scheme(scheme.as_str())
                .authority(authority)
                .path_and_query(path.as_str())
                .build(),
            None => Uri::builder().path_and_query(path.as_str()).build(),
        }
        .map_err(|_| Malformed("an invalid request target"))?;
        let mut request = Request::new(());
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.version_mut() = Version::HTTP_2;
        *request.headers_mut() = self.headers;
        Ok(request)
    }
}

fn set_once<T>(slot: &mut Option<T>, value: T) -> Result<(), Malformed> {
    if slot.replace(value).is_some() {
        return Err(Malformed("a repeated pseudo-header"));
    }
    Ok(())
}

/// The response head as an HPACK header block: the status, the fields (connection-specific
/// ones dropped, as they mean nothing in HTTP/2), a `date` when the response has none and the
/// body's length when it is known, as hyper adds them.
pub(super) fn response_block(
    status: StatusCode,
    headers: &HeaderMap,
    length: Option<u64>,
) -> Vec<u8> {
    let mut block = Vec::with_capacity(256);
    match status.as_u16() {
        // The static table's indexed statuses.
        200 => block.push(0x88),
        204 => block.push(0x89),
        304 => block.push(0x8b),
        400 => block.push(0x8c),
        404 => block.push(0x8d),
        500 => block.push(0x8e),
        _ => {
            // A literal without indexing, its name being the static table's `:status` (8).
            block.push(0x08);
            string(&mut block, status.as_str().as_bytes());
        }
    }
    let mut has_length = false;
    for (name, value) in headers {
        let connection_specific = name == CONNECTION
            || name == TRANSFER_ENCODING
            || name == UPGRADE
            || name.as_str() == "keep-alive"
            || name.as_str() == "proxy-connection";
        if connection_specific {
            continue;
        }
        has_length |= name == CONTENT_LENGTH;
        literal(
            &mut block,
            name.as_str().as_bytes(),
            value.as_bytes(),
            name == SET_COOKIE,
        );
    }
    if let (Some(length), false) = (length, has_length) {
        literal(
            &mut block,
            b"content-length",
            length.to_string().as_bytes(),
            false,
        );
    }
    if !headers.contains_key(DATE) {
        let date = httpdate::fmt_http_date(SystemTime::now());
        literal(&mut block, b"date", date.as_bytes(), false);
    }
    block
}

/// A literal field with a new name, "without indexing" or, for sensitive values, "never
/// indexed" (RFC 7541 §6.2.2, §6.2.3).
fn literal(block: &mut Vec<u8>, name: &[u8], value: &[u8], sensitive: bool) {
    block.push(if sensitive { 0x10 } else { 0x00 });
    string(block, name);
    string(block, value);
}

/// A string literal without Huffman coding (RFC 7541 §5.2).
fn string(block: &mut Vec<u8>, bytes: &[u8]) {
    integer(block, bytes.len(), 7, 0);
    block.extend_from_slice(bytes);
}

/// An integer with an `prefix`-bit prefix, `flags` in the first byte's high bits (RFC 7541
/// §5.1).
fn integer(block: &mut Vec<u8>, mut value: usize, prefix: u32, flags: u8) {
    let max = (1usize << prefix) - 1;
    if value < max {
        block.push(flags | value as u8);
        return;
    }
    block.push(flags | max as u8);
    value -= max;
    while value >= 128 {
        block.push((value % 128 + 128) as u8);
        value /= 128;
    }
    block.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(fields: &[(&str, &str)]) -> RequestHead {
        let mut head = RequestHead::default();
        for (name, value) in fields {
            head.field(name.as_bytes(), value.as_bytes(), 8192);
        }
        head
    }

    #[test]
    fn a_request_is_built_from_its_pseudo_headers_and_fields() {
        let request = head(&[
            (":method", "GET"),
            (":scheme", "https"),
            (":authority", "hub.example"),
            (":path", "/.well-known/mercure?topic=a"),
            ("accept", "text/event-stream"),
        ])
        .request()
        .expect("well-formed");
        assert_eq!(request.method(), Method::GET);
        assert_eq!(
            request.uri().to_string(),
            "https://hub.example/.well-known/mercure?topic=a"
        );
        assert_eq!(request.version(), Version::HTTP_2);
        assert_eq!(request.headers()["accept"], "text/event-stream");
    }

    #[test]
    fn malformed_heads_are_refused() {
        let base = [(":method", "GET"), (":scheme", "http"), (":path", "/")];
        let with = |extra: &[(&str, &str)]| {
            let mut fields = base.to_vec();
            fields.extend_from_slice(extra);
            head(&fields).request()
        };
        assert!(with(&[]).is_ok());
        assert!(with(&[("Accept", "x")]).is_err(), "uppercase");
        assert!(with(&[("connection", "close")]).is_err());
        assert!(with(&[("te", "gzip")]).is_err());
        assert!(with(&[("te", "trailers")]).is_ok());
        assert!(with(&[(":path", "/again")]).is_err(), "repeated");
        assert!(with(&[("accept", "x"), (":status", "200")]).is_err());
        assert!(
            head(&[(":method", "GET"), (":scheme", "http")])
                .request()
                .is_err()
        );
        assert!(
            head(&[(":method", "CONNECT"), (":authority", "a:1")])
                .request()
                .is_err()
        );
    }

    #[test]
    fn a_list_past_its_limit_is_noted_not_kept() {
        let mut head = RequestHead::default();
        head.field(b":method", b"GET", 100);
        head.field(b"x-big", &[b'a'; 200], 100);
        assert!(head.too_large());
    }

    #[test]
    fn the_response_block_decodes_to_the_head() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert("connection", HeaderValue::from_static("keep-alive"));
        headers.insert(
            "x-long",
            HeaderValue::from_str(&"v".repeat(300)).expect("value"),
        );
        for (status, length) in [(200, None), (431, Some(12))] {
            let block = response_block(
                StatusCode::from_u16(status).expect("status"),
                &headers,
                length,
            );
            let mut decoder = loona_hpack::Decoder::new();
            let fields: Vec<(String, String)> = decoder
                .decode(&block)
                .expect("valid HPACK")
                .into_iter()
                .map(|(n, v)| {
                    (
                        String::from_utf8(n).expect("n"),
                        String::from_utf8(v).expect("v"),
                    )
                })
                .collect();
            assert_eq!(fields[0], (":status".to_owned(), status.to_string()));
            assert!(fields.contains(&("content-type".into(), "text/event-stream".into())));
            assert!(fields.contains(&("x-long".into(), "v".repeat(300))));
            assert!(!fields.iter().any(|(n, _)| n == "connection"));
            assert!(fields.iter().any(|(n, _)| n == "date"));
            assert_eq!(
                fields
                    .iter()
                    .any(|(n, v)| n == "content-length" && v == "12"),
                length.is_some()
            );
        }
    }
}

#[cfg(test)]
mod hostile {
    use super::*;

    /// A small deterministic generator (xorshift), so that a failure replays.
    fn bytes(seed: &mut u64, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 7;
                *seed ^= *seed << 17;
                (*seed >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn hostile_header_blocks_are_errors_or_heads_never_panics() {
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        for round in 0..50_000 {
            let mut decoder = loona_hpack::Decoder::new();
            decoder.set_max_allowed_table_size(4096);
            // Mostly short blocks, some starting like real ones (indexed fields, literals).
            let len = 1 + round % 64;
            let mut block = bytes(&mut seed, len);
            if round % 3 == 0 {
                block.insert(0, 0x82);
            }
            let mut head = RequestHead::default();
            let _ = decoder.decode_with_cb(&block, |name, value| head.field(&name, &value, 8192));
            let _ = head.request();
        }
    }
}
