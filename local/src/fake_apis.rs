//! The playground's stand-ins for LINE's and Meta's APIs: what a bot sends is recorded, answered
//! the way the platforms answer (a reply token works once; profiles and content exist for every
//! user and message) and printed in the terminal, so that a bot can be seen working without a
//! channel, a page or a token. `GET /fake/calls` lists the calls as JSON (the README test reads it).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// Where the fakes are mounted on the gateway's own listener.
pub const PREFIX: &str = "/fake";

/// The fakes' state: reply tokens the platform handed out, the ones used, and every call.
#[derive(Debug, Default)]
pub struct FakeApis {
    reply_tokens: Mutex<HashMap<String, String>>,
    used: Mutex<HashSet<String>>,
    calls: Mutex<Vec<Value>>,
    quiet: bool,
}

impl FakeApis {
    pub fn new(quiet: bool) -> Arc<FakeApis> {
        Arc::new(FakeApis {
            quiet,
            ..FakeApis::default()
        })
    }

    /// Remembers that `token` came with an event from `to` (a user, group or room id), as LINE
    /// knows whom a reply goes to.
    pub fn hand_out_reply_token(&self, token: &str, to: &str) {
        if let Ok(mut tokens) = self.reply_tokens.lock() {
            tokens.insert(token.to_owned(), to.to_owned());
        }
    }

    fn record(&self, call: Value) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(call);
        }
    }

    fn say(&self, line: String) {
        if !self.quiet {
            println!("{line}");
        }
    }

    /// The routes, to be nested under [`PREFIX`].
    pub fn router(self: &Arc<Self>) -> axum::Router {
        axum::Router::new()
            .route("/line/v2/bot/message/reply", post(line_reply))
            .route("/line/v2/bot/message/push", post(line_push))
            .route("/line/v2/bot/profile/{user}", get(line_profile))
            .route("/line-data/v2/bot/message/{id}/content", get(line_content))
            .route(
                "/line-data/v2/bot/message/{id}/content/preview",
                get(line_content),
            )
            .route("/meta/me/messages", post(meta_send))
            .route("/meta/{number}/messages", post(whatsapp_messages))
            .route("/meta/{number}/media", post(whatsapp_upload))
            .route("/meta/{media}", get(whatsapp_media_info))
            .route("/meta/wa-file/{media}", get(whatsapp_file))
            .route("/calls", get(calls))
            .with_state(Arc::clone(self))
    }
}

/// A short form of a platform id for the terminal: `U4af4…c0de`.
pub fn short(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 12 {
        return id.to_owned();
    }
    let head: String = chars[..5].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// One LINE message object, readable: text in quotes, other kinds in brackets.
fn describe_line(message: &Value) -> String {
    let kind = message["type"].as_str().unwrap_or("?");
    let mut out = match kind {
        "text" | "textV2" => format!("{:?}", message["text"].as_str().unwrap_or("")),
        "sticker" => format!(
            "[sticker {}/{}]",
            message["packageId"].as_str().unwrap_or("?"),
            message["stickerId"].as_str().unwrap_or("?")
        ),
        "image" | "video" | "audio" => format!(
            "[{kind} {}]",
            message["originalContentUrl"].as_str().unwrap_or("?")
        ),
        other => format!("[{other}: {:?}]", message["altText"].as_str().unwrap_or("")),
    };
    if let Some(items) = message["quickReply"]["items"].as_array() {
        let labels: Vec<&str> = items
            .iter()
            .filter_map(|item| item["action"]["label"].as_str())
            .collect();
        out.push_str(&format!("  (quick replies: {})", labels.join(" | ")));
    }
    out
}

fn describe_meta(message: &Value) -> String {
    let mut out = match message["text"].as_str() {
        Some(text) => format!("{text:?}"),
        None => format!(
            "[{}]",
            message["attachment"]["type"].as_str().unwrap_or("message")
        ),
    };
    if let Some(chips) = message["quick_replies"].as_array() {
        let titles: Vec<&str> = chips.iter().filter_map(|c| c["title"].as_str()).collect();
        out.push_str(&format!("  (quick replies: {})", titles.join(" | ")));
    }
    out
}

fn line_error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"message": message}))).into_response()
}

