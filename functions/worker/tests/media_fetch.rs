//! Issue 15: the archive fetches attachment URLs from webhook payloads, so a payload must not be
//! able to point the worker at anything but the platform's media servers (SSRF). These tests run
//! the worker's archive on SQLite against servers on loopback that count what reaches them:
//! loopback, the instance metadata address, plain `http`, hosts outside the allowed list, names
//! that resolve to loopback, redirects to any of those and redirect loops are all refused before a
//! byte is sent, and marked failed for good rather than retried; a file larger than the limit is
//! cut off while it streams; the stored content type is the bytes' own, not the server's claim.

use async_trait::async_trait;
use serde_json::{Value, json};
use shared::adapters::memory::{MemoryQueue, MemoryStore};
use shared::adapters::sqlite::SqliteDb;
use shared::adapters::sqlite_archive::SqliteArchive;
use shared::archive::{Archive, ArchiveConfig, ArchivedMessage, MediaState};
use shared::bot::{Bot, BotError, BotEvent};
use shared::clients::Clients;
use shared::clients::fetch::FetchPolicy;
use shared::ports::{ArchiveStore, MediaStore, QueueMessage};
use shared::worker::{QueueRecord, RecordOutcome, Worker, WorkerConfig};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const PAGE: &str = "106000000000001";
const PSID: &str = "2460000000000001";
const JPEG: &[u8] = b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00 a small jpeg";

struct NoBot;

#[async_trait]
impl Bot for NoBot {
    async fn handle(&self, _event: &BotEvent, _clients: &Clients) -> Result<(), BotError> {
        Ok(())
    }
}

/// Counts every request, whatever its path, and answers with `answer`.
#[derive(Clone)]
struct Counting {
    hits: Arc<AtomicUsize>,
    answer: ResponseTemplate,
}

impl Respond for Counting {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        self.hits.fetch_add(1, Ordering::SeqCst);
        self.answer.clone()
    }
}

/// A server on loopback answering every request with `answer`; its request count.
async fn server(answer: ResponseTemplate) -> (MockServer, Arc<AtomicUsize>) {
    let server = MockServer::start().await;
    let hits = Arc::new(AtomicUsize::new(0));
    Mock::given(method("GET"))
        .respond_with(Counting {
            hits: hits.clone(),
            answer,
        })
        .mount(&server)
        .await;
    (server, hits)
}

struct Setup {
    store: Arc<SqliteArchive>,
    worker: Worker,
    _dir: tempfile::TempDir,
}

fn setup(config: ArchiveConfig) -> Setup {
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = SqliteDb::open(&dir.path().join("archive.db")).expect("database");
    let store = Arc::new(SqliteArchive::new(db));
    let archive = Archive::new(store.clone(), store.clone(), config);
    let worker = Worker::new(
        Arc::new(MemoryStore::new()),
        Arc::new(NoBot),
        Clients::default(),
        WorkerConfig::default(),
    )
    .with_archive(Arc::new(archive), Arc::new(MemoryQueue::new()));
    Setup {
        store,
        worker,
        _dir: dir,
    }
}

/// A Messenger message with one image attachment per URL.
fn message_with(urls: &[String]) -> Vec<QueueMessage> {
    let now = shared::clock::now_ms();
    let attachments: Vec<Value> = urls
        .iter()
        .map(|url| json!({"type": "image", "payload": {"url": url}}))
        .collect();
    let body = json!({"object": "page", "entry": [{"id": PAGE, "time": now, "messaging": [{
        "sender": {"id": PSID}, "recipient": {"id": PAGE}, "timestamp": now,
        "message": {"mid": "m_hostile", "attachments": attachments}
    }]}]})
    .to_string();
    let notification = shared::meta::Notification::parse(body.as_bytes()).expect("notification");
    let options = shared::ingress::SplitOptions::for_body(body.as_bytes(), now, 1 << 20);
    shared::ingress::meta_messages(&notification, &options)
        .expect("messages")
        .messages
}

