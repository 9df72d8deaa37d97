//! Topic selectors: which topics a subscription or a token's claim designates.
//!
//! A selector matches a topic when it is `*`, when it is byte-identical to the topic, or when it
//! is a valid RFC 6570 URI Template that the topic matches. A selector that looks like a template
//! but does not parse as one is an ordinary string. This mirrors the Mercure reference hub, which
//! compiles each template into an anchored regular expression; [`TopicSelector`] accepts the
//! same topics, with the same grammar, so that a subscription that works against the reference
//! hub selects the same topics here, but through a matcher of its own ([`template`]) that costs
//! a few bytes per part of the template and time linear in the topic.
//!
//! Like the reference hub, matching is structural: an expression matches any run of the
//! characters its operator may produce, variable names and prefix lengths (`{var:3}`) do not
//! constrain the match, and every expression may expand to nothing.
//!
//! Compiled templates are shared: every selector built from the same text, by any subscriber
//! or token, uses one matcher, which lives as long as some selector holds it.
//!
//! Mercure 1.0 (draft-08) replaced selectors by typed matchers: [`TopicSelector::exact`]
//! compares byte for byte (a `{` is just a character there), and
//! [`TopicSelector::url_pattern`] is a WHATWG URL Pattern (`url_pattern`), resolved against the
//! hub's URL; `*` is the wildcard of both. They share this type, so that the fan-out, history
//! and grants treat both generations alike.
//!
//! ```
//! use herald_hub::topic::TopicSelector;
//!
//! let books = TopicSelector::new("https://example.com/books/{id}");
//! assert!(books.is_template());
//! assert!(books.matches("https://example.com/books/1"));
//! assert!(!books.matches("https://example.com/books/1/reviews"));
//! assert_eq!(books.cost(), 2, "a literal and an expression");
//! ```

mod template;
mod url_pattern;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex, Weak};

use template::Template;
use url::Url;
use url_pattern::Pattern;

pub use url_pattern::REGEX_SIZE_LIMIT;

/// How a Mercure 1.0 matcher compares a topic (`match_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchType {
    /// Byte for byte (`match=` or `match_exact=`); `*` matches every topic.
    Exact,
    /// A WHATWG URL Pattern (`match_urlpattern=`); `*` matches every topic.
    UrlPattern,
}

impl MatchType {
    /// The name the protocol uses: `exact` or `urlpattern`.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Exact => "exact",
            MatchType::UrlPattern => "urlpattern",
        }
    }

    /// The type named `name` (`exact`, `urlpattern`), if any.
    pub fn from_name(name: &str) -> Option<MatchType> {
        match name {
            "exact" => Some(MatchType::Exact),
            "urlpattern" => Some(MatchType::UrlPattern),
            _ => None,
        }
    }
}

impl fmt::Display for MatchType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Most variables a template may hold to be compiled; one with more is matched as a plain
/// string. Real templates hold a handful; the bound keeps a hostile selector from costing more
/// than a fraction of a millisecond to compile.
pub const MAX_TEMPLATE_VARIABLES: usize = 64;

/// A topic selector compiled once: `*`, an exact topic, or an RFC 6570 URI template.
///
/// Building one never fails: a selector containing `{` that is not a valid template is matched
/// as a plain string, as the Mercure specification and the reference hub do. Cloning is cheap.
#[derive(Clone)]
pub struct TopicSelector {
    raw: Arc<str>,
    kind: Kind,
    /// The Mercure 1.0 matcher type it was built as (`None`: a 0.x selector).
    match_type: Option<MatchType>,
}

#[derive(Clone)]
enum Kind {
    Wildcard,
    Exact,
    Template(Arc<Template>),
    UrlPattern(Arc<Pattern>),
}

impl TopicSelector {
    /// Compiles `selector` (or finds it compiled already).
    pub fn new(selector: &str) -> TopicSelector {
        let kind = if selector == "*" {
            Kind::Wildcard
        } else if !selector.contains('{') {
            Kind::Exact
        } else {
            match shared_template(selector) {
                Some(template) => Kind::Template(template),
                None => Kind::Exact,
            }
        };
        TopicSelector {
            raw: Arc::from(selector),
            kind,
            match_type: None,
        }
    }

