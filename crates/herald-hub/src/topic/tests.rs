//! The matcher against RFC 6570, the Mercure spec and the reference hub's selector tests.

use super::*;

fn sel(s: &str) -> TopicSelector {
    TopicSelector::new(s)
}

#[test]
fn reference_hub_match_cases() {
    let t = sel("https://example.com/{foo}/bar");
    assert!(t.is_template());
    assert!(t.matches("https://example.com/foo/bar"));
    assert!(!t.matches("https://example.com/foo/bar/baz"));
    assert!(
        sel("https://example.com/{fistname}/{lastname}")
            .matches("https://example.com/kevin/dunglas")
    );
    assert!(sel("*").matches("https://example.com/foo/bar"));
    assert!(sel("https://example.com/foo/bar").matches("https://example.com/foo/bar"));
    assert!(sel("foo").matches("foo"));
    assert!(!sel("foo").matches("bar"));
}

#[test]
fn mercure_spec_examples() {
    let books = sel("https://example.com/books/{id}");
    assert!(books.matches("https://example.com/books/1"));
    assert!(books.matches("https://example.com/books/the-hobbit"));
    assert!(!books.matches("https://example.com/books/1/reviews"));
    assert!(!books.matches("https://example.com/reviews/1"));
    // The alternate-topic trick for per-user access.
    let user = sel("https://example.com/users/foo/{?topic}");
    assert!(
        user.matches("https://example.com/users/foo/?topic=https%3A%2F%2Fexample.com%2Fbooks%2F1")
    );
    assert!(user.matches("https://example.com/users/foo/"));
    assert!(!user.matches("https://example.com/users/bar/?topic=x"));
}

#[test]
fn reference_hub_multi_topic_subscription() {
    // Subscribe test of the reference hub: four selectors, one an invalid template.
    let selectors: Vec<TopicSelector> = [
        "https://example.com/books/1",
        "string",
        "https://example.com/reviews/{id}",
        "https://example.com/hub?topic=faulty{iri",
    ]
    .into_iter()
    .map(TopicSelector::new)
    .collect();
    assert!(!selectors[3].is_template());
    for topic in [
        "https://example.com/books/1",
        "string",
        "https://example.com/reviews/22",
        "https://example.com/hub?topic=faulty{iri",
    ] {
        assert!(any_matches(&selectors, &[topic]), "{topic}");
    }
    assert!(!any_matches(&selectors, &["https://example.com/books/2"]));
    assert!(!any_matches(
        &selectors,
        &["https://example.com/hub?topic=faultyx"]
    ));
}

