//! The conversation archive through the worker, on DynamoDB + S3 on moto and on the embedded
//! SQLite archive, with a fake LINE and Meta API on loopback that counts content downloads:
//! messages and media stored once however often they arrive, edits out of order ending with the
//! newest text, unsend deleting the message and its files (also when it arrives first), a failed
//! download retried to completion by the archive's own follow-up messages while the bot's event
//! is done at once, media that never becomes available given up without a dead letter, profiles
//! stored on follow.
//!
//! The DynamoDB + S3 half needs moto (see `testkit::aws_endpoint`).

use async_trait::async_trait;
use serde_json::{Value, json};
use shared::adapters::dynamodb_archive::DynamoDbArchive;
use shared::adapters::memory::{MemoryQueue, MemoryStore};
use shared::adapters::s3::S3Media;
use shared::adapters::sqlite::SqliteDb;
use shared::adapters::sqlite_archive::SqliteArchive;
use shared::archive::{Archive, ArchiveConfig, ArchivedMessage, MediaState};
use shared::bot::{Bot, BotError, BotEvent};
use shared::clients::Clients;
use shared::ports::{ArchiveStore, EventQueue, MediaStore, QueueMessage};
use shared::worker::{QueueRecord, RecordOutcome, Worker, WorkerConfig};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const BOT: &str = "Uf00000000000000000000000000000b0";
const USER: &str = "U4af4980629000000000000000000c0de";
const GROUP: &str = "Ca56f94637c00000000000000000000gg";
const PAGE: &str = "106000000000001";
const PSID: &str = "2460000000000001";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\npng-bytes";
/// The size of the content API's `big…` files.
const BIG_FILE: usize = 10 * 1024 * 1024;

fn now_ms() -> i64 {
    shared::clock::now_ms()
}

/// A JPEG-looking file (the archive stores the type the bytes show) whose bytes name what it is.
fn jpeg(name: &str) -> Vec<u8> {
    [b"\xFF\xD8\xFF\xE0".as_slice(), name.as_bytes()].concat()
}

/// The fake content API: `content-{id}` / `preview-{id}` as JPEG, counted; fails with 500 while
/// `failing` is set.
#[derive(Clone, Default)]
struct Content {
    downloads: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
}

impl Respond for Content {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if self.failing.load(Ordering::SeqCst) {
            return ResponseTemplate::new(500).set_body_json(json!({"message": "try later"}));
        }
        self.downloads.fetch_add(1, Ordering::SeqCst);
        let parts: Vec<&str> = request.url.path().split('/').collect();
        // /v2/bot/message/{id}/content[/preview]
        let id = parts.get(4).copied().unwrap_or("?");
        let body = if request.url.path().ends_with("/preview") {
            jpeg(&format!("preview-{id}"))
        } else if id.starts_with("big") {
            vec![b'x'; BIG_FILE]
        } else {
            jpeg(&format!("content-{id}"))
        };
        ResponseTemplate::new(200).set_body_raw(body, "image/jpeg")
    }
}

/// Counts the events the wrapped bot saw.
#[derive(Default)]
struct CountingBot(AtomicUsize);

