//! Lambda with an SQS event source, as AWS documents it: pollers receive batches of up to ten and
//! invoke the function; a sandbox serves one invocation at a time and is reused; an invocation
//! still running at its timeout is stopped (no batch response, so nothing is deleted and every
//! record comes back after the visibility timeout) and its sandbox discarded; with
//! `ReportBatchItemFailures`, the records not reported failed are deleted. Sandboxes also crash
//! now and then at a random moment (out of memory, a runtime fault), with the same effect.
//!
//! The bot records its effect (the reply a user would see) as the last step of a successful
//! run, so an effect is never half done: a run cut off before it has none.

use crate::platform::Event;
use crate::sqs::SqsModel;
use crate::world::World;
use async_trait::async_trait;
use shared::adapters::memory::MemoryStore;
use shared::bot::{Bot, BotError, BotEvent};
use shared::clients::Clients;
use shared::clock::Clock;
use shared::worker::Worker;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

tokio::task_local! {
    /// The invocation a bot run belongs to.
    static INVOCATION: u64;
}

/// A handler effect: what a user would see.
#[derive(Debug, Clone)]
pub struct Effect {
    pub key: String,
    pub conversation: usize,
    pub seq: usize,
    pub invocation: u64,
}

pub struct SimBot {
    world: Arc<World>,
    events: HashMap<String, Event>,
    runs: Mutex<HashMap<String, u32>>,
    pub effects: Mutex<Vec<Effect>>,
}

impl SimBot {
    pub fn new(world: Arc<World>, events: &[Event]) -> SimBot {
        SimBot {
            world,
            events: events.iter().map(|e| (e.key.clone(), e.clone())).collect(),
            runs: Mutex::default(),
            effects: Mutex::default(),
        }
    }

    pub fn effects(&self) -> Vec<Effect> {
        self.effects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[async_trait]
impl Bot for SimBot {
    async fn handle(&self, event: &BotEvent, _clients: &Clients) -> Result<(), BotError> {
        let Some(script) = self.events.get(&event.key) else {
            return Err(format!("an event nobody sent: {}", event.key).into());
        };
        if event.raw.get().len() < script.json.len() {
            return Err("the bot did not get the event's bytes".into());
        }
        let run = {
            let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
            let run = runs.entry(event.key.clone()).or_default();
            *run += 1;
            *run
        };
        if script.slow_runs.contains(&run) {
            self.world.injected("handler slower than its invocation");
            tokio::time::sleep(Duration::from_secs(40)).await;
        } else if self.world.chance(self.world.faults.slow_handler) {
            // Slow but in time: it ends close to the handlers' deadline, where outcomes must
            // still be recorded before the invocation's.
            self.world.injected("handler took most of its invocation");
            tokio::time::sleep(Duration::from_millis(15_000 + self.world.below(12_000))).await;
        } else {
            tokio::time::sleep(Duration::from_millis(self.world.below(300))).await;
        }
        if script.poison || run <= script.failures {
            self.world.injected("handler failed (scripted)");
            return Err(format!("scripted failure of run {run}").into());
        }
        let invocation = INVOCATION.try_with(|i| *i).unwrap_or(0);
        self.world.trace(format!(
            "bot: effect of {} in invocation {invocation}",
            event.key
        ));
        self.effects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Effect {
                key: event.key.clone(),
                conversation: script.conversation,
                seq: script.seq,
                invocation,
            });
        Ok(())
    }
}

/// What the function did, for the report and the invariants.
#[derive(Debug, Default)]
pub struct Stats {
    pub invocations: AtomicU64,
    pub records: AtomicU64,
    pub crashes: AtomicU64,
    /// Invocations still running at their deadline: must stay 0 (the worker answers before).
    pub deadline_kills: AtomicU64,
    /// Keys whose effect happened in a sandbox that died before the completion was written.
    pub exposed: Mutex<HashSet<String>>,
    /// Keys whose completion the store refused for a whole invocation's reserve.
    pub unrecorded: Mutex<HashSet<String>>,
}

pub struct Lambda {
    world: Arc<World>,
    queue: Arc<SqsModel>,
    clock: Arc<dyn Clock>,
    make_worker: Box<dyn Fn() -> Worker + Send + Sync>,
    idle: Mutex<Vec<Arc<Worker>>>,
    bot: Arc<SimBot>,
    store: Arc<MemoryStore>,
    running: AtomicUsize,
    next_invocation: AtomicU64,
    /// Which sandbox (by its address) ran each invocation.
    sandbox_of: Mutex<HashMap<u64, usize>>,
    pub stats: Stats,
    pub stop: AtomicBool,
    pub timeout: Duration,
}

impl Lambda {
    pub fn new(
        world: Arc<World>,
        queue: Arc<SqsModel>,
        clock: Arc<dyn Clock>,
        bot: Arc<SimBot>,
        store: Arc<MemoryStore>,
        make_worker: Box<dyn Fn() -> Worker + Send + Sync>,
    ) -> Lambda {
        Lambda {
            world,
            queue,
            clock,
            make_worker,
            idle: Mutex::default(),
            bot,
            store,
            running: AtomicUsize::new(0),
            next_invocation: AtomicU64::new(1),
            sandbox_of: Mutex::default(),
            stats: Stats::default(),
            stop: AtomicBool::new(false),
            timeout: Duration::from_secs(30),
        }
    }

    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// One poller of the event source mapping.
    pub async fn poll(self: Arc<Self>) {
        while !self.stop.load(Ordering::SeqCst) {
            let records = self.queue.receive(10);
            if records.is_empty() {
                let wake = self
                    .queue
                    .next_visible()
                    .unwrap_or_else(|| Instant::now() + Duration::from_secs(5))
                    .min(Instant::now() + Duration::from_secs(5));
                tokio::select! {
                    biased;
                    _ = self.queue.arrived.notified() => {}
                    _ = tokio::time::sleep_until(wake) => {}
                }
                continue;
            }
            self.invoke(records).await;
        }
    }

