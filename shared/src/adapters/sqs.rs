//! The SQS adapter of [`EventQueue`].
//!
//! Messages go out with `SendMessageBatch`: at most 10 entries and 256 KiB a call (packed by size
//! as well as count), calls in parallel, and entries that failed on the service's side (or whole
//! calls that failed: throttling, a dropped connection) retried with jittered exponential backoff
//! until every message is queued or the deadline passes. Entries that SQS refuses as the sender's
//! fault are not retried. On a FIFO queue (`.fifo`), the conversation is the message group id and
//! the deduplication key the deduplication id.

use crate::key::fit_for_sqs;
use crate::ports::{EnqueueError, EventQueue, QueueMessage};
use async_trait::async_trait;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use futures::StreamExt;
use std::time::Duration;
use tokio::time::Instant;

/// SQS's limit on one call: entries.
pub const MAX_BATCH_ENTRIES: usize = 10;
/// SQS's limit on one call and on one message: bytes of bodies and attributes together.
pub const MAX_BATCH_BYTES: usize = 256 * 1024;
/// The message attribute that names the platform.
pub const PLATFORM_ATTRIBUTE: &str = "platform";
const FIRST_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_millis(400);

/// How hard the adapter pushes: production defaults, overridable for slower stand-ins such as
/// moto (which serves about 20 calls a second) through `SQS_ATTEMPT_TIMEOUT_MS` and
/// `SQS_MAX_PARALLEL_CALLS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqsTuning {
    /// How long one `SendMessageBatch` attempt may take before it is abandoned and retried.
    /// SQS answers in tens of milliseconds; a connection that hangs is retried on a new one.
    pub attempt_timeout: Duration,
    /// Calls in flight at once for one request (a 1000-item Meta batch is 100 calls).
    pub max_parallel_calls: usize,
}

impl Default for SqsTuning {
    fn default() -> Self {
        SqsTuning {
            attempt_timeout: Duration::from_millis(700),
            max_parallel_calls: 16,
        }
    }
}

impl SqsTuning {
    /// The defaults, with `SQS_ATTEMPT_TIMEOUT_MS` and `SQS_MAX_PARALLEL_CALLS` applied where set
    /// to a positive whole number.
    pub fn from_env() -> SqsTuning {
        let number = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|&n| n > 0)
        };
        let defaults = SqsTuning::default();
        SqsTuning {
            attempt_timeout: number("SQS_ATTEMPT_TIMEOUT_MS")
                .map_or(defaults.attempt_timeout, Duration::from_millis),
            max_parallel_calls: number("SQS_MAX_PARALLEL_CALLS")
                .map_or(defaults.max_parallel_calls, |n| n as usize),
        }
    }
}

/// An SQS queue.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    fifo: bool,
    max_parallel_calls: usize,
}

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> SqsQueue {
        let queue_url = queue_url.into();
        SqsQueue {
            fifo: queue_url.ends_with(".fifo"),
            client,
            queue_url,
            max_parallel_calls: SqsTuning::default().max_parallel_calls,
        }
    }

    /// Applies `tuning`'s parallelism (its timeout belongs to the client:
    /// [`SqsQueue::client_for_ingress`]).
    pub fn with_tuning(mut self, tuning: SqsTuning) -> SqsQueue {
        self.max_parallel_calls = tuning.max_parallel_calls.max(1);
        self
    }

    /// A client for the ingress: one attempt per call with short timeouts, because this adapter
    /// retries on its own, per entry, inside the request's deadline.
    pub fn client_for_ingress(
        sdk: &aws_config::SdkConfig,
        tuning: SqsTuning,
    ) -> aws_sdk_sqs::Client {
        let config = aws_sdk_sqs::config::Builder::from(sdk)
            .retry_config(aws_sdk_sqs::config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_sdk_sqs::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_millis(300))
                    .operation_attempt_timeout(tuning.attempt_timeout)
                    .build(),
            )
            .build();
        aws_sdk_sqs::Client::from_conf(config)
    }

    pub fn is_fifo(&self) -> bool {
        self.fifo
    }

    fn entry(
        &self,
        index: usize,
        message: &QueueMessage,
    ) -> Result<SendMessageBatchRequestEntry, String> {
        let platform = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(message.platform.as_str())
            .build()
            .map_err(|e| e.to_string())?;
        let mut entry = SendMessageBatchRequestEntry::builder()
            .id(index.to_string())
            .message_body(&message.body)
            .message_attributes(PLATFORM_ATTRIBUTE, platform);
        if self.fifo {
            entry = entry
                .message_group_id(fit_for_sqs(&message.conversation))
                .message_deduplication_id(fit_for_sqs(&message.key));
        }
        entry.build().map_err(|e| e.to_string())
    }

    /// Sends the messages at `pending` (indices into `messages`) in one call, retrying what failed
    /// until the deadline. Returns the number of messages not queued and why.
    async fn send_batch(
        &self,
        messages: &[QueueMessage],
        mut pending: Vec<usize>,
        deadline: Instant,
    ) -> Result<(), (usize, String)> {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let entries = pending
                .iter()
                .map(|&i| self.entry(i, &messages[i]))
                .collect::<Result<Vec<_>, String>>()
                .map_err(|reason| (pending.len(), reason))?;
            let last_reason = match self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(output) => {
                    if output.failed().is_empty() {
                        return Ok(());
                    }
                    if let Some(refused) = output.failed().iter().find(|f| f.sender_fault()) {
                        let reason = format!(
                            "SQS refused an entry: {} {}",
                            refused.code(),
                            refused.message().unwrap_or_default()
                        );
                        return Err((output.failed().len(), reason));
                    }
                    pending = output
                        .failed()
                        .iter()
                        .filter_map(|f| f.id().parse().ok())
                        .collect();
                    let first = &output.failed()[0];
                    format!("{} entries failed, e.g. {}", pending.len(), first.code())
                }
                Err(error) => format!("SendMessageBatch failed: {}", DisplayErrorContext(&error)),
            };
            let jittered = backoff.mul_f64(0.5 + fastrand::f64() / 2.0);
            if Instant::now() + jittered >= deadline {
                return Err((pending.len(), last_reason));
            }
            tracing::warn!(target: "sqs", reason = %last_reason, retry_in_ms = jittered.as_millis() as u64, "retrying entries");
            tokio::time::sleep(jittered).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// Groups message indices into calls of at most [`MAX_BATCH_ENTRIES`] and [`MAX_BATCH_BYTES`],
