//! The ports: what the ingress and the worker need from the outside world, as traits. Adapters
//! (SQS, DynamoDB, embedded ones) live in [`crate::adapters`].

use crate::platform::Platform;
use async_trait::async_trait;
use tokio::time::Instant;

/// One message for the event queue: an encoded [`crate::envelope::Envelope`] and what the queue
/// needs to route and deduplicate it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueMessage {
    /// The event's deduplication key (a FIFO queue's deduplication id).
    pub key: String,
    /// The event's conversation (a FIFO queue's message group id).
    pub conversation: String,
    pub platform: Platform,
    /// The encoded envelope.
    pub body: String,
}

/// Why some messages did not reach the queue. The ingress answers `5xx` so that the platform
/// sends the request again; the worker drops the duplicates of the messages that did arrive.
#[derive(Debug, thiserror::Error)]
#[error("{failed} of {total} messages were not queued: {reason}")]
pub struct EnqueueError {
    pub total: usize,
    pub failed: usize,
    pub reason: String,
}

/// The event queue, as the ingress sees it.
#[async_trait]
pub trait EventQueue: Send + Sync {
    /// Puts every message in the queue, or fails, before `deadline`. Returns only when the queue
    /// holds all of them; on error some may have been queued.
    async fn send_all(
        &self,
        messages: &[QueueMessage],
        deadline: Instant,
    ) -> Result<(), EnqueueError>;

    /// The largest message body the queue takes, in bytes.
    fn max_message_bytes(&self) -> usize;
}
