//! Worker throughput: events per second through `Worker::process` in batches of ten (the
//! template's SQS batch size), first as new events and then as duplicates, with each idempotency
//! store adapter; and the store requests each costs. The bot does nothing, so the figures are the
//! worker's and the store's own. Prints figures; asserts nothing.
//!
//! `cargo bench -p worker --bench worker_throughput` (figures in BENCHMARKS.md). The DynamoDB
//! adapter is measured when `GATEWAY_TEST_AWS_ENDPOINT` names a moto server
//! (`scripts/bench-lambda.py` starts one and runs this too).

use async_trait::async_trait;
use shared::adapters::dynamodb::DynamoDbStore;
use shared::adapters::memory::MemoryStore;
use shared::adapters::sqlite::{SqliteDb, SqliteStore};
use shared::bot::{Bot, BotError, BotEvent};
use shared::clients::Clients;
use shared::ports::{Claim, IdempotencyStore, Release, StoreError};
use shared::worker::{QueueRecord, RecordOutcome, Worker, WorkerConfig};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

const EVENTS: usize = 2000;
const BATCH: usize = 10;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Counts the requests the worker makes of its store.
struct Counting {
    inner: Arc<dyn IdempotencyStore>,
    requests: AtomicUsize,
}

#[async_trait]
impl IdempotencyStore for Counting {
    async fn claim(
        &self,
        key: &str,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
        expires_at_ms: i64,
    ) -> Result<Claim, StoreError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.inner
            .claim(key, owner, now_ms, lease_until_ms, expires_at_ms)
            .await
    }
    async fn complete(&self, key: &str, expires_at_ms: i64) -> Result<(), StoreError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.inner.complete(key, expires_at_ms).await
    }
    async fn release(&self, key: &str, owner: &str, release: Release) -> Result<(), StoreError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.inner.release(key, owner, release).await
    }
}

struct NoOpBot;

#[async_trait]
impl Bot for NoOpBot {
    async fn handle(&self, _event: &BotEvent, _clients: &Clients) -> Result<(), BotError> {
        Ok(())
    }
}

/// Queue records as the ingress writes them: one LINE text message each, 64 conversations.
fn records(run: &str) -> Vec<QueueRecord> {
    (0..EVENTS)
        .map(|i| {
            let event = format!(
                r#"{{"type":"message","message":{{"type":"text","id":"{i}","text":"hello {i}"}},"webhookEventId":"01JW{run}{i:012}","deliveryContext":{{"isRedelivery":false}},"timestamp":{i},"source":{{"type":"user","userId":"U{:032}"}},"replyToken":"r{i}","mode":"active"}}"#,
                i % 64
            );
            let body = format!(
                r#"{{"version":1,"platform":"line","key":"line:01JW{run}{i:012}","conversation":"line:U{:032}","timestamp":{i},"received_at":{},"line":{{"destination":"Ub"}},"event":{event}}}"#,
                i % 64,
                now_ms()
            );
            QueueRecord::new(format!("m{i}"), body)
        })
        .collect()
}

/// Runs every record through the worker in batches; events per second and store requests.
async fn pass(
    worker: &Worker,
    store: &Counting,
    records: &[QueueRecord],
    expected: RecordOutcome,
) -> (f64, f64) {
    let before = store.requests.load(Ordering::Relaxed);
    let started = Instant::now();
    for batch in records.chunks(BATCH) {
        let report = worker.process(batch, now_ms() + 30_000).await;
        let unexpected = report.outcomes.len() - report.count(&expected);
        if unexpected > 0 {
            eprintln!("warning: {unexpected} records did not end {expected:?}");
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let requests = store.requests.load(Ordering::Relaxed) - before;
    (
        records.len() as f64 / elapsed,
        requests as f64 / records.len() as f64,
    )
}

async fn measure(name: &str, store: Arc<dyn IdempotencyStore>, run: &str) {
    let counting = Arc::new(Counting {
        inner: store,
        requests: AtomicUsize::new(0),
    });
    let worker = Worker::new(
        Arc::clone(&counting) as Arc<dyn IdempotencyStore>,
        Arc::new(NoOpBot),
        Clients::from_vars(|_| None),
        WorkerConfig::default(),
    );
    let records = records(run);
    let (new_rate, new_requests) = pass(&worker, &counting, &records, RecordOutcome::Handled).await;
    let (dup_rate, dup_requests) =
        pass(&worker, &counting, &records, RecordOutcome::Duplicate).await;
    println!(
        "| {name} | {new_rate:.0} events/s | {new_requests:.2} | {dup_rate:.0} events/s | {dup_requests:.2} |"
    );
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    println!(
        "{EVENTS} events in batches of {BATCH}, worker concurrency {}, bot does nothing",
        WorkerConfig::default().concurrency
    );
    println!(
        "| store | new events | store requests per new event | duplicates | store requests per duplicate |"
    );
    println!("| --- | ---: | ---: | ---: | ---: |");
    let run = format!("{:08}", now_ms() % 100_000_000);
    measure("memory", Arc::new(MemoryStore::new()), &run).await;

    let dir = tempfile::tempdir().expect("temporary directory");
    let db = SqliteDb::open(&dir.path().join("bench.db")).expect("SQLite database");
    measure(
        "SQLite (embedded, synced writes)",
        Arc::new(SqliteStore::new(db)),
        &run,
    )
    .await;

    // Read directly: `testkit::aws_endpoint` would turn the worker's logs on.
    match std::env::var("GATEWAY_TEST_AWS_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
    {
        Some(endpoint) => {
            let client = testkit::dynamodb_client(&endpoint);
            let table = testkit::create_idempotency_table(&client).await;
            measure(
                "DynamoDB on moto",
                Arc::new(DynamoDbStore::new(client, table)),
                &run,
            )
            .await;
        }
        None => println!(
            "| DynamoDB on moto | not measured: GATEWAY_TEST_AWS_ENDPOINT is not set | | | |"
        ),
    }
}
