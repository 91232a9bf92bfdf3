//! Deterministic simulation of the whole gateway, the way FoundationDB and TigerBeetle test
//! themselves: the real ingress ([`shared::ingress::Ingress`] with the real sender,
//! [`shared::enqueue::BatchedQueue`]) and the real worker ([`shared::worker::Worker`]) driven by
//! seeded models of their environment on a virtual clock:
//!
//! - the platforms ([`platform`]): conversations sent in order, retried as LINE and Meta retry,
//!   re-batched, and resent after a lost `200`;
//! - SQS as AWS documents it ([`sqs`]): standard and FIFO, visibility timeouts, receive counts,
//!   redrive, duplicate deliveries, FIFO deduplication and group order, size and character
//!   limits; calls that fail before or after their work, or take too long;
//! - DynamoDB's conditional writes and the claim-check bucket ([`store`]), with throttling,
//!   timeouts, ambiguous writes and outages;
//! - Lambda ([`lambda`]): batches of ten, sandboxes reused, invocations stopped at their
//!   deadline, sandboxes crashing at random moments.
//!
//! After each run quiesces, the invariants are checked (see [`check`]). Every run is one seed; a
//! failing seed is printed with the command that replays it and the run's trace:
//! `SIM_SEED=<seed> cargo test -p shared --test simulation replay -- --nocapture`.
//! `SIM_SEEDS=<n>` sets how many seeds the main test runs (`scripts/simulate.sh` for long runs).

mod lambda;
mod platform;
mod sqs;
mod store;
mod world;

use lambda::{Lambda, SimBot};
use platform::{Conversation, Event, Platform};
use shared::clients::Clients;
use shared::clock::{Clock, TokioClock};
use shared::enqueue::BatchedQueue;
use shared::ingress::{Ingress, IngressConfig};
use shared::worker::{Worker, WorkerConfig};
use sqs::{SqsDeadLetters, SqsModel, SqsSink};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use store::{ClaimsModel, StoreModel};
use tokio::time::Instant;
use world::World;

/// The body limit of the simulated queue: SQS's 1 MiB scaled down, so that claim checks happen
/// without megabyte strings (the code reads the limit from the queue, whatever it is).
const MAX_BODY: usize = 8 * 1024;

/// How the gateway is set up for a run.
#[derive(Debug, Clone, Copy)]
struct Setup {
    max_attempts: u32,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            max_attempts: shared::worker::DEFAULT_MAX_ATTEMPTS,
        }
    }
}

/// What a run did.
#[derive(Debug, Default, Clone)]
struct Report {
    fifo: bool,
    events: u64,
    poison: u64,
    requests: u64,
    platform_retries: u64,
    invocations: u64,
    records: u64,
    crashes: u64,
    exposed: u64,
    repeated_after_exposure: u64,
    unrecorded: u64,
    dead_letters: u64,
    virtual_seconds: f64,
    injected: std::collections::BTreeMap<&'static str, u64>,
}

/// A broken invariant, with the run's trace.
#[derive(Debug)]
struct Violation {
    seed: u64,
    problems: Vec<String>,
    trace: Vec<String>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "seed {} broke the gateway's promises:", self.seed)?;
        for problem in &self.problems {
            writeln!(f, "  - {problem}")?;
        }
        writeln!(
            f,
            "replay: SIM_SEED={} cargo test -p shared --test simulation replay -- --nocapture",
            self.seed
        )?;
        writeln!(f, "last lines of the trace:")?;
        let skip = self.trace.len().saturating_sub(60);
        for line in &self.trace[skip..] {
            writeln!(f, "    {line}")?;
        }
        Ok(())
    }
}

/// Runs one seed to quiescence and checks it.
fn simulate(seed: u64, setup: Setup) -> Result<Report, Violation> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    let (world, result) = runtime.block_on(seeded(seed, setup));
    result.map_err(|problems| Violation {
        seed,
        problems,
        trace: world.trace_lines(),
    })
}

/// One run inside the paused runtime: everything that reads the clock, the world included, must
/// be made here, or real time leaks into the run.
async fn seeded(seed: u64, setup: Setup) -> (Arc<World>, Result<Report, Vec<String>>) {
    // The code's own jitter (backoff) draws from fastrand's thread-local generator.
    fastrand::seed(seed ^ 0x5eed_5eed);
    let world = Arc::new(World::new(seed));
    let result = run(Arc::clone(&world), setup).await;
    (world, result)
}

