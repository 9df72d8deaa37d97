//! Topic selectors: which topics a subscription or a token's claim designates.
//!
//! A selector matches a topic when it is `*`, when it is byte-identical to the topic, or when it
//! is a valid RFC 6570 URI Template that the topic matches. A selector that looks like a template
//! but does not parse as one is an ordinary string. This mirrors the Mercure reference hub, which
//! compiles each template into an anchored regular expression; [`TopicSelector`] does the same,
//! once, when it is built, with the same grammar and the same expression shapes, so that a
//! subscription that works against the reference hub selects the same topics here.
//!
//! Like the reference hub, matching is structural: an expression matches any run of the
//! characters its operator may produce, variable names and prefix lengths (`{var:3}`) do not
//! constrain the match, and every expression may expand to nothing.

use std::fmt::{self, Write as _};
use std::sync::Arc;

use regex::{Regex, RegexBuilder};

/// Most variables a template may hold to be compiled; one with more is matched as a plain
/// string. Real templates hold a handful; the bound keeps a hostile selector from costing more
/// than a fraction of a millisecond to compile.
pub const MAX_TEMPLATE_VARIABLES: usize = 64;
/// Upper bound on the compiled size of one template's matcher (it limits, for instance, an
/// expression with thousands of variables). A larger template is matched as a plain string.
const MAX_COMPILED_TEMPLATE_BYTES: usize = 1 << 20;

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
    Template(Regex),
}

