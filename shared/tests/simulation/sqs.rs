//! SQS as AWS documents it (not as moto behaves): standard and FIFO queues, visibility timeouts,
//! receive counts, redrive to a dead-letter queue, duplicate deliveries, FIFO deduplication and
//! group order, and the size and character limits on message bodies.
//!
//! Rules followed (AWS SQS Developer Guide; ../shared/notes/aws-semantics.md):
//! - A received message is invisible for the visibility timeout, then visible again unless it was
//!   deleted with its latest receipt handle. Each receive counts.
//! - When a message's receive count has reached `maxReceiveCount`, the next receive moves it to
//!   the dead-letter queue instead (it need never have been processed).
//! - Standard: no order; a message may be delivered more than once (here: a receive that leaves
//!   it visible, so another consumer gets it too).
//! - FIFO: order per message group; a receive returns as many messages of one group as it can,
//!   in order, and no later message of a group is delivered while an earlier one is in flight.
//!   A message whose (group, deduplication id) was sent in the last 5 minutes is accepted and
//!   dropped (deduplication scope: message group, the template's high-throughput mode).
//! - A body over the size limit, or with a character outside `#x9 | #xA | #xD | #x20-#xD7FF |
//!   #xE000-#xFFFD | #x10000-#x10FFFF`, is refused as the sender's fault.
//! - moto differs: its FIFO delivered a group out of order across receives, and it enforces no
//!   size or character limit. This model is what the simulation trusts.

use crate::world::World;
use async_trait::async_trait;
use shared::adapters::memory::sqs_accepts;
use shared::enqueue::{BatchSink, EntryFailure};
use shared::ports::{DeadLetterError, DeadLetterQueue, QueueMessage};
use shared::worker::QueueRecord;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// FIFO deduplication window.
const DEDUP_WINDOW: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub struct Message {
    pub id: u64,
    pub body: String,
    pub key: String,
    pub group: Option<String>,
    pub receive_count: u32,
    pub visible_at: Instant,
    /// The latest receipt handle; `None` while never received.
    pub receipt: Option<u64>,
    pub in_flight: bool,
}

#[derive(Default)]
struct State {
    messages: Vec<Message>,
    dead: Vec<(Message, String)>,
    dedup: HashMap<(String, String), Instant>,
    next_id: u64,
    next_receipt: u64,
}

/// One queue with its dead-letter queue.
pub struct SqsModel {
    pub fifo: bool,
    pub visibility: Duration,
    pub max_receive_count: u32,
    /// The body limit: SQS's 1 MiB, scaled down in the simulation (see `World`) so that claim
    /// checks are exercised without megabyte strings.
    pub max_body_bytes: usize,
    state: Mutex<State>,
    pub arrived: Notify,
    world: Arc<World>,
}

