//! The ingress's own work per request, without the network: verify the signature, split the
//! body, build every envelope. Beside it the floor: HMAC-SHA256 over the same bytes plus one
//! full `serde_json` validation of them (no values built; `benches/readers.rs` compares the
//! other validators, none faster on every body).
//!
//! `cargo bench -p shared --bench ingress_core` (figures in BENCHMARKS.md).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use shared::ingress::{SplitOptions, line_messages, meta_messages};
use shared::line::Callback;
use shared::meta::Notification;
use shared::signature::{Secrets, sign_line, sign_meta, verify_line, verify_meta};
use std::hint::black_box;

const SECRET: &str = "bench-secret";
const QUEUE_LIMIT: usize = 1 << 20;

fn line_event(i: usize) -> String {
    format!(
        r#"{{"type":"message","message":{{"type":"text","id":"5600000000000{i:05}","quoteToken":"q3Plxr4AgKd-QpHVwCmA6ut7MqBmxl0ZgYxLSr5cFy0mQ3eGm2bHdEUQ-bench{i}","markAsReadToken":"30yhdy232-bench{i}","text":"Hello, this is message {i} with some text \u00e4\u00f6\u00e5 \ud83e\udd28 https:\/\/example.com\/path, long enough to bring a one-event request to about one kilobyte, as a typical LINE text message request with a mention, quote and read tokens is. @Bot","mention":{{"mentionees":[{{"index":190,"length":4,"type":"user","userId":"Uf00000000000000000000000000000b0","isSelf":true}}]}}}},"webhookEventId":"01JDEMO{i:019}","deliveryContext":{{"isRedelivery":false}},"timestamp":1763715600{i:03},"source":{{"type":"group","groupId":"Ca56f94637c00000000000000000000gg","userId":"U4af4980629000000000000000000c{i:03}"}},"replyToken":"b60d432864f44d079f6d8efe86cf404b{i}","mode":"active"}}"#
    )
}

fn line_body(events: usize) -> Vec<u8> {
    let events: Vec<String> = (0..events).map(line_event).collect();
    format!(
        r#"{{"destination":"Uf00000000000000000000000000000b0","events":[{}]}}"#,
        events.join(",")
    )
    .into_bytes()
}

fn meta_body(items: usize) -> Vec<u8> {
    let items: Vec<String> = (0..items)
        .map(|i| match i % 4 {
            3 => format!(
                r#"{{"sender":{{"id":"24600000000{:05}"}},"recipient":{{"id":"106000000000001"}},"timestamp":1763715600{i:03},"read":{{"watermark":1763715600000}}}}"#,
                i % 97
            ),
            _ => format!(
                r#"{{"sender":{{"id":"24600000000{:05}"}},"recipient":{{"id":"106000000000001"}},"timestamp":1763715600{i:03},"message":{{"mid":"m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwl{i}","text":"hello \u00e4\u00f6\u00e5 number {i}"}}}}"#,
                i % 97
            ),
        })
        .collect();
    format!(
        r#"{{"object":"page","entry":[{{"id":"106000000000001","time":1763715600000,"messaging":[{}]}}]}}"#,
        items.join(",")
    )
    .into_bytes()
}

/// The floor: what any verifying gateway must do at least.
fn floor(body: &[u8]) -> usize {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    serde_json::from_slice::<serde::de::IgnoredAny>(body).expect("json");
    tag.len()
}

fn line_core(secrets: &Secrets, body: &[u8], signature: &str) -> usize {
    verify_line(secrets, body, Some(signature.as_bytes())).expect("verified");
    let callback = Callback::parse(body).expect("envelope");
    line_messages(&callback, &SplitOptions::for_body(body, 1, QUEUE_LIMIT))
        .expect("messages")
        .messages
        .len()
}

fn meta_core(secrets: &Secrets, body: &[u8], signature: &str) -> usize {
    verify_meta(secrets, body, Some(signature.as_bytes())).expect("verified");
    let notification = Notification::parse(body).expect("envelope");
    meta_messages(&notification, &SplitOptions::for_body(body, 1, QUEUE_LIMIT))
        .expect("messages")
        .messages
        .len()
}

fn ingress_core(c: &mut Criterion) {
    // The heap as the functions set it.
    shared::heap::keep_freed_memory();
    let secrets = Secrets::from_list(SECRET).expect("secret");
    let mut group = c.benchmark_group("ingress_core");
    let cases = [
        ("line_1_event", line_body(1), false),
        ("line_100_events", line_body(100), false),
        ("meta_1000_items", meta_body(1000), true),
    ];
    for (name, body, is_meta) in &cases {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::new("floor", name), body, |b, body| {
            b.iter(|| floor(black_box(body)))
        });
        if *is_meta {
            let signature = sign_meta(SECRET, body);
            group.bench_with_input(BenchmarkId::new("gateway", name), body, |b, body| {
                b.iter(|| meta_core(&secrets, black_box(body), &signature))
            });
        } else {
            let signature = sign_line(SECRET, body);
            group.bench_with_input(BenchmarkId::new("gateway", name), body, |b, body| {
                b.iter(|| line_core(&secrets, black_box(body), &signature))
            });
        }
        eprintln!("{name}: {} bytes", body.len());
    }
    group.finish();
}

criterion_group!(benches, ingress_core);
criterion_main!(benches);
