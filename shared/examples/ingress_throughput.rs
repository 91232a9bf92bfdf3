//! The ingress core (verify + split + envelopes, as the ingress runs them: verification beside
//! reading on a large body, events on every core) and the floor on the bodies of
//! `scripts/peers/make_bodies.py`, timed the same way as the peer SDK harnesses beside it: a
//! warm-up, then the best of ROUNDS counts of operations per second over a fixed time. One JSON
//! line per body. Run by `scripts/bench-peers.sh`; `ingress_throughput FOLDER SECONDS ROUNDS`.
//!
//! The floor is what any exact ingress must spend on one core: the fastest HMAC-SHA256 plus the
//! fastest full JSON validation available here, each timed alone (with the `bench-readers`
//! feature: RustCrypto and aws-lc-rs HMAC; serde_json, sonic-rs and simd-json validation; without
//! it, RustCrypto and serde_json only).

use hmac::{Hmac, Mac};
use serde::de::IgnoredAny;
use sha2::Sha256;
use shared::ingress::{SplitOptions, line_body, meta_body, overlapped};
use shared::signature::{verify_line, verify_meta};
use std::hint::black_box;
use std::time::{Duration, Instant};

mod peers;

/// Operations per second: a warm-up, then the best of `rounds` counts over `seconds` each (the
/// peer harnesses count the same way), so that a busy moment on a shared machine falls on no
/// side alone.
fn ops_per_second(seconds: f64, rounds: usize, mut operation: impl FnMut()) -> f64 {
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_secs_f64(seconds / 4.0) {
        operation();
    }
    let mut best: f64 = 0.0;
    for _ in 0..rounds.max(1) {
        let (start, mut count) = (Instant::now(), 0u64);
        while start.elapsed() < Duration::from_secs_f64(seconds) {
            operation();
            count += 1;
        }
        best = best.max(count as f64 / start.elapsed().as_secs_f64());
    }
    best
}

fn main() {
    // The heap as the functions set it.
    shared::heap::keep_freed_memory();
    let args: Vec<String> = std::env::args().collect();
    let folder = std::path::PathBuf::from(args.get(1).map_or("target/peers", String::as_str));
    let seconds: f64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let rounds: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
    let peers = peers::Peers::read(folder);
    let (secret, secrets) = (&peers.secret, &peers.secrets);
    for body in &peers.bodies {
        let (name, bytes) = (&body.name, &body.bytes);
        let seconds_each = seconds / 2.0;
        let time =
            |operation: &mut dyn FnMut()| 1.0 / ops_per_second(seconds_each, rounds, operation);
        #[cfg_attr(not(feature = "bench-readers"), allow(unused_mut))]
        let mut hmac = vec![time(&mut || {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
            mac.update(bytes);
            black_box(mac.finalize());
        })];
        #[cfg_attr(not(feature = "bench-readers"), allow(unused_mut))]
        let mut validation = vec![time(&mut || {
            black_box(serde_json::from_slice::<IgnoredAny>(bytes).expect("json"));
        })];
        #[cfg(feature = "bench-readers")]
        {
            let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
            hmac.push(time(&mut || {
                black_box(aws_lc_rs::hmac::sign(&key, bytes));
            }));
            validation.push(time(&mut || {
                black_box(sonic_rs::from_slice::<IgnoredAny>(bytes).expect("json"));
            }));
            validation.push(time(&mut || {
                black_box(sonic_rs::from_slice::<sonic_rs::Value>(bytes).expect("json"));
            }));
            validation.push(time(&mut || {
                let mut copy = bytes.clone();
                black_box(
                    simd_json::to_tape(&mut copy)
                        .map(|t| t.0.len())
                        .expect("json"),
                );
            }));
        }
        let fastest = |times: &[f64]| times.iter().copied().fold(f64::INFINITY, f64::min);
        let floor = 1.0 / (fastest(&hmac) + fastest(&validation));
        let signature = body.signature.as_bytes();
        let gateway = if body.line {
            ops_per_second(seconds, rounds, || {
                // As the ingress does: the messages written beside the verification.
                let (_, split) = overlapped(
                    bytes.len(),
                    || verify_line(secrets, bytes, Some(signature)),
                    || {
                        let options = SplitOptions::for_body(bytes, 1, 1 << 20);
                        let body = line_body(bytes, &options, usize::MAX).expect("envelope");
                        body.messages.expect("all events")
                    },
                )
                .expect("verified");
                black_box(split.expect("messages"));
            })
        } else {
            ops_per_second(seconds, rounds, || {
                let (_, split) = overlapped(
                    bytes.len(),
                    || verify_meta(secrets, bytes, Some(signature)),
                    || {
                        let options = SplitOptions::for_body(bytes, 1, 1 << 20);
                        meta_body(bytes, &options).expect("envelope")
                    },
                )
                .expect("verified");
                black_box(split.expect("messages"));
            })
        };
        println!(
            "{}",
            serde_json::json!({"name": name, "bytes": bytes.len(), "gateway_ops_per_s": gateway, "floor_ops_per_s": floor})
        );
    }
}
