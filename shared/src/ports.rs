//! The ports: what the ingress and the worker need from the outside world, as traits. Adapters
//! (SQS, DynamoDB, embedded ones) live in [`crate::adapters`].

use crate::platform::Platform;
use async_trait::async_trait;
pub use bytes_utils::Str;
use tokio::time::Instant;

/// One message for the event queue: an encoded [`crate::envelope::Envelope`] and what the queue
/// needs to route and deduplicate it. Its three strings are one shared text ([`Str`]): the
/// ingress writes the messages of many events into one buffer and each message holds its range
/// of it, where three strings of their own per event cost most of a large request's time in the
/// allocator, and three shared ones three reference counts each.
#[derive(Clone, PartialEq)]
pub struct QueueMessage {
    /// Key, conversation and body, one after the other.
    text: Str,
    key_end: usize,
    conversation_end: usize,
    pub platform: Platform,
}

impl QueueMessage {
    /// A message of one text of its own.
    pub fn new(key: &str, conversation: &str, platform: Platform, body: &str) -> QueueMessage {
        QueueMessage {
            text: Str::from([key, conversation, body].concat()),
            key_end: key.len(),
            conversation_end: key.len() + conversation.len(),
            platform,
        }
    }

    /// A message whose key, conversation and body lie one after the other in `text`, the
    /// first two ending at `key_end` and `conversation_end` (character boundaries).
    pub(crate) fn in_text(
        text: Str,
        key_end: usize,
        conversation_end: usize,
        platform: Platform,
    ) -> QueueMessage {
        debug_assert!(
            key_end <= conversation_end
                && text.is_char_boundary(key_end)
                && text.is_char_boundary(conversation_end)
        );
        QueueMessage {
            text,
            key_end,
            conversation_end,
            platform,
        }
    }

    /// The event's deduplication key (a FIFO queue's deduplication id).
    pub fn key(&self) -> &str {
        self.text.get(..self.key_end).unwrap_or_default()
    }

    /// The event's conversation (a FIFO queue's message group id).
    pub fn conversation(&self) -> &str {
        self.text
            .get(self.key_end..self.conversation_end)
            .unwrap_or_default()
    }

    /// The encoded envelope.
    pub fn body(&self) -> &str {
        self.text.get(self.conversation_end..).unwrap_or_default()
    }
}

impl std::fmt::Debug for QueueMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueMessage")
            .field("key", &self.key())
            .field("conversation", &self.conversation())
            .field("platform", &self.platform)
            .field("body", &self.body())
            .finish()
    }
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

/// What a claim on an event's key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is ours until the claim's lease ends: run the handler. `attempt` counts this run:
    /// 1, plus the failed runs recorded for the key (see [`Release::Retry`]).
    Claimed { attempt: u32 },
    /// The handler already ran for this key (and the record has not expired): acknowledge.
    AlreadyCompleted,
    /// Another invocation holds the key until `until_ms`: report the record failed so that the
    /// queue delivers it again later.
    InProgressElsewhere { until_ms: i64 },
}

/// What a failed run leaves behind when its claim is given up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Release {
    /// The handler failed: keep the key claimable and count the failure, with a short reason
    /// (never content), so that the next run knows its attempt number.
    Retry { reason: String },
    /// The event left the queue (dead-lettered): forget the key, so that a redrive starts over.
    Forget,
}

/// A request to the idempotency store failed (or its answer was lost: the write may have
/// happened).
#[derive(Debug, thiserror::Error)]
#[error("idempotency store {operation} for {key}: {reason}")]
pub struct StoreError {
    pub operation: &'static str,
    pub key: String,
    pub reason: String,
}

/// The idempotency store: one record per event key, so that each event's handler runs once.
///
/// Times are milliseconds since the epoch. Implementations must treat a record whose expiry has
/// passed as absent, whatever the store's own TTL has done with it. Every write names its
/// `owner` (one per claim attempt), so that a write retried after a lost answer recognises its
/// own earlier success instead of taking it for someone else's.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims `key` for `owner` with one conditional write, leased until `lease_until_ms`; the
    /// record itself expires at `expires_at_ms`. Succeeds when there is no record, when it has
    /// expired, when a failed run released it, when it is in progress with a lapsed lease, or
    /// when `owner` already holds it.
    async fn claim(
        &self,
        key: &str,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
        expires_at_ms: i64,
    ) -> Result<Claim, StoreError>;

    /// Marks `key` completed until `expires_at_ms`, whoever holds it.
    async fn complete(&self, key: &str, expires_at_ms: i64) -> Result<(), StoreError>;

    /// Gives up `owner`'s claim after the handler failed (see [`Release`]). Leaves the record
    /// alone when `owner` no longer holds it (completed, or taken over after its lease).
    async fn release(&self, key: &str, owner: &str, release: Release) -> Result<(), StoreError>;
}

