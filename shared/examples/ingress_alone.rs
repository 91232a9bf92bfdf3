//! LINE requests of 10 to 250 events and the peer benchmark's Meta and WhatsApp bodies, each
//! arriving alone (2 ms apart, as webhook traffic does,
//! so the pool's threads are asleep and the caches cold), timed from the body to its messages:
//! verify, read, split, as the ingress runs them. Prints p50 and p90 of 400 LINE requests per
//! size and 100 of each Meta body.
//! It calibrates `shared::ingress::OVERLAP_MIN_BYTES`, the size from which the hash runs on a
//! pool thread beside the reading: a back-to-back loop finds the pool awake and flatters smaller
//! sizes.
//!
//! ```sh
//! python3 scripts/peers/make_bodies.py target/peers
//! cargo run --release -p shared --example ingress_alone -- target/peers
//! ```

use shared::ingress::{OVERLAP_MIN_BYTES, SplitOptions, line_body, meta_body, overlapped};
use shared::signature::{sign_line, verify_line, verify_meta};
use std::hint::black_box;
use std::time::{Duration, Instant};

mod peers;

fn main() {
    shared::heap::keep_freed_memory();
    let peers = peers::Peers::from_args();
    let (folder, secret, secrets) = (&peers.folder, peers.secret.as_str(), &peers.secrets);
    let hundred: serde_json::Value = serde_json::from_slice(
        &std::fs::read(folder.join("line_100_events.json")).expect("the 100-event body"),
    )
    .expect("json");
    println!("hash beside the reading from {OVERLAP_MIN_BYTES} bytes");
    // Past 100, the body's events again from the first (160 and 250 events: 136 and 212 KB,
    // over `OVERLAP_MIN_BYTES`).
    for events in [10, 30, 45, 60, 75, 100, 160, 250] {
        let body = serde_json::json!({
            "destination": hundred["destination"],
            "events": (0..events).map(|i| hundred["events"][i % 100].clone()).collect::<Vec<_>>(),
        })
        .to_string()
        .into_bytes();
        let signature = sign_line(secret, &body);
        let times = alone(400, Duration::from_millis(2), || {
            overlapped(
                body.len(),
                || verify_line(secrets, &body, Some(signature.as_bytes())),
                || {
                    let options = SplitOptions::for_body(&body, 1, 1 << 20);
                    let read = line_body(&body, &options, usize::MAX).expect("body");
                    read.messages.expect("all events")
                },
            )
            .expect("verified")
            .1
            .expect("messages")
        });
        report(&format!("LINE, {events} events"), body.len(), times);
    }
    for body in &peers.bodies {
        if body.line {
            continue;
        }
        let (bytes, signature) = (&body.bytes, &body.signature);
        let times = alone(100, Duration::from_millis(5), || {
            overlapped(
                bytes.len(),
                || verify_meta(secrets, bytes, Some(signature.as_bytes())),
                || {
                    let options = SplitOptions::for_body(bytes, 1, 1 << 20);
                    meta_body(bytes, &options).expect("envelope")
                },
            )
            .expect("verified")
            .1
            .expect("messages")
        });
        report(&body.name, bytes.len(), times);
    }
}

/// The time of each of `count` requests, each after a pause; its messages dropped untimed.
fn alone<T>(count: usize, pause: Duration, mut request: impl FnMut() -> T) -> Vec<Duration> {
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        std::thread::sleep(pause);
        let start = Instant::now();
        let messages = request();
        times.push(start.elapsed());
        black_box(messages);
    }
    times
}

fn report(name: &str, bytes: usize, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "{name}, {bytes} bytes: p50 {} us, p90 {} us",
        times[times.len() / 2].as_micros(),
        times[times.len() * 9 / 10].as_micros()
    );
}
