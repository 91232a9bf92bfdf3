//! The example bot's own tests: its rules, against a fake LINE and Meta API. They go with the
//! example bot: replace `bot.rs` and its `mod tests;` line goes, and these with it. The
//! gateway's guarantees are tested elsewhere with the gateway's own test bot.

use super::ExampleBot;
use serde_json::{Value, json};
use shared::adapters::memory::MemoryStore;
use shared::worker::{QueueRecord, Worker, WorkerConfig};
use std::sync::Arc;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use testkit::DEMO_BOT as BOT;

struct Setup {
    server: MockServer,
    worker: Worker,
}

impl Setup {
    async fn new() -> Setup {
        let server = MockServer::start().await;
        for (verb, route) in [
            ("POST", "/v2/bot/message/reply"),
            ("POST", "/me/messages"),
            ("POST", "/106540352242922/messages"),
        ] {
            Mock::given(method(verb))
                .and(path(route))
                .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
                .mount(&server)
                .await;
        }
        Mock::given(method("GET"))
            .and(path_regex("^/v2/bot/profile/U[0-9a-f]+$"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"userId": "U4af4980629000000000000000000c0de", "displayName": "Taro"}),
            ))
            .mount(&server)
            .await;
        let worker = Worker::new(
            Arc::new(MemoryStore::new()),
            Arc::new(ExampleBot),
            testkit::fake_api_clients(&server.uri()),
            WorkerConfig::default(),
        );
        Setup { server, worker }
    }

    /// Runs the worker on these queue message bodies; returns the failed ones.
    async fn run(&self, bodies: &[String]) -> usize {
        let records: Vec<QueueRecord> = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| QueueRecord::new(format!("msg-{i}"), body.clone()))
            .collect();
        let report = self
            .worker
            .process(&records, shared::clock::now_ms() + 20_000)
            .await;
        report.failed_message_ids().len()
    }

    async fn requests(&self, wanted: &str) -> Vec<Request> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| {
                wanted.is_empty()
                    || r.url.path() == wanted
                    || (wanted == "profile" && r.url.path().starts_with("/v2/bot/profile/"))
            })
            .collect()
    }

    async fn reply_bodies(&self) -> Vec<Value> {
        self.requests("/v2/bot/message/reply")
            .await
            .iter()
            .map(|r| serde_json::from_slice(&r.body).expect("json"))
            .collect()
    }
}

#[tokio::test]
async fn quotes_the_message_it_answers() {
    let setup = Setup::new().await;
    assert_eq!(
        setup
            .run(&testkit::queued_line_events(&[testkit::line_text_event(
                "Q",
                json!({})
            )]))
            .await,
        0
    );
    let replies = setup.reply_bodies().await;
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0]["replyToken"], "rQ");
    assert_eq!(
        replies[0]["messages"][0],
        json!({"type": "text", "text": "hello Q", "quoteToken": "qQ"})
    );
    let request = &setup.requests("/v2/bot/message/reply").await[0];
    assert_eq!(request.headers["authorization"], "Bearer test-line-token");
}

#[tokio::test]
async fn answers_in_groups_only_when_mentioned() {
    let setup = Setup::new().await;
    let group = json!({"type": "group", "groupId": "Cgroup0000000000000000000000000001", "userId": "U4af4980629000000000000000000c0de"});
    let room = json!({"type": "room", "roomId": "Rroom00000000000000000000000000001", "userId": "U4af4980629000000000000000000c0de"});
    let mentioned = json!({"type": "text", "id": "m1", "text": "@bot hi", "quoteToken": "q1",
        "mention": {"mentionees": [{"index": 0, "length": 4, "type": "user", "userId": BOT, "isSelf": true}]}});
    let someone_else = json!({"type": "text", "id": "m2", "text": "@amy hi", "quoteToken": "q2",
        "mention": {"mentionees": [{"index": 0, "length": 4, "type": "user", "userId": "Uamy", "isSelf": false}]}});
    let events = [
        testkit::line_text_event("G1", json!({"source": group})),
        testkit::line_text_event("G2", json!({"source": group, "message": mentioned})),
        testkit::line_text_event("G3", json!({"source": room, "message": someone_else})),
        testkit::line_text_event(
            "G4",
            json!({"source": room, "message": {"type": "text", "id": "m4", "text": "@All", "quoteToken": "q4",
            "mention": {"mentionees": [{"index": 0, "length": 4, "type": "all"}]}}}),
        ),
    ];
    assert_eq!(setup.run(&testkit::queued_line_events(&events)).await, 0);
    let replies = setup.reply_bodies().await;
    assert_eq!(replies.len(), 1, "only the message that mentions the bot");
    assert_eq!(replies[0]["replyToken"], "rG2");
    assert_eq!(replies[0]["messages"][0]["quoteToken"], "q1");
}

