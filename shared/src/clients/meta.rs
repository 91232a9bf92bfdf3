//! The Meta Graph API calls a bot needs: the Send API for Messenger and Instagram.

use super::limits::Limiter;
use super::{ApiError, send_with_retries};
pub use crate::messages::meta::Message;
use serde_json::json;
use std::fmt;
use std::sync::Arc;
use tokio::time::Instant;

/// The Graph API with a current version. Override with `META_GRAPH_API_BASE_URL`.
pub const DEFAULT_GRAPH_API_BASE_URL: &str = "https://graph.facebook.com/v24.0";

/// A Graph API client for one page.
#[derive(Clone)]
pub struct MetaClient {
    http: reqwest::Client,
    token: String,
    /// The tenant\'s share of calls ([`super::limits`]), when it has limits.
    limiter: Option<Arc<Limiter>>,
    base: String,
}

impl fmt::Debug for MetaClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetaClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl MetaClient {
    /// The same client, its calls taking turns under `limiter` (a tenant's limits).
    pub fn with_limiter(mut self, limiter: Option<Arc<Limiter>>) -> MetaClient {
        self.limiter = limiter;
        self
    }

    pub fn new(
        http: reqwest::Client,
        token: impl Into<String>,
        base: impl Into<String>,
    ) -> MetaClient {
        MetaClient {
            http,
            token: token.into(),
            limiter: None,
            base: base.into().trim_end_matches('/').to_owned(),
        }
    }

    /// Sends a text message to a user (page-scoped or Instagram-scoped id) as a response to
    /// their message; see [`MetaClient::send`].
    pub async fn send_text(
        &self,
        recipient_id: &str,
        text: &str,
        deadline: Instant,
    ) -> Result<(), ApiError> {
        self.send(recipient_id, &Message::text(text), deadline)
            .await
    }

    /// Sends `message` to a user (page-scoped or Instagram-scoped id) as a response to their
    /// message (`messaging_type: RESPONSE`, allowed within 24 hours of it). The page token
    /// travels in the `Authorization` header, never in the URL.
    pub async fn send(
        &self,
        recipient_id: &str,
        message: &Message,
        deadline: Instant,
    ) -> Result<(), ApiError> {
        let url = format!("{}/me/messages", self.base);
        let body = json!({
            "recipient": {"id": recipient_id},
            "messaging_type": "RESPONSE",
            "message": message,
        });
        send_with_retries(
            self.limiter.as_deref(),
            "Meta Send API",
            || self.http.post(&url).bearer_auth(&self.token).json(&body),
            deadline,
        )
        .await
        .map(|_| ())
    }
}