impl SqsModel {
    pub fn new(world: Arc<World>, fifo: bool, max_body_bytes: usize) -> SqsModel {
        SqsModel {
            fifo,
            visibility: Duration::from_secs(180),
            max_receive_count: if fifo { 100 } else { 20 },
            max_body_bytes,
            state: Mutex::default(),
            arrived: Notify::new(),
            world,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores what a send stores: refused bodies are the sender's fault; FIFO duplicates within
    /// the window are accepted and dropped.
    fn store(&self, entries: &[QueueMessage], failed: &[bool]) -> Vec<(usize, EntryFailure)> {
        let now = Instant::now();
        let mut state = self.lock();
        let mut failures = Vec::new();
        for (index, message) in entries.iter().enumerate() {
            if message.body().len() > self.max_body_bytes || !sqs_accepts(message.body()) {
                failures.push((
                    index,
                    EntryFailure::Refused("InvalidMessageContents".into()),
                ));
                continue;
            }
            if failed[index] {
                failures.push((index, EntryFailure::Retry("InternalError".into())));
                continue;
            }
            let group = self.fifo.then(|| message.conversation().to_string());
            if let Some(group) = &group {
                let dedup = (group.clone(), message.key().to_string());
                if state
                    .dedup
                    .get(&dedup)
                    .is_some_and(|at| now.duration_since(*at) < DEDUP_WINDOW)
                {
                    continue;
                }
                state.dedup.insert(dedup, now);
            }
            state.next_id += 1;
            let id = state.next_id;
            state.messages.push(Message {
                id,
                body: message.body().to_string(),
                key: message.key().to_string(),
                group,
                receive_count: 0,
                visible_at: now,
                receipt: None,
                in_flight: false,
            });
            self.world
                .trace(format!("sqs: stored {} as #{id}", message.key()));
        }
        drop(state);
        self.arrived.notify_waiters();
        failures
    }

    /// Receives up to `max` messages for a consumer, as SQS's `ReceiveMessage` does.
    pub fn receive(&self, max: usize) -> Vec<QueueRecord> {
        let now = Instant::now();
        let mut state = self.lock();
        for message in state.messages.iter_mut() {
            if message.in_flight && message.visible_at <= now {
                message.in_flight = false;
            }
        }
        let mut chosen: Vec<usize> = Vec::new();
        if self.fifo {
            // Groups in the order of their oldest message; a group with a message in flight is
            // skipped whole; from a group, its messages in order, as many as fit.
            let mut seen: Vec<String> = Vec::new();
            let mut blocked: Vec<String> = Vec::new();
            for message in &state.messages {
                let group = message.group.clone().unwrap_or_default();
                if message.in_flight {
                    blocked.push(group);
                } else if !seen.contains(&group) {
                    seen.push(group);
                }
            }
            for group in seen.into_iter().filter(|g| !blocked.contains(g)) {
                for (index, message) in state.messages.iter().enumerate() {
                    if chosen.len() == max {
                        break;
                    }
                    if message.group.as_deref() == Some(group.as_str()) {
                        chosen.push(index);
                    }
                }
            }
        } else {
            let mut visible: Vec<usize> = (0..state.messages.len())
                .filter(|&i| !state.messages[i].in_flight)
                .collect();
            self.world.shuffle(&mut visible);
            chosen = visible.into_iter().take(max).collect();
        }
        // Redrive: a message received maxReceiveCount times goes to the dead-letter queue at
        // this receive. On FIFO the rest of its group waits for the next receive (order).
        let mut received = Vec::new();
        let mut dead: Vec<usize> = Vec::new();
        let mut skip_groups: Vec<String> = Vec::new();
        for index in chosen {
            let message = &state.messages[index];
            if let Some(group) = &message.group
                && skip_groups.contains(group)
            {
                continue;
            }
            if message.receive_count >= self.max_receive_count {
                if let Some(group) = &message.group {
                    skip_groups.push(group.clone());
                }
                dead.push(index);
                continue;
            }
            state.next_receipt += 1;
            let receipt = state.next_receipt;
            // At-least-once: now and then a standard receive leaves a copy visible.
            let duplicate = !self.fifo && self.world.chance(self.world.faults.sqs_duplicate);
            if duplicate {
                self.world.injected("standard receive delivered twice");
            }
            let message = &mut state.messages[index];
            message.receive_count += 1;
            message.receipt = Some(receipt);
            if !duplicate {
                message.in_flight = true;
                message.visible_at = now + self.visibility;
            }
            received.push(QueueRecord {
                message_id: format!("{}:{receipt}", message.id),
                body: message.body.clone(),
                group_id: message.group.clone(),
                receive_count: message.receive_count,
                platform: None,
            });
        }
        dead.sort_unstable();
        for index in dead.into_iter().rev() {
            let message = state.messages.remove(index);
            self.world.injected("redriven by maxReceiveCount");
            self.world.trace(format!(
                "sqs: #{} ({}) redriven to the dead-letter queue after {} receives",
                message.id, message.key, message.receive_count
            ));
            state.dead.push((message, "maxReceiveCount".into()));
        }
        received
    }

    /// Deletes a message by the receipt in its record's id; a stale receipt deletes nothing.
    pub fn delete(&self, message_id: &str) {
        let Some((id, receipt)) = parse_message_id(message_id) else {
            return;
        };
        let mut state = self.lock();
        if let Some(index) = state
            .messages
            .iter()
            .position(|m| m.id == id && m.receipt == Some(receipt))
        {
            state.messages.remove(index);
        }
    }

    /// Messages not deleted, visible or in flight.
    pub fn depth(&self) -> usize {
        self.lock().messages.len()
    }

    /// When the next invisible message becomes visible.
    pub fn next_visible(&self) -> Option<Instant> {
        self.lock()
            .messages
            .iter()
            .filter(|m| m.in_flight)
            .map(|m| m.visible_at)
            .min()
    }

    /// The dead-letter queue: messages and why they are there.
    pub fn dead_letters(&self) -> Vec<(Message, String)> {
        self.lock().dead.clone()
    }

    fn dead_letter_record(&self, record: &QueueRecord, reason: &str) {
        let Some((id, _)) = parse_message_id(&record.message_id) else {
            return;
        };
        let mut state = self.lock();
        let key = shared::envelope::Envelope::decode(&record.body)
            .map(|e| e.key)
            .unwrap_or_else(|_| "(not an envelope)".into());
        self.world
            .trace(format!("worker: dead-lettered #{id} ({key}): {reason}"));
        state.dead.push((
            Message {
                id,
                body: record.body.clone(),
                key,
                group: record.group_id.clone(),
                receive_count: record.receive_count,
                visible_at: Instant::now(),
                receipt: None,
                in_flight: false,
            },
            reason.to_owned(),
        ));
    }
}

fn parse_message_id(message_id: &str) -> Option<(u64, u64)> {
    let (id, receipt) = message_id.split_once(':')?;
    Some((id.parse().ok()?, receipt.parse().ok()?))
}

/// The queue as the ingress's [`BatchSink`]: calls take time, may fail before or after storing
/// (a lost answer), and may fail single entries.
pub struct SqsSink(pub Arc<SqsModel>);

#[async_trait]
impl BatchSink for SqsSink {
    fn is_fifo(&self) -> bool {
        self.0.fifo
    }

    fn entry_bytes(&self, message: &QueueMessage) -> usize {
        message.body().len() + 24
    }

    fn max_call_bytes(&self) -> usize {
        self.0.max_body_bytes + 64
    }

    fn max_body_bytes(&self) -> usize {
        self.0.max_body_bytes
    }

    async fn send_batch(
        &self,
        entries: &[&QueueMessage],
        _attempt_deadline: Instant,
    ) -> Result<Vec<(usize, EntryFailure)>, String> {
        let world = &self.0.world;
        let call = world.call_fault(
            "SendMessageBatch failed (before or after storing)",
            world.faults.sqs_fault,
        );
        let latency = world.latency(
            "SendMessageBatch slower than the attempt timeout",
            world.faults.sqs_slow,
        );
        let failed: Vec<bool> = entries
            .iter()
            .map(|_| {
                let failed = world.chance(world.faults.sqs_entry_fault);
                if failed {
                    world.injected("SendMessageBatch entry failed");
                }
                failed
            })
            .collect();
        let owned: Vec<QueueMessage> = entries.iter().map(|m| (*m).clone()).collect();
        let model = Arc::clone(&self.0);
        let (answer, answered) = tokio::sync::oneshot::channel();
        // The service works on its own time: a caller that gave up does not undo the call.
        tokio::spawn(async move {
            tokio::time::sleep(latency).await;
            let result = match call {
                Fault::Before => Err("ThrottlingException".to_owned()),
                Fault::None => Ok(model.store(&owned, &failed)),
                Fault::After => {
                    model.store(&owned, &failed);
                    Err("connection reset after the call".to_owned())
                }
            };
            let _ = answer.send(result);
        });
        answered
            .await
            .unwrap_or_else(|_| Err("no answer".to_owned()))
    }
}

/// The dead-letter queue as the worker's port.
pub struct SqsDeadLetters(pub Arc<SqsModel>);

#[async_trait]
impl DeadLetterQueue for SqsDeadLetters {
    async fn dead_letter(&self, record: &QueueRecord, reason: &str) -> Result<(), DeadLetterError> {
        let world = &self.0.world;
        let call = world.call_fault("dead-letter SendMessage failed", world.faults.sqs_fault);
        tokio::time::sleep(world.latency("dead-letter SendMessage slow", world.faults.sqs_slow))
            .await;
        let failed = || DeadLetterError {
            message_id: record.message_id.clone(),
            reason: "ThrottlingException".into(),
        };
        match call {
            Fault::Before => Err(failed()),
            Fault::None => {
                self.0.dead_letter_record(record, reason);
                Ok(())
            }
            Fault::After => {
                self.0.dead_letter_record(record, reason);
                Err(failed())
            }
        }
    }
}

/// How one call to a service goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Refused before doing anything (throttling).
    Before,
    /// Done, but the answer says it failed (or was lost).
    After,
}
