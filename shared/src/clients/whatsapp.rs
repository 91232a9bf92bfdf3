//! The WhatsApp Cloud API calls a bot needs: send (text, in reply to a message, media by id or
//! link, templates), mark as read with the typing indicator, upload media, and read media.
//!
//! Errors are mapped to what a bot can act on ([`Problem`]): outside the 24-hour customer service
//! window only a template may be sent (131047); the pair rate (131056) and the number's
//! throughput (130429) are kept before sending ([`super::throughput`]) and, when Meta still
//! refuses, retried after a wait; an undeliverable message (131026) is final.
//!
//! Retries only where they are safe. Sending a message is not idempotent (the Cloud API takes no
//! idempotency key), so a send is retried only when Meta refused it (rate limits) or the
//! connection never opened; a `5xx` or a timeout after the request left may have delivered it and
//! is reported as [`Problem::Unknown`] for the bot to decide. Marking read, reading and uploading
//! media are retried on `429`, `5xx` and network errors. Nothing runs past the event's deadline.

use super::limits::Limiter;
use super::throughput::{Throughput, Wait};
use super::{ApiError, Download, send_with_retries};
use serde_json::{Value, json};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// A WhatsApp Business user: by phone number (`wa_id`), or by business-scoped user id when the
/// user's phone number is withheld (usernames, 2026: Meta's BSUID documentation names the
/// `recipient` parameter for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    Phone(String),
    UserId(String),
}

impl Recipient {
    /// The sender of an incoming message: the phone number when Meta gave it, else the BSUID.
    pub fn of(message: &crate::meta::WhatsAppMessage) -> Option<Recipient> {
        match (&message.from, &message.from_user_id) {
            (Some(phone), _) => Some(Recipient::Phone(phone.clone())),
            (None, Some(user_id)) => Some(Recipient::UserId(user_id.clone())),
            (None, None) => None,
        }
    }

    fn key(&self) -> &str {
        match self {
            Recipient::Phone(id) | Recipient::UserId(id) => id,
        }
    }

    fn write(&self, body: &mut serde_json::Map<String, Value>) {
        match self {
            Recipient::Phone(phone) => body.insert("to".into(), json!(phone)),
            Recipient::UserId(user_id) => body.insert("recipient".into(), json!(user_id)),
        };
    }
}

/// A media file to send: uploaded before (its media id) or at a public https link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaRef {
    Id(String),
    Link(String),
}

/// A message to send.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    /// Text, with link previews when `preview_url`.
    Text { body: String, preview_url: bool },
    /// `image`, `video`, `audio`, `document` or `sticker`, with an optional caption (image, video,
    /// document) and file name (document).
    Media {
        kind: &'static str,
        media: MediaRef,
        caption: Option<String>,
        filename: Option<String>,
    },
    /// An approved template: the only message allowed outside the customer service window.
    /// `components` is the Cloud API's array, as is.
    Template {
        name: String,
        language: String,
        components: Value,
    },
}

impl Outgoing {
    pub fn text(body: impl Into<String>) -> Outgoing {
        Outgoing::Text {
            body: body.into(),
            preview_url: false,
        }
    }

    fn write(&self, body: &mut serde_json::Map<String, Value>) {
        match self {
            Outgoing::Text {
                body: text,
                preview_url,
            } => {
                body.insert("type".into(), json!("text"));
                body.insert(
                    "text".into(),
                    json!({"preview_url": preview_url, "body": text}),
                );
            }
            Outgoing::Media {
                kind,
                media,
                caption,
                filename,
            } => {
                let mut object = serde_json::Map::new();
                match media {
                    MediaRef::Id(id) => object.insert("id".into(), json!(id)),
                    MediaRef::Link(link) => object.insert("link".into(), json!(link)),
                };
                if let Some(caption) = caption {
                    object.insert("caption".into(), json!(caption));
                }
                if let Some(filename) = filename {
                    object.insert("filename".into(), json!(filename));
                }
                body.insert("type".into(), json!(kind));
                body.insert((*kind).into(), Value::Object(object));
            }
            Outgoing::Template {
                name,
                language,
                components,
            } => {
                body.insert("type".into(), json!("template"));
                body.insert(
                    "template".into(),
                    json!({"name": name, "language": {"code": language}, "components": components}),
                );
            }
        }
    }
}

/// What a failed call means for the bot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// 131047: more than 24 hours since the user's last message: send a template instead.
    OutsideWindow,
    /// 131056, or this client's own pair-rate turn past the deadline: too many messages to this
    /// user; later.
    PairRateLimit,
    /// 130429 (or 80007, or `429`), or this client's own throughput turn past the deadline.
    Throughput,
    /// 131026: the message cannot be delivered to this user (not on WhatsApp, old app, blocked).
    Undeliverable,
    /// A `5xx` or a timeout after the request left: the message may have been sent.
    Unknown,
    /// Anything else Meta refused (the code is in the error).
    Refused,
}

