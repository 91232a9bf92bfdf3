//! The `chat-gateway` binary on a free port with a fake LINE API: signed requests handled once
//! each, forged ones refused, a process killed after answering `200` (or in the middle of
//! handling) and started again handles its events exactly once, and a handler that keeps failing
//! lands its event in the dead-letter state, from where a redrive works.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const BINARY: &str = env!("CARGO_BIN_EXE_chat-gateway");

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// LINE's reply endpoint as LINE behaves: a reply token works once; optionally failing or slow.
#[derive(Clone, Default)]
struct LineReplies {
    used: Arc<Mutex<Vec<String>>>,
    delivered: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
    delay: Duration,
}

impl Respond for LineReplies {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if self.failing.load(Ordering::SeqCst) {
            return ResponseTemplate::new(500).set_body_json(json!({"message": "Internal error"}));
        }
        let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let token = body["replyToken"].as_str().unwrap_or_default().to_owned();
        let mut used = self.used.lock().expect("lock");
        if used.contains(&token) {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return ResponseTemplate::new(400)
                .set_body_json(json!({"message": "Invalid reply token"}));
        }
        used.push(token);
        self.delivered.fetch_add(1, Ordering::SeqCst);
        ResponseTemplate::new(200)
            .set_body_json(json!({"sentMessages": []}))
            .set_delay(self.delay)
    }
}

async fn fake_line(replies: LineReplies) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/bot/message/reply"))
        .respond_with(replies)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/v2/bot/profile/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"displayName": "Taro"})))
        .mount(&server)
        .await;
    server
}

struct Gateway {
    child: Child,
    url: String,
}

