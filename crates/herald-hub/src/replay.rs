//! Turning a history [`Snapshot`] into what one resuming subscriber is sent, outside every lock:
//! the stored updates after its `Last-Event-ID` that it selects and may see, and the
//! `Last-Event-ID` response header.
//!
//! Filtering runs in slices that yield to the other tasks in between, so that a subscription
//! with many selectors over a long history neither holds up publishing (the snapshot was copied
//! out under the transport's lock, which is released) nor starves the other connections of its
//! worker thread. Its cost is bounded by the history's size times the subscription's selector
//! budget.
//!
//! An ID the subscriber may not see is treated as unknown: the answer must not confirm that a
//! private update with that ID exists.

use std::collections::HashSet;
use std::sync::Arc;

use crate::fanout::Subscriber;
use crate::protocol::Generation;
use crate::topic::TopicSelector;
use crate::transport::{Since, Snapshot, Start, Transport, TransportError};
use crate::update::Record;

/// Records filtered between two yields to the scheduler.
const SLICE: usize = 256;

/// What a resuming subscriber is sent from history.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    /// The stored updates to send, oldest first.
    pub(crate) records: Vec<Arc<Record>>,
    /// The position of the newest update dispatched when history was read: live updates at or
    /// before it were part of this read.
    pub(crate) up_to: u64,
    /// The `Last-Event-ID` response header: the requested ID when known (and visible), else the
    /// newest stored ID the subscriber may see, else `earliest`.
    pub(crate) last_event_id: String,
    /// The requested ID was not in history, or not one the subscriber may see.
    pub(crate) not_found: bool,
}

/// A subscriber's selectors prepared for matching many records: exact topics in a set.
struct Matcher<'a> {
    wildcard: bool,
    exact: HashSet<&'a str>,
    templates: Vec<&'a TopicSelector>,
}

impl<'a> Matcher<'a> {
    fn new(selectors: &'a [TopicSelector]) -> Matcher<'a> {
        let mut matcher = Matcher {
            wildcard: false,
            exact: HashSet::new(),
            templates: Vec::new(),
        };
        for selector in selectors {
            if selector.is_wildcard() {
                matcher.wildcard = true;
            } else if selector.is_pattern() {
                matcher.templates.push(selector);
            } else {
                matcher.exact.insert(selector.as_str());
            }
        }
        matcher
    }

    fn matches(&self, topics: &[String]) -> bool {
        self.wildcard
            || topics.iter().any(|topic| {
                self.exact.contains(topic.as_str())
                    || self.templates.iter().any(|t| t.matches(topic))
            })
    }
}

/// The subscriber's view of records: what it selects, and what it may see.
struct View<'a> {
    selected: Matcher<'a>,
    unlocked: Matcher<'a>,
    generation: Generation,
}

impl<'a> View<'a> {
    fn new(subscriber: &'a Subscriber) -> View<'a> {
        View {
            selected: Matcher::new(&subscriber.selectors),
            unlocked: Matcher::new(&subscriber.private_selectors),
            generation: subscriber.generation,
        }
    }

    fn may_see(&self, record: &Record) -> bool {
        !record.is_private()
            || (self.unlocked.matches(record.topics())
                && crate::subscriptions::same_generation(record.topics(), self.generation))
    }

    fn wants(&self, record: &Record) -> bool {
        self.selected.matches(record.topics()) && self.may_see(record)
    }
}

/// Reads history from `since` for `subscriber`.
pub(crate) async fn replay(
    transport: &dyn Transport,
    since: Since,
    subscriber: &Subscriber,
) -> Result<Replay, TransportError> {
    let Snapshot {
        start,
        records,
        up_to,
    } = transport.snapshot(since).await?;
    let view = View::new(subscriber);
    match start {
        Start::Earliest => Ok(Replay {
            records: filtered(records, &view).await,
            up_to,
            last_event_id: "earliest".to_owned(),
            not_found: false,
        }),
        Start::After(found) if view.may_see(&found) => Ok(Replay {
            records: filtered(records, &view).await,
            up_to,
            last_event_id: found.id().to_owned(),
            not_found: false,
        }),
        Start::After(_) => {
            // Answered as an unknown ID: the newest update it may see up to this read.
            let all = transport.snapshot(Since::Earliest).await?.records;
            let last_event_id = newest_visible(&all, up_to, &view).await;
            Ok(Replay {
                records: Vec::new(),
                up_to,
                last_event_id,
                not_found: true,
            })
        }
        Start::NotFound => Ok(Replay {
            last_event_id: newest_visible(&records, up_to, &view).await,
            records: Vec::new(),
            up_to,
            not_found: true,
        }),
    }
}

/// The records `view` wants, in order.
async fn filtered(records: Vec<Arc<Record>>, view: &View<'_>) -> Vec<Arc<Record>> {
    let mut kept = Vec::new();
    for slice in records.chunks(SLICE) {
        kept.extend(slice.iter().filter(|r| view.wants(r)).cloned());
        if slice.len() == SLICE {
            tokio::task::yield_now().await;
        }
    }
    kept
}

/// The ID of the newest stored update at or before `up_to` that `view` selects and may see,
/// or `earliest`.
async fn newest_visible(records: &[Arc<Record>], up_to: u64, view: &View<'_>) -> String {
    for slice in records.rchunks(SLICE) {
        let newest = slice.iter().rev().find(|r| r.seq <= up_to && view.wants(r));
        if let Some(record) = newest {
            return record.id().to_owned();
        }
        tokio::task::yield_now().await;
    }
    "earliest".to_owned()
}
