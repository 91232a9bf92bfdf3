//! The JSON every destination receives for one event:
//!
//! ```json
//! {"version":1,"id":"line:01H…","type":"line.message.text","platform":"line",
//!  "conversation":"line:U…:user:U…","timestamp":1700000000000,"received_at":1700000000123,
//!  "line":{"destination":"U…"},
//!  "event":{ …the event exactly as the platform sent it… }}
//! ```
//!
//! - `tenant` names the registry tenant on `/line/{tenant}` and `/meta/{tenant}` (an EventBridge
//!   rule matches `detail.tenant`); `id` and `conversation` then begin with `{tenant}/`.
//! - `id` is the event's deduplication key: the same on every delivery of the event (the
//!   Standard Webhooks `webhook-id`), so a receiver can deduplicate by it too.
//! - `type` ([`event_type`]) lets EventBridge rules and receivers route without parsing the event:
//!   `line.{event type}[.{message type}]`, `meta.{messenger|instagram}.{field}` (echoes
//!   `meta.messenger.echo`, standby `meta.messenger.standby.{field}`, changes by their field) and
//!   `whatsapp.message.{type}`, `whatsapp.status.{status}`, `whatsapp.{field}`. Types the models do
//!   not know yet appear under their own name.
//! - `event` is the platform's JSON byte for byte. When the whole document is over the
//!   destination's size limit (EventBridge: 256 KB), `event` is `null` and `event_claim` names the
//!   S3 object holding the event's bytes (`bucket`, `key`, `bytes`, `sha256`).

use crate::bot::BotEvent;
use crate::envelope::{LineContext, MetaContext};
use crate::meta::ItemList;
use crate::platform::Platform;
use crate::ports::ClaimStore;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The document's format version.
pub const DOCUMENT_VERSION: u32 = 1;

/// One event as a destination receives it (see the module's description).
#[derive(Debug, Serialize, Deserialize)]
pub struct Document<'a> {
    pub version: u32,
    /// The deduplication key.
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: String,
    pub platform: Platform,
    /// The registry tenant ([`crate::tenants`]); absent on the single-tenant routes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<&'a str>,
    pub conversation: &'a str,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    pub received_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<LineContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<MetaContext>,
    /// Where the event's bytes are when the document would be too large with them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_claim: Option<EventClaim>,
    /// The event exactly as received; `null` when it travels by [`EventClaim`].
    #[serde(borrow)]
    pub event: &'a RawValue,
}

/// An event's bytes in object storage, for a document too large to carry them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventClaim {
    pub bucket: String,
    pub key: String,
    pub bytes: usize,
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
}

const NULL: &str = "null";

