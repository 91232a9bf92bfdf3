//! Issue 15: the worker's logs and dead-letter reasons never quote a message's content. The
//! "unreadable" reason used to be serde's error, and serde quotes the value it could not read
//! (`invalid type: string "4111 1111 1111 1111", expected …`), so a card number sent as a chat
//! message reached CloudWatch and the dead-letter queue's attributes.

use serde_json::json;
use shared::adapters::memory::{MemoryDeadLetters, MemoryStore};
use shared::clients::Clients;
use shared::ports::QueueMessage;
use shared::worker::{QueueRecord, Worker, WorkerConfig};
use std::sync::Arc;

/// What must never appear: a card number, spread over every place content can hide.
const SECRET: &str = "4111 1111 1111 1111";

fn line_messages(events: serde_json::Value) -> Vec<QueueMessage> {
    let body =
        json!({"destination": "Uf00000000000000000000000000000b0", "events": events}).to_string();
    let callback = shared::line::Callback::parse(body.as_bytes()).expect("callback");
    let options = shared::ingress::SplitOptions::for_body(body.as_bytes(), 1, 1 << 20);
    shared::ingress::line_messages(&callback, &options)
        .expect("messages")
        .messages
}

fn meta_messages(messaging: serde_json::Value) -> Vec<QueueMessage> {
    let body = json!({"object": "page", "entry": [{"id": "106000000000001", "time": 1, "messaging": messaging}]})
        .to_string();
    let notification = shared::meta::Notification::parse(body.as_bytes()).expect("notification");
    let options = shared::ingress::SplitOptions::for_body(body.as_bytes(), 1, 1 << 20);
    shared::ingress::meta_messages(&notification, &options)
        .expect("messages")
        .messages
}

#[tokio::test(flavor = "current_thread")]
async fn unreadable_events_and_broken_messages_are_logged_without_their_content() {
    let (captured, _logs) = testkit::capture_json_logs();

    let mut bodies: Vec<String> = Vec::new();
    // Events the models cannot read as an event at all: the content in the place of the event.
    bodies.extend(
        line_messages(json!([SECRET, [SECRET], 4111]))
            .into_iter()
            .map(|m| m.body().to_string()),
    );
    bodies.extend(
        meta_messages(json!([SECRET, {"sender": {"id": 7}, "message": [SECRET]}]))
            .into_iter()
            .map(|m| m.body().to_string()),
    );
    // Queue messages that are not envelopes, with the content where serde quotes values.
    bodies.extend(
        [
            json!({"version": SECRET}),
            json!({"version": 1, "platform": SECRET, "key": "k", "conversation": "c", "received_at": 1, "event": {}}),
            json!({"version": 1, "platform": "line", "key": "k", "conversation": "c", "received_at": SECRET, "event": {}}),
            json!({"version": 1, "platform": "line", "key": "k", "conversation": "c", "received_at": 1, "line": {}, "stage": SECRET, "event": {}}),
        ]
        .iter()
        .map(|v| v.to_string()),
    );
    bodies.push(format!("{{\"version\": 1, \"key\": \"{SECRET}"));
    bodies.push(format!("not json {SECRET}"));

    let dead_letters = Arc::new(MemoryDeadLetters::new());
    let worker = Worker::new(
        Arc::new(MemoryStore::new()),
        Arc::new(shared::test_bot::GatewayTestBot),
        Clients::default(),
        WorkerConfig::default(),
    )
    .with_dead_letters(dead_letters.clone());
    let records: Vec<QueueRecord> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| QueueRecord::new(format!("q{i}"), body.clone()))
        .collect();
    let report = worker
        .process(&records, shared::clock::now_ms() + 5_000)
        .await;
    assert_eq!(report.outcomes.len(), records.len());

    let logs = captured.text();
    let letters = dead_letters.letters();
    assert!(
        letters.len() >= 6,
        "the broken messages are dead-lettered: {letters:?}"
    );
    assert!(
        logs.contains("event this version cannot read"),
        "the unreadable events are logged: {logs}"
    );
    for line in logs.lines() {
        // Each line's own timestamp may hold the digits by chance (`…39.824111Z`); the content
        // includes a bare 4111, so everything else is searched for them.
        let mut fields: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
        if let Some(fields) = fields.as_object_mut() {
            fields.remove("timestamp");
        }
        assert!(
            !fields.to_string().contains("4111"),
            "a log line quotes content: {line}"
        );
    }
    for (_, reason) in &letters {
        assert!(
            !reason.contains("4111"),
            "a dead-letter reason quotes content: {reason}"
        );
        assert!(
            reason.contains("line 1 column"),
            "the reason still says where: {reason}"
        );
    }
}
