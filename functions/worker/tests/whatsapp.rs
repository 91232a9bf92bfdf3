//! The WhatsApp Cloud API client against a fake Graph API (wiremock): each call as the Cloud API
//! documents it, each error mapped, retries only where nothing was sent, the throughput rules
//! across concurrent handlers, and the example bot's WhatsApp manners.

use serde_json::{Value, json};
use shared::clients::throughput::Throughput;
use shared::clients::whatsapp::{MediaRef, Outgoing, Problem, Recipient, WhatsAppClient};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const NUMBER: &str = "106540352242922";
const USER: &str = "16315551181";

fn client(server: &MockServer, pair_interval: Duration) -> WhatsAppClient {
    WhatsAppClient::with_throughput(
        reqwest::Client::new(),
        "test-whatsapp-token",
        server.uri(),
        Arc::new(Throughput::new(pair_interval, 80)),
    )
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

fn sent(id: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": USER, "wa_id": USER}],
        "messages": [{"id": id}]
    }))
}

fn graph_error(status: u16, code: i64) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"error": {
        "message": format!("error {code}"), "type": "OAuthException", "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": "details"}, "fbtrace_id": "A"}}))
}

async fn bodies(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
        .collect()
}

#[tokio::test]
async fn text_in_context_media_and_templates_are_sent_as_documented() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/{NUMBER}/messages")))
        .and(header("authorization", "Bearer test-whatsapp-token"))
        .respond_with(sent("wamid.OUT1"))
        .mount(&server)
        .await;
    let client = client(&server, Duration::ZERO);
    let to = Recipient::Phone(USER.into());
    let answer = client
        .send_text(NUMBER, &to, "hi", Some("wamid.IN1"), soon())
        .await
        .expect("sent");
    assert_eq!(answer.message_id.as_deref(), Some("wamid.OUT1"));
    client
        .send(
            NUMBER,
            &to,
            &Outgoing::Media {
                kind: "image",
                media: MediaRef::Id("1013859600285441".into()),
                caption: Some("a photo".into()),
                filename: None,
            },
            None,
            soon(),
        )
        .await
        .expect("sent");
    client
        .send(
            NUMBER,
            &Recipient::UserId("US.13491208655302741918".into()),
            &Outgoing::Template {
                name: "order_update".into(),
                language: "en_US".into(),
                components: json!([{"type": "body", "parameters": [{"type": "text", "text": "42"}]}]),
            },
            None,
            soon(),
        )
        .await
        .expect("sent");
    let sent = bodies(&server).await;
    assert_eq!(
        sent[0],
        json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": USER,
               "context": {"message_id": "wamid.IN1"},
               "type": "text", "text": {"preview_url": false, "body": "hi"}})
    );
    assert_eq!(
        sent[1]["image"],
        json!({"id": "1013859600285441", "caption": "a photo"})
    );
    assert_eq!(sent[2]["recipient"], "US.13491208655302741918");
    assert_eq!(sent[2]["template"]["language"], json!({"code": "en_US"}));
}

#[tokio::test]
async fn mark_read_with_typing_upload_and_media_download() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/{NUMBER}/messages")))
        .and(body_partial_json(json!({"status": "read"})))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/{NUMBER}/messages")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/{NUMBER}/media")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "4490709327384033"})))
        .mount(&server)
        .await;
    let file_url = format!("{}/whatsapp_business/attachments/?mid=1", server.uri());
    Mock::given(method("GET"))
        .and(path("/1013859600285441"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp", "url": file_url, "mime_type": "image/jpeg",
            "sha256": "abc", "file_size": 4, "id": "1013859600285441"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/whatsapp_business/attachments/"))
        .and(header("authorization", "Bearer test-whatsapp-token"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(b"\xff\xd8\xff\xe0".to_vec()))
        .mount(&server)
        .await;
    let client = client(&server, Duration::ZERO);
    client
        .mark_read(NUMBER, "wamid.IN1", true, soon())
        .await
        .expect("marked read, after one retry: idempotent");
    let uploaded = client
        .upload_media(
            NUMBER,
            bytes::Bytes::from_static(b"%PDF-1.7"),
            "application/pdf",
            "menu.pdf",
            soon(),
        )
        .await
        .expect("uploaded");
    assert_eq!(uploaded, "4490709327384033");
    let file = client
        .download_media(
            &reqwest::Client::new(),
            "1013859600285441",
            soon(),
            1024,
            None,
        )
        .await
        .expect("downloaded with the token");
    assert_eq!(&file.bytes[..], b"\xff\xd8\xff\xe0");

    let requests = server.received_requests().await.unwrap_or_default();
    let reads: Vec<Value> = requests
        .iter()
        .filter(|r| r.url.path().ends_with("/messages"))
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
        .collect();
    assert_eq!(reads.len(), 2);
    assert_eq!(
        reads[1],
        json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN1",
               "typing_indicator": {"type": "text"}})
    );
    let upload = requests
        .iter()
        .find(|r| r.url.path().ends_with("/media"))
        .expect("upload");
    let content_type = upload
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        content_type.starts_with("multipart/form-data"),
        "{content_type}"
    );
    let form = String::from_utf8_lossy(&upload.body);
    assert!(form.contains("name=\"messaging_product\"") && form.contains("whatsapp"));
    assert!(form.contains("filename=\"menu.pdf\"") && form.contains("%PDF-1.7"));
}