#[async_trait]
impl Bot for CountingBot {
    async fn handle(&self, _event: &BotEvent, _clients: &Clients) -> Result<(), BotError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

struct Setup {
    server: MockServer,
    content: Content,
    store: Arc<dyn ArchiveStore>,
    media: Arc<dyn MediaStore>,
    bot: Arc<CountingBot>,
    follow_ups: Arc<MemoryQueue>,
    _dir: Option<tempfile::TempDir>,
}

impl Setup {
    async fn new(backend: Backend) -> Setup {
        let server = MockServer::start().await;
        let content = Content::default();
        Mock::given(method("GET"))
            .and(path_regex(r"^/v2/bot/message/[^/]+/content(/preview)?$"))
            .respond_with(content.clone())
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(r"^/v2/bot/profile/.+$"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "userId": USER, "displayName": "Taro", "pictureUrl": "https://profile.line-scdn.net/p/taro",
                "statusMessage": "Hello!"
            })))
            .mount(&server)
            .await;
        // WhatsApp media: the id gives a URL, the URL (with the token) the file.
        Mock::given(method("GET"))
            .and(path("/1013859600285441"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "messaging_product": "whatsapp", "url": format!("{}/wa-file/1013859600285441", server.uri()),
                "mime_type": "image/jpeg", "sha256": "x", "file_size": 10, "id": "1013859600285441"})))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/wa-file/1013859600285441"))
            .and(wiremock::matchers::header(
                "authorization",
                "Bearer test-whatsapp-token",
            ))
            .respond_with(ResponseTemplate::new(200).set_body_raw(jpeg("wa-photo"), "image/jpeg"))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/cdn/photo.png"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(PNG.to_vec(), "image/png"))
            .mount(&server)
            .await;
        let (store, media, dir): (Arc<dyn ArchiveStore>, Arc<dyn MediaStore>, _) = match backend {
            Backend::Aws(endpoint) => {
                let dynamodb = testkit::dynamodb_client(&endpoint);
                let table = testkit::create_archive_table(&dynamodb).await;
                let s3 = testkit::s3_client(&endpoint);
                let bucket = testkit::create_bucket(&s3).await;
                (
                    Arc::new(DynamoDbArchive::new(dynamodb, table)),
                    Arc::new(S3Media::new(s3, bucket)),
                    None,
                )
            }
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let db = SqliteDb::open(&dir.path().join("archive.db")).expect("database");
                let archive = Arc::new(SqliteArchive::new(db));
                (archive.clone(), archive, Some(dir))
            }
        };
        Setup {
            server,
            content,
            store,
            media,
            bot: Arc::default(),
            follow_ups: Arc::new(MemoryQueue::new()),
            _dir: dir,
        }
    }

    fn clients(&self) -> Clients {
        testkit::fake_api_clients(&self.server.uri())
    }

    /// A worker with its own idempotency store: a new one lets every event through again, as a
    /// redelivery after the idempotency record expired would.
    fn worker(&self) -> Worker {
        let archive = Archive::new(
            Arc::clone(&self.store),
            Arc::clone(&self.media),
            ArchiveConfig {
                // The fake Meta CDN is on loopback.
                fetch: shared::clients::fetch::FetchPolicy::allowing_loopback_for_tests(),
                ..ArchiveConfig::default()
            },
        );
        Worker::new(
            Arc::new(MemoryStore::new()),
            self.bot.clone(),
            self.clients(),
            WorkerConfig::default(),
        )
        .with_archive(Arc::new(archive), self.follow_ups.clone())
    }

    /// Delivers the archive's follow-up messages queued so far, as the queue would on their
    /// `receive_count`-th receive; those that fail are queued again (the queue brings them back).
    async fn deliver_follow_ups(&self, worker: &Worker, receive_count: u32) -> Vec<RecordOutcome> {
        let messages = self.follow_ups.drain();
        let records: Vec<QueueRecord> = records(&messages)
            .into_iter()
            .map(|r| QueueRecord { receive_count, ..r })
            .collect();
        let report = worker.process(&records, now_ms() + 4_000).await;
        for ((_, outcome), message) in report.outcomes.iter().zip(&messages) {
            if outcome.is_failure() {
                self.follow_ups
                    .send_all(
                        std::slice::from_ref(message),
                        tokio::time::Instant::now() + std::time::Duration::from_secs(1),
                    )
                    .await
                    .expect("requeue");
            }
        }
        report.outcomes.into_iter().map(|(_, o)| o).collect()
    }

    async fn history(&self, conversation: &str) -> Vec<ArchivedMessage> {
        self.store
            .history(conversation, 100, now_ms())
            .await
            .expect("history")
    }
}

enum Backend {
    Aws(String),
    Sqlite,
}

/// The queue messages the ingress writes for a LINE body with these events.
fn line_queue(events: &[Value]) -> Vec<QueueMessage> {
    let body = json!({"destination": BOT, "events": events}).to_string();
    let callback = shared::line::Callback::parse(body.as_bytes()).expect("callback");
    let options = shared::ingress::SplitOptions::for_body(body.as_bytes(), now_ms(), 1 << 20);
    shared::ingress::line_messages(&callback, &options)
        .expect("messages")
        .messages
}

