//! The ingress core as `ingress_throughput` times it (verify beside the reading, events on
//! every core), timed in batches of 20 requests: the least, first-quartile and median time a
//! request over 4 seconds per body. On a shared VM whose neighbours take its cores at moments,
//! the least batch moves far less than a count of operations per second, so two builds can be
//! compared in a noisy hour (run them alternately). `ONE_CORE=1` times the reading alone, without
//! the hash, on the calling thread's core (run it under `taskset -c 1`).
//!
//! `cargo run --release -p shared --example ingress_batches -- target/peers`

use shared::ingress::{SplitOptions, line_body, meta_body, overlapped};
use shared::signature::{verify_line, verify_meta};
use std::hint::black_box;
use std::time::{Duration, Instant};

mod peers;

const BATCH: u32 = 20;

fn main() {
    shared::heap::keep_freed_memory();
    let one_core = std::env::var_os("ONE_CORE").is_some();
    let peers = peers::Peers::from_args();
    let secrets = &peers.secrets;
    for body in &peers.bodies {
        let (name, bytes, line) = (&body.name, &body.bytes, body.line);
        let signature = body.signature.as_bytes();
        let read = || {
            let options = SplitOptions::for_body(bytes, 1, 1 << 20);
            if line {
                let body = line_body(bytes, &options, usize::MAX).expect("envelope");
                body.messages.expect("all events").expect("messages")
            } else {
                meta_body(bytes, &options)
                    .expect("envelope")
                    .expect("messages")
            }
        };
        let request = || {
            if one_core {
                black_box(read());
            } else {
                let verify = || {
                    if line {
                        verify_line(secrets, bytes, Some(signature))
                    } else {
                        verify_meta(secrets, bytes, Some(signature))
                    }
                };
                let (_, split) = overlapped(bytes.len(), verify, read).expect("verified");
                black_box(split);
            }
        };
        let mut batches = Vec::new();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(4) {
            let batch = Instant::now();
            for _ in 0..BATCH {
                request();
            }
            batches.push(batch.elapsed().as_secs_f64() * 1e6 / f64::from(BATCH));
        }
        batches.sort_by(f64::total_cmp);
        let at = |q: usize| batches[(batches.len() - 1) * q / 4];
        println!(
            "{name}: least {:.2} us, first quartile {:.2} us, median {:.2} us a request ({} batches of {BATCH})",
            at(0),
            at(1),
            at(2),
            batches.len()
        );
    }
}
