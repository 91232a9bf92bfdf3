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
//! instead of `line`. Two cases carry the event elsewhere, still byte for byte:
//! - `claim`: the event is too large for a queue message (SQS: 1 MiB); its bytes wait in the
//!   claim-check store (S3) under `claim.object`, with their size and SHA-256.
//! - `event_base64`: the event holds U+FFFE or U+FFFF, which JSON allows raw but SQS refuses in a
//!   message body; its bytes travel base64-encoded.
//!
//! `tenant` names the registry tenant on `/line/{tenant}` and `/meta/{tenant}`; its key and
//! conversation are then prefixed `{tenant}/`.
//!
//! `stage: "archive"` marks an archive-only message (the archive's own retries, see
//! [`crate::worker`]).

use crate::meta::ItemList;
use crate::platform::Platform;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

/// The envelope format's version. A worker refuses envelopes of a version it does not know.
pub const ENVELOPE_VERSION: u32 = 1;

/// Room for an envelope's fields around its event: key and conversation (128 characters each
/// at most), context and field names.
const WRAPPER_CAPACITY: usize = 512;

/// What a message asks of the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Run the bot (and then the archive): every event the ingress queues.
    #[default]
    Bot,
    /// Archive only: the archive's retry of an event the bot has handled.
    Archive,
}

impl Stage {
    fn is_bot(&self) -> bool {
        *self == Stage::Bot
    }
}

/// One event on its way from the ingress to the worker. `E` is the event's JSON: borrowed
/// (`&RawValue`) when the ingress writes it, owned (`Box<RawValue>`, the default) when read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope<E = Box<RawValue>> {
    pub version: u32,
    pub platform: Platform,
    /// The registry tenant whose URL received the event (see [`crate::tenants`]); absent on the
    /// single-tenant routes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The deduplication key (see [`crate::key`]).
    pub key: String,
    /// The conversation the event belongs to; events of one conversation are handled in order.
    pub conversation: String,
    /// The event's own time in milliseconds, where it has one; orders a conversation's events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// When the ingress received the request, in milliseconds since the epoch.
    pub received_at: i64,
    #[serde(default, skip_serializing_if = "Stage::is_bot")]
    pub stage: Stage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<LineContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<MetaContext>,
    /// Set when the event's bytes wait in the claim-check store; `event` is then `null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<ClaimCheck>,
    /// The event's bytes in base64, when they hold characters SQS refuses; `event` is then `null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_base64: Option<String>,
    /// From gateways before claim checks: an event too large for a message, of which only the
    /// size and hash arrived. Read, never written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oversized: Option<Oversized>,
    /// The event exactly as received.
    pub event: E,
}

/// What a LINE event needs from its request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineContext {
    /// The bot's user id; `None` for the rare body without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
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

/// Where an event too large for a queue message waits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimCheck {
    /// The object's name in the claim-check store.
    pub object: String,
    /// The event's size in bytes.
    pub bytes: usize,
    /// Lowercase hex SHA-256 of the event's bytes: what is read back is checked against it.
    pub sha256: String,
}

/// An event that did not fit in a queue message, from gateways before claim checks.
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
    /// What is wrong and where, never a value from the message.
    #[error("queue message is not an envelope: {0}")]
    Malformed(#[from] crate::json_error::JsonError),
    #[error("queue message has envelope version {0}, this worker reads {ENVELOPE_VERSION}")]
    Version(u32),
    #[error("{0} envelope lacks its `{0}` context")]
    MissingContext(Platform),
    #[error("the envelope's base64 event does not decode to JSON")]
    BadBase64,
}

