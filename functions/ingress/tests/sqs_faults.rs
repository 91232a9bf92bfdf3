//! The ingress against SQS on moto through a fault-injecting loopback proxy: slow, throttling,
//! or reporting some batch entries failed. The ingress answers within its budget and never `200`
//! unless every event is queued.
//!
//! Needs moto (see `testkit::aws_endpoint`).

use ingress::apigw::{HttpEvent, HttpResponse};
use serde_json::Value;
use shared::adapters::sqs::{SqsQueue, SqsTuning};
use shared::envelope::Envelope;
use shared::ingress::{Ingress, IngressConfig};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::proxy::{Fault, FaultProxy};

fn ingress(endpoint: &str, queue_url: &str, tuning: SqsTuning, budget_ms: u64) -> Ingress {
    let config = IngressConfig::from_vars(|name| match name {
        "META_APP_SECRET" => Some("test-meta-app-secret".to_owned()),
        "ENQUEUE_BUDGET_MS" => Some(budget_ms.to_string()),
        _ => None,
    })
    .expect("config");
    let client = SqsQueue::client_for_sending(&testkit::sdk_config(endpoint), tuning);
    Ingress::new(
        config,
        Arc::new(SqsQueue::new(client, queue_url).batched(tuning)),
    )
}

/// A signed Meta request with `items` messages.
fn batch(items: usize) -> (HttpEvent, HashSet<String>) {
    let events: Vec<String> = (0..items)
        .map(|i| format!(r#"{{"sender":{{"id":"U{i}"}},"recipient":{{"id":"P"}},"timestamp":{i},"message":{{"mid":"m_fault_{i}","text":"t"}}}}"#))
        .collect();
    let body = format!(
        r#"{{"object":"page","entry":[{{"id":"P","time":1,"messaging":[{}]}}]}}"#,
        events.join(",")
    );
    let mut event = testkit::event_file("meta-messenger-message.json");
    event["headers"]["x-hub-signature-256"] = Value::String(shared::signature::sign_meta(
        "test-meta-app-secret",
        body.as_bytes(),
    ));
    event["body"] = Value::String(body);
    let keys = (0..items).map(|i| format!("meta:m_fault_{i}")).collect();
    (serde_json::from_value(event).expect("event"), keys)
}

async fn status(ingress: &Ingress, event: HttpEvent) -> i64 {
    match ingress::handle(ingress, event).await {
        HttpResponse::HttpApi(response) => response.status_code,
        other => panic!("{other:?}"),
    }
}

/// The distinct keys in the queue, and how many messages hold them.
async fn queued(client: &aws_sdk_sqs::Client, queue_url: &str) -> (HashSet<String>, usize) {
    let messages = testkit::drain_queue(client, queue_url).await;
    let keys = messages
        .iter()
        .map(|m| {
            Envelope::decode(m.body().unwrap_or_default())
                .expect("envelope")
                .key
        })
        .collect();
    (keys, messages.len())
}

/// Generous attempt timeouts for moto's speed, where the test is not about slowness.
const PATIENT: SqsTuning = SqsTuning {
    attempt_timeout: Duration::from_secs(20),
    max_parallel_calls: 4,
};

#[ignore = "needs moto: scripts/test.sh runs it; or set GATEWAY_TEST_AWS_ENDPOINT and pass --include-ignored"]
#[tokio::test]
async fn a_slow_queue_gets_503_within_the_budget() {
    let Some(endpoint) = testkit::aws_endpoint() else {
        return;
    };
    let client = testkit::sqs_client(&endpoint);
    let queue_url = testkit::create_queue(&client, false).await;
    let proxy = FaultProxy::start(&endpoint, Fault::Delay(Duration::from_secs(3))).await;
    let gateway = ingress(&proxy.url, &queue_url, SqsTuning::default(), 500);
    let started = Instant::now();
    assert_eq!(status(&gateway, batch(3).0).await, 503);
    assert!(
        started.elapsed() < Duration::from_millis(3_000),
        "{:?}",
        started.elapsed()
    );
}

#[ignore = "needs moto: scripts/test.sh runs it; or set GATEWAY_TEST_AWS_ENDPOINT and pass --include-ignored"]
#[tokio::test]
async fn throttling_is_retried_and_every_event_queued_before_200() {
    let Some(endpoint) = testkit::aws_endpoint() else {
        return;
    };
    let client = testkit::sqs_client(&endpoint);
    let queue_url = testkit::create_queue(&client, false).await;
    let proxy = FaultProxy::start(&endpoint, Fault::Throttle { every: 2 }).await;
    let gateway = ingress(&proxy.url, &queue_url, PATIENT, 30_000);
    let (event, keys) = batch(35);
    assert_eq!(status(&gateway, event).await, 200);
    assert!(proxy.faults() >= 1, "throttled at least once");
    let (queued_keys, _) = queued(&client, &queue_url).await;
    assert_eq!(queued_keys, keys, "every event is in the queue");
}

#[ignore = "needs moto: scripts/test.sh runs it; or set GATEWAY_TEST_AWS_ENDPOINT and pass --include-ignored"]
#[tokio::test]
async fn a_queue_that_always_throttles_never_gets_200() {
    let Some(endpoint) = testkit::aws_endpoint() else {
        return;
    };
    let client = testkit::sqs_client(&endpoint);
    let queue_url = testkit::create_queue(&client, false).await;
    let proxy = FaultProxy::start(&endpoint, Fault::Throttle { every: 1 }).await;
    let gateway = ingress(&proxy.url, &queue_url, SqsTuning::default(), 800);
    let started = Instant::now();
    assert_eq!(status(&gateway, batch(12).0).await, 503);
    assert!(
        started.elapsed() < Duration::from_millis(3_500),
        "{:?}",
        started.elapsed()
    );
    assert!(proxy.faults() >= 3, "it retried: {}", proxy.faults());
    assert_eq!(queued(&client, &queue_url).await.1, 0);
}

#[ignore = "needs moto: scripts/test.sh runs it; or set GATEWAY_TEST_AWS_ENDPOINT and pass --include-ignored"]
#[tokio::test]
async fn failed_batch_entries_are_retried_until_every_event_is_queued() {
    let Some(endpoint) = testkit::aws_endpoint() else {
        return;
    };
    let client = testkit::sqs_client(&endpoint);
    let queue_url = testkit::create_queue(&client, false).await;
    // Every other SendMessageBatch answer claims its first entry failed, although moto stored it.
    let proxy = FaultProxy::start(&endpoint, Fault::FailFirstEntry { every: 2 }).await;
    let gateway = ingress(&proxy.url, &queue_url, PATIENT, 30_000);
    let (event, keys) = batch(25);
    assert_eq!(status(&gateway, event).await, 200);
    assert!(proxy.faults() >= 1);
    let (queued_keys, messages) = queued(&client, &queue_url).await;
    assert_eq!(queued_keys, keys, "every event is in the queue");
    assert!(
        messages > 25,
        "the retried entries are duplicates, which the worker drops"
    );
}

#[ignore = "needs moto: scripts/test.sh runs it; or set GATEWAY_TEST_AWS_ENDPOINT and pass --include-ignored"]
#[tokio::test]
async fn entries_that_keep_failing_give_503_never_200() {
    let Some(endpoint) = testkit::aws_endpoint() else {
        return;
    };
    let client = testkit::sqs_client(&endpoint);
    let queue_url = testkit::create_queue(&client, false).await;
    let proxy = FaultProxy::start(&endpoint, Fault::FailFirstEntry { every: 1 }).await;
    let gateway = ingress(&proxy.url, &queue_url, PATIENT, 1_000);
    assert_eq!(status(&gateway, batch(4).0).await, 503);
}
