//! The worker Lambda handler with the gateway's test bot, against DynamoDB on moto and a fake LINE
//! and Meta API on loopback that counts calls: exactly one reply per event however often it
//! arrives, retries that end in one reply, and the store's request counts. (The example bot's own
//! rules are tested beside it, in `src/bot/tests.rs`.)
//!
//! Needs moto (see `testkit::aws_endpoint`).

use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use serde_json::{Value, json};
use shared::adapters::dynamodb::DynamoDbStore;
use shared::clients::Clients;
use shared::envelope::Envelope;
use shared::ports::{Claim, IdempotencyStore};
use shared::worker::{Worker, WorkerConfig};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Counts the HTTP requests the DynamoDB client sends (retries included).
#[derive(Debug, Clone, Default)]
struct CountRequests(Arc<AtomicUsize>);

impl Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "CountRequests"
    }
    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// A fake platform API answer: fails with `status` while `failing`, then succeeds; counts both.
#[derive(Clone)]
struct Answer {
    failing: Arc<AtomicBool>,
    fail_times: Arc<AtomicUsize>,
    status: u16,
    body: Value,
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    delay: Duration,
}

impl Answer {
    fn ok() -> Answer {
        Answer {
            failing: Arc::new(AtomicBool::new(false)),
            fail_times: Arc::new(AtomicUsize::new(0)),
            status: 500,
            body: json!({}),
            ok: Arc::default(),
            failed: Arc::default(),
            delay: Duration::ZERO,
        }
    }
    fn failing_with(status: u16, body: Value) -> Answer {
        let answer = Answer {
            status,
            body,
            ..Answer::ok()
        };
        answer.failing.store(true, Ordering::SeqCst);
        answer
    }
    /// Fails the next `n` requests, then succeeds.
    fn failing_times(status: u16, n: usize) -> Answer {
        let answer = Answer {
            status,
            ..Answer::ok()
        };
        answer.fail_times.store(n, Ordering::SeqCst);
        answer
    }
    fn slow(delay: Duration) -> Answer {
        Answer {
            delay,
            ..Answer::ok()
        }
    }
    fn oks(&self) -> usize {
        self.ok.load(Ordering::SeqCst)
    }
    fn fails(&self) -> usize {
        self.failed.load(Ordering::SeqCst)
    }
}

impl Respond for Answer {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        let counted_failure = self
            .fail_times
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if counted_failure || self.failing.load(Ordering::SeqCst) {
            self.failed.fetch_add(1, Ordering::SeqCst);
            return ResponseTemplate::new(self.status).set_body_json(self.body.clone());
        }
        self.ok.fetch_add(1, Ordering::SeqCst);
        ResponseTemplate::new(200)
            .set_body_json(json!({"sentMessages": [{"id": "1"}]}))
            .set_delay(self.delay)
    }
}

/// The fake LINE and Meta API.
struct FakeApi {
    server: MockServer,
    reply: Answer,
}

impl FakeApi {
    async fn start(reply: Answer) -> FakeApi {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v2/bot/message/reply"))
            .respond_with(reply.clone())
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex("^/v2/bot/profile/U[0-9a-f]+$"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"userId": "U4af4980629000000000000000000c0de", "displayName": "Taro", "language": "ja"}),
            ))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/me/messages"))
            .respond_with(Answer::ok())
            .mount(&server)
            .await;
        FakeApi { server, reply }
    }

    fn clients(&self) -> Clients {
        testkit::fake_api_clients(&self.server.uri())
    }

    async fn requests(&self, wanted: &str) -> Vec<Request> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| {
                r.url.path() == wanted
                    || (wanted == "profile" && r.url.path().starts_with("/v2/bot/profile/"))
            })
            .collect()
    }
}

struct Setup {
    store: Arc<DynamoDbStore>,
    requests: CountRequests,
    api: FakeApi,
    worker: Arc<Worker>,
}

impl Setup {
    async fn new(endpoint: &str, reply: Answer) -> Setup {
        let counter = CountRequests::default();
        let admin = testkit::dynamodb_client(endpoint);
        let table = testkit::create_idempotency_table(&admin).await;
        let config = aws_sdk_dynamodb::config::Builder::from(&testkit::sdk_config(endpoint))
            .interceptor(counter.clone())
            .build();
        let store = Arc::new(DynamoDbStore::new(
            aws_sdk_dynamodb::Client::from_conf(config),
            table,
        ));
        let api = FakeApi::start(reply).await;
        let worker = Arc::new(worker_for(store.clone(), &api));
        Setup {
            store,
            requests: counter,
            api,
            worker,
        }
    }

