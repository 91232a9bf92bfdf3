//! The candidates for the ingress's hot path, side by side in one run, on the peer benchmark's
//! bodies (`scripts/peers/make_bodies.py`): HMAC-SHA256 from RustCrypto (what the gateway uses)
//! and from aws-lc-rs; full JSON validation by serde_json, sonic-rs and simd-json; a full
//! `serde_json::Value` parse (the old floor); and the gateway's own work (verify, read, every
//! envelope). BENCHMARKS.md ("Hot path") records the figures and what was kept.
//!
//! ```sh
//! python3 scripts/peers/make_bodies.py target/peers
//! cargo bench -p shared --features bench-readers --bench readers
//! ```

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use serde::de::IgnoredAny;
use sha2::Sha256;
use shared::ingress::{SplitOptions, line_body, meta_body, overlapped};
use shared::signature::{Secrets, verify_line, verify_meta};
use std::hint::black_box;
use std::path::PathBuf;

struct Body {
    name: String,
    line: bool,
    signature: String,
    bytes: Vec<u8>,
}

fn bodies() -> (String, Vec<Body>) {
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/peers");
    let manifest = std::fs::read(folder.join("manifest.json")).unwrap_or_else(|_| {
        panic!("no bodies: run `python3 scripts/peers/make_bodies.py target/peers` first")
    });
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).expect("manifest");
    let text = |value: &serde_json::Value| value.as_str().expect("a string").to_owned();
    let bodies = manifest["bodies"]
        .as_array()
        .expect("bodies")
        .iter()
        .map(|body| {
            let line = body["platform"] == "line";
            Body {
                name: text(&body["name"]),
                line,
                signature: text(
                    &body[if line {
                        "line_signature"
                    } else {
                        "meta_signature"
                    }],
                ),
                bytes: std::fs::read(folder.join(text(&body["file"]))).expect("body"),
            }
        })
        .collect();
    (text(&manifest["secret"]), bodies)
}

fn readers(c: &mut Criterion) {
    // The heap as the functions set it.
    shared::heap::keep_freed_memory();
    let (secret, bodies) = bodies();
    let secrets = Secrets::from_list(&secret).expect("secrets");
    for body in &bodies {
        let bytes = &body.bytes;
        let mut group = c.benchmark_group(&body.name);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function("hmac-sha256/rustcrypto", |b| {
            b.iter(|| {
                let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
                mac.update(bytes);
                black_box(mac.finalize())
            })
        });
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
        group.bench_function("hmac-sha256/aws-lc-rs", |b| {
            b.iter(|| black_box(aws_lc_rs::hmac::sign(&key, bytes)))
        });
        group.bench_function("validate/serde_json-ignored", |b| {
            b.iter(|| black_box(serde_json::from_slice::<IgnoredAny>(bytes).expect("json")))
        });
        group.bench_function("validate/sonic-rs-ignored", |b| {
            b.iter(|| black_box(sonic_rs::from_slice::<IgnoredAny>(bytes).expect("json")))
        });
        group.bench_function("validate/sonic-rs-value", |b| {
            b.iter(|| black_box(sonic_rs::from_slice::<sonic_rs::Value>(bytes).expect("json")))
        });
        // simd-json reads in place: the copy is part of its cost to the ingress, which must
        // keep the body's bytes as they came.
        group.bench_function("validate/simd-json-tape", |b| {
            b.iter(|| {
                let mut copy = bytes.clone();
                black_box(
                    simd_json::to_tape(&mut copy)
                        .map(|tape| tape.0.len())
                        .expect("json"),
                )
            })
        });
        group.bench_function("parse/serde_json-value", |b| {
            b.iter(|| black_box(serde_json::from_slice::<serde_json::Value>(bytes).expect("json")))
        });
        group.bench_function("gateway/verify-read-envelopes", |b| {
            let signature = Some(body.signature.as_bytes());
            let options = SplitOptions::for_body(bytes, 1, 1 << 20);
            b.iter(|| {
                // As the ingress does: the messages written beside the verification.
                if body.line {
                    let (_, split) = overlapped(
                        bytes.len(),
                        || verify_line(&secrets, bytes, signature),
                        || {
                            let read = line_body(bytes, &options, usize::MAX).expect("body");
                            read.messages.expect("all events")
                        },
                    )
                    .expect("verified");
                    black_box(split.expect("split"))
                } else {
                    let (_, split) = overlapped(
                        bytes.len(),
                        || verify_meta(&secrets, bytes, signature),
                        || meta_body(bytes, &options).expect("body"),
                    )
                    .expect("verified");
                    black_box(split.expect("split"))
                }
            })
        });
        group.finish();
    }
}

criterion_group!(benches, readers);
criterion_main!(benches);