/// RFC 6570 section 3.2 examples: each expansion must match its template back.
#[test]
fn rfc6570_expansions_match_their_templates() {
    let cases: &[(&str, &str)] = &[
        ("{count}", "one,two,three"),
        ("{count*}", "one,two,three"),
        ("{/count}", "/one,two,three"),
        ("{/count*}", "/one/two/three"),
        ("{;count}", ";count=one,two,three"),
        ("{;count*}", ";count=one;count=two;count=three"),
        ("{?count}", "?count=one,two,three"),
        ("{?count*}", "?count=one&count=two&count=three"),
        ("{&count*}", "&count=one&count=two&count=three"),
        ("{var}", "value"),
        ("{hello}", "Hello%20World%21"),
        ("{half}", "50%25"),
        ("O{empty}X", "OX"),
        ("O{undef}X", "OX"),
        ("{x,y}", "1024,768"),
        ("{x,hello,y}", "1024,Hello%20World%21,768"),
        ("?{x,empty}", "?1024,"),
        ("?{x,undef}", "?1024"),
        ("?{undef,y}", "?768"),
        ("{var:3}", "val"),
        ("{var:30}", "value"),
        ("{list}", "red,green,blue"),
        ("{list*}", "red,green,blue"),
        ("{keys}", "semi,%3B,dot,.,comma,%2C"),
        ("{keys*}", "semi=%3B,dot=.,comma=%2C"),
        ("{+var}", "value"),
        ("{+hello}", "Hello%20World!"),
        ("{+half}", "50%25"),
        ("{base}index", "http%3A%2F%2Fexample.com%2Fhome%2Findex"),
        ("{+base}index", "http://example.com/home/index"),
        ("O{+empty}X", "OX"),
        ("O{+undef}X", "OX"),
        ("{+path}/here", "/foo/bar/here"),
        ("here?ref={+path}", "here?ref=/foo/bar"),
        ("up{+path}{var}/here", "up/foo/barvalue/here"),
        ("{+x,hello,y}", "1024,Hello%20World!,768"),
        ("{+path,x}/here", "/foo/bar,1024/here"),
        ("{+path:6}/here", "/foo/b/here"),
        ("{+list}", "red,green,blue"),
        ("{+list*}", "red,green,blue"),
        ("{+keys}", "semi,;,dot,.,comma,,"),
        ("{+keys*}", "semi=;,dot=.,comma=,"),
        ("{#var}", "#value"),
        ("{#hello}", "#Hello%20World!"),
        ("{#half}", "#50%25"),
        ("foo{#empty}", "foo#"),
        ("foo{#undef}", "foo"),
        ("{#x,hello,y}", "#1024,Hello%20World!,768"),
        ("{#path,x}/here", "#/foo/bar,1024/here"),
        ("{#path:6}/here", "#/foo/b/here"),
        ("{#list}", "#red,green,blue"),
        ("{#list*}", "#red,green,blue"),
        ("{#keys}", "#semi,;,dot,.,comma,,"),
        ("{#keys*}", "#semi=;,dot=.,comma=,"),
        ("{.who}", ".fred"),
        ("{.who,who}", ".fred.fred"),
        ("{.half,who}", ".50%25.fred"),
        ("www{.dom*}", "www.example.com"),
        ("X{.var}", "X.value"),
        ("X{.empty}", "X."),
        ("X{.undef}", "X"),
        ("X{.var:3}", "X.val"),
        ("X{.list}", "X.red,green,blue"),
        ("X{.list*}", "X.red.green.blue"),
        ("X{.keys}", "X.semi,%3B,dot,.,comma,%2C"),
        ("X{.keys*}", "X.semi=%3B.dot=..comma=%2C"),
        ("X{.empty_keys}", "X"),
        ("X{.empty_keys*}", "X"),
        ("{/who}", "/fred"),
        ("{/who,who}", "/fred/fred"),
        ("{/half,who}", "/50%25/fred"),
        ("{/who,dub}", "/fred/me%2Ftoo"),
        ("{/var}", "/value"),
        ("{/var,empty}", "/value/"),
        ("{/var,undef}", "/value"),
        ("{/var,x}/here", "/value/1024/here"),
        ("{/var:1,var}", "/v/value"),
        ("{/list}", "/red,green,blue"),
        ("{/list*}", "/red/green/blue"),
        ("{/list*,path:4}", "/red/green/blue/%2Ffoo"),
        ("{/keys}", "/semi,%3B,dot,.,comma,%2C"),
        ("{/keys*}", "/semi=%3B/dot=./comma=%2C"),
        ("{;who}", ";who=fred"),
        ("{;half}", ";half=50%25"),
        ("{;empty}", ";empty"),
        ("{;v,empty,who}", ";v=6;empty;who=fred"),
        ("{;v,bar,who}", ";v=6;who=fred"),
        ("{;x,y}", ";x=1024;y=768"),
        ("{;x,y,empty}", ";x=1024;y=768;empty"),
        ("{;x,y,undef}", ";x=1024;y=768"),
        ("{;hello:5}", ";hello=Hello"),
        ("{;list}", ";list=red,green,blue"),
        ("{;list*}", ";list=red;list=green;list=blue"),
        ("{;keys}", ";keys=semi,%3B,dot,.,comma,%2C"),
        ("{;keys*}", ";semi=%3B;dot=.;comma=%2C"),
        ("{?who}", "?who=fred"),
        ("{?half}", "?half=50%25"),
        ("{?x,y}", "?x=1024&y=768"),
        ("{?x,y,empty}", "?x=1024&y=768&empty="),
        ("{?x,y,undef}", "?x=1024&y=768"),
        ("{?var:3}", "?var=val"),
        ("{?list}", "?list=red,green,blue"),
        ("{?list*}", "?list=red&list=green&list=blue"),
        ("{?keys}", "?keys=semi,%3B,dot,.,comma,%2C"),
        ("{?keys*}", "?semi=%3B&dot=.&comma=%2C"),
        ("{&who}", "&who=fred"),
        ("{&half}", "&half=50%25"),
        ("?fixed=yes{&x}", "?fixed=yes&x=1024"),
        ("{&x,y,empty}", "&x=1024&y=768&empty="),
        ("{&x,y,undef}", "&x=1024&y=768"),
        ("{&var:3}", "&var=val"),
        ("{&list}", "&list=red,green,blue"),
        ("{&list*}", "&list=red&list=green&list=blue"),
        ("{&keys}", "&keys=semi,%3B,dot,.,comma,%2C"),
        ("{&keys*}", "&semi=%3B&dot=.&comma=%2C"),
        ("{special_chars}", "2001%3Adb8%3A%3A35"),
    ];
    for (template, expanded) in cases {
        let selector = sel(template);
        assert!(selector.is_template(), "{template} should be a template");
        assert!(
            selector.matches(expanded),
            "{template} should match {expanded}"
        );
    }
}