/// A Cloud API call that did not succeed.
#[derive(Debug, thiserror::Error)]
#[error("WhatsApp Cloud API {operation}: {problem:?}{}: {message}", code.map(|c| format!(" (code {c})")).unwrap_or_default())]
pub struct CloudApiError {
    pub operation: &'static str,
    pub problem: Problem,
    /// Meta's error code, when Meta answered with one.
    pub code: Option<i64>,
    /// Meta's own message (never the request's content), or what happened here.
    pub message: String,
}

/// Meta's error codes, by what they mean.
fn problem_of(code: Option<i64>, status: u16) -> Problem {
    match code {
        Some(131047) => Problem::OutsideWindow,
        Some(131056) => Problem::PairRateLimit,
        Some(130429) | Some(80007) => Problem::Throughput,
        Some(131026) => Problem::Undeliverable,
        _ if status == 429 => Problem::Throughput,
        _ if status >= 500 => Problem::Unknown,
        _ => Problem::Refused,
    }
}

/// What `POST /messages` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The sent message's id (`wamid.…`), which its statuses will name.
    pub message_id: Option<String>,
}

/// A media file's details (`GET /{media-id}`); `url` is valid for about 5 minutes and needs the
/// access token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct MediaInfo {
    pub url: String,
    #[serde(default)]
    pub mime_type: Option<String>,
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub file_size: Option<u64>,
}

/// A Cloud API client for one access token (a system user's, for all the business's numbers).
#[derive(Clone)]
pub struct WhatsAppClient {
    http: reqwest::Client,
    token: String,
    /// The tenant\'s share of calls ([`super::limits`]), when it has limits.
    limiter: Option<Arc<Limiter>>,
    base: String,
    limits: Arc<Throughput>,
}

impl fmt::Debug for WhatsAppClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WhatsAppClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// The pause before a send Meta refused for a rate limit is tried again.
const RATE_LIMIT_PAUSE: Duration = Duration::from_secs(1);
/// No attempt starts with less time than this left.
const MIN_ATTEMPT: Duration = Duration::from_millis(100);
/// The longest one attempt may take.
const MAX_ATTEMPT: Duration = Duration::from_secs(10);

impl WhatsAppClient {
    /// The same client, its calls taking turns under `limiter` (a tenant's limits).
    pub fn with_limiter(mut self, limiter: Option<Arc<Limiter>>) -> WhatsAppClient {
        self.limiter = limiter;
        self
    }

    pub(crate) fn limiter(&self) -> Option<&Limiter> {
        self.limiter.as_deref()
    }

    /// A client sharing the process's throughput limits ([`Throughput::shared`]).
    pub fn new(
        http: reqwest::Client,
        token: impl Into<String>,
        base: impl Into<String>,
    ) -> WhatsAppClient {
        WhatsAppClient::with_throughput(http, token, base, Throughput::shared())
    }

    /// A client with its own limits (tests).
    pub fn with_throughput(
        http: reqwest::Client,
        token: impl Into<String>,
        base: impl Into<String>,
        limits: Arc<Throughput>,
    ) -> WhatsAppClient {
        WhatsAppClient {
            http,
            token: token.into(),
            limiter: None,
            base: base.into().trim_end_matches('/').to_owned(),
            limits,
        }
    }

    /// Sends a text from `phone_number_id` to `to`, as a reply quoting `reply_to` (a `wamid`)
    /// when given.
    pub async fn send_text(
        &self,
        phone_number_id: &str,
        to: &Recipient,
        text: &str,
        reply_to: Option<&str>,
        deadline: Instant,
    ) -> Result<Sent, CloudApiError> {
        self.send(
            phone_number_id,
            to,
            &Outgoing::text(text),
            reply_to,
            deadline,
        )
        .await
    }

