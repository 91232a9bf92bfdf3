//! WhatsApp's throughput rules, kept before a message is sent rather than learnt from errors.
//!
//! - **Pair rate**: about one message every 6 seconds from a business number to the same user
//!   (error 131056 beyond it).
//! - **Number throughput**: a business number sends at most its messages per second (80 by
//!   default, raised by Meta for busy numbers; error 130429 beyond it).
//!
//! One [`Throughput`] is shared by every handler of a worker process ([`Throughput::shared`]), so
//! concurrent events to the same user wait their turn instead of spending an error. Several
//! workers (Lambda sandboxes) each keep their own count: the number's limit is divided between
//! them by configuring `WHATSAPP_MESSAGES_PER_SECOND` as the number's limit over the worker's
//! `WorkerMaxConcurrency`, and the pair rate holds per conversation as long as one conversation's
//! events are handled one after the other (FIFO queues, or one batch of a standard queue).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::time::Instant;

/// Meta's pair rate: one message to the same user every 6 seconds.
pub const DEFAULT_PAIR_INTERVAL: Duration = Duration::from_secs(6);
/// Meta's default number throughput.
pub const DEFAULT_MESSAGES_PER_SECOND: usize = 80;

/// The limits and the sends they have seen.
#[derive(Debug)]
pub struct Throughput {
    pair_interval: Duration,
    per_second: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The next time a message may go to each (number, user).
    next_to_user: HashMap<(String, String), Instant>,
    /// Each number's send times within the last second (at most `per_second`).
    recent: HashMap<String, VecDeque<Instant>>,
}

/// Why a message was not sent: its turn would come after the deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait {
    /// The user's pair rate.
    Pair { until: Instant },
    /// The number's throughput.
    Number { until: Instant },
}

/// The most (number, user) pairs remembered; older ones have long passed their interval.
const MAX_PAIRS: usize = 100_000;

impl Throughput {
    pub fn new(pair_interval: Duration, per_second: usize) -> Throughput {
        Throughput {
            pair_interval,
            per_second: per_second.max(1),
            state: Mutex::new(State::default()),
        }
    }

    /// The process's limiter, with `WHATSAPP_PAIR_INTERVAL_MS` and `WHATSAPP_MESSAGES_PER_SECOND`
    /// read once: the API clients are rebuilt when settings reload, the counts must survive.
    pub fn shared() -> Arc<Throughput> {
        static SHARED: OnceLock<Arc<Throughput>> = OnceLock::new();
        Arc::clone(SHARED.get_or_init(|| {
            let number = |name: &str| {
                std::env::var(name)
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok())
            };
            Arc::new(Throughput::new(
                number("WHATSAPP_PAIR_INTERVAL_MS")
                    .map_or(DEFAULT_PAIR_INTERVAL, Duration::from_millis),
                number("WHATSAPP_MESSAGES_PER_SECOND")
                    .map_or(DEFAULT_MESSAGES_PER_SECOND, |n| n as usize),
            ))
        }))
    }

    /// Takes the next turn to send from `number` to `user`, and waits for it; fails at once,
    /// taking nothing, when the turn would come later than `latest`.
    pub async fn acquire(&self, number: &str, user: &str, latest: Instant) -> Result<(), Wait> {
        let at = self.reserve(number, user, latest)?;
        tokio::time::sleep_until(at).await;
        Ok(())
    }

    fn reserve(&self, number: &str, user: &str, latest: Instant) -> Result<Instant, Wait> {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let pair = (number.to_owned(), user.to_owned());
        let user_turn = state
            .next_to_user
            .get(&pair)
            .copied()
            .unwrap_or(now)
            .max(now);
        if user_turn > latest {
            return Err(Wait::Pair { until: user_turn });
        }
        // The number's turn: once the oldest of the last `per_second` sends is a second old.
        let window = Duration::from_secs(1);
        let recent = state.recent.entry(number.to_owned()).or_default();
        while recent.front().is_some_and(|t| *t + window <= user_turn) {
            recent.pop_front();
        }
        let turn = if recent.len() >= self.per_second {
            let freed = recent
                .get(recent.len() - self.per_second)
                .map_or(user_turn, |t| *t + window);
            freed.max(user_turn)
        } else {
            user_turn
        };
        if turn > latest {
            return Err(Wait::Number { until: turn });
        }
        recent.push_back(turn);
        while recent.len() > self.per_second {
            recent.pop_front();
        }
        if state.next_to_user.len() >= MAX_PAIRS {
            state.next_to_user.retain(|_, next| *next > now);
        }
        state.next_to_user.insert(pair, turn + self.pair_interval);
        Ok(turn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_user_waits_the_pair_interval_others_do_not() {
        let limits = Throughput::new(Duration::from_secs(6), 80);
        let start = Instant::now();
        let far = start + Duration::from_secs(60);
        limits.acquire("n1", "alice", far).await.unwrap();
        limits.acquire("n1", "bob", far).await.unwrap();
        assert_eq!(Instant::now(), start, "different users: no wait");
        limits.acquire("n1", "alice", far).await.unwrap();
        assert_eq!(Instant::now(), start + Duration::from_secs(6));
        limits.acquire("n2", "alice", far).await.unwrap();
        assert_eq!(
            Instant::now(),
            start + Duration::from_secs(6),
            "another number"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_turn_past_the_deadline_is_refused_without_being_taken() {
        let limits = Throughput::new(Duration::from_secs(6), 80);
        let start = Instant::now();
        limits.acquire("n", "u", start).await.unwrap();
        let refused = limits
            .acquire("n", "u", start + Duration::from_secs(2))
            .await;
        assert_eq!(
            refused,
            Err(Wait::Pair {
                until: start + Duration::from_secs(6)
            })
        );
        // The refusal took no turn: the next caller gets 6 s, not 12.
        limits
            .acquire("n", "u", start + Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(Instant::now(), start + Duration::from_secs(6));
    }

    #[tokio::test(start_paused = true)]
    async fn a_number_sends_at_most_its_rate_per_second() {
        let limits = Throughput::new(Duration::from_secs(6), 3);
        let start = Instant::now();
        let far = start + Duration::from_secs(60);
        for user in ["a", "b", "c"] {
            limits.acquire("n", user, far).await.unwrap();
        }
        assert_eq!(Instant::now(), start);
        limits.acquire("n", "d", far).await.unwrap();
        assert_eq!(Instant::now(), start + Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_handlers_share_the_turns() {
        let limits = Arc::new(Throughput::new(Duration::from_secs(6), 80));
        let start = Instant::now();
        let far = start + Duration::from_secs(60);
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let limits = Arc::clone(&limits);
                tokio::spawn(async move {
                    limits.acquire("n", "u", far).await.unwrap();
                    Instant::now()
                })
            })
            .collect();
        let mut times = Vec::new();
        for handle in handles {
            times.push(handle.await.unwrap() - start);
        }
        times.sort();
        assert_eq!(
            times,
            [0, 6, 12].map(Duration::from_secs),
            "one turn each, 6 s apart"
        );
    }
}
