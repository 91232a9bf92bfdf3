//! End-to-end throughput of the local pipeline over loopback: signed LINE requests in, events
//! handled by the worker (example bot without tokens: it logs) out, on the SQLite adapters.
//! Prints events per second handled end to end and the answer times; asserts nothing.
//!
//! `cargo bench -p local --bench pipeline` (figures in BENCHMARKS.md).

use shared::adapters::sqlite::{SqliteDb, SqliteQueue};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn line_body(first: usize, events: usize) -> String {
    let events: Vec<String> = (first..first + events)
        .map(|i| {
            format!(
                r#"{{"type":"message","message":{{"type":"text","id":"{i}","text":"hello {i}","quoteToken":"q{i}"}},"webhookEventId":"01JBENCH{i:018}","deliveryContext":{{"isRedelivery":false}},"timestamp":{i},"source":{{"type":"user","userId":"U{:032}"}},"replyToken":"r{i}","mode":"active"}}"#,
                i % 64
            )
        })
        .collect();
    format!(
        r#"{{"destination":"Uf00000000000000000000000000000b0","events":[{}]}}"#,
        events.join(",")
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn run(requests: usize, events_per_request: usize, concurrency: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("bench.db");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let settings = local::Settings {
        destination: shared::destinations::DestinationConfig::Bot,
        listen: format!("127.0.0.1:{port}").parse().expect("address"),
        data: data.clone(),
        worker: true,
        visibility: Duration::from_secs(30),
        max_receives: 5,
        quiet: true,
        archive: false,
        fake_apis: false,
        tenants: None,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(local::serve(settings, async {
        let _ = stopped.await;
    }));
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let bodies: Vec<(String, String)> = (0..requests)
        .map(|r| {
            let body = line_body(r * events_per_request, events_per_request);
            let signature =
                shared::signature::sign_line(local::DEMO_LINE_CHANNEL_SECRET, body.as_bytes());
            (body, signature)
        })
        .collect();
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/line");
    let started = Instant::now();
    let latencies: Vec<Duration> =
        send_with_bounded_concurrency(bodies, concurrency, &client, &url).await;
    let answered = started.elapsed();
    let queue = SqliteQueue::new(SqliteDb::open(&data).expect("db"), 5);
    while queue.pending().await.expect("pending") > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let handled = started.elapsed();
    let _ = stop.send(());
    let _ = server.await;

    let mut sorted = latencies;
    sorted.sort();
    let events = requests * events_per_request;
    println!(
        "{events_per_request:>3} event(s)/request, {requests} requests, {concurrency} in flight: \
         {:.0} events/s handled end to end ({events} events in {:.2} s; all answered after {:.2} s); \
         answer p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        events as f64 / handled.as_secs_f64(),
        handled.as_secs_f64(),
        answered.as_secs_f64(),
        percentile(&sorted, 0.50).as_secs_f64() * 1000.0,
        percentile(&sorted, 0.99).as_secs_f64() * 1000.0,
        sorted.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
    );
}

/// Sends every body with at most `concurrency` in flight; returns each answer time.
async fn send_with_bounded_concurrency(
    bodies: Vec<(String, String)>,
    concurrency: usize,
    client: &reqwest::Client,
    url: &str,
) -> Vec<Duration> {
    let bodies = Arc::new(tokio::sync::Mutex::new(bodies.into_iter()));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let bodies = Arc::clone(&bodies);
        let client = client.clone();
        let url = url.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let next = bodies.lock().await.next();
                let Some((body, signature)) = next else { break };
                let started = Instant::now();
                let response = client
                    .post(&url)
                    .header("x-line-signature", signature)
                    .body(body)
                    .send()
                    .await
                    .expect("request");
                assert_eq!(response.status().as_u16(), 200);
                latencies.push(started.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("task"));
    }
    all
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: run small then.
    let full = std::env::args().any(|a| a == "--bench");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        if full {
            run(2_000, 1, 16).await;
            run(100, 100, 4).await;
        } else {
            run(20, 1, 4).await;
            run(2, 100, 2).await;
        }
    });
}
