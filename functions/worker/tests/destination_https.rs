//! The HTTPS destination (Standard Webhooks) driven by the real worker against a local receiver:
//! what the receiver sees for each event, across retries, refusals and redeliveries.
//! The signature is also checked by an independent implementation (the `standardwebhooks`
//! Python library) in `scripts/destinations_test.py`.

use serde_json::{Value, json};
use shared::adapters::memory::{MemoryDeadLetters, MemoryStore};
use shared::clients::Clients;
use shared::destinations::webhook::{Signer, WebhookDestination};
use shared::settings::Reloading;
use shared::worker::{RecordOutcome, Worker, WorkerConfig};
use std::sync::Arc;
use std::time::Duration;
use testkit::{envelope_key, fifo_records, line_text_event, queued_line_events};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

struct Setup {
    worker: Worker,
    dead: Arc<MemoryDeadLetters>,
    receiver: MockServer,
}

async fn setup() -> Setup {
    testkit::capture_logs();
    let receiver = MockServer::start().await;
    let url = shared::destinations::webhook::endpoint_url(&format!("{}/hook", receiver.uri()))
        .expect("loopback http is allowed");
    let signer = Reloading::fixed(Signer::parse(SECRET).expect("secret"));
    let destination = WebhookDestination::new(url, Duration::from_secs(2), signer);
    let dead = Arc::new(MemoryDeadLetters::new());
    let worker = Worker::new(
        Arc::new(MemoryStore::new()),
        Arc::new(destination),
        Clients::default(),
        WorkerConfig::default(),
    )
    .with_dead_letters(dead.clone());
    Setup {
        worker,
        dead,
        receiver,
    }
}

fn now_ms() -> i64 {
    shared::clock::now_ms()
}

fn events(ids: &[&str]) -> Vec<String> {
    let events: Vec<Value> = ids
        .iter()
        .map(|id| line_text_event(id, json!({})))
        .collect();
    queued_line_events(&events)
}

fn header_of(request: &Request, name: &str) -> String {
    request
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Checks the Standard Webhooks headers of a request and returns its id and document.
fn verified(request: &Request) -> (String, Value) {
    let id = header_of(request, "webhook-id");
    let timestamp: i64 = header_of(request, "webhook-timestamp")
        .parse()
        .expect("webhook-timestamp is Unix seconds");
    assert!(
        (timestamp - now_ms() / 1000).abs() < 60,
        "the attempt's own time"
    );
    let expected = Signer::parse(SECRET)
        .expect("secret")
        .signature(&id, timestamp, &request.body);
    assert_eq!(header_of(request, "webhook-signature"), expected);
    assert_eq!(header_of(request, "content-type"), "application/json");
    let document: Value = serde_json::from_slice(&request.body).expect("a JSON document");
    assert_eq!(document["id"], id, "webhook-id is the document's id");
    (id, document)
}

#[tokio::test]
async fn each_event_arrives_signed_once_in_order_with_its_exact_json() {
    let s = setup().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&s.receiver)
        .await;
    let bodies = events(&["1", "2", "3"]);
    let report = s
        .worker
        .process(&fifo_records("conversation", &bodies), now_ms() + 20_000)
        .await;
    assert_eq!(report.count(&RecordOutcome::Handled), 3, "{report:?}");

    let requests = s.receiver.received_requests().await.unwrap_or_default();
    let texts: Vec<String> = requests
        .iter()
        .map(|r| {
            verified(r).1["event"]["message"]["text"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert_eq!(texts, ["hello 1", "hello 2", "hello 3"]);
    let (_, document) = verified(&requests[0]);
    assert_eq!(document["type"], "line.message.text");
    assert_eq!(document["line"]["destination"], testkit::DEMO_BOT);
    // The event's bytes as queued: the envelope's `event`, verbatim inside the document.
    let envelope: Value = serde_json::from_str(&bodies[0]).expect("envelope");
    let exact = serde_json::to_string(&envelope["event"]).expect("event");
    assert!(
        String::from_utf8_lossy(&requests[0].body).contains(&exact),
        "the event's JSON is carried byte for byte"
    );

    // A redelivery of a handled event is not sent again.
    let again = s
        .worker
        .process(
            &fifo_records("conversation", &bodies[..1]),
            now_ms() + 20_000,
        )
        .await;
    assert_eq!(again.count(&RecordOutcome::Duplicate), 1);
    assert_eq!(
        s.receiver
            .received_requests()
            .await
            .unwrap_or_default()
            .len(),
        3
    );
}

#[tokio::test]
async fn server_errors_and_throttling_are_retried_under_one_webhook_id() {
    let s = setup().await;
    let bodies = events(&["1"]);
    let key = envelope_key(&bodies[0]);
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&s.receiver)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&s.receiver)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(3)
        .mount(&s.receiver)
        .await;
    let started = std::time::Instant::now();
    let report = s
        .worker
        .process(&fifo_records("conversation", &bodies), now_ms() + 20_000)
        .await;
    assert_eq!(report.count(&RecordOutcome::Handled), 1, "{report:?}");
    let requests = s.receiver.received_requests().await.unwrap_or_default();
    assert_eq!(requests.len(), 3, "503, 429, then 200");
    let ids: Vec<String> = requests.iter().map(|r| verified(r).0).collect();
    assert!(
        ids.iter().all(|id| *id == key),
        "one webhook-id: the dedup key"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was honoured"
    );
    assert!(s.dead.letters().is_empty());
}

#[tokio::test]
async fn a_lasting_failure_holds_the_conversation_and_the_redelivery_keeps_the_id() {
    let s = setup().await;
    let failing = Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount_as_scoped(&s.receiver)
        .await;
    let bodies = events(&["1", "2"]);
    // A short invocation: the destination retries inside it, then gives the event back.
    let report = s
        .worker
        .process(&fifo_records("conversation", &bodies), now_ms() + 4_000)
        .await;
    assert_eq!(report.outcomes[0].1, RecordOutcome::Failed, "{report:?}");
    assert_eq!(
        report.outcomes[1].1,
        RecordOutcome::Blocked,
        "the next event waits for the previous one"
    );
    let first_attempts = s.receiver.received_requests().await.unwrap_or_default();
    assert!(first_attempts.len() >= 2, "retried inside the invocation");
    let first_id = verified(&first_attempts[0]).0;
    assert!(
        first_attempts.iter().all(|r| verified(r).0 == first_id),
        "only the first event was sent"
    );
    drop(failing);

    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&s.receiver)
        .await;
    let mut redelivered = fifo_records("conversation", &bodies);
    for record in &mut redelivered {
        record.receive_count = 2;
    }
    let report = s.worker.process(&redelivered, now_ms() + 20_000).await;
    assert_eq!(report.count(&RecordOutcome::Handled), 2, "{report:?}");
    let requests = s.receiver.received_requests().await.unwrap_or_default();
    let later: Vec<String> = requests[first_attempts.len()..]
        .iter()
        .map(|r| verified(r).0)
        .collect();
    assert_eq!(later.len(), 2);
    assert_eq!(later[0], first_id, "the redelivery has the same webhook-id");
    assert_ne!(later[1], first_id);
}

