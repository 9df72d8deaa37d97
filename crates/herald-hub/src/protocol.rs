//! The two generations of the Mercure protocol one hub serves: 0.x (spec draft-07, what
//! Symfony, API Platform and Laravel speak) and 1.0 (draft-08: `match=` matchers, RFC 9068
//! access tokens, `Mercure-Last-Event-ID`). [`Protocol`] is what the operator allows;
//! [`Generation`] is what one request speaks, read from what it carries ([`Markers`]): a
//! request that mixes the two is refused, and a token of one generation is never accepted by
//! the other, so that clients move over one at a time without gaining rights on the way.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Which generations of the protocol the hub serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Protocol {
    /// Mercure 0.x only (draft-07): `topic=`, the `mercure` claim.
    #[serde(rename = "0.x")]
    Legacy,
    /// Mercure 1.0 only (draft-08): `match*=`, `at+jwt` access tokens.
    #[serde(rename = "1")]
    Modern,
    /// Both, each request read by what it carries.
    #[default]
    #[serde(rename = "both")]
    Both,
}

impl Protocol {
    /// Whether requests of `generation` are served.
    pub fn serves(self, generation: Generation) -> bool {
        match self {
            Protocol::Legacy => generation == Generation::Legacy,
            Protocol::Modern => generation == Generation::Modern,
            Protocol::Both => true,
        }
    }

    /// The setting as written: `0.x`, `1` or `both`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Legacy => "0.x",
            Protocol::Modern => "1",
            Protocol::Both => "both",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = String;

    /// `0.x` (or `0`), `1` (or `1.0`), `both`.
    fn from_str(text: &str) -> Result<Protocol, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "0.x" | "0" => Ok(Protocol::Legacy),
            "1" | "1.0" => Ok(Protocol::Modern),
            "both" => Ok(Protocol::Both),
            other => Err(format!(
                "unknown protocol {other:?}: expected 0.x, 1 or both"
            )),
        }
    }
}

/// The generation one request speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Generation {
    /// Mercure 0.x (draft-07).
    Legacy,
    /// Mercure 1.0 (draft-08).
    Modern,
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Generation::Legacy => "Mercure 0.x",
            Generation::Modern => "Mercure 1.0",
        })
    }
}

/// What in a request names its generation: the first sign of each found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Markers {
    /// A sign of 0.x (`topic=`, `lastEventID=`, `authorization=`, a token without
    /// `typ: at+jwt`).
    pub legacy: Option<&'static str>,
    /// A sign of 1.0 (`match*=`, `last_event_id=`, the QUERY method, an `at+jwt` token).
    pub modern: Option<&'static str>,
}

impl Markers {
    /// Reads the markers of a query string or form body (names only).
    pub fn of_params(&mut self, params: &[(String, String)]) {
        for (name, _) in params {
            match name.as_str() {
                "topic" => self.legacy("`topic=`"),
                "lastEventID" => self.legacy("`lastEventID=`"),
                "authorization" => self.legacy("the `authorization` query parameter"),
                "last_event_id" => self.modern("`last_event_id=`"),
                name if name
                    .get(..5)
                    .is_some_and(|p| p.eq_ignore_ascii_case("match")) =>
                {
                    self.modern("`match=`")
                }
                _ => {}
            }
        }
    }

    /// Notes a sign of 0.x (the first one is kept).
    pub fn legacy(&mut self, what: &'static str) {
        self.legacy.get_or_insert(what);
    }

    /// Notes a sign of 1.0 (the first one is kept).
    pub fn modern(&mut self, what: &'static str) {
        self.modern.get_or_insert(what);
    }

    /// The request's generation under `protocol`, or why it has none. Without any sign, a
    /// hub serving both reads the request as 0.x, the generation every deployed client
    /// speaks.
    pub fn generation(self, protocol: Protocol) -> Result<Generation, String> {
        match (protocol, self.legacy, self.modern) {
            (Protocol::Legacy, _, _) => Ok(Generation::Legacy),
            (Protocol::Modern, Some(legacy), _) => Err(format!(
                "{legacy} is Mercure 0.x, and this hub speaks Mercure 1.0 only: subscribe with \
                 match=, match_urlpattern= and an at+jwt access token"
            )),
            (Protocol::Modern, None, _) => Ok(Generation::Modern),
            (Protocol::Both, Some(legacy), Some(modern)) => Err(format!(
                "the request mixes Mercure 0.x ({legacy}) and Mercure 1.0 ({modern}); a \
                 request speaks one generation: topic=, lastEventID= and a token with the \
                 mercure claim for 0.x, or match*=, last_event_id= and an at+jwt access token \
                 for 1.0"
            )),
            (Protocol::Both, None, Some(_)) => Ok(Generation::Modern),
            (Protocol::Both, _, None) => Ok(Generation::Legacy),
        }
    }
}