impl Envelope {
    /// Reads and checks a queue message body; an event sent base64-encoded is decoded back to
    /// its bytes.
    pub fn decode(body: &str) -> Result<Envelope, EnvelopeError> {
        let mut envelope: Envelope =
            serde_json::from_str(body).map_err(crate::json_error::JsonError::from)?;
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
        if let Some(encoded) = envelope.event_base64.take() {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|_| EnvelopeError::BadBase64)?;
            let text = String::from_utf8(bytes).map_err(|_| EnvelopeError::BadBase64)?;
            envelope.event = RawValue::from_string(text).map_err(|_| EnvelopeError::BadBase64)?;
        }
        Ok(envelope)
    }

    /// Puts back the event read from the claim-check store, after checking it is the one the
    /// ingress stored.
    pub fn restore_claimed(&mut self, claim: &ClaimCheck, bytes: &[u8]) -> Result<(), String> {
        let digest = hex::encode(Sha256::digest(bytes));
        if bytes.len() != claim.bytes || digest != claim.sha256 {
            return Err(format!(
                "claim-check object {} is not the event the ingress stored",
                claim.object
            ));
        }
        let text = std::str::from_utf8(bytes)
            .map_err(|_| format!("claim-check object {} is not UTF-8", claim.object))?;
        self.event = RawValue::from_string(text.to_owned())
            .map_err(|_| format!("claim-check object {} is not JSON", claim.object))?;
        Ok(())
    }
}

impl<E: Serialize> Envelope<E> {
    /// The envelope as the queue message body, with the envelope's own strings (key,
    /// conversation, ids) made safe for SQS (see [`SqsSafe`]).
    pub fn encode(&self) -> Result<String, serde_json::Error> {
        let mut buffer = Vec::with_capacity(WRAPPER_CAPACITY);
        self.serialize(&mut serde_json::Serializer::with_formatter(
            &mut buffer,
            SqsSafe,
        ))?;
        String::from_utf8(buffer).map_err(|e| serde::ser::Error::custom(e.utf8_error()))
    }
}

impl Envelope<&RawValue> {
    /// [`Envelope::encode`] into a buffer sized once for the event and the wrapper around it:
    /// growing the buffer step by step was a tenth of the ingress's time on a 1000-item batch.
    /// The fast path: callers use it when the request holds no character SQS refuses.
    pub fn encode_sized(&self) -> Result<String, serde_json::Error> {
        let mut buffer = Vec::with_capacity(self.event.get().len() + WRAPPER_CAPACITY);
        serde_json::to_writer(&mut buffer, self)?;
        // serde_json writes valid UTF-8; the check is cheap beside the copy it guards.
        String::from_utf8(buffer).map_err(|e| serde::ser::Error::custom(e.utf8_error()))
    }

    /// The envelope for a queue that refuses U+FFFE and U+FFFF: the event base64-encoded when it
    /// holds one, every other string escaped.
    pub fn encode_for_sqs(&self) -> Result<String, serde_json::Error> {
        if !has_refused_chars(self.event.get().as_bytes()) {
            return self.encode();
        }
        let encoded = base64::engine::general_purpose::STANDARD.encode(self.event.get());
        Envelope {
            event_base64: Some(encoded),
            event: RawValue::NULL,
            ..self.clone()
        }
        .encode()
    }
}

/// A fresh envelope as the ingress writes one for each event (stage `bot`, the event inline),
/// every field borrowed from the request: [`Fresh::write`] gives exactly the bytes that
/// [`Envelope::encode_sized`] gives for [`Fresh::envelope`] (property-tested), without building
/// the envelope's owned strings or going through serde's generic writer, which were a fifth of
/// the ingress's time on a batch of small items.
#[derive(Debug, Clone, Copy)]
pub struct Fresh<'a> {
    pub platform: Platform,
    pub tenant: Option<&'a str>,
    pub key: &'a str,
    pub conversation: &'a str,
    pub timestamp: Option<i64>,
    pub received_at: i64,
    pub context: FreshContext<'a>,
    /// The event's exact text: one valid JSON value (a `&RawValue`'s text, or an event the
    /// ingress validated as it read its head).
    pub event: &'a str,
}

/// The platform's context of a [`Fresh`] envelope: [`LineContext`] or [`MetaContext`], borrowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FreshContext<'a> {
    Line {
        destination: Option<&'a str>,
    },
    Meta {
        object: &'a str,
        entry_id: &'a str,
        entry_time: Option<i64>,
        list: ItemList,
    },
}

