//! The worker engine with the in-memory store and a scripted bot: once per event, in order, and
//! nothing lost. (The same against DynamoDB on moto, with the example bot and a fake LINE API, is
//! in `functions/worker/tests`.)

use async_trait::async_trait;
use shared::Platform;
use shared::adapters::memory::{MemoryDeadLetters, MemoryStore};
use shared::bot::{Bot, BotError, BotEvent, BotEventKind};
use shared::clients::Clients;
use shared::envelope::{ENVELOPE_VERSION, Envelope, LineContext};
use shared::ports::{Claim, IdempotencyStore, Release, StoreError};
use shared::worker::{QueueRecord, RecordOutcome, Worker, WorkerConfig};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn now_ms() -> i64 {
    shared::clock::now_ms()
}

/// What the scripted bot does for a key.
#[derive(Clone, Copy)]
enum Script {
    Fail,
    Panic,
    Sleep(Duration),
}

#[derive(Default)]
struct ScriptedBot {
    calls: Mutex<Vec<String>>,
    script: Mutex<HashMap<String, Vec<Script>>>,
}

impl ScriptedBot {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("lock").clone()
    }
    fn count(&self, key: &str) -> usize {
        self.calls().iter().filter(|k| *k == key).count()
    }
    /// The next calls for `key` follow `steps`; afterwards it succeeds.
    fn script(&self, key: &str, steps: &[Script]) {
        self.script
            .lock()
            .expect("lock")
            .insert(key.to_owned(), steps.to_vec());
    }
}

#[async_trait]
impl Bot for ScriptedBot {
    async fn handle(&self, event: &BotEvent, _clients: &Clients) -> Result<(), BotError> {
        assert!(
            matches!(event.kind, BotEventKind::Line { .. }),
            "typed: {:?}",
            event.kind
        );
        self.calls.lock().expect("lock").push(event.key.clone());
        let step = {
            let mut script = self.script.lock().expect("lock");
            script
                .get_mut(&event.key)
                .and_then(|steps| (!steps.is_empty()).then(|| steps.remove(0)))
        };
        match step {
            None => Ok(()),
            Some(Script::Fail) => Err("scripted failure".into()),
            Some(Script::Panic) => panic!("scripted panic"),
            Some(Script::Sleep(time)) => {
                tokio::time::sleep(time).await;
                Ok(())
            }
        }
    }
}

fn envelope(id: &str, user: &str, timestamp: i64) -> String {
    let event = format!(
        r#"{{"type":"message","message":{{"type":"text","id":"{id}","text":"t","quoteToken":"q"}},"webhookEventId":"{id}","deliveryContext":{{"isRedelivery":false}},"timestamp":{timestamp},"source":{{"type":"user","userId":"{user}"}},"replyToken":"r","mode":"active"}}"#
    );
    Envelope {
        version: ENVELOPE_VERSION,
        platform: Platform::Line,
        tenant: None,
        key: format!("line:{id}"),
        conversation: format!("line:B:user:{user}"),
        timestamp: Some(timestamp),
        received_at: now_ms(),
        line: Some(LineContext {
            destination: Some("B".into()),
        }),
        meta: None,
        stage: Default::default(),
        claim: None,
        event_base64: None,
        oversized: None,
        event: serde_json::value::RawValue::from_string(event).expect("json"),
    }
    .encode()
    .expect("encode")
}

fn record(message_id: &str, body: String) -> QueueRecord {
    QueueRecord::new(message_id, body)
}

fn fifo_record(message_id: &str, group: &str, body: String) -> QueueRecord {
    QueueRecord {
        group_id: Some(group.into()),
        ..QueueRecord::new(message_id, body)
    }
}

fn worker(store: Arc<dyn IdempotencyStore>, bot: Arc<ScriptedBot>) -> Worker {
    Worker::new(store, bot, Clients::default(), WorkerConfig::default())
}

/// A fresh in-memory store, scripted bot and worker over them.
fn setup() -> (Arc<MemoryStore>, Arc<ScriptedBot>, Worker) {
    let (store, bot) = (
        Arc::new(MemoryStore::new()),
        Arc::new(ScriptedBot::default()),
    );
    let worker = worker(store.clone(), bot.clone());
    (store, bot, worker)
}

fn deadline_in(ms: i64) -> i64 {
    now_ms() + ms
}

