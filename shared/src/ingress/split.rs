//! One request into queue messages: one envelope per event, each carrying the event's exact
//! bytes, in a form the queue takes (see [`crate::envelope`]): claim-checked when too large,
//! base64 when it holds characters SQS refuses.

use crate::envelope::{ClaimCheck, ENVELOPE_VERSION, Envelope, LineContext, MetaContext, Stage};
use crate::line::{Callback, EventHead};
use crate::meta::Notification;
use crate::platform::Platform;
use crate::ports::QueueMessage;
use crate::tenants::scoped;
use bytes::Bytes;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

/// How to write a request's messages.
#[derive(Debug, Clone, Copy)]
pub struct SplitOptions<'a> {
    /// When the ingress received the request, in milliseconds since the epoch.
    pub received_at: i64,
    /// The largest message body the queue takes.
    pub max_message_bytes: usize,
    /// The request holds U+FFFE or U+FFFF somewhere: write every envelope the careful way
    /// ([`Envelope::encode_for_sqs`]). Without one, no event and no string derived from the
    /// request can hold one, and the fast path is exact.
    pub refused_chars: bool,
    /// The registry tenant the request came for: stamped on every envelope, and the prefix of
    /// its key and conversation.
    pub tenant: Option<&'a str>,
}

impl SplitOptions<'_> {
    /// Options for `body`, received at `received_at`, for a queue taking `max_message_bytes`.
    pub fn for_body(
        body: &[u8],
        received_at: i64,
        max_message_bytes: usize,
    ) -> SplitOptions<'static> {
        SplitOptions {
            received_at,
            max_message_bytes,
            refused_chars: crate::envelope::has_refused_chars(body),
            tenant: None,
        }
    }
}

/// A request's queue messages, and the claim-check objects to store before they are queued.
#[derive(Debug, Default)]
pub struct Split {
    pub messages: Vec<QueueMessage>,
    /// Object name and the event's exact bytes.
    pub claims: Vec<(String, Bytes)>,
}

/// One queue message per LINE event.
pub fn line_messages(
    callback: &Callback<'_>,
    options: &SplitOptions<'_>,
) -> Result<Split, serde_json::Error> {
    let destination = callback.destination.as_deref().unwrap_or_default();
    let mut split = Split {
        messages: Vec::with_capacity(callback.events.len()),
        claims: Vec::new(),
    };
    for raw in &callback.events {
        let head = EventHead::of(raw);
        let envelope = Envelope {
            version: ENVELOPE_VERSION,
            platform: Platform::Line,
            tenant: options.tenant.map(str::to_owned),
            key: scoped(options.tenant, head.dedup_key(destination, raw)),
            conversation: scoped(options.tenant, head.conversation_id(destination)),
            timestamp: head.timestamp,
            received_at: options.received_at,
            stage: Stage::Bot,
            line: Some(LineContext {
                destination: callback.destination.clone(),
            }),
            meta: None,
            claim: None,
            event_base64: None,
            oversized: None,
            event: *raw,
        };
        add(&mut split, envelope, options)?;
    }
    Ok(split)
}

/// One queue message per item of `messaging[]`, `standby[]` and `changes[]` of every entry.
pub fn meta_messages(
    notification: &Notification<'_>,
    options: &SplitOptions<'_>,
) -> Result<Split, serde_json::Error> {
    let mut split = Split {
        messages: Vec::with_capacity(notification.item_count()),
        claims: Vec::new(),
    };
    for item in notification.items() {
        let head = item.head();
        let envelope = Envelope {
            version: ENVELOPE_VERSION,
            platform: Platform::Meta,
            tenant: options.tenant.map(str::to_owned),
            key: scoped(options.tenant, head.key),
            conversation: scoped(options.tenant, head.conversation),
            timestamp: head.timestamp,
            received_at: options.received_at,
            stage: Stage::Bot,
            line: None,
            meta: Some(MetaContext {
                object: item.object.to_owned(),
                entry_id: item.entry_id.to_owned(),
                entry_time: item.entry_time,
                list: item.list,
            }),
            claim: None,
            event_base64: None,
            oversized: None,
            event: item.raw,
        };
        add(&mut split, envelope, options)?;
    }
    Ok(split)
}

/// Encodes an envelope; an event too large for one queue message goes to the claim-check store
/// and the message carries a pointer to it.
fn add(
    split: &mut Split,
    envelope: Envelope<&RawValue>,
    options: &SplitOptions<'_>,
) -> Result<(), serde_json::Error> {
    let encode = |envelope: &Envelope<&RawValue>| {
        if options.refused_chars {
            envelope.encode_for_sqs()
        } else {
            envelope.encode_sized()
        }
    };
    let mut body = encode(&envelope)?;
    if body.len() > options.max_message_bytes {
        let event = envelope.event.get().as_bytes();
        let sha256 = hex::encode(Sha256::digest(event));
        let key_hash = hex::encode(Sha256::digest(envelope.key.as_bytes()));
        // Named by key and content: a retried request writes the same object again.
        let object = format!("claims/{}-{}", &key_hash[..32], &sha256[..32]);
        body = Envelope {
            claim: Some(ClaimCheck {
                object: object.clone(),
                bytes: event.len(),
                sha256,
            }),
            event: RawValue::NULL,
            ..envelope.clone()
        }
        .encode()?;
        split.claims.push((object, Bytes::copy_from_slice(event)));
    }
    split.messages.push(QueueMessage {
        key: envelope.key,
        conversation: envelope.conversation,
        platform: envelope.platform,
        body,
    });
    Ok(())
}
