//! Many channels in one deployment (`shared::tenants`): three tenants with three LINE channels,
//! three pages across two Meta apps, an Instagram account and two WhatsApp numbers
//! (`testkit::tenants`). Each tenant's requests are verified with its own secrets, and a request
//! genuinely signed by one tenant's secret (or by an app two tenants share) is refused when it
//! names another tenant's bot, page, account or number; each event reaches the bot with its
//! tenant's clients, whose calls carry that tenant's tokens; keys and conversations never mix.
//! The moto test runs the same with the registry in Secrets Manager, SQS FIFO and DynamoDB,
//! adding and removing a tenant without a restart.

use async_trait::async_trait;
use bytes::Bytes;
use http::StatusCode;
use serde_json::{Value, json};
use shared::adapters::memory::{MemoryQueue, MemoryStore};
use shared::bot::{Bot, BotError, BotEvent, BotEventKind};
use shared::clients::Clients;
use shared::clients::whatsapp::Recipient;
use shared::envelope::Envelope;
use shared::ingress::{Ingress, IngressConfig};
use shared::meta::{ChangeValue, Item};
use shared::settings::{
    API_TOKENS, DEFAULT_REFRESH, Reloading, SIGNING_SECRETS, SecretError, SecretSource, Values,
    Withholding,
};
use shared::worker::{QueueRecord, Worker, WorkerConfig};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use testkit::tenants::*;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

fn ingress_config(extra: &[(&str, &str)]) -> IngressConfig {
    let registry = registry().to_string();
    IngressConfig::from_vars(|name| {
        extra
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| (*v).to_owned())
            .or_else(|| (name == "TENANTS").then(|| registry.clone()))
    })
    .expect("config")
}

fn envelopes(queue: &MemoryQueue) -> Vec<Envelope> {
    queue
        .drain()
        .iter()
        .map(|m| Envelope::decode(m.body()).expect("envelope"))
        .collect()
}

async fn status(ingress: &Ingress, request: http::Request<Bytes>) -> StatusCode {
    ingress.handle_request(request).await.response.status()
}

#[tokio::test]
async fn each_tenant_is_served_on_its_own_url_and_its_events_carry_it() {
    let queue = Arc::new(MemoryQueue::like_sqs());
    let ingress = Ingress::new(ingress_config(&[]), queue.clone());
    for (tenant, request) in genuine_requests() {
        assert_eq!(status(&ingress, request).await, StatusCode::OK, "{tenant}");
        let queued = envelopes(&queue);
        assert_eq!(queued.len(), 1, "{tenant}");
        assert_eq!(queued[0].tenant.as_deref(), Some(tenant));
        assert!(queued[0].key.starts_with(&format!("{tenant}/")));
        assert!(queued[0].conversation.starts_with(&format!("{tenant}/")));
    }
    // The same LINE event id to two channels: two events, two keys, two conversations.
    let (alpha_bot, alpha_secret, _) = line_channel("alpha");
    let (bravo_bot, bravo_secret, _) = line_channel("bravo");
    for (tenant, bot, secret) in [
        ("alpha", alpha_bot, &alpha_secret),
        ("bravo", bravo_bot, &bravo_secret),
    ] {
        let request = line_post(tenant, secret, line_body(bot, "same"));
        assert_eq!(status(&ingress, request).await, StatusCode::OK);
    }
    let both = envelopes(&queue);
    assert_ne!(both[0].key, both[1].key);
    assert_ne!(both[0].conversation, both[1].conversation);
}

