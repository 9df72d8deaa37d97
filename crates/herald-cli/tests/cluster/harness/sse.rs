//! Subscribers: an HTTP/1.0 `GET` (so the body is the raw event stream, ended by the hub closing
//! the connection), its head read before [`subscribe`] returns (the subscription is live from
//! then on), then every event, comment and the stream's end read on a thread of its own and
//! handed over a channel.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use herald_codec::{Decoder, Frame};

/// An event received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    pub(crate) id: String,
    pub(crate) data: String,
}

/// What a subscriber sees.
#[derive(Debug)]
pub(crate) enum Seen {
    Event(Event),
    /// A `:` comment (a heartbeat).
    Comment,
    /// The hub ended the stream (or the connection broke: the text says why).
    End(String),
}

/// An open subscription.
pub(crate) struct Subscription {
    /// The response head's headers, names in lower case.
    pub(crate) headers: Vec<(String, String)>,
    seen: Receiver<Seen>,
    socket: TcpStream,
    ended: bool,
    context: String,
}

/// The IDs of `events`.
pub(crate) fn ids(events: &[Event]) -> Vec<String> {
    events.iter().map(|e| e.id.clone()).collect()
}

/// Subscribes to `topics` on the hub at `authority`, resuming after `last_event_id` if given.
pub(crate) fn subscribe(
    authority: &str,
    topics: &[&str],
    last_event_id: Option<&str>,
) -> Subscription {
    subscribe_with(authority, topics, last_event_id, None)
}

/// Like [`subscribe`], with this bearer token.
pub(crate) fn subscribe_with(
    authority: &str,
    topics: &[&str],
    last_event_id: Option<&str>,
    token: Option<&str>,
) -> Subscription {
    let query = topics
        .iter()
        .fold(
            form_urlencoded::Serializer::new(String::new()),
            |mut q, t| {
                q.append_pair("topic", t);
                q
            },
        )
        .finish();
    let context = format!("subscriber of {topics:?} on {authority}");
    let mut socket = TcpStream::connect(authority).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let resume = last_event_id.map_or_else(String::new, |id| format!("Last-Event-ID: {id}\r\n"));
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        socket,
        "GET /.well-known/mercure?{query} HTTP/1.0\r\nHost: localhost\r\n{resume}{auth}\r\n"
    )
    .expect("request");
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let body_start = loop {
        let n = socket.read(&mut buf).expect("read the head");
        assert!(
            n > 0,
            "{context}: closed: {}",
            String::from_utf8_lossy(&raw)
        );
        raw.extend_from_slice(&buf[..n]);
        if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&raw[..body_start]).into_owned();
    assert!(head.starts_with("HTTP/1.0 200"), "{context}: {head}");
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let (tell, seen) = channel();
    let mut reader = socket.try_clone().expect("clone");
    let mut decoder = Decoder::builder().comments(true).build();
    decoder.push(bytes::Bytes::copy_from_slice(&raw[body_start..]));
    std::thread::spawn(move || {
        loop {
            loop {
                match decoder.next_frame() {
                    Ok(Some(Frame::Event(event))) => {
                        let event = Event {
                            id: event.last_event_id().to_owned(),
                            data: event.data().to_owned(),
                        };
                        if tell.send(Seen::Event(event)).is_err() {
                            return;
                        }
                    }
                    Ok(Some(Frame::Comment(_))) => {
                        if tell.send(Seen::Comment).is_err() {
                            return;
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(error) => {
                        let _ = tell.send(Seen::End(format!("invalid stream: {error}")));
                        return;
                    }
                }
            }
            match reader.read(&mut buf) {
                Ok(0) => {
                    let _ = tell.send(Seen::End("closed".to_owned()));
                    return;
                }
                Ok(n) => decoder.push(bytes::Bytes::copy_from_slice(&buf[..n])),
                Err(error) => {
                    let _ = tell.send(Seen::End(format!("read failed: {error}")));
                    return;
                }
            }
        }
    });
    Subscription {
        headers,
        seen,
        socket,
        ended: false,
        context,
    }
}

impl Subscription {
    /// The response's `Last-Event-ID` header.
    pub(crate) fn last_event_id(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == "last-event-id")
            .map(|(_, v)| v.as_str())
    }

    /// What comes next, if it comes within `within`.
    pub(crate) fn next(&mut self, within: Duration) -> Option<Seen> {
        if self.ended {
            return Some(Seen::End("ended before".to_owned()));
        }
        match self.seen.recv_timeout(within) {
            Ok(seen) => {
                if matches!(seen, Seen::End(_)) {
                    self.ended = true;
                }
                Some(seen)
            }
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                self.ended = true;
                Some(Seen::End("reader gone".to_owned()))
            }
        }
    }

    /// The next `count` events (comments skipped); panics if the stream ends or they do not all
    /// come within `within`.
    pub(crate) fn events(&mut self, count: usize, within: Duration) -> Vec<Event> {
        let deadline = Instant::now() + within;
        let mut events = Vec::with_capacity(count);
        while events.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left) {
                Some(Seen::Event(event)) => events.push(event),
                Some(Seen::Comment) => {}
                Some(Seen::End(why)) => panic!(
                    "{}: ended ({why}) after {} of {count} events: {:?}",
                    self.context,
                    events.len(),
                    ids(&events)
                ),
                None => panic!(
                    "{}: {} of {count} events within {within:?}: {:?}",
                    self.context,
                    events.len(),
                    ids(&events)
                ),
            }
        }
        events
    }

    /// The events before the one with ID `marker` (which is consumed); panics if the stream
    /// ends or the marker does not come within `within`.
    pub(crate) fn until(&mut self, marker: &str, within: Duration) -> Vec<Event> {
        let deadline = Instant::now() + within;
        let mut events = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left) {
                Some(Seen::Event(event)) if event.id == marker => return events,
                Some(Seen::Event(event)) => events.push(event),
                Some(Seen::Comment) => {}
                Some(Seen::End(why)) => panic!(
                    "{}: ended ({why}) before {marker} after {} events",
                    self.context,
                    events.len()
                ),
                None => panic!(
                    "{}: no {marker} within {within:?} ({} events before)",
                    self.context,
                    events.len()
                ),
            }
        }
    }

    /// The events until the stream ends; panics if it does not end within `within`.
    pub(crate) fn until_end(&mut self, within: Duration) -> Vec<Event> {
        let deadline = Instant::now() + within;
        let mut events = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left) {
                Some(Seen::Event(event)) => events.push(event),
                Some(Seen::Comment) => {}
                Some(Seen::End(_)) => return events,
                None => panic!(
                    "{}: still open after {within:?} ({} events)",
                    self.context,
                    events.len()
                ),
            }
        }
    }

    /// Watches the stream for `span`: the comments and events that came, and whether it ended.
    pub(crate) fn watch(&mut self, span: Duration) -> (usize, Vec<Event>, bool) {
        let deadline = Instant::now() + span;
        let (mut comments, mut events) = (0, Vec::new());
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return (comments, events, false);
            }
            match self.next(left) {
                Some(Seen::Event(event)) => events.push(event),
                Some(Seen::Comment) => comments += 1,
                Some(Seen::End(_)) => return (comments, events, true),
                None => return (comments, events, self.ended),
            }
        }
    }

    /// Breaks the connection off, as a client that went away.
    pub(crate) fn cut(&mut self) {
        let _ = self.socket.shutdown(Shutdown::Both);
        self.ended = true;
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let _ = self.socket.shutdown(Shutdown::Both);
    }
}