fn meta_queue(messaging: &[Value]) -> Vec<QueueMessage> {
    let body = json!({"object": "page", "entry": [{"id": PAGE, "time": now_ms(), "messaging": messaging}]})
        .to_string();
    let notification = shared::meta::Notification::parse(body.as_bytes()).expect("notification");
    let options = shared::ingress::SplitOptions::for_body(body.as_bytes(), now_ms(), 1 << 20);
    shared::ingress::meta_messages(&notification, &options)
        .expect("messages")
        .messages
}

fn records(messages: &[QueueMessage]) -> Vec<QueueRecord> {
    messages
        .iter()
        .enumerate()
        .map(|(i, m)| QueueRecord::new(format!("q{i}"), m.body().to_string()))
        .collect()
}

async fn deliver(worker: &Worker, messages: &[QueueMessage]) -> Vec<RecordOutcome> {
    worker
        .process(&records(messages), now_ms() + 4_000)
        .await
        .outcomes
        .into_iter()
        .map(|(_, outcome)| outcome)
        .collect()
}

fn line_event(kind: &str, body: Value, id: &str, timestamp: i64) -> Value {
    let mut event = json!({
        "type": kind, "webhookEventId": format!("01JARCHIVE{id}"), "timestamp": timestamp,
        "deliveryContext": {"isRedelivery": false}, "mode": "active",
        "source": {"type": "group", "groupId": GROUP, "userId": USER},
        "replyToken": format!("r{id}")
    });
    if let (Some(event), Some(body)) = (event.as_object_mut(), body.as_object()) {
        event.extend(body.clone());
    }
    event
}

fn line_message(message: Value, id: &str, timestamp: i64) -> Value {
    line_event("message", json!({"message": message}), id, timestamp)
}

fn conversation() -> String {
    format!("line:{BOT}:group:{GROUP}")
}

async fn run_all(backend: impl Fn() -> Backend) {
    messages_and_media_are_stored_once(Setup::new(backend()).await).await;
    edits_out_of_order_end_with_the_newest(Setup::new(backend()).await).await;
    unsend_deletes_and_is_remembered(Setup::new(backend()).await).await;
    failed_downloads_are_retried(Setup::new(backend()).await).await;
    media_that_stays_unavailable_is_given_up(Setup::new(backend()).await).await;
    follow_stores_the_profile(Setup::new(backend()).await).await;
    meta_messages_attachments_and_edits(Setup::new(backend()).await).await;
    whatsapp_messages_media_revokes_edits_and_statuses(Setup::new(backend()).await).await;
}

#[ignore = "needs moto: scripts/test.sh runs it; or set GATEWAY_TEST_AWS_ENDPOINT and pass --include-ignored"]
#[tokio::test]
async fn the_archive_on_dynamodb_and_s3() {
    let Some(endpoint) = testkit::aws_endpoint() else {
        return;
    };
    run_all(|| Backend::Aws(endpoint.clone())).await;
}

#[tokio::test]
async fn the_archive_on_sqlite() {
    run_all(|| Backend::Sqlite).await;
}