impl<'a> Fresh<'a> {
    /// The envelope as serde writes it: the definition of [`Fresh::write`], and the envelope
    /// for the careful paths (claim checks, characters SQS refuses). Fails only when the event
    /// is not the valid JSON it must be.
    pub fn envelope(&self) -> Result<Envelope<&'a RawValue>, serde_json::Error> {
        let event: &'a RawValue = serde_json::from_str(self.event)?;
        let (line, meta) = match self.context {
            FreshContext::Line { destination } => (
                Some(LineContext {
                    destination: destination.map(str::to_owned),
                }),
                None,
            ),
            FreshContext::Meta {
                object,
                entry_id,
                entry_time,
                list,
            } => (
                None,
                Some(MetaContext {
                    object: object.to_owned(),
                    entry_id: entry_id.to_owned(),
                    entry_time,
                    list,
                }),
            ),
        };
        Ok(Envelope {
            version: ENVELOPE_VERSION,
            platform: self.platform,
            tenant: self.tenant.map(str::to_owned),
            key: self.key.to_owned(),
            conversation: self.conversation.to_owned(),
            timestamp: self.timestamp,
            received_at: self.received_at,
            stage: Stage::Bot,
            line,
            meta,
            claim: None,
            event_base64: None,
            oversized: None,
            event,
        })
    }

    /// The queue message body: [`Envelope::encode_sized`] of [`Fresh::envelope`], field by
    /// field in serde's order.
    pub fn write(&self) -> String {
        let mut out = String::with_capacity(self.event.len() + WRAPPER_CAPACITY);
        self.write_into(&mut out);
        out
    }

    /// [`Fresh::write`] at the end of `out`.
    pub fn write_into(&self, out: &mut String) {
        self.write_head(out);
        self.write_context(out);
        self.write_event(out);
    }

    /// [`Fresh::write_into`] with the part that a request's events share (when it was received,
    /// the platform's context: every event of a LINE request, every item of one list of a Meta
    /// entry) copied from `shared`, [`SharedPart::of`] this event's `received_at` and context:
    /// written once for a run of events, which saves most of an envelope's field writing on a
    /// batch of small items.
    pub fn write_into_sharing(&self, out: &mut String, shared: &str) {
        self.write_head(out);
        out.push_str(shared);
        self.write_event(out);
    }

    /// The envelope's fields up to and with the event's timestamp.
    fn write_head(&self, out: &mut String) {
        out.push_str("{\"version\":");
        push_integer(out, ENVELOPE_VERSION);
        out.push_str(",\"platform\":\"");
        out.push_str(self.platform.as_str());
        out.push('"');
        if let Some(tenant) = self.tenant {
            out.push_str(",\"tenant\":");
            push_string(out, tenant);
        }
        out.push_str(",\"key\":");
        push_string(out, self.key);
        out.push_str(",\"conversation\":");
        push_string(out, self.conversation);
        if let Some(timestamp) = self.timestamp {
            out.push_str(",\"timestamp\":");
            push_integer(out, timestamp);
        }
    }

    /// `received_at` and the platform's context, each with the comma before it.
    fn write_context(&self, out: &mut String) {
        write_context(self.received_at, self.context, out);
    }

    /// The event and the envelope's end.
    fn write_event(&self, out: &mut String) {
        out.push_str(",\"event\":");
        out.push_str(self.event);
        out.push('}');
    }
}

/// The part of an envelope that a request's events share, as [`Fresh::write_into`] writes it:
/// written again only when an event's `received_at` or context differs from the one before.
#[derive(Debug, Default)]
pub struct SharedPart<'a> {
    of: Option<(i64, FreshContext<'a>)>,
    text: String,
}

impl<'a> SharedPart<'a> {
    /// An empty part with room for `bytes` of text.
    pub fn with_capacity(bytes: usize) -> Self {
        SharedPart {
            of: None,
            text: String::with_capacity(bytes),
        }
    }

    /// The part for an event received at `received_at` in `context`.
    pub fn of(&mut self, received_at: i64, context: FreshContext<'a>) -> &str {
        if self.of != Some((received_at, context)) {
            self.text.clear();
            write_context(received_at, context, &mut self.text);
            self.of = Some((received_at, context));
        }
        &self.text
    }
}

