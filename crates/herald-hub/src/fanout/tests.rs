//! The fan-out's routing, queues, ticks and departures, without sockets.

use super::*;
use std::task::Poll;

use crate::update::Update;

fn subscriber(selectors: &[&str], private: &[&str]) -> Subscriber {
    Subscriber::new(
        "urn:uuid:test".into(),
        selectors.iter().map(|s| TopicSelector::new(s)).collect(),
        private.iter().map(|s| TopicSelector::new(s)).collect(),
    )
}

fn record(seq: u64, topics: &[&str], private: bool) -> Arc<Record> {
    let mut update = Update::new(topics.iter().map(|t| t.to_string()).collect(), "d");
    update.private = private;
    Arc::new(Record::new(seq, update).expect("record"))
}

/// The next queued update's position: `Some(Some(seq))`, `Some(None)` once closed and
/// drained, `None` while empty.
fn next(queue: &mut Queue) -> Option<Option<u64>> {
    match queue.try_recv() {
        Poll::Ready(record) => Some(record.map(|r| r.seq)),
        Poll::Pending => None,
    }
}

#[test]
fn routes_by_exact_template_wildcard_and_alternate_topics() {
    let fanout = Arc::new(Fanout::new(8));
    let mut exact = fanout.register(subscriber(&["a"], &[]));
    let mut template = fanout.register(subscriber(&["https://e.com/b/{id}"], &[]));
    let mut all = fanout.register(subscriber(&["*"], &[]));
    fanout.deliver(&record(1, &["x", "a"], false));
    fanout.deliver(&record(2, &["https://e.com/b/1"], false));
    fanout.deliver(&record(3, &["a"], true));
    assert_eq!(next(&mut exact.queue), Some(Some(1)), "alternate topic");
    assert_eq!(next(&mut exact.queue), None, "private update withheld");
    assert_eq!(next(&mut template.queue), Some(Some(2)));
    assert_eq!(next(&mut all.queue), Some(Some(1)));
    assert_eq!(next(&mut all.queue), Some(Some(2)));
    assert_eq!(next(&mut all.queue), None);
}

#[test]
fn a_subscriber_matching_several_ways_gets_each_update_once() {
    let fanout = Arc::new(Fanout::new(8));
    let mut twice = fanout.register(subscriber(&["a", "a", "{x}", "*"], &[]));
    fanout.deliver(&record(1, &["a", "b"], false));
    assert_eq!(next(&mut twice.queue), Some(Some(1)));
    assert_eq!(next(&mut twice.queue), None);
    drop(twice);
    assert!(fanout.read().exact.is_empty() && fanout.read().patterns.is_empty());
}

#[test]
fn leaving_a_crowded_topic_keeps_the_others_and_reuses_the_place() {
    let fanout = Arc::new(Fanout::new(8));
    let mut all: Vec<Registration> = (0..5)
        .map(|_| fanout.register(subscriber(&["a"], &[])))
        .collect();
    let gone = all.remove(2);
    drop(gone);
    assert_eq!(fanout.read().exact["a"].len(), 4);
    all.push(fanout.register(subscriber(&["a"], &[])));
    let highest = fanout.read().exact["a"]
        .iter()
        .map(|(place, _)| place)
        .max();
    assert_eq!(highest, Some(4), "the freed place is reused");
    fanout.deliver(&record(1, &["a"], false));
    for registration in &mut all {
        assert_eq!(next(&mut registration.queue), Some(Some(1)));
    }
    all.clear();
    assert!(fanout.read().exact.is_empty());
}

#[test]
fn d22_full_queue_disconnects_instead_of_blocking() {
    let fanout = Arc::new(Fanout::new(2));
    let mut slow = fanout.register(subscriber(&["a"], &[]));
    for seq in 1..=3 {
        fanout.deliver(&record(seq, &["a"], false));
    }
    assert_eq!(fanout.len(), 0, "removed when its queue overflowed");
    assert_eq!(next(&mut slow.queue), Some(Some(1)));
    assert_eq!(next(&mut slow.queue), Some(Some(2)));
    assert_eq!(next(&mut slow.queue), Some(None), "closed once drained");
}