async fn run(world: Arc<World>, setup: Setup) -> Result<Report, Vec<String>> {
    let started = Instant::now();
    let fifo = world.chance(0.5);
    let queue = Arc::new(SqsModel::new(Arc::clone(&world), fifo, MAX_BODY));
    let store = Arc::new(StoreModel::new(Arc::clone(&world)));
    let claims = Arc::new(ClaimsModel::new(Arc::clone(&world)));
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(1_763_000_000_000));
    // Healthy events need fewer runs than the real default allows, whatever the setup tried.
    let conversations =
        platform::conversations(&world, shared::worker::DEFAULT_MAX_ATTEMPTS, MAX_BODY);
    let events: Vec<Event> = conversations
        .iter()
        .flat_map(|c| c.events.iter().cloned())
        .collect();
    world.trace(format!(
        "setup: {} queue, {} conversations, {} events, faults {:?}",
        if fifo { "FIFO" } else { "standard" },
        conversations.len(),
        events.len(),
        world.faults
    ));

    let config = IngressConfig::from_vars(|name| match name {
        "LINE_CHANNEL_SECRET" => Some(platform::LINE_SECRET.into()),
        "META_APP_SECRET" => Some(platform::META_SECRET.into()),
        _ => None,
    })
    .map_err(|e| vec![e.to_string()])?;
    let sink = BatchedQueue::new(SqsSink(Arc::clone(&queue)), 16, Duration::from_millis(700));
    let ingress = Arc::new(
        Ingress::new(config, Arc::new(sink))
            .with_claims(claims.clone())
            .with_clock(Arc::clone(&clock)),
    );

    let bot = Arc::new(SimBot::new(Arc::clone(&world), &events));
    let make_worker = {
        let (store, bot, claims, queue, clock) = (
            Arc::clone(&store),
            Arc::clone(&bot),
            Arc::clone(&claims),
            Arc::clone(&queue),
            Arc::clone(&clock),
        );
        Box::new(move || {
            Worker::new(
                store.clone(),
                bot.clone(),
                Clients::default(),
                WorkerConfig {
                    max_attempts: setup.max_attempts,
                    ..WorkerConfig::default()
                },
            )
            .with_clock(clock.clone())
            .with_dead_letters(Arc::new(SqsDeadLetters(queue.clone())))
            .with_claims(claims.clone())
        })
    };
    let lambda = Arc::new(Lambda::new(
        Arc::clone(&world),
        Arc::clone(&queue),
        Arc::clone(&clock),
        Arc::clone(&bot),
        Arc::clone(&store.inner),
        make_worker,
    ));
    let pollers: Vec<_> = (0..1 + world.below(4))
        .map(|_| tokio::spawn(Arc::clone(&lambda).poll()))
        .collect();

    // Senders: each owns one to three conversations of one platform.
    let mut owned: Vec<Vec<Conversation>> = Vec::new();
    for platform in [Platform::Line, Platform::Meta] {
        let mut mine: Vec<Conversation> = conversations
            .iter()
            .filter(|c| c.platform == platform)
            .cloned()
            .collect();
        while !mine.is_empty() {
            let take = (1 + world.below(3) as usize).min(mine.len());
            owned.push(mine.drain(..take).collect());
        }
    }
    let senders: Vec<_> = owned
        .into_iter()
        .map(|conversations| {
            tokio::spawn(platform::send(
                Arc::clone(&world),
                Arc::clone(&ingress),
                conversations,
            ))
        })
        .collect();
    let limit = started + Duration::from_secs(24 * 3600);
    let mut sent = platform::Sent::default();
    for sender in senders {
        match tokio::time::timeout_at(limit, sender).await {
            Ok(Ok(s)) => {
                sent.requests += s.requests;
                sent.retries += s.retries + s.resent_after_200;
            }
            _ => {
                return Err(vec![
                    "the platforms' requests were never all accepted".into(),
                ]);
            }
        }
    }
    // Quiescence: nothing in the queue, nothing running.
    while queue.depth() > 0 || lambda.running() > 0 {
        if Instant::now() >= limit {
            return Err(vec![format!(
                "not quiescent after a day: {} messages still in the queue",
                queue.depth()
            )]);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    lambda.stop.store(true, Ordering::SeqCst);
    queue.arrived.notify_waiters();
    for poller in pollers {
        poller.abort();
    }

    let report = Report {
        fifo,
        events: events.len() as u64,
        poison: events.iter().filter(|e| e.poison).count() as u64,
        requests: sent.requests,
        platform_retries: sent.retries,
        invocations: lambda.stats.invocations.load(Ordering::SeqCst),
        records: lambda.stats.records.load(Ordering::SeqCst),
        crashes: lambda.stats.crashes.load(Ordering::SeqCst),
        dead_letters: queue.dead_letters().len() as u64,
        virtual_seconds: started.elapsed().as_secs_f64(),
        injected: world.injected_counts(),
        ..Report::default()
    };
    check(&events, fifo, &bot, &queue, &lambda, report)
}

/// The invariants, after the run has quiesced:
/// 1. exactly once: every healthy event's effect happened once (more only for an event whose
///    effect happened in a sandbox that died before its completion was written, or whose
///    completion the store refused for a whole invocation: counted, see RELIABILITY.md);
/// 2. nothing lost: no healthy event without its effect;
/// 3. poison goes to the dead-letter queue, and nothing healthy does;
/// 4. order: on FIFO, each conversation's effects in the order the platform sent its events;
///    on a standard queue, in order within each invocation's batch;
/// 5. the worker answered every invocation before its deadline.
fn check(
    events: &[Event],
    fifo: bool,
    bot: &SimBot,
    queue: &SqsModel,
    lambda: &Lambda,
    mut report: Report,
) -> Result<Report, Vec<String>> {
    let mut problems = Vec::new();
    let effects = bot.effects();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for effect in &effects {
        *counts.entry(effect.key.as_str()).or_default() += 1;
    }
    let dead: HashSet<String> = queue
        .dead_letters()
        .into_iter()
        .map(|(m, _)| m.key)
        .collect();
    let exposed = lambda
        .stats
        .exposed
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let unrecorded = lambda
        .stats
        .unrecorded
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    report.exposed = exposed.len() as u64;
    report.unrecorded = unrecorded.len() as u64;
    for event in events {
        let n = counts.get(event.key.as_str()).copied().unwrap_or(0);
        if event.poison {
            if n != 0 {
                problems.push(format!("{}: a poison event had an effect", event.key));
            }
            if !dead.contains(&event.key) {
                problems.push(format!(
                    "{}: a poison event is not in the dead-letter queue",
                    event.key
                ));
            }
            continue;
        }
        if n == 0 {
            problems.push(format!("{}: lost (no effect)", event.key));
        }
        if n > 1 {
            if exposed.contains(&event.key) || unrecorded.contains(&event.key) {
                report.repeated_after_exposure += 1;
            } else {
                problems.push(format!("{}: handled {n} times", event.key));
            }
        }
        if dead.contains(&event.key) {
            problems.push(format!(
                "{}: a healthy event reached the dead-letter queue",
                event.key
            ));
        }
    }
    let poisoned: HashSet<&str> = events
        .iter()
        .filter(|e| e.poison)
        .map(|e| e.key.as_str())
        .collect();
    for key in &dead {
        if !poisoned.contains(key.as_str()) && !events.iter().any(|e| &e.key == key) {
            problems.push(format!(
                "{key}: in the dead-letter queue, but nobody sent it"
            ));
        }
    }
    // Order.
    let mut last_seq: HashMap<(usize, Option<u64>), usize> = HashMap::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for effect in &effects {
        if !seen.insert(effect.key.as_str()) {
            continue; // a repeat after an exposure: already judged above
        }
        let scope = (effect.conversation, (!fifo).then_some(effect.invocation));
        if let Some(&before) = last_seq.get(&scope)
            && before > effect.seq
        {
            problems.push(format!(
                "{}: out of order in conversation {} ({} came after {before}){}",
                effect.key,
                effect.conversation,
                effect.seq,
                if fifo { "" } else { " within one batch" }
            ));
        }
        last_seq.insert(scope, effect.seq);
    }
    let kills = lambda.stats.deadline_kills.load(Ordering::SeqCst);
    if kills > 0 {
        problems.push(format!(
            "{kills} invocations were still running at their deadline (Lambda stopped them)"
        ));
    }
    if problems.is_empty() {
        Ok(report)
    } else {
        Err(problems)
    }
}

fn seeds_from_env() -> (u64, u64) {
    let number = |name: &str| std::env::var(name).ok().and_then(|v| v.trim().parse().ok());
    (
        number("SIM_FIRST_SEED").unwrap_or(1),
        number("SIM_SEEDS").unwrap_or(2_000),
    )
}

/// Runs `count` seeds from `first` on two threads; the violations found and the reports.
fn run_seeds(first: u64, count: u64, setup: Setup) -> (Vec<Violation>, Vec<Report>) {
    let threads = 2;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut violations = Vec::new();
                    let mut reports = Vec::new();
                    let mut seed = first + t;
                    while seed < first + count {
                        match simulate(seed, setup) {
                            Ok(report) => reports.push(report),
                            Err(violation) => violations.push(violation),
                        }
                        seed += threads;
                    }
                    (violations, reports)
                })
            })
            .collect();
        let mut violations = Vec::new();
        let mut reports = Vec::new();
        for handle in handles {
            let (v, r) = handle.join().expect("simulation thread");
            violations.extend(v);
            reports.extend(r);
        }
        violations.sort_by_key(|v| v.seed);
        (violations, reports)
    })
}

