//! The ingress Lambda handler driven by the sample events in `events/`, against SQS served by
//! moto: the queue holds exactly one message per event, in the envelope, and nothing for a
//! refused request; a queue that is down or hangs gives `503` within the budget.
//!
//! Needs moto (see `testkit::aws_endpoint`).

use aws_sdk_sqs::types::MessageSystemAttributeName;
use ingress::apigw::{HttpEvent, HttpResponse};
use serde_json::Value;
use shared::adapters::sqs::{SqsQueue, SqsTuning};
use shared::envelope::Envelope;
use shared::ingress::{Ingress, IngressConfig};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// moto serves about 20 calls a second, whatever the parallelism: the correctness tests give it
/// time; the fault tests use production timeouts against servers that fail.
const MOTO: SqsTuning = SqsTuning {
    attempt_timeout: Duration::from_secs(20),
    max_parallel_calls: 4,
};

/// The client the ingress uses in production (one attempt per call), tuned.
fn ingress_client(endpoint: &str, tuning: SqsTuning) -> aws_sdk_sqs::Client {
    SqsQueue::client_for_sending(&testkit::sdk_config(endpoint), tuning)
}

fn config(budget_ms: u64) -> IngressConfig {
    IngressConfig::from_vars(|name| {
        Some(match name {
            "LINE_CHANNEL_SECRET" => "test-line-channel-secret".to_owned(),
            "META_APP_SECRET" => "test-meta-app-secret".to_owned(),
            "META_VERIFY_TOKEN" => "test-meta-verify-token".to_owned(),
            "ENQUEUE_BUDGET_MS" => budget_ms.to_string(),
            _ => return None,
        })
    })
    .expect("config")
}

fn ingress_for(endpoint: &str, tuning: SqsTuning, queue_url: &str, budget_ms: u64) -> Ingress {
    let queue = SqsQueue::new(ingress_client(endpoint, tuning), queue_url).batched(tuning);
    Ingress::new(config(budget_ms), Arc::new(queue))
}

async fn invoke(ingress: &Ingress, event: Value) -> (i64, String) {
    let event: HttpEvent = serde_json::from_value(event).expect("http event");
    match ingress::handle(ingress, event).await {
        HttpResponse::HttpApi(response) => {
            let body = match response.body {
                Some(lambda_http::aws_lambda_events::encodings::Body::Text(text)) => text,
                other => format!("{other:?}"),
            };
            (response.status_code, body)
        }
        other => panic!("an HTTP API event must get an HTTP API response: {other:?}"),
    }
}

/// The raw event JSON items of a sample event's body, as the platform sent them.
fn sent_events(event: &Value) -> Vec<Value> {
    let body = event["body"].as_str().unwrap_or_default();
    let body = if event["isBase64Encoded"] == true {
        use base64::Engine as _;
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .expect("base64"),
        )
        .expect("utf-8")
    } else {
        body.to_owned()
    };
    let body: Value = serde_json::from_str(&body).expect("body json");
    if let Some(events) = body["events"].as_array() {
        return events.clone();
    }
    let mut items = Vec::new();
    for entry in body["entry"].as_array().into_iter().flatten() {
        for list in ["messaging", "standby", "changes"] {
            items.extend(entry[list].as_array().into_iter().flatten().cloned());
        }
    }
    items
}

