//! HTTP/2 framing (RFC 9113 §4 and §6): the frame header, the frame types and error codes the
//! hub uses, and the output queue that frames are built into and written from.
//!
//! The queue holds the bytes built here (frame headers, settings, header blocks) in one buffer
//! and the bodies' data as the shared `Bytes` they came in, so that an event's bytes are
//! written with `writev` and never copied. Both are freed whenever everything is written: an
//! idle connection holds no output buffer.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::AsyncWrite;

/// What every HTTP/2 connection starts with, from the client.
pub(crate) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The size of a frame header.
pub(super) const HEADER_LEN: usize = 9;
/// The largest frame payload anyone may send before settings say otherwise, and the largest
/// the hub accepts.
pub(super) const DEFAULT_MAX_FRAME: u32 = 16_384;
/// The flow-control window both ends start with.
pub(super) const DEFAULT_WINDOW: i64 = 65_535;
/// The largest flow-control window.
pub(super) const MAX_WINDOW: i64 = (1 << 31) - 1;

/// Frame types.
pub(super) mod kind {
    pub(in super::super) const DATA: u8 = 0x0;
    pub(in super::super) const HEADERS: u8 = 0x1;
    pub(in super::super) const PRIORITY: u8 = 0x2;
    pub(in super::super) const RST_STREAM: u8 = 0x3;
    pub(in super::super) const SETTINGS: u8 = 0x4;
    pub(in super::super) const PUSH_PROMISE: u8 = 0x5;
    pub(in super::super) const PING: u8 = 0x6;
    pub(in super::super) const GOAWAY: u8 = 0x7;
    pub(in super::super) const WINDOW_UPDATE: u8 = 0x8;
    pub(in super::super) const CONTINUATION: u8 = 0x9;
}

/// Frame flags.
pub(super) mod flag {
    pub(in super::super) const END_STREAM: u8 = 0x1;
    pub(in super::super) const ACK: u8 = 0x1;
    pub(in super::super) const END_HEADERS: u8 = 0x4;
    pub(in super::super) const PADDED: u8 = 0x8;
    pub(in super::super) const PRIORITY: u8 = 0x20;
}

/// Settings identifiers.
pub(super) mod setting {
    pub(in super::super) const HEADER_TABLE_SIZE: u16 = 0x1;
    pub(in super::super) const ENABLE_PUSH: u16 = 0x2;
    pub(in super::super) const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    pub(in super::super) const INITIAL_WINDOW_SIZE: u16 = 0x4;
    pub(in super::super) const MAX_FRAME_SIZE: u16 = 0x5;
    pub(in super::super) const MAX_HEADER_LIST_SIZE: u16 = 0x6;
}

/// Error codes (RFC 9113 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reason {
    NoError = 0x0,
    ProtocolError = 0x1,
    InternalError = 0x2,
    FlowControlError = 0x3,
    StreamClosed = 0x5,
    FrameSizeError = 0x6,
    RefusedStream = 0x7,
    CompressionError = 0x9,
    EnhanceYourCalm = 0xb,
}

/// A frame header.
#[derive(Debug, Clone, Copy)]
pub(super) struct Head {
    pub(super) len: usize,
    pub(super) kind: u8,
    pub(super) flags: u8,
    pub(super) stream: u32,
}

impl Head {
    /// Parses the first nine bytes of `bytes`.
    pub(super) fn parse(bytes: &[u8]) -> Option<Head> {
        let b = bytes.get(..HEADER_LEN)?;
        Some(Head {
            len: usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        })
    }
}

/// A segment of the output: bytes built here, or shared data.
#[derive(Debug)]
enum Segment {
    /// The next this many bytes of the built buffer.
    Built(usize),
    /// A body's data.
    Shared(Bytes),
}

/// Frames waiting to be written, in order.
#[derive(Debug, Default)]
pub(super) struct Output {
    built: Vec<u8>,
    /// How much of `built` is written.
    written: usize,
    segments: VecDeque<Segment>,
    /// Bytes waiting, all segments together.
    queued: usize,
}

impl Output {
    /// Bytes waiting to be written.
    pub(super) fn queued(&self) -> usize {
        self.queued
    }

    /// Appends built bytes.
    fn extend(&mut self, bytes: &[u8]) {
        self.built.extend_from_slice(bytes);
        self.queued += bytes.len();
        match self.segments.back_mut() {
            Some(Segment::Built(len)) => *len += bytes.len(),
            _ => self.segments.push_back(Segment::Built(bytes.len())),
        }
    }

    /// Appends a frame header.
    pub(super) fn head(&mut self, len: usize, kind: u8, flags: u8, stream: u32) {
        let len = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
        let mut head = [0u8; HEADER_LEN];
        head[..3].copy_from_slice(&len[1..]);
        head[3] = kind;
        head[4] = flags;
        head[5..].copy_from_slice(&stream.to_be_bytes());
        self.extend(&head);
    }

    /// Appends a whole frame whose payload is built here.
    pub(super) fn frame(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        self.head(payload.len(), kind, flags, stream);
        self.extend(payload);
    }

    /// Appends a DATA frame carrying `data` (at most the peer's frame size).
    pub(super) fn data(&mut self, stream: u32, data: Bytes, end: bool) {
        let flags = if end { flag::END_STREAM } else { 0 };
        self.head(data.len(), kind::DATA, flags, stream);
        if !data.is_empty() {
            self.queued += data.len();
            self.segments.push_back(Segment::Shared(data));
        }
    }