#[test]
fn close_all_ends_every_queue_after_what_it_holds() {
    let fanout = Arc::new(Fanout::new(8));
    let mut one = fanout.register(subscriber(&["a"], &[]));
    fanout.deliver(&record(1, &["a"], false));
    fanout.close_all();
    assert_eq!(next(&mut one.queue), Some(Some(1)));
    assert_eq!(next(&mut one.queue), Some(None));
}

/// A waker that counts its wake-ups.
struct Count(std::sync::atomic::AtomicUsize);

impl std::task::Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_burst_wakes_the_reader_once_and_is_read_in_one_go() {
    let fanout = Arc::new(Fanout::new(8));
    let mut reader = fanout.register(subscriber(&["a"], &[]));
    let count = Arc::new(Count(Default::default()));
    let waker = std::task::Waker::from(count.clone());
    let mut cx = std::task::Context::from_waker(&waker);
    assert!(reader.queue.poll_recv(&mut cx).is_pending());
    for seq in 1..=3 {
        fanout.deliver(&record(seq, &["a"], false));
    }
    assert_eq!(
        count.0.load(Ordering::SeqCst),
        1,
        "one wake-up for the burst"
    );
    for seq in 1..=3 {
        match reader.queue.poll_recv(&mut cx) {
            Poll::Ready(Some(record)) => assert_eq!(record.seq, seq),
            other => panic!("expected {seq}, got {other:?}"),
        }
    }
    assert!(reader.queue.poll_recv(&mut cx).is_pending());
    fanout.deliver(&record(4, &["a"], false));
    assert_eq!(
        count.0.load(Ordering::SeqCst),
        2,
        "woken again once drained"
    );
}

/// A subscriber of `topic` whose reader waits on an empty queue, with a waker that counts its
/// wake-ups, once the flush tick is waiting too.
async fn waiting_reader(
    fanout: &Arc<Fanout>,
    topic: &str,
) -> (Registration, Arc<Count>, std::task::Waker) {
    let mut reader = fanout.register(subscriber(&[topic], &[]));
    let count = Arc::new(Count(Default::default()));
    let waker = std::task::Waker::from(count.clone());
    let mut cx = std::task::Context::from_waker(&waker);
    assert!(reader.queue.poll_recv(&mut cx).is_pending());
    tokio::task::yield_now().await; // let the tick start waiting
    (reader, count, waker)
}

#[tokio::test(start_paused = true)]
async fn with_a_flush_interval_updates_leave_at_once_while_readers_keep_up_and_together_once_one_lags()
 {
    let fanout = Arc::new(Fanout::with_flush_interval(8, Duration::from_millis(50)));
    let (mut a, woken_a, waker_a) = waiting_reader(&fanout, "a").await;
    let (mut b, woken_b, waker_b) = waiting_reader(&fanout, "b").await;
    let mut cx_a = std::task::Context::from_waker(&waker_a);
    // The hub is idle: the update wakes its reader without waiting for the interval.
    fanout.deliver(&record(1, &["a"], false));
    tokio::task::yield_now().await;
    assert_eq!(woken_a.0.load(Ordering::SeqCst), 1, "woken at once");
    assert!(matches!(a.queue.poll_recv(&mut cx_a), Poll::Ready(Some(_))));
    assert!(a.queue.poll_recv(&mut cx_a).is_pending());
    // Its reader took it: the next update, however soon, leaves at once too.
    fanout.deliver(&record(2, &["a"], false));
    tokio::task::yield_now().await;
    assert_eq!(woken_a.0.load(Ordering::SeqCst), 2, "woken at once again");
    // That reader has not taken update 2 yet: the hub is behind, so the updates that arrive now
    // wait for the end of the interval, and leave together.
    fanout.deliver(&record(3, &["b"], false));
    fanout.deliver(&record(5, &["b"], false));
    tokio::task::yield_now().await;
    assert_eq!(
        woken_b.0.load(Ordering::SeqCst),
        0,
        "not woken within the interval"
    );
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(woken_b.0.load(Ordering::SeqCst), 1, "woken once at its end");
    assert_eq!(next(&mut b.queue), Some(Some(3)));
    assert_eq!(next(&mut b.queue), Some(Some(5)));
    let mut cx_b = std::task::Context::from_waker(&waker_b);
    assert!(b.queue.poll_recv(&mut cx_b).is_pending());
    assert_eq!(next(&mut a.queue), Some(Some(2)));
}

