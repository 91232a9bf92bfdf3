//! The bot handler: what bot authors implement. The worker calls [`Bot::handle`] once per event
//! (duplicates are removed before), in conversation order, with the typed event and clients to
//! reply with.
//!
//! ```
//! use shared::bot::{Bot, BotError, BotEvent, BotEventKind};
//! use shared::clients::Clients;
//!
//! struct Logger;
//!
//! #[async_trait::async_trait]
//! impl Bot for Logger {
//!     async fn handle(&self, event: &BotEvent, _clients: &Clients) -> Result<(), BotError> {
//!         if let BotEventKind::Line { event: line, .. } = &event.kind {
//!             tracing::info!(key = %event.key, kind = line.kind.type_name(), "LINE event");
//!         }
//!         Ok(())
//!     }
//! }
//! ```
//!
//! Returning an error (or panicking, or running past the deadline) releases the event: SQS
//! delivers it again later and the handler runs again, until the queue's receive limit sends it to
//! the dead-letter queue. Side effects a handler made before failing may therefore happen twice:
//! make them idempotent (LINE's push takes a retry key; a used reply token is refused).
//!
//! A failure that no retry can fix (a destination that answered `404`, a request it refuses as
//! malformed) is returned as [`Permanent`]: the worker dead-letters the event at once, with the
//! reason, instead of spending its remaining attempts and holding up the conversation behind it.

use crate::Platform;
use crate::clients::Clients;
use crate::envelope::{Envelope, LineContext, MetaContext, Oversized};
use crate::json_error::JsonError;
use crate::line;
use crate::meta;
use async_trait::async_trait;
use serde_json::value::RawValue;
use tokio::time::Instant;

/// What a handler returns on failure: any error.
pub type BotError = Box<dyn std::error::Error + Send + Sync>;

/// A failure that retrying cannot fix: the worker puts the event in the dead-letter queue at
/// once, with this reason (which must name the problem, never quote content).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Permanent(pub String);

impl Permanent {
    /// `error` as a [`BotError`] that the worker does not retry.
    pub fn boxed(reason: impl Into<String>) -> BotError {
        Box::new(Permanent(reason.into()))
    }
}

/// True when `error` is (or wraps, through `source()`) a [`Permanent`] failure.
pub fn is_permanent(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.is::<Permanent>() {
            return true;
        }
        current = error.source();
    }
    false
}

/// A chat bot.
#[async_trait]
pub trait Bot: Send + Sync {
    /// Handles one event. Called once per event key, unless it fails.
    async fn handle(&self, event: &BotEvent, clients: &Clients) -> Result<(), BotError>;
}

/// One event, deduplicated, with its context.
#[derive(Debug)]
pub struct BotEvent {
    /// The deduplication key.
    pub key: String,
    /// The conversation (user, group, room or thread) the event belongs to.
    pub conversation: String,
    pub platform: Platform,
    /// The registry tenant whose URL received it (see [`crate::tenants`]); the clients the bot
    /// receives are that tenant's.
    pub tenant: Option<String>,
    /// When the ingress received it, in milliseconds since the epoch.
    pub received_at: i64,
    /// The event's own time in milliseconds, where it has one.
    pub timestamp: Option<i64>,
    /// When the handler must be done; pass it to the clients' calls.
    pub deadline: Instant,
    /// The event's JSON exactly as the platform sent it (`null` for an oversized event).
    pub raw: Box<RawValue>,
    pub kind: BotEventKind,
    /// The envelope's LINE context (the bot's user id), kept even when the event is unreadable.
    pub line: Option<LineContext>,
    /// The envelope's Meta context (object, entry, list), kept even when the item is unreadable.
    pub meta: Option<MetaContext>,
}

/// The typed event, by platform.
#[derive(Debug)]
pub enum BotEventKind {
    Line {
        /// The bot's user id (`None` for the rare body without one).
        destination: Option<String>,
        event: line::Event,
    },
    Meta {
        /// Object, entry (page, Instagram account or WhatsApp Business Account) and list.
        context: MetaContext,
        item: meta::Item,
    },
    /// The event does not fit its type in this version of the models: `raw` has it whole.
    Unreadable { reason: String },
    /// The event was too large for a queue message; only its size and hash arrived.
    Oversized(Oversized),
}

impl BotEvent {
    /// Builds the handler's view of an envelope; never fails, so that no event is dropped.
    pub fn from_envelope(envelope: Envelope, deadline: Instant) -> BotEvent {
        let kind = if let Some(oversized) = envelope.oversized.clone() {
            BotEventKind::Oversized(oversized)
        } else {
            match (&envelope.line, &envelope.meta) {
                (Some(context), _) => match line::Event::from_json(envelope.event.get()) {
                    Ok(event) => BotEventKind::Line {
                        destination: context.destination.clone(),
                        event,
                    },
                    Err(error) => BotEventKind::Unreadable {
                        reason: JsonError::from(error).to_string(),
                    },
                },
                (None, Some(context)) => {
                    match meta::Item::parse(&context.object, context.list, envelope.event.get()) {
                        Ok(item) => BotEventKind::Meta {
                            context: context.clone(),
                            item,
                        },
                        Err(error) => BotEventKind::Unreadable {
                            reason: JsonError::from(error).to_string(),
                        },
                    }
                }
                (None, None) => BotEventKind::Unreadable {
                    reason: "the envelope has no platform context".into(),
                },
            }
        };
        BotEvent {
            key: envelope.key,
            conversation: envelope.conversation,
            platform: envelope.platform,
            tenant: envelope.tenant,
            received_at: envelope.received_at,
            timestamp: envelope.timestamp,
            deadline,
            raw: envelope.event,
            kind,
            line: envelope.line,
            meta: envelope.meta,
        }
    }

    /// The clients for this event out of every tenant's `clients`: its tenant's channel, page,
    /// account or number ([`Clients::for_tenant`]).
    pub fn clients_from<'a>(&self, clients: &'a Clients) -> std::borrow::Cow<'a, Clients> {
        let entry = self.meta.as_ref().map(|m| m.entry_id.as_str());
        clients.for_tenant(self.tenant.as_deref(), entry)
    }

    /// True when the platform said this delivery repeats an earlier one (LINE redelivery).
    pub fn is_redelivery(&self) -> bool {
        match &self.kind {
            BotEventKind::Line { event, .. } => event.is_redelivery(),
            _ => false,
        }
    }

    /// A short name of the event's type, for logs: `message`, `follow`, `messaging.message`,
    /// `changes.messages`, `unreadable`, …
    pub fn type_name(&self) -> String {
        match &self.kind {
            BotEventKind::Line { event, .. } => event.kind.type_name().to_owned(),
            BotEventKind::Meta {
                item: meta::Item::Messaging(event),
                context,
            } => format!("{}.{}", context.list.as_str(), event.kind.field_name()),
            BotEventKind::Meta {
                item: meta::Item::Change(change),
                ..
            } => format!("changes.{}", change.field),
            BotEventKind::Unreadable { .. } => "unreadable".into(),
            BotEventKind::Oversized(_) => "oversized".into(),
        }
    }
}