#[test]
fn thousands_of_seeded_runs_keep_every_promise() {
    let (first, count) = seeds_from_env();
    let started = std::time::Instant::now();
    let (violations, reports) = run_seeds(first, count, Setup::default());
    let sum = |f: fn(&Report) -> u64| reports.iter().map(f).sum::<u64>();
    println!(
        "simulation: {} seeds from {first} ({} FIFO, {} standard) in {:.1} s: {} events ({} poison), \
         {} platform requests ({} retried or resent), {} invocations of {} records, {} sandbox \
         crashes, {} dead letters; {} events exposed by a crash after their effect, {} of them \
         repeated; {} completions the store refused for a whole invocation; {:.0} virtual hours; \
         violations: {}",
        reports.len() + violations.len(),
        reports.iter().filter(|r| r.fifo).count(),
        reports.iter().filter(|r| !r.fifo).count(),
        started.elapsed().as_secs_f64(),
        sum(|r| r.events),
        sum(|r| r.poison),
        sum(|r| r.requests),
        sum(|r| r.platform_retries),
        sum(|r| r.invocations),
        sum(|r| r.records),
        sum(|r| r.crashes),
        sum(|r| r.dead_letters),
        sum(|r| r.exposed),
        sum(|r| r.repeated_after_exposure),
        sum(|r| r.unrecorded),
        reports.iter().map(|r| r.virtual_seconds).sum::<f64>() / 3600.0,
        violations.len(),
    );
    let mut injected: std::collections::BTreeMap<&str, u64> = Default::default();
    for report in &reports {
        for (kind, n) in &report.injected {
            *injected.entry(kind).or_default() += n;
        }
    }
    println!("faults injected: {} in all", injected.values().sum::<u64>());
    for (kind, n) in &injected {
        println!("  {n:>8}  {kind}");
    }
    if let Some(first) = violations.first() {
        panic!(
            "{} of {count} seeds broke an invariant; the first:\n{first}",
            violations.len()
        );
    }
}