#[tokio::test(start_paused = true)]
async fn a_queue_half_full_wakes_its_reader_without_waiting_for_the_tick() {
    let fanout = Arc::new(Fanout::with_flush_interval(4, Duration::from_secs(60)));
    let (mut reader, count, _waker) = waiting_reader(&fanout, "a").await;
    fanout.deliver(&record(1, &["a"], false)); // woken by the tick, which has not run yet
    assert_eq!(count.0.load(Ordering::SeqCst), 0);
    fanout.deliver(&record(2, &["a"], false)); // half of 4: woken now
    assert_eq!(
        count.0.load(Ordering::SeqCst),
        1,
        "woken before the queue fills"
    );
    assert_eq!(next(&mut reader.queue), Some(Some(1)));
    assert_eq!(next(&mut reader.queue), Some(Some(2)));
}

#[test]
fn a_subscriber_arriving_after_close_all_gets_an_ended_queue() {
    let fanout = Arc::new(Fanout::new(4));
    fanout.close_all();
    let mut late = fanout.register(subscriber(&["a"], &[]));
    assert_eq!(next(&mut late.queue), Some(None), "ended at once");
    fanout.deliver(&record(1, &["a"], false));
    assert_eq!(next(&mut late.queue), Some(None), "and nothing reaches it");
    assert!(fanout.is_empty());
    drop(late);
}

#[test]
fn an_update_naming_a_topic_twice_or_matching_two_selectors_is_delivered_once() {
    let fanout = Arc::new(Fanout::new(8));
    let mut one = fanout.register(subscriber(&["a"], &[]));
    let mut two = fanout.register(subscriber(&["a", "*"], &[]));
    let mut other = fanout.register(subscriber(&["*"], &[]));
    fanout.deliver(&record(1, &["a", "a"], false));
    for queue in [&mut one.queue, &mut two.queue, &mut other.queue] {
        assert_eq!(next(queue), Some(Some(1)));
        assert_eq!(next(queue), None, "once");
    }
}

