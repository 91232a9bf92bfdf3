//! The Lambda destination: each event's [`Document`](super::Document) is the payload of a
//! synchronous (`RequestResponse`) invocation of another function, in any runtime.
//!
//! The invocation delivers when it returns without a function error. A function error (the
//! function threw, timed out or ran out of memory: Lambda answers `200` with
//! `X-Amz-Function-Error`) and any failed call are retried, inside the event's deadline and then by
//! the queue, until the worker's attempts run out. Only the error's type is logged, never its
//! message, which may quote the event.
//!
//! A synchronous payload is at most 6 MB (Lambda's quotas): a larger document leaves its event in
//! the claim-check bucket ([`super::Offload`]). The destination function must finish well within
//! the worker's own timeout.

use super::document::{Document, Offload};
use super::retry::{Attempt, DeliveryStats, deliver_with_retries};
use crate::bot::{Bot, BotError, BotEvent};
use crate::clients::Clients;
use async_trait::async_trait;
use aws_sdk_lambda::error::DisplayErrorContext;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use std::sync::Arc;
use std::time::Duration;

/// The largest synchronous invocation payload, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;

/// The Lambda destination.
pub struct LambdaDestination {
    client: aws_sdk_lambda::Client,
    function: String,
    offload: Option<Offload>,
    stats: Arc<DeliveryStats>,
}

impl LambdaDestination {
    pub fn new(
        client: aws_sdk_lambda::Client,
        function: impl Into<String>,
        offload: Option<Offload>,
    ) -> Self {
        LambdaDestination {
            client,
            function: function.into(),
            offload,
            stats: Arc::new(DeliveryStats::default()),
        }
    }

    /// A client without retries of its own (the destination's are inside the event's deadline);
    /// each call is bounded by the time the event has left.
    pub fn client(config: &aws_config::SdkConfig) -> aws_sdk_lambda::Client {
        aws_sdk_lambda::Client::from_conf(
            aws_sdk_lambda::config::Builder::from(config)
                .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
                .timeout_config(
                    aws_sdk_lambda::config::timeout::TimeoutConfig::builder()
                        .connect_timeout(Duration::from_secs(1))
                        .build(),
                )
                .build(),
        )
    }

    /// The delivery counts, for metrics.
    pub fn stats(&self) -> Arc<DeliveryStats> {
        Arc::clone(&self.stats)
    }

    async fn attempt(&self, payload: &[u8]) -> Result<(), Attempt> {
        let output = self
            .client
            .invoke()
            .function_name(&self.function)
            .invocation_type(InvocationType::RequestResponse)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|error| Attempt::Retry {
                reason: DisplayErrorContext(&error).to_string(),
                after: None,
            })?;
        match output.function_error() {
            None => Ok(()),
            Some(kind) => {
                let error_type = output
                    .payload()
                    .and_then(|p| serde_json::from_slice::<ErrorPayload>(p.as_ref()).ok())
                    .and_then(|p| p.error_type)
                    .unwrap_or_else(|| "unknown".into());
                Err(Attempt::Retry {
                    reason: format!("the function failed ({kind}): {error_type}"),
                    after: None,
                })
            }
        }
    }
}

/// The part of a function error's payload that is safe to log.
#[derive(serde::Deserialize)]
struct ErrorPayload {
    #[serde(rename = "errorType")]
    error_type: Option<String>,
}

#[async_trait]
impl Bot for LambdaDestination {
    async fn handle(&self, event: &BotEvent, _clients: &Clients) -> Result<(), BotError> {
        let document = Document::of(event);
        let payload = match &self.offload {
            Some(offload) => offload.fit(&document, MAX_PAYLOAD_BYTES).await?,
            None => document.to_bytes(),
        };
        deliver_with_retries("lambda", &self.stats, event.deadline, |_left| {
            self.attempt(&payload)
        })
        .await
    }
}