async fn messages_and_media_are_stored_once(setup: Setup) {
    let t = 1_763_715_600_000;
    let queue = line_queue(&[
        line_message(
            json!({"id": "m1", "type": "text", "text": "hello"}),
            "a1",
            t,
        ),
        line_message(
            json!({"id": "m2", "type": "image", "contentProvider": {"type": "line"}}),
            "a2",
            t + 1,
        ),
        line_message(
            json!({"id": "m3", "type": "video", "duration": 1000, "contentProvider": {"type": "line"}}),
            "a3",
            t + 2,
        ),
        line_message(
            json!({"id": "m4", "type": "audio", "duration": 1000, "contentProvider": {"type": "line"}}),
            "a4",
            t + 3,
        ),
        line_message(
            json!({"id": "m5", "type": "file", "fileName": "a.pdf", "fileSize": 10}),
            "a5",
            t + 4,
        ),
        line_message(
            json!({"id": "m6", "type": "image", "contentProvider": {"type": "external",
            "originalContentUrl": "https://example.com/a.jpg", "previewImageUrl": "https://example.com/p.jpg"}}),
            "a6",
            t + 5,
        ),
        line_message(
            json!({"id": "m7", "type": "sticker", "packageId": "1", "stickerId": "2", "stickerResourceType": "STATIC"}),
            "a7",
            t + 6,
        ),
    ]);
    let worker = setup.worker();
    // Twice through one worker (the idempotency store drops the second), then through a fresh
    // one (the archive itself must not store twice).
    for (round, worker) in [&worker, &worker, &setup.worker()].into_iter().enumerate() {
        let outcomes = deliver(worker, &queue).await;
        assert!(
            outcomes.iter().all(|o| !o.is_failure()),
            "round {round}: {outcomes:?}"
        );
    }
    // image and video: content and preview; audio and file: content; external: nothing.
    assert_eq!(
        setup.content.downloads.load(Ordering::SeqCst),
        6,
        "each file downloaded once"
    );
    let history = setup.history(&conversation()).await;
    let ids: Vec<&str> = history.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids, ["m1", "m2", "m3", "m4", "m5", "m6", "m7"]);
    let kinds: Vec<&str> = history.iter().map(|m| m.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "text", "image", "video", "audio", "file", "image", "sticker"
        ]
    );
    assert_eq!(history[0].text.as_deref(), Some("hello"));
    assert_eq!(history[0].sender.as_deref(), Some(USER));
    assert_eq!(history[0].sent_at, Some(t));
    assert_eq!(
        history[6]
            .event
            .as_ref()
            .and_then(|e| e["message"]["stickerId"].as_str()),
        Some("2")
    );
    for message in &history {
        for media in &message.media {
            let expected = jpeg(&format!("{}-{}", media.role, message.message_id));
            assert_eq!(
                media.state,
                MediaState::Stored {
                    content_type: "image/jpeg".into(),
                    bytes: expected.len() as u64
                },
                "{}",
                media.object_key
            );
            let stored = setup.media.get(&media.object_key).await.expect("get");
            assert_eq!(
                stored,
                Some(("image/jpeg".into(), bytes::Bytes::from(expected))),
                "{}",
                media.object_key
            );
        }
    }
    assert!(
        history[5].media.is_empty(),
        "external content is not fetched"
    );
    assert_eq!(
        setup.bot.0.load(Ordering::SeqCst),
        14,
        "the bot ran once per event per fresh store"
    );
}

async fn edits_out_of_order_end_with_the_newest(setup: Setup) {
    let t = 1_763_715_700_000;
    let text = |text: &str| json!({"id": "e1", "type": "text", "text": text});
    let original = line_queue(&[line_message(text("v0"), "e0", t)]);
    let edit = |n: i64| {
        line_queue(&[line_event(
            "messageEdited",
            json!({"message": text(&format!("v{n}"))}),
            &format!("e{n}"),
            t + n * 1000,
        )])
    };
    let worker = setup.worker();
    // An edit first, then the original, then the other edits newest first.
    for queue in [edit(2), original, edit(3), edit(1)] {
        let outcomes = deliver(&worker, &queue).await;
        assert_eq!(outcomes, [RecordOutcome::Handled]);
    }
    let history = setup.history(&conversation()).await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].text.as_deref(), Some("v3"));
    assert_eq!(
        history[0].sent_at,
        Some(t),
        "the original gives the send time"
    );
    assert!(history[0].edited);
}