    fn another_worker(&self) -> Worker {
        worker_for(self.store.clone(), &self.api)
    }

    fn store_requests(&self) -> usize {
        self.requests.0.load(Ordering::SeqCst)
    }
}

fn worker_for(store: Arc<DynamoDbStore>, api: &FakeApi) -> Worker {
    let config = WorkerConfig::default();
    Worker::new(
        store,
        Arc::new(shared::test_bot::GatewayTestBot),
        api.clients(),
        config,
    )
}

fn sqs_event(bodies: &[String]) -> SqsEvent {
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| json!({"messageId": format!("msg-{i}"), "body": body, "attributes": {}, "eventSource": "aws:sqs"}))
        .collect();
    serde_json::from_value(json!({"Records": records})).expect("sqs event")
}

async fn run(worker: &Worker, bodies: &[String], budget_ms: i64) -> Vec<String> {
    let response = worker::handle(worker, sqs_event(bodies), now_ms() + budget_ms).await;
    response
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect()
}

#[ignore = "needs moto: scripts/test.sh runs it; or set GATEWAY_TEST_AWS_ENDPOINT and pass --include-ignored"]
#[tokio::test]
async fn the_same_event_three_times_gets_one_reply_in_one_batch_across_batches_and_concurrently() {
    let Some(endpoint) = testkit::aws_endpoint() else {
        return;
    };
    let setup = Setup::new(&endpoint, Answer::slow(Duration::from_millis(300))).await;

    // In one batch.
    let once = testkit::queued_line_events(&[testkit::line_text_event("A", json!({}))]);
    let three = [once[0].clone(), once[0].clone(), once[0].clone()];
    assert!(run(&setup.worker, &three, 20_000).await.is_empty());
    assert_eq!(setup.api.reply.oks(), 1);

    // In separate batches.
    let b = testkit::queued_line_events(&[testkit::line_text_event("B", json!({}))]);
    for _ in 0..3 {
        assert!(run(&setup.worker, &b, 20_000).await.is_empty());
    }
    assert_eq!(setup.api.reply.oks(), 2);

    // In two concurrent invocations (the reply takes 300 ms, so they overlap), then a third.
    // DynamoDB evaluates a claim's condition and writes it atomically; plain moto does not (two
    // concurrent claims could both pass under load), so scripts/test.sh runs moto through
    // scripts/moto_server.py, which makes its conditional writes atomic as DynamoDB's are.
    let c = testkit::queued_line_events(&[testkit::line_text_event("C", json!({}))]);
    let other = setup.another_worker();
    let (first, second) = tokio::join!(run(&setup.worker, &c, 20_000), run(&other, &c, 20_000));
    assert_eq!(
        first.len() + second.len(),
        1,
        "the one that found it in progress retries later"
    );
    assert!(
        run(&setup.worker, &c, 20_000).await.is_empty(),
        "the retry is a duplicate"
    );
    assert_eq!(setup.api.reply.oks(), 3);
    assert_eq!(setup.api.requests("/v2/bot/message/reply").await.len(), 3);
}

#[ignore = "needs moto: scripts/test.sh runs it; or set GATEWAY_TEST_AWS_ENDPOINT and pass --include-ignored"]
#[tokio::test]
async fn a_failed_handler_is_retried_and_still_replies_once() {
    let Some(endpoint) = testkit::aws_endpoint() else {
        return;
    };
    let reply = Answer::failing_with(500, json!({"message": "Internal error"}));
    let setup = Setup::new(&endpoint, reply).await;
    let bodies = testkit::queued_line_events(&[testkit::line_text_event("F", json!({}))]);
    // A short invocation: LINE keeps answering 500, the retries run out of time, the event is released.
    let failed = run(&setup.worker, &bodies, 2_500).await;
    assert_eq!(failed, ["msg-0"]);
    assert!(
        setup.api.reply.fails() >= 2,
        "retried within the invocation"
    );
    assert_eq!(setup.api.reply.oks(), 0);
    // LINE recovers; SQS delivers the message again.
    setup.api.reply.failing.store(false, Ordering::SeqCst);
    assert!(run(&setup.worker, &bodies, 20_000).await.is_empty());
    assert!(
        run(&setup.worker, &bodies, 20_000).await.is_empty(),
        "and then it is a duplicate"
    );
    assert_eq!(setup.api.reply.oks(), 1);
}

