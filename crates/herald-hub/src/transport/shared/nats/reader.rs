//! The node's reading of the log on NATS: one pull consumer per stream, ordered (no acks, in
//! memory, one at a time), from the sequence after the last one the node read. A consumer that
//! fails (missed heartbeats, deleted, a message that does not follow the one before in its own
//! sequence) is dropped, and the next read creates one from the node's cursor; the library's
//! own ordered consumer would recreate itself on whatever stream has the name by then. The
//! stream's creation time is read after the consumer is created, so that an entry is never
//! tagged with the epoch of another stream than the one it came from.

use std::task::Poll;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures::{FutureExt as _, StreamExt as _};

use super::{
    CONSUMER_HEARTBEAT, CONSUMER_INACTIVE, NatsLog, PULL_EXPIRES, READ_COUNT, created_of, epoch_of,
    unavailable,
};
use crate::transport::shared::{Channel, Cursor, Entry, LogError};

/// The reader's consumers, one per channel, and the creation time of the stream each reads.
#[derive(Default)]
pub(super) struct Reader {
    created: [i128; 3],
    channels: [Option<ChannelReader>; 3],
}

struct ChannelReader {
    messages: consumer::pull::Stream,
    /// The stream sequence of the last message read (where the consumer started, before).
    last: u64,
    /// The consumer's own sequence of the last message read: one that does not follow means
    /// the consumer skipped something.
    delivered: u64,
}

/// Polls every channel's consumer: the first that has something (or failed).
#[allow(clippy::type_complexity)]
fn poll_any(
    channels: &mut [Option<ChannelReader>; 3],
    cx: &mut std::task::Context<'_>,
) -> Poll<(
    usize,
    Option<Result<jetstream::Message, consumer::pull::MessagesError>>,
)> {
    for (index, reader) in channels.iter_mut().enumerate() {
        if let Some(reader) = reader
            && let Poll::Ready(item) = reader.messages.poll_next_unpin(cx)
        {
            return Poll::Ready((index, item));
        }
    }
    Poll::Pending
}

impl Reader {
    /// Takes what a consumer gave: the entry, or why the consumer is dropped.
    fn take(
        &mut self,
        index: usize,
        item: Option<Result<jetstream::Message, consumer::pull::MessagesError>>,
    ) -> Result<Entry, LogError> {
        let channel = Channel::ALL[index];
        let failed = |reader: &mut Reader, why: String| {
            reader.channels[index] = None;
            Err(LogError(format!("{} consumer: {why}", channel.name())))
        };
        let message = match item {
            Some(Ok(message)) => message,
            Some(Err(error)) => return failed(self, error.to_string()),
            None => return failed(self, "ended".to_owned()),
        };
        let (stream_sequence, consumer_sequence) = match message.info() {
            Ok(info) => (info.stream_sequence, info.consumer_sequence),
            Err(error) => return failed(self, error.to_string()),
        };
        let Some(delivered) = self.channels[index].as_ref().map(|r| r.delivered) else {
            return failed(self, "gone".to_owned());
        };
        if consumer_sequence != delivered + 1 {
            let why = format!("delivered its message {consumer_sequence} after {delivered}");
            return failed(self, why);
        }
        if let Some(reader) = self.channels[index].as_mut() {
            reader.delivered = consumer_sequence;
            reader.last = stream_sequence;
        }
        let epoch = epoch_of(&self.created);
        Ok(Entry {
            channel,
            offset: stream_sequence,
            data: message.message.payload.to_vec(),
            epoch: Some(epoch),
        })
    }
}

impl NatsLog {
    /// A consumer of `channel`'s stream from the sequence after `after`, and the creation
    /// time of the stream it reads (read after creating it: see the module documentation).
    pub(super) async fn consume(
        &self,
        js: &jetstream::Context,
        channel: Channel,
        after: u64,
    ) -> Result<(consumer::PullConsumer, stream::Info), LogError> {
        let deliver_policy = if after == 0 {
            consumer::DeliverPolicy::All
        } else {
            consumer::DeliverPolicy::ByStartSequence {
                start_sequence: after + 1,
            }
        };
        let config = consumer::pull::Config {
            deliver_policy,
            ack_policy: consumer::AckPolicy::None,
            max_deliver: 1,
            inactive_threshold: CONSUMER_INACTIVE,
            num_replicas: 1,
            memory_storage: true,
            ..Default::default()
        };
        let consumer = js
            .create_consumer_on_stream(config, self.stream_name(channel))
            .await
            .map_err(|e| LogError(format!("stream {}: {e}", self.stream_name(channel))))?;
        let info = self.stream(js, channel).await?;
        Ok((consumer, info))
    }

    async fn open(
        &self,
        js: &jetstream::Context,
        channel: Channel,
        after: u64,
    ) -> Result<(ChannelReader, i128), LogError> {
        let (consumer, info) = self.consume(js, channel, after).await?;
        let messages = consumer
            .stream()
            .max_messages_per_batch(READ_COUNT)
            .heartbeat(CONSUMER_HEARTBEAT)
            .expires(PULL_EXPIRES)
            .messages()
            .await
            .map_err(unavailable)?;
        Ok((
            ChannelReader {
                messages,
                last: after,
                delivered: 0,
            },
            created_of(&info),
        ))
    }

    /// The entries after `after`, waiting up to `wait` for the first.
    pub(super) async fn read_entries(
        &self,
        after: Cursor,
        wait: Duration,
    ) -> Result<Vec<Entry>, LogError> {
        let js = self.context().await?;
        let mut reader = self.reader.lock().await;
        let reader = &mut *reader;
        for channel in Channel::ALL {
            let index = channel.index();
            let from = after.get(channel);
            if reader.channels[index]
                .as_ref()
                .is_some_and(|r| r.last == from)
            {
                continue;
            }
            reader.channels[index] = None;
            let (opened, created) = self.open(&js, channel, from).await?;
            reader.channels[index] = Some(opened);
            reader.created[index] = created;
        }
        let mut entries = Vec::new();
        let first = tokio::time::timeout(
            wait,
            std::future::poll_fn(|cx| poll_any(&mut reader.channels, cx)),
        )
        .await;
        let Ok((index, item)) = first else {
            return Ok(entries);
        };
        entries.push(reader.take(index, item)?);
        // Then whatever else has come, without waiting.
        while entries.len() < READ_COUNT {
            let Some((index, item)) =
                std::future::poll_fn(|cx| poll_any(&mut reader.channels, cx)).now_or_never()
            else {
                break;
            };
            match reader.take(index, item) {
                Ok(entry) => entries.push(entry),
                // What was read stands; the consumer is created again at the next read.
                Err(error) => {
                    tracing::debug!(%error, "a consumer of the shared log failed");
                    break;
                }
            }
        }
        Ok(entries)
    }
}
