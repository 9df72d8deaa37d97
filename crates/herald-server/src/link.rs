//! The discovery `Link` header that an app's responses carry to point clients at a hub.

use http::HeaderValue;

/// Why a [`DiscoveryLink`] could not become a header value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The hub URL holds a character that cannot appear between `<` and `>`.
    #[error("the hub URL contains '<', '>', a space or a control character")]
    BadUrl,
    /// An attribute value holds a control character.
    #[error("a link attribute contains a control character")]
    BadAttribute,
}

/// `Link: <https://example.com/.well-known/mercure>; rel="mercure"`, with the optional
/// `last-event-id`, `content-type` and `key-set` attributes of the Mercure discovery mechanism.
///
/// ```
/// use herald_server::DiscoveryLink;
///
/// let link = DiscoveryLink::new("https://example.com/.well-known/mercure")
///     .last_event_id("urn:uuid:1")
///     .to_header_value()?;
/// assert_eq!(
///     link,
///     r#"<https://example.com/.well-known/mercure>; rel="mercure"; last-event-id="urn:uuid:1""#
/// );
/// # Ok::<(), herald_server::LinkError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryLink {
    url: String,
    rel: String,
    attributes: Vec<(&'static str, String)>,
}

impl DiscoveryLink {
    /// A `rel="mercure"` link to the hub at `hub_url`.
    pub fn new(hub_url: impl Into<String>) -> DiscoveryLink {
        DiscoveryLink {
            url: hub_url.into(),
            rel: "mercure".to_owned(),
            attributes: Vec::new(),
        }
    }

    /// A `rel="self"` link giving the canonical topic URL of a resource.
    pub fn self_link(topic_url: impl Into<String>) -> DiscoveryLink {
        DiscoveryLink {
            rel: "self".to_owned(),
            ..DiscoveryLink::new(topic_url)
        }
    }

    /// The last event ID at render time; the client passes it back to resume from there.
    pub fn last_event_id(self, id: impl Into<String>) -> DiscoveryLink {
        self.attribute("last-event-id", id.into())
    }

    /// The media type of the updates pushed for this resource.
    pub fn content_type(self, media_type: impl Into<String>) -> DiscoveryLink {
        self.attribute("content-type", media_type.into())
    }

    /// The URL of a JWK Set used to decrypt the updates.
    pub fn key_set(self, url: impl Into<String>) -> DiscoveryLink {
        self.attribute("key-set", url.into())
    }

    fn attribute(mut self, name: &'static str, value: String) -> DiscoveryLink {
        self.attributes.push((name, value));
        self
    }

    /// The header value, with attribute values written as quoted strings.
    pub fn to_header_value(&self) -> Result<HeaderValue, LinkError> {
        if self
            .url
            .chars()
            .any(|c| c == '<' || c == '>' || c == ' ' || c.is_control())
        {
            return Err(LinkError::BadUrl);
        }
        let mut out = format!("<{}>; rel=\"{}\"", self.url, self.rel);
        for (name, value) in &self.attributes {
            if value.chars().any(char::is_control) {
                return Err(LinkError::BadAttribute);
            }
            let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
            out.push_str(&format!("; {name}=\"{escaped}\""));
        }
        HeaderValue::from_str(&out).map_err(|_| LinkError::BadAttribute)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_escaped_and_controls_refused() {
        let link = DiscoveryLink::new("/hub").content_type("a\"b");
        assert_eq!(
            link.to_header_value().expect("valid"),
            r#"</hub>; rel="mercure"; content-type="a\"b""#
        );
        assert_eq!(
            DiscoveryLink::new("/h>").to_header_value(),
            Err(LinkError::BadUrl)
        );
        assert_eq!(
            DiscoveryLink::new("/h").key_set("\n").to_header_value(),
            Err(LinkError::BadAttribute)
        );
        assert_eq!(
            DiscoveryLink::self_link("https://e.com/b/1")
                .to_header_value()
                .expect("valid"),
            r#"<https://e.com/b/1>; rel="self""#
        );
    }
}