#[ignore = "needs moto: scripts/test.sh runs it; or set GATEWAY_TEST_AWS_ENDPOINT and pass --include-ignored"]
#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_within_the_invocation() {
    let Some(endpoint) = testkit::aws_endpoint() else {
        return;
    };
    let setup = Setup::new(&endpoint, Answer::failing_times(429, 2)).await;
    let bodies = testkit::queued_line_events(&[testkit::line_text_event("R", json!({}))]);
    assert!(run(&setup.worker, &bodies, 20_000).await.is_empty());
    assert_eq!((setup.api.reply.fails(), setup.api.reply.oks()), (2, 1));
}

#[ignore = "needs moto: scripts/test.sh runs it; or set GATEWAY_TEST_AWS_ENDPOINT and pass --include-ignored"]
#[tokio::test]
async fn a_used_or_expired_reply_token_is_logged_not_retried() {
    let Some(endpoint) = testkit::aws_endpoint() else {
        return;
    };
    let reply = Answer::failing_with(400, json!({"message": "Invalid reply token"}));
    let setup = Setup::new(&endpoint, reply).await;
    let bodies = testkit::queued_line_events(&[testkit::line_text_event("T", json!({}))]);
    assert!(
        run(&setup.worker, &bodies, 20_000).await.is_empty(),
        "acknowledged"
    );
    assert_eq!(setup.api.requests("/v2/bot/message/reply").await.len(), 1);
    assert!(run(&setup.worker, &bodies, 20_000).await.is_empty());
    assert_eq!(
        setup.api.requests("/v2/bot/message/reply").await.len(),
        1,
        "completed: not run again"
    );
}

#[ignore = "needs moto: scripts/test.sh runs it; or set GATEWAY_TEST_AWS_ENDPOINT and pass --include-ignored"]
#[tokio::test]
async fn a_claim_whose_invocation_died_is_taken_over_after_its_expiry() {
    let Some(endpoint) = testkit::aws_endpoint() else {
        return;
    };
    let setup = Setup::new(&endpoint, Answer::ok()).await;
    let bodies = testkit::queued_line_events(&[testkit::line_text_event("D", json!({}))]);
    let key = Envelope::decode(&bodies[0]).expect("envelope").key;
    let now = now_ms();
    // An invocation claimed it until now + 1 s and died.
    assert_eq!(
        setup
            .store
            .claim(&key, "dead-invocation", now, now + 1_000, now + 60_000)
            .await
            .expect("claim"),
        Claim::Claimed { attempt: 1 }
    );
    assert_eq!(
        run(&setup.worker, &bodies, 20_000).await,
        ["msg-0"],
        "in progress elsewhere"
    );
    assert_eq!(setup.api.reply.oks(), 0);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert!(run(&setup.worker, &bodies, 20_000).await.is_empty());
    assert_eq!(setup.api.reply.oks(), 1);
}

#[ignore = "needs moto: scripts/test.sh runs it; or set GATEWAY_TEST_AWS_ENDPOINT and pass --include-ignored"]
#[tokio::test]
async fn store_requests_two_for_a_new_event_one_for_a_duplicate() {
    let Some(endpoint) = testkit::aws_endpoint() else {
        return;
    };
    let setup = Setup::new(&endpoint, Answer::ok()).await;
    let bodies = testkit::queued_line_events(&[testkit::line_text_event("S", json!({}))]);
    let before = setup.store_requests();
    run(&setup.worker, &bodies, 20_000).await;
    assert_eq!(
        setup.store_requests() - before,
        2,
        "UpdateItem claim + PutItem complete"
    );
    run(&setup.worker, &bodies, 20_000).await;
    assert_eq!(
        setup.store_requests() - before,
        3,
        "one refused conditional UpdateItem"
    );
}

#[ignore = "needs moto: scripts/test.sh runs it; or set GATEWAY_TEST_AWS_ENDPOINT and pass --include-ignored"]
#[tokio::test]
async fn the_dynamodb_store_keeps_the_contract() {
    let Some(endpoint) = testkit::aws_endpoint() else {
        return;
    };
    let setup = Setup::new(&endpoint, Answer::ok()).await;
    shared::adapters::conformance::check_idempotency_store(setup.store.as_ref(), "dynamodb")
        .await
        .expect("contract");
}