#[tokio::test]
async fn a_refusal_is_dead_lettered_at_once_with_its_status_and_frees_the_conversation() {
    let s = setup().await;
    let bodies = events(&["1", "2"]);
    let first_key = envelope_key(&bodies[0]);
    Mock::given(method("POST"))
        .and(header("webhook-id", first_key.as_str()))
        .respond_with(ResponseTemplate::new(422).set_body_string("bad text 4111 1111"))
        .mount(&s.receiver)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&s.receiver)
        .await;
    let report = s
        .worker
        .process(&fifo_records("conversation", &bodies), now_ms() + 20_000)
        .await;
    assert_eq!(
        report.outcomes[0].1,
        RecordOutcome::DeadLettered,
        "{report:?}"
    );
    assert_eq!(report.outcomes[1].1, RecordOutcome::Handled);
    let requests = s.receiver.received_requests().await.unwrap_or_default();
    assert_eq!(
        requests.len(),
        2,
        "the refused event was sent once, not retried"
    );
    let letters = s.dead.letters();
    assert_eq!(letters.len(), 1);
    let reason = &letters[0].1;
    assert!(reason.contains("422"), "{reason}");
    assert!(
        !reason.contains("4111"),
        "the receiver's answer is not quoted: {reason}"
    );
}

#[tokio::test]
async fn redirects_and_timeouts_are_not_followed_or_waited_for_past_the_deadline() {
    let s = setup().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(
            ResponseTemplate::new(307).insert_header("location", format!("{}/x", elsewhere.uri())),
        )
        .mount(&s.receiver)
        .await;
    let report = s
        .worker
        .process(
            &fifo_records("conversation", &events(&["1"])),
            now_ms() + 20_000,
        )
        .await;
    assert_eq!(report.outcomes[0].1, RecordOutcome::DeadLettered);
    assert!(
        elsewhere
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    );
    assert!(s.dead.letters()[0].1.contains("redirect"));

    // A receiver that never answers: attempts time out (2 s here) and the event is given back
    // before the invocation's deadline.
    let slow = setup().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .mount(&slow.receiver)
        .await;
    let started = std::time::Instant::now();
    let report = slow
        .worker
        .process(
            &fifo_records("conversation", &events(&["1"])),
            now_ms() + 5_000,
        )
        .await;
    assert_eq!(report.outcomes[0].1, RecordOutcome::Failed);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
