//! The publish form (`application/x-www-form-urlencoded`): reading and validating it into an
//! [`Update`], with a precise reason for every refusal. Public so that it can be fuzzed and
//! reused by embedders.

use std::time::Duration;

use crate::update::{Update, generate_id};

/// The hub's reserved URL path, which no topic may contain.
const HUB_PATH: &str = crate::http::HUB_PATH;

/// Why a publish form was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormError {
    /// The form is malformed or a field is invalid (`400`).
    #[error("{0}")]
    Invalid(String),
    /// A topic lies in the hub's reserved namespace (`403`).
    #[error("{0}")]
    Reserved(String),
}

impl FormError {
    fn invalid(message: impl Into<String>) -> FormError {
        FormError::Invalid(message.into())
    }
}

/// The bounds a publish form is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormLimits {
    /// The most topics an update may carry.
    pub max_topics: usize,
    /// The longest update ID, in bytes.
    pub max_id_size: usize,
}

impl Default for FormLimits {
    /// The hub's defaults: 1,000 topics, IDs of 1 KiB.
    fn default() -> FormLimits {
        FormLimits {
            max_topics: 1_000,
            max_id_size: 1024,
        }
    }
}

/// Reads and validates a publish form (A5 #18, #21): `content_type` is the request's
/// `Content-Type`, `body` its bytes, checked against `limits`.
pub fn parse_publish_form(
    content_type: Option<&str>,
    body: &[u8],
    limits: &FormLimits,
) -> Result<Update, FormError> {
    let max_topics = limits.max_topics;
    let is_form = content_type
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(FormError::invalid(
            "the body must be a form: Content-Type: application/x-www-form-urlencoded",
        ));
    }
    check_utf8(body)?;
    let mut topics = Vec::new();
    let (mut data, mut id, mut event_type, mut retry) = (None, None, None, None);
    let mut private = false;
    for (key, value) in form_urlencoded::parse(body) {
        match &*key {
            "topic" => topics.push(value.into_owned()),
            "data" => data = data.or(Some(value.into_owned())),
            "id" => id = id.or(Some(value.into_owned())),
            "type" => event_type = event_type.or(Some(value.into_owned())),
            "retry" => retry = retry.or(Some(value.into_owned())),
            "private" => private = true,
            _ => {}
        }
    }
    if topics.is_empty() {
        return Err(FormError::invalid(r#"Missing "topic" parameter"#));
    }
    if topics.len() > max_topics {
        return Err(FormError::invalid(format!(
            "Too many \"topic\" parameters: at most {max_topics}"
        )));
    }
    if let Some(topic) = topics.iter().find(|t| t.contains(HUB_PATH)) {
        return Err(FormError::Reserved(format!(
            "topic {topic:?} is in the hub's reserved namespace {HUB_PATH}"
        )));
    }
    let retry = match retry.filter(|r| !r.is_empty()) {
        Some(text) => Some(Duration::from_millis(
            text.parse::<u64>()
                .map_err(|_| FormError::invalid(r#"Invalid "retry" parameter"#))?,
        )),
        None => None,
    };
    let has_control = |s: &str| s.contains(['\0', '\r', '\n']);
    let id = id.filter(|i| !i.is_empty());
    if let Some(id) = &id {
        check_id(id, limits.max_id_size)?;
    }
    if event_type.as_deref().is_some_and(has_control) {
        return Err(FormError::invalid(
            r#"Invalid "type" parameter: it contains NUL, CR or LF"#,
        ));
    }
    Ok(Update {
        id: id.unwrap_or_else(generate_id),
        topics,
        data: data.unwrap_or_default(),
        event_type: event_type.filter(|t| !t.is_empty()),
        retry,
        private,
    })
}

/// Refuses an update ID that a subscriber could not resume from: one that the `id` field of
/// an event cannot carry (NUL, CR, LF), that a `Last-Event-ID` header cannot carry back (other
/// control characters, surrounding spaces or tabs, more than `max_size` bytes), or that means
/// something else in a resume (`earliest`, or a leading `#`).
pub fn check_id(id: &str, max_size: usize) -> Result<(), FormError> {
    let refuse = |why: &str| {
        Err(FormError::invalid(format!(
            r#"Invalid "id" parameter: {why}"#
        )))
    };
    if id.contains(['\0', '\r', '\n']) {
        return refuse("it contains NUL, CR or LF");
    }
    if id.chars().any(char::is_control) {
        return refuse(
            "it contains a control character, which a Last-Event-ID header cannot carry",
        );
    }
    if id.starts_with(' ') || id.ends_with(' ') {
        return refuse("it starts or ends with a space, which a Last-Event-ID header drops");
    }
    if id.starts_with('#') {
        return refuse(r##"it must not start with "#""##);
    }
    if id == "earliest" {
        return refuse(r#""earliest" is reserved: it asks for the whole history"#);
    }
    if id.len() > max_size {
        return refuse(&format!(
            "it is {} bytes; the hub accepts at most {max_size} (max-id-size), so that a \
             reconnecting client's Last-Event-ID header fits",
            id.len()
        ));
    }
    Ok(())
}

/// Refuses a form whose bytes, or whose percent-decoded names and values, are not UTF-8 (the
/// parser would silently replace them).
fn check_utf8(body: &[u8]) -> Result<(), FormError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| FormError::invalid(format!("the form is not valid UTF-8: {e}")))?;
    for pair in text.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        for part in [name, value] {
            let plus = part.replace('+', " ");
            if percent_encoding::percent_decode_str(&plus)
                .decode_utf8()
                .is_err()
            {
                let field = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
                return Err(FormError::invalid(format!(
                    "form field {field:?}: its percent-encoded value is not valid UTF-8"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: Option<&str> = Some("application/x-www-form-urlencoded; charset=utf-8");
    const TWO: FormLimits = FormLimits {
        max_topics: 2,
        max_id_size: 16,
    };

    #[test]
    fn a_valid_form_becomes_an_update() {
        let update = parse_publish_form(
            FORM,
            b"topic=a&topic=b&data=x+y&id=1&retry=5&private=on",
            &FormLimits::default(),
        )
        .expect("valid");
        assert_eq!(update.topics, ["a", "b"]);
        assert_eq!(update.data, "x y");
        assert_eq!(update.id, "1");
        assert_eq!(update.retry, Some(Duration::from_millis(5)));
        assert!(update.private);
    }

    #[test]
    fn refusals_name_the_problem() {
        let refuse = |content_type, body: &[u8]| {
            parse_publish_form(content_type, body, &TWO)
                .expect_err("refused")
                .to_string()
        };
        assert!(refuse(None, b"topic=a").contains("Content-Type"));
        assert!(refuse(FORM, b"data=x").contains("topic"));
        assert!(refuse(FORM, b"topic=a&topic=b&topic=c").contains("at most 2"));
        assert!(refuse(FORM, b"topic=a&data=%C3%28").contains("\"data\""));
        assert!(refuse(FORM, b"topic=a&id=%0A").contains("\"id\""));
        assert!(refuse(FORM, b"topic=a&retry=-1").contains("retry"));
    }

    #[test]
    fn ids_that_cannot_be_resumed_from_are_refused() {
        let refuse = |id: &str| {
            let body = format!(
                "topic=a&id={}",
                percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC)
            );
            parse_publish_form(FORM, body.as_bytes(), &TWO)
                .expect_err(id)
                .to_string()
        };
        assert!(refuse("earliest").contains("reserved"));
        assert!(refuse("#1").contains("\"#\""));
        assert!(refuse("a\u{1}b").contains("control"));
        assert!(refuse("a\u{7f}").contains("control"));
        assert!(refuse(" a").contains("space"));
        assert!(refuse("a\t").contains("control"));
        assert!(refuse("a ").contains("space"));
        assert!(refuse(&"x".repeat(17)).contains("at most 16"));
        for fine in [
            "x".repeat(16),
            "é✓".to_owned(),
            "a b".to_owned(),
            "earliest2".to_owned(),
        ] {
            let body = format!(
                "topic=a&id={}",
                percent_encoding::utf8_percent_encode(&fine, percent_encoding::NON_ALPHANUMERIC)
            );
            let update = parse_publish_form(FORM, body.as_bytes(), &TWO).expect("accepted");
            assert_eq!(update.id, fine);
        }
        assert!(matches!(
            parse_publish_form(FORM, b"topic=/.well-known/mercure/x", &TWO),
            Err(FormError::Reserved(_))
        ));
    }
}