impl Setup {
    /// Delivers a message with these attachment URLs once; the archived record.
    async fn archive(&self, urls: &[String]) -> ArchivedMessage {
        let messages = message_with(urls);
        let records: Vec<QueueRecord> = messages
            .iter()
            .map(|m| QueueRecord::new("q0", m.body().to_string()))
            .collect();
        let report = self
            .worker
            .process(&records, shared::clock::now_ms() + 8_000)
            .await;
        let outcomes: Vec<&RecordOutcome> = report.outcomes.iter().map(|(_, o)| o).collect();
        assert_eq!(outcomes, [&RecordOutcome::Handled], "{outcomes:?}");
        let history = self
            .store
            .history(messages[0].conversation(), 10, shared::clock::now_ms())
            .await
            .expect("history");
        assert_eq!(history.len(), 1, "the message itself is archived");
        history.into_iter().next().expect("one record")
    }
}

fn failure(media: &shared::archive::Media) -> &str {
    match &media.state {
        MediaState::Failed { reason } => reason,
        other => panic!("{} should have failed for good: {other:?}", media.role),
    }
}

/// The production policy: Meta's CDNs over https only. Before issue 15 the archive fetched each of
/// these (and a payload could read the metadata service through it).
#[tokio::test]
async fn urls_outside_the_media_hosts_are_never_requested() {
    let (target, hits) = server(ResponseTemplate::new(200).set_body_raw(JPEG, "image/jpeg")).await;
    let port = target.address().port();
    let setup = setup(ArchiveConfig::default());
    let urls = [
        format!("{}/loopback.jpg", target.uri()),
        format!("https://127.0.0.1:{port}/https-loopback.jpg"),
        format!("http://localhost:{port}/name.jpg"),
        format!("https://[::1]:{port}/v6.jpg"),
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/".to_owned(),
        "https://[fd00:ec2::254]/latest/meta-data/".to_owned(),
        "http://scontent.xx.fbcdn.net/v/plain-http.jpg".to_owned(),
        "https://fbcdn.net.attacker.example/look-alike.jpg".to_owned(),
        "file:///etc/passwd".to_owned(),
    ];
    let record = setup.archive(&urls).await;
    assert_eq!(record.media.len(), urls.len());
    for media in &record.media {
        let reason = failure(media);
        assert!(reason.contains("not fetched"), "{}: {reason}", media.role);
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing reached loopback");
}

/// A name on the allowed list that resolves to loopback is refused after DNS: the check is on the
/// address the connection would use, not on the name.
#[tokio::test]
async fn a_name_that_resolves_to_a_private_address_is_refused() {
    let (target, hits) = server(ResponseTemplate::new(200).set_body_raw(JPEG, "image/jpeg")).await;
    let setup = setup(ArchiveConfig {
        fetch: FetchPolicy {
            allowed_hosts: vec!["localhost".into()],
            // Plain http, so that only the address check stands in the way.
            allow_loopback_for_tests: true,
        },
        ..ArchiveConfig::default()
    });
    let url = format!("http://localhost:{}/photo.jpg", target.address().port());
    let record = setup.archive(&[url]).await;
    let reason = failure(&record.media[0]);
    assert!(reason.contains("no public address"), "{reason}");
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

/// Every redirect hop is checked like the first URL, and there are at most three.
#[tokio::test]
async fn redirects_are_checked_and_capped() {
    let (inner, inner_hits) =
        server(ResponseTemplate::new(200).set_body_raw(JPEG, "image/jpeg")).await;
    let outer = MockServer::start().await;
    let inner_port = inner.address().port();
    for (from, to) in [
        ("/to-name", format!("http://localhost:{inner_port}/secret")),
        (
            "/to-metadata",
            "http://169.254.169.254/latest/meta-data/".to_owned(),
        ),
        ("/to-file", "file:///etc/passwd".to_owned()),
        ("/loop", format!("{}/loop", outer.uri())),
        ("/ok", format!("{}/photo.jpg", inner.uri())),
    ] {
        Mock::given(method("GET"))
            .and(path(from))
            .respond_with(ResponseTemplate::new(302).insert_header("location", to.as_str()))
            .mount(&outer)
            .await;
    }
    let setup = setup(ArchiveConfig {
        fetch: FetchPolicy {
            allowed_hosts: vec!["localhost".into()],
            allow_loopback_for_tests: true,
        },
        ..ArchiveConfig::default()
    });
    let record = setup
        .archive(&[
            format!("{}/to-name", outer.uri()),
            format!("{}/to-metadata", outer.uri()),
            format!("{}/to-file", outer.uri()),
            format!("{}/loop", outer.uri()),
            format!("{}/ok", outer.uri()),
        ])
        .await;
    for i in [0, 1, 3] {
        let reason = failure(&record.media[i]);
        assert!(reason.contains("not fetched"), "{i}: {reason}");
    }
    // A redirect to another scheme is not followed at all: the redirect is the answer.
    assert!(failure(&record.media[2]).contains("302"));
    assert!(failure(&record.media[3]).contains("redirects"));
    let loops = outer
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == "/loop")
        .count();
    assert_eq!(loops, 4, "the first request and three redirects");
    // One allowed redirect (loopback literal, as the test policy allows) is followed.
    assert!(
        matches!(record.media[4].state, MediaState::Stored { .. }),
        "{:?}",
        record.media[4].state
    );
    assert_eq!(inner_hits.load(Ordering::SeqCst), 1, "only the allowed hop");
}

/// The size limit holds while the body streams: a server that never stops sending is cut off at
/// the limit instead of filling the worker's memory.
#[tokio::test]
async fn an_endless_body_is_cut_off_at_the_limit() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listener");
    let address = listener.local_addr().expect("address");
    let sent = Arc::new(AtomicUsize::new(0));
    let sent_by_server = sent.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let sent = sent_by_server.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                // Chunked, with no length to refuse up front.
                let head = "HTTP/1.1 200 OK\r\ncontent-type: image/jpeg\r\ntransfer-encoding: chunked\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![b'x'; 64 * 1024];
                let framed = [
                    format!("{:x}\r\n", chunk.len()).into_bytes(),
                    chunk,
                    b"\r\n".to_vec(),
                ]
                .concat();
                while socket.write_all(&framed).await.is_ok() {
                    sent.fetch_add(64 * 1024, Ordering::SeqCst);
                }
            });
        }
    });
    let limit = 256 * 1024;
    let setup = setup(ArchiveConfig {
        max_media_bytes: limit,
        fetch: FetchPolicy::allowing_loopback_for_tests(),
        ..ArchiveConfig::default()
    });
    let record = setup
        .archive(&[format!("http://{address}/endless.jpg")])
        .await;
    let reason = failure(&record.media[0]);
    assert!(reason.contains("larger than the limit"), "{reason}");
    let sent = sent.load(Ordering::SeqCst);
    assert!(
        sent < 64 * limit,
        "stopped reading early, not after {sent} bytes"
    );
}