/// Replays one seed with its whole trace: `SIM_SEED=<seed>`.
#[test]
fn replay() {
    let Some(seed) = std::env::var("SIM_SEED").ok().and_then(|v| v.parse().ok()) else {
        println!("set SIM_SEED to replay a seed");
        return;
    };
    let world_trace = |seed| match simulate(seed, Setup::default()) {
        Ok(report) => println!("seed {seed}: every invariant held: {report:?}"),
        Err(violation) => {
            for line in &violation.trace {
                println!("{line}");
            }
            panic!("{violation}");
        }
    };
    world_trace(seed);
}

/// The same seed, the same run: the trace is identical line for line.
#[test]
fn a_seed_replays_exactly() {
    for seed in [3, 17, 42, 99, 1234, 2025, 31337] {
        let trace = |seed| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("runtime");
            let (world, _) = runtime.block_on(seeded(seed, Setup::default()));
            world.trace_lines()
        };
        let (a, b) = (trace(seed), trace(seed));
        assert!(a.len() > 10, "seed {seed}: a real run");
        assert_eq!(a, b, "seed {seed} ran differently twice");
    }
}

/// The invariants bite: a worker that gives up after one failed run dead-letters healthy events
/// that needed a retry, and the simulation says so.
#[test]
fn the_invariants_catch_a_worker_that_gives_up_too_early() {
    let (violations, _) = run_seeds(1, 200, Setup { max_attempts: 1 });
    assert!(
        violations.iter().any(|v| v
            .problems
            .iter()
            .any(|p| p.contains("healthy event reached the dead-letter queue"))),
        "no seed caught it"
    );
}
