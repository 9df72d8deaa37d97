//! RFC 6570 URI templates as topic selectors: the parser (levels 1-4) and a matcher built for
//! the job, so that a template costs a few bytes per part and its matching is linear.
//!
//! The Mercure reference hub compiles each template into an anchored regular expression; the
//! matcher here accepts exactly the topics that expression accepts (the tests hold it against
//! that expression), without a regex engine: an expression with `n` variables is written as a
//! bounded repetition that a regex engine unrolls `n` times, and each compiled regex keeps
//! caches of its own, which made a subscription of a thousand templates cost tens of
//! megabytes.
//!
//! A template compiles to a list of [`Piece`]s. Matching walks the topic once per piece,
//! carrying the sorted set of positions where the next piece may start: a literal keeps the
//! positions it follows from, an expression spreads each position over the runs of characters
//! it may produce. No backtracking: time is O(pieces x topic length), memory O(topic length).

/// Unreserved characters (RFC 3986): `-` `.` `0-9` `A-Z` `_` `a-z` `~`.
const UNRESERVED: Class =
    Class::of(b"-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~");
/// Reserved characters (RFC 3986 gen-delims and sub-delims).
const RESERVED: Class = Class::of(b"!#$&'()*+,/:;=?@[]");

/// A set of ASCII bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Class(u128);

impl Class {
    const fn of(bytes: &[u8]) -> Class {
        let mut bits = 0u128;
        let mut i = 0;
        while i < bytes.len() {
            bits |= 1 << bytes[i];
            i += 1;
        }
        Class(bits)
    }

    const fn union(self, other: Class) -> Class {
        Class(self.0 | other.0)
    }

    fn contains(self, byte: u8) -> bool {
        byte < 128 && (self.0 >> byte) & 1 == 1
    }

    /// The characters of a value: `,` (and `=` in a named or exploded value) unless the
    /// reserved set already holds them, the unreserved set, and the reserved set for `+` and
    /// `#` expressions. Percent-encoded triplets are allowed besides (see [`token_len`]).
    fn value(reserved: bool, named: bool) -> Class {
        if reserved {
            UNRESERVED.union(RESERVED)
        } else if named {
            UNRESERVED.union(Class::of(b",="))
        } else {
            UNRESERVED.union(Class::of(b","))
        }
    }
}

/// A compiled template.
#[derive(Debug)]
pub(super) struct Template {
    pieces: Box<[Piece]>,
}

#[derive(Debug)]
enum Piece {
    /// Text matched byte for byte.
    Literal(Box<[u8]>),
    Expression(Expression),
}

/// What one `{...}` expression matches: nothing, or its first character, a value, then up to
/// `more` further values each after a separator.
#[derive(Debug)]
struct Expression {
    first: Option<u8>,
    separator: u8,
    /// The characters of the first value.
    head: Class,
    /// The characters of the following values (a superset of `head`).
    tail: Class,
    /// How many values may follow the first (`u16::MAX`: any number, for exploded variables).
    more: u16,
}

/// No state reaches this position.
const UNREACHED: u16 = u16::MAX;

impl Template {
    /// Compiles `template`, or `None` if it is not a valid RFC 6570 template or holds more than
    /// `max_variables` variables.
    pub(super) fn compile(template: &str, max_variables: usize) -> Option<Template> {
        let parts = parse_template(template)?;
        let variables: usize = parts
            .iter()
            .map(|part| match part {
                Part::Literal(_) => 0,
                Part::Expression(expr) => expr.explode.len(),
            })
            .sum();
        if variables > max_variables {
            tracing::debug!(
                template,
                variables,
                "URI template has too many variables; matching it as a plain string"
            );
            return None;
        }
        let pieces = parts
            .into_iter()
            .map(|part| match part {
                Part::Literal(text) => Piece::Literal(text.as_bytes().into()),
                Part::Expression(expr) => Piece::Expression(expr.compile()),
            })
            .collect();
        Some(Template { pieces })
    }

    /// How many pieces (literals and expressions) the matcher walks for each topic.
    pub(super) fn pieces(&self) -> usize {
        self.pieces.len()
    }