async fn unsend_deletes_and_is_remembered(setup: Setup) {
    let t = 1_763_715_800_000;
    let image = |id: &str| json!({"id": id, "type": "image", "contentProvider": {"type": "line"}});
    let unsend = |id: &str, event: &str, at| {
        line_queue(&[line_event(
            "unsend",
            json!({"unsend": {"messageId": id}}),
            event,
            at,
        )])
    };
    let worker = setup.worker();
    deliver(&worker, &line_queue(&[line_message(image("u1"), "u1", t)])).await;
    let stored = setup.history(&conversation()).await;
    assert_eq!(stored.len(), 1);
    let keys: Vec<String> = stored[0]
        .media
        .iter()
        .map(|m| m.object_key.clone())
        .collect();
    assert_eq!(keys.len(), 2);
    for key in &keys {
        assert!(setup.media.get(key).await.expect("get").is_some());
    }

    assert_eq!(
        deliver(&worker, &unsend("u1", "u1x", t + 10)).await,
        [RecordOutcome::Handled]
    );
    assert!(
        setup.history(&conversation()).await.is_empty(),
        "unsent messages leave the history"
    );
    for key in &keys {
        assert_eq!(
            setup.media.get(key).await.expect("get"),
            None,
            "{key} deleted"
        );
    }
    let tombstone = setup
        .store
        .load(&conversation(), "u1")
        .await
        .expect("load")
        .expect("tombstone");
    assert_eq!(tombstone.text, None);
    assert_eq!(tombstone.event, None);
    assert!(tombstone.pending_deletes.is_empty());

    // The unsend arrives before its message: the message is never stored, nor fetched.
    let downloads = setup.content.downloads.load(Ordering::SeqCst);
    deliver(&worker, &unsend("u2", "u2x", t + 30)).await;
    deliver(
        &worker,
        &line_queue(&[line_message(image("u2"), "u2", t + 20)]),
    )
    .await;
    // A redelivery of the first message after its unsend is kept out too.
    deliver(
        &setup.worker(),
        &line_queue(&[line_message(image("u1"), "u1", t)]),
    )
    .await;
    assert!(setup.history(&conversation()).await.is_empty());
    assert_eq!(
        setup.content.downloads.load(Ordering::SeqCst),
        downloads,
        "nothing fetched"
    );
    for id in ["u1", "u2"] {
        let tombstone = setup
            .store
            .load(&conversation(), id)
            .await
            .expect("load")
            .expect("tombstone");
        assert_eq!(tombstone.text, None, "{id}");
        assert_eq!(
            tombstone.event, None,
            "{id}: no copy of the message is kept"
        );
        assert!(tombstone.media.is_empty(), "{id}");
        assert_eq!(tombstone.sender, None, "{id}");
    }
}

/// Issue 13, defect 6: the archive ran before the bot, so a media failure failed the event for
/// the visibility timeout, by which time LINE's reply token had expired. Now the bot runs first
/// and its event is done; the archive retries on its own.
async fn failed_downloads_are_retried(setup: Setup) {
    let t = 1_763_715_900_000;
    let queue = line_queue(&[line_message(
        json!({"id": "f1", "type": "image", "contentProvider": {"type": "line"}}),
        "f1",
        t,
    )]);
    let worker = setup.worker();
    setup.content.failing.store(true, Ordering::SeqCst);
    assert_eq!(
        deliver(&worker, &queue).await,
        [RecordOutcome::Handled],
        "the bot's event is done at once"
    );
    assert_eq!(
        setup.bot.0.load(Ordering::SeqCst),
        1,
        "the bot did not wait for the media"
    );
    let history = setup.history(&conversation()).await;
    assert_eq!(history.len(), 1, "the message is stored all the same");
    assert!(
        history[0]
            .media
            .iter()
            .all(|m| m.state == MediaState::Pending)
    );

    setup.content.failing.store(false, Ordering::SeqCst);
    assert_eq!(
        setup.deliver_follow_ups(&worker, 1).await,
        [RecordOutcome::Handled],
        "the archive's follow-up completes"
    );
    let history = setup.history(&conversation()).await;
    assert!(
        history[0]
            .media
            .iter()
            .all(|m| matches!(m.state, MediaState::Stored { .. })),
        "{:?}",
        history[0].media
    );
    assert_eq!(setup.content.downloads.load(Ordering::SeqCst), 2);
    assert_eq!(setup.bot.0.load(Ordering::SeqCst), 1, "the bot ran once");
    assert!(setup.follow_ups.drain().is_empty());
}

/// A video that stays "preparing" (or a CDN that keeps failing) used to send the event to the
/// dead-letter queue before the bot ever saw it. Now the archive gives the file up on its last
/// attempt, and nothing is dead-lettered.
async fn media_that_stays_unavailable_is_given_up(setup: Setup) {
    let t = 1_763_715_950_000;
    let queue = line_queue(&[line_message(
        json!({"id": "g1", "type": "video", "duration": 1, "contentProvider": {"type": "line"}}),
        "g1",
        t,
    )]);
    let worker = setup.worker();
    setup.content.failing.store(true, Ordering::SeqCst);
    assert_eq!(deliver(&worker, &queue).await, [RecordOutcome::Handled]);
    let attempts = worker.config().archive_attempts;
    for receive in 1..attempts {
        assert_eq!(
            setup.deliver_follow_ups(&worker, receive).await,
            [RecordOutcome::Failed],
            "receive {receive}: retried"
        );
    }
    assert_eq!(
        setup.deliver_follow_ups(&worker, attempts).await,
        [RecordOutcome::Handled],
        "the last attempt gives the media up"
    );
    let history = setup.history(&conversation()).await;
    assert!(
        history[0].media.iter().all(|m| matches!(&m.state,
            MediaState::Failed { reason } if reason.starts_with("still unavailable at the last attempt"))),
        "{:?}",
        history[0].media
    );
    assert_eq!(setup.bot.0.load(Ordering::SeqCst), 1);
    assert!(setup.follow_ups.drain().is_empty());
}

