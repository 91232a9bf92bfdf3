//! `chat-gateway serve --tenants FILE`: three tenants from one TOML file (`testkit::tenants`),
//! each verified with its own secrets and answered with its own tokens; a forgery across tenants
//! refused; a tenant added to the file served a few seconds later, without a restart.

use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::tenants::*;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const BINARY: &str = env!("CARGO_BIN_EXE_chat-gateway");

struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(Clone, Default)]
struct Tokens(Arc<Mutex<Vec<String>>>);

impl wiremock::Respond for Tokens {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let token = bearer_token(&request.headers);
        if let Ok(mut tokens) = self.0.lock() {
            tokens.push(token);
        }
        ResponseTemplate::new(200)
            .set_body_json(json!({"sentMessages": [], "recipient_id": "r", "message_id": "m"}))
    }
}

async fn send(url: &str, request: http::Request<bytes::Bytes>) -> u16 {
    let (parts, body) = request.into_parts();
    let mut call = reqwest::Client::new().post(format!("{url}{}", parts.uri));
    for (name, value) in &parts.headers {
        call = call.header(name, value);
    }
    call.body(body.to_vec())
        .send()
        .await
        .expect("gateway")
        .status()
        .as_u16()
}

#[tokio::test]
async fn one_gateway_serves_three_tenants_from_one_file_and_picks_up_a_fourth() {
    let api = MockServer::start().await;
    let tokens = Tokens::default();
    Mock::given(wiremock::matchers::any())
        .respond_with(tokens.clone())
        .mount(&api)
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("tenants.toml");
    let write = |registry: &serde_json::Value| {
        let text = toml::to_string(registry).expect("toml");
        std::fs::write(&file, text).expect("write");
    };
    write(&registry());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let child = Command::new(BINARY)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(dir.path().join("g.db"))
        .arg("--tenants")
        .arg(&file)
        .args(["--fake-apis=false", "--no-archive"])
        .env_remove("LINE_CHANNEL_SECRET")
        .env_remove("META_APP_SECRET")
        .env_remove("LINE_CHANNEL_ACCESS_TOKEN")
        .env_remove("META_PAGE_ACCESS_TOKEN")
        .env("LINE_API_BASE_URL", api.uri())
        .env("META_GRAPH_API_BASE_URL", api.uri())
        .env("GATEWAY_TEST_BOT", "1")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chat-gateway");
    let _gateway = Gateway(child);
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    // WhatsApp too, though the test bot answers only LINE and Messenger/Instagram texts.
    for (tenant, request) in genuine_requests() {
        assert_eq!(send(&url, request).await, 200, "{tenant}");
    }
    let (_, alpha_secret, _) = line_channel("alpha");
    let forged = line_post("alpha", &alpha_secret, line_body(BRAVO_BOT, "forged"));
    assert_eq!(send(&url, forged).await, 401);
    let forged = meta_post(
        "bravo",
        APP_ONE_SECRET,
        messenger_body(ALPHA_PAGE, "P", "forged"),
    );
    assert_eq!(send(&url, forged).await, 403);
    // The single-tenant routes are off: the file is what is served, not the demo secrets.
    let demo = line_post("alpha", &alpha_secret, line_body(ALPHA_BOT, "single"));
    let (parts, body) = demo.into_parts();
    let single = reqwest::Client::new()
        .post(format!("{url}/line"))
        .headers(
            parts
                .headers
                .iter()
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect(),
        )
        .body(body.to_vec())
        .send()
        .await
        .expect("gateway");
    assert_eq!(single.status().as_u16(), 404);

    let expected = [
        "alpha-instagram-token",
        "alpha-line-token",
        "alpha-page-token",
        "bravo-line-token",
        "bravo-page-token",
        "charlie-line-token",
        "charlie-page-token",
    ];
    let started = Instant::now();
    loop {
        let mut seen = tokens.0.lock().expect("lock").clone();
        seen.sort();
        if seen == expected {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "each answer with its tenant's token: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A fourth tenant, written to the file while the gateway runs.
    let delta_bot = "Ud0000000000000000000000000000004";
    let mut document = registry();
    document["delta"] = json!({"line": {"bot_user_id": delta_bot,
        "channel_secrets": ["delta-secret"], "channel_access_token": "delta-line-token"}});
    write(&document);
    let started = Instant::now();
    loop {
        let status = send(
            &url,
            line_post("delta", "delta-secret", line_body(delta_bot, "d")),
        )
        .await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 404);
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "delta never served"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let started = Instant::now();
    while !tokens
        .0
        .lock()
        .expect("lock")
        .iter()
        .any(|t| t == "delta-line-token")
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "delta never answered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
