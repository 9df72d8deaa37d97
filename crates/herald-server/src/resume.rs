//! Replaying history and then continuing live, with no gap and no duplicate at the seam.
//!
//! The recipe: subscribe to live items first, then read history up to the newest stored item,
//! then skip every live item whose position is at or before the last replayed one. An item
//! stored while history was being read shows up in both and is sent once; an item stored after
//! the live subscription started is never missed.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

pin_project_lite::pin_project! {
    /// Yields the replayed `history`, then the `live` items positioned after `replayed_up_to`.
    ///
    /// `position` gives each item's place in the total order of the source (a sequence number).
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use futures::StreamExt;
    /// use herald_server::ReplayThenLive;
    ///
    /// // Live subscription taken first: it already holds 3, which history also returned.
    /// let live = futures::stream::iter(vec![3u64, 4, 5]);
    /// let history = vec![2u64, 3];
    /// let all: Vec<u64> = ReplayThenLive::new(history, 3, live, |n: &u64| *n).collect().await;
    /// assert_eq!(all, [2, 3, 4, 5]);
    /// # });
    /// ```
    pub struct ReplayThenLive<T, L, F> {
        history: VecDeque<T>,
        replayed_up_to: u64,
        #[pin]
        live: L,
        position: F,
    }
}

impl<T, L, F> ReplayThenLive<T, L, F>
where
    L: Stream<Item = T>,
    F: FnMut(&T) -> u64,
{
    /// `replayed_up_to` is the position of the newest item in the source when history was read
    /// (not only of the last item replayed, which may have been filtered out).
    pub fn new(
        history: impl IntoIterator<Item = T>,
        replayed_up_to: u64,
        live: L,
        position: F,
    ) -> Self {
        ReplayThenLive {
            history: history.into_iter().collect(),
            replayed_up_to,
            live,
            position,
        }
    }
}

impl<T, L, F> std::fmt::Debug for ReplayThenLive<T, L, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayThenLive")
            .field("pending_history", &self.history.len())
            .field("replayed_up_to", &self.replayed_up_to)
            .finish_non_exhaustive()
    }
}

impl<T, L, F> Stream for ReplayThenLive<T, L, F>
where
    L: Stream<Item = T>,
    F: FnMut(&T) -> u64,
{
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut this = self.project();
        if let Some(item) = this.history.pop_front() {
            return Poll::Ready(Some(item));
        }
        loop {
            match this.live.as_mut().poll_next(cx) {
                Poll::Ready(Some(item)) if (this.position)(&item) <= *this.replayed_up_to => {}
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn live_items_before_the_seam_are_skipped_once() {
        let live = futures::stream::iter(vec![1u64, 2, 3, 4]);
        let out: Vec<u64> = ReplayThenLive::new(Vec::new(), 2, live, |n: &u64| *n)
            .collect()
            .await;
        assert_eq!(out, [3, 4]);
    }
}