    /// A Mercure 1.0 exact matcher: `*` matches every topic, any other text only the topic
    /// identical to it, byte for byte (no template, no normalisation).
    pub fn exact(text: &str) -> TopicSelector {
        TopicSelector {
            raw: Arc::from(text),
            kind: if text == "*" {
                Kind::Wildcard
            } else {
                Kind::Exact
            },
            match_type: Some(MatchType::Exact),
        }
    }

    /// A Mercure 1.0 URL Pattern matcher (`*` matches every topic), relative patterns and
    /// topics resolving against `base` (the hub's URL); `None` when `text` is not a valid URL
    /// pattern. Compiled once, and shared with every other matcher of the same text and base.
    pub fn url_pattern(text: &str, base: &Url) -> Option<TopicSelector> {
        let kind = if text == "*" {
            Kind::Wildcard
        } else {
            Kind::UrlPattern(shared_pattern(text, base)?)
        };
        Some(TopicSelector {
            raw: Arc::from(text),
            kind,
            match_type: Some(MatchType::UrlPattern),
        })
    }

    /// A Mercure 1.0 matcher of `match_type` (see [`TopicSelector::exact`] and
    /// [`TopicSelector::url_pattern`]).
    pub fn matcher(match_type: MatchType, text: &str, base: &Url) -> Option<TopicSelector> {
        match match_type {
            MatchType::Exact => Some(TopicSelector::exact(text)),
            MatchType::UrlPattern => TopicSelector::url_pattern(text, base),
        }
    }

    /// The Mercure 1.0 matcher type it was built as; `None` for a 0.x selector.
    pub fn match_type(&self) -> Option<MatchType> {
        self.match_type
    }

    /// What matching this selector against a topic costs, in pieces walked: 1 for `*` and for an
    /// exact topic (found by lookup), for a template the number of its literals and
    /// expressions (`https://example.com/{a}/{b}` costs 4), and for a URL pattern 4 plus 1 per
    /// group (`:name`, `*`, `(...)`, `{...}`) it holds. Budgets per request add these up.
    pub fn cost(&self) -> usize {
        match &self.kind {
            Kind::Wildcard | Kind::Exact => 1,
            Kind::Template(template) => template.pieces(),
            Kind::UrlPattern(_) => url_pattern::cost(&self.raw),
        }
    }

    /// The selector as it was given.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether this is the `*` selector, which matches every topic.
    pub fn is_wildcard(&self) -> bool {
        matches!(self.kind, Kind::Wildcard)
    }

    /// Whether this is a valid URI template.
    pub fn is_template(&self) -> bool {
        matches!(self.kind, Kind::Template(_))
    }

    /// Whether matching it takes more than a lookup of the topic: a template, a URL pattern
    /// or `*`.
    pub fn is_pattern(&self) -> bool {
        !matches!(self.kind, Kind::Exact)
    }

    /// What tells it apart from every other selector: its text and how it matches (a
    /// template, a URL pattern and an exact topic may have the same text).
    pub fn identity(&self) -> (u8, &str) {
        let how = match self.kind {
            Kind::Exact | Kind::Wildcard => 0,
            Kind::Template(_) => 1,
            Kind::UrlPattern(_) => 2,
        };
        (how, &self.raw)
    }

    /// Whether `topic` is selected: the selector is `*`, or is identical to `topic`, or is a
    /// template that `topic` matches.
    pub fn matches(&self, topic: &str) -> bool {
        match &self.kind {
            Kind::Wildcard => true,
            Kind::Exact => *self.raw == *topic,
            Kind::Template(template) => *self.raw == *topic || template.matches(topic),
            Kind::UrlPattern(pattern) => pattern.matches(topic),
        }
    }

    /// Whether any of `topics` is selected.
    pub fn matches_any(&self, topics: &[impl AsRef<str>]) -> bool {
        topics.iter().any(|topic| self.matches(topic.as_ref()))
    }
}