#[tokio::test]
async fn the_same_event_three_times_in_one_batch_runs_once() {
    let (_, bot, worker) = setup();
    let body = envelope("E1", "Ua", 1);
    let records = [
        record("m1", body.clone()),
        record("m2", body.clone()),
        record("m3", body),
    ];
    let report = worker.process(&records, deadline_in(10_000)).await;
    assert_eq!(bot.count("line:E1"), 1);
    assert_eq!(report.count(&RecordOutcome::Handled), 1);
    assert_eq!(report.count(&RecordOutcome::Duplicate), 2);
    assert!(report.failed_message_ids().is_empty());
}

#[tokio::test]
async fn the_same_event_in_separate_batches_runs_once() {
    let (_, bot, worker) = setup();
    for message_id in ["m1", "m2", "m3"] {
        let report = worker
            .process(
                &[record(message_id, envelope("E1", "Ua", 1))],
                deadline_in(10_000),
            )
            .await;
        assert!(report.failed_message_ids().is_empty());
    }
    assert_eq!(bot.count("line:E1"), 1);
}

#[tokio::test]
async fn the_same_event_in_concurrent_invocations_runs_once() {
    let (store, bot) = (
        Arc::new(MemoryStore::new()),
        Arc::new(ScriptedBot::default()),
    );
    bot.script("line:E1", &[Script::Sleep(Duration::from_millis(200))]);
    let a = worker(store.clone(), bot.clone());
    let b = worker(store.clone(), bot.clone());
    let (first, second) = (
        [record("m1", envelope("E1", "Ua", 1))],
        [record("m2", envelope("E1", "Ua", 1))],
    );
    let (ra, rb) = tokio::join!(
        a.process(&first, deadline_in(10_000)),
        b.process(&second, deadline_in(10_000)),
    );
    assert_eq!(bot.count("line:E1"), 1);
    // The one that found it in progress reports it failed: SQS retries it, and then it is a duplicate.
    let outcomes: Vec<&RecordOutcome> = ra
        .outcomes
        .iter()
        .chain(rb.outcomes.iter())
        .map(|(_, o)| o)
        .collect();
    assert!(outcomes.contains(&&RecordOutcome::Handled));
    assert!(outcomes.contains(&&RecordOutcome::InProgressElsewhere));
    let retry = a
        .process(
            &[record("m2", envelope("E1", "Ua", 1))],
            deadline_in(10_000),
        )
        .await;
    assert_eq!(retry.outcomes[0].1, RecordOutcome::Duplicate);
    assert_eq!(bot.count("line:E1"), 1);
}

#[tokio::test]
async fn a_failed_handler_releases_the_event_and_the_retry_runs_it_once() {
    let (store, bot, worker) = setup();
    bot.script("line:E1", &[Script::Fail, Script::Panic]);
    let records = [
        record("m1", envelope("E1", "Ua", 1)),
        record("m2", envelope("E2", "Ub", 1)),
    ];
    let first = worker.process(&records, deadline_in(10_000)).await;
    assert_eq!(first.failed_message_ids(), ["m1"]);
    assert!(!store.is_completed("line:E1"));
    assert!(store.is_completed("line:E2"));
    let second = worker.process(&records[..1], deadline_in(10_000)).await;
    assert_eq!(
        second.failed_message_ids(),
        ["m1"],
        "a panic is a failure too"
    );
    let third = worker.process(&records, deadline_in(10_000)).await;
    assert!(third.failed_message_ids().is_empty());
    assert_eq!(third.outcomes[1].1, RecordOutcome::Duplicate);
    assert_eq!(bot.count("line:E1"), 3, "two failures and one success");
    assert_eq!(bot.count("line:E2"), 1);
}

#[tokio::test]
async fn a_handler_past_its_deadline_is_cut_off_and_released() {
    let (store, bot, worker) = setup();
    bot.script("line:E1", &[Script::Sleep(Duration::from_secs(30))]);
    let started = std::time::Instant::now();
    let report = worker
        .process(&[record("m1", envelope("E1", "Ua", 1))], deadline_in(1_000))
        .await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(report.outcomes[0].1, RecordOutcome::Failed);
    assert!(!store.is_completed("line:E1"));
    let retry = worker
        .process(
            &[record("m1", envelope("E1", "Ua", 1))],
            deadline_in(10_000),
        )
        .await;
    assert_eq!(retry.outcomes[0].1, RecordOutcome::Handled);
}

