//! The queue envelope: one JSON message per platform event, from the ingress to the worker.
//!
//! ```json
//! {"version":1,"platform":"line","key":"line:01H…","conversation":"line:U…:user:U…",
//!  "timestamp":1700000000000,"received_at":1700000000123,
//!  "line":{"destination":"U…"},
//!  "event":{ …the event exactly as received… }}
//! ```
//!
//! `event` is the platform's JSON byte for byte: unknown fields and types included, non-ASCII
//! escapes and all. Meta envelopes carry `meta` (`object`, `entry_id`, `entry_time`, `list`)
//! instead of `line`.

use crate::meta::ItemList;
use crate::platform::Platform;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The envelope format's version. A worker refuses envelopes of a version it does not know.
pub const ENVELOPE_VERSION: u32 = 1;

/// Room for an envelope's fields around its event: key and conversation (128 characters each
/// at most), context and field names.
const WRAPPER_CAPACITY: usize = 512;

/// One event on its way from the ingress to the worker. `E` is the event's JSON: borrowed
/// (`&RawValue`) when the ingress writes it, owned (`Box<RawValue>`, the default) when read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope<E = Box<RawValue>> {
    pub version: u32,
    pub platform: Platform,
    /// The deduplication key (see [`crate::key`]).
    pub key: String,
    /// The conversation the event belongs to; events of one conversation are handled in order.
    pub conversation: String,
    /// The event's own time in milliseconds, where it has one; orders a conversation's events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// When the ingress received the request, in milliseconds since the epoch.
    pub received_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<LineContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<MetaContext>,
    /// Set when the event was too large for one queue message; `event` is then `null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oversized: Option<Oversized>,
    /// The event exactly as received.
    pub event: E,
}

/// What a LINE event needs from its request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineContext {
    /// The bot's user id.
    pub destination: String,
}

/// What a Meta item needs from its notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetaContext {
    /// `page`, `instagram` or `whatsapp_business_account`.
    pub object: String,
    /// The page, Instagram account or WhatsApp Business Account id.
    pub entry_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_time: Option<i64>,
    /// The list of the entry the item came from.
    pub list: ItemList,
}

/// An event that did not fit in a queue message. Its bytes are not in the envelope: the ingress
/// logs the key at error level and the worker reports the envelope to the bot as oversized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Oversized {
    /// The event's size in bytes.
    pub bytes: usize,
    /// Lowercase hex SHA-256 of the event's bytes, to match it with the platform's logs.
    pub sha256: String,
}

/// Why a queue message could not be read as an envelope.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("queue message is not an envelope: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("queue message has envelope version {0}, this worker reads {ENVELOPE_VERSION}")]
    Version(u32),
    #[error("{0} envelope lacks its `{0}` context")]
    MissingContext(Platform),
}

impl Envelope {
    /// Reads and checks a queue message body.
    pub fn decode(body: &str) -> Result<Envelope, EnvelopeError> {
        let envelope: Envelope = serde_json::from_str(body)?;
        if envelope.version != ENVELOPE_VERSION {
            return Err(EnvelopeError::Version(envelope.version));
        }
        let has_context = match envelope.platform {
            Platform::Line => envelope.line.is_some(),
            Platform::Meta => envelope.meta.is_some(),
        };
        if !has_context {
            return Err(EnvelopeError::MissingContext(envelope.platform));
        }
        Ok(envelope)
    }
}

impl<E: Serialize> Envelope<E> {
    /// The envelope as the queue message body.
    pub fn encode(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}

impl Envelope<&RawValue> {
    /// [`Envelope::encode`] into a buffer sized once for the event and the wrapper around it:
    /// growing the buffer step by step was a tenth of the ingress's time on a 1000-item batch.
    pub fn encode_sized(&self) -> Result<String, serde_json::Error> {
        let mut buffer = Vec::with_capacity(self.event.get().len() + WRAPPER_CAPACITY);
        serde_json::to_writer(&mut buffer, self)?;
        // serde_json writes valid UTF-8; the check is cheap beside the copy it guards.
        String::from_utf8(buffer).map_err(|e| serde::ser::Error::custom(e.utf8_error()))
    }
}
