//! What every model shares: the seeded random source, the fault settings of this run, and the
//! trace printed when a run fails.

use crate::sqs::Fault;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// The faults and shapes of one run, all drawn from its seed.
#[derive(Debug, Clone)]
pub struct Faults {
    /// SQS calls that fail before (throttled) or after (answer lost) doing their work.
    pub sqs_fault: f64,
    /// Entries of a successful `SendMessageBatch` reported failed.
    pub sqs_entry_fault: f64,
    /// SQS calls that take longer than the sender's attempt timeout.
    pub sqs_slow: f64,
    /// Standard receives that leave a copy visible (at-least-once delivery).
    pub sqs_duplicate: f64,
    /// DynamoDB requests that are throttled or whose answer is lost.
    pub store_fault: f64,
    pub store_slow: f64,
    /// A stretch of time when every DynamoDB request fails (shorter than the worker's reserve
    /// for recording outcomes, 3 s: see RELIABILITY.md on what longer outages do).
    pub store_outage: Option<(Duration, Duration)>,
    /// Invocations whose sandbox crashes at a random moment (out of memory, a runtime fault).
    pub crash: f64,
    /// Events whose handler fails every time (they must end in the dead-letter queue).
    pub poison: f64,
    /// Events whose handler fails its first runs (fewer than the worker's attempts).
    pub flaky: f64,
    /// Handler runs that take longer than the invocation allows.
    pub slow_handler: f64,
}

pub struct World {
    pub faults: Faults,
    rng: Mutex<fastrand::Rng>,
    trace: Mutex<Vec<String>>,
    injected: Mutex<BTreeMap<&'static str, u64>>,
    start: Instant,
}

impl World {
    pub fn new(seed: u64) -> World {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut rate = |most: f64| if rng.bool() { rng.f64() * most } else { 0.0 };
        let faults = Faults {
            sqs_fault: rate(0.2),
            sqs_entry_fault: rate(0.1),
            sqs_slow: rate(0.1),
            sqs_duplicate: rate(0.1),
            store_fault: rate(0.2),
            store_slow: rate(0.05),
            store_outage: None,
            crash: rate(0.05),
            poison: rate(0.1),
            flaky: rate(0.3),
            slow_handler: rate(0.05),
        };
        let faults = Faults {
            store_outage: rng.bool().then(|| {
                (
                    Duration::from_millis(rng.u64(0..120_000)),
                    Duration::from_millis(rng.u64(100..2_000)),
                )
            }),
            ..faults
        };
        World {
            faults,
            rng: Mutex::new(rng),
            trace: Mutex::default(),
            injected: Mutex::default(),
            start: Instant::now(),
        }
    }

    fn rng(&self) -> std::sync::MutexGuard<'_, fastrand::Rng> {
        self.rng.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn chance(&self, probability: f64) -> bool {
        probability > 0.0 && self.rng().f64() < probability
    }

    pub fn below(&self, n: u64) -> u64 {
        self.rng().u64(0..n.max(1))
    }

    pub fn shuffle<T>(&self, items: &mut [T]) {
        self.rng().shuffle(items);
    }

    /// Counts an injected fault of `kind`.
    pub fn injected(&self, kind: &'static str) {
        *self
            .injected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(kind)
            .or_default() += 1;
    }

    pub fn injected_counts(&self) -> BTreeMap<&'static str, u64> {
        self.injected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A service call's latency: usually milliseconds, now and then past the attempt timeout.
    pub fn latency(&self, service: &'static str, slow: f64) -> Duration {
        if self.chance(slow) {
            self.injected(service);
            Duration::from_millis(800 + self.below(2_000))
        } else {
            Duration::from_millis(2 + self.below(40))
        }
    }

    /// How one call of `service` goes: fine, refused before its work, or done with its answer
    /// lost (the caller sees a failure).
    pub fn call_fault(&self, service: &'static str, rate: f64) -> Fault {
        if !self.chance(rate) {
            Fault::None
        } else if self.rng().bool() {
            self.injected(service);
            Fault::Before
        } else {
            self.injected(service);
            Fault::After
        }
    }

    /// True while the store's outage of this run lasts.
    pub fn store_down(&self) -> bool {
        self.faults.store_outage.is_some_and(|(from, length)| {
            let elapsed = self.start.elapsed();
            elapsed >= from && elapsed < from + length
        })
    }

    pub fn trace(&self, line: String) {
        let at = self.start.elapsed();
        self.trace
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!("{:>9.3}s {line}", at.as_secs_f64()));
    }

    pub fn trace_lines(&self) -> Vec<String> {
        self.trace.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