impl Gateway {
    fn start(data: &Path, api: &str, extra: &[&str], env: &[(&str, &str)]) -> Gateway {
        let port = free_port();
        let mut command = Command::new(BINARY);
        command
            .args(["--listen", &format!("127.0.0.1:{port}"), "--data"])
            .arg(data)
            .args(extra)
            .env_remove("LINE_CHANNEL_SECRET")
            .env_remove("META_APP_SECRET")
            .env("LINE_CHANNEL_ACCESS_TOKEN", "test-line-token")
            .env("LINE_API_BASE_URL", api)
            .env("LINE_DATA_API_BASE_URL", api)
            .env("RUST_LOG", "warn")
            // The gateway's own test bot, whatever bot functions/worker/src/bot.rs holds.
            .env("GATEWAY_TEST_BOT", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().expect("start chat-gateway");
        let gateway = Gateway {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chat-gateway did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        gateway
    }

    /// `kill -9`: no shutdown, no cleanup.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn send(&self, file: &str) -> String {
        let output = Command::new(BINARY)
            .args(["send", "--url", &self.url])
            .arg(events_dir().join(file))
            .env_remove("LINE_CHANNEL_SECRET")
            .env_remove("META_APP_SECRET")
            .output()
            .expect("send");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cli(data: &Path, args: &[&str]) -> String {
    let output = Command::new(BINARY)
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .expect("chat-gateway");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn wait_until(what: &str, timeout: Duration, condition: impl Fn() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(
            started.elapsed() < timeout,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn signed_requests_are_handled_once_and_forged_ones_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let replies = LineReplies::default();
    let api = fake_line(replies.clone()).await;
    let gateway = Gateway::start(&dir.path().join("db"), &api.uri(), &[], &[]);
    assert_eq!(gateway.send("line-text-message.json"), "200 OK");
    assert_eq!(gateway.send("line-redelivered.json"), "200 OK");
    assert_eq!(gateway.send("line-group-mention.json"), "200 OK");
    // A forged request: the sample's body, signed with the wrong secret.
    let event = testkit_event("line-wrong-signature.json");
    let forged = reqwest::Client::new()
        .post(format!("{}/line", gateway.url))
        .header(
            "x-line-signature",
            event["headers"]["x-line-signature"]
                .as_str()
                .expect("signature"),
        )
        .body(event["body"].as_str().expect("body").to_owned())
        .send()
        .await
        .expect("forged");
    assert_eq!(forged.status().as_u16(), 401);
    let unsigned = reqwest::Client::new()
        .post(format!("{}/line", gateway.url))
        .body(event["body"].as_str().expect("body").to_owned())
        .send()
        .await
        .expect("unsigned");
    assert_eq!(unsigned.status().as_u16(), 401);
    wait_until("two replies", Duration::from_secs(20), || {
        replies.delivered.load(Ordering::SeqCst) == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        replies.delivered.load(Ordering::SeqCst),
        2,
        "the redelivery was not answered again"
    );
    assert_eq!(
        replies.refused.load(Ordering::SeqCst),
        0,
        "no reply token was used twice"
    );
}

fn testkit_event(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(events_dir().join(name)).expect("event")).expect("json")
}

#[tokio::test]
async fn a_process_killed_after_answering_handles_its_events_once_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("db");
    let replies = LineReplies::default();
    let api = fake_line(replies.clone()).await;
    // Accepted and queued, then killed before any of it is handled.
    let ingress_only = Gateway::start(&data, &api.uri(), &["--no-worker"], &[]);
    assert_eq!(ingress_only.send("line-several-events.json"), "200 OK");
    assert_eq!(ingress_only.send("line-group-mention.json"), "200 OK");
    assert_eq!(ingress_only.send("line-follow.json"), "200 OK");
    ingress_only.kill();
    assert_eq!(replies.delivered.load(Ordering::SeqCst), 0);

    let restarted = Gateway::start(&data, &api.uri(), &[], &[]);
    wait_until("three replies", Duration::from_secs(20), || {
        replies.delivered.load(Ordering::SeqCst) == 3
    })
    .await;
    restarted.kill();
    let again = Gateway::start(&data, &api.uri(), &[], &[]);
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(
        replies.delivered.load(Ordering::SeqCst),
        3,
        "nothing handled twice after another restart"
    );
    drop(again);
}

#[tokio::test]
async fn a_process_killed_while_handling_repeats_no_effect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("db");
    // LINE takes 1.5 s to answer the reply: the process dies after LINE has it, before the worker
    // records the event as completed.
    let replies = LineReplies {
        delay: Duration::from_millis(1_500),
        ..LineReplies::default()
    };
    let api = fake_line(replies.clone()).await;
    let short_claims = ["--visibility-timeout-ms", "3000"];
    let first = Gateway::start(&data, &api.uri(), &short_claims, &[]);
    assert_eq!(first.send("line-text-message.json"), "200 OK");
    wait_until("the reply reached LINE", Duration::from_secs(20), || {
        replies.delivered.load(Ordering::SeqCst) == 1
    })
    .await;
    first.kill();

    // After the visibility timeout the message comes back and the dead claim has lapsed: the
    // handler runs again, LINE refuses the used reply token, and the event is completed.
    let second = Gateway::start(&data, &api.uri(), &short_claims, &[]);
    wait_until("the retry", Duration::from_secs(20), || {
        replies.refused.load(Ordering::SeqCst) == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        replies.delivered.load(Ordering::SeqCst),
        1,
        "the user got one reply"
    );
    drop(second);
    assert!(cli(&data, &["dead-letters"]).contains("no dead letters"));
}

#[tokio::test]
async fn a_handler_that_keeps_failing_dead_letters_its_event_and_a_redrive_handles_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("db");
    let replies = LineReplies::default();
    replies.failing.store(true, Ordering::SeqCst);
    let api = fake_line(replies.clone()).await;
    let quick = ["--visibility-timeout-ms", "2500", "--max-receives", "2"];
    let gateway = Gateway::start(&data, &api.uri(), &quick, &[]);
    assert_eq!(gateway.send("line-text-message.json"), "200 OK");
    let started = Instant::now();
    loop {
        let dead = cli(&data, &["dead-letters"]);
        if dead.contains("line:01JDEMO0000000000000000001") {
            assert!(dead.contains("receives=2"), "{dead}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never dead-lettered: {dead}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(replies.delivered.load(Ordering::SeqCst), 0);

    // LINE is back; the operator redrives.
    replies.failing.store(false, Ordering::SeqCst);
    assert!(cli(&data, &["redrive"]).contains("1 event(s) back in the queue"));
    wait_until("the redriven reply", Duration::from_secs(20), || {
        replies.delivered.load(Ordering::SeqCst) == 1
    })
    .await;
    assert!(cli(&data, &["dead-letters"]).contains("no dead letters"));
    drop(gateway);
}

#[tokio::test]
async fn the_demo_archives_messages_and_profiles_and_honours_unsend() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("db");
    let replies = LineReplies::default();
    let api = fake_line(replies.clone()).await;
    let gateway = Gateway::start(&db, &api.uri(), &[], &[]);
    let conversation =
        "line:Uf00000000000000000000000000000b0:user:U4af4980629000000000000000000c0de";
    assert_eq!(gateway.send("line-follow.json"), "200 OK");
    assert_eq!(gateway.send("line-text-message.json"), "200 OK");
    wait_until(
        "the message in the archive",
        Duration::from_secs(20),
        || cli(&db, &["archive", conversation]).contains("Hello, äöå 🤨"),
    )
    .await;
    let listing = cli(&db, &["archive"]);
    assert!(
        listing.contains(&format!("{conversation}  (1 messages)")),
        "{listing}"
    );
    let shown = cli(&db, &["archive", conversation]);
    assert!(
        shown.contains("profile U4af4980629000000000000000000c0de: Taro"),
        "{shown}"
    );

    assert_eq!(gateway.send("line-unsend.json"), "200 OK");
    wait_until("the unsent message gone", Duration::from_secs(20), || {
        !cli(&db, &["archive", conversation]).contains("Hello")
    })
    .await;
    assert!(cli(&db, &["archive"]).contains("the archive is empty"));
}
