//! Fault injection for the ports: wraps a real adapter and fails a share of its calls, either
//! before the call (nothing happened) or after it (the work was done but the caller sees an
//! error, as when a response is lost). For fault and load tests.

use crate::ports::{
    Claim, EnqueueError, EventQueue, IdempotencyStore, QueueMessage, Release, StoreError,
};
use async_trait::async_trait;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::time::Instant;

/// Which calls fail.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultPlan {
    /// Share of calls that fail, 0.0 to 1.0.
    pub rate: f64,
    /// Of those, the share that fail after the wrapped call succeeded.
    pub after_share: f64,
}

/// An adapter with injected faults.
pub struct Faulty<T> {
    inner: T,
    plan: FaultPlan,
    rng: Mutex<fastrand::Rng>,
    /// Faults injected so far.
    pub injected: AtomicUsize,
}

enum Fault {
    None,
    Before,
    After,
}

impl<T> Faulty<T> {
    /// Wraps `inner`; `seed` makes a run repeatable.
    pub fn new(inner: T, plan: FaultPlan, seed: u64) -> Faulty<T> {
        Faulty {
            inner,
            plan,
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            injected: AtomicUsize::new(0),
        }
    }

    pub fn inner(&self) -> &T {
        &self.inner
    }

    pub fn injected(&self) -> usize {
        self.injected.load(Ordering::SeqCst)
    }

    fn draw(&self) -> Fault {
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        if rng.f64() >= self.plan.rate {
            return Fault::None;
        }
        self.injected.fetch_add(1, Ordering::SeqCst);
        if rng.f64() < self.plan.after_share {
            Fault::After
        } else {
            Fault::Before
        }
    }
}

fn store_fault(operation: &'static str, key: &str, when: &str) -> StoreError {
    StoreError {
        operation,
        key: key.to_owned(),
        reason: format!("injected fault ({when} the call)"),
    }
}

#[async_trait]
impl<T: EventQueue> EventQueue for Faulty<T> {
    async fn send_all(
        &self,
        messages: &[QueueMessage],
        deadline: Instant,
    ) -> Result<(), EnqueueError> {
        let fault = self.draw();
        let injected = |when: &str| EnqueueError {
            total: messages.len(),
            failed: messages.len(),
            reason: format!("injected fault ({when} the call)"),
        };
        match fault {
            Fault::Before => Err(injected("before")),
            Fault::None => self.inner.send_all(messages, deadline).await,
            Fault::After => {
                self.inner.send_all(messages, deadline).await?;
                Err(injected("after"))
            }
        }
    }

    fn max_message_bytes(&self) -> usize {
        self.inner.max_message_bytes()
    }
}

#[async_trait]
impl<T: IdempotencyStore> IdempotencyStore for Faulty<T> {
    async fn claim(
        &self,
        key: &str,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
        expires_at_ms: i64,
    ) -> Result<Claim, StoreError> {
        match self.draw() {
            Fault::Before => Err(store_fault("claim", key, "before")),
            Fault::None => {
                self.inner
                    .claim(key, owner, now_ms, lease_until_ms, expires_at_ms)
                    .await
            }
            Fault::After => {
                self.inner
                    .claim(key, owner, now_ms, lease_until_ms, expires_at_ms)
                    .await?;
                Err(store_fault("claim", key, "after"))
            }
        }
    }

    async fn complete(&self, key: &str, expires_at_ms: i64) -> Result<(), StoreError> {
        match self.draw() {
            Fault::Before => Err(store_fault("complete", key, "before")),
            Fault::None => self.inner.complete(key, expires_at_ms).await,
            Fault::After => {
                self.inner.complete(key, expires_at_ms).await?;
                Err(store_fault("complete", key, "after"))
            }
        }
    }

    async fn release(&self, key: &str, owner: &str, release: Release) -> Result<(), StoreError> {
        match self.draw() {
            Fault::Before => Err(store_fault("release", key, "before")),
            Fault::None => self.inner.release(key, owner, release).await,
            Fault::After => {
                self.inner.release(key, owner, release).await?;
                Err(store_fault("release", key, "after"))
            }
        }
    }
}
