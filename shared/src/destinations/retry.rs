//! One delivery's attempts, inside the event's deadline, and the counts the worker reports as
//! metrics.

use crate::bot::{BotError, Permanent};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// What one attempt came to, when it did not deliver.
#[derive(Debug)]
pub enum Attempt {
    /// Worth another try (`5xx`, `408`, `409`, `429`, a timeout, the network, a throttled or
    /// failed entry), after `after` if the destination said so (`Retry-After`).
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// No retry can fix it: the event is dead-lettered at once with this reason.
    Permanent(String),
}

/// Deliveries by outcome, since the worker last took them (its metrics, per batch).
#[derive(Debug, Default)]
pub struct DeliveryStats {
    delivered: AtomicU64,
    failed_attempts: AtomicU64,
    refused: AtomicU64,
}

/// [`DeliveryStats::take`]'s counts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryCounts {
    /// Events acknowledged by the destination.
    pub delivered: u64,
    /// Attempts that failed and were (or will be) retried.
    pub failed_attempts: u64,
    /// Events the destination refused for good (dead-lettered at once).
    pub refused: u64,
}

impl DeliveryStats {
    /// The counts so far, reset to zero.
    pub fn take(&self) -> DeliveryCounts {
        DeliveryCounts {
            delivered: self.delivered.swap(0, Ordering::Relaxed),
            failed_attempts: self.failed_attempts.swap(0, Ordering::Relaxed),
            refused: self.refused.swap(0, Ordering::Relaxed),
        }
    }
}

const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// No attempt starts with less time than this left before the deadline.
const MIN_ATTEMPT: Duration = Duration::from_millis(250);

/// Runs `attempt` (given the time it may take) until it delivers, fails for good, or the next try
/// could not finish before `deadline`. Waits between tries grow exponentially with full jitter
/// (200 ms doubling to 5 s), or follow the destination's `Retry-After` when it fits. A failure at
/// the deadline is an ordinary error: the worker releases the event and the queue brings it back.
pub async fn deliver_with_retries<F, Fut>(
    destination: &'static str,
    stats: &DeliveryStats,
    deadline: Instant,
    mut attempt: F,
) -> Result<(), BotError>
where
    F: FnMut(Duration) -> Fut,
    Fut: std::future::Future<Output = Result<(), Attempt>>,
{
    let mut backoff = FIRST_BACKOFF;
    let mut attempts = 0u32;
    loop {
        let now = Instant::now();
        let left = deadline.saturating_duration_since(now);
        if left < MIN_ATTEMPT {
            return Err(format!(
                "{destination} destination: no time left in the event's deadline to try (attempts: {attempts})"
            )
            .into());
        }
        attempts += 1;
        let outcome = match tokio::time::timeout_at(deadline, attempt(left)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Attempt::Retry {
                reason: "no answer before the event's deadline".into(),
                after: None,
            }),
        };
        let (reason, after) = match outcome {
            Ok(()) => {
                stats.delivered.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            Err(Attempt::Permanent(reason)) => {
                stats.refused.fetch_add(1, Ordering::Relaxed);
                return Err(Permanent::boxed(format!(
                    "{destination} destination refused the event: {reason}"
                )));
            }
            Err(Attempt::Retry { reason, after }) => (reason, after),
        };
        stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(target: "destination", destination, attempts, %reason, "delivery attempt failed");
        // Full jitter: concurrent workers retrying one endpoint spread out instead of marching.
        let jittered = backoff.mul_f64(fastrand::f64());
        let wait = after.map_or(jittered, |after| after.max(jittered));
        if Instant::now() + wait + MIN_ATTEMPT > deadline {
            return Err(format!(
                "{destination} destination still failing at the event's deadline after {attempts} attempts: {reason}"
            )
            .into());
        }
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bot::is_permanent;

    #[tokio::test(start_paused = true)]
    async fn retries_until_delivered_and_counts_every_failed_attempt() {
        let stats = DeliveryStats::default();
        let mut calls = 0;
        let result = deliver_with_retries(
            "test",
            &stats,
            Instant::now() + Duration::from_secs(20),
            |_| {
                calls += 1;
                let fail = calls < 3;
                async move {
                    if fail {
                        Err(Attempt::Retry {
                            reason: "503".into(),
                            after: None,
                        })
                    } else {
                        Ok(())
                    }
                }
            },
        )
        .await;
        assert!(result.is_ok());
        assert_eq!(
            stats.take(),
            DeliveryCounts {
                delivered: 1,
                failed_attempts: 2,
                refused: 0
            }
        );
        assert_eq!(stats.take(), DeliveryCounts::default(), "taken");
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_refusal_is_not_retried_and_a_lasting_failure_stops_at_the_deadline() {
        let stats = DeliveryStats::default();
        let deadline = Instant::now() + Duration::from_secs(10);
        let refused = deliver_with_retries("test", &stats, deadline, |_| async {
            Err(Attempt::Permanent("404".into()))
        })
        .await
        .expect_err("refused");
        assert!(is_permanent(refused.as_ref()));
        assert_eq!(stats.take().refused, 1);

        let failed = deliver_with_retries("test", &stats, deadline, |_| async {
            Err(Attempt::Retry {
                reason: "503".into(),
                after: Some(Duration::from_secs(1)),
            })
        })
        .await
        .expect_err("still failing");
        assert!(!is_permanent(failed.as_ref()));
        assert!(Instant::now() <= deadline, "never past the deadline");
        let counts = stats.take();
        assert!(
            (5..=10).contains(&counts.failed_attempts),
            "Retry-After of 1 s over 10 s: {counts:?}"
        );
    }
}