#[tokio::test]
async fn errors_are_mapped_and_only_refused_sends_are_retried() {
    for (code, problem, retried) in [
        (131047, Problem::OutsideWindow, false),
        (131026, Problem::Undeliverable, false),
        (130429, Problem::Throughput, true),
        (131056, Problem::PairRateLimit, true),
        (100, Problem::Refused, false),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(graph_error(400, code))
            .mount(&server)
            .await;
        let started = Instant::now();
        let error = client(&server, Duration::ZERO)
            .send_text(
                NUMBER,
                &Recipient::Phone(USER.into()),
                "hi",
                None,
                started + Duration::from_millis(2_500),
            )
            .await
            .expect_err("refused");
        assert_eq!(error.problem, problem, "{code}");
        assert_eq!(error.code, Some(code));
        let attempts = server.received_requests().await.unwrap_or_default().len();
        assert_eq!(attempts > 1, retried, "{code}: {attempts} attempts");
        assert!(
            Instant::now() <= started + Duration::from_millis(2_600),
            "within the deadline"
        );
    }

    // A 5xx may have delivered the message: reported, never sent again.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let error = client(&server, Duration::ZERO)
        .send_text(NUMBER, &Recipient::Phone(USER.into()), "hi", None, soon())
        .await
        .expect_err("unknown");
    assert_eq!(error.problem, Problem::Unknown);
    assert_eq!(
        server.received_requests().await.unwrap_or_default().len(),
        1
    );
}

#[tokio::test]
async fn concurrent_handlers_keep_the_pair_rate_to_one_user() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(sent("wamid.OUT"))
        .mount(&server)
        .await;
    let client = client(&server, Duration::from_millis(400));
    let started = Instant::now();
    let sends = (0..3).map(|i| {
        let client = client.clone();
        async move {
            client
                .send_text(
                    NUMBER,
                    &Recipient::Phone(USER.into()),
                    &format!("{i}"),
                    None,
                    soon(),
                )
                .await
                .expect("sent");
            Instant::now() - started
        }
    });
    let mut times = futures::future::join_all(sends).await;
    times.sort();
    assert!(times[0] < Duration::from_millis(300), "{times:?}");
    assert!(times[1] >= Duration::from_millis(400), "{times:?}");
    assert!(times[2] >= Duration::from_millis(800), "{times:?}");
    // Another user is not held up by the first one's turns.
    let other = Recipient::Phone("4915110000000".into());
    let before = Instant::now();
    client
        .send_text(NUMBER, &other, "x", None, soon())
        .await
        .expect("sent");
    assert!(Instant::now() - before < Duration::from_millis(300));

    // A turn that would come after the deadline: not sent at all.
    let error = client
        .send_text(
            NUMBER,
            &Recipient::Phone(USER.into()),
            "late",
            None,
            Instant::now() + Duration::from_millis(150),
        )
        .await
        .expect_err("no turn before the deadline");
    assert_eq!(error.problem, Problem::PairRateLimit);
    assert_eq!(error.code, None, "decided here, not by Meta");
    assert_eq!(
        server.received_requests().await.unwrap_or_default().len(),
        4
    );
}
