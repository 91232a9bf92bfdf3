//! A tenant's share of outbound API calls: a rate (calls started per second) and a concurrency
//! (calls in flight), shared by all of the tenant's clients in the process, so that one tenant's
//! burst waits for its own quota and never spends another's. Every attempt, retries included,
//! takes its turn; a call that cannot get one before its deadline fails like an unavailable API
//! (the event is released and comes back later).

use crate::tenants::Limits;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The limits of one tenant, in one process.
pub struct Limiter {
    rate: Option<DefaultDirectRateLimiter>,
    concurrency: Option<Arc<Semaphore>>,
    limits: Limits,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("limits", &self.limits)
            .finish()
    }
}

/// A turn to call: hold it while the call runs.
#[derive(Debug)]
pub struct Turn {
    _in_flight: Option<OwnedSemaphorePermit>,
}

impl Limiter {
    /// `None` when `limits` sets neither a rate nor a concurrency.
    pub fn new(limits: Limits) -> Option<Arc<Limiter>> {
        if limits == Limits::default() {
            return None;
        }
        Some(Arc::new(Limiter {
            // A burst of one second's worth, then the steady rate.
            rate: limits
                .requests_per_second
                .map(|n| RateLimiter::direct(Quota::per_second(n))),
            concurrency: limits
                .concurrency
                .map(|n| Arc::new(Semaphore::new(n.get() as usize))),
            limits,
        }))
    }

    /// Waits for a turn until `deadline`; `None` when none came in time.
    pub async fn turn(&self, deadline: Instant) -> Option<Turn> {
        let in_flight = match &self.concurrency {
            Some(semaphore) => Some(
                tokio::time::timeout_at(deadline, Arc::clone(semaphore).acquire_owned())
                    .await
                    .ok()?
                    .ok()?,
            ),
            None => None,
        };
        if let Some(rate) = &self.rate {
            tokio::time::timeout_at(deadline, rate.until_ready())
                .await
                .ok()?;
        }
        Some(Turn {
            _in_flight: in_flight,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;
    use std::time::Duration;

    #[tokio::test]
    async fn a_tenant_waits_for_its_own_quota_only() {
        let limits = Limits {
            requests_per_second: NonZeroU32::new(5),
            concurrency: NonZeroU32::new(2),
        };
        let busy = Limiter::new(limits).expect("limited");
        let quiet = Limiter::new(limits).expect("limited");
        assert!(Limiter::new(Limits::default()).is_none());
        let deadline = Instant::now() + Duration::from_millis(300);
        // The busy tenant spends its burst and its two slots…
        let first = busy.turn(deadline).await.expect("turn");
        let second = busy.turn(deadline).await.expect("turn");
        // …so a third call waits, and gives up at its deadline.
        let short = Instant::now() + Duration::from_millis(50);
        assert!(busy.turn(short).await.is_none(), "no slot free");
        // The other tenant is not held up: a turn within the same short deadline.
        let short = Instant::now() + Duration::from_millis(50);
        assert!(quiet.turn(short).await.is_some());
        drop((first, second));
        assert!(busy.turn(deadline).await.is_some(), "a slot is free again");
    }

    #[tokio::test]
    async fn past_its_burst_a_tenant_gets_its_rate() {
        let limiter = Limiter::new(Limits {
            requests_per_second: NonZeroU32::new(10),
            concurrency: None,
        })
        .expect("limited");
        let started = Instant::now();
        let deadline = started + Duration::from_secs(10);
        for _ in 0..20 {
            assert!(limiter.turn(deadline).await.is_some());
        }
        // A burst of 10 at once, then 10 more at a tenth of a second each.
        assert!(
            started.elapsed() >= Duration::from_millis(800),
            "{:?}",
            started.elapsed()
        );
    }
}
