//! DynamoDB's conditional writes, as the idempotency store sees them, with the faults AWS
//! documents: throttling (`ProvisionedThroughputExceededException`, nothing written), requests
//! that time out, and writes that succeed but whose answer is lost (the caller sees a failure).
//! The conditions themselves are the in-memory store's, which the conformance check holds to the
//! DynamoDB adapter's. Also the claim-check bucket (S3), with the same kinds of faults.

use crate::sqs::Fault;
use crate::world::World;
use async_trait::async_trait;
use bytes::Bytes;
use shared::adapters::memory::{MemoryClaims, MemoryStore};
use shared::ports::{Claim, ClaimError, ClaimStore, IdempotencyStore, Release, StoreError};
use std::future::Future;
use std::sync::Arc;

pub struct StoreModel {
    pub inner: Arc<MemoryStore>,
    world: Arc<World>,
}

impl StoreModel {
    pub fn new(world: Arc<World>) -> StoreModel {
        StoreModel {
            inner: Arc::new(MemoryStore::new()),
            world,
        }
    }

    /// Runs `write` as the service would: after a latency, whether or not the caller still
    /// waits; refused before, or done and reported failed after, per this run's faults.
    async fn request<T, F>(
        &self,
        operation: &'static str,
        key: &str,
        write: impl FnOnce(Arc<MemoryStore>) -> F + Send + 'static,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send,
    {
        let fault = if self.world.store_down() {
            self.world.injected("DynamoDB request during an outage");
            Fault::Before
        } else {
            self.world.call_fault(
                "DynamoDB request throttled or its answer lost",
                self.world.faults.store_fault,
            )
        };
        let latency = self.world.latency(
            "DynamoDB request slower than the attempt timeout",
            self.world.faults.store_slow,
        );
        let store = Arc::clone(&self.inner);
        let failed = StoreError {
            operation,
            key: key.to_owned(),
            reason: "ProvisionedThroughputExceededException".into(),
        };
        let (answer, answered) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            tokio::time::sleep(latency).await;
            let result = match fault {
                Fault::Before => Err(failed),
                Fault::None => write(store).await,
                Fault::After => write(store).await.and(Err(failed)),
            };
            let _ = answer.send(result);
        });
        answered.await.unwrap_or_else(|_| {
            Err(StoreError {
                operation,
                key: key.to_owned(),
                reason: "no answer".into(),
            })
        })
    }
}

#[async_trait]
impl IdempotencyStore for StoreModel {
    async fn claim(
        &self,
        key: &str,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
        expires_at_ms: i64,
    ) -> Result<Claim, StoreError> {
        let (k, o) = (key.to_owned(), owner.to_owned());
        self.request("claim", key, move |store| async move {
            store
                .claim(&k, &o, now_ms, lease_until_ms, expires_at_ms)
                .await
        })
        .await
    }

    async fn complete(&self, key: &str, expires_at_ms: i64) -> Result<(), StoreError> {
        let k = key.to_owned();
        self.request("complete", key, move |store| async move {
            store.complete(&k, expires_at_ms).await
        })
        .await
    }

    async fn release(&self, key: &str, owner: &str, release: Release) -> Result<(), StoreError> {
        let (k, o) = (key.to_owned(), owner.to_owned());
        self.request("release", key, move |store| async move {
            store.release(&k, &o, release).await
        })
        .await
    }
}

/// The claim-check bucket.
pub struct ClaimsModel {
    pub inner: MemoryClaims,
    world: Arc<World>,
}

impl ClaimsModel {
    pub fn new(world: Arc<World>) -> ClaimsModel {
        ClaimsModel {
            inner: MemoryClaims::new(),
            world,
        }
    }

    async fn fault(&self, operation: &'static str, object: &str) -> Result<Fault, ClaimError> {
        let fault = self
            .world
            .call_fault("S3 claim-check request failed", self.world.faults.sqs_fault);
        tokio::time::sleep(
            self.world
                .latency("S3 claim-check request slow", self.world.faults.sqs_slow),
        )
        .await;
        match fault {
            Fault::Before => Err(ClaimError {
                operation,
                object: object.to_owned(),
                reason: "SlowDown".into(),
            }),
            other => Ok(other),
        }
    }
}

#[async_trait]
impl ClaimStore for ClaimsModel {
    async fn put(&self, object: &str, bytes: Bytes) -> Result<(), ClaimError> {
        let fault = self.fault("put", object).await?;
        self.inner.put(object, bytes).await?;
        match fault {
            Fault::After => Err(ClaimError {
                operation: "put",
                object: object.to_owned(),
                reason: "connection reset".into(),
            }),
            _ => Ok(()),
        }
    }

    async fn get(&self, object: &str) -> Result<Option<Bytes>, ClaimError> {
        self.fault("get", object).await?;
        self.inner.get(object).await
    }

    async fn delete(&self, object: &str) -> Result<(), ClaimError> {
        self.fault("delete", object).await?;
        self.inner.delete(object).await
    }
}
