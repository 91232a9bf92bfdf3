//! Test support for the integration tests of `functions/*`: the moto endpoint, AWS clients
//! pointed at it, fresh queues and tables, and the sample events of `events/`.
//!
//! Tests that need moto are marked `#[ignore = "needs moto: …"]`, so that a plain `cargo test`
//! lists them as ignored rather than passing them without running; `scripts/test.sh` starts moto
//! and runs them with `--include-ignored`. Run without an endpoint, [`aws_endpoint`] fails them.

pub mod tenants;

pub mod proxy;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The moto endpoint. A test that asks for it was run on purpose (moto tests are ignored by
/// default), so its absence is a failure, never a silent pass. (Returns an `Option` for the
/// callers' `let … else`; it is always `Some`.)
pub fn aws_endpoint() -> Option<String> {
    capture_logs();
    match std::env::var("GATEWAY_TEST_AWS_ENDPOINT") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => panic!(
            "this test needs moto: set GATEWAY_TEST_AWS_ENDPOINT (scripts/test.sh starts moto and sets it)"
        ),
    }
}

/// Every log line of the current thread, as JSON, from [`capture_json_logs`] on.
#[derive(Clone, Default)]
pub struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// What was logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures every log line of this thread at every level until the guard drops: for tests that
/// check what the logs leave out (run them on a `current_thread` runtime).
pub fn capture_json_logs() -> (CapturedLogs, tracing::subscriber::DefaultGuard) {
    let captured = CapturedLogs::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}

/// Queue records of one FIFO message group, in order, with message ids `m0`, `m1`, …
pub fn fifo_records(group: &str, bodies: &[String]) -> Vec<shared::worker::QueueRecord> {
    bodies
        .iter()
        .enumerate()
        .map(|(i, body)| shared::worker::QueueRecord {
            group_id: Some(group.to_owned()),
            ..shared::worker::QueueRecord::new(format!("m{i}"), body.clone())
        })
        .collect()
}

/// The deduplication key of an encoded envelope.
pub fn envelope_key(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|envelope| envelope["key"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Sends the code's logs to the test's output (shown for failing tests).
pub fn capture_logs() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("info")
        .try_init();
}

/// An AWS configuration for `endpoint` with test credentials.
pub fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::SharedCredentialsProvider::new(
            aws_sdk_sqs::config::Credentials::new("testing", "testing", None, None, "testkit"),
        ))
        .build()
}

pub fn sqs_client(endpoint: &str) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&sdk_config(endpoint))
}

pub fn secrets_client(endpoint: &str) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&sdk_config(endpoint))
}

pub fn dynamodb_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&sdk_config(endpoint))
}

/// API clients with test tokens, every LINE and Meta base URL pointed at `uri` (a fake API). The
/// WhatsApp client has limits of its own without a pair interval, so that tests do not wait 6 s
/// between two answers to the demo user (the limits have their own tests).
pub fn fake_api_clients(uri: &str) -> shared::clients::Clients {
    let mut clients = fake_api_clients_shared_limits(uri);
    clients.whatsapp = Some(shared::clients::whatsapp::WhatsAppClient::with_throughput(
        reqwest::Client::new(),
        "test-whatsapp-token",
        uri,
        std::sync::Arc::new(shared::clients::throughput::Throughput::new(
            std::time::Duration::ZERO,
            1000,
        )),
    ));
    clients
}

fn fake_api_clients_shared_limits(uri: &str) -> shared::clients::Clients {
    shared::clients::Clients::from_vars(|name| {
        Some(match name {
            "LINE_CHANNEL_ACCESS_TOKEN" => "test-line-token".to_owned(),
            "META_PAGE_ACCESS_TOKEN" => "test-page-token".to_owned(),
            "LINE_API_BASE_URL" | "LINE_DATA_API_BASE_URL" | "META_GRAPH_API_BASE_URL" => {
                uri.to_owned()
            }
            _ => return None,
        })
    })
}

/// A name no other test of this run uses.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// A new queue; FIFO when `fifo`.
pub async fn create_queue(client: &aws_sdk_sqs::Client, fifo: bool) -> String {
    let name = unique_name("test");
    let mut request = client.create_queue();
    if fifo {
        request = request
            .queue_name(format!("{name}.fifo"))
            .attributes(QueueAttributeName::FifoQueue, "true");
    } else {
        request = request.queue_name(name);
    }
    request
        .send()
        .await
        .expect("create queue")
        .queue_url()
        .expect("queue url")
        .to_owned()
}

/// A new idempotency table as the template defines it: key `id`, on demand, TTL on `expiration`.
pub async fn create_idempotency_table(client: &aws_sdk_dynamodb::Client) -> String {
    let name = unique_name("idempotency");
    client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .send()
        .await
        .expect("create table");
    client
        .update_time_to_live()
        .table_name(&name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name("expiration")
                .enabled(true)
                .build()
                .expect("ttl"),
        )
        .send()
        .await
        .expect("enable ttl");
    name
}

pub fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk_config(endpoint))
            .force_path_style(true)
            .build(),
    )
}

