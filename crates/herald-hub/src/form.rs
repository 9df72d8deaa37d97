//! The publish form (`application/x-www-form-urlencoded`): reading and validating it into an
//! [`Update`], with a precise reason for every refusal. Public so that it can be fuzzed and
//! reused by embedders.

use std::time::Duration;

use crate::protocol::{Generation, is_clean_text};
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
    /// Mercure 1.0: more topics than the limit, or an ID longer than it (`413`).
    #[error("{0}")]
    TooLarge(String),
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

/// Which generation's rules a publish form is held to.
#[derive(Debug, Clone, Copy)]
pub struct PublishRules<'a> {
    /// The request's generation: 1.0 refuses with `400` what 0.x refuses with `403` (a topic
    /// in the hub's namespace), and also refuses the topic `*`, control and format characters
    /// in topics, IDs and types, the type `mercure`, and a `retry` that is not ASCII digits.
    pub generation: Generation,
    /// The hub's URL when the hub serves Mercure 1.0: a 1.0 update's topics are then also
    /// checked against its namespace after resolution and normalisation, and the type
    /// `mercure` (1.0's subscription events) is refused in both generations, so that no
    /// publisher, 0.x ones included, can forge a subscription event for 1.0 subscribers.
    pub modern_hub: Option<&'a url::Url>,
}

impl PublishRules<'_> {
    /// Mercure 0.x alone, as the reference hub checks a form.
    pub const LEGACY: PublishRules<'static> = PublishRules {
        generation: Generation::Legacy,
        modern_hub: None,
    };
}

/// Reads and validates a publish form (A5 #18, #21): `content_type` is the request's
/// `Content-Type`, `body` its bytes, checked against `limits`.
pub fn parse_publish_form(
    content_type: Option<&str>,
    body: &[u8],
    limits: &FormLimits,
) -> Result<Update, FormError> {
    parse_publish_form_with(content_type, body, limits, &PublishRules::LEGACY)
}

