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
//! | [`dynamodb_archive::DynamoDbArchive`], [`s3::S3Media`] | [`ArchiveStore`](crate::ports::ArchiveStore), [`MediaStore`](crate::ports::MediaStore) | AWS (and moto in tests) |
//! | [`sqlite_archive::SqliteArchive`] | both archive ports | the local pipeline |
//! | [`secrets_manager::SecretsManagerSource`] | [`SecretSource`](crate::settings::SecretSource) | AWS (and moto in tests) |
//!
//! [`conformance::check_idempotency_store`] and [`conformance::check_archive`] are the contracts that
//! every store adapter's tests run.

pub mod conformance;
#[cfg(feature = "aws")]
pub mod dynamodb;
#[cfg(feature = "aws")]
pub mod dynamodb_archive;
pub mod faulty;
pub mod memory;
#[cfg(feature = "s3")]
pub mod s3;
#[cfg(feature = "aws")]
pub mod secrets_manager;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(feature = "sqlite")]
pub mod sqlite_archive;
#[cfg(feature = "aws")]
pub mod sqs;
