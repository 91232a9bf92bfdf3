//! Load under faults, over loopback: at least 100,000 unique LINE events through the local
//! pipeline (HTTP ingress, SQLite queue, worker, SQLite store), 10 % of them delivered two or
//! three times, all requests shuffled, while about 1 % of queue and store calls fail (half of
//! those after the work was done, as when a response is lost). A `503` is retried by the client
//! as the platforms do. Bounded: it stops by itself after five minutes at most.
//!
//! Reports events per second and answer times, and the counts that must hold: handler effects =
//! unique events, lost = 0. Exits non-zero when they do not.
//!
//! `cargo bench -p local --bench load` (figures in RELIABILITY.md); `-- --events N` for another size.

use async_trait::async_trait;
use shared::adapters::faulty::{FaultPlan, Faulty};
use shared::adapters::sqlite::{SqliteDb, SqliteQueue, SqliteStore};
use shared::bot::{Bot, BotError, BotEvent};
use shared::clients::Clients;
use shared::ingress::{Ingress, IngressConfig};
use shared::worker::{Worker, WorkerConfig};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "load-test-secret";
const LIMIT: Duration = Duration::from_secs(300);

/// Counts each event key's handler runs: the "effects".
#[derive(Default)]
struct CountingBot {
    effects: Mutex<HashMap<String, u32>>,
}

#[async_trait]
impl Bot for CountingBot {
    async fn handle(&self, event: &BotEvent, _clients: &Clients) -> Result<(), BotError> {
        *self
            .effects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(event.key.clone())
            .or_default() += 1;
        Ok(())
    }
}

fn event_json(i: usize) -> String {
    format!(
        r#"{{"type":"message","message":{{"type":"text","id":"{i}","text":"load {i}","quoteToken":"q"}},"webhookEventId":"01JLOAD{i:019}","deliveryContext":{{"isRedelivery":false}},"timestamp":{i},"source":{{"type":"user","userId":"U{:032}"}},"replyToken":"r{i}","mode":"active"}}"#,
        i % 997
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench");
    let unique: usize = args
        .iter()
        .position(|a| a == "--events")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(if full { 100_000 } else { 2_000 });

    // Requests of 1 to 5 events; 10 % of the events go out once or twice more, in other requests.
    let mut rng = fastrand::Rng::with_seed(7);
    let mut deliveries: Vec<usize> = (0..unique).collect();
    for i in 0..unique {
        if rng.f64() < 0.10 {
            deliveries.extend(std::iter::repeat_n(i, if rng.bool() { 1 } else { 2 }));
        }
    }
    rng.shuffle(&mut deliveries);
    let mut requests: Vec<(String, String)> = Vec::new();
    let mut at = 0;
    while at < deliveries.len() {
        let size = rng.usize(1..=5).min(deliveries.len() - at);
        let events: Vec<String> = deliveries[at..at + size]
            .iter()
            .map(|&i| event_json(i))
            .collect();
        at += size;
        let body = format!(
            r#"{{"destination":"Uf00000000000000000000000000000b0","events":[{}]}}"#,
            events.join(",")
        );
        let signature = shared::signature::sign_line(SECRET, body.as_bytes());
        requests.push((body, signature));
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let db = SqliteDb::open(&dir.path().join("load.db")).expect("db");
    let queue = SqliteQueue::new(db.clone(), 5);
    let plan = FaultPlan {
        rate: 0.01,
        after_share: 0.5,
    };
    let faulty_queue = Arc::new(Faulty::new(queue.clone(), plan, 11));
    let faulty_store = Arc::new(Faulty::new(SqliteStore::new(db), plan, 13));
    let bot = Arc::new(CountingBot::default());
    let config =
        IngressConfig::from_vars(|name| (name == "LINE_CHANNEL_SECRET").then(|| SECRET.to_owned()))
            .expect("config");
    let ingress = Arc::new(Ingress::new(config, faulty_queue.clone()));
    let worker_config = WorkerConfig::default();
    let worker = Arc::new(Worker::new(
        faulty_store.clone(),
        bot.clone(),
        Clients::default(),
        worker_config,
    ));
    // A short visibility timeout, so that failed messages come back within the run.
    let visibility = Duration::from_millis(1_500);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(local::run(
        format!("127.0.0.1:{port}").parse().expect("address"),
        ingress,
        4 * 1024 * 1024,
        Some((queue.clone(), worker, visibility)),
        "load test",
        async {
            let _ = stopped.await;
        },
    ));
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let started = Instant::now();
    let request_count = requests.len();
    let requests = Arc::new(Mutex::new(requests.into_iter()));
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/line");
    let mut senders = Vec::new();
    for _ in 0..16 {
        let (requests, client, url) = (Arc::clone(&requests), client.clone(), url.clone());
        senders.push(tokio::spawn(async move {
            let (mut latencies, mut retried) = (Vec::new(), 0usize);
            loop {
                let next = requests.lock().unwrap_or_else(|e| e.into_inner()).next();
                let Some((body, signature)) = next else { break };
                // As the platforms do: a 5xx is sent again.
                loop {
                    let sent = Instant::now();
                    let status = client
                        .post(&url)
                        .header("x-line-signature", &signature)
                        .body(body.clone())
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0);
                    latencies.push(sent.elapsed());
                    if status == 200 {
                        break;
                    }
                    retried += 1;
                    if started.elapsed() > LIMIT {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            (latencies, retried)
        }));
    }
    let (mut latencies, mut retried) = (Vec::new(), 0);
    for sender in senders {
        let (l, r) = sender.await.expect("sender");
        latencies.extend(l);
        retried += r;
    }
    let answered = started.elapsed();
    while queue.pending().await.expect("pending") > 0 && started.elapsed() < LIMIT {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drained = started.elapsed();
    let dead = queue.dead_letters().await.expect("dead letters").len();
    let _ = stop.send(());
    let _ = server.await;

    let effects = bot
        .effects
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let total_effects: u64 = effects.values().map(|&n| u64::from(n)).sum();
    let doubled = effects.values().filter(|&&n| n > 1).count();
    let lost = unique - effects.len();
    latencies.sort();
    println!(
        "load: {unique} unique events in {} deliveries ({request_count} requests, {retried} answered 5xx and sent again), \
         {} queue and {} store faults injected",
        deliveries.len(),
        faulty_queue.injected(),
        faulty_store.injected()
    );
    println!(
        "load: {:.0} unique events/s handled end to end ({:.1} s; all answered after {:.1} s); answer p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms",
        unique as f64 / drained.as_secs_f64(),
        drained.as_secs_f64(),
        answered.as_secs_f64(),
        percentile(&latencies, 0.50).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0
    );
    println!(
        "load: handler effects {total_effects} = unique events {unique}: {}; events handled twice {doubled}; lost {lost}; dead letters {dead}",
        if total_effects == unique as u64 {
            "yes"
        } else {
            "NO"
        }
    );
    if total_effects != unique as u64 || lost != 0 || dead != 0 {
        println!("0 passed, 1 failed");
        std::process::exit(1);
    }
    println!("1 passed, 0 failed");
}