/// keeping their order.
pub fn pack_batches(messages: &[QueueMessage]) -> Vec<Vec<usize>> {
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut bytes = 0;
    for (index, message) in messages.iter().enumerate() {
        let size = entry_bytes(message);
        match batches.last_mut() {
            Some(batch) if batch.len() < MAX_BATCH_ENTRIES && bytes + size <= MAX_BATCH_BYTES => {
                batch.push(index);
                bytes += size;
            }
            _ => {
                batches.push(vec![index]);
                bytes = size;
            }
        }
    }
    batches
}

/// What SQS counts of a message against its size limits: the body and each attribute's name,
/// type and value.
fn entry_bytes(message: &QueueMessage) -> usize {
    message.body.len() + PLATFORM_ATTRIBUTE.len() + "String".len() + message.platform.as_str().len()
}

#[async_trait]
impl EventQueue for SqsQueue {
    async fn send_all(
        &self,
        messages: &[QueueMessage],
        deadline: Instant,
    ) -> Result<(), EnqueueError> {
        let total = messages.len();
        let sending = futures::stream::iter(pack_batches(messages))
            .map(|batch| self.send_batch(messages, batch, deadline))
            .buffer_unordered(self.max_parallel_calls)
            .fold(
                (0usize, None::<String>),
                |(failed, reason), result| async move {
                    match result {
                        Ok(()) => (failed, reason),
                        Err((count, why)) => (failed + count, reason.or(Some(why))),
                    }
                },
            );
        match tokio::time::timeout_at(deadline, sending).await {
            Ok((0, _)) => Ok(()),
            Ok((failed, reason)) => Err(EnqueueError {
                total,
                failed,
                reason: reason.unwrap_or_default(),
            }),
            Err(_) => Err(EnqueueError {
                total,
                failed: total,
                reason: "the enqueue budget ran out before SQS answered".into(),
            }),
        }
    }

    fn max_message_bytes(&self) -> usize {
        // One message alone in a call must fit with its attribute.
        MAX_BATCH_BYTES - PLATFORM_ATTRIBUTE.len() - "String".len() - "line".len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::Platform;

    fn message(bytes: usize) -> QueueMessage {
        QueueMessage {
            key: "k".into(),
            conversation: "c".into(),
            platform: Platform::Line,
            body: "x".repeat(bytes),
        }
    }

    #[test]
    fn batches_hold_at_most_ten_entries() {
        let messages: Vec<_> = (0..25).map(|_| message(10)).collect();
        let batches = pack_batches(&messages);
        assert_eq!(
            batches.iter().map(Vec::len).collect::<Vec<_>>(),
            [10, 10, 5]
        );
        assert_eq!(batches.concat(), (0..25).collect::<Vec<_>>());
    }

    #[test]
    fn batches_hold_at_most_256_kib() {
        let messages: Vec<_> = (0..6).map(|_| message(100 * 1024)).collect();
        let batches = pack_batches(&messages);
        assert_eq!(batches, [vec![0, 1], vec![2, 3], vec![4, 5]]);
        for batch in &batches {
            let bytes: usize = batch.iter().map(|&i| entry_bytes(&messages[i])).sum();
            assert!(bytes <= MAX_BATCH_BYTES);
        }
        let largest = SqsQueue::new(
            aws_sdk_sqs::Client::from_conf(
                aws_sdk_sqs::Config::builder()
                    .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
                    .build(),
            ),
            "q",
        )
        .max_message_bytes();
        assert_eq!(
            pack_batches(&[message(largest), message(1)]),
            [vec![0], vec![1]]
        );
        assert!(entry_bytes(&message(largest)) <= MAX_BATCH_BYTES);
    }
}
