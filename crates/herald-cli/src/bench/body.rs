//! Undoing HTTP/1.1 framing of a response body, incrementally: a streaming SSE response comes
//! either chunked (hyper, axum) or as bytes until the connection closes (nchan). The chunk-size
//! lines are parsed by `httparse`; this only keeps the state between reads.

use anyhow::{Context as _, bail};
use bytes::{Buf as _, Bytes, BytesMut};

/// Where the decoder is within the body.
#[derive(Debug)]
enum State {
    /// Bytes as they come (no `Transfer-Encoding: chunked`).
    Identity,
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk, with this many bytes left.
    Data(u64),
    /// Expecting the CRLF that ends a chunk.
    DataEnd,
    /// The last chunk was seen.
    Done,
}

/// A response body decoder: raw bytes in, body bytes out.
#[derive(Debug)]
pub(crate) struct BodyDecoder {
    state: State,
}

impl BodyDecoder {
    /// A decoder for a body that is chunked or not.
    pub(crate) fn new(chunked: bool) -> BodyDecoder {
        let state = if chunked {
            State::Size
        } else {
            State::Identity
        };
        BodyDecoder { state }
    }

    /// Whether the body ended (last chunk).
    pub(crate) fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Takes what can be decoded out of `input` and hands each piece of body to `sink`;
    /// an incomplete chunk-size line stays in `input` for the next read.
    pub(crate) fn decode(
        &mut self,
        input: &mut BytesMut,
        mut sink: impl FnMut(Bytes),
    ) -> anyhow::Result<()> {
        loop {
            match self.state {
                State::Identity => {
                    if !input.is_empty() {
                        sink(input.split().freeze());
                    }
                    return Ok(());
                }
                State::Size => match httparse::parse_chunk_size(input) {
                    Ok(httparse::Status::Complete((used, 0))) => {
                        input.advance(used);
                        self.state = State::Done;
                    }
                    Ok(httparse::Status::Complete((used, size))) => {
                        input.advance(used);
                        self.state = State::Data(size);
                    }
                    Ok(httparse::Status::Partial) => return Ok(()),
                    Err(_) => bail!("malformed chunk size in the response body"),
                },
                State::Data(left) => {
                    if input.is_empty() {
                        return Ok(());
                    }
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(input.len());
                    sink(input.split_to(take).freeze());
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::DataEnd
                    } else {
                        State::Data(left)
                    };
                }
                State::DataEnd => {
                    if input.len() < 2 {
                        return Ok(());
                    }
                    let end = input.split_to(2);
                    if &end[..] != b"\r\n" {
                        return Err(anyhow::anyhow!("a chunk does not end with CRLF"))
                            .context("malformed chunked response body");
                    }
                    self.state = State::Size;
                }
                State::Done => {
                    input.clear();
                    return Ok(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(chunked: bool, wire: &[u8], piece: usize) -> (Vec<u8>, bool) {
        let mut decoder = BodyDecoder::new(chunked);
        let mut input = BytesMut::new();
        let mut body = Vec::new();
        for part in wire.chunks(piece) {
            input.extend_from_slice(part);
            decoder
                .decode(&mut input, |bytes| body.extend_from_slice(&bytes))
                .expect("well-formed");
        }
        (body, decoder.is_done())
    }

    #[test]
    fn chunked_bodies_decode_whatever_the_read_sizes() {
        let wire = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n";
        for piece in 1..wire.len() {
            assert_eq!(
                decode_in_pieces(true, wire, piece),
                (b"hello, world".to_vec(), true),
                "{piece}"
            );
        }
    }

    #[test]
    fn identity_bodies_pass_through_and_bad_chunks_are_errors() {
        assert_eq!(
            decode_in_pieces(false, b"data: x\n\n", 3),
            (b"data: x\n\n".to_vec(), false)
        );
        let mut input = BytesMut::from(&b"zz\r\n"[..]);
        assert!(BodyDecoder::new(true).decode(&mut input, |_| {}).is_err());
        let mut input = BytesMut::from(&b"1\r\naXX"[..]);
        assert!(BodyDecoder::new(true).decode(&mut input, |_| {}).is_err());
    }
}