#[test]
fn operators_constrain_what_an_expression_matches() {
    // Simple expressions refuse reserved characters; `+` and `#` allow them.
    assert!(!sel("{var}").matches("a/b"));
    assert!(sel("{+var}").matches("a/b"));
    assert!(sel("{#var}").matches("#a/b?c"));
    assert!(!sel("{#var}").matches("a"));
    // Label, path, path-parameter, query and continuation prefixes are required when the
    // expression expands to something.
    assert!(sel("X{.var}").matches("X.y"));
    assert!(!sel("X{.var}").matches("Xy"));
    assert!(sel("{/a,b}").matches("/1/2"));
    assert!(
        !sel("{/a,b}").matches("/1/2/3"),
        "at most one value per variable"
    );
    assert!(sel("{/a*}").matches("/1/2/3"), "explode allows any number");
    assert!(!sel("{;x}").matches("x=1"));
    assert!(sel("{;x}").matches(";x=1"));
    assert!(!sel("{?x}").matches("x=1"));
    assert!(sel("{?x,y}").matches("?x=1&y=2"));
    assert!(!sel("{?x,y}").matches("?x=1&y=2&z=3"));
    assert!(sel("{?x*}").matches("?a=1&b=2&c=3"));
    assert!(sel("?a=1{&b}").matches("?a=1&b=2"));
    // Like the reference hub, names and prefix lengths do not constrain the match.
    assert!(sel("{?x}").matches("?other=1"));
    assert!(sel("{var:1}").matches("long"));
    // `=` only inside named or exploded values.
    assert!(!sel("{var}").matches("a=b"));
    assert!(sel("{var*}").matches("a=b"));
}

#[test]
fn percent_encoding_and_empty_values() {
    let t = sel("https://example.com/{id}");
    assert!(t.matches("https://example.com/a%2Fb"));
    assert!(t.matches("https://example.com/caf%C3%A9"));
    assert!(!t.matches("https://example.com/a/b"));
    assert!(!t.matches("https://example.com/100%"));
    assert!(!t.matches("https://example.com/%zz"));
    assert!(
        !t.matches("https://example.com/café"),
        "raw non-ASCII is not a value char"
    );
    assert!(
        t.matches("https://example.com/"),
        "an expression may expand to nothing"
    );
    assert!(!t.matches("https://example.com"));
    // Percent-encoded literals in the template are matched as written.
    let lit = sel("https://example.com/a%20b/{id}");
    assert!(lit.is_template());
    assert!(lit.matches("https://example.com/a%20b/1"));
    assert!(!lit.matches("https://example.com/a b/1"));
}