    /// Whether `topic` is one of the template's expansions (structurally: variable names and
    /// prefix lengths do not constrain the match).
    pub(super) fn matches(&self, topic: &str) -> bool {
        let topic = topic.as_bytes();
        // Cheap refusals first: most templates start or end with text that most topics lack.
        if let Some(Piece::Literal(last)) = self.pieces.last()
            && !topic.ends_with(last)
        {
            return false;
        }
        if let Some(Piece::Literal(first)) = self.pieces.first()
            && !topic.starts_with(first)
        {
            return false;
        }
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => self.walk(topic, &mut scratch),
            Err(_) => self.walk(topic, &mut Scratch::default()),
        })
    }

    fn walk(&self, topic: &[u8], scratch: &mut Scratch) -> bool {
        let Scratch {
            starts,
            ends,
            states,
        } = scratch;
        starts.clear();
        starts.push(0);
        for (i, piece) in self.pieces.iter().enumerate() {
            // The common end of a template, `.../{id}`: only whether the topic's end is
            // reachable matters, and one value reaches it or not in one scan.
            if let Piece::Expression(expression) = piece
                && i + 1 == self.pieces.len()
                && expression.more == 0
            {
                return expression.ends_topic_from_any(topic, starts, states);
            }
            ends.clear();
            match piece {
                Piece::Literal(text) => ends.extend(
                    starts
                        .iter()
                        .filter(|&&at| topic[at..].starts_with(text))
                        .map(|at| at + text.len()),
                ),
                Piece::Expression(expression) => expression.advance(topic, starts, ends, states),
            }
            if ends.is_empty() {
                return false;
            }
            std::mem::swap(starts, ends);
        }
        starts.last() == Some(&topic.len())
    }
}

/// Buffers a match reuses, one set per thread: matching allocates nothing once they have grown
/// to the longest topic seen.
#[derive(Default)]
struct Scratch {
    starts: Vec<usize>,
    ends: Vec<usize>,
    states: Vec<u32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// A position ends the expression without its taking anything.
const SKIP: u32 = 1 << 31;
/// A position is inside the expression's first value.
const HEAD: u32 = 1 << 30;
/// The low bits: the fewest separators taken to be inside a following value there
/// ([`UNREACHED`] when none).
const TAIL: u32 = 0xFFFF;

impl Expression {
    /// Whether this expression, holding at most one value, can take all of `topic` from one
    /// of `starts` (sorted). One start is one scan; several share one backward pass that marks
    /// the positions from which the rest of the topic is one value, so that many starts (after
    /// many expressions that each may take nothing) cost one pass, not one scan each.
    fn ends_topic_from_any(&self, topic: &[u8], starts: &[usize], states: &mut Vec<u32>) -> bool {
        let (Some(&base), Some(&last)) = (starts.first(), starts.last()) else {
            return false;
        };
        if base == last {
            return self.ends_topic(topic, base);
        }
        // states[i - base] is 1 when topic[i..] is a run of value characters.
        states.clear();
        states.resize(topic.len() + 1 - base, 0);
        states[topic.len() - base] = 1;
        for i in (base..topic.len()).rev() {
            states[i - base] = token_len(topic, i, self.head)
                .and_then(|len| states.get(i + len - base).copied())
                .unwrap_or(0);
        }
        starts.iter().any(|&at| {
            self.value_from(topic, at)
                .is_some_and(|from| states[from - base] == 1)
        })
    }

    /// Where this expression's one value starts when the expression starts at `at`: past its
    /// operator's first character, if it has one (`None`: the topic lacks it there). At the
    /// topic's end, the expression takes nothing.
    fn value_from(&self, topic: &[u8], at: usize) -> Option<usize> {
        match self.first {
            _ if at == topic.len() => Some(at),
            None => Some(at),
            Some(first) if topic[at] == first => Some(at + 1),
            Some(_) => None,
        }
    }

    /// Whether this expression, holding at most one value, can take all of `topic` from `at`.
    fn ends_topic(&self, topic: &[u8], at: usize) -> bool {
        let Some(mut at) = self.value_from(topic, at) else {
            return false;
        };
        while at < topic.len() {
            match token_len(topic, at, self.head) {
                Some(len) => at += len,
                None => return false,
            }
        }
        true
    }

