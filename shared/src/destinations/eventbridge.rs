//! The Amazon EventBridge destination: one `PutEvents` entry per event, on the configured bus.
//!
//! - `source` is the deployment's (`DESTINATION_SOURCE`, the stack's name in the template),
//!   `detail-type` the event's [`type`](super::event_type) (`line.message.text`,
//!   `meta.messenger.message`, `whatsapp.status.read`, …) and `detail` its
//!   [`Document`](super::Document): rules filter by platform, product and type with a prefix or
//!   exact match on `detail-type`, without reading the event.
//! - `PutEvents` answers `200` even when it refused the entry: the answer's `FailedEntryCount` and
//!   the entry's `ErrorCode` are what say it was accepted (AWS's PutEvents reference). A throttled
//!   or internally failed entry is retried; an entry refused as malformed is not.
//! - An entry may be at most 256 KB (AWS's entry size calculation: the source, detail-type and
//!   detail in UTF-8 bytes, 14 bytes for the time). A larger document leaves its event in the
//!   claim-check bucket ([`super::Offload`]) and carries `event_claim` instead.
//! - EventBridge delivers to targets asynchronously and does not promise their order: the worker
//!   puts a conversation's next event only after the previous one was accepted, and each detail
//!   carries `timestamp` for receivers that must order.

use super::document::{Document, Offload};
use super::retry::{Attempt, DeliveryStats, deliver_with_retries};
use crate::bot::{Bot, BotError, BotEvent};
use crate::clients::Clients;
use async_trait::async_trait;
use aws_sdk_eventbridge::error::DisplayErrorContext;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use std::sync::Arc;
use std::time::Duration;

/// EventBridge's largest entry, in bytes.
pub const MAX_ENTRY_BYTES: usize = 256 * 1024;
/// What the entry size calculation counts for the `Time` field, set or not.
const TIME_BYTES: usize = 14;

/// Entry error codes that a later try can clear.
const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "InternalFailure",
    "InternalException",
    "ServiceUnavailable",
];

/// The EventBridge destination.
pub struct EventBridgeDestination {
    client: aws_sdk_eventbridge::Client,
    bus: String,
    source: String,
    offload: Option<Offload>,
    stats: Arc<DeliveryStats>,
}

impl EventBridgeDestination {
    /// Puts entries on `bus` (a name, an ARN, or `default`) with `source`; documents over the
    /// entry limit go through `offload` (without it they fail, and are retried, then
    /// dead-lettered).
    pub fn new(
        client: aws_sdk_eventbridge::Client,
        bus: impl Into<String>,
        source: impl Into<String>,
        offload: Option<Offload>,
    ) -> Self {
        EventBridgeDestination {
            client,
            bus: bus.into(),
            source: source.into(),
            offload,
            stats: Arc::new(DeliveryStats::default()),
        }
    }

    /// A client whose calls each get one attempt: retries are the destination's, inside the
    /// event's deadline.
    pub fn client(config: &aws_config::SdkConfig) -> aws_sdk_eventbridge::Client {
        aws_sdk_eventbridge::Client::from_conf(
            aws_sdk_eventbridge::config::Builder::from(config)
                .retry_config(aws_sdk_eventbridge::config::retry::RetryConfig::disabled())
                .timeout_config(
                    aws_sdk_eventbridge::config::timeout::TimeoutConfig::builder()
                        .connect_timeout(Duration::from_secs(1))
                        .operation_attempt_timeout(Duration::from_secs(5))
                        .build(),
                )
                .build(),
        )
    }

    /// The delivery counts, for metrics.
    pub fn stats(&self) -> Arc<DeliveryStats> {
        Arc::clone(&self.stats)
    }

    async fn attempt(&self, entry: &PutEventsRequestEntry) -> Result<(), Attempt> {
        let output = self
            .client
            .put_events()
            .entries(entry.clone())
            .send()
            .await
            .map_err(|error| {
                let service = error.as_service_error().map(|e| e.meta().code());
                match service.flatten() {
                    // The request itself is wrong: retrying sends the same.
                    Some("ValidationException") => {
                        Attempt::Permanent(DisplayErrorContext(&error).to_string())
                    }
                    _ => Attempt::Retry {
                        reason: DisplayErrorContext(&error).to_string(),
                        after: None,
                    },
                }
            })?;
        if output.failed_entry_count() == 0 {
            return Ok(());
        }
        let failed = output.entries().iter().find(|e| e.error_code().is_some());
        let code = failed
            .and_then(|e| e.error_code())
            .unwrap_or("unknown")
            .to_owned();
        let message = failed.and_then(|e| e.error_message()).unwrap_or_default();
        let reason = format!("PutEvents refused the entry: {code} {message}");
        if RETRYABLE_CODES.contains(&code.as_str()) {
            Err(Attempt::Retry {
                reason,
                after: None,
            })
        } else if code == "MalformedDetail" || code.starts_with("InvalidArgument") {
            Err(Attempt::Permanent(reason))
        } else {
            // Access denied, a missing bus: the operator can fix it within the worker's attempts.
            Err(Attempt::Retry {
                reason,
                after: None,
            })
        }
    }
}

/// An entry's size as EventBridge counts it.
pub fn entry_size(source: &str, detail_type: &str, detail: &[u8]) -> usize {
    TIME_BYTES + source.len() + detail_type.len() + detail.len()
}

#[async_trait]
impl Bot for EventBridgeDestination {
    async fn handle(&self, event: &BotEvent, _clients: &Clients) -> Result<(), BotError> {
        let document = Document::of(event);
        let room = MAX_ENTRY_BYTES.saturating_sub(entry_size(&self.source, &document.kind, b""));
        let detail = match &self.offload {
            Some(offload) => offload.fit(&document, room).await?,
            None => {
                let bytes = document.to_bytes();
                if bytes.len() > room {
                    return Err(format!(
                        "the event's document is {} bytes, over EventBridge's entry limit, and no claim-check bucket is configured",
                        bytes.len()
                    )
                    .into());
                }
                bytes
            }
        };
        // serde_json wrote it: valid UTF-8.
        let detail = String::from_utf8(detail).map_err(|e| e.to_string())?;
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(&self.source)
            .detail_type(&document.kind)
            .detail(detail)
            .build();
        deliver_with_retries("eventbridge", &self.stats, event.deadline, |_left| {
            self.attempt(&entry)
        })
        .await
    }
}
