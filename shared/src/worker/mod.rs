//! The worker: turns at-least-once delivery into one handler run per event.
//!
//! For each batch of queue records:
//! 1. Each record is decoded; one that is not an envelope is dead-lettered at once (it will never
//!    become one) and never fails the others.
//! 2. Records are grouped by conversation (on a FIFO queue, by message group). Groups run
//!    concurrently, up to a bound; within a group, events run one after another, in `timestamp`
//!    order (on a FIFO queue, in the queue's order, which the ingress keeps as the platform's).
//! 3. Each event's key is claimed in the idempotency store. Completed before: acknowledged without
//!    running the handler. Claimed by a live invocation: reported failed, so that the queue
//!    delivers it again later. Claimed here: the handler runs; on success the key is marked
//!    completed, on error, panic or timeout the failure is counted and the record reported failed,
//!    and after [`WorkerConfig::max_attempts`] failed runs the record is put in the dead-letter
//!    queue with its reason and acknowledged.
//! 4. On a FIFO queue, once a record fails, the later records of its group in the batch are
//!    reported failed without running, so that the group's order holds. A record the worker gives
//!    up on is dead-lettered by the worker itself and acknowledged, so the records behind it run
//!    at once instead of following it to the dead-letter queue.
//!
//! Time is budgeted ([`crate::budget`]): every store and queue request has an attempt timeout and
//! retries only while the invocation has time, and the batch response always leaves before the
//! deadline. A handler's success whose completion cannot be written in time is still
//! acknowledged: the claim's lease is kept past the invocation, and the completion is written by
//! this process's next invocation, so that a redelivery does not run the handler again.
//!
//! A new event costs two store requests (claim, complete), a duplicate one (the refused claim
//! carries the old record).

mod config;
mod outcome;

pub use config::{
    DEFAULT_IDEMPOTENCY_TTL, DEFAULT_LEASE_GRACE, DEFAULT_MAX_ATTEMPTS, WorkerConfig,
};
pub use outcome::{BatchReport, RecordOutcome};

use crate::archive::{Archive, ArchiveFailure};
use crate::bot::{Bot, BotEvent};
use crate::budget::{Budget, retry_until};
use crate::clients::Clients;

/// How often an event of an unknown tenant may make the worker read its registry again.
pub const TENANT_RELOAD_INTERVAL: Duration = Duration::from_secs(2);
use crate::clock::{self, Clock};
use crate::envelope::{Envelope, EnvelopeError, Stage};
use crate::ports::{
    Claim, ClaimStore, DeadLetterQueue, EventQueue, IdempotencyStore, QueueMessage, Release,
};
use crate::settings::Reloading;
use futures::{FutureExt, StreamExt};
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// One message as the queue delivered it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueRecord {
    /// The queue's message id, reported back for failures.
    pub message_id: String,
    pub body: String,
    /// The FIFO message group id; `None` on a standard queue.
    pub group_id: Option<String>,
    /// How many times the queue has handed this message out, this time included.
    pub receive_count: u32,
    /// The `platform` message attribute, where there is one.
    pub platform: Option<String>,
}

impl QueueRecord {
    /// A record of a standard queue, received for the first time.
    pub fn new(message_id: impl Into<String>, body: impl Into<String>) -> QueueRecord {
        QueueRecord {
            message_id: message_id.into(),
            body: body.into(),
            group_id: None,
            receive_count: 1,
            platform: None,
        }
    }
}

/// The archive, run beside the bot: after it, on its own retries.
struct ArchiveStage {
    archive: Arc<Archive>,
    /// Where the archive's follow-up messages go (the event queue).
    follow_ups: Arc<dyn EventQueue>,
}

