//! Where the ingress core's time goes, phase by phase, on the bodies of
//! `scripts/peers/make_bodies.py` (run `scripts/bench-peers.sh` once to write them to
//! `target/peers`): HMAC, JSON validation alone, a full `Value` parse, reading the envelope,
//! reading each item's head, and the whole split. Mean microseconds per operation; a profiling
//! aid for the hot path (issue 20), not a benchmark of record.
//!
//! `cargo run --release -p shared --example phase_costs`

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::hint::black_box;
use std::time::Instant;
fn time(label: &str, n: u32, mut f: impl FnMut()) {
    for _ in 0..3 {
        f();
    }
    let s = Instant::now();
    for _ in 0..n {
        f();
    }
    println!(
        "{label}: {:.1} us",
        s.elapsed().as_secs_f64() * 1e6 / n as f64
    );
}
fn main() {
    shared::heap::keep_freed_memory();
    for (name, n) in [
        ("line_1_event", 20000),
        ("line_100_events", 500),
        ("meta_1000_items", 200),
        ("whatsapp_3mb", 20),
    ] {
        let bytes = std::fs::read(format!("target/peers/{name}.json"))
            .expect("target/peers: run scripts/bench-peers.sh once");
        println!("== {name}");
        time("hmac", n, || {
            let mut m = Hmac::<Sha256>::new_from_slice(b"bench-secret").unwrap();
            m.update(&bytes);
            black_box(m.finalize());
        });
        time("serde ignored", n, || {
            black_box(serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).unwrap());
        });
        time("serde value", n, || {
            black_box(serde_json::from_slice::<serde_json::Value>(&bytes).unwrap());
        });
        if name.starts_with("line") {
            time("callback parse", n, || {
                black_box(shared::line::Callback::parse(&bytes).unwrap());
            });
            let cb = shared::line::Callback::parse(&bytes).unwrap();
            time("split", n, || {
                black_box(
                    shared::ingress::line_messages(
                        &cb,
                        &shared::ingress::SplitOptions::for_body(&bytes, 1, 1 << 20),
                    )
                    .unwrap(),
                );
            });
        } else {
            time("notification parse", n, || {
                black_box(shared::meta::Notification::parse(&bytes).unwrap());
            });
            let nt = shared::meta::Notification::parse(&bytes).unwrap();
            time("items validated alone", n, || {
                for i in nt.items() {
                    black_box(
                        serde_json::from_str::<serde::de::IgnoredAny>(i.raw.get()).expect("json"),
                    );
                }
            });
            time("heads", n, || {
                for i in nt.items() {
                    black_box(i.head());
                }
            });
            time("split", n, || {
                black_box(
                    shared::ingress::meta_messages(
                        &nt,
                        &shared::ingress::SplitOptions::for_body(&bytes, 1, 1 << 20),
                    )
                    .unwrap(),
                );
            });
        }
    }
}