#[ignore = "needs moto: scripts/test.sh runs it; or set GATEWAY_TEST_AWS_ENDPOINT and pass --include-ignored"]
#[tokio::test]
async fn every_sample_event_gets_its_answer_and_exactly_its_messages() {
    let Some(endpoint) = testkit::aws_endpoint() else {
        return;
    };
    let client = testkit::sqs_client(&endpoint);
    // (file, status, messages expected in the queue)
    let expectations: [(&str, i64, usize); 20] = [
        ("line-text-message.json", 200, 1),
        ("line-text-message-base64.json", 200, 1),
        ("line-follow.json", 200, 1),
        ("line-unsend.json", 200, 1),
        ("line-group-mention.json", 200, 1),
        ("line-several-events.json", 200, 4),
        ("line-redelivered.json", 200, 1),
        ("line-verify-empty.json", 200, 0),
        ("line-wrong-signature.json", 401, 0),
        ("meta-verify-accepted.json", 200, 0),
        ("meta-verify-refused.json", 403, 0),
        ("meta-messenger-message.json", 200, 1),
        ("meta-instagram-message.json", 200, 1),
        ("meta-whatsapp-message.json", 200, 1),
        ("meta-whatsapp-image.json", 200, 1),
        ("meta-whatsapp-interactive-reply.json", 200, 1),
        ("meta-whatsapp-status-read.json", 200, 1),
        ("meta-whatsapp-status-failed.json", 200, 1),
        ("meta-whatsapp-revoke.json", 200, 1),
        ("meta-batch.json", 200, 6),
    ];
    let files = testkit::event_files("line-").len() + testkit::event_files("meta-").len();
    assert_eq!(
        files,
        expectations.len(),
        "every ingress sample event has an expectation here"
    );

    for (file, status, count) in expectations {
        let queue_url = testkit::create_queue(&client, false).await;
        let ingress = ingress_for(&endpoint, MOTO, &queue_url, 30_000);
        let event = testkit::event_file(file);
        let (got_status, body) = invoke(&ingress, event.clone()).await;
        assert_eq!(got_status, status, "{file}: {body}");
        if file == "meta-verify-accepted.json" {
            assert_eq!(body, "1158201444");
        }
        let messages = testkit::drain_queue(&client, &queue_url).await;
        assert_eq!(messages.len(), count, "{file}");
        if count == 0 {
            continue;
        }
        // Exactly the events that were sent, each once, byte for byte.
        let mut got: Vec<(Value, String)> = messages
            .iter()
            .map(|m| {
                let envelope = Envelope::decode(m.body().expect("body")).expect("envelope");
                let platform = m.message_attributes().expect("attributes")["platform"]
                    .string_value()
                    .expect("platform attribute")
                    .to_owned();
                assert_eq!(platform, envelope.platform.as_str(), "{file}");
                let raw: Value = serde_json::from_str(envelope.event.get()).expect("event json");
                (raw, envelope.key)
            })
            .collect();
        let sent = sent_events(&event);
        assert_eq!(sent.len(), count, "{file}");
        for item in sent {
            let position = got.iter().position(|(raw, _)| *raw == item);
            assert!(position.is_some(), "{file}: {item} not in the queue");
            if let Some(position) = position {
                got.remove(position);
            }
        }
    }
}

#[ignore = "needs moto: scripts/test.sh runs it; or set GATEWAY_TEST_AWS_ENDPOINT and pass --include-ignored"]
#[tokio::test]
async fn raw_event_bytes_survive_the_queue() {
    let Some(endpoint) = testkit::aws_endpoint() else {
        return;
    };
    let client = testkit::sqs_client(&endpoint);
    let queue_url = testkit::create_queue(&client, false).await;
    let ingress = ingress_for(&endpoint, MOTO, &queue_url, 30_000);
    let event = testkit::event_file("meta-messenger-message.json");
    let body = event["body"].as_str().expect("body").to_owned();
    assert!(
        body.contains("\\u00e4") && body.contains("\\/"),
        "the sample keeps Meta's escapes"
    );
    assert_eq!(invoke(&ingress, event).await.0, 200);
    let messages = testkit::drain_queue(&client, &queue_url).await;
    let envelope = Envelope::decode(messages[0].body().expect("body")).expect("envelope");
    assert!(
        body.contains(envelope.event.get()),
        "the event's exact bytes, escapes and all"
    );
}

