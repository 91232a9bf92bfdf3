//! What one event asks of the archive, read from the typed event.

use super::{Change, Delivery, Incoming, MediaSource};
use crate::bot::{BotEvent, BotEventKind};
use crate::line::{self, EventKind, MessageContent};
use crate::meta::{self, Item, MessagingKind, WhatsAppContent};
use crate::platform::Platform;

/// What the archive does with one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    Change(Change),
    /// Several changes (a WhatsApp notification's messages and statuses).
    Changes(Vec<Change>),
    /// LINE `follow`: fetch and store the user's profile.
    Profile {
        conversation: String,
        user_id: String,
    },
    Nothing,
}

/// Reads what an event asks of the archive.
pub fn plan(event: &BotEvent) -> Plan {
    match &event.kind {
        BotEventKind::Line { event: line, .. } => plan_line(event, line),
        BotEventKind::Meta { item, .. } => plan_meta(event, item),
        BotEventKind::Unreadable { .. } | BotEventKind::Oversized(_) => Plan::Nothing,
    }
}

fn raw_json(event: &BotEvent) -> Option<serde_json::Value> {
    serde_json::from_str(event.raw.get()).ok()
}

fn plan_line(event: &BotEvent, line: &line::Event) -> Plan {
    let sender = line
        .source
        .as_ref()
        .and_then(|s| s.user_id())
        .map(str::to_owned);
    let at = line.timestamp.or(event.timestamp).unwrap_or(0);
    let incoming = |message: &line::Message| {
        let id = message.id.clone()?;
        let text = match &message.content {
            MessageContent::Text(text) => text.text.clone(),
            _ => None,
        };
        let on_line = message.is_on_line();
        let media = match &message.content {
            MessageContent::Image(_) | MessageContent::Video(_) if on_line => {
                vec![("content", false), ("preview", true)]
            }
            MessageContent::Audio(_) | MessageContent::File(_) if on_line => {
                vec![("content", false)]
            }
            _ => Vec::new(),
        }
        .into_iter()
        .map(|(role, preview)| {
            (
                role.to_owned(),
                MediaSource::LineContent {
                    message_id: id.clone(),
                    preview,
                },
            )
        })
        .collect();
        Some(Incoming {
            platform: Platform::Line,
            conversation: event.conversation.clone(),
            message_id: id,
            sender: sender.clone(),
            at,
            edit_number: 0,
            kind: message.type_name().to_owned(),
            text,
            event: raw_json(event),
            media,
        })
    };
    let change = match &line.kind {
        EventKind::Message(message) => incoming(message).map(Change::Message),
        EventKind::MessageEdited(message) => incoming(message).map(Change::Edit),
        EventKind::Unsend(unsend) => unsend.message_id.clone().map(|message_id| Change::Unsend {
            platform: Platform::Line,
            conversation: event.conversation.clone(),
            message_id,
            at,
        }),
        EventKind::Follow(_) => {
            return match sender {
                Some(user_id) => Plan::Profile {
                    conversation: event.conversation.clone(),
                    user_id,
                },
                None => Plan::Nothing,
            };
        }
        _ => None,
    };
    change.map_or(Plan::Nothing, Plan::Change)
}