/// The stored type is the bytes' own: a server that calls HTML an image does not get HTML stored
/// as one, and a JPEG called `text/html` is stored as `image/jpeg`.
#[tokio::test]
async fn the_content_type_comes_from_the_bytes() {
    let html = MockServer::start().await;
    Mock::given(path("/page.jpg"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(b"<html><script>alert(1)</script>".to_vec(), "image/jpeg"),
        )
        .mount(&html)
        .await;
    Mock::given(path("/photo"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(JPEG, "text/html"))
        .mount(&html)
        .await;
    let setup = setup(ArchiveConfig {
        fetch: FetchPolicy::allowing_loopback_for_tests(),
        ..ArchiveConfig::default()
    });
    let record = setup
        .archive(&[
            format!("{}/page.jpg", html.uri()),
            format!("{}/photo", html.uri()),
        ])
        .await;
    let stored: Vec<_> = record.media.iter().map(|m| m.state.clone()).collect();
    assert_eq!(
        stored,
        [
            MediaState::Stored {
                content_type: "application/octet-stream".into(),
                bytes: 31
            },
            MediaState::Stored {
                content_type: "image/jpeg".into(),
                bytes: JPEG.len() as u64
            },
        ]
    );
    let (content_type, _) = setup
        .store
        .get(&record.media[0].object_key)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(content_type, "application/octet-stream");
}