async fn line_reply(State(fake): State<Arc<FakeApis>>, Json(body): Json<Value>) -> Response {
    let token = body["replyToken"].as_str().unwrap_or_default().to_owned();
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    if messages.is_empty() || messages.len() > 5 {
        return line_error(StatusCode::BAD_REQUEST, "The request body has 1 error(s)");
    }
    let to = fake
        .reply_tokens
        .lock()
        .ok()
        .and_then(|tokens| tokens.get(&token).cloned());
    let first_use = fake
        .used
        .lock()
        .map(|mut used| used.insert(token.clone()))
        .unwrap_or(false);
    let Some(to) = to.filter(|_| first_use) else {
        fake.say(format!(
            "  → reply refused: reply token {} was already used or never issued",
            short(&token)
        ));
        return line_error(StatusCode::BAD_REQUEST, "Invalid reply token");
    };
    for message in &messages {
        fake.say(format!(
            "  → reply to {}: {}",
            short(&to),
            describe_line(message)
        ));
    }
    fake.record(json!({"api": "line.reply", "to": to, "messages": messages}));
    Json(sent_messages(&messages)).into_response()
}

async fn line_push(State(fake): State<Arc<FakeApis>>, Json(body): Json<Value>) -> Response {
    let to = body["to"].as_str().unwrap_or_default().to_owned();
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    for message in &messages {
        fake.say(format!(
            "  → push to {}: {}",
            short(&to),
            describe_line(message)
        ));
    }
    fake.record(json!({"api": "line.push", "to": to, "messages": messages}));
    Json(sent_messages(&messages)).into_response()
}

/// LINE's answer to a reply or push: one `sentMessages` entry (id, quote token) per message sent,
/// as its OpenAPI definition requires (`minItems: 1`; the official SDKs refuse an empty list).
fn sent_messages(messages: &[Value]) -> Value {
    let sent: Vec<Value> = messages
        .iter()
        .map(|_| {
            let id = fastrand::u64(10_000_000_000_000_000..u64::MAX).to_string();
            json!({"id": id, "quoteToken": format!("q{id}")})
        })
        .collect();
    json!({ "sentMessages": sent })
}

async fn line_profile(State(fake): State<Arc<FakeApis>>, Path(user): Path<String>) -> Response {
    let tail: String = user
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let name = format!("Demo user {tail}");
    fake.say(format!("  → profile of {}: {name:?}", short(&user)));
    fake.record(json!({"api": "line.profile", "user": user}));
    Json(json!({
        "userId": user,
        "displayName": name,
        "pictureUrl": "https://profile.line-scdn.net/demo",
        "statusMessage": "Trying the playground",
        "language": "en"
    }))
    .into_response()
}

/// The smallest JPEG header: enough for the archive to sniff `image/jpeg`.
const JPEG: &[u8] = &[
    0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F', 0, 1,
];

async fn line_content(State(fake): State<Arc<FakeApis>>, Path(id): Path<String>) -> Response {
    fake.record(json!({"api": "line.content", "message": id}));
    ([("content-type", "image/jpeg")], JPEG).into_response()
}