#[test]
fn matching_is_anchored_and_literals_are_not_patterns() {
    let t = sel("https://example.com/a.b/{id}");
    assert!(t.matches("https://example.com/a.b/1"));
    assert!(!t.matches("https://example.com/aXb/1"));
    assert!(!t.matches("xhttps://example.com/a.b/1"));
    assert!(!t.matches("https://example.com/a.b/1x/"));
    assert!(!t.matches("https://example.com/a.b/1\n"));
    let meta = sel("(a)+[b]$*?.{x}");
    assert!(meta.is_template());
    assert!(meta.matches("(a)+[b]$*?.1"));
    assert!(!meta.matches("aab$1"));
    let unicode = sel("https://example.com/é/{id}");
    assert!(unicode.is_template());
    assert!(unicode.matches("https://example.com/é/1"));
    assert!(!unicode.matches("https://example.com/e/1"));
}

#[test]
fn a_template_matches_its_identical_text() {
    let t = sel("https://example.com/{id}");
    assert!(t.matches("https://example.com/{id}"));
    assert!(!t.matches("https://example.com/{other}"));
}

#[test]
fn invalid_templates_are_plain_strings() {
    for invalid in [
        "{",
        "{}",
        "{a",
        "}{",
        "a}",
        "{a}}",
        "{,}",
        "{a,}",
        "{,a}",
        "{a b}",
        "{=a}",
        "{!a}",
        "{@a}",
        "{|a}",
        "{+}",
        "{var:}",
        "{var:0}",
        "{var:01}",
        "{var:10000}",
        "{var:3*}",
        "{var*:3}",
        "{var**}",
        "{.}",
        "{.a.}",
        "{a..b}",
        "{a.}",
        "{%2}",
        "{%zz}",
        "{a-b}",
        "{é}",
        "https://example.com/a b/{id}",
        "https://example.com/\"{id}\"",
        "https://example.com/100%/{id}",
        "https://example.com/{id}{",
        "https://example.com/hub?topic=faulty{iri",
    ] {
        let selector = sel(invalid);
        assert!(
            !selector.is_template(),
            "{invalid:?} must not be a template"
        );
        assert!(!selector.is_wildcard());
        assert!(selector.matches(invalid), "{invalid:?} matches itself");
        assert!(!selector.matches("x"));
        assert!(!selector.matches(""));
    }
}

#[test]
fn unusual_valid_templates() {
    for valid in [
        "{var:9999}",
        "{a.b}",
        "{%41b}",
        "{A_1}",
        "{var:3,x*}",
        "{x}{y}",
        "{?x}{&y}{#z}",
        "urn:{nid}:{+nss}",
    ] {
        assert!(sel(valid).is_template(), "{valid:?} is a valid template");
    }
    assert!(sel("{x}{y}").matches("ab"));
    assert!(sel("urn:{nid}:{+nss}").matches("urn:isbn:0-486-27557-4"));
}

#[test]
fn oversized_templates_are_plain_strings() {
    let many_vars = format!("{{{}}}", vec!["v"; 20_000].join(","));
    let selector = sel(&many_vars);
    assert!(
        !selector.is_template(),
        "the matcher would exceed the size bound"
    );
    assert!(selector.matches(&many_vars));
    assert!(!selector.matches("a"));
    let one_expression = format!("{{{}}}", vec!["v"; MAX_TEMPLATE_VARIABLES].join(","));
    assert!(sel(&one_expression).is_template());
    let at_limit = "{a}/".repeat(MAX_TEMPLATE_VARIABLES);
    assert!(sel(&at_limit).is_template());
    assert!(sel(&at_limit).matches(&"x/".repeat(MAX_TEMPLATE_VARIABLES)));
    let too_many = "{a}/".repeat(MAX_TEMPLATE_VARIABLES + 1);
    let selector = sel(&too_many);
    assert!(!selector.is_template());
    assert!(selector.matches(&too_many));
    assert!(!selector.matches(&"x/".repeat(MAX_TEMPLATE_VARIABLES + 1)));
}