impl<'a> Document<'a> {
    /// The document of `event`, with the event inline.
    pub fn of(event: &'a BotEvent) -> Document<'a> {
        Document {
            version: DOCUMENT_VERSION,
            id: &event.key,
            kind: event_type(event),
            platform: event.platform,
            tenant: event.tenant.as_deref(),
            conversation: &event.conversation,
            timestamp: event.timestamp,
            received_at: event.received_at,
            line: event.line.clone(),
            meta: event.meta.clone(),
            event_claim: None,
            event: &event.raw,
        }
    }

    /// The document as JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising plain fields and a RawValue cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Where documents over a destination's size limit leave their event: the claim-check bucket,
/// under `deliveries/` (its lifecycle rule removes them; the receiver is given read access).
#[derive(Clone)]
pub struct Offload {
    pub store: Arc<dyn ClaimStore>,
    /// The bucket's name, as the receiver reads it.
    pub bucket: String,
}

impl Offload {
    /// `document` as bytes no larger than `limit`: as is when it fits, else with its event written
    /// to the store and named in `event_claim`. Fails when the store does, or when even the
    /// document without its event does not fit.
    pub async fn fit(&self, document: &Document<'_>, limit: usize) -> Result<Vec<u8>, String> {
        let bytes = document.to_bytes();
        if bytes.len() <= limit {
            return Ok(bytes);
        }
        let event = document.event.get().as_bytes();
        let sha256 = hex::encode(Sha256::digest(event));
        // Named by content and key: a retry writes the same object.
        let key = format!(
            "deliveries/{}.json",
            hex::encode(Sha256::digest(format!("{}\0{sha256}", document.id)))
        );
        self.store
            .put(&key, bytes::Bytes::copy_from_slice(event))
            .await
            .map_err(|e| format!("event too large for the destination, and not offloaded: {e}"))?;
        let null: &RawValue = serde_json::from_str(NULL).map_err(|e| e.to_string())?;
        let claimed = Document {
            version: document.version,
            id: document.id,
            kind: document.kind.clone(),
            platform: document.platform,
            tenant: document.tenant,
            conversation: document.conversation,
            timestamp: document.timestamp,
            received_at: document.received_at,
            line: document.line.clone(),
            meta: document.meta.clone(),
            event_claim: Some(EventClaim {
                bucket: self.bucket.clone(),
                key,
                bytes: event.len(),
                sha256,
            }),
            event: null,
        };
        let bytes = claimed.to_bytes();
        if bytes.len() > limit {
            return Err(format!(
                "the document is {} bytes even without its event; the destination takes {limit}",
                bytes.len()
            ));
        }
        Ok(bytes)
    }
}

/// The event's type for routing: see the module's description. Read from the event's own JSON, so
/// that types the models do not know yet keep their names.
pub fn event_type(event: &BotEvent) -> String {
    let raw = event.raw.get();
    match event.platform {
        Platform::Line => line_type(raw),
        Platform::Meta => match &event.meta {
            Some(context) => meta_type(context, raw),
            None => "meta.unknown".into(),
        },
    }
}

/// The fields a type is made of; anything else in the event is skipped unread.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Head {
    #[serde(rename = "type")]
    kind: Option<serde_json::Value>,
    message: Option<Inner>,
    field: Option<serde_json::Value>,
    value: Option<WhatsAppHead>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Inner {
    #[serde(rename = "type")]
    kind: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WhatsAppHead {
    messages: Option<Vec<Inner>>,
    statuses: Option<Vec<StatusHead>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct StatusHead {
    status: Option<serde_json::Value>,
}

fn head(raw: &str) -> Head {
    serde_json::from_str(raw).unwrap_or_default()
}

/// A type segment: the name as sent, limited to characters that need no escaping in a rule or a
/// header and to 64 of them; `unknown` when there is none.
fn segment(value: Option<&serde_json::Value>) -> String {
    let Some(serde_json::Value::String(name)) = value else {
        return "unknown".into();
    };
    let cleaned: String = name
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "unknown".into()
    } else {
        cleaned
    }
}

fn line_type(raw: &str) -> String {
    let head = head(raw);
    let kind = segment(head.kind.as_ref());
    match (kind.as_str(), head.message) {
        ("message", Some(message)) => format!("line.message.{}", segment(message.kind.as_ref())),
        _ => format!("line.{kind}"),
    }
}

/// The keys of a messaging item that are not its event: the event is the first other key.
const MESSAGING_COMMON: &[&str] = &["sender", "recipient", "timestamp"];

fn meta_type(context: &MetaContext, raw: &str) -> String {
    let product = match context.object.as_str() {
        "page" => "meta.messenger",
        "instagram" => "meta.instagram",
        "whatsapp_business_account" => "whatsapp",
        other => return format!("meta.{}", segment(Some(&other.into()))),
    };
    match context.list {
        ItemList::Messaging | ItemList::Standby => {
            let standby = if context.list == ItemList::Standby {
                ".standby"
            } else {
                ""
            };
            // The event is named by its field (`message`, `postback`, `read`, …), whichever it is.
            let object: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(raw).unwrap_or_default();
            let field = object
                .keys()
                .find(|key| !MESSAGING_COMMON.contains(&key.as_str()))
                .cloned();
            let echo = object
                .get("message")
                .and_then(|m| m.get("is_echo"))
                .and_then(serde_json::Value::as_bool)
                == Some(true);
            let field = if echo {
                "echo".to_owned()
            } else {
                segment(field.map(serde_json::Value::String).as_ref())
            };
            format!("{product}{standby}.{field}")
        }
        ItemList::Changes => {
            let head = head(raw);
            let field = segment(head.field.as_ref());
            if product != "whatsapp" || field != "messages" {
                return format!("{product}.{field}");
            }
            let value = head.value.unwrap_or_default();
            if let Some(message) = value.messages.as_ref().and_then(|m| m.first()) {
                return format!("whatsapp.message.{}", segment(message.kind.as_ref()));
            }
            if let Some(status) = value.statuses.as_ref().and_then(|s| s.first()) {
                return format!("whatsapp.status.{}", segment(status.status.as_ref()));
            }
            "whatsapp.messages".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Envelope;
    use tokio::time::Instant;

    fn bot_event(platform: Platform, meta: Option<(&str, ItemList)>, raw: &str) -> BotEvent {
        let envelope = Envelope {
            version: 1,
            platform,
            tenant: None,
            key: "k".into(),
            conversation: "c".into(),
            timestamp: None,
            received_at: 0,
            stage: Default::default(),
            line: (platform == Platform::Line).then_some(LineContext { destination: None }),
            meta: meta.map(|(object, list)| MetaContext {
                object: object.into(),
                entry_id: "1".into(),
                entry_time: None,
                list,
            }),
            claim: None,
            event_base64: None,
            oversized: None,
            event: RawValue::from_string(raw.to_owned()).unwrap(),
        };
        BotEvent::from_envelope(envelope, Instant::now())
    }

    type Case<'a> = (Platform, Option<(&'a str, ItemList)>, &'a str, &'a str);

    #[test]
    fn types_route_by_platform_product_and_kind() {
        let cases: &[Case] = &[
            (
                Platform::Line,
                None,
                r#"{"type":"message","message":{"type":"text","id":"1","text":"hi"}}"#,
                "line.message.text",
            ),
            (Platform::Line, None, r#"{"type":"follow"}"#, "line.follow"),
            (
                Platform::Line,
                None,
                r#"{"type":"membershipRenewed","x":1}"#,
                "line.membershipRenewed",
            ),
            (
                Platform::Line,
                None,
                r#"{"type":"message","message":{"type":"hologram"}}"#,
                "line.message.hologram",
            ),
            (Platform::Line, None, r#"{"type":7}"#, "line.unknown"),
            (Platform::Line, None, r#"{"type":"a.b c"}"#, "line.a_b_c"),
            (
                Platform::Meta,
                Some(("page", ItemList::Messaging)),
                r#"{"sender":{"id":"1"},"recipient":{"id":"2"},"timestamp":1,"message":{"mid":"m","text":"hi"}}"#,
                "meta.messenger.message",
            ),
            (
                Platform::Meta,
                Some(("page", ItemList::Messaging)),
                r#"{"sender":{"id":"1"},"recipient":{"id":"2"},"timestamp":1,"message":{"mid":"m","is_echo":true}}"#,
                "meta.messenger.echo",
            ),
            (
                Platform::Meta,
                Some(("page", ItemList::Standby)),
                r#"{"sender":{"id":"1"},"recipient":{"id":"2"},"timestamp":1,"postback":{}}"#,
                "meta.messenger.standby.postback",
            ),
            (
                Platform::Meta,
                Some(("instagram", ItemList::Messaging)),
                r#"{"sender":{"id":"1"},"recipient":{"id":"2"},"timestamp":1,"reaction":{}}"#,
                "meta.instagram.reaction",
            ),
            (
                Platform::Meta,
                Some(("instagram", ItemList::Changes)),
                r#"{"field":"comments","value":{}}"#,
                "meta.instagram.comments",
            ),
            (
                Platform::Meta,
                Some(("whatsapp_business_account", ItemList::Changes)),
                r#"{"field":"messages","value":{"messages":[{"type":"text"}]}}"#,
                "whatsapp.message.text",
            ),
            (
                Platform::Meta,
                Some(("whatsapp_business_account", ItemList::Changes)),
                r#"{"field":"messages","value":{"statuses":[{"status":"read"}]}}"#,
                "whatsapp.status.read",
            ),
            (
                Platform::Meta,
                Some(("whatsapp_business_account", ItemList::Changes)),
                r#"{"field":"message_template_status_update","value":{}}"#,
                "whatsapp.message_template_status_update",
            ),
            (
                Platform::Meta,
                Some(("user", ItemList::Changes)),
                r#"{"field":"feed"}"#,
                "meta.user",
            ),
        ];
        for (platform, meta, raw, expected) in cases {
            let event = bot_event(*platform, *meta, raw);
            assert_eq!(event_type(&event), *expected, "{raw}");
        }
    }

    #[test]
    fn the_document_carries_the_event_byte_for_byte() {
        let raw = r#"{"type":"message", "message":{"type":"text","text":"\u00e9 1.0e2 \ud83d\ude00","id":"1"},"unknownField":[1,2]}"#;
        let event = bot_event(Platform::Line, None, raw);
        let bytes = Document::of(&event).to_bytes();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains(raw), "{text}");
        assert!(text.starts_with(r#"{"version":1,"id":"k","type":"line.message.text","platform":"line","conversation":"c""#), "{text}");
    }
}