/// `received_at` and the platform's context, each with the comma before it.
fn write_context(received_at: i64, context: FreshContext<'_>, out: &mut String) {
    out.push_str(",\"received_at\":");
    push_integer(out, received_at);
    match context {
        FreshContext::Line { destination } => {
            out.push_str(",\"line\":{");
            if let Some(destination) = destination {
                out.push_str("\"destination\":");
                push_string(out, destination);
            }
            out.push('}');
        }
        FreshContext::Meta {
            object,
            entry_id,
            entry_time,
            list,
        } => {
            out.push_str(",\"meta\":{\"object\":");
            push_string(out, object);
            out.push_str(",\"entry_id\":");
            push_string(out, entry_id);
            if let Some(entry_time) = entry_time {
                out.push_str(",\"entry_time\":");
                push_integer(out, entry_time);
            }
            out.push_str(",\"list\":\"");
            out.push_str(list.as_str());
            out.push('"');
            out.push('}');
        }
    }
}

fn push_integer(out: &mut String, value: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(value));
}

/// A JSON string as serde_json writes it: most of the envelope's strings (keys, ids) need no
/// escape and are copied as they are.
fn push_string(out: &mut String, text: &str) {
    if !crate::scan::needs_escape(text) {
        out.push('"');
        out.push_str(text);
        out.push('"');
    } else {
        let mut escaped = Vec::with_capacity(text.len() + 2);
        // Writing a string into a Vec cannot fail; serde_json escapes exactly as the envelope's
        // serde writer does.
        if serde_json::to_writer(&mut escaped, text).is_ok() {
            out.push_str(&String::from_utf8_lossy(&escaped));
        }
    }
}

/// True when `bytes` (UTF-8) hold U+FFFE or U+FFFF (`EF BF BE`, `EF BF BF`): SQS accepts only
/// `#x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF` in a message body, and in
/// valid JSON text these two are the only characters outside that set that can appear raw.
pub fn has_refused_chars(bytes: &[u8]) -> bool {
    memchr::memmem::find_iter(bytes, b"\xEF\xBF")
        .any(|at| matches!(bytes.get(at + 2), Some(0xBE | 0xBF)))
}

/// A JSON formatter that writes U+FFFE and U+FFFF in strings as `\ufffe` and `\uffff` (the same
/// strings to any JSON reader), so that what the envelope says itself is always SQS-safe.
/// Raw values (the event) pass through untouched.
#[derive(Debug, Clone, Copy, Default)]
pub struct SqsSafe;