impl fmt::Debug for TopicSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            Kind::Wildcard => "wildcard",
            Kind::Exact => "exact",
            Kind::Template(_) => "template",
            Kind::UrlPattern(_) => "urlpattern",
        };
        f.debug_struct("TopicSelector")
            .field("selector", &&*self.raw)
            .field("kind", &kind)
            .finish()
    }
}

impl fmt::Display for TopicSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Two selectors are equal when they match alike: same text, same way of matching.
impl PartialEq for TopicSelector {
    fn eq(&self, other: &Self) -> bool {
        self.identity() == other.identity()
    }
}

impl Eq for TopicSelector {}

impl std::hash::Hash for TopicSelector {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.identity().hash(state);
    }
}

impl From<&str> for TopicSelector {
    fn from(selector: &str) -> Self {
        TopicSelector::new(selector)
    }
}

/// Whether some selector matches some topic (the rule for receiving an update).
pub fn any_matches(selectors: &[TopicSelector], topics: &[impl AsRef<str>]) -> bool {
    selectors
        .iter()
        .any(|selector| selector.matches_any(topics))
}

/// The first topic that no selector matches, if any (the rule for publishing: every topic of an
/// update must be matched). A `*` selector matches everything.
pub fn first_unmatched<'t, T: AsRef<str>>(
    selectors: &[TopicSelector],
    topics: &'t [T],
) -> Option<&'t str> {
    if selectors.iter().any(TopicSelector::is_wildcard) {
        return None;
    }
    topics
        .iter()
        .map(AsRef::as_ref)
        .find(|topic| !selectors.iter().any(|selector| selector.matches(topic)))
}

/// Whether every topic is matched by some selector: false without selectors, true for no topics
/// when there is a selector (as in the reference hub; refuse an update without topics first).
pub fn all_matched(selectors: &[TopicSelector], topics: &[impl AsRef<str>]) -> bool {
    !selectors.is_empty() && first_unmatched(selectors, topics).is_none()
}

/// Compiled templates by their text, while some selector holds them.
static TEMPLATES: LazyLock<Mutex<Cache<Template>>> = LazyLock::new(Mutex::default);
/// Compiled URL patterns by their base and text, while some selector holds them.
static PATTERNS: LazyLock<Mutex<Cache<Pattern>>> = LazyLock::new(Mutex::default);

struct Cache<T> {
    compiled: HashMap<Arc<str>, Weak<T>>,
    /// The size after the last sweep of dropped entries: the next sweep comes when the map
    /// has doubled, so that the map stays within twice the entries in use, at a constant
    /// cost per insertion.
    swept_at: usize,
}

impl<T> Default for Cache<T> {
    fn default() -> Cache<T> {
        Cache {
            compiled: HashMap::new(),
            swept_at: 0,
        }
    }
}

/// The matcher compiled from `key`, shared with every other holder of the same key, or
/// `None` when `compile` fails.
fn shared<T>(
    cache: &Mutex<Cache<T>>,
    key: &str,
    compile: impl FnOnce() -> Option<T>,
) -> Option<Arc<T>> {
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(found) = cache.compiled.get(key).and_then(Weak::upgrade) {
        return Some(found);
    }
    let compiled = Arc::new(compile()?);
    if cache.compiled.len() >= 2 * cache.swept_at.max(512) {
        cache.compiled.retain(|_, weak| weak.strong_count() > 0);
        cache.swept_at = cache.compiled.len();
    }
    cache
        .compiled
        .insert(Arc::from(key), Arc::downgrade(&compiled));
    Some(compiled)
}

/// The compiled template for `text`, shared with every other selector of the same text, or
/// `None` when `text` is not a template that compiles.
fn shared_template(text: &str) -> Option<Arc<Template>> {
    shared(&TEMPLATES, text, || {
        Template::compile(text, MAX_TEMPLATE_VARIABLES)
    })
}

/// The compiled URL pattern for `text` against `base`, shared likewise, or `None` when
/// `text` is not a valid URL pattern.
fn shared_pattern(text: &str, base: &Url) -> Option<Arc<Pattern>> {
    let key = format!("{base} {text}");
    shared(&PATTERNS, &key, || Pattern::compile(text, base))
}

#[cfg(test)]
mod tests;