#[test]
fn wildcard_and_exact_selectors() {
    let star = sel("*");
    assert!(star.is_wildcard() && !star.is_template());
    assert!(star.matches("") && star.matches("anything"));
    let exact = sel("https://example.com/books/1");
    assert!(!exact.is_wildcard() && !exact.is_template());
    assert_eq!(exact.as_str(), "https://example.com/books/1");
    assert!(!exact.matches("https://example.com/books/10"));
    assert_eq!(exact, TopicSelector::from("https://example.com/books/1"));
    assert_eq!(exact.to_string(), "https://example.com/books/1");
    assert!(format!("{exact:?}").contains("exact"));
}

#[test]
fn receive_and_publish_rules() {
    let selectors = vec![sel("https://example.com/books/{id}"), sel("news")];
    assert!(any_matches(&selectors, &["other", "news"]));
    assert!(!any_matches(&selectors, &["other"]));
    assert!(!any_matches(&selectors, &[] as &[&str]));
    assert!(!any_matches(&[], &["news"]));

    let topics = ["https://example.com/books/1", "news"];
    assert!(all_matched(&selectors, &topics));
    assert_eq!(first_unmatched(&selectors, &topics), None);
    let topics = ["https://example.com/books/1", "sport", "news"];
    assert!(!all_matched(&selectors, &topics));
    assert_eq!(first_unmatched(&selectors, &topics), Some("sport"));
    assert!(all_matched(&[sel("*")], &["anything", "at all"]));
    assert!(!all_matched(&[], &["news"]));
    assert!(all_matched(&selectors, &[] as &[String]));
}

/// The reference hub's shape of a template as a regular expression, written from the parsed
/// template: the oracle the matcher is held to.
fn reference_regex(template: &str) -> Option<regex::Regex> {
    use std::fmt::Write as _;
    use template::{Part, parse_template};
    const UNRESERVED: &str = r"\x2d\x2e\x30-\x39\x41-\x5a\x5f\x61-\x7a\x7e";
    const RESERVED: &str = r"\x21\x23\x24\x26-\x2c\x2f\x3a\x3b\x3d\x3f\x40\x5b\x5d";
    fn value(out: &mut String, reserved: bool, named: bool) {
        out.push_str("(?:[");
        if !reserved {
            out.push_str(r"\x2c");
            if named {
                out.push_str(r"\x3d");
            }
        }
        out.push_str(UNRESERVED);
        if reserved {
            out.push_str(RESERVED);
        }
        out.push_str("]|%[[:xdigit:]][[:xdigit:]])*");
    }
    let parts = parse_template(template)?;
    let mut source = String::from("^");
    for part in &parts {
        match part {
            Part::Literal(text) => source.push_str(&regex::escape(text)),
            Part::Expression(expr) => {
                let (first, separator, named, reserved) = expr.shape();
                let any_explode = expr.explode.iter().any(|&e| e);
                if let Some(first) = first {
                    source.push_str("(?:");
                    source.push_str(&regex::escape(&char::from(first).to_string()));
                }
                source.push_str("(?:");
                value(
                    &mut source,
                    reserved,
                    named || expr.explode.first() == Some(&true),
                );
                if expr.explode.len() > 1 || any_explode {
                    source.push_str("(?:");
                    source.push_str(&regex::escape(&char::from(separator).to_string()));
                    value(&mut source, reserved, named || any_explode);
                    source.push(')');
                    if any_explode {
                        source.push('*');
                    } else {
                        let _ = write!(source, "{{0,{}}}", expr.explode.len() - 1);
                    }
                }
                source.push(')');
                if first.is_some() {
                    source.push(')');
                }
                source.push('?');
            }
        }
    }
    source.push('$');
    regex::Regex::new(&source).ok()
}

mod agrees_with_the_reference_regex {
    use proptest::prelude::*;

    use super::{TopicSelector, reference_regex};

