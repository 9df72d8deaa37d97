//! A request body arriving in DATA frames: the connection pushes the frames' data in, the
//! handler reads it as an `http_body::Body`, and what the handler has read is given back to the
//! client as flow-control window. A client can therefore make the hub hold no more than the
//! window it was granted, whatever the handler does.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

/// Why a request body ended early.
#[derive(Debug, thiserror::Error)]
#[error("the request body ended early: {0}")]
pub(super) struct BodyError(pub(super) &'static str);

#[derive(Debug, Default)]
struct State {
    chunks: VecDeque<Bytes>,
    /// The client sent the body's end.
    ended: bool,
    /// The stream was reset: the body fails.
    failed: Option<&'static str>,
    /// Bytes read by the handler and not yet given back as window.
    consumed: usize,
    reader: Option<Waker>,
    connection: Option<Waker>,
    /// The request asked for `100 Continue` before sending its body, and the handler has not
    /// read it yet.
    continue_wanted: bool,
    /// The handler started reading: `100 Continue` is to be sent.
    continue_due: bool,
}

/// The connection's side of a request body.
#[derive(Debug, Clone)]
pub(super) struct Inbound(Arc<Mutex<State>>);

impl Inbound {
    /// A body of `length` bytes if the request said so, and its connection's side;
    /// `continues` when the request asked for `100 Continue`.
    pub(super) fn new(length: Option<u64>, continues: bool) -> (Inbound, RequestBody) {
        let state = Arc::new(Mutex::new(State {
            continue_wanted: continues,
            ..State::default()
        }));
        (Inbound(Arc::clone(&state)), RequestBody { state, length })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the handler dropped the body (what arrives is then discarded).
    pub(super) fn abandoned(&self) -> bool {
        Arc::strong_count(&self.0) == 1
    }

    /// Passes data on to the handler.
    pub(super) fn push(&self, data: Bytes) {
        let mut state = self.lock();
        state.chunks.push_back(data);
        wake(state.reader.take());
    }

    /// The client sent the end of the body.
    pub(super) fn end(&self) {
        let mut state = self.lock();
        state.ended = true;
        wake(state.reader.take());
    }

    /// The body will not be complete.
    pub(super) fn fail(&self, why: &'static str) {
        let mut state = self.lock();
        state.failed = Some(why);
        wake(state.reader.take());
    }

    /// Whether `100 Continue` is to be sent now (once: the handler started reading a body
    /// that the client holds back until told to send it).
    pub(super) fn take_continue(&self) -> bool {
        std::mem::take(&mut self.lock().continue_due)
    }

    /// Takes the count of bytes the handler read since the last call, and asks to be woken
    /// (through `cx`) when it reads more.
    pub(super) fn take_consumed(&self, cx: &Context<'_>) -> usize {
        let mut state = self.lock();
        if !state
            .connection
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            state.connection = Some(cx.waker().clone());
        }
        std::mem::take(&mut state.consumed)
    }
}

fn wake(waker: Option<Waker>) {
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// The handler's side of a request body.
#[derive(Debug)]
pub(super) struct RequestBody {
    state: Arc<Mutex<State>>,
    length: Option<u64>,
}

impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if std::mem::take(&mut state.continue_wanted) && state.chunks.is_empty() && !state.ended {
            // Reading is what authorizes the body: only now is the client told to send it.
            state.continue_due = true;
            wake(state.connection.take());
        }
        if let Some(chunk) = state.chunks.pop_front() {
            state.consumed += chunk.len();
            wake(state.connection.take());
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        if let Some(why) = state.failed {
            return Poll::Ready(Some(Err(BodyError(why))));
        }
        if state.ended {
            return Poll::Ready(None);
        }
        state.reader = Some(cx.waker().clone());
        Poll::Pending
    }

    fn size_hint(&self) -> SizeHint {
        self.length
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;
    use http_body_util::BodyExt as _;

    #[tokio::test]
    async fn the_handler_reads_what_was_pushed_and_its_reads_are_counted() {
        let (inbound, body) = Inbound::new(Some(6), false);
        inbound.push(Bytes::from_static(b"abc"));
        inbound.push(Bytes::from_static(b"def"));
        inbound.end();
        assert!(!inbound.abandoned());
        let collected = body.collect().await.expect("complete").to_bytes();
        assert_eq!(&collected[..], b"abcdef");
        let waker = futures::task::noop_waker();
        assert_eq!(inbound.take_consumed(&Context::from_waker(&waker)), 6);
        assert!(inbound.abandoned(), "the body was dropped");
    }

    #[tokio::test]
    async fn continue_is_due_once_the_handler_reads_a_body_not_yet_sent() {
        let (inbound, mut body) = Inbound::new(Some(3), true);
        assert!(!inbound.take_continue(), "not before the handler reads");
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut body).poll_frame(&mut cx).is_pending());
        assert!(inbound.take_continue());
        assert!(!inbound.take_continue(), "once");
        inbound.push(Bytes::from_static(b"abc"));
        inbound.end();
        let collected = body.collect().await.expect("complete").to_bytes();
        assert_eq!(&collected[..], b"abc");
        assert!(!inbound.take_continue());
    }

    #[tokio::test]
    async fn a_reset_stream_fails_the_body() {
        let (inbound, body) = Inbound::new(None, false);
        inbound.push(Bytes::from_static(b"abc"));
        inbound.fail("the client reset the stream");
        assert!(body.collect().await.is_err());
    }
}