async fn follow_stores_the_profile(setup: Setup) {
    let queue = line_queue(&[json!({
        "type": "follow", "webhookEventId": "01JARCHIVEFOLLOW", "timestamp": 1_763_716_000_000_i64,
        "deliveryContext": {"isRedelivery": false}, "mode": "active",
        "source": {"type": "user", "userId": USER}, "replyToken": "rf", "follow": {"isUnblocked": false}
    })]);
    assert_eq!(
        deliver(&setup.worker(), &queue).await,
        [RecordOutcome::Handled]
    );
    let profiles = setup
        .store
        .profiles(queue[0].conversation(), now_ms())
        .await
        .expect("profiles");
    assert_eq!(profiles.len(), 1);
    assert_eq!(profiles[0].user_id, USER);
    assert_eq!(profiles[0].display_name, "Taro");
    assert_eq!(
        profiles[0].picture_url.as_deref(),
        Some("https://profile.line-scdn.net/p/taro")
    );
    assert_eq!(profiles[0].status_message.as_deref(), Some("Hello!"));
}

async fn meta_messages_attachments_and_edits(setup: Setup) {
    let t = 1_763_716_100_000_i64;
    let item = |body: Value, at: i64| {
        let mut item = json!({"sender": {"id": PSID}, "recipient": {"id": PAGE}, "timestamp": at});
        if let (Some(item), Some(body)) = (item.as_object_mut(), body.as_object()) {
            item.extend(body.clone());
        }
        item
    };
    let photo = format!("{}/cdn/photo.png", setup.server.uri());
    let message = meta_queue(&[item(
        json!({"message": {"mid": "m_photo", "text": "look", "attachments": [{"type": "image", "payload": {"url": photo}}]}}),
        t,
    )]);
    let edit = |n: i64| {
        meta_queue(&[item(
            json!({"message_edit": {"mid": "m_photo", "text": format!("look {n}"), "num_edit": n}}),
            t + 1000,
        )])
    };
    let worker = setup.worker();
    for queue in [&message, &edit(2), &edit(1), &message] {
        let outcomes = deliver(&worker, queue).await;
        assert!(outcomes.iter().all(|o| !o.is_failure()), "{outcomes:?}");
    }
    let history = setup.history(message[0].conversation()).await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].text.as_deref(), Some("look 2"));
    assert_eq!(history[0].sender.as_deref(), Some(PSID));
    let media = &history[0].media;
    assert_eq!(media.len(), 1);
    assert_eq!(
        setup.media.get(&media[0].object_key).await.expect("get"),
        Some(("image/png".into(), bytes::Bytes::from_static(PNG)))
    );

    // Instagram's unsend: the same mid again, with `is_deleted`.
    let deleted = meta_queue(&[item(
        json!({"message": {"mid": "m_photo", "is_deleted": true}}),
        t + 5000,
    )]);
    assert_eq!(deliver(&worker, &deleted).await, [RecordOutcome::Handled]);
    assert!(setup.history(message[0].conversation()).await.is_empty());
    assert_eq!(
        setup.media.get(&media[0].object_key).await.expect("get"),
        None
    );
}