    async fn invoke(&self, records: Vec<shared::worker::QueueRecord>) {
        self.running.fetch_add(1, Ordering::SeqCst);
        let worker = self
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_else(|| Arc::new((self.make_worker)()));
        let id = self.next_invocation.fetch_add(1, Ordering::SeqCst);
        self.sandbox_of
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, Arc::as_ptr(&worker) as usize);
        self.stats.invocations.fetch_add(1, Ordering::SeqCst);
        self.stats
            .records
            .fetch_add(records.len() as u64, Ordering::SeqCst);
        let started = Instant::now();
        let deadline = started + self.timeout;
        let deadline_ms = self.clock.now_ms() + self.timeout.as_millis() as i64;
        // Within the time an invocation usually takes, so that crashes land mid-work.
        let crash_at = self
            .world
            .chance(self.world.faults.crash)
            .then(|| started + Duration::from_millis(self.world.below(1_500)));
        self.world.trace(format!(
            "lambda: invocation {id} of {} records: {:?}",
            records.len(),
            records
                .iter()
                .map(|r| r.message_id.as_str())
                .collect::<Vec<_>>()
        ));
        let run = INVOCATION.scope(id, worker.process(&records, deadline_ms));
        let ended = tokio::select! {
            biased;
            result = tokio::time::timeout_at(deadline, run) => result.ok(),
            _ = sleep_until_some(crash_at) => {
                self.world.injected("sandbox crashed mid-invocation");
                self.stats.crashes.fetch_add(1, Ordering::SeqCst);
                self.world.trace(format!("lambda: invocation {id} crashed"));
                self.expose(&worker);
                self.running.fetch_sub(1, Ordering::SeqCst);
                return;
            }
        };
        match ended {
            Some(report) => {
                for (message_id, outcome) in &report.outcomes {
                    if !outcome.is_failure() {
                        self.queue.delete(message_id);
                    }
                }
                self.world.trace(format!(
                    "lambda: invocation {id} answered in {:?}: {:?}",
                    started.elapsed(),
                    report.outcomes
                ));
                let unrecorded = worker.unrecorded_keys();
                if !unrecorded.is_empty() {
                    self.stats
                        .unrecorded
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend(unrecorded);
                }
                self.idle
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(worker);
            }
            None => {
                // Lambda stops the invocation: no response, the sandbox is discarded.
                self.stats.deadline_kills.fetch_add(1, Ordering::SeqCst);
                self.world
                    .trace(format!("lambda: invocation {id} stopped at its deadline"));
                self.expose(&worker);
            }
        }
        self.running.fetch_sub(1, Ordering::SeqCst);
    }

    /// A sandbox died: the effects of its runs whose completion is not written may repeat.
    fn expose(&self, worker: &Arc<Worker>) {
        let sandbox = Arc::as_ptr(worker) as usize;
        let invocations: HashSet<u64> = self
            .sandbox_of
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, s)| **s == sandbox)
            .map(|(i, _)| *i)
            .collect();
        let mut exposed = self.stats.exposed.lock().unwrap_or_else(|e| e.into_inner());
        for effect in self.bot.effects() {
            if invocations.contains(&effect.invocation) && !self.store.is_completed(&effect.key) {
                exposed.insert(effect.key);
            }
        }
        exposed.extend(worker.unrecorded_keys());
    }
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
