//! RFC 7541 as the hub decodes requests: every decoding error is a connection error of type
//! COMPRESSION_ERROR (RFC 9113 §4.3), the table's size is what the hub's settings allow, and
//! the dynamic table stays in step across requests.

use crate::common::start;
use crate::raw::*;

fn anonymous(config: &mut herald_hub::HubConfig) {
    config.anonymous = true;
}

#[tokio::test]
async fn undecodable_blocks_are_compression_errors() {
    let hub = start(anonymous).await;
    let get = block(&get("/"));
    let after = |bytes: &[u8]| [get.as_slice(), bytes].concat();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("index 0", after(&[0x80])),
        ("an index past both tables", after(&[0xc6])),
        ("a name index past both tables", after(&[0x7f, 0x07, 0x00])),
        ("a string longer than the block", after(&[0x00, 0x05, b'a'])),
        (
            "an integer past 2^32",
            after(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
        ),
        // x-test: a Huffman value padded by more than 7 bits, by zeros, holding EOS.
        (
            "Huffman padding longer than 7 bits",
            after(b"\x00\x85\xf2\xb2\x4a\x84\xff\x84\x49\x50\x9f\xff"),
        ),
        (
            "Huffman padding not of ones",
            after(b"\x00\x85\xf2\xb2\x4a\x84\xff\x83\x49\x50\x90"),
        ),
        (
            "EOS in a Huffman string",
            after(b"\x00\x85\xf2\xb2\x4a\x84\xff\x87\x49\x51\xff\xff\xff\xfa\x7f"),
        ),
        // The hub's SETTINGS_HEADER_TABLE_SIZE is 0, acknowledged in the handshake.
        (
            "a size update past the setting",
            [&[0x21][..], &get].concat(),
        ),
        ("a size update at the end of a block", after(&[0x20])),
    ];
    for (what, bytes) in cases {
        let mut conn = Conn::h2c(hub.addr, &[]).await;
        conn.write(HEADERS, END_HEADERS | END_STREAM, 1, &bytes)
            .await;
        eprintln!("{what}");
        conn.expect_goaway(COMPRESSION_ERROR).await;
    }
}

#[tokio::test]
async fn representations_and_the_dynamic_table_are_decoded() {
    let hub = start(anonymous).await;
    let mut conn = Conn::h2c(hub.addr, &[]).await;
    // Static indexes and each literal kind, Huffman-coded or not (the Huffman strings are
    // RFC 7541's examples C.4.2 and C.4.3).
    let mut first = vec![0x82, 0x86, 0x41]; // GET, http, :authority (indexed name)
    string(&mut first, b"localhost");
    literal(&mut first, 0x00, b":path", b"/openapi.yaml");
    literal(&mut first, 0x10, b"x-never", b"indexed");
    // cache-control (static 24): no-cache, Huffman-coded, without indexing.
    first.extend(b"\x0f\x09\x86\xa8\xeb\x10\x64\x9c\xbf");
    // custom-key: custom-value, both Huffman-coded, new name, without indexing.
    first.extend(b"\x00\x88\x25\xa8\x49\xe9\x5b\xa9\x7d\x7f");
    first.extend(b"\x89\x25\xa8\x49\xe9\x5b\xb8\xe8\xb4\xbf");
    conn.write(HEADERS, END_HEADERS | END_STREAM, 1, &first)
        .await;
    assert_eq!(conn.expect_status(1).await, 200);
    // An encoder that ignores the setting and indexes anyway, without a size update, is still
    // understood: the table is not emptied behind its back.
    let mut indexing = vec![0x82, 0x86];
    literal(&mut indexing, 0x40, b":path", b"/openapi.yaml");
    literal(&mut indexing, 0x40, b"x-kept", b"in the table");
    conn.write(HEADERS, END_HEADERS | END_STREAM, 3, &indexing)
        .await;
    assert_eq!(conn.expect_status(3).await, 200);
    // Index 62 is the newest entry (x-kept), 63 the one before (:path), 64 :authority.
    conn.write(
        HEADERS,
        END_HEADERS | END_STREAM,
        5,
        &[0x82, 0x86, 0xbf, 0xbe],
    )
    .await;
    assert_eq!(conn.expect_status(5).await, 200);
}

#[tokio::test]
async fn a_compliant_encoder_empties_the_table_and_keeps_it_empty() {
    let hub = start(anonymous).await;
    let mut conn = Conn::h2c(hub.addr, &[]).await;
    // Size update to 0 (as the setting requires), then a field "with incremental indexing"
    // that a table of size 0 cannot keep: referring to it is an error.
    let mut first = vec![0x20, 0x82, 0x86];
    literal(&mut first, 0x40, b":path", b"/openapi.yaml");
    conn.write(HEADERS, END_HEADERS | END_STREAM, 1, &first)
        .await;
    assert_eq!(conn.expect_status(1).await, 200);
    conn.write(HEADERS, END_HEADERS | END_STREAM, 3, &[0x82, 0x86, 0xbe])
        .await;
    conn.expect_goaway(COMPRESSION_ERROR).await;
}