/// Whether `text` is free of the characters Mercure 1.0 refuses in topics, matchers, IDs and
/// event types: C0 and C1 controls, DEL, and Unicode format characters (category `Cf`).
pub fn is_clean_text(text: &str) -> bool {
    !text.chars().any(|c| c.is_control() || is_format(c))
}

/// Unicode's format characters (general category `Cf`, Unicode 15.1).
fn is_format(c: char) -> bool {
    const RANGES: &[(u32, u32)] = &[
        (0x00AD, 0x00AD),
        (0x0600, 0x0605),
        (0x061C, 0x061C),
        (0x06DD, 0x06DD),
        (0x070F, 0x070F),
        (0x0890, 0x0891),
        (0x08E2, 0x08E2),
        (0x180E, 0x180E),
        (0x200B, 0x200F),
        (0x202A, 0x202E),
        (0x2060, 0x2064),
        (0x2066, 0x206F),
        (0xFEFF, 0xFEFF),
        (0xFFF9, 0xFFFB),
        (0x110BD, 0x110BD),
        (0x110CD, 0x110CD),
        (0x13430, 0x1343F),
        (0x1BCA0, 0x1BCA3),
        (0x1D173, 0x1D17A),
        (0xE0001, 0xE0001),
        (0xE0020, 0xE007F),
    ];
    let c = u32::from(c);
    c >= 0xAD
        && RANGES
            .iter()
            .any(|&(start, end)| (start..=end).contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(names: &[&str]) -> Vec<(String, String)> {
        names
            .iter()
            .map(|n| ((*n).to_owned(), "x".to_owned()))
            .collect()
    }

    fn generation(protocol: Protocol, names: &[&str]) -> Result<Generation, String> {
        let mut markers = Markers::default();
        markers.of_params(&params(names));
        markers.generation(protocol)
    }

    #[test]
    fn each_request_is_read_by_what_it_carries() {
        assert_eq!(
            generation(Protocol::Both, &["topic"]),
            Ok(Generation::Legacy)
        );
        assert_eq!(
            generation(Protocol::Both, &["match"]),
            Ok(Generation::Modern)
        );
        assert_eq!(
            generation(Protocol::Both, &["match_urlpattern", "last_event_id"]),
            Ok(Generation::Modern)
        );
        assert_eq!(
            generation(Protocol::Both, &["MATCH_foo"]),
            Ok(Generation::Modern),
            "any match* name is 1.0 (and then refused as unknown)"
        );
        assert_eq!(generation(Protocol::Both, &[]), Ok(Generation::Legacy));
        assert_eq!(
            generation(Protocol::Legacy, &["match"]),
            Ok(Generation::Legacy)
        );
    }

    #[test]
    fn a_request_mixing_the_generations_is_refused_by_name() {
        let error = generation(Protocol::Both, &["match", "topic"]).expect_err("mixed");
        assert!(
            error.contains("`topic=`") && error.contains("`match=`"),
            "{error}"
        );
        let error = generation(Protocol::Both, &["lastEventID", "match_exact"]).expect_err("mixed");
        assert!(error.contains("lastEventID"), "{error}");
        let error = generation(Protocol::Modern, &["topic"]).expect_err("0.x on 1.0");
        assert!(error.contains("1.0 only"), "{error}");
    }

    #[test]
    fn b46_control_and_format_characters_are_not_clean() {
        for dirty in [
            "a\u{0}",
            "a\u{1f}",
            "a\u{7f}",
            "a\u{85}",
            "a\u{200b}",
            "\u{feff}a",
            "a\u{202e}",
        ] {
            assert!(!is_clean_text(dirty), "{dirty:?}");
        }
        for clean in ["https://example.com/a b", "é✓", "日本", "a\u{a0}b"] {
            assert!(is_clean_text(clean), "{clean:?}");
        }
    }

    #[test]
    fn protocol_settings_parse() {
        assert_eq!("0.x".parse(), Ok(Protocol::Legacy));
        assert_eq!("1".parse(), Ok(Protocol::Modern));
        assert_eq!("BOTH".parse(), Ok(Protocol::Both));
        assert!("2".parse::<Protocol>().is_err());
        assert_eq!(
            serde_json::to_string(&Protocol::Legacy).expect("json"),
            "\"0.x\""
        );
    }
}