#[tokio::test]
async fn a_claim_whose_invocation_died_is_taken_over_after_its_expiry() {
    let (store, bot) = (
        Arc::new(MemoryStore::new()),
        Arc::new(ScriptedBot::default()),
    );
    // An invocation claimed the key until now + 300 ms, then died without completing or releasing.
    let now = now_ms();
    store
        .claim(
            "line:E1",
            "dead-invocation",
            now,
            now + 300,
            now + 3_600_000,
        )
        .await
        .expect("claim");
    let worker = worker(store.clone(), bot.clone());
    let early = worker
        .process(
            &[record("m1", envelope("E1", "Ua", 1))],
            deadline_in(10_000),
        )
        .await;
    assert_eq!(early.outcomes[0].1, RecordOutcome::InProgressElsewhere);
    assert_eq!(bot.count("line:E1"), 0);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let late = worker
        .process(
            &[record("m1", envelope("E1", "Ua", 1))],
            deadline_in(10_000),
        )
        .await;
    assert_eq!(late.outcomes[0].1, RecordOutcome::Handled);
    assert_eq!(bot.count("line:E1"), 1);
}

#[tokio::test]
async fn an_expired_completed_record_counts_as_absent() {
    let (store, bot) = (
        Arc::new(MemoryStore::new()),
        Arc::new(ScriptedBot::default()),
    );
    let now = now_ms();
    store
        .claim("line:E1", "earlier", now, now + 1_000, now + 1_000)
        .await
        .expect("claim");
    // Completed with an expiry already two seconds past (the TTL has not deleted it yet).
    store
        .complete("line:E1", now - 2_000)
        .await
        .expect("complete");
    let worker = worker(store.clone(), bot.clone());
    let report = worker
        .process(
            &[record("m1", envelope("E1", "Ua", 1))],
            deadline_in(10_000),
        )
        .await;
    assert_eq!(report.outcomes[0].1, RecordOutcome::Handled);
}

const NOT_ENVELOPES: [&str; 3] = [
    "not json",
    r#"{"version":1,"platform":"meta","key":"k","conversation":"c","received_at":1,"event":{}}"#,
    "",
];
const NEWER_VERSION: &str = r#"{"version":99,"platform":"line","key":"k","conversation":"c","received_at":1,"line":{"destination":"B"},"event":{}}"#;

#[tokio::test]
async fn records_that_are_not_envelopes_fail_alone() {
    let (_, bot, worker) = setup();
    let records = [
        record("ok1", envelope("E1", "Ua", 1)),
        record("bad1", NOT_ENVELOPES[0].into()),
        record("bad2", NEWER_VERSION.into()),
        record("bad3", NOT_ENVELOPES[1].into()),
        record("bad4", NOT_ENVELOPES[2].into()),
        record("ok2", envelope("E2", "Ua", 2)),
    ];
    let report = worker.process(&records, deadline_in(10_000)).await;
    assert_eq!(
        report.failed_message_ids(),
        ["bad1", "bad2", "bad3", "bad4"]
    );
    assert_eq!(
        report.count(&RecordOutcome::Poison),
        3,
        "no dead-letter queue: the queue's redrive"
    );
    assert_eq!(bot.calls(), ["line:E1", "line:E2"]);
}

#[tokio::test]
async fn with_a_dead_letter_queue_poison_is_dead_lettered_at_once_and_a_newer_version_waits() {
    let (store, bot) = (
        Arc::new(MemoryStore::new()),
        Arc::new(ScriptedBot::default()),
    );
    let dead_letters = Arc::new(MemoryDeadLetters::new());
    let worker = worker(store, bot.clone()).with_dead_letters(dead_letters.clone());
    let records = [
        record("bad1", NOT_ENVELOPES[0].into()),
        record("bad2", NEWER_VERSION.into()),
        record("ok", envelope("E1", "Ua", 1)),
    ];
    let report = worker.process(&records, deadline_in(10_000)).await;
    assert_eq!(
        report.failed_message_ids(),
        ["bad2"],
        "a newer ingress: retried, not dead-lettered"
    );
    let letters = dead_letters.letters();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].0.message_id, "bad1");
    assert!(
        letters[0].1.starts_with("not an envelope"),
        "{}",
        letters[0].1
    );
    assert_eq!(bot.calls(), ["line:E1"]);
}