/// A new archive table as the template defines it: keys `pk` and `sk`, the `by-time` index on
/// `pk` and `order`, on demand.
pub async fn create_archive_table(client: &aws_sdk_dynamodb::Client) -> String {
    use aws_sdk_dynamodb::types::{GlobalSecondaryIndex, Projection, ProjectionType};
    let name = unique_name("archive");
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("attribute")
    };
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .expect("key")
    };
    client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("sk"))
        .attribute_definitions(attribute("order"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("by-time")
                .key_schema(key("pk", KeyType::Hash))
                .key_schema(key("order", KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .expect("index"),
        )
        .send()
        .await
        .expect("create archive table");
    name
}

/// A new bucket.
pub async fn create_bucket(client: &aws_sdk_s3::Client) -> String {
    let name = unique_name("archive-media");
    client
        .create_bucket()
        .bucket(&name)
        .send()
        .await
        .expect("create bucket");
    name
}

/// Receives every message in the queue (hiding each for ten minutes), with its attributes.
pub async fn drain_queue(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
) -> Vec<aws_sdk_sqs::types::Message> {
    let mut all = Vec::new();
    loop {
        let output = client
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(600)
            .message_attribute_names("All")
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .expect("receive");
        let messages = output.messages.unwrap_or_default();
        if messages.is_empty() {
            return all;
        }
        all.extend(messages);
    }
}

/// The path of a file in `events/`.
pub fn event_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../events")
        .join(name)
}

/// A sample event of `events/` as JSON.
pub fn event_file(name: &str) -> serde_json::Value {
    let path = event_path(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The names of the files in `events/` that start with `prefix`, sorted.
pub fn event_files(prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(event_path(""))
        .expect("events dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(prefix) && name.ends_with(".json"))
        .collect();
    names.sort();
    names
}

/// The LINE bot (`destination`) of the sample events.
pub const DEMO_BOT: &str = "Uf00000000000000000000000000000b0";

/// A LINE text message event from the demo user, with `extra` fields replaced: text
/// `hello {id}`, message id `m{id}`, `webhookEventId` `01J{id}`, reply token `r{id}`, quote token
/// `q{id}`.
pub fn line_text_event(id: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut event = serde_json::json!({
        "type": "message",
        "message": {"type": "text", "id": format!("m{id}"), "text": format!("hello {id}"), "quoteToken": format!("q{id}")},
        "webhookEventId": format!("01J{id}"),
        "deliveryContext": {"isRedelivery": false},
        "timestamp": 1_763_715_600_000i64,
        "source": {"type": "user", "userId": "U4af4980629000000000000000000c0de"},
        "replyToken": format!("r{id}"),
        "mode": "active"
    });
    if let (Some(event), Some(extra)) = (event.as_object_mut(), extra.as_object()) {
        for (name, value) in extra {
            event.insert(name.clone(), value.clone());
        }
    }
    event
}

/// The WhatsApp business number of the sample events, and its user.
pub const DEMO_WHATSAPP_NUMBER: &str = "106540352242922";
pub const DEMO_WHATSAPP_USER: &str = "16315551181";

/// A WhatsApp `messages` change from the demo user to the demo number: `messages` and `statuses`
/// as given.
pub fn whatsapp_change(
    messages: serde_json::Value,
    statuses: serde_json::Value,
) -> serde_json::Value {
    serde_json::json!({"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": DEMO_WHATSAPP_NUMBER},
        "contacts": [{"profile": {"name": "Kerry Fisher"}, "wa_id": DEMO_WHATSAPP_USER}],
        "messages": messages, "statuses": statuses}})
}

/// A WhatsApp text message from the demo user: id `wamid.{id}`.
pub fn whatsapp_text(id: &str, text: &str) -> serde_json::Value {
    serde_json::json!({"from": DEMO_WHATSAPP_USER, "id": format!("wamid.{id}"),
        "timestamp": "1763715600", "type": "text", "text": {"body": text}})
}

/// The queue message bodies the ingress would send for these WhatsApp changes.
pub fn queued_whatsapp(changes: &[serde_json::Value]) -> Vec<String> {
    let body = serde_json::json!({"object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": changes}]})
    .to_string();
    let notification = shared::meta::Notification::parse(body.as_bytes()).expect("notification");
    let options =
        shared::ingress::SplitOptions::for_body(body.as_bytes(), shared::clock::now_ms(), 1 << 20);
    shared::ingress::meta_messages(&notification, &options)
        .expect("messages")
        .messages
        .into_iter()
        .map(|m| m.body().to_owned())
        .collect()
}

/// The queue message bodies the ingress would send for these LINE events (to [`DEMO_BOT`]).
pub fn queued_line_events(events: &[serde_json::Value]) -> Vec<String> {
    let body = serde_json::json!({"destination": DEMO_BOT, "events": events}).to_string();
    let callback = shared::line::Callback::parse(body.as_bytes()).expect("callback");
    let options =
        shared::ingress::SplitOptions::for_body(body.as_bytes(), shared::clock::now_ms(), 1 << 20);
    shared::ingress::line_messages(&callback, &options)
        .expect("messages")
        .messages
        .into_iter()
        .map(|m| m.body().to_owned())
        .collect()
}
