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