    /// Appends to `ends`, in order, every position where this expression may end when it
    /// starts at one of `starts` (sorted); `states` is scratch space, one state per position.
    fn advance(
        &self,
        topic: &[u8],
        starts: &[usize],
        ends: &mut Vec<usize>,
        states: &mut Vec<u32>,
    ) {
        let Some(&base) = starts.first() else {
            return;
        };
        states.clear();
        states.resize(topic.len() + 1 - base, u32::from(UNREACHED));
        let mut frontier = base;
        for &at in starts {
            states[at - base] |= SKIP;
            match self.first {
                None => states[at - base] |= HEAD,
                Some(first) if topic.get(at) == Some(&first) => {
                    states[at + 1 - base] |= HEAD;
                    frontier = frontier.max(at + 1);
                }
                Some(_) => {}
            }
            frontier = frontier.max(at);
        }
        let mut at = base;
        while at <= frontier {
            let state = states[at - base];
            let taken = u16::try_from(state & TAIL).unwrap_or(UNREACHED);
            if state & (SKIP | HEAD) != 0 || taken != UNREACHED {
                ends.push(at);
            }
            let Some(&byte) = topic.get(at) else {
                break;
            };
            let mut reach = |to: usize, separators: Option<u16>| {
                let slot = &mut states[to - base];
                match separators {
                    None => *slot |= HEAD,
                    Some(count) => {
                        let tail = (*slot & TAIL).min(u32::from(count));
                        *slot = (*slot & !TAIL) | tail;
                    }
                }
                frontier = frontier.max(to);
            };
            if state & HEAD != 0 {
                if let Some(len) = token_len(topic, at, self.head) {
                    reach(at + len, None);
                }
                if byte == self.separator && self.more > 0 {
                    reach(at + 1, Some(1));
                }
            }
            if taken != UNREACHED {
                if let Some(len) = token_len(topic, at, self.tail) {
                    reach(at + len, Some(taken));
                }
                if byte == self.separator && (self.more == u16::MAX || taken < self.more) {
                    // Unbounded counts stop short of the marker for "unreached".
                    reach(at + 1, Some((taken + 1).min(UNREACHED - 1)));
                }
            }
            at += 1;
        }
    }
}

/// The length of the value character at `at`: 1 for a byte of `class`, 3 for a
/// percent-encoded triplet, `None` for anything else.
fn token_len(topic: &[u8], at: usize, class: Class) -> Option<usize> {
    let byte = *topic.get(at)?;
    if class.contains(byte) {
        Some(1)
    } else if is_triplet(topic, at) {
        Some(3)
    } else {
        None
    }
}

/// One piece of a parsed template.
pub(super) enum Part<'a> {
    Literal(&'a str),
    Expression(ParsedExpression),
}

/// The operator of an expression (RFC 6570 section 2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Operator {
    Simple,
    Reserved,
    Fragment,
    Label,
    Path,
    PathParam,
    Query,
    Continuation,
}

/// An expression as written: its operator and, for each variable, whether it is exploded.
pub(super) struct ParsedExpression {
    pub(super) operator: Operator,
    pub(super) explode: Vec<bool>,
}

impl ParsedExpression {
    /// `(first, separator, named, allows reserved characters)` per RFC 6570 appendix A.
    pub(super) fn shape(&self) -> (Option<u8>, u8, bool, bool) {
        match self.operator {
            Operator::Simple => (None, b',', false, false),
            Operator::Reserved => (None, b',', false, true),
            Operator::Fragment => (Some(b'#'), b',', false, true),
            Operator::Label => (Some(b'.'), b'.', false, false),
            Operator::Path => (Some(b'/'), b'/', false, false),
            Operator::PathParam => (Some(b';'), b';', true, false),
            Operator::Query => (Some(b'?'), b'&', true, false),
            Operator::Continuation => (Some(b'&'), b'&', true, false),
        }
    }

    /// One value, then up to one more value per extra variable (any number when a variable is
    /// exploded); the first value admits `=` when it is named or exploded, the others when
    /// named or when any variable is exploded.
    fn compile(&self) -> Expression {
        let (first, separator, named, reserved) = self.shape();
        let any_explode = self.explode.iter().any(|&e| e);
        let more = if any_explode {
            u16::MAX
        } else {
            u16::try_from(self.explode.len().saturating_sub(1)).unwrap_or(u16::MAX - 1)
        };
        Expression {
            first,
            separator,
            head: Class::value(reserved, named || self.explode.first() == Some(&true)),
            tail: Class::value(reserved, named || any_explode),
            more,
        }
    }
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
pub(super) fn parse_template(template: &str) -> Option<Vec<Part<'_>>> {
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
fn parse_expression(bytes: &[u8], mut pos: usize) -> Option<(ParsedExpression, usize)> {
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
    if operator != Operator::Simple {
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
            b'}' => return Some((ParsedExpression { operator, explode }, pos + 1)),
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