#[tokio::test]
async fn an_event_that_keeps_failing_is_dead_lettered_with_its_reason_after_max_attempts() {
    let (store, bot) = (
        Arc::new(MemoryStore::new()),
        Arc::new(ScriptedBot::default()),
    );
    bot.script("line:E1", &[Script::Fail; 10]);
    let dead_letters = Arc::new(MemoryDeadLetters::new());
    let worker = worker(store.clone(), bot.clone()).with_dead_letters(dead_letters.clone());
    let max = worker.config().max_attempts as usize;
    for attempt in 1..=max {
        let report = worker
            .process(
                &[record("m1", envelope("E1", "Ua", 1))],
                deadline_in(10_000),
            )
            .await;
        let expected = if attempt < max {
            RecordOutcome::Failed
        } else {
            RecordOutcome::DeadLettered
        };
        assert_eq!(report.outcomes[0].1, expected, "attempt {attempt}");
    }
    assert_eq!(bot.count("line:E1"), max);
    let letters = dead_letters.letters();
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0]
            .1
            .contains("5 failed attempts; last: handler failed: scripted failure"),
        "{}",
        letters[0].1
    );
    // Redriven from the dead-letter queue once fixed: it starts over and runs.
    assert!(
        !store.has_record("line:E1"),
        "forgotten, so that a redrive starts over"
    );
    bot.script("line:E1", &[]);
    let redriven = worker
        .process(
            &[record("m9", envelope("E1", "Ua", 1))],
            deadline_in(10_000),
        )
        .await;
    assert_eq!(redriven.outcomes[0].1, RecordOutcome::Handled);
}

#[tokio::test]
async fn a_conversation_runs_in_timestamp_order_whatever_the_batch_order() {
    let (_, bot, worker) = setup();
    // Redelivery reorders: the batch has Ua's events as 3, 1, 2.
    let records = [
        record("m1", envelope("A3", "Ua", 3_000)),
        record("m2", envelope("B1", "Ub", 1_000)),
        record("m3", envelope("A1", "Ua", 1_000)),
        record("m4", envelope("A2", "Ua", 2_000)),
    ];
    worker.process(&records, deadline_in(10_000)).await;
    let order: Vec<String> = bot
        .calls()
        .into_iter()
        .filter(|k| k.starts_with("line:A"))
        .collect();
    assert_eq!(order, ["line:A1", "line:A2", "line:A3"]);
}

#[tokio::test]
async fn conversations_run_concurrently_with_a_bound() {
    let (store, bot) = (
        Arc::new(MemoryStore::new()),
        Arc::new(ScriptedBot::default()),
    );
    let config = WorkerConfig {
        concurrency: 4,
        ..WorkerConfig::default()
    };
    let worker = Worker::new(store.clone(), bot.clone(), Clients::default(), config);
    let records: Vec<QueueRecord> = (0..8)
        .map(|i| {
            let key = format!("E{i}");
            bot.script(
                &format!("line:{key}"),
                &[Script::Sleep(Duration::from_millis(300))],
            );
            record(&format!("m{i}"), envelope(&key, &format!("U{i}"), 1))
        })
        .collect();
    let started = std::time::Instant::now();
    let report = worker.process(&records, deadline_in(20_000)).await;
    let elapsed = started.elapsed();
    assert_eq!(report.count(&RecordOutcome::Handled), 8);
    // 8 conversations of 300 ms, 4 at a time: two rounds, neither one (8 at once) nor eight.
    assert!(
        elapsed >= Duration::from_millis(550),
        "bounded: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(2_300),
        "concurrent: {elapsed:?}"
    );
}