fn plan_meta(event: &BotEvent, item: &Item) -> Plan {
    let messaging = match item {
        Item::Messaging(messaging) => messaging,
        Item::Change(meta::Change {
            value: meta::ChangeValue::WhatsApp(value),
            ..
        }) => return plan_whatsapp(event, value),
        Item::Change(_) => return Plan::Nothing,
    };
    let at = messaging.timestamp.or(event.timestamp).unwrap_or(0);
    let sender = messaging.sender.as_ref().and_then(|p| p.id.clone());
    match &messaging.kind {
        MessagingKind::Message(message) => {
            let Some(mid) = message.mid.clone() else {
                return Plan::Nothing;
            };
            if message.is_deleted {
                return Plan::Change(Change::Unsend {
                    platform: Platform::Meta,
                    conversation: event.conversation.clone(),
                    message_id: mid,
                    at,
                });
            }
            let media = message
                .attachments
                .iter()
                .enumerate()
                .filter_map(|(i, attachment)| {
                    let url = match attachment {
                        meta::Attachment::Image(p)
                        | meta::Attachment::Video(p)
                        | meta::Attachment::Audio(p)
                        | meta::Attachment::File(p) => p.url.clone(),
                        _ => None,
                    }?;
                    Some((format!("attachment-{i}"), MediaSource::Url { url }))
                })
                .collect();
            let kind = match (&message.text, message.attachments.first()) {
                (Some(_), _) => "text".to_owned(),
                (None, Some(attachment)) => attachment.type_name().to_owned(),
                (None, None) => "message".to_owned(),
            };
            Plan::Change(Change::Message(Incoming {
                platform: Platform::Meta,
                conversation: event.conversation.clone(),
                message_id: mid,
                sender,
                at,
                edit_number: 0,
                kind,
                text: message.text.clone(),
                event: raw_json(event),
                media,
            }))
        }
        MessagingKind::MessageEdit(edit) => match &edit.mid {
            Some(mid) => Plan::Change(Change::Edit(Incoming {
                platform: Platform::Meta,
                conversation: event.conversation.clone(),
                message_id: mid.clone(),
                sender,
                at,
                edit_number: edit.num_edit.unwrap_or(0),
                kind: "text".into(),
                text: edit.text.clone(),
                event: raw_json(event),
                media: Vec::new(),
            })),
            None => Plan::Nothing,
        },
        _ => Plan::Nothing,
    }
}

/// WhatsApp: each message stored like the others (media by its id; `revoke` unsends, `edit`
/// edits the original), each status kept as the delivery state of the message it names.
fn plan_whatsapp(event: &BotEvent, value: &meta::WhatsAppValue) -> Plan {
    // WhatsApp gives seconds.
    let at = |seconds: Option<i64>| {
        seconds
            .map(|s| s.saturating_mul(1000))
            .or(event.timestamp)
            .unwrap_or(0)
    };
    let incoming = |message: &meta::WhatsAppMessage, message_id: String| {
        let content = &message.content;
        let media = content
            .media()
            .and_then(|m| m.id.clone())
            .map(|media_id| {
                vec![(
                    "content".to_owned(),
                    MediaSource::WhatsappMedia { media_id },
                )]
            })
            .unwrap_or_default();
        let text = match content {
            WhatsAppContent::Text(text) => text.body.clone(),
            other => other.media().and_then(|m| m.caption.clone()),
        };
        Incoming {
            platform: Platform::Meta,
            conversation: event.conversation.clone(),
            message_id,
            sender: message
                .from
                .clone()
                .or_else(|| message.from_user_id.clone()),
            at: at(message.timestamp),
            edit_number: 0,
            kind: content.type_name().to_owned(),
            text,
            event: raw_json(event),
            media,
        }
    };
    let mut changes = Vec::new();
    // The user's messages, and the business's own from the WhatsApp Business app (coexistence
    // echoes, its revokes and edits included): one conversation, the same rules.
    for message in value.messages.iter().chain(&value.message_echoes) {
        match &message.content {
            WhatsAppContent::Revoke(revoke) => {
                if let Some(original) = &revoke.original_message_id {
                    changes.push(Change::Unsend {
                        platform: Platform::Meta,
                        conversation: event.conversation.clone(),
                        message_id: original.clone(),
                        at: at(message.timestamp),
                    });
                }
            }
            WhatsAppContent::Edit(edit) => {
                if let (Some(original), Some(new)) = (&edit.original_message_id, &edit.message) {
                    let mut edited = incoming(new, original.clone());
                    edited.at = at(message.timestamp.or(new.timestamp));
                    edited.media = Vec::new();
                    changes.push(Change::Edit(edited));
                }
            }
            _ => {
                if let Some(id) = &message.id {
                    changes.push(Change::Message(incoming(message, id.clone())));
                }
            }
        }
    }
    for status in &value.statuses {
        let (Some(id), Some(kind)) = (&status.id, &status.status) else {
            continue;
        };
        changes.push(Change::Status {
            platform: Platform::Meta,
            conversation: event.conversation.clone(),
            message_id: id.clone(),
            delivery: Delivery {
                status: kind.as_str().to_owned(),
                at: at(status.timestamp),
                error_code: status.errors.first().and_then(|e| e.code),
            },
        });
    }
    match changes.len() {
        0 => Plan::Nothing,
        1 => changes.pop().map_or(Plan::Nothing, Plan::Change),
        _ => Plan::Changes(changes),
    }
}