impl serde_json::ser::Formatter for SqsSafe {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        if !has_refused_chars(fragment.as_bytes()) {
            return writer.write_all(fragment.as_bytes());
        }
        let mut rest = fragment;
        while let Some(at) = rest.find(['\u{FFFE}', '\u{FFFF}']) {
            writer.write_all(&rest.as_bytes()[..at])?;
            let refused = &rest[at..at + 3];
            writer.write_all(if refused == "\u{FFFE}" {
                b"\\ufffe"
            } else {
                b"\\uffff"
            })?;
            rest = &rest[at + 3..];
        }
        writer.write_all(rest.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope<'a>(event: &'a RawValue, key: &str) -> Envelope<&'a RawValue> {
        Envelope {
            version: ENVELOPE_VERSION,
            platform: Platform::Line,
            tenant: None,
            key: key.into(),
            conversation: "c".into(),
            timestamp: None,
            received_at: 1,
            stage: Stage::Bot,
            line: Some(LineContext {
                destination: Some("U0".into()),
            }),
            meta: None,
            claim: None,
            event_base64: None,
            oversized: None,
            event,
        }
    }

    /// SQS's rule for message bodies, as the AWS documentation states it.
    fn sqs_accepts(body: &str) -> bool {
        body.chars().all(|c| {
            matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
        })
    }

    #[test]
    fn events_with_characters_sqs_refuses_travel_base64_and_come_back_byte_for_byte() {
        let text = "{\"type\":\"message\",\"text\":\"a\u{FFFE}b\u{FFFF}c\",\"x\":\"\\ufffe\"}";
        let event = RawValue::from_string(text.to_owned()).expect("json");
        let key = "line:k\u{FFFF}";
        let body = envelope(&event, key).encode_for_sqs().expect("encode");
        assert!(sqs_accepts(&body), "{body:?}");
        let decoded = Envelope::decode(&body).expect("decode");
        assert_eq!(decoded.event.get(), text, "the event's exact bytes");
        assert_eq!(decoded.key, key);
        // Everything else is untouched and needs no base64.
        let plain =
            RawValue::from_string("{\"t\":\"\u{FFFD}\u{1F600}\"}".to_owned()).expect("json");
        let body = envelope(&plain, "k").encode_for_sqs().expect("encode");
        assert!(!body.contains("event_base64"));
        assert_eq!(body, envelope(&plain, "k").encode_sized().expect("encode"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// The fast writer is serde's writer, byte for byte: every optional field, every
        /// character a string can hold (quotes, backslashes, control characters), any integer.
        #[test]
        fn the_fresh_writer_writes_what_serde_writes(
            line in proptest::bool::ANY,
            tenant in proptest::option::of(".{0,12}"),
            key in ".{0,40}",
            conversation in "[\\x00-\\x7f\"\\\\]{0,20}|.{0,20}",
            timestamp in proptest::option::of(proptest::num::i64::ANY),
            received_at in proptest::num::i64::ANY,
            destination in proptest::option::of(".{0,10}"),
            object in ".{0,10}",
            entry_id in "[\\x00-\\x1f\"a]{0,6}",
            entry_time in proptest::option::of(proptest::num::i64::ANY),
            list in 0..3usize,
            event in r#"\{"a":"[a-z é]{0,10}"\}|\[1, 2 \]|"\\u00e4"|null|-0\.5e3"#,
        ) {
            let event = RawValue::from_string(event).expect("json");
            let context = if line {
                FreshContext::Line { destination: destination.as_deref() }
            } else {
                FreshContext::Meta {
                    object: &object,
                    entry_id: &entry_id,
                    entry_time,
                    list: [ItemList::Messaging, ItemList::Standby, ItemList::Changes][list],
                }
            };
            let fresh = Fresh {
                platform: if line { Platform::Line } else { Platform::Meta },
                tenant: tenant.as_deref(),
                key: &key,
                conversation: &conversation,
                timestamp,
                received_at,
                context,
                event: event.get(),
            };
            let expected = fresh.envelope().expect("valid").encode_sized().expect("encode");
            proptest::prop_assert_eq!(&fresh.write(), &expected);
            // Sharing: written after an event of another time or context, then again.
            let others = [
                Fresh { received_at: received_at.wrapping_add(1), ..fresh },
                Fresh { context: FreshContext::Line { destination: Some("x") }, ..fresh },
            ];
            for other in others {
                let mut shared = SharedPart::default();
                let mut out = String::new();
                for each in [other, fresh, fresh] {
                    out.clear();
                    each.write_into_sharing(&mut out, shared.of(each.received_at, each.context));
                }
                proptest::prop_assert_eq!(&out, &expected);
                out.clear();
                other.write_into_sharing(&mut out, shared.of(other.received_at, other.context));
                proptest::prop_assert_eq!(out, other.write());
            }
        }
    }

    #[test]
    fn a_claimed_event_is_checked_against_its_hash() {
        let bytes = br#"{"type":"message"}"#;
        let claim = ClaimCheck {
            object: "claims/x".into(),
            bytes: bytes.len(),
            sha256: hex::encode(Sha256::digest(bytes)),
        };
        let event = RawValue::NULL;
        let mut decoded = Envelope::decode(
            &Envelope {
                claim: Some(claim.clone()),
                ..envelope(event, "k")
            }
            .encode()
            .expect("encode"),
        )
        .expect("decode");
        assert!(
            decoded
                .restore_claimed(&claim, br#"{"type":"massage"}"#)
                .is_err()
        );
        decoded.restore_claimed(&claim, bytes).expect("restored");
        assert_eq!(decoded.event.get().as_bytes(), bytes);
    }
}