    /// Templates from a small alphabet of literals and expressions, so that random topics
    /// often come close to matching.
    fn template() -> impl Strategy<Value = String> {
        let literal = prop::sample::select(vec!["a", "/", "x/", ".", "=", ",", "%41", "-", "é"]);
        let operator = prop::sample::select(vec!["", "+", "#", ".", "/", ";", "?", "&"]);
        let variables = prop::collection::vec(prop::sample::select(vec!["v", "w*", "x:2"]), 1..4);
        let expression =
            (operator, variables).prop_map(|(op, vars)| format!("{{{op}{}}}", vars.join(",")));
        let piece = prop_oneof![literal.prop_map(str::to_owned), expression];
        prop::collection::vec(piece, 1..6).prop_map(|pieces| pieces.concat())
    }

    fn topic() -> impl Strategy<Value = String> {
        let token = prop::sample::select(vec![
            "a", "b", "/", ".", ",", "=", "&", "?", ";", "#", "%41", "%", "x/", "-", "~", "!", "é",
            "v=1",
        ]);
        prop::collection::vec(token, 0..10).prop_map(|tokens| tokens.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        #[test]
        fn on_random_templates_and_topics(template in template(), topics in prop::collection::vec(topic(), 1..8)) {
            let selector = TopicSelector::new(&template);
            let oracle = reference_regex(&template).filter(|_| template.contains('{'));
            let Some(oracle) = oracle else {
                prop_assert!(!selector.is_template());
                return Ok(());
            };
            prop_assert!(selector.is_template(), "{template:?}");
            for topic in &topics {
                let expected = *topic == template || oracle.is_match(topic);
                prop_assert_eq!(selector.matches(topic), expected, "{:?} against {:?}", template, topic);
            }
        }
    }
}

#[test]
fn the_same_text_shares_one_compiled_template() {
    let a = sel("https://example.com/shared/{id}");
    let b = sel("https://example.com/shared/{id}");
    match (&a.kind, &b.kind) {
        (Kind::Template(x), Kind::Template(y)) => assert!(Arc::ptr_eq(x, y)),
        _ => panic!("both are templates"),
    }
}

#[test]
fn matching_is_linear_in_the_topic() {
    // A shape that makes a backtracking matcher explode: many optional expressions over the
    // same characters, against a long topic that finally fails. This one returns at once.
    let template = "{a}".repeat(MAX_TEMPLATE_VARIABLES);
    let selector = sel(&template);
    assert!(selector.is_template());
    let topic = format!("{}/", "a".repeat(100_000));
    assert!(!selector.matches(&topic));
    assert!(selector.matches(&"a".repeat(100_000)));
}

#[test]
fn b47_exact_matchers_are_byte_for_byte_and_url_patterns_apart_from_templates() {
    let base = Url::parse("https://hub.example.com/.well-known/mercure").expect("url");
    let exact = TopicSelector::exact("https://example.com/{id}");
    assert!(!exact.is_template() && !exact.is_pattern());
    assert!(exact.matches("https://example.com/{id}"));
    assert!(!exact.matches("https://example.com/1"));
    assert_eq!(exact.match_type(), Some(MatchType::Exact));
    assert!(TopicSelector::exact("*").is_wildcard());
    assert!(
        TopicSelector::url_pattern("*", &base)
            .expect("wildcard")
            .is_wildcard()
    );
    let pattern = TopicSelector::url_pattern("https://example.com/{id}", &base).expect("valid");
    assert!(pattern.is_pattern());
    assert!(
        pattern.matches("https://example.com/id"),
        "a URL pattern group"
    );
    assert!(!pattern.matches("https://example.com/1"));
    let template = sel("https://example.com/{id}");
    assert_ne!(pattern, template, "same text, another way of matching");
    assert_ne!(exact, template);
    assert!(TopicSelector::url_pattern("https://example.com/:id(", &base).is_none());
    assert_eq!(
        TopicSelector::url_pattern("https://example.com/:a/:b", &base)
            .expect("valid")
            .cost(),
        6
    );
}