    /// Sends `message`, after waiting for this user's and this number's turn (failing with
    /// [`Problem::PairRateLimit`] or [`Problem::Throughput`], unsent, when the turn would come
    /// after the deadline).
    pub async fn send(
        &self,
        phone_number_id: &str,
        to: &Recipient,
        message: &Outgoing,
        reply_to: Option<&str>,
        deadline: Instant,
    ) -> Result<Sent, CloudApiError> {
        let mut body = serde_json::Map::new();
        body.insert("messaging_product".into(), json!("whatsapp"));
        body.insert("recipient_type".into(), json!("individual"));
        to.write(&mut body);
        if let Some(id) = reply_to {
            body.insert("context".into(), json!({"message_id": id}));
        }
        message.write(&mut body);
        let body = Value::Object(body);
        let url = format!("{}/{}/messages", self.base, phone_number_id);
        let latest = deadline.checked_sub(MIN_ATTEMPT).unwrap_or(deadline);
        loop {
            if let Err(wait) = self.limits.acquire(phone_number_id, to.key(), latest).await {
                let (problem, what) = match wait {
                    Wait::Pair { .. } => (Problem::PairRateLimit, "this user's pair rate"),
                    Wait::Number { .. } => (Problem::Throughput, "this number's throughput"),
                };
                return Err(CloudApiError {
                    operation: "send",
                    problem,
                    code: None,
                    message: format!(
                        "not sent: the next turn under {what} comes after the deadline"
                    ),
                });
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            let sent = self
                .http
                .post(&url)
                .bearer_auth(&self.token)
                .json(&body)
                .timeout(remaining.min(MAX_ATTEMPT))
                .send()
                .await;
            let response = match sent {
                Ok(response) => response,
                // The connection never opened: nothing was sent, a retry is safe.
                Err(error) if error.is_connect() => {
                    if Instant::now() + RATE_LIMIT_PAUSE + MIN_ATTEMPT > deadline {
                        return Err(unknown("send", "could not connect"));
                    }
                    tokio::time::sleep(RATE_LIMIT_PAUSE).await;
                    continue;
                }
                Err(error) if error.is_timeout() => {
                    return Err(unknown(
                        "send",
                        "no answer in time: the message may have been sent",
                    ));
                }
                Err(_) => {
                    return Err(unknown(
                        "send",
                        "the request failed: the message may have been sent",
                    ));
                }
            };
            let status = response.status().as_u16();
            if response.status().is_success() {
                let answer: Value = response.json().await.unwrap_or_default();
                return Ok(Sent {
                    message_id: answer["messages"][0]["id"].as_str().map(str::to_owned),
                });
            }
            let error = read_error("send", status, response).await;
            // Refused for a rate: nothing was sent, so waiting and retrying is safe.
            let rate = matches!(error.problem, Problem::PairRateLimit | Problem::Throughput);
            if rate && Instant::now() + RATE_LIMIT_PAUSE + MIN_ATTEMPT <= deadline {
                tracing::warn!(target: "api", code = ?error.code, "WhatsApp rate limit; retrying the send");
                tokio::time::sleep(RATE_LIMIT_PAUSE).await;
                continue;
            }
            return Err(error);
        }
    }

    /// Marks `message_id` read (blue ticks) and, with `typing`, shows the typing indicator until
    /// the reply is sent (or 25 seconds pass). Idempotent, so retried like any safe call.
    pub async fn mark_read(
        &self,
        phone_number_id: &str,
        message_id: &str,
        typing: bool,
        deadline: Instant,
    ) -> Result<(), CloudApiError> {
        let mut body =
            json!({"messaging_product": "whatsapp", "status": "read", "message_id": message_id});
        if typing {
            body["typing_indicator"] = json!({"type": "text"});
        }
        let url = format!("{}/{}/messages", self.base, phone_number_id);
        send_with_retries(
            self.limiter.as_deref(),
            "WhatsApp Cloud API",
            || self.http.post(&url).bearer_auth(&self.token).json(&body),
            deadline,
        )
        .await
        .map(|_| ())
        .map_err(|e| from_api("mark read", e))
    }

    /// Uploads a file for sending by id (valid 30 days); returns its media id.
    pub async fn upload_media(
        &self,
        phone_number_id: &str,
        bytes: bytes::Bytes,
        mime_type: &str,
        filename: &str,
        deadline: Instant,
    ) -> Result<String, CloudApiError> {
        let url = format!("{}/{}/media", self.base, phone_number_id);
        let form = || -> Result<reqwest::multipart::Form, CloudApiError> {
            let part = reqwest::multipart::Part::stream(bytes.clone())
                .file_name(filename.to_owned())
                .mime_str(mime_type)
                .map_err(|_| CloudApiError {
                    operation: "upload media",
                    problem: Problem::Refused,
                    code: None,
                    message: format!("not a MIME type: {mime_type:?}"),
                })?;
            Ok(reqwest::multipart::Form::new()
                .text("messaging_product", "whatsapp")
                .text("type", mime_type.to_owned())
                .part("file", part))
        };
        form()?;
        let response = send_with_retries(
            self.limiter.as_deref(),
            "WhatsApp Cloud API",
            || {
                let request = self.http.post(&url).bearer_auth(&self.token);
                match form() {
                    Ok(form) => request.multipart(form),
                    Err(_) => request,
                }
            },
            deadline,
        )
        .await
        .map_err(|e| from_api("upload media", e))?;
        let answer: Value = response.json().await.unwrap_or_default();
        answer["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| CloudApiError {
                operation: "upload media",
                problem: Problem::Refused,
                code: None,
                message: "the answer has no media id".into(),
            })
    }

