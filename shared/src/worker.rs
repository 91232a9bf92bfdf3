//! The worker: turns at-least-once delivery into one handler run per event.
//!
//! For each batch of queue records:
//! 1. Each record is decoded; one that is not an envelope is reported failed (it reaches the
//!    dead-letter queue after the queue's receive limit) and never fails the others.
//! 2. Records are grouped by conversation (on a FIFO queue, by message group). Groups run
//!    concurrently, up to a bound; within a group, events run one after another, in `timestamp`
//!    order (on a FIFO queue, in the queue's order, which is the platform's).
//! 3. Each event's key is claimed in the idempotency store. Completed before: acknowledged without
//!    running the handler. Claimed by a live invocation: reported failed, so SQS retries it after
//!    the visibility timeout. Claimed here: the handler runs; on success the key is marked
//!    completed, on error, panic or timeout the claim is released and the record reported failed.
//! 4. On a FIFO queue, once a record fails, the later records of its group in the batch are
//!    reported failed without running, so that the group's order holds.
//!
//! A new event costs two store requests (claim, complete), a duplicate one (the refused claim
//! carries the old record).

use crate::bot::{Bot, BotEvent};
use crate::clients::Clients;
use crate::envelope::Envelope;
use crate::ports::{Claim, IdempotencyStore};
use crate::settings::Reloading;
use futures::{FutureExt, StreamExt};
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// Attempts at recording a handled event as completed (25, 100 ms apart): well inside the
/// safety margin kept back from the deadline.
const COMPLETE_ATTEMPTS: u32 = 3;

/// How long a completed key is remembered: beyond Meta's 36 hours of retries.
pub const DEFAULT_IDEMPOTENCY_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// The worker's settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// How long a completed event's key is remembered (`IDEMPOTENCY_TTL_SECONDS`).
    pub idempotency_ttl: Duration,
    /// Conversations handled at once (`WORKER_CONCURRENCY`).
    pub concurrency: usize,
    /// Time kept back from the invocation's deadline to record outcomes; no handler starts with
    /// less than this left, and handlers are cut off this long before the deadline.
    pub safety_margin: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            idempotency_ttl: DEFAULT_IDEMPOTENCY_TTL,
            concurrency: 8,
            safety_margin: Duration::from_millis(1500),
        }
    }
}

impl WorkerConfig {
    /// The defaults, with `IDEMPOTENCY_TTL_SECONDS` and `WORKER_CONCURRENCY` applied.
    pub fn from_vars(
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<WorkerConfig, crate::ingress::ConfigError> {
        let number = |name| crate::ingress::positive_number(&var, name);
        let defaults = WorkerConfig::default();
        Ok(WorkerConfig {
            idempotency_ttl: number("IDEMPOTENCY_TTL_SECONDS")?
                .map_or(defaults.idempotency_ttl, Duration::from_secs),
            concurrency: number("WORKER_CONCURRENCY")?.map_or(defaults.concurrency, |n| n as usize),
            safety_margin: defaults.safety_margin,
        })
    }
}

/// One message as the queue delivered it.
#[derive(Debug, Clone)]
pub struct QueueRecord {
    /// The queue's message id, reported back for failures.
    pub message_id: String,
    pub body: String,
    /// The FIFO message group id; `None` on a standard queue.
    pub group_id: Option<String>,
}

/// What happened to one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// The handler ran and succeeded.
    Handled,
    /// The key was completed before: acknowledged without running the handler.
    Duplicate,
    /// Not an envelope: reported failed, bound for the dead-letter queue.
    Poison,
    /// Another invocation holds the key: reported failed, retried later.
    InProgressElsewhere,
    /// The handler failed, panicked or timed out, or the store failed: released, reported failed.
    Failed,
    /// FIFO: an earlier record of the group failed, so this one was not run.
    Blocked,
    /// Too little time left in the invocation to start it.
    OutOfTime,
}

impl RecordOutcome {
    /// True when the record must be reported as a batch item failure.
    pub fn is_failure(&self) -> bool {
        !matches!(self, RecordOutcome::Handled | RecordOutcome::Duplicate)
    }

    pub fn label(&self) -> &'static str {
        match self {
            RecordOutcome::Handled => "handled",
            RecordOutcome::Duplicate => "duplicate",
            RecordOutcome::Poison => "poison",
            RecordOutcome::InProgressElsewhere => "in_progress_elsewhere",
            RecordOutcome::Failed => "failed",
            RecordOutcome::Blocked => "blocked",
            RecordOutcome::OutOfTime => "out_of_time",
        }
    }
}