#[tokio::test]
async fn requests_signed_for_one_tenant_never_speak_for_another() {
    let queue = Arc::new(MemoryQueue::like_sqs());
    let ingress = Ingress::new(ingress_config(&[]), queue.clone());
    let (alpha_bot, alpha_secret, _) = line_channel("alpha");
    let (bravo_bot, _, _) = line_channel("bravo");
    let refusals = [
        // LINE: alpha's secret, bravo's bot, on alpha's URL and on bravo's.
        (
            "alpha's secret naming bravo's bot",
            line_post("alpha", &alpha_secret, line_body(bravo_bot, "x1")),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "alpha's secret on bravo's URL",
            line_post("bravo", &alpha_secret, line_body(alpha_bot, "x2")),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "alpha's own request on an unknown tenant's URL",
            line_post("delta", &alpha_secret, line_body(alpha_bot, "x3")),
            StatusCode::NOT_FOUND,
        ),
        // Meta: app 1001 serves alpha and bravo; its signature does not make alpha's page bravo's.
        (
            "app 1001's signature over alpha's page, on bravo's URL",
            meta_post(
                "bravo",
                APP_ONE_SECRET,
                messenger_body(ALPHA_PAGE, "P", "y1"),
            ),
            StatusCode::FORBIDDEN,
        ),
        (
            "app 2001's signature over charlie's page, on bravo's URL",
            meta_post(
                "bravo",
                APP_TWO_SECRET,
                messenger_body(CHARLIE_PAGE, "P", "y2"),
            ),
            StatusCode::FORBIDDEN,
        ),
        (
            "charlie's WhatsApp account on bravo's URL",
            meta_post(
                "bravo",
                APP_TWO_SECRET,
                whatsapp_body(CHARLIE_WABA, CHARLIE_NUMBER, "y3"),
            ),
            StatusCode::FORBIDDEN,
        ),
        (
            "bravo's account carrying charlie's number",
            meta_post(
                "bravo",
                APP_TWO_SECRET,
                whatsapp_body(BRAVO_WABA, CHARLIE_NUMBER, "y4"),
            ),
            StatusCode::FORBIDDEN,
        ),
        (
            "the Instagram account signed by the Facebook app instead of the Instagram app",
            meta_post(
                "alpha",
                APP_ONE_SECRET,
                instagram_body(ALPHA_INSTAGRAM, "I", "y5"),
            ),
            StatusCode::FORBIDDEN,
        ),
        (
            "a page's entry signed by an app that serves no tenant here",
            meta_post(
                "alpha",
                "some-other-app",
                messenger_body(ALPHA_PAGE, "P", "y6"),
            ),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "a tenant without Meta apps",
            meta_post(
                "delta",
                APP_ONE_SECRET,
                messenger_body(ALPHA_PAGE, "P", "y7"),
            ),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (what, request, expected) in refusals {
        assert_eq!(status(&ingress, request).await, expected, "{what}");
        assert!(queue.messages().is_empty(), "{what}: nothing queued");
    }
    // A body mixing bravo's page with alpha's is refused whole: nothing of it is queued.
    let mixed = json!({"object": "page", "entry": [
        serde_json::from_str::<Value>(&messenger_body(BRAVO_PAGE, "P", "z1")).expect("json")["entry"][0],
        serde_json::from_str::<Value>(&messenger_body(ALPHA_PAGE, "P", "z2")).expect("json")["entry"][0],
    ]})
    .to_string();
    let request = meta_post("bravo", APP_ONE_SECRET, mixed.clone());
    assert_eq!(status(&ingress, request).await, StatusCode::FORBIDDEN);
    assert!(queue.messages().is_empty());

    // Configured to drop instead: bravo's item is queued, alpha's left out.
    let dropping = Ingress::new(
        ingress_config(&[("FOREIGN_ENTRIES", "drop")]),
        queue.clone(),
    );
    let request = meta_post("bravo", APP_ONE_SECRET, mixed);
    assert_eq!(status(&dropping, request).await, StatusCode::OK);
    let queued = envelopes(&queue);
    assert_eq!(queued.len(), 1);
    assert_eq!(
        queued[0].meta.as_ref().map(|m| m.entry_id.as_str()),
        Some(BRAVO_PAGE)
    );
    assert_eq!(queued[0].tenant.as_deref(), Some("bravo"));
}

#[tokio::test]
async fn each_tenant_answers_its_own_verify_token() {
    let ingress = Ingress::new(ingress_config(&[]), Arc::new(MemoryQueue::new()));
    let get = |tenant: &str, token: &str| {
        http::Request::builder()
            .uri(format!(
                "/meta/{tenant}?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=42"
            ))
            .body(Bytes::new())
            .expect("request")
    };
    let handled = ingress.handle_request(get("bravo", "bravo-verify")).await;
    assert_eq!(handled.response.status(), StatusCode::OK);
    assert_eq!(handled.response.body(), "42");
    assert_eq!(
        status(&ingress, get("bravo", "alpha-verify")).await,
        StatusCode::FORBIDDEN
    );
    // The single-tenant routes stay off: no LINE_CHANNEL_SECRET or META_APP_SECRET is set.
    assert_eq!(
        status(&ingress, get("", "alpha-verify")).await,
        StatusCode::NOT_FOUND
    );
}

/// A registry that a test changes, as an operator changes the secret.
struct Editable(Mutex<Value>);

#[async_trait]
impl SecretSource for Editable {
    async fn fetch(&self) -> Result<Values, SecretError> {
        let registry = self.0.lock().map(|r| r.to_string()).unwrap_or_default();
        Ok(Values::from([("TENANTS".to_owned(), registry)]))
    }
}

#[tokio::test]
async fn a_rotated_secret_works_beside_the_old_one_and_alone_after_it() {
    let source = Arc::new(Editable(Mutex::new(registry())));
    let config = Reloading::start(source.clone(), DEFAULT_REFRESH, |var| {
        IngressConfig::from_vars(var)
    })
    .await
    .expect("config");
    let ingress = Ingress::reloading(config.clone(), Arc::new(MemoryQueue::new()));
    let (bot, old, _) = line_channel("alpha");
    let send = |secret: &str, id: &str| line_post("alpha", secret, line_body(bot, id));
    let set_secrets = |secrets: Value| {
        let mut registry = source.0.lock().expect("lock");
        registry["alpha"]["line"]["channel_secrets"] = secrets;
    };
    set_secrets(json!(["alpha-new-secret", old.clone()]));
    config.reload().await;
    assert_eq!(
        status(&ingress, send("alpha-new-secret", "r1")).await,
        StatusCode::OK
    );
    assert_eq!(status(&ingress, send(&old, "r2")).await, StatusCode::OK);
    set_secrets(json!(["alpha-new-secret"]));
    config.reload().await;
    assert_eq!(
        status(&ingress, send(&old, "r3")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(&ingress, send("alpha-new-secret", "r4")).await,
        StatusCode::OK
    );
    // Removing a tenant closes its URL at the next reload.
    source
        .0
        .lock()
        .expect("lock")
        .as_object_mut()
        .map(|r| r.remove("alpha"));
    config.reload().await;
    assert_eq!(
        status(&ingress, send("alpha-new-secret", "r5")).await,
        StatusCode::NOT_FOUND
    );
}

/// Answers every API the way the platforms do, and records who called what with which token.
#[derive(Clone, Default)]
struct Calls(Arc<Mutex<Vec<(String, String)>>>);

impl wiremock::Respond for Calls {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let token = bearer_token(&request.headers);
        let path = request.url.path().to_owned();
        if let Ok(mut calls) = self.0.lock() {
            calls.push((path.clone(), token));
        }
        let body = if path.ends_with("/reply") {
            json!({"sentMessages": [{"id": "1", "quoteToken": "q"}]})
        } else if path.ends_with("/me/messages") {
            json!({"recipient_id": "r", "message_id": "m"})
        } else {
            json!({"messaging_product": "whatsapp", "contacts": [{"input": "1", "wa_id": "1"}],
                   "messages": [{"id": "wamid.sent"}]})
        };
        ResponseTemplate::new(200).set_body_json(body)
    }
}

/// Answers every text on the platform it came from, with the clients it was given.
struct Answering;

#[async_trait]
impl Bot for Answering {
    async fn handle(&self, event: &BotEvent, clients: &Clients) -> Result<(), BotError> {
        match &event.kind {
            BotEventKind::Line { event: line, .. } => {
                let client = clients.line.as_ref().ok_or("no LINE client")?;
                let token = line.reply_token().ok_or("no reply token")?;
                let reply = shared::clients::line::text_message("hi", None);
                client.reply(token, &[reply], event.deadline).await?;
            }
            BotEventKind::Meta {
                item: Item::Messaging(messaging),
                ..
            } => {
                let client = clients.meta.as_ref().ok_or("no page client")?;
                let sender = messaging.sender.as_ref().and_then(|s| s.id.as_deref());
                client
                    .send_text(sender.ok_or("no sender")?, "hi", event.deadline)
                    .await?;
            }
            BotEventKind::Meta {
                item: Item::Change(change),
                ..
            } => {
                let ChangeValue::WhatsApp(value) = &change.value else {
                    return Err("not WhatsApp".into());
                };
                let client = clients.whatsapp.as_ref().ok_or("no WhatsApp client")?;
                let number = value
                    .metadata
                    .as_ref()
                    .and_then(|m| m.phone_number_id.clone());
                let to = value.messages.first().and_then(Recipient::of);
                client
                    .send_text(
                        &number.ok_or("no number")?,
                        &to.ok_or("no user")?,
                        "hi",
                        None,
                        event.deadline,
                    )
                    .await?;
            }
            _ => return Err("unexpected event".into()),
        }
        Ok(())
    }
}

/// The worker's clients from the registry, as the worker function builds them from its secret.
async fn worker_clients(source: Arc<dyn SecretSource>, api: &str) -> Arc<Reloading<Clients>> {
    let api = api.to_owned();
    let source = Withholding::new(source, SIGNING_SECRETS, "worker");
    Reloading::start(source, DEFAULT_REFRESH, move |var| {
        Clients::try_from_vars(|name| match name {
            "LINE_API_BASE_URL" | "LINE_DATA_API_BASE_URL" | "META_GRAPH_API_BASE_URL" => {
                Some(api.clone())
            }
            other => var(other),
        })
    })
    .await
    .expect("clients")
}

/// Who was called with which token, by tenant, from the tokens' names.
fn calls_by_token(calls: &Calls) -> BTreeMap<String, Vec<String>> {
    let mut by_token: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, token) in calls.0.lock().expect("lock").iter() {
        by_token
            .entry(token.clone())
            .or_default()
            .push(path.clone());
    }
    by_token
}

fn expected_calls() -> BTreeMap<String, Vec<String>> {
    BTreeMap::from(
        [
            ("alpha-line-token", "/v2/bot/message/reply"),
            ("bravo-line-token", "/v2/bot/message/reply"),
            ("charlie-line-token", "/v2/bot/message/reply"),
            ("alpha-page-token", "/me/messages"),
            ("alpha-instagram-token", "/me/messages"),
            ("bravo-page-token", "/me/messages"),
            ("charlie-page-token", "/me/messages"),
        ]
        .map(|(token, path)| (token.to_owned(), vec![path.to_owned()])),
    )
    .into_iter()
    .chain([
        (
            "bravo-whatsapp-token".to_owned(),
            vec![format!("/{BRAVO_NUMBER}/messages")],
        ),
        (
            "charlie-whatsapp-token".to_owned(),
            vec![format!("/{CHARLIE_NUMBER}/messages")],
        ),
    ])
    .collect()
}

async fn fake_apis() -> (MockServer, Calls) {
    let server = MockServer::start().await;
    let calls = Calls::default();
    Mock::given(wiremock::matchers::any())
        .respond_with(calls.clone())
        .mount(&server)
        .await;
    (server, calls)
}

#[tokio::test]
async fn each_event_reaches_the_bot_with_its_tenants_clients_and_tokens() {
    let (api, calls) = fake_apis().await;
    let source: Arc<dyn SecretSource> = Arc::new(Editable(Mutex::new(registry())));
    // One document in one secret, as a team might keep it: each function takes its half.
    let ingress_config = Reloading::start(
        Withholding::new(source.clone(), API_TOKENS, "ingress"),
        DEFAULT_REFRESH,
        |var| IngressConfig::from_vars(var),
    )
    .await
    .expect("config");
    let queue = Arc::new(MemoryQueue::like_sqs());
    let ingress = Ingress::reloading(ingress_config, queue.clone());
    for (tenant, request) in genuine_requests() {
        assert_eq!(status(&ingress, request).await, StatusCode::OK, "{tenant}");
    }
    let records: Vec<QueueRecord> = queue
        .drain()
        .into_iter()
        .enumerate()
        .map(|(i, m)| QueueRecord {
            group_id: Some(m.conversation().to_string()),
            ..QueueRecord::new(format!("m{i}"), m.body().to_string())
        })
        .collect();
    assert_eq!(records.len(), 9);
    let worker = Worker::reloading(
        Arc::new(MemoryStore::new()),
        Arc::new(Answering),
        worker_clients(source, &api.uri()).await,
        WorkerConfig::from_vars(|_| None).expect("config"),
    );
    let report = worker
        .process(&records, shared::clock::now_ms() + 20_000)
        .await;
    assert!(report.failed_message_ids().is_empty(), "{report:?}");
    assert_eq!(calls_by_token(&calls), expected_calls());
}

#[ignore = "needs moto: scripts/test.sh runs it; or set GATEWAY_TEST_AWS_ENDPOINT and pass --include-ignored"]
#[tokio::test]
async fn three_tenants_on_aws_each_isolated_and_a_fourth_added_without_a_restart() {
    use shared::adapters::dynamodb::DynamoDbStore;
    use shared::adapters::secrets_manager::SecretsManagerSource;
    use shared::adapters::sqs::{SqsQueue, SqsTuning};
    let Some(endpoint) = testkit::aws_endpoint() else {
        return;
    };
    let sdk = testkit::sdk_config(&endpoint);
    // Least privilege as the template deploys it: each function's half in its own secret.
    let admin = testkit::secrets_client(&endpoint);
    let put = |name: String, fields: &'static [&'static str]| {
        let admin = admin.clone();
        async move {
            let (half, _) = shared::tenants::withhold(&registry().to_string(), fields);
            let value = json!({"TENANTS": serde_json::from_str::<Value>(&half).expect("json")});
            admin
                .create_secret()
                .name(&name)
                .secret_string(value.to_string())
                .send()
                .await
                .expect("create secret");
            name
        }
    };
    let ingress_secret = put(
        testkit::unique_name("ingress-secret"),
        shared::tenants::TOKEN_FIELDS,
    )
    .await;
    let worker_secret = put(
        testkit::unique_name("worker-secret"),
        shared::tenants::SECRET_FIELDS,
    )
    .await;
    let ingress_source = Withholding::new(
        Arc::new(SecretsManagerSource::new(&sdk, &ingress_secret)),
        API_TOKENS,
        "ingress",
    );
    let config = Reloading::start(ingress_source, DEFAULT_REFRESH, |var| {
        IngressConfig::from_vars(var)
    })
    .await
    .expect("ingress settings");
    let sqs = testkit::sqs_client(&endpoint);
    let queue_url = testkit::create_queue(&sqs, true).await;
    let tuning = SqsTuning {
        attempt_timeout: std::time::Duration::from_secs(20),
        max_parallel_calls: 4,
    };
    let queue =
        SqsQueue::new(SqsQueue::client_for_sending(&sdk, tuning), &queue_url).batched(tuning);
    let ingress = Ingress::reloading(config.clone(), Arc::new(queue));
    for (tenant, request) in genuine_requests() {
        assert_eq!(status(&ingress, request).await, StatusCode::OK, "{tenant}");
    }
    let (_, alpha_secret, _) = line_channel("alpha");
    let forged = line_post("alpha", &alpha_secret, line_body(BRAVO_BOT, "forged"));
    assert_eq!(status(&ingress, forged).await, StatusCode::UNAUTHORIZED);
    let forged = meta_post(
        "bravo",
        APP_ONE_SECRET,
        messenger_body(ALPHA_PAGE, "P", "forged"),
    );
    assert_eq!(status(&ingress, forged).await, StatusCode::FORBIDDEN);

    let messages = testkit::drain_queue(&sqs, &queue_url).await;
    assert_eq!(
        messages.len(),
        9,
        "one message per genuine event, none for a forgery"
    );
    let records: Vec<QueueRecord> = messages
        .into_iter()
        .map(|m| QueueRecord {
            group_id: m
                .attributes()
                .and_then(|a| {
                    a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId)
                })
                .cloned(),
            ..QueueRecord::new(
                m.message_id.clone().unwrap_or_default(),
                m.body.clone().unwrap_or_default(),
            )
        })
        .collect();
    let groups: std::collections::BTreeSet<_> =
        records.iter().filter_map(|r| r.group_id.clone()).collect();
    assert_eq!(
        groups.len(),
        9,
        "every tenant's conversation its own message group"
    );
    let dynamodb = testkit::dynamodb_client(&endpoint);
    let table = testkit::create_idempotency_table(&dynamodb).await;
    let (api, calls) = fake_apis().await;
    let worker_source: Arc<dyn SecretSource> =
        Arc::new(SecretsManagerSource::new(&sdk, &worker_secret));
    let worker = Worker::reloading(
        Arc::new(DynamoDbStore::new(dynamodb, table)),
        Arc::new(Answering),
        worker_clients(worker_source, &api.uri()).await,
        WorkerConfig::from_vars(|_| None).expect("config"),
    );
    let report = worker
        .process(&records, shared::clock::now_ms() + 60_000)
        .await;
    assert!(report.failed_message_ids().is_empty(), "{report:?}");
    assert_eq!(calls_by_token(&calls), expected_calls());
    // Delivered again (an SQS duplicate): handled once.
    let again = worker
        .process(&records, shared::clock::now_ms() + 60_000)
        .await;
    assert_eq!(again.count(&shared::worker::RecordOutcome::Duplicate), 9);
    assert_eq!(calls.0.lock().expect("lock").len(), 9);

    // A fourth tenant: the secret changes, the running ingress serves it after its reload.
    let delta_bot = "Ud0000000000000000000000000000004";
    let request = || line_post("delta", "delta-secret", line_body(delta_bot, "d1"));
    assert_eq!(status(&ingress, request()).await, StatusCode::NOT_FOUND);
    let mut document = registry();
    document["delta"] =
        json!({"line": {"bot_user_id": delta_bot, "channel_secrets": ["delta-secret"]}});
    let (half, _) = shared::tenants::withhold(&document.to_string(), shared::tenants::TOKEN_FIELDS);
    admin
        .put_secret_value()
        .secret_id(&ingress_secret)
        .secret_string(
            json!({"TENANTS": serde_json::from_str::<Value>(&half).expect("json")}).to_string(),
        )
        .send()
        .await
        .expect("add a tenant");
    config.reload().await;
    assert_eq!(status(&ingress, request()).await, StatusCode::OK);
}