    /// Appends a header block as HEADERS and CONTINUATION frames of at most `max_frame` bytes.
    pub(super) fn headers(
        &mut self,
        stream: u32,
        block: &[u8],
        end_stream: bool,
        max_frame: usize,
    ) {
        let mut chunks = block.chunks(max_frame.max(1)).peekable();
        let mut kind = kind::HEADERS;
        let mut flags = if end_stream { flag::END_STREAM } else { 0 };
        loop {
            let chunk = chunks.next().unwrap_or_default();
            if chunks.peek().is_none() {
                flags |= flag::END_HEADERS;
            }
            self.frame(kind, flags, stream, chunk);
            if flags & flag::END_HEADERS != 0 {
                return;
            }
            kind = kind::CONTINUATION;
            flags = 0;
        }
    }

    /// Appends a RST_STREAM frame.
    pub(super) fn reset(&mut self, stream: u32, reason: Reason) {
        self.frame(kind::RST_STREAM, 0, stream, &(reason as u32).to_be_bytes());
    }

    /// Appends a GOAWAY frame.
    pub(super) fn goaway(&mut self, last_stream: u32, reason: Reason) {
        let mut payload = [0u8; 8];
        payload[..4].copy_from_slice(&last_stream.to_be_bytes());
        payload[4..].copy_from_slice(&(reason as u32).to_be_bytes());
        self.frame(kind::GOAWAY, 0, 0, &payload);
    }

    /// Appends a WINDOW_UPDATE frame.
    pub(super) fn window_update(&mut self, stream: u32, increment: u32) {
        self.frame(kind::WINDOW_UPDATE, 0, stream, &increment.to_be_bytes());
    }

    /// Appends a SETTINGS frame with these settings.
    pub(super) fn settings(&mut self, settings: &[(u16, u32)]) {
        let mut payload = Vec::with_capacity(settings.len() * 6);
        for (id, value) in settings {
            payload.extend_from_slice(&id.to_be_bytes());
            payload.extend_from_slice(&value.to_be_bytes());
        }
        self.frame(kind::SETTINGS, 0, 0, &payload);
    }

    /// Writes what is queued until it is all written or the socket is full; frees the buffers
    /// once empty.
    pub(super) fn poll_write<I: AsyncWrite + Unpin>(
        &mut self,
        io: &mut I,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        while self.queued > 0 {
            let mut slices = [IoSlice::new(&[]); 32];
            let mut count = 0;
            let mut offset = self.written;
            for segment in &self.segments {
                if count == slices.len() {
                    break;
                }
                slices[count] = match segment {
                    Segment::Built(len) => {
                        let slice = IoSlice::new(&self.built[offset..offset + len]);
                        offset += len;
                        slice
                    }
                    Segment::Shared(bytes) => IoSlice::new(bytes),
                };
                count += 1;
            }
            let written = match Pin::new(&mut *io).poll_write_vectored(cx, &slices[..count]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => return Poll::Pending,
            };
            self.advance(written);
        }
        // Everything is written: keep no buffer while idle.
        self.built = Vec::new();
        self.segments = VecDeque::new();
        self.written = 0;
        Poll::Ready(Ok(()))
    }

    fn advance(&mut self, mut written: usize) {
        self.queued -= written;
        while written > 0 {
            let Some(segment) = self.segments.front_mut() else {
                return;
            };
            match segment {
                Segment::Built(len) => {
                    let take = written.min(*len);
                    *len -= take;
                    self.written += take;
                    written -= take;
                    if *len == 0 {
                        self.segments.pop_front();
                    }
                }
                Segment::Shared(bytes) => {
                    let take = written.min(bytes.len());
                    bytes.advance(take);
                    written -= take;
                    if bytes.is_empty() {
                        self.segments.pop_front();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `max` bytes per write.
    struct Trickle {
        got: Vec<u8>,
        max: usize,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.max);
            self.got.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }
        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let mut left = self.max;
            let mut n = 0;
            for buf in bufs {
                let take = buf.len().min(left);
                self.got.extend_from_slice(&buf[..take]);
                (left, n) = (left - take, n + take);
            }
            Poll::Ready(Ok(n))
        }
        fn is_write_vectored(&self) -> bool {
            true
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn frames_are_written_in_order_whatever_the_write_sizes() {
        for max in [1, 2, 5, 9, 13, 100] {
            let mut out = Output::default();
            out.window_update(0, 1000);
            out.data(1, Bytes::from_static(b"hello"), false);
            out.headers(3, &[0x88; 20], true, 8);
            out.data(1, Bytes::new(), true);
            let mut io = Trickle {
                got: Vec::new(),
                max,
            };
            let waker = futures::task::noop_waker();
            let mut cx = Context::from_waker(&waker);
            assert!(out.poll_write(&mut io, &mut cx).is_ready());
            assert_eq!(out.queued(), 0);
            let mut expected = vec![0, 0, 4, 8, 0, 0, 0, 0, 0, 0, 0, 3, 0xe8];
            expected.extend([0, 0, 5, 0, 0, 0, 0, 0, 1]);
            expected.extend(b"hello");
            // 20 bytes of block in frames of 8: HEADERS, CONTINUATION, CONTINUATION.
            expected.extend([0, 0, 8, 1, 1, 0, 0, 0, 3]);
            expected.extend([0x88; 8]);
            expected.extend([0, 0, 8, 9, 0, 0, 0, 0, 3]);
            expected.extend([0x88; 8]);
            expected.extend([0, 0, 4, 9, 4, 0, 0, 0, 3]);
            expected.extend([0x88; 4]);
            expected.extend([0, 0, 0, 0, 1, 0, 0, 0, 1]);
            assert_eq!(io.got, expected, "writes of {max}");
        }
    }
}