#[ignore = "needs moto: scripts/test.sh runs it; or set GATEWAY_TEST_AWS_ENDPOINT and pass --include-ignored"]
#[tokio::test]
async fn fifo_queues_get_the_conversation_as_group_and_the_key_as_deduplication_id() {
    let Some(endpoint) = testkit::aws_endpoint() else {
        return;
    };
    let client = testkit::sqs_client(&endpoint);
    let queue_url = testkit::create_queue(&client, true).await;
    let ingress = ingress_for(&endpoint, MOTO, &queue_url, 30_000);
    assert_eq!(
        invoke(&ingress, testkit::event_file("meta-batch.json"))
            .await
            .0,
        200
    );
    // The same request again (a Meta retry): FIFO deduplication keeps one copy of each.
    assert_eq!(
        invoke(&ingress, testkit::event_file("meta-batch.json"))
            .await
            .0,
        200
    );
    let messages = testkit::drain_queue(&client, &queue_url).await;
    assert_eq!(messages.len(), 6);
    let mut groups: HashMap<String, usize> = HashMap::new();
    for message in &messages {
        let envelope = Envelope::decode(message.body().expect("body")).expect("envelope");
        let attributes = message.attributes().expect("system attributes");
        assert_eq!(
            attributes[&MessageSystemAttributeName::MessageGroupId],
            envelope.conversation
        );
        assert_eq!(
            attributes[&MessageSystemAttributeName::MessageDeduplicationId],
            envelope.key
        );
        *groups.entry(envelope.conversation).or_default() += 1;
    }
    assert_eq!(groups["meta:106000000000001:2460000000000001"], 3);
}

#[ignore = "needs moto: scripts/test.sh runs it; or set GATEWAY_TEST_AWS_ENDPOINT and pass --include-ignored"]
#[tokio::test]
async fn a_large_batch_is_packed_by_size_and_queued_whole() {
    // 120 items of about 30 KB: SendMessageBatch calls are cut by the 256 KiB total (8 entries),
    // not by the 10-entry limit. moto does not enforce the size limits (the unit tests of
    // `pack_batches` prove them); this shows that the size-packed calls deliver every event.
    // moto serves about 20 calls a second, so the 1000-item case is split-tested in shared and
    // timed by the benchmarks.
    let Some(endpoint) = testkit::aws_endpoint() else {
        return;
    };
    let client = testkit::sqs_client(&endpoint);
    let queue_url = testkit::create_queue(&client, false).await;
    let ingress = ingress_for(&endpoint, MOTO, &queue_url, 60_000);
    let items: Vec<String> = (0..120)
        .map(|i| {
            format!(
                r#"{{"sender":{{"id":"U{}"}},"recipient":{{"id":"P"}},"timestamp":{i},"message":{{"mid":"m_{i}","text":"{}"}}}}"#,
                i % 37,
                "x".repeat(30_000)
            )
        })
        .collect();
    let body = format!(
        r#"{{"object":"page","entry":[{{"id":"P","time":1,"messaging":[{}]}}]}}"#,
        items.join(",")
    );
    let mut event = testkit::event_file("meta-messenger-message.json");
    event["headers"]["x-hub-signature-256"] = Value::String(shared::signature::sign_meta(
        "test-meta-app-secret",
        body.as_bytes(),
    ));
    event["body"] = Value::String(body);
    assert_eq!(invoke(&ingress, event).await.0, 200);
    let messages = testkit::drain_queue(&client, &queue_url).await;
    assert_eq!(messages.len(), 120);
    let mut keys: Vec<String> = messages
        .iter()
        .map(|m| {
            Envelope::decode(m.body().expect("body"))
                .expect("envelope")
                .key
        })
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 120);
}

#[ignore = "needs moto: scripts/test.sh runs it; or set GATEWAY_TEST_AWS_ENDPOINT and pass --include-ignored"]
#[tokio::test]
async fn a_queue_that_is_down_gives_503_within_the_budget() {
    if testkit::aws_endpoint().is_none() {
        return;
    }
    // A port nobody listens on: connections are refused at once, and retried until the budget.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let down = format!("http://127.0.0.1:{port}");
    let ingress = ingress_for(
        &down,
        SqsTuning::default(),
        &format!("{down}/123456789012/q"),
        400,
    );
    let started = Instant::now();
    let (status, _) = invoke(&ingress, testkit::event_file("line-text-message.json")).await;
    assert_eq!(status, 503);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(100),
        "it retried: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(3),
        "answered near its 400 ms budget: {elapsed:?}"
    );
}

