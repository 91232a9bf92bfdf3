//! The worker's settings.

use crate::budget::BudgetConfig;
use crate::settings::{ConfigError, positive_number};
use std::time::Duration;

/// How long a completed key is remembered: beyond Meta's 36 hours of retries.
pub const DEFAULT_IDEMPOTENCY_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Failed runs of one event before the worker dead-letters it.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// How long a claim's lease outlasts the invocation that took it. Long enough for this process's
/// next invocation to write a completion the store refused, short enough to lapse before the
/// queue delivers the record again (the template's visibility timeout, 180 s, minus the
/// function's timeout, 30 s), so a crashed run is retried on its first redelivery.
pub const DEFAULT_LEASE_GRACE: Duration = Duration::from_secs(60);

/// The worker's settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// How long a completed event's key is remembered (`IDEMPOTENCY_TTL_SECONDS`).
    pub idempotency_ttl: Duration,
    /// Conversations handled at once (`WORKER_CONCURRENCY`).
    pub concurrency: usize,
    /// Failed runs before an event is dead-lettered (`MAX_ATTEMPTS`).
    pub max_attempts: u32,
    /// Receives of an archive-only message before the archive gives up on what still fails
    /// (`ARCHIVE_ATTEMPTS`).
    pub archive_attempts: u32,
    /// See [`DEFAULT_LEASE_GRACE`] (`LEASE_GRACE_SECONDS`).
    pub lease_grace: Duration,
    /// How each invocation's time is divided.
    pub budget: BudgetConfig,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            idempotency_ttl: DEFAULT_IDEMPOTENCY_TTL,
            concurrency: 8,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            archive_attempts: 5,
            lease_grace: DEFAULT_LEASE_GRACE,
            budget: BudgetConfig::default(),
        }
    }
}

impl WorkerConfig {
    /// The defaults, with `IDEMPOTENCY_TTL_SECONDS`, `WORKER_CONCURRENCY`, `MAX_ATTEMPTS`,
    /// `ARCHIVE_ATTEMPTS` and `LEASE_GRACE_SECONDS` applied.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<WorkerConfig, ConfigError> {
        let number = |name| positive_number(&var, name);
        let defaults = WorkerConfig::default();
        Ok(WorkerConfig {
            idempotency_ttl: number("IDEMPOTENCY_TTL_SECONDS")?
                .map_or(defaults.idempotency_ttl, Duration::from_secs),
            concurrency: number("WORKER_CONCURRENCY")?.map_or(defaults.concurrency, |n| n as usize),
            max_attempts: number("MAX_ATTEMPTS")?
                .map_or(defaults.max_attempts, |n| n.min(1000) as u32),
            archive_attempts: number("ARCHIVE_ATTEMPTS")?
                .map_or(defaults.archive_attempts, |n| n.min(1000) as u32),
            lease_grace: number("LEASE_GRACE_SECONDS")?
                .map_or(defaults.lease_grace, Duration::from_secs),
            budget: defaults.budget,
        })
    }
}
