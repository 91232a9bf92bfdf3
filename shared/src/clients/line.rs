//! The LINE Messaging API calls a bot needs: reply, push, profile and content.

use super::limits::Limiter;
use super::{ApiError, send_with_retries};
pub use crate::messages::line::Message;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::Arc;
use tokio::time::Instant;

pub const DEFAULT_API_BASE_URL: &str = "https://api.line.me";
pub const DEFAULT_DATA_API_BASE_URL: &str = "https://api-data.line.me";

/// A LINE Messaging API client for one channel.
#[derive(Clone)]
pub struct LineClient {
    http: reqwest::Client,
    token: String,
    /// The tenant\'s share of calls ([`super::limits`]), when it has limits.
    limiter: Option<Arc<Limiter>>,
    api_base: String,
    data_api_base: String,
}

impl fmt::Debug for LineClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineClient")
            .field("api_base", &self.api_base)
            .field("data_api_base", &self.data_api_base)
            .finish_non_exhaustive()
    }
}

/// A user's profile (`GET /v2/bot/profile/{userId}`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub user_id: Option<String>,
    pub display_name: String,
    pub picture_url: Option<String>,
    pub status_message: Option<String>,
    pub language: Option<String>,
}

/// A text message, quoting the message of `quote_token` when given; see
/// [`crate::messages::line::Message`] for every other kind.
pub fn text_message(text: &str, quote_token: Option<&str>) -> Message {
    let message = Message::text(text);
    match quote_token {
        Some(token) => message.quote(token),
        None => message,
    }
}

impl LineClient {
    /// The same client, its calls taking turns under `limiter` (a tenant's limits).
    pub fn with_limiter(mut self, limiter: Option<Arc<Limiter>>) -> LineClient {
        self.limiter = limiter;
        self
    }

    pub fn new(
        http: reqwest::Client,
        token: impl Into<String>,
        api_base: impl Into<String>,
        data_api_base: impl Into<String>,
    ) -> LineClient {
        LineClient {
            http,
            token: token.into(),
            limiter: None,
            api_base: api_base.into().trim_end_matches('/').to_owned(),
            data_api_base: data_api_base.into().trim_end_matches('/').to_owned(),
        }
    }

    /// The base URL of the content API (`api-data.line.me`), for media downloads.
    pub fn data_api_base(&self) -> &str {
        &self.data_api_base
    }

    /// Replies with `messages` (1 to 5 message objects). A reply token works once, within about a
    /// minute: a used or expired one is refused with `400` (see [`is_invalid_reply_token`]) and
    /// not retried.
    pub async fn reply(
        &self,
        reply_token: &str,
        messages: &[Message],
        deadline: Instant,
    ) -> Result<(), ApiError> {
        let url = format!("{}/v2/bot/message/reply", self.api_base);
        let body = json!({"replyToken": reply_token, "messages": messages});
        send_with_retries(
            self.limiter.as_deref(),
            "LINE reply",
            || self.http.post(&url).bearer_auth(&self.token).json(&body),
            deadline,
        )
        .await
        .map(|_| ())
    }

    /// Pushes `messages` to a user, group or room. `retry_key` (for example the event's
    /// deduplication key) becomes LINE's `X-Line-Retry-Key`, so that LINE sends the message once
    /// however often the call is retried, even across invocations.
    pub async fn push(
        &self,
        to: &str,
        messages: &[Message],
        retry_key: &str,
        deadline: Instant,
    ) -> Result<(), ApiError> {
        let url = format!("{}/v2/bot/message/push", self.api_base);
        let body = json!({"to": to, "messages": messages});
        let retry_key = uuid_from(retry_key);
        match send_with_retries(
            self.limiter.as_deref(),
            "LINE push",
            || {
                self.http
                    .post(&url)
                    .bearer_auth(&self.token)
                    .header("X-Line-Retry-Key", &retry_key)
                    .json(&body)
            },
            deadline,
        )
        .await
        {
            Ok(_) => Ok(()),
            // LINE already accepted a request with this retry key: the message was sent.
            Err(ApiError::Refused { status: 409, .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// A user's profile.
    pub async fn profile(&self, user_id: &str, deadline: Instant) -> Result<Profile, ApiError> {
        let url = format!("{}/v2/bot/profile/{}", self.api_base, path_segment(user_id));
        let response = send_with_retries(
            self.limiter.as_deref(),
            "LINE profile",
            || self.http.get(&url).bearer_auth(&self.token),
            deadline,
        )
        .await?;
        let body = response.bytes().await.map_err(|_| ApiError::Unreadable {
            api: "LINE profile",
            reason: "the answer's body could not be read".into(),
        })?;
        // The profile holds a user's name and status message: errors must not quote it.
        serde_json::from_slice(&body).map_err(|e| ApiError::Unreadable {
            api: "LINE profile",
            reason: crate::json_error::JsonError::from(e).to_string(),
        })
    }
}

impl LineClient {
    /// Downloads what a user sent (`image`, `video`, `audio`, `file`), or with `preview` the
    /// preview image of an image or video, from the content API; at most `max_bytes`.
    pub async fn content(
        &self,
        message_id: &str,
        preview: bool,
        deadline: Instant,
        max_bytes: usize,
        in_flight: Option<&super::ByteBudget>,
    ) -> Result<super::Download, ApiError> {
        let url = format!(
            "{}/v2/bot/message/{}/content{}",
            self.data_api_base,
            path_segment(message_id),
            if preview { "/preview" } else { "" }
        );
        super::download(
            self.limiter.as_deref(),
            if preview {
                "LINE content preview"
            } else {
                "LINE content"
            },
            || self.http.get(&url).bearer_auth(&self.token),
            deadline,
            max_bytes,
            in_flight,
        )
        .await
    }
}

/// True for LINE's refusal of a used or expired reply token.
pub fn is_invalid_reply_token(error: &ApiError) -> bool {
    matches!(error, ApiError::Refused { status: 400, message, .. }
        if message.to_ascii_lowercase().contains("reply token"))
}

/// A UUID (as LINE's retry key requires) derived from any string.
fn uuid_from(key: &str) -> String {
    let hash = hex::encode(&Sha256::digest(key.as_bytes())[..16]);
    format!(
        "{}-{}-4{}-a{}-{}",
        &hash[0..8],
        &hash[8..12],
        &hash[13..16],
        &hash[17..20],
        &hash[20..32]
    )
}

/// Ids from events go into URL paths: keep them to the characters LINE ids use.
fn path_segment(id: &str) -> String {
    id.chars().filter(|c| c.is_ascii_alphanumeric()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_keys_are_stable_uuids() {
        let key = uuid_from("line:01JDEMO");
        assert_eq!(key, uuid_from("line:01JDEMO"));
        assert_ne!(key, uuid_from("line:01JDEMP"));
        assert_eq!(key.len(), 36);
        assert_eq!(key.matches('-').count(), 4);
        assert_eq!(&key[14..15], "4");
    }

    #[test]
    fn ids_cannot_leave_their_path_segment() {
        assert_eq!(path_segment("U1234abcd"), "U1234abcd");
        assert_eq!(path_segment("../../v2/bot/x?y=1"), "v2botxy1");
    }

    #[test]
    fn text_messages_quote_when_asked() {
        assert_eq!(
            text_message("hi", None).to_json(),
            json!({"type": "text", "text": "hi"})
        );
        assert_eq!(text_message("hi", Some("q")).to_json()["quoteToken"], "q");
    }
}