/// The outcome of a batch: every record's, in the batch's order.
#[derive(Debug, Clone, Default)]
pub struct BatchReport {
    pub outcomes: Vec<(String, RecordOutcome)>,
}

impl BatchReport {
    /// The message ids to report as batch item failures.
    pub fn failed_message_ids(&self) -> Vec<String> {
        self.outcomes
            .iter()
            .filter(|(_, outcome)| outcome.is_failure())
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// How many records ended with `outcome`.
    pub fn count(&self, outcome: &RecordOutcome) -> usize {
        self.outcomes.iter().filter(|(_, o)| o == outcome).count()
    }
}

/// The worker, built once per process.
pub struct Worker {
    store: Arc<dyn IdempotencyStore>,
    bot: Arc<dyn Bot>,
    clients: Arc<Reloading<Clients>>,
    config: WorkerConfig,
}

struct Pending {
    index: usize,
    envelope: Option<Envelope>,
    sort_time: i64,
}

impl Worker {
    /// A worker with fixed API clients.
    pub fn new(
        store: Arc<dyn IdempotencyStore>,
        bot: Arc<dyn Bot>,
        clients: Clients,
        config: WorkerConfig,
    ) -> Worker {
        Worker::reloading(store, bot, Reloading::fixed(clients), config)
    }

    /// A worker whose API clients (access tokens) are rebuilt from their source in the background.
    pub fn reloading(
        store: Arc<dyn IdempotencyStore>,
        bot: Arc<dyn Bot>,
        clients: Arc<Reloading<Clients>>,
        config: WorkerConfig,
    ) -> Worker {
        Worker {
            store,
            bot,
            clients,
            config,
        }
    }

    /// Processes one batch; `deadline_ms` is when the invocation ends (ms since the epoch).
    pub async fn process(&self, records: &[QueueRecord], deadline_ms: i64) -> BatchReport {
        let deadline = Instant::now()
            + Duration::from_millis(deadline_ms.saturating_sub(now_ms()).max(0) as u64);
        let fifo = records.iter().any(|r| r.group_id.is_some());

        // Group, keeping first-seen order of groups.
        let mut order: Vec<String> = Vec::new();
        let mut groups: HashMap<String, Vec<Pending>> = HashMap::new();
        for (index, record) in records.iter().enumerate() {
            let envelope = match Envelope::decode(&record.body) {
                Ok(envelope) => Some(envelope),
                Err(error) => {
                    // The error names the problem; the body is never logged.
                    tracing::error!(target: "worker", message_id = %record.message_id, error = %error, "poison message");
                    None
                }
            };
            let group = match (&record.group_id, &envelope) {
                (Some(group), _) => group.clone(),
                (None, Some(envelope)) => envelope.conversation.clone(),
                (None, None) => format!("\0poison:{index}"),
            };
            let sort_time = envelope
                .as_ref()
                .map(|e| e.timestamp.unwrap_or(e.received_at))
                .unwrap_or(i64::MAX);
            if !groups.contains_key(&group) {
                order.push(group.clone());
            }
            groups.entry(group).or_default().push(Pending {
                index,
                envelope,
                sort_time,
            });
        }

        let runs = order
            .into_iter()
            .filter_map(|name| groups.remove(&name))
            .map(|mut group| {
                if !fifo {
                    // Stable: equal times keep the queue's order.
                    group.sort_by_key(|p| p.sort_time);
                }
                self.run_group(group, fifo, deadline, deadline_ms)
            });
        let results: Vec<Vec<(usize, RecordOutcome)>> = futures::stream::iter(runs)
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;

        let mut outcomes: Vec<Option<RecordOutcome>> = vec![None; records.len()];
        for (index, outcome) in results.into_iter().flatten() {
            outcomes[index] = Some(outcome);
        }
        BatchReport {
            outcomes: records
                .iter()
                .zip(outcomes)
                .map(|(record, outcome)| {
                    (
                        record.message_id.clone(),
                        outcome.unwrap_or(RecordOutcome::Failed),
                    )
                })
                .collect(),
        }
    }

