//! Adapters: the ports of [`crate::ports`] over real services, one module each.
//!
//! | adapter | port | for |
//! | --- | --- | --- |
//! | [`sqs::SqsQueue`] | [`EventQueue`](crate::ports::EventQueue) | AWS (and moto in tests) |
//! | [`memory::MemoryQueue`] | [`EventQueue`](crate::ports::EventQueue) | unit tests, embedding |
//! | [`dynamodb::DynamoDbStore`] | [`IdempotencyStore`](crate::ports::IdempotencyStore) | AWS (and moto in tests) |
//! | [`memory::MemoryStore`] | [`IdempotencyStore`](crate::ports::IdempotencyStore) | unit tests, embedding |
//! | [`faulty::Faulty`] | both | fault injection around any adapter, for fault and load tests |
//! | [`sqlite::SqliteQueue`], [`sqlite::SqliteStore`] | both | the local pipeline: durable, embedded |
//! | [`secrets_manager::SecretsManagerSource`] | [`SecretSource`](crate::settings::SecretSource) | AWS (and moto in tests) |
//!
//! [`conformance::check_idempotency_store`] is the store contract that every store adapter's tests run.

pub mod conformance;
#[cfg(feature = "aws")]
pub mod dynamodb;
pub mod faulty;
pub mod memory;
#[cfg(feature = "aws")]
pub mod secrets_manager;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(feature = "aws")]
pub mod sqs;
