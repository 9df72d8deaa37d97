//! WHATWG URL Patterns as topic matchers (Mercure 1.0, `match_urlpattern=`), through the
//! `urlpattern` crate, with its regular expressions bounded.
//!
//! Relative patterns and relative topics both resolve against the hub's URL; `ignoreCase` is
//! never used; a topic that does not parse as a URL never matches.
//!
//! The crate compiles one regular expression per URL component (eight per pattern) and matches
//! most components without them (literals, single wildcards). Here each expression is only
//! *parsed* when the pattern is compiled (so that an invalid pattern is refused at once), and
//! built the first time a topic needs it, with a size limit: a pattern costs its text until
//! then, and no expression can grow past [`REGEX_SIZE_LIMIT`]. An expression that would is a
//! capped evaluation, which counts as no match. Matching is linear in the topic's length (the
//! `regex` crate never backtracks).

use std::sync::OnceLock;

use ::urlpattern::regexp::RegExp;
use ::urlpattern::{
    RegexSyntax, UrlPattern, UrlPatternInit, UrlPatternMatchInput, UrlPatternOptions,
};
use url::Url;

/// The most bytes one compiled regular expression of a pattern may take.
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;
/// The deepest nesting of groups a pattern's regular expression may have.
const NEST_LIMIT: u32 = 32;

/// A compiled URL pattern and the URL relative topics resolve against.
#[derive(Debug)]
pub(super) struct Pattern {
    pattern: UrlPattern<Lazy>,
    base: Url,
}

impl Pattern {
    /// Compiles `text` (resolved against `base` when relative), or `None` when it is not a
    /// valid URL pattern.
    pub(super) fn compile(text: &str, base: &Url) -> Option<Pattern> {
        let init =
            UrlPatternInit::parse_constructor_string::<Lazy>(text, Some(base.clone())).ok()?;
        let options = UrlPatternOptions {
            regex_syntax: RegexSyntax::Rust,
            ignore_case: false,
        };
        let pattern = UrlPattern::<Lazy>::parse(init, options).ok()?;
        Some(Pattern {
            pattern,
            base: base.clone(),
        })
    }

    /// Whether `topic`, resolved against the hub's URL, matches.
    pub(super) fn matches(&self, topic: &str) -> bool {
        let Ok(url) = Url::options().base_url(Some(&self.base)).parse(topic) else {
            return false;
        };
        self.pattern
            .test(UrlPatternMatchInput::Url(url))
            .unwrap_or(false)
    }
}

/// What a URL pattern costs against a subscription's budget: 4, plus 1 per group it holds
/// (`:name`, `*`, `(...)`, `{...}`), each a run of the matcher over part of the topic.
pub(super) fn cost(text: &str) -> usize {
    let rest = text.split_once("://").map_or(text, |(_, rest)| rest);
    4 + rest
        .chars()
        .filter(|c| matches!(c, ':' | '*' | '(' | '{'))
        .count()
}

/// A regular expression checked when the pattern is compiled and built at its first use.
#[derive(Debug)]
struct Lazy {
    source: Box<str>,
    compiled: OnceLock<Option<regex::Regex>>,
}

impl Lazy {
    fn regex(&self) -> Option<&regex::Regex> {
        self.compiled
            .get_or_init(|| {
                regex::RegexBuilder::new(&self.source)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .dfa_size_limit(REGEX_SIZE_LIMIT)
                    .nest_limit(NEST_LIMIT)
                    .build()
                    .inspect_err(|error| {
                        tracing::debug!(%error, "a URL pattern's expression is over its bound: no match");
                    })
                    .ok()
            })
            .as_ref()
    }
}

impl RegExp for Lazy {
    fn syntax() -> RegexSyntax {
        RegexSyntax::Rust
    }

    fn parse(pattern: &str, _flags: &str, _force_eval: bool) -> Result<Lazy, ()> {
        regex_syntax::ParserBuilder::new()
            .nest_limit(NEST_LIMIT)
            .build()
            .parse(pattern)
            .map_err(|_| ())?;
        Ok(Lazy {
            source: pattern.into(),
            compiled: OnceLock::new(),
        })
    }

    fn matches<'a>(&self, text: &'a str) -> Option<Vec<Option<&'a str>>> {
        let captures = self.regex()?.captures(text)?;
        Some(
            captures
                .iter()
                .skip(1)
                .map(|c| c.map(|m| m.as_str()))
                .collect(),
        )
    }

    fn pattern_string(&self) -> &str {
        &self.source
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://hub.example.com/.well-known/mercure").expect("url")
    }

    fn matches(pattern: &str, topic: &str) -> bool {
        Pattern::compile(pattern, &base())
            .expect("valid pattern")
            .matches(topic)
    }

    #[test]
    fn b47_patterns_match_like_the_standard() {
        assert!(matches(
            "https://example.com/books/:id",
            "https://example.com/books/1"
        ));
        assert!(!matches(
            "https://example.com/books/:id",
            "https://example.com/books/1/reviews"
        ));
        assert!(matches(
            "https://example.com/books/*",
            "https://example.com/books/1/reviews"
        ));
        assert!(matches(
            "https://example.com/books/:id(\\d+)",
            "https://example.com/books/42"
        ));
        assert!(!matches(
            "https://example.com/books/:id(\\d+)",
            "https://example.com/books/abc"
        ));
        assert!(matches(
            "https://example.com/books{/:id}?",
            "https://example.com/books"
        ));
    }

    #[test]
    fn b47_case_is_never_ignored() {
        assert!(!matches(
            "https://example.com/Books/:id",
            "https://example.com/books/1"
        ));
    }

    #[test]
    fn b47_relative_patterns_and_topics_resolve_against_the_hub() {
        assert!(matches("/books/:id", "/books/1"));
        assert!(matches("/books/:id", "https://hub.example.com/books/1"));
        assert!(!matches("/books/:id", "https://example.com/books/1"));
        assert!(matches(
            "https://hub.example.com/books/:id",
            "/books/../books/7"
        ));
    }

    #[test]
    fn b47_a_topic_that_is_not_a_url_never_matches() {
        assert!(!matches("https://example.com/*", "https://exa mple.com/x"));
        assert!(!matches("*://*/*", "http://[::1"));
    }

    #[test]
    fn b46_invalid_patterns_are_refused() {
        for invalid in [
            "https://example.com/:id(",
            "https://example.com/(a",
            "https://example.com/:",
            "https://example.com/:id((a)",
        ] {
            assert!(Pattern::compile(invalid, &base()).is_none(), "{invalid}");
        }
    }

    #[test]
    fn an_expression_over_its_bound_is_no_match_not_a_panic() {
        // Valid syntax, but far over the size limit once compiled.
        let pattern = Pattern::compile(
            "https://example.com/:id(\\w{1000}\\w{1000}\\w{1000})",
            &base(),
        )
        .expect("parses");
        assert!(!pattern.matches(&format!("https://example.com/{}", "a".repeat(3000))));
    }
}
