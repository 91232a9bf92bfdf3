//! One request into queue messages: one envelope per event, each carrying the event's exact
//! bytes, in a form the queue takes (see [`crate::envelope`]): claim-checked when too large,
//! base64 when it holds characters SQS refuses.

use crate::envelope::{ClaimCheck, Envelope, Fresh, FreshContext};
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
    in_parallel(&callback.events, |raw| {
        let head = EventHead::of(raw);
        let key = scoped(options.tenant, head.dedup_key(destination, raw));
        let conversation = scoped(options.tenant, head.conversation_id(destination));
        let fresh = Fresh {
            platform: Platform::Line,
            tenant: options.tenant,
            key: &key,
            conversation: &conversation,
            timestamp: head.timestamp,
            received_at: options.received_at,
            context: FreshContext::Line {
                destination: callback.destination.as_deref(),
            },
            event: raw,
        };
        let encoded = encode(&fresh, options)?;
        Ok(queued(Platform::Line, key, conversation, encoded))
    })
}

/// One queue message per item of `messaging[]`, `standby[]` and `changes[]` of every entry.
pub fn meta_messages(
    notification: &Notification<'_>,
    options: &SplitOptions<'_>,
) -> Result<Split, serde_json::Error> {
    let items: Vec<_> = notification.items().collect();
    in_parallel(&items, |item| {
        let head = item.head();
        let key = scoped(options.tenant, head.key);
        let conversation = scoped(options.tenant, head.conversation);
        let fresh = Fresh {
            platform: Platform::Meta,
            tenant: options.tenant,
            key: &key,
            conversation: &conversation,
            timestamp: head.timestamp,
            received_at: options.received_at,
            context: FreshContext::Meta {
                object: item.object,
                entry_id: item.entry_id,
                entry_time: item.entry_time,
                list: item.list,
            },
            event: item.raw,
        };
        let encoded = encode(&fresh, options)?;
        Ok(queued(Platform::Meta, key, conversation, encoded))
    })
}

/// Fewer events than this are read on the calling thread: below it, handing work to another
/// core costs more than it saves.
const PARALLEL_MIN_EVENTS: usize = 256;

/// One message (and claim) per event, in the events' order; on several cores when there are
/// many events (each event's head, key and envelope depend on that event alone).
fn in_parallel<T: Sync>(
    events: &[T],
    message: impl Fn(&T) -> Result<(QueueMessage, Option<Claim>), serde_json::Error> + Sync,
) -> Result<Split, serde_json::Error> {
    use rayon::prelude::*;
    let mut split = Split {
        messages: Vec::with_capacity(events.len()),
        claims: Vec::new(),
    };
    if events.len() >= PARALLEL_MIN_EVENTS {
        // Collected into a vector of the exact length (a collected `Result` grows its vector
        // step by step, copying 150 bytes an event each time).
        let mut built = Vec::with_capacity(events.len());
        events
            .par_iter()
            .with_min_len(PARALLEL_MIN_EVENTS / 2)
            .map(&message)
            .collect_into_vec(&mut built);
        for result in built {
            let (message, claim) = result?;
            split.messages.push(message);
            split.claims.extend(claim);
        }
    } else {
        for event in events {
            let (message, claim) = message(event)?;
            split.messages.push(message);
            split.claims.extend(claim);
        }
    }
    Ok(split)
}

/// The queue message of an encoded envelope (and its claim-check object, if any).
fn queued(
    platform: Platform,
    key: String,
    conversation: String,
    (body, claim): (String, Option<Claim>),
) -> (QueueMessage, Option<Claim>) {
    let message = QueueMessage {
        key,
        conversation,
        platform,
        body,
    };
    (message, claim)
}

/// A claim-check object: its name and the event's exact bytes.
type Claim = (String, Bytes);

/// Encodes an envelope; an event too large for one queue message goes to the claim-check store
/// and the message carries a pointer to it.
fn encode(
    fresh: &Fresh<'_>,
    options: &SplitOptions<'_>,
) -> Result<(String, Option<Claim>), serde_json::Error> {
    let mut body = if options.refused_chars {
        fresh.envelope().encode_for_sqs()?
    } else {
        fresh.write()
    };
    let mut claim = None;
    if body.len() > options.max_message_bytes {
        let event = fresh.event.get().as_bytes();
        let sha256 = hex::encode(Sha256::digest(event));
        let key_hash = hex::encode(Sha256::digest(fresh.key.as_bytes()));
        // Named by key and content: a retried request writes the same object again.
        let object = format!("claims/{}-{}", &key_hash[..32], &sha256[..32]);
        body = Envelope {
            claim: Some(ClaimCheck {
                object: object.clone(),
                bytes: event.len(),
                sha256,
            }),
            event: RawValue::NULL,
            ..fresh.envelope()
        }
        .encode()?;
        claim = Some((object, Bytes::copy_from_slice(event)));
    }
    Ok((body, claim))
}