/// Like [`parse_publish_form`], held to the rules of a generation (B52).
pub fn parse_publish_form_with(
    content_type: Option<&str>,
    body: &[u8],
    limits: &FormLimits,
    rules: &PublishRules<'_>,
) -> Result<Update, FormError> {
    let modern = rules.generation == Generation::Modern;
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
        let message = format!("Too many \"topic\" parameters: at most {max_topics}");
        return Err(if modern {
            FormError::TooLarge(message)
        } else {
            FormError::Invalid(message)
        });
    }
    if modern {
        if let Some(topic) = topics.iter().find(|t| !is_clean_text(t)) {
            return Err(FormError::invalid(format!(
                "Invalid \"topic\" parameter {topic:?}: it holds a control or format character"
            )));
        }
        if topics.iter().any(|t| t == "*") {
            return Err(FormError::invalid(
                r#"Invalid "topic" parameter: "*" is the wildcard of matchers, not a topic"#,
            ));
        }
    }
    if let Some(topic) = topics.iter().find(|t| match (modern, rules.modern_hub) {
        (true, Some(hub)) => in_namespace(t, hub),
        _ => t.contains(HUB_PATH),
    }) {
        let message = format!("topic {topic:?} is in the hub's reserved namespace {HUB_PATH}");
        return Err(if modern {
            FormError::Invalid(message)
        } else {
            FormError::Reserved(message)
        });
    }
    let retry = match retry.filter(|r| !r.is_empty()) {
        Some(text) => Some(Duration::from_millis(
            text.parse::<u64>()
                .ok()
                .filter(|_| !modern || text.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| FormError::invalid(r#"Invalid "retry" parameter"#))?,
        )),
        None => None,
    };
    let has_control = |s: &str| s.contains(['\0', '\r', '\n']);
    let id = id.filter(|i| !i.is_empty());
    if let Some(id) = &id {
        if modern && id.len() > limits.max_id_size {
            return Err(FormError::TooLarge(format!(
                r#"Invalid "id" parameter: it is {} bytes; the hub accepts at most {} (max-id-size)"#,
                id.len(),
                limits.max_id_size
            )));
        }
        check_id(id, limits.max_id_size)?;
    }
    if event_type.as_deref().is_some_and(has_control) {
        return Err(FormError::invalid(
            r#"Invalid "type" parameter: it contains NUL, CR or LF"#,
        ));
    }
    if modern
        && (id.as_deref().is_some_and(|i| !is_clean_text(i))
            || event_type.as_deref().is_some_and(|t| !is_clean_text(t)))
    {
        return Err(FormError::invalid(
            r#"Invalid "id" or "type" parameter: it holds a control or format character"#,
        ));
    }
    if rules.modern_hub.is_some() && event_type.as_deref() == Some(crate::subscriptions::EVENT_TYPE)
    {
        return Err(FormError::invalid(
            r#"Invalid "type" parameter: "mercure" is the type of Mercure 1.0's subscription events"#,
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

/// Whether `topic`, resolved against the hub's URL, with dot segments removed and
/// percent-encoded unreserved characters decoded, lies at the hub's path or under it, or
/// holds the hub's path as a run of whole segments.
fn in_namespace(topic: &str, hub: &url::Url) -> bool {
    let Ok(resolved) = url::Url::options().base_url(Some(hub)).parse(topic) else {
        return false;
    };
    let path = decode_unreserved(resolved.path());
    // Decoding may reveal dot segments (`%2E%2E`): resolve once more.
    let path = hub.join(&path).map_or(path, |url| url.path().to_owned());
    let reserved = hub.path().trim_end_matches('/');
    path == reserved
        || path.starts_with(&format!("{reserved}/"))
        || path.contains(&format!("{reserved}/"))
        || path.ends_with(reserved)
}

/// Decodes the percent-encoded unreserved characters (`A-Z a-z 0-9 - . _ ~`) of a path.
fn decode_unreserved(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = path.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
            && (byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~'))
        {
            out.push(char::from(byte));
            i += 3;
            continue;
        }
        let c = path[i..].chars().next().unwrap_or('\u{fffd}');
        out.push(c);
        i += c.len_utf8().max(1);
    }
    out
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

    fn modern(body: &str) -> Result<Update, FormError> {
        let hub = url::Url::parse("https://hub.example.com/.well-known/mercure").expect("url");
        let rules = PublishRules {
            generation: Generation::Modern,
            modern_hub: Some(&hub),
        };
        parse_publish_form_with(FORM, body.as_bytes(), &FormLimits::default(), &rules)
    }

    #[test]
    fn b52_reserved_topics_are_400_after_normalisation() {
        for topic in [
            "/.well-known/mercure/subscriptions/foo",
            "https://example.com/.well-known/mercure/subscriptions/foo",
            "foo/.well-known/mercure/bar",
            "/.well-known/./mercure/subscriptions/x",
            "/.well-known/x/../mercure",
            "/.well-known/%6Dercure/subscriptions",
            "/.well-known/x/%2E%2E/mercure/y",
            "mercure/subscriptions/x",
        ] {
            let body = format!(
                "topic={}",
                percent_encoding::utf8_percent_encode(topic, percent_encoding::NON_ALPHANUMERIC)
            );
            assert!(
                matches!(modern(&body), Err(FormError::Invalid(_))),
                "{topic} must be refused with 400"
            );
        }
        assert!(modern("topic=https://example.com/mercure").is_ok());
        assert!(modern("topic=/.well-known/mercurex").is_ok());
    }

    #[test]
    fn b52_modern_field_rules() {
        assert!(modern("topic=*").is_err(), "the wildcard is no topic");
        assert!(modern("topic=a%E2%80%8Bb").is_err(), "a format character");
        assert!(modern("topic=a%00").is_err(), "NUL");
        assert!(modern("topic=a&type=mercure").is_err());
        assert!(modern("topic=a&type=a%C2%85").is_err(), "a C1 control");
        assert!(modern("topic=a&id=%E2%80%AEx").is_err());
        assert!(
            modern("topic=a&retry=%2B5").is_err(),
            "retry is ASCII digits only"
        );
        assert!(parse_publish_form(FORM, b"topic=a&retry=%2B5", &FormLimits::default()).is_ok());
        assert!(modern("topic=a&id=earliest").is_err());
        let many = "topic=a&".repeat(1001);
        assert!(
            matches!(modern(&many), Err(FormError::TooLarge(_))),
            "B49: 413"
        );
        assert!(matches!(
            parse_publish_form(FORM, many.as_bytes(), &FormLimits::default()),
            Err(FormError::Invalid(_))
        ));
        let long = format!("topic=a&id={}", "x".repeat(1025));
        assert!(matches!(modern(&long), Err(FormError::TooLarge(_))));
        let update = modern("topic=a&private=&unknown=1&retry=7").expect("valid");
        assert!(update.private, "presence alone makes it private");
        assert_eq!(update.retry, Some(Duration::from_millis(7)));
    }
}
