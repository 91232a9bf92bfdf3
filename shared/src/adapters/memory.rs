//! In-process adapters: for unit tests and for embedding the gateway where nothing must persist.

use crate::ports::{EnqueueError, EventQueue, QueueMessage};
use async_trait::async_trait;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::time::Instant;

/// A queue that keeps messages in memory. It can be told to fail the next calls, to show what
/// callers do when the queue is down.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    messages: Mutex<Vec<QueueMessage>>,
    failures_left: AtomicUsize,
    max_message_bytes: Option<usize>,
}

impl MemoryQueue {
    pub fn new() -> MemoryQueue {
        MemoryQueue::default()
    }

    /// A queue that takes messages up to `bytes` (SQS: 262,144).
    pub fn with_max_message_bytes(bytes: usize) -> MemoryQueue {
        MemoryQueue {
            max_message_bytes: Some(bytes),
            ..MemoryQueue::default()
        }
    }

    /// The next `calls` calls to [`EventQueue::send_all`] fail and queue nothing.
    pub fn fail_next(&self, calls: usize) {
        self.failures_left.store(calls, Ordering::SeqCst);
    }

    /// Everything queued so far, in order.
    pub fn messages(&self) -> Vec<QueueMessage> {
        self.lock().clone()
    }

    /// Takes everything queued so far.
    pub fn drain(&self) -> Vec<QueueMessage> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<QueueMessage>> {
        // A panic while holding the lock cannot leave the Vec half-written: keep using it.
        self.messages.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl EventQueue for MemoryQueue {
    async fn send_all(
        &self,
        messages: &[QueueMessage],
        _deadline: Instant,
    ) -> Result<(), EnqueueError> {
        let failing = self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(EnqueueError {
                total: messages.len(),
                failed: messages.len(),
                reason: "memory queue told to fail".into(),
            });
        }
        self.lock().extend_from_slice(messages);
        Ok(())
    }

    fn max_message_bytes(&self) -> usize {
        self.max_message_bytes.unwrap_or(usize::MAX)
    }
}

/// An idempotency store in memory, with the same semantics as the DynamoDB adapter. It counts its
/// requests and can be told to fail, for tests of the worker.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<std::collections::HashMap<String, StoredRecord>>,
    requests: AtomicUsize,
    failures_left: AtomicUsize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct StoredRecord {
    completed: bool,
    in_progress_until_ms: i64,
    expires_at_ms: i64,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Requests made so far (claims, completions and releases).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// The next `requests` requests fail.
    pub fn fail_next(&self, requests: usize) {
        self.failures_left.store(requests, Ordering::SeqCst);
    }

    /// Whether `key` is recorded as completed.
    pub fn is_completed(&self, key: &str) -> bool {
        self.lock().get(key).is_some_and(|r| r.completed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, StoredRecord>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn request(&self, operation: &'static str, key: &str) -> Result<(), crate::ports::StoreError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let failing = self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(crate::ports::StoreError {
                operation,
                key: key.to_owned(),
                reason: "memory store told to fail".into(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl crate::ports::IdempotencyStore for MemoryStore {
    async fn claim(
        &self,
        key: &str,
        now_ms: i64,
        in_progress_until_ms: i64,
        expires_at_ms: i64,
    ) -> Result<crate::ports::Claim, crate::ports::StoreError> {
        use crate::ports::Claim;
        self.request("claim", key)?;
        let mut records = self.lock();
        if let Some(record) = records.get(key) {
            // The same condition as the DynamoDB adapter, at the same (seconds) granularity.
            let expired = record.expires_at_ms / 1000 < now_ms / 1000;
            let lapsed = !record.completed && record.in_progress_until_ms < now_ms;
            if !expired && !lapsed {
                return Ok(if record.completed {
                    Claim::AlreadyCompleted
                } else {
                    Claim::InProgressElsewhere {
                        until_ms: record.in_progress_until_ms,
                    }
                });
            }
        }
        records.insert(
            key.to_owned(),
            StoredRecord {
                completed: false,
                in_progress_until_ms,
                expires_at_ms,
            },
        );
        Ok(Claim::Claimed)
    }

    async fn complete(
        &self,
        key: &str,
        expires_at_ms: i64,
    ) -> Result<(), crate::ports::StoreError> {
        self.request("complete", key)?;
        self.lock().insert(
            key.to_owned(),
            StoredRecord {
                completed: true,
                in_progress_until_ms: 0,
                expires_at_ms,
            },
        );
        Ok(())
    }

    async fn release(&self, key: &str) -> Result<(), crate::ports::StoreError> {
        self.request("release", key)?;
        let mut records = self.lock();
        if records.get(key).is_some_and(|r| !r.completed) {
            records.remove(key);
        }
        Ok(())
    }
}
