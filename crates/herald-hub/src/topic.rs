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

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex, Weak};

use template::Template;

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
}

#[derive(Clone)]
enum Kind {
    Wildcard,
    Exact,
    Template(Arc<Template>),
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
        }
    }

    /// What matching this selector against a topic costs, in pieces walked: 1 for `*` and for an
    /// exact topic (found by lookup), and for a template the number of its literals and
    /// expressions (`https://example.com/{a}/{b}` costs 4). Budgets per request add these up.
    pub fn cost(&self) -> usize {
        match &self.kind {
            Kind::Wildcard | Kind::Exact => 1,
            Kind::Template(template) => template.pieces(),
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

    /// Whether this is a valid URI template (so it cannot be looked up by exact topic).
    pub fn is_template(&self) -> bool {
        matches!(self.kind, Kind::Template(_))
    }

    /// Whether `topic` is selected: the selector is `*`, or is identical to `topic`, or is a
    /// template that `topic` matches.
    pub fn matches(&self, topic: &str) -> bool {
        match &self.kind {
            Kind::Wildcard => true,
            Kind::Exact => *self.raw == *topic,
            Kind::Template(template) => *self.raw == *topic || template.matches(topic),
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

/// Two selectors are equal when their text is equal.
impl PartialEq for TopicSelector {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for TopicSelector {}

impl std::hash::Hash for TopicSelector {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.raw.hash(state);
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
static TEMPLATES: LazyLock<Mutex<Cache>> = LazyLock::new(Mutex::default);

#[derive(Default)]
struct Cache {
    templates: HashMap<Arc<str>, Weak<Template>>,
    /// The size after the last sweep of dropped templates: the next sweep comes when the map
    /// has doubled, so that the map stays within twice the templates in use, at a constant
    /// cost per insertion.
    swept_at: usize,
}

/// The compiled template for `text`, shared with every other selector of the same text, or
/// `None` when `text` is not a template that compiles.
fn shared_template(text: &str) -> Option<Arc<Template>> {
    let mut cache = TEMPLATES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(template) = cache.templates.get(text).and_then(Weak::upgrade) {
        return Some(template);
    }
    let template = Arc::new(Template::compile(text, MAX_TEMPLATE_VARIABLES)?);
    if cache.templates.len() >= 2 * cache.swept_at.max(512) {
        cache.templates.retain(|_, weak| weak.strong_count() > 0);
        cache.swept_at = cache.templates.len();
    }
    cache
        .templates
        .insert(Arc::from(text), Arc::downgrade(&template));
    Some(template)
}

#[cfg(test)]
mod tests;