/// A record could not be put in the dead-letter queue.
#[derive(Debug, thiserror::Error)]
#[error("dead-lettering message {message_id}: {reason}")]
pub struct DeadLetterError {
    pub message_id: String,
    pub reason: String,
}

/// Where the worker puts a record it gives up on, with the reason, before acknowledging it: on a
/// FIFO queue, leaving a failing record for the queue's own redrive would send the healthy
/// records blocked behind it to the dead-letter queue with it.
#[async_trait]
pub trait DeadLetterQueue: Send + Sync {
    async fn dead_letter(
        &self,
        record: &crate::worker::QueueRecord,
        reason: &str,
    ) -> Result<(), DeadLetterError>;
}

/// A claim-check object could not be written, read or deleted.
#[derive(Debug, thiserror::Error)]
#[error("claim check {operation} for {object}: {reason}")]
pub struct ClaimError {
    pub operation: &'static str,
    pub object: String,
    pub reason: String,
}

/// Where an event too large for a queue message waits (S3; SQLite locally): the ingress writes it
/// before answering `200`, the queue carries a pointer, the worker reads it and deletes it once
/// the event is handled (a lifecycle rule removes what is left).
#[async_trait]
pub trait ClaimStore: Send + Sync {
    async fn put(&self, object: &str, bytes: bytes::Bytes) -> Result<(), ClaimError>;
    /// The object; `None` when there is none.
    async fn get(&self, object: &str) -> Result<Option<bytes::Bytes>, ClaimError>;
    /// Deletes the object; deleting a missing one succeeds.
    async fn delete(&self, object: &str) -> Result<(), ClaimError>;
}

/// A request to the conversation archive or its media store failed.
#[derive(Debug, thiserror::Error)]
#[error("archive {operation} for {key}: {reason}")]
pub struct ArchiveError {
    pub operation: &'static str,
    pub key: String,
    pub reason: String,
}

/// The conversation archive's records (see [`crate::archive`]). Every write is a compare-and-swap
/// on the record's version, so that the merge rules live once, in [`crate::archive`], and
/// adapters only store.
#[async_trait]
pub trait ArchiveStore: Send + Sync {
    /// The record of one message, expired or not (the caller checks `expires_at_ms`).
    async fn load(
        &self,
        conversation: &str,
        message_id: &str,
    ) -> Result<Option<crate::archive::ArchivedMessage>, ArchiveError>;

    /// Writes `record` if the stored version is `expected_version` (`None`: no record). Returns
    /// `false`, writing nothing, when another writer got there first.
    async fn save(
        &self,
        record: &crate::archive::ArchivedMessage,
        expected_version: Option<u64>,
    ) -> Result<bool, ArchiveError>;

    /// A conversation's stored messages, oldest first, at most `limit`, without unsent or
    /// expired ones: one query.
    async fn history(
        &self,
        conversation: &str,
        limit: usize,
        now_ms: i64,
    ) -> Result<Vec<crate::archive::ArchivedMessage>, ArchiveError>;

    /// Stores (replaces) a user's profile in a conversation.
    async fn save_profile(
        &self,
        profile: &crate::archive::ArchivedProfile,
    ) -> Result<(), ArchiveError>;

    /// The profiles stored for a conversation, without expired ones.
    async fn profiles(
        &self,
        conversation: &str,
        now_ms: i64,
    ) -> Result<Vec<crate::archive::ArchivedProfile>, ArchiveError>;
}

/// Where archived media files live (S3, or the embedded database locally).
#[async_trait]
pub trait MediaStore: Send + Sync {
    async fn put(
        &self,
        key: &str,
        content_type: &str,
        bytes: bytes::Bytes,
    ) -> Result<(), ArchiveError>;

    /// The object and its content type; `None` when there is none.
    async fn get(&self, key: &str) -> Result<Option<(String, bytes::Bytes)>, ArchiveError>;

    /// Deletes the object; deleting a missing one succeeds.
    async fn delete(&self, key: &str) -> Result<(), ArchiveError>;
}