#[tokio::test]
async fn fifo_a_failure_blocks_the_rest_of_its_group_only() {
    let (_, bot, worker) = setup();
    bot.script("line:A2", &[Script::Fail]);
    let records = [
        fifo_record("a1", "A", envelope("A1", "Ua", 1)),
        fifo_record("b1", "B", envelope("B1", "Ub", 1)),
        fifo_record("a2", "A", envelope("A2", "Ua", 2)),
        fifo_record("a3", "A", envelope("A3", "Ua", 3)),
        fifo_record("b2", "B", envelope("B2", "Ub", 2)),
        fifo_record("a4", "A", "poison after the failure".into()),
    ];
    let report = worker.process(&records, deadline_in(10_000)).await;
    assert_eq!(report.failed_message_ids(), ["a2", "a3", "a4"]);
    let outcomes: HashMap<&str, &RecordOutcome> = report
        .outcomes
        .iter()
        .map(|(id, o)| (id.as_str(), o))
        .collect();
    assert_eq!(outcomes["a3"], &RecordOutcome::Blocked);
    assert_eq!(outcomes["a4"], &RecordOutcome::Blocked);
    assert!(
        !bot.calls().contains(&"line:A3".to_owned()),
        "A3 did not run after A2 failed"
    );
    assert_eq!(bot.count("line:B2"), 1);
    // Without a dead-letter queue of its own, a poison message blocks its group on FIFO too.
    let records = [
        fifo_record("c1", "C", "poison".into()),
        fifo_record("c2", "C", envelope("C2", "Uc", 2)),
    ];
    let report = worker.process(&records, deadline_in(10_000)).await;
    assert_eq!(report.failed_message_ids(), ["c1", "c2"]);
}

/// SQS FIFO hands a group's following messages to the same receive; those reported failed behind
/// a failing head gain receive counts with it, and SQS's redrive (maxReceiveCount) would send them
/// to the dead-letter queue with it without their ever running. The worker isolates the head
/// itself: dead-lettered at its limit, acknowledged, and the rest of the group runs at once.
#[tokio::test]
async fn fifo_a_poison_head_is_isolated_and_the_healthy_records_behind_it_run() {
    let (store, bot) = (
        Arc::new(MemoryStore::new()),
        Arc::new(ScriptedBot::default()),
    );
    bot.script("line:A1", &[Script::Fail; 100]);
    let dead_letters = Arc::new(MemoryDeadLetters::new());
    let worker = worker(store, bot.clone()).with_dead_letters(dead_letters.clone());
    let max = worker.config().max_attempts;
    let mut receives = 0;
    // The queue redelivers the whole group until nothing of it is left (AWS's FIFO behaviour).
    let mut group = vec![
        ("a1", envelope("A1", "Ua", 1)),
        ("a2", envelope("A2", "Ua", 2)),
        ("a3", envelope("A3", "Ua", 3)),
    ];
    while !group.is_empty() {
        receives += 1;
        assert!(
            receives <= max,
            "the group must drain within the head's attempts"
        );
        let records: Vec<QueueRecord> = group
            .iter()
            .map(|(id, body)| QueueRecord {
                receive_count: receives,
                ..fifo_record(id, "A", body.clone())
            })
            .collect();
        let report = worker.process(&records, deadline_in(10_000)).await;
        let failed = report.failed_message_ids();
        group.retain(|(id, _)| failed.iter().any(|f| f == id));
    }
    let letters = dead_letters.letters();
    assert_eq!(
        letters
            .iter()
            .map(|(r, _)| r.message_id.as_str())
            .collect::<Vec<_>>(),
        ["a1"]
    );
    assert_eq!(bot.count("line:A2"), 1);
    assert_eq!(bot.count("line:A3"), 1);
    let order: Vec<String> = bot.calls().into_iter().filter(|k| k != "line:A1").collect();
    assert_eq!(
        order,
        ["line:A2", "line:A3"],
        "the rest of the group kept its order"
    );
    assert_eq!(
        receives, max,
        "the healthy records were received no more than the head"
    );
}

#[tokio::test]
async fn store_requests_two_for_a_new_event_one_for_a_duplicate() {
    let (store, _, worker) = setup();
    worker
        .process(
            &[record("m1", envelope("E1", "Ua", 1))],
            deadline_in(10_000),
        )
        .await;
    assert_eq!(store.requests(), 2, "claim and complete");
    worker
        .process(
            &[record("m2", envelope("E1", "Ua", 1))],
            deadline_in(10_000),
        )
        .await;
    assert_eq!(store.requests(), 3, "one refused claim");
}

#[tokio::test]
async fn a_store_failure_is_retried_within_the_invocation() {
    let (store, bot, worker) = setup();
    store.fail_next(2);
    let report = worker
        .process(
            &[record("m1", envelope("E1", "Ua", 1))],
            deadline_in(10_000),
        )
        .await;
    assert_eq!(report.outcomes[0].1, RecordOutcome::Handled);
    assert_eq!(bot.count("line:E1"), 1);
}