#[ignore = "needs moto: scripts/test.sh runs it; or set GATEWAY_TEST_AWS_ENDPOINT and pass --include-ignored"]
#[tokio::test]
async fn a_queue_that_never_answers_gives_503_within_the_budget() {
    if testkit::aws_endpoint().is_none() {
        return;
    }
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let silent = format!("http://127.0.0.1:{port}");
    let ingress = ingress_for(
        &silent,
        SqsTuning::default(),
        &format!("{silent}/123456789012/q"),
        400,
    );
    let started = Instant::now();
    let (status, _) = invoke(&ingress, testkit::event_file("meta-batch.json")).await;
    assert_eq!(status, 503);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    held.abort();
}

#[ignore = "needs moto: scripts/test.sh runs it; or set GATEWAY_TEST_AWS_ENDPOINT and pass --include-ignored"]
#[tokio::test]
async fn refused_requests_leave_the_queue_empty() {
    let Some(endpoint) = testkit::aws_endpoint() else {
        return;
    };
    let client = testkit::sqs_client(&endpoint);
    let queue_url = testkit::create_queue(&client, false).await;
    let ingress = Ingress::new(
        IngressConfig::from_vars(|name| {
            Some(match name {
                "LINE_CHANNEL_SECRET" => "test-line-channel-secret".to_owned(),
                "META_APP_SECRET" => "test-meta-app-secret".to_owned(),
                "MAX_BODY_BYTES" => "2000".to_owned(),
                _ => return None,
            })
        })
        .expect("config"),
        Arc::new(SqsQueue::new(ingress_client(&endpoint, MOTO), &queue_url).batched(MOTO)),
    );
    let signed_line = |body: &str| {
        let mut event = testkit::event_file("line-text-message.json");
        event["headers"]["x-line-signature"] = Value::String(shared::signature::sign_line(
            "test-line-channel-secret",
            body.as_bytes(),
        ));
        event["body"] = Value::String(body.to_owned());
        event
    };
    let signed_meta = |body: &str| {
        let mut event = testkit::event_file("meta-messenger-message.json");
        event["headers"]["x-hub-signature-256"] = Value::String(shared::signature::sign_meta(
            "test-meta-app-secret",
            body.as_bytes(),
        ));
        event["body"] = Value::String(body.to_owned());
        event
    };
    let mut unknown_path = testkit::event_file("line-text-message.json");
    unknown_path["rawPath"] = Value::String("/webhook".into());
    let mut wrong_method = testkit::event_file("line-text-message.json");
    wrong_method["requestContext"]["http"]["method"] = Value::String("PUT".into());
    let mut unsigned = testkit::event_file("line-text-message.json");
    unsigned["headers"]
        .as_object_mut()
        .expect("headers")
        .remove("x-line-signature");
    let cases = [
        ("unknown path", unknown_path, 404),
        ("wrong method", wrong_method, 405),
        ("no signature", unsigned, 401),
        ("not JSON", signed_line("this is not json"), 400),
        ("not the envelope", signed_line(r#"{"events":"none"}"#), 400),
        (
            "too large",
            signed_line(&format!(
                r#"{{"destination":"U","events":[],"x":"{}"}}"#,
                "y".repeat(2000)
            )),
            413,
        ),
        (
            "unknown Meta object",
            signed_meta(r#"{"object":"permissions","entry":[{"id":"1","changes":[]}]}"#),
            404,
        ),
        (
            "Meta verification without a token configured",
            testkit::event_file("meta-verify-accepted.json"),
            403,
        ),
    ];
    for (name, event, status) in cases {
        assert_eq!(invoke(&ingress, event).await.0, status, "{name}");
    }
    assert!(testkit::drain_queue(&client, &queue_url).await.is_empty());
}
