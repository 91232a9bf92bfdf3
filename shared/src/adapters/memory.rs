//! In-process adapters: for unit tests and for embedding the gateway where nothing must persist.

use crate::ports::{
    Claim, EnqueueError, EventQueue, IdempotencyStore, QueueMessage, Release, StoreError,
};
use async_trait::async_trait;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::time::Instant;

/// A queue that keeps messages in memory. It can be told to fail the next calls, to show what
/// callers do when the queue is down, and to refuse what SQS refuses ([`MemoryQueue::like_sqs`]).
#[derive(Debug, Default)]
pub struct MemoryQueue {
    messages: Mutex<Vec<QueueMessage>>,
    failures_left: AtomicUsize,
    max_message_bytes: Option<usize>,
    sqs_rules: bool,
}

/// SQS's rule for message bodies, as the AWS documentation states it (moto does not enforce it):
/// `#x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF`.
pub fn sqs_accepts(body: &str) -> bool {
    body.chars().all(|c| {
        matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
    })
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

    /// A queue that refuses, as SQS does, bodies over 1 MiB and bodies holding characters outside
    /// [`sqs_accepts`]'s set: the whole call fails and nothing is queued.
    pub fn like_sqs() -> MemoryQueue {
        MemoryQueue {
            max_message_bytes: Some(crate::enqueue::MAX_BATCH_BYTES - 64),
            sqs_rules: true,
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
        if self.sqs_rules {
            let limit = self.max_message_bytes();
            if let Some(refused) = messages
                .iter()
                .find(|m| m.body().len() > limit || !sqs_accepts(m.body()))
            {
                return Err(EnqueueError {
                    total: messages.len(),
                    failed: messages.len(),
                    reason: format!(
                        "InvalidMessageContents: the body of {} breaks SQS's rules",
                        refused.key()
                    ),
                });
            }
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
enum Status {
    InProgress { owner: String, lease_until_ms: i64 },
    Completed,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct StoredRecord {
    status: Status,
    failures: u32,
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
        self.lock()
            .get(key)
            .is_some_and(|r| r.status == Status::Completed)
    }

    /// Whether a record (of any status) exists for `key`.
    pub fn has_record(&self, key: &str) -> bool {
        self.lock().contains_key(key)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, StoredRecord>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn request(&self, operation: &'static str, key: &str) -> Result<(), StoreError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let failing = self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(StoreError {
                operation,
                key: key.to_owned(),
                reason: "memory store told to fail".into(),
            });
        }
        Ok(())
    }
}

/// The DynamoDB adapter's expiry rule, at its granularity: `expiration` is kept in seconds.
fn expired(record: &StoredRecord, now_ms: i64) -> bool {
    record.expires_at_ms / 1000 < now_ms / 1000
}

#[async_trait]
impl IdempotencyStore for MemoryStore {
    async fn claim(
        &self,
        key: &str,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
        expires_at_ms: i64,
    ) -> Result<Claim, StoreError> {
        self.request("claim", key)?;
        let mut records = self.lock();
        let failures = match records.get(key) {
            Some(record) if !expired(record, now_ms) => match &record.status {
                Status::Completed => return Ok(Claim::AlreadyCompleted),
                Status::InProgress {
                    owner: holder,
                    lease_until_ms: until,
                } if holder != owner && *until >= now_ms => {
                    return Ok(Claim::InProgressElsewhere { until_ms: *until });
                }
                _ => record.failures,
            },
            _ => 0,
        };
        records.insert(
            key.to_owned(),
            StoredRecord {
                status: Status::InProgress {
                    owner: owner.to_owned(),
                    lease_until_ms,
                },
                failures,
                expires_at_ms,
            },
        );
        Ok(Claim::Claimed {
            attempt: failures + 1,
        })
    }

    async fn complete(&self, key: &str, expires_at_ms: i64) -> Result<(), StoreError> {
        self.request("complete", key)?;
        self.lock().insert(
            key.to_owned(),
            StoredRecord {
                status: Status::Completed,
                failures: 0,
                expires_at_ms,
            },
        );
        Ok(())
    }

    async fn release(&self, key: &str, owner: &str, release: Release) -> Result<(), StoreError> {
        self.request("release", key)?;
        let mut records = self.lock();
        let held = records.get(key).is_some_and(
            |r| matches!(&r.status, Status::InProgress { owner: holder, .. } if holder == owner),
        );
        if !held {
            return Ok(());
        }
        match release {
            Release::Forget => {
                records.remove(key);
            }
            Release::Retry { .. } => {
                if let Some(record) = records.get_mut(key) {
                    record.status = Status::Failed;
                    record.failures += 1;
                }
            }
        }
        Ok(())
    }
}

/// A dead-letter queue in memory: what the worker gave up on, with the reasons.
#[derive(Debug, Default)]
pub struct MemoryDeadLetters {
    letters: Mutex<Vec<(crate::worker::QueueRecord, String)>>,
}

impl MemoryDeadLetters {
    pub fn new() -> MemoryDeadLetters {
        MemoryDeadLetters::default()
    }

    /// Every record dead-lettered so far, with its reason.
    pub fn letters(&self) -> Vec<(crate::worker::QueueRecord, String)> {
        self.letters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[async_trait]
impl crate::ports::DeadLetterQueue for MemoryDeadLetters {
    async fn dead_letter(
        &self,
        record: &crate::worker::QueueRecord,
        reason: &str,
    ) -> Result<(), crate::ports::DeadLetterError> {
        self.letters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((record.clone(), reason.to_owned()));
        Ok(())
    }
}

/// Claim-check objects in memory.
#[derive(Debug, Default)]
pub struct MemoryClaims {
    objects: Mutex<std::collections::HashMap<String, bytes::Bytes>>,
}

impl MemoryClaims {
    pub fn new() -> MemoryClaims {
        MemoryClaims::default()
    }

    /// The names of the objects held.
    pub fn objects(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .objects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }
}

#[async_trait]
impl crate::ports::ClaimStore for MemoryClaims {
    async fn put(&self, object: &str, bytes: bytes::Bytes) -> Result<(), crate::ports::ClaimError> {
        self.objects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(object.to_owned(), bytes);
        Ok(())
    }

    async fn get(&self, object: &str) -> Result<Option<bytes::Bytes>, crate::ports::ClaimError> {
        Ok(self
            .objects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(object)
            .cloned())
    }

    async fn delete(&self, object: &str) -> Result<(), crate::ports::ClaimError> {
        self.objects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(object);
        Ok(())
    }
}