impl TopicSelector {
    /// Compiles `selector`.
    pub fn new(selector: &str) -> TopicSelector {
        let kind = if selector == "*" {
            Kind::Wildcard
        } else if !selector.contains('{') {
            Kind::Exact
        } else {
            match compile_template(selector) {
                Some(regex) => Kind::Template(regex),
                None => Kind::Exact,
            }
        };
        TopicSelector {
            raw: Arc::from(selector),
            kind,
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
            Kind::Template(regex) => *self.raw == *topic || regex.is_match(topic),
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

/// Compiles a URI template into an anchored regular expression, or `None` if `template` is not a
/// valid RFC 6570 template (or its matcher would be unreasonably large).
fn compile_template(template: &str) -> Option<Regex> {
    let parts = parse_template(template)?;
    let variables: usize = parts
        .iter()
        .map(|part| match part {
            Part::Literal(_) => 0,
            Part::Expression(expr) => expr.explode.len(),
        })
        .sum();
    if variables > MAX_TEMPLATE_VARIABLES {
        tracing::debug!(
            template,
            variables,
            "URI template has too many variables; matching it as a plain string"
        );
        return None;
    }
    let mut source = String::with_capacity(template.len() * 4);
    source.push('^');
    for part in &parts {
        match part {
            Part::Literal(text) => source.push_str(&regex::escape(text)),
            Part::Expression(expr) => expr.write_regex(&mut source),
        }
    }
    source.push('$');
    match RegexBuilder::new(&source)
        .size_limit(MAX_COMPILED_TEMPLATE_BYTES)
        .build()
    {
        Ok(regex) => Some(regex),
        Err(error) => {
            tracing::debug!(%error, template, "URI template too large to compile; matching it as a plain string");
            None
        }
    }
}

/// One piece of a parsed template.
enum Part<'a> {
    Literal(&'a str),
    Expression(Expression),
}

/// The operator of an expression (RFC 6570 section 2.2).
#[derive(Clone, Copy)]
enum Operator {
    Simple,
    Reserved,
    Fragment,
    Label,
    Path,
    PathParam,
    Query,
    Continuation,
}

struct Expression {
    operator: Operator,
    /// For each variable: whether it is exploded (`var*`).
    explode: Vec<bool>,
}

/// Unreserved characters (RFC 3986), as a regex class body.
const CLASS_UNRESERVED: &str = r"\x2d\x2e\x30-\x39\x41-\x5a\x5f\x61-\x7a\x7e";
/// Reserved characters (RFC 3986 gen-delims and sub-delims), as a regex class body.
const CLASS_RESERVED: &str = r"\x21\x23\x24\x26-\x2c\x2f\x3a\x3b\x3d\x3f\x40\x5b\x5d";

impl Expression {
    /// `(first, separator, named, allows reserved characters)` per RFC 6570 appendix A.
    fn shape(&self) -> (&'static str, &'static str, bool, bool) {
        match self.operator {
            Operator::Simple => ("", ",", false, false),
            Operator::Reserved => ("", ",", false, true),
            Operator::Fragment => ("#", ",", false, true),
            Operator::Label => (".", ".", false, false),
            Operator::Path => ("/", "/", false, false),
            Operator::PathParam => (";", ";", true, false),
            Operator::Query => ("?", "&", true, false),
            Operator::Continuation => ("&", "&", true, false),
        }
    }

    /// Appends the regex for this expression: an optional prefix, one value, then up to one more
    /// value per extra variable (any number when a variable is exploded).
    fn write_regex(&self, out: &mut String) {
        let (first, separator, named, reserved) = self.shape();
        let any_explode = self.explode.iter().any(|&e| e);
        if !first.is_empty() {
            out.push_str("(?:");
            out.push_str(&regex::escape(first));
        }
        out.push_str("(?:");
        write_value_class(out, reserved, named || self.explode.first() == Some(&true));
        if self.explode.len() > 1 || any_explode {
            out.push_str("(?:");
            out.push_str(&regex::escape(separator));
            write_value_class(out, reserved, named || any_explode);
            out.push(')');
            if any_explode {
                out.push('*');
            } else {
                // Writing to a String cannot fail.
                let _ = write!(out, "{{0,{}}}", self.explode.len() - 1);
            }
        }
        out.push(')');
        if !first.is_empty() {
            out.push(')');
        }
        out.push('?');
    }
}

/// Appends a run of value characters: `,` (and `=` for named or exploded values) unless the
/// reserved set already holds them, the unreserved set, the reserved set when allowed, and
/// percent-encoded triplets.
fn write_value_class(out: &mut String, reserved: bool, named: bool) {
    out.push_str("(?:[");
    if !reserved {
        out.push_str(r"\x2c");
        if named {
            out.push_str(r"\x3d");
        }
    }
    out.push_str(CLASS_UNRESERVED);
    if reserved {
        out.push_str(CLASS_RESERVED);
    }
    out.push_str("]|%[[:xdigit:]][[:xdigit:]])*");
}

/// Whether `c` may appear literally outside expressions (RFC 6570 section 2.1).
fn is_literal_char(c: char) -> bool {
    matches!(c,
        '!' | '#' | '$' | '&' | '('..=';' | '=' | '?'..='[' | ']' | '_' | 'a'..='z' | '~'
        | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFEF}')
        || is_supplementary_literal(c)
}

/// Supplementary-plane `ucschar` and `iprivate` code points allowed as literals.
fn is_supplementary_literal(c: char) -> bool {
    let c = u32::from(c);
    if !(0x1_0000..=0x10_FFFD).contains(&c) || (c & 0xFFFF) > 0xFFFD {
        return false;
    }
    // The plane-14 range starts at U+E1000.
    !(0xE_0000..0xE_1000).contains(&c)
}

/// Parses a template into literals and expressions, or `None` if it is not valid RFC 6570
/// (levels 1-4): unbalanced braces, empty or malformed variable names, reserved operators
/// (`= , ! @ |`), prefix lengths outside 1..=9999, a stray `}` or a character that may not
/// appear in a URI, or malformed percent-encoding.
fn parse_template(template: &str) -> Option<Vec<Part<'_>>> {
    let bytes = template.as_bytes();
    let mut parts = Vec::new();
    let mut literal_start = 0;
    let mut pos = 0;
    while let Some(c) = template.get(pos..).and_then(|rest| rest.chars().next()) {
        match c {
            '{' => {
                if pos > literal_start {
                    parts.push(Part::Literal(&template[literal_start..pos]));
                }
                let (expression, end) = parse_expression(bytes, pos + 1)?;
                parts.push(Part::Expression(expression));
                literal_start = end;
                pos = end;
            }
            '%' if is_triplet(bytes, pos) => pos += 3,
            _ if is_literal_char(c) => pos += c.len_utf8(),
            _ => return None,
        }
    }
    if literal_start < template.len() {
        parts.push(Part::Literal(&template[literal_start..]));
    }
    Some(parts)
}

/// Parses one expression starting just after its `{`; returns it and the offset just after its
/// `}`. Expressions are ASCII: any other byte makes the template invalid.
fn parse_expression(bytes: &[u8], mut pos: usize) -> Option<(Expression, usize)> {
    let operator = match *bytes.get(pos)? {
        b'+' => Operator::Reserved,
        b'#' => Operator::Fragment,
        b'.' => Operator::Label,
        b'/' => Operator::Path,
        b';' => Operator::PathParam,
        b'?' => Operator::Query,
        b'&' => Operator::Continuation,
        b'=' | b',' | b'!' | b'@' | b'|' => return None,
        _ => Operator::Simple,
    };
    if !matches!(operator, Operator::Simple) {
        pos += 1;
    }
    let mut explode = Vec::new();
    loop {
        // varname: varchar / pct-encoded, with single inner dots.
        let name_start = pos;
        loop {
            match *bytes.get(pos)? {
                b'%' if is_triplet(bytes, pos) => pos += 3,
                b'.' => pos += 1,
                c if c.is_ascii_alphanumeric() || c == b'_' => pos += 1,
                _ => break,
            }
        }
        if !valid_varname(&bytes[name_start..pos]) {
            return None;
        }
        // modifier: `*` or `:` max-length (1..=9999, no leading zero).
        match *bytes.get(pos)? {
            b'*' => {
                explode.push(true);
                pos += 1;
            }
            b':' => {
                pos += 1;
                let digits_start = pos;
                let mut max_len = 0u32;
                while let Some(digit) = bytes.get(pos).filter(|b| b.is_ascii_digit()) {
                    max_len = max_len * 10 + u32::from(digit - b'0');
                    if max_len == 0 || max_len > 9999 {
                        return None;
                    }
                    pos += 1;
                }
                if pos == digits_start {
                    return None;
                }
                explode.push(false);
            }
            _ => explode.push(false),
        }
        match *bytes.get(pos)? {
            b',' => pos += 1,
            b'}' => return Some((Expression { operator, explode }, pos + 1)),
            _ => return None,
        }
    }
}

/// Whether `bytes[at..]` starts with a percent-encoded triplet.
fn is_triplet(bytes: &[u8], at: usize) -> bool {
    bytes.len() >= at + 3
        && bytes[at] == b'%'
        && bytes[at + 1].is_ascii_hexdigit()
        && bytes[at + 2].is_ascii_hexdigit()
}

/// A variable name is non-empty, and its dots are inner and never doubled.
fn valid_varname(name: &[u8]) -> bool {
    !name.is_empty()
        && name.first() != Some(&b'.')
        && name.last() != Some(&b'.')
        && !name.windows(2).any(|pair| pair == b"..")
}

#[cfg(test)]
mod tests;