#[ignore = "needs moto: scripts/test.sh runs it; or set GATEWAY_TEST_AWS_ENDPOINT and pass --include-ignored"]
#[tokio::test]
async fn the_sample_sqs_events_drive_the_worker() {
    let Some(endpoint) = testkit::aws_endpoint() else {
        return;
    };
    // (file, failed records, LINE replies, Meta sends, profile lookups)
    let expectations: [(&str, usize, usize, usize, usize); 5] = [
        ("sqs-line-duplicates.json", 0, 2, 0, 0),
        ("sqs-line-fifo.json", 0, 1, 0, 0),
        ("sqs-line-text-message.json", 0, 1, 0, 0),
        ("sqs-meta-messenger-message.json", 0, 0, 1, 0),
        ("sqs-poison.json", 2, 1, 0, 1),
    ];
    assert_eq!(
        testkit::event_files("sqs-"),
        expectations
            .iter()
            .map(|e| e.0.to_owned())
            .collect::<Vec<_>>(),
        "every worker sample event has an expectation here"
    );
    for (file, failed, replies, sends, profiles) in expectations {
        let setup = Setup::new(&endpoint, Answer::ok()).await;
        let event: SqsEvent = serde_json::from_value(testkit::event_file(file)).expect("sqs event");
        let response = worker::handle(&setup.worker, event, now_ms() + 20_000).await;
        assert_eq!(response.batch_item_failures.len(), failed, "{file}");
        assert_eq!(
            setup.api.requests("/v2/bot/message/reply").await.len(),
            replies,
            "{file}"
        );
        assert_eq!(
            setup.api.requests("/me/messages").await.len(),
            sends,
            "{file}"
        );
        assert_eq!(
            setup.api.requests("profile").await.len(),
            profiles,
            "{file}"
        );
    }
}

#[test]
fn the_sample_sqs_events_are_what_the_ingress_queues() {
    for file in testkit::event_files("sqs-") {
        let event = testkit::event_file(&file);
        for record in event["Records"].as_array().expect("records") {
            let Ok(envelope) = Envelope::decode(record["body"].as_str().expect("body")) else {
                continue; // the poison samples
            };
            let (key, conversation) = match (&envelope.line, &envelope.meta) {
                (Some(line), _) => {
                    let head = shared::line::EventHead::of(&envelope.event);
                    let destination = line.destination.as_deref().unwrap_or_default();
                    (
                        head.dedup_key(destination, envelope.event.get()),
                        head.conversation_id(destination),
                    )
                }
                (_, Some(meta)) => {
                    let head = shared::meta::ItemHead::of_entry(
                        &meta.object,
                        &meta.entry_id,
                        meta.entry_time,
                        meta.list,
                        &envelope.event,
                    );
                    (head.key, head.conversation)
                }
                _ => panic!("{file}: no context"),
            };
            assert_eq!(envelope.key, key, "{file}");
            assert_eq!(envelope.conversation, conversation, "{file}");
            if let Some(group) = record["attributes"]["MessageGroupId"].as_str() {
                assert_eq!(group, conversation, "{file}");
            }
        }
    }
}

#[ignore = "needs moto: scripts/test.sh runs it; or set GATEWAY_TEST_AWS_ENDPOINT and pass --include-ignored"]
#[tokio::test]
async fn dynamodb_throttling_between_claim_and_completion_still_gives_one_reply() {
    let Some(endpoint) = testkit::aws_endpoint() else {
        return;
    };
    // Every third DynamoDB call is throttled, claims and completions alike; the SDK retries them.
    let proxy =
        testkit::proxy::FaultProxy::start(&endpoint, testkit::proxy::Fault::Throttle { every: 3 })
            .await;
    let setup = Setup::new(&proxy.url, Answer::ok()).await;
    let bodies = testkit::queued_line_events(&[
        testkit::line_text_event("DT1", json!({})),
        testkit::line_text_event("DT2", json!({})),
    ]);
    let twice = [bodies.clone(), bodies.clone()].concat();
    for _ in 0..3 {
        let failed = run(&setup.worker, &twice, 20_000).await;
        assert!(failed.is_empty(), "{failed:?}");
    }
    assert!(proxy.faults() >= 2, "throttled {} times", proxy.faults());
    assert_eq!(setup.api.reply.oks(), 2, "one reply per event");
}