#[tokio::test]
async fn a_store_down_for_the_whole_budget_fails_the_record_without_running_the_handler() {
    let (store, bot, worker) = setup();
    store.fail_next(usize::MAX);
    let started = std::time::Instant::now();
    let report = worker
        .process(&[record("m1", envelope("E1", "Ua", 1))], deadline_in(2_000))
        .await;
    assert!(
        started.elapsed() < Duration::from_millis(2_000),
        "answered before the deadline"
    );
    assert_eq!(report.outcomes[0].1, RecordOutcome::Failed);
    assert_eq!(bot.count("line:E1"), 0);
    store.fail_next(0);
    let retry = worker
        .process(
            &[record("m1", envelope("E1", "Ua", 1))],
            deadline_in(10_000),
        )
        .await;
    assert_eq!(retry.outcomes[0].1, RecordOutcome::Handled);
}

#[tokio::test]
async fn nothing_starts_without_time_left() {
    let (store, _, worker) = setup();
    let report = worker
        .process(&[record("m1", envelope("E1", "Ua", 1))], deadline_in(0))
        .await;
    assert_eq!(report.outcomes[0].1, RecordOutcome::OutOfTime);
    assert_eq!(store.requests(), 0);
}

/// A store whose completions hang for `hang` and then fail (a throttled `COMPLETED` write behind
/// the SDK's own retries), while claims work.
struct ThrottledCompletions {
    inner: MemoryStore,
    hang: Duration,
    throttled: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl IdempotencyStore for ThrottledCompletions {
    async fn claim(
        &self,
        key: &str,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
        expires_at_ms: i64,
    ) -> Result<Claim, StoreError> {
        self.inner
            .claim(key, owner, now_ms, lease_until_ms, expires_at_ms)
            .await
    }
    async fn complete(&self, key: &str, expires_at_ms: i64) -> Result<(), StoreError> {
        if self.throttled.load(std::sync::atomic::Ordering::SeqCst) {
            tokio::time::sleep(self.hang).await;
            return Err(StoreError {
                operation: "complete",
                key: key.into(),
                reason: "ProvisionedThroughputExceededException".into(),
            });
        }
        self.inner.complete(key, expires_at_ms).await
    }
    async fn release(&self, key: &str, owner: &str, release: Release) -> Result<(), StoreError> {
        self.inner.release(key, owner, release).await
    }
}

/// Issue 13, defect 1: with the `COMPLETED` write throttled, `process` returned 1.4 s after the
/// invocation's deadline. Lambda stops an invocation there: no batch response, the whole batch
/// comes back after the visibility timeout, the claim has lapsed, and the handler runs again.
#[tokio::test]
async fn a_throttled_completion_neither_overruns_the_deadline_nor_runs_the_handler_again() {
    let store = Arc::new(ThrottledCompletions {
        inner: MemoryStore::new(),
        hang: Duration::from_millis(1_500),
        throttled: true.into(),
    });
    let bot = Arc::new(ScriptedBot::default());
    let first = worker(store.clone(), bot.clone());
    let deadline = deadline_in(3_000);
    let report = first
        .process(&[record("m1", envelope("E1", "Ua", 1))], deadline)
        .await;
    assert!(
        now_ms() < deadline,
        "returned {} ms after the deadline",
        now_ms() - deadline
    );
    assert_eq!(
        report.outcomes[0].1,
        RecordOutcome::Handled,
        "acknowledged: its effects happened"
    );
    assert_eq!(first.unrecorded_completions(), 1);
    // A duplicate in another sandbox, after this invocation: the claim's lease still holds it.
    let second = worker(store.clone(), bot.clone());
    let duplicate = second
        .process(&[record("m2", envelope("E1", "Ua", 1))], deadline_in(5_000))
        .await;
    assert_eq!(duplicate.outcomes[0].1, RecordOutcome::InProgressElsewhere);
    // The store recovers; this sandbox's next invocation writes the completion first.
    store
        .throttled
        .store(false, std::sync::atomic::Ordering::SeqCst);
    first.process(&[], deadline_in(5_000)).await;
    assert_eq!(first.unrecorded_completions(), 0);
    let later = second
        .process(&[record("m2", envelope("E1", "Ua", 1))], deadline_in(5_000))
        .await;
    assert_eq!(later.outcomes[0].1, RecordOutcome::Duplicate);
    assert_eq!(bot.count("line:E1"), 1, "the handler ran once");
}
