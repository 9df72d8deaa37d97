//! RFC 9113 §8: malformed requests (pseudo-headers, field names and values, connection-specific
//! fields, content-length, trailers) are stream errors that leave the connection serving, and
//! `Expect: 100-continue` is answered once the publisher is authorized.

use crate::common::{publisher, start};
use crate::raw::*;

const HUB: &str = "/.well-known/mercure";

/// The fields of a publish of a form, authorized with `token`.
fn publish(token: &str) -> Vec<(&'static str, String)> {
    vec![
        (":method", "POST".into()),
        (":scheme", "http".into()),
        (":authority", "localhost".into()),
        (":path", HUB.into()),
        ("authorization", format!("Bearer {token}")),
        ("content-type", "application/x-www-form-urlencoded".into()),
    ]
}

fn fields<'a>(list: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    list.iter().map(|(n, v)| (*n, v.as_str())).collect()
}

#[tokio::test]
async fn malformed_requests_are_stream_errors_and_the_connection_goes_on() {
    let hub = start(|config| config.anonymous = true).await;
    let mut conn = Conn::h2c(hub.addr, &[]).await;
    let base = get("/openapi.yaml");
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut list = base.clone();
        list.extend_from_slice(extra);
        list
    };
    let without = |name: &str| -> Vec<(&str, &str)> {
        base.iter().copied().filter(|(n, _)| *n != name).collect()
    };
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("an uppercase name", with(&[("Accept", "*/*")])),
        ("connection", with(&[("connection", "keep-alive")])),
        ("keep-alive", with(&[("keep-alive", "timeout=5")])),
        (
            "proxy-connection",
            with(&[("proxy-connection", "keep-alive")]),
        ),
        (
            "transfer-encoding",
            with(&[("transfer-encoding", "chunked")]),
        ),
        ("upgrade", with(&[("upgrade", "h2c")])),
        ("te other than trailers", with(&[("te", "gzip")])),
        ("a value with a leading space", with(&[("accept", " */*")])),
        ("a value with a trailing tab", with(&[("accept", "*/*\t")])),
        ("a value with a line feed", with(&[("accept", "a\nb")])),
        ("an empty name", with(&[("", "x")])),
        ("an unknown pseudo-header", with(&[(":foo", "bar")])),
        ("a response pseudo-header", with(&[(":status", "200")])),
        (
            "a pseudo-header after a field",
            [("accept", "*/*"), (":method", "GET")]
                .into_iter()
                .chain(without(":method"))
                .collect(),
        ),
        (
            "an empty :path",
            [without(":path"), vec![(":path", "")]].concat(),
        ),
        ("no :method", without(":method")),
        ("no :scheme", without(":scheme")),
        ("no :path", without(":path")),
        (
            "a relative :path",
            [without(":path"), vec![(":path", "openapi.yaml")]].concat(),
        ),
        (
            "userinfo in :authority",
            [
                without(":authority"),
                vec![(":authority", "user@localhost")],
            ]
            .concat(),
        ),
        ("two :method", with(&[(":method", "GET")])),
        ("two :scheme", with(&[(":scheme", "http")])),
        ("two :path", with(&[(":path", "/")])),
        ("two :authority", with(&[(":authority", "localhost")])),
    ];
    let mut stream = 1;
    for (what, list) in cases {
        conn.request(stream, &list, true).await;
        let frame = loop {
            let frame = conn.frame().await;
            if frame.stream == stream {
                break frame;
            }
        };
        assert_eq!(
            (frame.kind, frame.code()),
            (RST_STREAM, PROTOCOL_ERROR),
            "{what}: {frame:?}"
        );
        stream += 2;
    }
    // `te: trailers` is allowed, and the connection still serves.
    conn.request(stream, &with(&[("te", "trailers")]), true)
        .await;
    assert_eq!(conn.expect_status(stream).await, 200);
}