async fn whatsapp_messages_media_revokes_edits_and_statuses(setup: Setup) {
    let t = 1_763_716_200;
    let message = |id: &str, at: i64, body: Value| {
        let mut message =
            json!({"from": testkit::DEMO_WHATSAPP_USER, "id": id, "timestamp": at.to_string()});
        if let (Some(message), Some(body)) = (message.as_object_mut(), body.as_object()) {
            message.extend(body.clone());
        }
        message
    };
    let queue = |messages: Value, statuses: Value| {
        whatsapp_queue(&[testkit::whatsapp_change(messages, statuses)])
    };
    let text = queue(
        json!([message(
            "wamid.T1",
            t,
            json!({"type": "text", "text": {"body": "hola"}})
        )]),
        json!([]),
    );
    let photo = queue(
        json!([message(
            "wamid.P1",
            t + 1,
            json!({"type": "image", "image": {
            "id": "1013859600285441", "mime_type": "image/jpeg", "sha256": "x", "caption": "my cat"}})
        )]),
        json!([]),
    );
    let edit = queue(
        json!([message(
            "wamid.E1",
            t + 5,
            json!({"type": "edit", "edit": {
            "original_message_id": "wamid.T1",
            "message": {"type": "text", "text": {"body": "hola!"}}}})
        )]),
        json!([]),
    );
    let revoke = queue(
        json!([message(
            "wamid.R1",
            t + 9,
            json!({"type": "revoke", "revoke": {"original_message_id": "wamid.P1"}})
        )]),
        json!([]),
    );
    let status = |kind: &str, at: i64| {
        let mut status = json!({"id": "wamid.OUT1", "status": kind, "timestamp": at.to_string(),
            "recipient_id": testkit::DEMO_WHATSAPP_USER});
        if kind == "failed" {
            status["errors"] = json!([{"code": 131026, "title": "Message undeliverable"}]);
        }
        queue(json!([]), json!([status]))
    };
    let worker = setup.worker();
    for queue in [
        &text,
        &photo,
        &edit,
        &text,
        &status("read", t + 3),
        &status("delivered", t + 2),
    ] {
        deliver_all(&worker, queue).await;
    }
    let conversation = text[0].conversation().to_owned();
    let history = setup.history(&conversation).await;
    let by_id = |id: &str| history.iter().find(|m| m.message_id == id).cloned();
    let hola = by_id("wamid.T1").expect("the text is archived");
    assert_eq!(hola.text.as_deref(), Some("hola!"), "the edit applied");
    assert!(hola.edited);
    assert_eq!(hola.sender.as_deref(), Some(testkit::DEMO_WHATSAPP_USER));
    let cat = by_id("wamid.P1").expect("the photo is archived");
    assert_eq!(cat.kind, "image");
    assert_eq!(cat.text.as_deref(), Some("my cat"));
    assert!(
        matches!(cat.media[0].state, MediaState::Stored { .. }),
        "{:?}",
        cat.media
    );
    let object = cat.media[0].object_key.clone();
    assert_eq!(
        setup.media.get(&object).await.expect("get").map(|(_, b)| b),
        Some(bytes::Bytes::from(jpeg("wa-photo"))),
        "fetched through its media id, with the token"
    );
    // The statuses of a message the business sent: the furthest wins, whatever their order.
    let sent = setup
        .store
        .load(status("read", 0)[0].conversation(), "wamid.OUT1")
        .await
        .expect("load")
        .expect("a record of the sent message");
    assert_eq!(sent.delivery.map(|d| d.status), Some("read".to_owned()));

    // Coexistence: what the business sent from the WhatsApp Business app lands in the same
    // conversation, and its own revoke deletes it.
    let echo = |body: Value| {
        let change = json!({"field": "smb_message_echoes", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": testkit::DEMO_WHATSAPP_NUMBER},
            "message_echoes": [body]}});
        whatsapp_queue(&[change])
    };
    let from_app = echo(
        json!({"from": "15550783881", "to": testkit::DEMO_WHATSAPP_USER,
        "id": "wamid.ECHO1", "timestamp": (t + 6).to_string(), "type": "text", "text": {"body": "we open at 9"}}),
    );
    assert_eq!(
        from_app[0].conversation(),
        conversation,
        "the echo is in the user's conversation"
    );
    deliver_all(&worker, &from_app).await;
    let stored = setup.history(&conversation).await;
    let ours = stored
        .iter()
        .find(|m| m.message_id == "wamid.ECHO1")
        .expect("the echo is archived");
    assert_eq!(ours.sender.as_deref(), Some("15550783881"));
    let taken_back = echo(
        json!({"from": "15550783881", "to": testkit::DEMO_WHATSAPP_USER,
        "id": "wamid.ECHO2", "timestamp": (t + 7).to_string(), "type": "revoke",
        "revoke": {"original_message_id": "wamid.ECHO1"}}),
    );
    deliver_all(&worker, &taken_back).await;
    assert!(
        setup
            .history(&conversation)
            .await
            .iter()
            .all(|m| m.message_id != "wamid.ECHO1")
    );

    // The user deletes the photo: its record and file go.
    deliver_all(&worker, &revoke).await;
    assert!(
        setup
            .history(&conversation)
            .await
            .iter()
            .all(|m| m.message_id != "wamid.P1")
    );
    assert_eq!(setup.media.get(&object).await.expect("get"), None);
}