    /// A received or uploaded file's URL and details (`GET /{media-id}`).
    pub async fn media_info(
        &self,
        media_id: &str,
        deadline: Instant,
    ) -> Result<MediaInfo, ApiError> {
        let url = format!("{}/{}", self.base, media_id);
        let response = send_with_retries(
            self.limiter.as_deref(),
            "WhatsApp media",
            || self.http.get(&url).bearer_auth(&self.token),
            deadline,
        )
        .await?;
        response.json().await.map_err(|_| ApiError::Unreadable {
            api: "WhatsApp media",
            reason: "the answer is not a media object".into(),
        })
    }

    /// Adds the access token to a request for a media URL (which needs it).
    pub fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.bearer_auth(&self.token)
    }

    /// Downloads a received file by its media id: its URL first, then the file with the token,
    /// through `http` (the archive's client, which keeps to the fetch policy).
    pub async fn download_media(
        &self,
        http: &reqwest::Client,
        media_id: &str,
        deadline: Instant,
        max_bytes: usize,
        in_flight: Option<&super::ByteBudget>,
    ) -> Result<Download, ApiError> {
        let info = self.media_info(media_id, deadline).await?;
        if info.file_size.is_some_and(|size| size > max_bytes as u64) {
            return Err(ApiError::TooLarge {
                api: "WhatsApp media",
                limit: max_bytes,
            });
        }
        let url = reqwest::Url::parse(&info.url).map_err(|_| ApiError::NotAllowed {
            api: "WhatsApp media",
            reason: "the media URL is not a URL".into(),
        })?;
        super::download(
            self.limiter.as_deref(),
            "WhatsApp media",
            || self.authorize(http.get(url.clone())),
            deadline,
            max_bytes,
            in_flight,
        )
        .await
    }
}

fn unknown(operation: &'static str, message: &str) -> CloudApiError {
    CloudApiError {
        operation,
        problem: Problem::Unknown,
        code: None,
        message: message.to_owned(),
    }
}

/// Meta's error object: `{"error": {"message", "type", "code", "error_subcode", "error_data"}}`.
async fn read_error(
    operation: &'static str,
    status: u16,
    response: reqwest::Response,
) -> CloudApiError {
    let answer: Value = response.json().await.unwrap_or_default();
    let code = answer["error"]["code"].as_i64();
    let message = answer["error"]["message"]
        .as_str()
        .map(|m| m.chars().take(300).collect())
        .unwrap_or_else(|| format!("status {status}"));
    CloudApiError {
        operation,
        problem: problem_of(code, status),
        code,
        message,
    }
}

fn from_api(operation: &'static str, error: ApiError) -> CloudApiError {
    let problem = match &error {
        ApiError::Refused { status, .. } => problem_of(None, *status),
        ApiError::Unavailable { .. } => Problem::Unknown,
        _ => Problem::Refused,
    };
    CloudApiError {
        operation,
        problem,
        code: None,
        message: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_what_a_bot_can_do() {
        assert_eq!(problem_of(Some(131047), 400), Problem::OutsideWindow);
        assert_eq!(problem_of(Some(131056), 400), Problem::PairRateLimit);
        assert_eq!(problem_of(Some(130429), 400), Problem::Throughput);
        assert_eq!(problem_of(Some(80007), 400), Problem::Throughput);
        assert_eq!(problem_of(Some(131026), 400), Problem::Undeliverable);
        assert_eq!(problem_of(None, 429), Problem::Throughput);
        assert_eq!(problem_of(Some(1), 500), Problem::Unknown);
        assert_eq!(problem_of(Some(100), 400), Problem::Refused);
    }

    #[test]
    fn messages_are_written_as_the_cloud_api_reads_them() {
        let mut body = serde_json::Map::new();
        Recipient::UserId("US.134912".into()).write(&mut body);
        Outgoing::Media {
            kind: "document",
            media: MediaRef::Link("https://example.com/a.pdf".into()),
            caption: Some("the menu".into()),
            filename: Some("menu.pdf".into()),
        }
        .write(&mut body);
        assert_eq!(
            Value::Object(body),
            json!({"recipient": "US.134912", "type": "document",
                   "document": {"link": "https://example.com/a.pdf", "caption": "the menu", "filename": "menu.pdf"}})
        );
    }
}