#[test]
fn d22_dropping_the_registration_unsubscribes() {
    let fanout = Arc::new(Fanout::new(2));
    let registration = fanout.register(subscriber(&["a", "{x}"], &[]));
    assert_eq!(fanout.len(), 1);
    drop(registration);
    assert!(fanout.is_empty());
    assert!(fanout.read().exact.is_empty() && fanout.read().patterns.is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_shared_tick_sends_heartbeats_only_after_silence() {
    use futures::StreamExt;

    let fanout = Arc::new(Fanout::new(8).heartbeat(Duration::from_millis(100)));
    let mut registration = fanout.register(subscriber(&["a"], &[]));
    let clock = registration.clock();
    let chunks = futures::stream::poll_fn(move |cx| {
        registration
            .queue
            .poll_recv(cx)
            .map(|record| record.map(|r| r.bytes().clone()))
    });
    let mut stream = std::pin::pin!(Heartbeats::new(chunks, clock));
    let start = tokio::time::Instant::now();
    assert_eq!(&stream.next().await.expect("heartbeat")[..], b":\n");
    let silence = start.elapsed();
    assert!(
        silence >= Duration::from_millis(100) && silence <= Duration::from_millis(130),
        "{silence:?}"
    );
    tokio::time::sleep(Duration::from_millis(60)).await;
    fanout.deliver(&record(1, &["a"], false));
    let event = stream.next().await.expect("event");
    assert!(event.starts_with(b"id: "), "{event:?}");
    let after_event = tokio::time::Instant::now();
    assert_eq!(&stream.next().await.expect("heartbeat")[..], b":\n");
    assert!(after_event.elapsed() >= Duration::from_millis(100));
}

#[test]
fn a_template_and_a_url_pattern_of_the_same_text_route_apart() {
    let base = url::Url::parse("https://hub.example.com/.well-known/mercure").expect("url");
    let fanout = Arc::new(Fanout::new(8));
    let mut template = fanout.register(subscriber(&["https://e.com/{id}"], &[]));
    let pattern = TopicSelector::url_pattern("https://e.com/{id}", &base).expect("valid");
    let mut modern = fanout.register(Subscriber::new("m".into(), vec![pattern], Vec::new()));
    fanout.deliver(&record(1, &["https://e.com/1"], false));
    fanout.deliver(&record(2, &["https://e.com/id"], false));
    assert_eq!(next(&mut template.queue), Some(Some(1)));
    assert_eq!(next(&mut template.queue), Some(Some(2)));
    assert_eq!(
        next(&mut modern.queue),
        Some(Some(2)),
        "`{{id}}` is the literal `id` in a URL pattern"
    );
    assert_eq!(next(&mut modern.queue), None);
}

#[tokio::test(start_paused = true)]
async fn a_reader_merely_queued_behind_others_does_not_hold_back_the_next_update() {
    let fanout = Arc::new(Fanout::with_flush_interval(8, Duration::from_millis(50)));
    let (a, _woken_a, _waker_a) = waiting_reader(&fanout, "a").await;
    let (mut b, woken_b, _waker_b) = waiting_reader(&fanout, "b").await;
    fanout.deliver(&record(1, &["a"], false));
    tokio::task::yield_now().await;
    // A's reader is woken but has not run yet when the next update arrives (it is queued
    // behind the tick); it runs within the round the tick gives way for.
    fanout.deliver(&record(2, &["b"], false));
    let reader = tokio::spawn(async move {
        let mut a = a;
        std::future::poll_fn(|cx| a.queue.poll_recv(cx))
            .await
            .map(|r| r.seq)
    });
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
    assert_eq!(reader.await.expect("reader"), Some(1));
    assert_eq!(
        woken_b.0.load(Ordering::SeqCst),
        1,
        "woken without waiting for the interval"
    );
    assert_eq!(next(&mut b.queue), Some(Some(2)));
}

#[tokio::test(start_paused = true)]
async fn updates_held_under_load_wait_for_the_interval_after_the_last_wake_not_after_their_arrival()
{
    let fanout = Arc::new(Fanout::with_flush_interval(8, Duration::from_millis(50)));
    let (_a, _woken_a, _waker_a) = waiting_reader(&fanout, "a").await;
    let (_b, woken_b, _waker_b) = waiting_reader(&fanout, "b").await;
    fanout.deliver(&record(1, &["a"], false));
    tokio::task::yield_now().await;
    // A never takes its update: the hub is behind. An update arriving 40 ms after that wake
    // waits 10 ms more, not a whole interval.
    tokio::time::sleep(Duration::from_millis(40)).await;
    fanout.deliver(&record(2, &["b"], false));
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        woken_b.0.load(Ordering::SeqCst),
        0,
        "held while the hub is behind"
    );
    tokio::time::sleep(Duration::from_millis(7)).await;
    assert_eq!(
        woken_b.0.load(Ordering::SeqCst),
        1,
        "woken 50 ms after the last wake"
    );
}