#[tokio::test]
async fn sends_nothing_in_standby() {
    let setup = Setup::new().await;
    let events = [
        testkit::line_text_event("S1", json!({"mode": "standby"})),
        testkit::line_text_event(
            "S2",
            json!({"mode": "standby", "type": "follow", "follow": {"isUnblocked": false}}),
        ),
    ];
    assert_eq!(setup.run(&testkit::queued_line_events(&events)).await, 0);
    assert!(setup.requests("").await.is_empty(), "no call at all");
}

#[tokio::test]
async fn greets_a_follower_by_their_profile_name() {
    let setup = Setup::new().await;
    let follow = testkit::line_text_event(
        "F1",
        json!({"type": "follow", "follow": {"isUnblocked": false}}),
    );
    assert_eq!(setup.run(&testkit::queued_line_events(&[follow])).await, 0);
    assert_eq!(setup.requests("profile").await.len(), 1);
    let replies = setup.reply_bodies().await;
    assert_eq!(
        replies[0]["messages"][0]["text"],
        "Hello, Taro! Thanks for adding me."
    );
}

#[tokio::test]
async fn answers_messenger_and_ignores_echoes() {
    let setup = Setup::new().await;
    let sample = testkit::event_file("sqs-meta-messenger-message.json");
    let body = sample["Records"][0]["body"]
        .as_str()
        .expect("body")
        .to_owned();
    let mut echo: Value = serde_json::from_str(&body).expect("envelope");
    echo["key"] = json!("meta:m_echo");
    echo["event"]["message"] = json!({"mid": "m_echo", "is_echo": true, "text": "our own words"});
    assert_eq!(setup.run(&[body, echo.to_string()]).await, 0);
    let sends = setup.requests("/me/messages").await;
    assert_eq!(sends.len(), 1);
    let sent: Value = serde_json::from_slice(&sends[0].body).expect("json");
    assert_eq!(sent["recipient"]["id"], "2460000000000001");
    assert_eq!(sent["message"]["text"], "Hello from Messenger");
    assert_eq!(sends[0].headers["authorization"], "Bearer test-page-token");
}

#[tokio::test]
async fn answers_whatsapp_in_context_after_marking_it_read_and_ignores_statuses() {
    let setup = Setup::new().await;
    let status = |status: &str| {
        json!([{"id": "wamid.OUT1", "status": status, "timestamp": "1763715601",
                "recipient_id": testkit::DEMO_WHATSAPP_USER}])
    };
    let bodies = testkit::queued_whatsapp(&[
        testkit::whatsapp_change(json!([testkit::whatsapp_text("W1", "hola")]), json!([])),
        testkit::whatsapp_change(json!([]), status("delivered")),
        testkit::whatsapp_change(json!([]), status("read")),
        // A coexistence echo: the business's own message from the WhatsApp Business app.
        json!({"field": "smb_message_echoes", "value": {"messaging_product": "whatsapp",
               "message_echoes": [{"from": "15550783881", "to": testkit::DEMO_WHATSAPP_USER,
                                   "id": "wamid.ECHO", "type": "text", "text": {"body": "sent from the app"}}]}}),
    ]);
    assert_eq!(setup.run(&bodies).await, 0);
    let calls: Vec<Value> = setup
        .requests("/106540352242922/messages")
        .await
        .iter()
        .map(|r| serde_json::from_slice(&r.body).expect("json"))
        .collect();
    assert_eq!(calls.len(), 2, "mark read, then one answer: {calls:?}");
    assert_eq!(
        calls[0],
        json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.W1",
               "typing_indicator": {"type": "text"}})
    );
    assert_eq!(calls[1]["to"], testkit::DEMO_WHATSAPP_USER);
    assert_eq!(calls[1]["context"], json!({"message_id": "wamid.W1"}));
    assert_eq!(calls[1]["text"]["body"], "hola");
}