    async fn run_group(
        &self,
        group: Vec<Pending>,
        fifo: bool,
        deadline: Instant,
        deadline_ms: i64,
    ) -> Vec<(usize, RecordOutcome)> {
        let mut outcomes = Vec::with_capacity(group.len());
        let mut blocked = false;
        for pending in group {
            let outcome = match pending.envelope {
                _ if blocked => RecordOutcome::Blocked,
                None => RecordOutcome::Poison,
                Some(envelope) => self.run_one(envelope, deadline, deadline_ms).await,
            };
            if fifo && outcome.is_failure() {
                blocked = true;
            }
            outcomes.push((pending.index, outcome));
        }
        outcomes
    }

    async fn run_one(
        &self,
        envelope: Envelope,
        deadline: Instant,
        deadline_ms: i64,
    ) -> RecordOutcome {
        let started = Instant::now();
        let handler_deadline = deadline
            .checked_sub(self.config.safety_margin)
            .unwrap_or(deadline);
        if started >= handler_deadline {
            tracing::warn!(
                target: "worker",
                key = %envelope.key,
                remaining_ms = deadline.saturating_duration_since(started).as_millis() as u64,
                margin_ms = self.config.safety_margin.as_millis() as u64,
                "too little time left in the invocation to start this event; it will be retried"
            );
            return RecordOutcome::OutOfTime;
        }
        let key = envelope.key.clone();
        let conversation = envelope.conversation.clone();
        let now = now_ms();
        let expires_at = now.saturating_add(self.config.idempotency_ttl.as_millis() as i64);
        let outcome = match self.store.claim(&key, now, deadline_ms, expires_at).await {
            Err(error) => {
                tracing::error!(target: "worker", %key, error = %error, "claim failed");
                RecordOutcome::Failed
            }
            Ok(Claim::AlreadyCompleted) => RecordOutcome::Duplicate,
            Ok(Claim::InProgressElsewhere { until_ms }) => {
                tracing::warn!(target: "worker", %key, until_ms, "in progress in another invocation");
                RecordOutcome::InProgressElsewhere
            }
            Ok(Claim::Claimed) => self.run_claimed(envelope, handler_deadline).await,
        };
        tracing::info!(
            target: "worker",
            %key,
            %conversation,
            outcome = outcome.label(),
            duration_ms = started.elapsed().as_millis() as u64,
            "event"
        );
        outcome
    }

    async fn run_claimed(&self, envelope: Envelope, handler_deadline: Instant) -> RecordOutcome {
        let event = BotEvent::from_envelope(envelope, handler_deadline);
        let clients = self.clients.current();
        let handling = AssertUnwindSafe(self.bot.handle(&event, &clients)).catch_unwind();
        let failure = match tokio::time::timeout_at(handler_deadline, handling).await {
            Ok(Ok(Ok(()))) => None,
            Ok(Ok(Err(error))) => Some(format!("handler failed: {error}")),
            Ok(Err(_panic)) => Some("handler panicked".to_owned()),
            Err(_) => Some("handler ran past its deadline".to_owned()),
        };
        match failure {
            None => {
                let expires_at =
                    now_ms().saturating_add(self.config.idempotency_ttl.as_millis() as i64);
                // The handler's effects happened: acknowledge even if recording fails, rather
                // than run them again now. Recording is retried, because a claim left in progress
                // lapses at its expiry, after which a platform retry would run the handler again.
                let mut backoff = Duration::from_millis(25);
                for attempt in 1..=COMPLETE_ATTEMPTS {
                    match self.store.complete(&event.key, expires_at).await {
                        Ok(()) => break,
                        Err(error) if attempt < COMPLETE_ATTEMPTS => {
                            tracing::warn!(target: "worker", key = %event.key, error = %error, attempt, "marking it completed failed; retrying");
                            tokio::time::sleep(backoff).await;
                            backoff *= 4;
                        }
                        Err(error) => {
                            tracing::error!(target: "worker", key = %event.key, error = %error, "handled, but marking it completed failed");
                        }
                    }
                }
                RecordOutcome::Handled
            }
            Some(reason) => {
                tracing::error!(target: "worker", key = %event.key, kind = %event.type_name(), %reason, "event failed; releasing it for a retry");
                if let Err(error) = self.store.release(&event.key).await {
                    tracing::error!(target: "worker", key = %event.key, error = %error, "release failed; the claim lapses at its expiry");
                }
                RecordOutcome::Failed
            }
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