/// The worker, built once per process (one per Lambda sandbox).
pub struct Worker {
    store: Arc<dyn IdempotencyStore>,
    bot: Arc<dyn Bot>,
    clients: Arc<Reloading<Clients>>,
    config: WorkerConfig,
    clock: Arc<dyn Clock>,
    dead_letters: Option<Arc<dyn DeadLetterQueue>>,
    claims: Option<Arc<dyn ClaimStore>>,
    archive: Option<ArchiveStage>,
    /// Names this process's claims: `{instance}:{counter}`.
    instance: u64,
    claims_made: AtomicU64,
    /// Handled events whose completion could not be written yet: key and expiry. Written at the
    /// start of the next invocations; never run again meanwhile.
    unrecorded: Mutex<Vec<(String, i64)>>,
}

/// The most unrecorded completions kept; beyond, the oldest are dropped (their leases still
/// hold off redeliveries until they lapse).
const MAX_UNRECORDED: usize = 10_000;

struct Pending {
    index: usize,
    envelope: Result<Envelope, EnvelopeError>,
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
            clock: clock::system(),
            dead_letters: None,
            claims: None,
            archive: None,
            instance: fastrand::u64(..),
            claims_made: AtomicU64::new(0),
            unrecorded: Mutex::new(Vec::new()),
        }
    }

    /// Reads the time from `clock` (the simulation's virtual clock) instead of the system's.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Worker {
        self.clock = clock;
        self
    }

    /// Dead-letters records itself (see the module's description); without it, records that keep
    /// failing are left to the queue's own redrive.
    pub fn with_dead_letters(mut self, dead_letters: Arc<dyn DeadLetterQueue>) -> Worker {
        self.dead_letters = Some(dead_letters);
        self
    }

    /// Reads events too large for a queue message from `claims`.
    pub fn with_claims(mut self, claims: Arc<dyn ClaimStore>) -> Worker {
        self.claims = Some(claims);
        self
    }

    /// Archives every event after the bot handled it; what cannot be archived yet goes back to
    /// `follow_ups` (the event queue) as an archive-only message with its own retries.
    pub fn with_archive(
        mut self,
        archive: Arc<Archive>,
        follow_ups: Arc<dyn EventQueue>,
    ) -> Worker {
        self.archive = Some(ArchiveStage {
            archive,
            follow_ups,
        });
        self
    }

    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    /// Handled events whose completion is not written yet (see the module's description).
    pub fn unrecorded_completions(&self) -> usize {
        self.unrecorded.lock().map(|u| u.len()).unwrap_or(0)
    }

    /// The keys of [`Worker::unrecorded_completions`].
    pub fn unrecorded_keys(&self) -> Vec<String> {
        self.unrecorded
            .lock()
            .map(|u| u.iter().map(|(key, _)| key.clone()).collect())
            .unwrap_or_default()
    }

    /// Processes one batch; `deadline_ms` is when the invocation ends (ms since the epoch). Returns
    /// before the deadline, by [`crate::budget`].
    pub async fn process(&self, records: &[QueueRecord], deadline_ms: i64) -> BatchReport {
        let now = Instant::now();
        let remaining = deadline_ms.saturating_sub(self.clock.now_ms()).max(0) as u64;
        let budget = Budget::new(
            &self.config.budget,
            now,
            now + Duration::from_millis(remaining),
        );
        let lease_until_ms = deadline_ms.saturating_add(self.config.lease_grace.as_millis() as i64);
        self.write_unrecorded(&budget).await;

        let fifo = records.iter().any(|r| r.group_id.is_some());
        // Group, keeping first-seen order of groups.
        let mut order: Vec<String> = Vec::new();
        let mut groups: HashMap<String, Vec<Pending>> = HashMap::new();
        for (index, record) in records.iter().enumerate() {
            let envelope = Envelope::decode(&record.body);
            let group = match (&record.group_id, &envelope) {
                (Some(group), _) => group.clone(),
                (None, Ok(envelope)) => envelope.conversation.clone(),
                (None, Err(_)) => format!("\0undecodable:{index}"),
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
                self.run_group(records, group, fifo, &budget, lease_until_ms)
            });
        let all = futures::stream::iter(runs)
            .buffer_unordered(self.config.concurrency.max(1))
            .collect::<Vec<_>>();
        // Every step is bounded, so this never fires; it is the last guard of the deadline.
        let guard = budget.respond_by + (budget.deadline - budget.respond_by) / 2;
        let results = match tokio::time::timeout_at(guard, all).await {
            Ok(results) => results,
            Err(_) => {
                tracing::error!(target: "worker", "the batch overran its time budget; reporting every unfinished record failed");
                Vec::new()
            }
        };

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
        records: &[QueueRecord],
        group: Vec<Pending>,
        fifo: bool,
        budget: &Budget,
        lease_until_ms: i64,
    ) -> Vec<(usize, RecordOutcome)> {
        let mut outcomes = Vec::with_capacity(group.len());
        let mut blocked = false;
        for pending in group {
            let record = &records[pending.index];
            let outcome = if blocked {
                RecordOutcome::Blocked
            } else {
                match pending.envelope {
                    Err(error) => self.undecodable(record, error, budget).await,
                    Ok(envelope) => match envelope.stage {
                        Stage::Bot => self.run_one(record, envelope, budget, lease_until_ms).await,
                        Stage::Archive => {
                            self.run_archive_follow_up(record, envelope, budget).await
                        }
                    },
                }
            };
            if fifo && outcome.is_failure() {
                blocked = true;
            }
            outcomes.push((pending.index, outcome));
        }
        outcomes
    }

    async fn undecodable(
        &self,
        record: &QueueRecord,
        error: EnvelopeError,
        budget: &Budget,
    ) -> RecordOutcome {
        // The error names the problem; the body is never logged.
        tracing::error!(target: "worker", message_id = %record.message_id, error = %error, "not an envelope");
        if let EnvelopeError::Version(_) = error {
            // A newer ingress than this worker (a deployment in progress): retry later.
            return RecordOutcome::Failed;
        }
        self.dead_letter(record, &format!("not an envelope: {error}"), budget)
            .await
            .unwrap_or(RecordOutcome::Poison)
    }

    /// Puts `record` in the dead-letter queue; `None` when there is none or it failed.
    async fn dead_letter(
        &self,
        record: &QueueRecord,
        reason: &str,
        budget: &Budget,
    ) -> Option<RecordOutcome> {
        let dead_letters = self.dead_letters.as_ref()?;
        match retry_until(budget.respond_by, budget.attempt_timeout, || {
            dead_letters.dead_letter(record, reason)
        })
        .await
        {
            Ok(()) => {
                tracing::error!(target: "worker", message_id = %record.message_id, %reason, "dead-lettered");
                Some(RecordOutcome::DeadLettered)
            }
            Err(error) => {
                tracing::error!(target: "worker", message_id = %record.message_id, %error, "dead-lettering failed; the queue delivers it again");
                None
            }
        }
    }

    fn next_owner(&self) -> String {
        format!(
            "{:016x}:{}",
            self.instance,
            self.claims_made.fetch_add(1, Ordering::SeqCst)
        )
    }

    fn expiry(&self) -> i64 {
        self.clock
            .now_ms()
            .saturating_add(self.config.idempotency_ttl.as_millis() as i64)
    }

    fn is_unrecorded(&self, key: &str) -> bool {
        self.unrecorded
            .lock()
            .map(|u| u.iter().any(|(k, _)| k == key))
            .unwrap_or(false)
    }

    /// Writes the completions earlier invocations could not, in a small share of the budget.
    async fn write_unrecorded(&self, budget: &Budget) {
        let pending: Vec<(String, i64)> = match self.unrecorded.lock() {
            Ok(unrecorded) if !unrecorded.is_empty() => unrecorded.clone(),
            _ => return,
        };
        let now = Instant::now();
        let until = now + budget.start_by.saturating_duration_since(now) / 10;
        for (key, expires_at) in pending {
            let written = retry_until(until, budget.attempt_timeout, || {
                self.store.complete(&key, expires_at)
            })
            .await;
            match written {
                Ok(()) => {
                    if let Ok(mut unrecorded) = self.unrecorded.lock() {
                        unrecorded.retain(|(k, _)| *k != key);
                    }
                    tracing::info!(target: "worker", %key, "completion written late");
                }
                Err(_) => break,
            }
        }
    }

    async fn run_one(
        &self,
        record: &QueueRecord,
        envelope: Envelope,
        budget: &Budget,
        lease_until_ms: i64,
    ) -> RecordOutcome {
        let started = Instant::now();
        let key = envelope.key.clone();
        let conversation = envelope.conversation.clone();
        let outcome = if started >= budget.start_by {
            tracing::warn!(
                target: "worker",
                %key,
                remaining_ms = budget.deadline.saturating_duration_since(started).as_millis() as u64,
                "too little time left in the invocation to start this event; it will be retried"
            );
            RecordOutcome::OutOfTime
        } else if self.is_unrecorded(&key) {
            // Handled here before; its completion is still to be written.
            RecordOutcome::Duplicate
        } else {
            self.claim_and_run(record, envelope, budget, lease_until_ms)
                .await
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

    async fn claim_and_run(
        &self,
        record: &QueueRecord,
        envelope: Envelope,
        budget: &Budget,
        lease_until_ms: i64,
    ) -> RecordOutcome {
        let key = envelope.key.clone();
        let owner = self.next_owner();
        let claimed = retry_until(budget.start_by, budget.attempt_timeout, || {
            self.store.claim(
                &key,
                &owner,
                self.clock.now_ms(),
                lease_until_ms,
                self.expiry(),
            )
        })
        .await;
        let attempt = match claimed {
            Err(error) => {
                // The claim may have been written (an answer lost): its lease lapses, and the
                // owner named it so that nobody mistakes it for a live one after that.
                tracing::error!(target: "worker", %key, %error, "claim failed");
                return RecordOutcome::Failed;
            }
            Ok(Claim::AlreadyCompleted) => {
                return self.archive_beside(record, envelope, budget).await;
            }
            Ok(Claim::InProgressElsewhere { until_ms }) => {
                tracing::warn!(target: "worker", %key, until_ms, "in progress in another invocation");
                return RecordOutcome::InProgressElsewhere;
            }
            Ok(Claim::Claimed { attempt }) => attempt,
        };
        if attempt > self.config.max_attempts {
            // Failed runs were counted but the record came back (dead-lettering failed before).
            let reason = attempts_reason(attempt - 1, "earlier runs failed");
            return self.give_up(record, &key, &owner, reason, budget).await;
        }
        let envelope = match self.resolve_claim_check(envelope, budget).await {
            Ok(envelope) => envelope,
            Err(reason) => {
                return self
                    .failed(record, &key, &owner, attempt, reason, budget)
                    .await;
            }
        };
        let claim_object = envelope.claim.as_ref().map(|c| c.object.clone());
        let event = BotEvent::from_envelope(envelope, budget.handlers_by);
        let all_clients = match self.tenant_clients(&event).await {
            Ok(clients) => clients,
            Err(reason) => {
                return self
                    .failed(record, &key, &owner, attempt, reason, budget)
                    .await;
            }
        };
        let clients = event.clients_from(&all_clients);
        let handling = AssertUnwindSafe(self.bot.handle(&event, &clients)).catch_unwind();
        let mut permanent = false;
        let failure = match tokio::time::timeout_at(budget.handlers_by, handling).await {
            Ok(Ok(Ok(()))) => None,
            Ok(Ok(Err(error))) => {
                permanent = crate::bot::is_permanent(error.as_ref());
                Some(format!("handler failed: {error}"))
            }
            Ok(Err(_panic)) => Some("handler panicked".to_owned()),
            Err(_) => Some("handler ran past its deadline".to_owned()),
        };
        if let Some(reason) = failure {
            tracing::error!(target: "worker", %key, kind = %event.type_name(), %reason, attempt, permanent, "event failed");
            if permanent && self.dead_letters.is_some() {
                // Retrying cannot help; the conversation's next events need not wait for it.
                let reason = format!("not retried, the failure is permanent: {reason}");
                return self.give_up(record, &key, &owner, reason, budget).await;
            }
            return self
                .failed(record, &key, &owner, attempt, reason, budget)
                .await;
        }
        let expires_at = self.expiry();
        let recorded = retry_until(budget.respond_by, budget.attempt_timeout, || {
            self.store.complete(&key, expires_at)
        })
        .await;
        let recorded = match recorded {
            Ok(()) => true,
            Err(error) => {
                // The handler's effects happened: acknowledge rather than run them again. The lease
                // holds the key past this invocation and the next one of this process writes the
                // completion.
                tracing::error!(target: "worker", %key, %error, "handled, but the completion is not written yet; keeping the claim");
                if let Ok(mut unrecorded) = self.unrecorded.lock() {
                    if unrecorded.len() >= MAX_UNRECORDED {
                        unrecorded.remove(0);
                    }
                    unrecorded.push((key.clone(), expires_at));
                }
                false
            }
        };
        let archived = self.archive_event(record, &event, budget).await;
        // Kept while the completion is unwritten: a redelivery would need it.
        if archived != Archived::FollowUp && recorded {
            self.delete_claim_object(claim_object, &key).await;
        }
        if archived == Archived::NotQueued {
            // The bot's run is recorded; the redelivery only archives.
            return RecordOutcome::Failed;
        }
        RecordOutcome::Handled
    }

    async fn delete_claim_object(&self, object: Option<String>, key: &str) {
        if let (Some(object), Some(claims)) = (object, &self.claims) {
            // Best effort: the bucket's lifecycle rule removes what is left.
            if let Err(error) = claims.delete(&object).await {
                tracing::warn!(target: "worker", %key, %error, "claim-check object not deleted");
            }
        }
    }

    /// A failed run: counted, or, at the limit, the record is dead-lettered.
    async fn failed(
        &self,
        record: &QueueRecord,
        key: &str,
        owner: &str,
        attempt: u32,
        reason: String,
        budget: &Budget,
    ) -> RecordOutcome {
        if attempt >= self.config.max_attempts && self.dead_letters.is_some() {
            let reason = attempts_reason(attempt, &reason);
            return self.give_up(record, key, owner, reason, budget).await;
        }
        let released = retry_until(budget.respond_by, budget.attempt_timeout, || {
            self.store.release(
                key,
                owner,
                Release::Retry {
                    reason: reason.clone(),
                },
            )
        })
        .await;
        if let Err(error) = released {
            tracing::error!(target: "worker", %key, %error, "release failed; the claim lapses with its lease");
        }
        RecordOutcome::Failed
    }

    async fn give_up(
        &self,
        record: &QueueRecord,
        key: &str,
        owner: &str,
        reason: String,
        budget: &Budget,
    ) -> RecordOutcome {
        match self.dead_letter(record, &reason, budget).await {
            Some(outcome) => {
                // A redrive starts over.
                let _ = retry_until(budget.respond_by, budget.attempt_timeout, || {
                    self.store.release(key, owner, Release::Forget)
                })
                .await;
                outcome
            }
            None => RecordOutcome::Failed,
        }
    }

    /// The envelope with its event read from the claim-check store, where it was too large for a
    /// queue message.
    async fn resolve_claim_check(
        &self,
        mut envelope: Envelope,
        budget: &Budget,
    ) -> Result<Envelope, String> {
        let Some(claim) = envelope.claim.clone() else {
            return Ok(envelope);
        };
        let Some(claims) = &self.claims else {
            return Err("the event is in the claim-check store, which is not configured".into());
        };
        let bytes = retry_until(budget.start_by, budget.attempt_timeout, || {
            claims.get(&claim.object)
        })
        .await
        .map_err(|e| format!("claim-check object not read: {e}"))?
        .ok_or_else(|| format!("claim-check object {} is missing", claim.object))?;
        envelope.restore_claimed(&claim, &bytes)?;
        Ok(envelope)
    }

    /// Archives a handled (or duplicate) event, after the bot: what cannot be archived yet goes
    /// back to the queue as an archive-only message, so the bot's event is not held.
    async fn archive_event(
        &self,
        record: &QueueRecord,
        event: &BotEvent,
        budget: &Budget,
    ) -> Archived {
        let Some(stage) = &self.archive else {
            return Archived::Done;
        };
        let all_clients = self.clients.current();
        let clients = event.clients_from(&all_clients);
        let failure = if Instant::now() >= budget.start_by {
            None
        } else {
            match tokio::time::timeout_at(
                budget.handlers_by,
                stage.archive.record(event, &clients, false),
            )
            .await
            {
                Ok(Ok(())) => return Archived::Done,
                Ok(Err(error)) => Some(error),
                Err(_) => None,
            }
        };
        let reason = failure.map_or_else(|| "no time left".to_owned(), |e| e.to_string());
        tracing::warn!(target: "archive", key = %event.key, %reason, "archiving continues on its own retries");
        let Some(message) = follow_up(record, event) else {
            return Archived::NotQueued;
        };
        match stage
            .follow_ups
            .send_all(std::slice::from_ref(&message), budget.respond_by)
            .await
        {
            Ok(()) => Archived::FollowUp,
            Err(error) => {
                tracing::error!(target: "archive", key = %event.key, %error, "archive follow-up not queued; the event comes back to be archived");
                Archived::NotQueued
            }
        }
    }

    /// A duplicate, archived again: a delivery whose first handling could not queue its archive
    /// follow-up gets its second chance here (the archive's merge makes repeats harmless).
    async fn archive_beside(
        &self,
        record: &QueueRecord,
        envelope: Envelope,
        budget: &Budget,
    ) -> RecordOutcome {
        if self.archive.is_none() {
            return RecordOutcome::Duplicate;
        }
        let envelope = match self.resolve_claim_check(envelope, budget).await {
            Ok(envelope) => envelope,
            // Handled and cleaned up already: nothing left to archive from.
            Err(_) => return RecordOutcome::Duplicate,
        };
        let claim_object = envelope.claim.as_ref().map(|c| c.object.clone());
        let key = envelope.key.clone();
        let event = BotEvent::from_envelope(envelope, budget.handlers_by);
        match self.archive_event(record, &event, budget).await {
            Archived::NotQueued => RecordOutcome::Failed,
            Archived::FollowUp => RecordOutcome::Duplicate,
            Archived::Done => {
                self.delete_claim_object(claim_object, &key).await;
                RecordOutcome::Duplicate
            }
        }
    }

    /// An archive-only message: archive again; on the last attempt, whatever is still failing is
    /// marked failed for good, and the message is acknowledged either way but for store errors.
    /// The clients, knowing the event's tenant. A tenant the ingress already serves may be newer
    /// than the worker's registry: the registry is read again (at most every
    /// [`TENANT_RELOAD_INTERVAL`]) before the event is failed, to come back later, rather than
    /// handed to the bot without its tenant's clients. A worker with no registry at all (a
    /// destination outside it, which needs no tokens) hands every tenant's events on.
    async fn tenant_clients(&self, event: &BotEvent) -> Result<Arc<Clients>, String> {
        let clients = self.clients.current();
        let Some(tenant) = event.tenant.as_deref() else {
            return Ok(clients);
        };
        if clients.has_tenant(tenant) || clients.tenant_ids().next().is_none() {
            return Ok(clients);
        }
        self.clients.reload_if_older(TENANT_RELOAD_INTERVAL).await;
        let clients = self.clients.current();
        if clients.has_tenant(tenant) {
            Ok(clients)
        } else {
            Err(format!(
                "tenant {tenant} is not in the worker's registry (TENANTS in its secret)"
            ))
        }
    }

    async fn run_archive_follow_up(
        &self,
        record: &QueueRecord,
        envelope: Envelope,
        budget: &Budget,
    ) -> RecordOutcome {
        let Some(stage) = &self.archive else {
            tracing::warn!(target: "archive", key = %envelope.key, "archive follow-up, but the archive is off: dropped");
            return RecordOutcome::Handled;
        };
        let key = envelope.key.clone();
        let last = record.receive_count >= self.config.archive_attempts;
        let envelope = match self.resolve_claim_check(envelope, budget).await {
            Ok(envelope) => envelope,
            Err(reason) if !last => {
                tracing::warn!(target: "archive", %key, %reason, "not archived yet; retrying");
                return RecordOutcome::Failed;
            }
            Err(reason) => {
                tracing::error!(target: "archive", %key, %reason, "archive gave up on this event");
                return RecordOutcome::Handled;
            }
        };
        let claim_object = envelope.claim.as_ref().map(|c| c.object.clone());
        let event = BotEvent::from_envelope(envelope, budget.handlers_by);
        let all_clients = self.clients.current();
        let clients = event.clients_from(&all_clients);
        // The archive keeps to `event.deadline` (handlers_by) itself; this guard only stops a
        // store that hangs past its own timeouts.
        let result = tokio::time::timeout_at(
            budget.respond_by,
            stage.archive.record(&event, &clients, last),
        )
        .await;
        let outcome = match result {
            Ok(Ok(())) => RecordOutcome::Handled,
            Ok(Err(ArchiveFailure::Store(error))) if !last => {
                tracing::warn!(target: "archive", %key, %error, "archive store failed; retrying");
                RecordOutcome::Failed
            }
            Ok(Err(error)) if !last => {
                tracing::warn!(target: "archive", %key, %error, "not archived yet; retrying");
                RecordOutcome::Failed
            }
            Err(_) if !last => RecordOutcome::Failed,
            Ok(Err(error)) => {
                tracing::error!(target: "archive", %key, %error, "archive gave up on this event");
                RecordOutcome::Handled
            }
            Err(_) => {
                tracing::error!(target: "archive", %key, "archive gave up on this event: out of time");
                RecordOutcome::Handled
            }
        };
        if !outcome.is_failure() {
            self.delete_claim_object(claim_object, &key).await;
        }
        outcome
    }
}

/// The dead-letter reason of an event out of attempts.
fn attempts_reason(failures: u32, last: &str) -> String {
    format!("{failures} failed attempts; last: {last}")
}

/// How archiving an event went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Archived {
    /// Archived (or no archive).
    Done,
    /// Not yet: an archive-only message will retry it.
    FollowUp,
    /// Not yet, and the follow-up could not be queued.
    NotQueued,
}

/// The archive-only message for an event: the same envelope with `stage: archive` and its own
/// key, in a message group of its own on FIFO (the envelope keeps its conversation), so that its
/// retries hold up nothing.
fn follow_up(record: &QueueRecord, event: &BotEvent) -> Option<QueueMessage> {
    let envelope = Envelope::decode(&record.body).ok()?;
    let key = format!("{}#archive", envelope.key);
    let follow_up = Envelope {
        stage: Stage::Archive,
        key: key.clone(),
        ..envelope
    };
    let body = follow_up.encode().ok()?;
    let conversation = crate::key::fit_conversation(format!("archive:{key}"));
    Some(QueueMessage::new(
        &key,
        &conversation,
        event.platform,
        &body,
    ))
}