/// Delivers `messages` and checks that none failed.
async fn deliver_all(worker: &Worker, messages: &[QueueMessage]) {
    let outcomes = deliver(worker, messages).await;
    assert!(outcomes.iter().all(|o| !o.is_failure()), "{outcomes:?}");
}

/// The queue messages the ingress writes for a WhatsApp notification with these changes.
fn whatsapp_queue(changes: &[Value]) -> Vec<QueueMessage> {
    testkit::queued_whatsapp(changes)
        .into_iter()
        .map(|body| {
            let envelope: Value = serde_json::from_str(&body).expect("envelope");
            QueueMessage::new(
                envelope["key"].as_str().unwrap_or_default(),
                envelope["conversation"].as_str().unwrap_or_default(),
                shared::Platform::Meta,
                &body,
            )
        })
        .collect()
}

/// A media store that takes its time to store (as S3 does for a large object) and records the
/// most bytes it held at once.
#[derive(Default)]
struct SlowMedia {
    holding: AtomicUsize,
    most: AtomicUsize,
}

#[async_trait]
impl MediaStore for SlowMedia {
    async fn put(
        &self,
        _key: &str,
        _content_type: &str,
        bytes: bytes::Bytes,
    ) -> Result<(), shared::ports::ArchiveError> {
        let now = self.holding.fetch_add(bytes.len(), Ordering::SeqCst) + bytes.len();
        self.most.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        self.holding.fetch_sub(bytes.len(), Ordering::SeqCst);
        Ok(())
    }
    async fn get(
        &self,
        _key: &str,
    ) -> Result<Option<(String, bytes::Bytes)>, shared::ports::ArchiveError> {
        Ok(None)
    }
    async fn delete(&self, _key: &str) -> Result<(), shared::ports::ArchiveError> {
        Ok(())
    }
}

/// Issue 13, defect 7: each download was buffered whole and eight conversations ran at once, so
/// eight large images peaked at 575 MiB in a 128 MB worker. Now the bytes held at once are capped.
#[tokio::test]
async fn eight_large_images_at_once_stay_within_the_memory_budget() {
    let setup = Setup::new(Backend::Sqlite).await;
    let media = Arc::new(SlowMedia::default());
    let budget = 32 * 1024 * 1024;
    let archive = Archive::new(
        Arc::clone(&setup.store),
        media.clone(),
        ArchiveConfig {
            max_bytes_in_flight: budget,
            ..ArchiveConfig::default()
        },
    );
    let worker = Worker::new(
        Arc::new(MemoryStore::new()),
        setup.bot.clone(),
        setup.clients(),
        WorkerConfig {
            concurrency: 8,
            ..WorkerConfig::default()
        },
    )
    .with_archive(Arc::new(archive), setup.follow_ups.clone());
    let events: Vec<Value> = (0..8)
        .map(|i| {
            let mut event = line_message(
                json!({"id": format!("big{i}"), "type": "image", "contentProvider": {"type": "line"}}),
                &format!("big{i}"),
                1_763_716_200_000 + i,
            );
            // Eight conversations, so that all eight run at once.
            event["source"] = json!({"type": "user", "userId": format!("U{i:032}")});
            event
        })
        .collect();
    let outcomes = worker
        .process(&records(&line_queue(&events)), now_ms() + 20_000)
        .await;
    assert_eq!(outcomes.count(&RecordOutcome::Handled), 8, "{outcomes:?}");
    assert!(
        setup.follow_ups.drain().is_empty(),
        "every file stored in the invocation"
    );
    let most = media.most.load(Ordering::SeqCst);
    assert!(most >= BIG_FILE, "the files went through the store");
    assert!(
        most <= budget,
        "held {} MiB at once, over the {} MiB budget",
        most >> 20,
        budget >> 20
    );
}
