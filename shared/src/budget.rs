//! An invocation's time, as a design rather than a constant: how the worker divides what is left
//! before Lambda stops it, and how every call it makes is bounded inside that.
//!
//! ```text
//!  start            handlers_by                 respond_by   deadline
//!    |--- claims, handlers ---|--- record outcomes ---|-- answer --|
//! ```
//!
//! - Handlers must end by `handlers_by`; none starts with less than `min_handler_time` left.
//! - Outcomes (complete, release, dead-letter) are written by `respond_by`, each request with
//!   its own attempt timeout and retries with backoff while time remains.
//! - The batch response leaves by `respond_by`; Lambda stops the invocation at `deadline`, and a
//!   stopped invocation returns no response, so every record of its batch would come back.
//!
//! Reserves scale with the invocation (a tenth each) within fixed bounds, so that a 30-second
//! Lambda keeps 3 s for outcomes and 250 ms for its answer, and a short local visibility timeout
//! still leaves handlers most of its time.

use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// How an invocation's time is divided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetConfig {
    /// Most time kept for returning the batch response (a tenth of the invocation if less).
    pub response_reserve: Duration,
    /// Most time kept for recording outcomes (a tenth of the invocation if less, at least
    /// `min_record_reserve`).
    pub record_reserve: Duration,
    pub min_record_reserve: Duration,
    /// No handler starts with less time than this before `handlers_by`.
    pub min_handler_time: Duration,
    /// One store or queue request may take this long before it is abandoned and retried.
    pub attempt_timeout: Duration,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            response_reserve: Duration::from_millis(250),
            record_reserve: Duration::from_secs(3),
            min_record_reserve: Duration::from_millis(100),
            min_handler_time: Duration::from_millis(500),
            attempt_timeout: Duration::from_millis(800),
        }
    }
}

/// The instants of one invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub deadline: Instant,
    pub respond_by: Instant,
    pub handlers_by: Instant,
    /// The latest start of a handler.
    pub start_by: Instant,
    pub attempt_timeout: Duration,
}

impl Budget {
    /// Divides the time from `now` to `deadline`.
    pub fn new(config: &BudgetConfig, now: Instant, deadline: Instant) -> Budget {
        let total = deadline.saturating_duration_since(now);
        let tenth = total / 10;
        let response = config.response_reserve.min(tenth);
        let record = config
            .record_reserve
            .min(tenth)
            .max(config.min_record_reserve.min(tenth * 2));
        let respond_by = deadline.checked_sub(response).unwrap_or(now).max(now);
        let handlers_by = respond_by.checked_sub(record).unwrap_or(now).max(now);
        let start_by = handlers_by
            .checked_sub(config.min_handler_time.min(tenth))
            .unwrap_or(now)
            .max(now);
        Budget {
            deadline,
            respond_by,
            handlers_by,
            start_by,
            attempt_timeout: config.attempt_timeout,
        }
    }
}

/// Why a bounded call gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GaveUp {
    pub attempts: u32,
    pub last: String,
}

impl std::fmt::Display for GaveUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (after {} attempts)", self.last, self.attempts)
    }
}

const FIRST_BACKOFF: Duration = Duration::from_millis(25);
const MAX_BACKOFF: Duration = Duration::from_millis(400);
/// No attempt starts with less than this before `until`: it could not finish.
const MIN_ATTEMPT: Duration = Duration::from_millis(20);

/// Runs `call` until it succeeds or `until` comes: each attempt cut off after `attempt_timeout`
/// (or at `until`), failed attempts retried with jittered exponential backoff. An attempt cut
/// off may still have taken effect: callers only retry requests that are safe to repeat.
pub async fn retry_until<T, E, F, Fut>(
    until: Instant,
    attempt_timeout: Duration,
    mut call: F,
) -> Result<T, GaveUp>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let mut backoff = FIRST_BACKOFF;
    let mut attempts = 0;
    let mut last = "no time left to try".to_owned();
    loop {
        let now = Instant::now();
        if now + MIN_ATTEMPT > until {
            return Err(GaveUp { attempts, last });
        }
        attempts += 1;
        let attempt_deadline = (now + attempt_timeout).min(until);
        match tokio::time::timeout_at(attempt_deadline, call()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) => last = error.to_string(),
            Err(_) => last = "no answer within the attempt timeout".to_owned(),
        }
        let wait = backoff.mul_f64(0.5 + fastrand::f64() / 2.0);
        if Instant::now() + wait + MIN_ATTEMPT > until {
            return Err(GaveUp { attempts, last });
        }
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thirty_second_invocation_keeps_three_seconds_for_outcomes_and_a_quarter_for_the_answer() {
        let now = Instant::now();
        let budget = Budget::new(&BudgetConfig::default(), now, now + Duration::from_secs(30));
        assert_eq!(
            budget.deadline - budget.respond_by,
            Duration::from_millis(250)
        );
        assert_eq!(
            budget.respond_by - budget.handlers_by,
            Duration::from_secs(3)
        );
        assert_eq!(
            budget.handlers_by - budget.start_by,
            Duration::from_millis(500)
        );
    }

    #[test]
    fn a_short_invocation_still_leaves_handlers_most_of_it() {
        let now = Instant::now();
        let budget = Budget::new(&BudgetConfig::default(), now, now + Duration::from_secs(1));
        assert_eq!(
            budget.deadline - budget.respond_by,
            Duration::from_millis(100)
        );
        assert_eq!(
            budget.respond_by - budget.handlers_by,
            Duration::from_millis(100)
        );
        assert!(budget.start_by - now >= Duration::from_millis(700));
        let none = Budget::new(&BudgetConfig::default(), now, now);
        assert_eq!((none.start_by, none.respond_by), (now, now));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_stop_at_the_deadline_whatever_the_call_does() {
        let start = Instant::now();
        let until = start + Duration::from_secs(2);
        // A call that never answers: each attempt is cut off.
        let hung: Result<(), GaveUp> = retry_until(until, Duration::from_millis(500), || async {
            std::future::pending::<Result<(), String>>().await
        })
        .await;
        let gave_up = hung.expect_err("gives up");
        assert!(gave_up.attempts >= 3, "{gave_up:?}");
        assert!(Instant::now() <= until);
        // A call that fails twice then succeeds.
        let mut failures = 2;
        let value = retry_until(
            until + Duration::from_secs(5),
            Duration::from_millis(500),
            || {
                let fail = failures > 0;
                failures -= 1;
                async move { if fail { Err("throttled") } else { Ok(7) } }
            },
        )
        .await;
        assert_eq!(value, Ok(7));
    }
}