async fn meta_send(State(fake): State<Arc<FakeApis>>, Json(body): Json<Value>) -> Response {
    let to = body["recipient"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    fake.say(format!(
        "  → send to {}: {}",
        short(&to),
        describe_meta(&body["message"])
    ));
    let count = fake.calls.lock().map(|c| c.len()).unwrap_or(0);
    fake.record(json!({"api": "meta.send", "to": to, "message": body["message"]}));
    Json(json!({"recipient_id": to, "message_id": format!("m_fake_{count}")})).into_response()
}

/// The Cloud API's `POST /{phone-number-id}/messages`: a send, or (with `status: read`) a read
/// receipt. Refuses what the Cloud API refuses: no `messaging_product`, no recipient.
async fn whatsapp_messages(
    State(fake): State<Arc<FakeApis>>,
    Path(number): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    if body["messaging_product"] != "whatsapp" {
        return whatsapp_error(
            StatusCode::BAD_REQUEST,
            100,
            "(#100) The parameter messaging_product is required.",
        );
    }
    if body["status"] == "read" {
        let typing = body["typing_indicator"]["type"] == "text";
        fake.say(format!(
            "  → WhatsApp: {} marked read{}",
            short(body["message_id"].as_str().unwrap_or("?")),
            if typing { ", typing…" } else { "" }
        ));
        fake.record(json!({"api": "whatsapp.read", "number": number, "message_id": body["message_id"], "typing": typing}));
        return Json(json!({"success": true})).into_response();
    }
    let Some(to) = body["to"].as_str().or_else(|| body["recipient"].as_str()) else {
        return whatsapp_error(
            StatusCode::BAD_REQUEST,
            100,
            "(#100) The parameter to is required.",
        );
    };
    let kind = body["type"].as_str().unwrap_or("text");
    let what = match kind {
        "text" => format!("{:?}", body["text"]["body"].as_str().unwrap_or("")),
        other => format!("[{other}]"),
    };
    let quoting = body["context"]["message_id"]
        .as_str()
        .map(|id| format!(" (replying to {})", short(id)))
        .unwrap_or_default();
    fake.say(format!("  → WhatsApp to {}: {what}{quoting}", short(to)));
    let count = fake.calls.lock().map(|c| c.len()).unwrap_or(0);
    fake.record(json!({"api": "whatsapp.send", "number": number, "to": to, "message": body}));
    Json(
        json!({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": format!("wamid.FAKE{count}")}]}),
    )
    .into_response()
}

async fn whatsapp_upload(
    State(fake): State<Arc<FakeApis>>,
    Path(number): Path<String>,
) -> Response {
    let count = fake.calls.lock().map(|c| c.len()).unwrap_or(0);
    fake.record(json!({"api": "whatsapp.upload", "number": number}));
    Json(json!({"id": format!("9{count:015}")})).into_response()
}

/// `GET /{media-id}`: the file's URL (here, on this fake), valid a few minutes on the real API.
async fn whatsapp_media_info(
    State(fake): State<Arc<FakeApis>>,
    Path(media): Path<String>,
    headers: http::HeaderMap,
) -> Response {
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    fake.record(json!({"api": "whatsapp.media", "media": media}));
    Json(json!({"messaging_product": "whatsapp",
                "url": format!("http://{host}{PREFIX}/meta/wa-file/{media}"),
                "mime_type": "image/jpeg", "file_size": JPEG.len(), "id": media}))
    .into_response()
}

/// The file itself; like the real one, only with the access token.
async fn whatsapp_file(
    State(fake): State<Arc<FakeApis>>,
    Path(media): Path<String>,
    headers: http::HeaderMap,
) -> Response {
    if headers.get(http::header::AUTHORIZATION).is_none() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    fake.record(json!({"api": "whatsapp.file", "media": media}));
    ([("content-type", "image/jpeg")], JPEG).into_response()
}

fn whatsapp_error(status: StatusCode, code: i64, message: &str) -> Response {
    (status, Json(json!({"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "FAKE"}}))).into_response()
}

async fn calls(State(fake): State<Arc<FakeApis>>) -> Json<Value> {
    Json(Value::Array(
        fake.calls.lock().map(|c| c.clone()).unwrap_or_default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_a_person_would() {
        assert_eq!(
            describe_line(&json!({"type": "text", "text": "Hello!",
                "quickReply": {"items": [{"type": "action", "action": {"type": "message", "label": "Menu", "text": "m"}}]}})),
            "\"Hello!\"  (quick replies: Menu)"
        );
        assert_eq!(
            describe_line(&json!({"type": "sticker", "packageId": "446", "stickerId": "1988"})),
            "[sticker 446/1988]"
        );
        assert_eq!(
            describe_line(&json!({"type": "flex", "altText": "Menu"})),
            "[flex: \"Menu\"]"
        );
        assert_eq!(short("U4af4980629000000000000000000c0de"), "U4af4…c0de");
    }
}
