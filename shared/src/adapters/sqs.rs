//! The SQS adapters: the ingress's [`EventQueue`] (a [`BatchSink`] behind
//! [`crate::enqueue::BatchedQueue`], which does the packing, ordering and retries), and the
//! worker's [`DeadLetterQueue`].
//!
//! On a FIFO queue (`.fifo`), the conversation is the message group id and the deduplication key
//! the deduplication id, both fitted to SQS's 128 printable characters.

use crate::enqueue::{BatchSink, BatchedQueue, EntryFailure, MAX_BATCH_BYTES};
use crate::key::fit_for_sqs;
use crate::ports::{DeadLetterError, DeadLetterQueue, QueueMessage};
use crate::worker::QueueRecord;
use async_trait::async_trait;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use std::time::Duration;
use tokio::time::Instant;

pub use crate::enqueue::MAX_BATCH_ENTRIES;
/// The message attribute that names the platform.
pub const PLATFORM_ATTRIBUTE: &str = "platform";
/// The message attribute a dead-lettered message carries: why the worker gave up on it.
pub const FAILURE_ATTRIBUTE: &str = "failure";

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
        let var = |name: &str| std::env::var(name).ok();
        let number = |name| crate::settings::positive_number(&var, name).ok().flatten();
        let defaults = SqsTuning::default();
        SqsTuning {
            attempt_timeout: number("SQS_ATTEMPT_TIMEOUT_MS")
                .map_or(defaults.attempt_timeout, Duration::from_millis),
            max_parallel_calls: number("SQS_MAX_PARALLEL_CALLS")
                .map_or(defaults.max_parallel_calls, |n| n as usize),
        }
    }
}

/// An SQS queue, as one `SendMessageBatch` call at a time.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    fifo: bool,
}

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> SqsQueue {
        let queue_url = queue_url.into();
        SqsQueue {
            fifo: queue_url.ends_with(".fifo"),
            client,
            queue_url,
        }
    }

    /// The ingress's event queue: this queue behind [`BatchedQueue`] with `tuning`.
    pub fn batched(self, tuning: SqsTuning) -> BatchedQueue<SqsQueue> {
        BatchedQueue::new(self, tuning.max_parallel_calls, tuning.attempt_timeout)
    }

    /// A client for sending: one attempt per call with short timeouts, because the callers retry
    /// on their own, per message, inside their deadline.
    pub fn client_for_sending(
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

    pub fn url(&self) -> &str {
        &self.queue_url
    }

    fn entry(
        &self,
        index: usize,
        message: &QueueMessage,
    ) -> Result<SendMessageBatchRequestEntry, String> {
        let mut entry = SendMessageBatchRequestEntry::builder()
            .id(index.to_string())
            .message_body(message.body())
            .message_attributes(
                PLATFORM_ATTRIBUTE,
                string_attribute(message.platform.as_str())?,
            );
        if self.fifo {
            entry = entry
                .message_group_id(fit_for_sqs(message.conversation()))
                .message_deduplication_id(fit_for_sqs(message.key()));
        }
        entry.build().map_err(|e| e.to_string())
    }
}

fn string_attribute(value: &str) -> Result<MessageAttributeValue, String> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| e.to_string())
}

/// What SQS counts of a message against its size limits: the body and each attribute's name,
/// type and value.
pub fn entry_bytes(message: &QueueMessage) -> usize {
    message.body().len()
        + PLATFORM_ATTRIBUTE.len()
        + "String".len()
        + message.platform.as_str().len()
}

#[async_trait]
impl BatchSink for SqsQueue {
    fn is_fifo(&self) -> bool {
        self.fifo
    }

    fn entry_bytes(&self, message: &QueueMessage) -> usize {
        entry_bytes(message)
    }

    fn max_call_bytes(&self) -> usize {
        MAX_BATCH_BYTES
    }

    async fn send_batch(
        &self,
        entries: &[&QueueMessage],
        _attempt_deadline: Instant,
    ) -> Result<Vec<(usize, EntryFailure)>, String> {
        let built = entries
            .iter()
            .enumerate()
            .map(|(i, message)| self.entry(i, message))
            .collect::<Result<Vec<_>, String>>()?;
        let output = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(built))
            .send()
            .await
            .map_err(|error| format!("SendMessageBatch failed: {}", DisplayErrorContext(&error)))?;
        Ok(output
            .failed()
            .iter()
            .filter_map(|failed| {
                let index = failed.id().parse().ok()?;
                let reason = format!("{} {}", failed.code(), failed.message().unwrap_or_default());
                Some((
                    index,
                    if failed.sender_fault() {
                        EntryFailure::Refused(reason)
                    } else {
                        EntryFailure::Retry(reason)
                    },
                ))
            })
            .collect())
    }
}

/// The dead-letter queue, as the worker writes to it: the record's body as it arrived, its
/// platform, and why it failed; on FIFO, the record's message group.
#[derive(Debug, Clone)]
pub struct SqsDeadLetters {
    queue: SqsQueue,
}

impl SqsDeadLetters {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> SqsDeadLetters {
        SqsDeadLetters {
            queue: SqsQueue::new(client, queue_url),
        }
    }
}

#[async_trait]
impl DeadLetterQueue for SqsDeadLetters {
    async fn dead_letter(&self, record: &QueueRecord, reason: &str) -> Result<(), DeadLetterError> {
        let failed = |reason: String| DeadLetterError {
            message_id: record.message_id.clone(),
            reason,
        };
        // Attribute values may hold at most 256 KiB and only SQS's characters; the reason is ours
        // (never content) and short.
        let reason: String = reason
            .chars()
            .filter(|c| !c.is_control())
            .take(500)
            .collect();
        let mut request = self
            .queue
            .client
            .send_message()
            .queue_url(&self.queue.queue_url)
            .message_body(&record.body)
            .message_attributes(
                FAILURE_ATTRIBUTE,
                string_attribute(if reason.is_empty() { "failed" } else { &reason })
                    .map_err(failed)?,
            );
        if let Some(platform) = &record.platform {
            request = request.message_attributes(
                PLATFORM_ATTRIBUTE,
                string_attribute(platform).map_err(failed)?,
            );
        }
        if self.queue.fifo {
            let group = record.group_id.as_deref().unwrap_or("dead-letters");
            request = request
                .message_group_id(fit_for_sqs(group))
                .message_deduplication_id(fit_for_sqs(&format!("dl:{}", record.message_id)));
        }
        request
            .send()
            .await
            .map(|_| ())
            .map_err(|e| failed(format!("SendMessage failed: {}", DisplayErrorContext(&e))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::Platform;

    #[test]
    fn entries_count_their_attribute() {
        let message = QueueMessage::new("k", "c", Platform::Line, &"x".repeat(100));
        assert_eq!(
            entry_bytes(&message),
            100 + "platform".len() + "String".len() + 4
        );
    }
}