#[tokio::test]
async fn a_body_that_differs_from_its_content_length_is_a_stream_error() {
    let hub = start(|_| {}).await;
    let mut conn = Conn::h2c(hub.addr, &[]).await;
    let token = publisher();
    let body = b"topic=t&data=x";
    let length = |n: usize| {
        let mut list = publish(&token);
        list.push(("content-length", n.to_string()));
        list
    };
    // Longer than announced, in one frame or over two; shorter, ended by DATA or by trailers.
    conn.request(1, &fields(&length(1)), false).await;
    conn.write(DATA, END_STREAM, 1, body).await;
    conn.expect_reset(1, PROTOCOL_ERROR).await;
    conn.request(3, &fields(&length(10)), false).await;
    conn.write(DATA, 0, 3, &body[..8]).await;
    conn.write(DATA, END_STREAM, 3, &body[8..]).await;
    conn.expect_reset(3, PROTOCOL_ERROR).await;
    conn.request(5, &fields(&length(20)), false).await;
    conn.write(DATA, END_STREAM, 5, body).await;
    conn.expect_reset(5, PROTOCOL_ERROR).await;
    conn.request(7, &fields(&length(20)), false).await;
    conn.write(DATA, 0, 7, body).await;
    conn.request(7, &[("x-trailer", "1")], true).await;
    conn.expect_reset(7, PROTOCOL_ERROR).await;
    // A length with no body at all.
    conn.request(9, &fields(&length(3)), true).await;
    conn.expect_reset(9, PROTOCOL_ERROR).await;
    // The exact length is served.
    conn.request(11, &fields(&length(body.len())), false).await;
    conn.write(DATA, END_STREAM, 11, body).await;
    assert_eq!(conn.expect_status(11).await, 200);
}

#[tokio::test]
async fn trailers_end_a_request_and_must_be_regular_fields_with_end_stream() {
    let hub = start(|_| {}).await;
    let mut conn = Conn::h2c(hub.addr, &[]).await;
    let token = publisher();
    let list = publish(&token);
    let body = b"topic=t&data=x";
    // Well-formed trailers end the body: the publish is served.
    conn.request(1, &fields(&list), false).await;
    conn.write(DATA, 0, 1, body).await;
    conn.request(1, &[("x-checksum", "1")], true).await;
    assert_eq!(conn.expect_status(1).await, 200);
    // A pseudo-header in trailers; trailers without END_STREAM (§8.1).
    conn.request(3, &fields(&list), false).await;
    conn.write(DATA, 0, 3, body).await;
    conn.request(3, &[(":method", "POST")], true).await;
    conn.expect_reset(3, PROTOCOL_ERROR).await;
    conn.request(5, &fields(&list), false).await;
    conn.write(DATA, 0, 5, body).await;
    conn.request(5, &[("x-checksum", "1")], false).await;
    conn.expect_reset(5, PROTOCOL_ERROR).await;
    conn.expect_alive().await;
}

#[tokio::test]
async fn expect_100_continue_is_answered_once_the_publisher_is_authorized() {
    let hub = start(|_| {}).await;
    let mut conn = Conn::h2c(hub.addr, &[]).await;
    let body = b"topic=t&data=continued";
    let mut list = publish(&publisher());
    list.push(("expect", "100-continue".into()));
    conn.request(1, &fields(&list), false).await;
    let (head, end) = conn.expect_headers(1).await;
    assert_eq!((status(&head), end), (100, false), "{head:?}");
    conn.write(DATA, END_STREAM, 1, body).await;
    assert_eq!(conn.expect_status(1).await, 200);
    // Not authorized: the final answer, and no 100 before it.
    let wrong = herald_hub::dev::hs256_token(
        "not the hub's key, not the hub's key!",
        serde_json::json!({"publish": ["*"]}),
        None,
    )
    .expect("token");
    let mut list = publish(&wrong);
    list.push(("expect", "100-continue".into()));
    conn.request(3, &fields(&list), false).await;
    let (head, _) = conn.expect_headers(3).await;
    assert_eq!(status(&head), 401, "{head:?}");
}
