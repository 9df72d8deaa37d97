//! Extracting the ID a reconnecting client sends, so a stream can resume where it left off.
//!
//! Browsers send the `Last-Event-ID` header on their own when they reconnect; clients that cannot
//! set headers (a first `EventSource` connection, which passes an ID learned elsewhere) put it in
//! a query parameter. The header wins when both are present.

use http::HeaderMap;

/// The request header reconnecting `EventSource`s send.
pub const LAST_EVENT_ID_HEADER: &str = "last-event-id";

/// Reads the last event ID from the `Last-Event-ID` header, or else from the first query
/// parameter among `query_names` that is present.
///
/// The header is read as UTF-8, the encoding browsers send it in (an ID may hold any
/// character but NUL, CR and LF); a header that is not valid UTF-8 is ignored. An empty value
/// is returned as it is: it means "the client has no ID yet", which callers may treat like no
/// value.
///
/// ```
/// use herald_server::last_event_id;
///
/// let mut headers = http::HeaderMap::new();
/// assert_eq!(last_event_id(&headers, Some("topic=a&lastEventID=42"), &["lastEventID"]), Some("42".into()));
/// headers.insert("last-event-id", "7".parse().expect("value"));
/// assert_eq!(last_event_id(&headers, Some("lastEventID=42"), &["lastEventID"]), Some("7".into()));
/// ```
pub fn last_event_id(
    headers: &HeaderMap,
    query: Option<&str>,
    query_names: &[&str],
) -> Option<String> {
    if let Some(value) = headers.get(LAST_EVENT_ID_HEADER)
        && let Ok(text) = std::str::from_utf8(value.as_bytes())
    {
        return Some(text.to_owned());
    }
    let query = query?;
    for name in query_names {
        let found = form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned());
        if found.is_some() {
            return found;
        }
    }
    None
}

/// The last event ID a client sent, as an axum extractor: the `Last-Event-ID` header, or else the
/// `lastEventID` or `last_event_id` query parameter. `None` when the client sent none.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LastEventId(pub Option<String>);

impl LastEventId {
    /// The query parameter names the extractor reads, in order.
    pub const QUERY_NAMES: &'static [&'static str] = &["lastEventID", "last_event_id"];

    /// Reads the ID from request parts (see [`last_event_id`]).
    pub fn from_request(headers: &HeaderMap, query: Option<&str>) -> LastEventId {
        LastEventId(last_event_id(headers, query, Self::QUERY_NAMES))
    }
}

#[cfg(feature = "axum")]
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for LastEventId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(LastEventId::from_request(&parts.headers, parts.uri.query()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_value_is_percent_decoded() {
        let headers = HeaderMap::new();
        let id = LastEventId::from_request(&headers, Some("last_event_id=urn%3Auuid%3A1+2"));
        assert_eq!(id.0.as_deref(), Some("urn:uuid:1 2"));
    }

    #[test]
    fn a_non_ascii_header_is_read_as_utf8() {
        let mut headers = HeaderMap::new();
        let value = http::HeaderValue::from_bytes("café-✓".as_bytes()).expect("value");
        headers.insert(LAST_EVENT_ID_HEADER, value);
        let id = LastEventId::from_request(&headers, Some("lastEventID=other"));
        assert_eq!(id.0.as_deref(), Some("café-✓"));
        // Not UTF-8: ignored, the query parameter is read instead.
        let latin1 = http::HeaderValue::from_bytes(b"caf\xe9").expect("value");
        headers.insert(LAST_EVENT_ID_HEADER, latin1);
        let id = LastEventId::from_request(&headers, Some("lastEventID=other"));
        assert_eq!(id.0.as_deref(), Some("other"));
    }

    #[test]
    fn nothing_gives_none() {
        let headers = HeaderMap::new();
        assert_eq!(LastEventId::from_request(&headers, Some("topic=x")).0, None);
        assert_eq!(LastEventId::from_request(&headers, None).0, None);
    }

    #[test]
    fn first_listed_query_name_wins() {
        let headers = HeaderMap::new();
        let id = last_event_id(&headers, Some("b=2&a=1"), &["a", "b"]);
        assert_eq!(id.as_deref(), Some("1"));
    }
}
