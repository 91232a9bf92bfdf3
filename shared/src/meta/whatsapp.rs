//! WhatsApp Cloud API notifications: the `value` of `entry[].changes[]` when `field` is
//! `messages`.

use crate::compat::{Unknown, buffered, open_enum, str_field, typed};
use serde::{Deserialize, Deserializer};

/// `changes[].value` of a WhatsApp Business Account notification.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WhatsAppValue {
    /// Always `whatsapp` today.
    pub messaging_product: Option<String>,
    pub metadata: Option<Metadata>,
    #[serde(default)]
    pub contacts: Vec<Contact>,
    #[serde(default)]
    pub messages: Vec<WhatsAppMessage>,
    #[serde(default)]
    pub statuses: Vec<Status>,
    /// Errors about the notification itself.
    #[serde(default)]
    pub errors: Vec<serde_json::Value>,
}

/// The business phone number that received the notification.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Metadata {
    pub display_phone_number: Option<String>,
    pub phone_number_id: String,
}

/// The sender of an incoming message.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Contact {
    pub wa_id: Option<String>,
    pub profile: Option<Profile>,
}

/// A contact's profile.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Profile {
    pub name: Option<String>,
}

/// An incoming message.
#[derive(Debug, Clone, PartialEq)]
pub struct WhatsAppMessage {
    /// The sender's WhatsApp id (phone number).
    pub from: String,
    /// The message id (`wamid.…`).
    pub id: String,
    /// Seconds since the epoch, as a string.
    pub timestamp: String,
    /// Set for replies and forwarded messages.
    pub context: Option<MessageContext>,
    pub content: WhatsAppContent,
}

/// A message's content, by `type`.
#[derive(Debug, Clone, PartialEq)]
pub enum WhatsAppContent {
    Text {
        body: String,
    },
    Image(Media),
    Video(Media),
    Audio(Media),
    Document(Media),
    Sticker(Media),
    Location(Location),
    Interactive(Interactive),
    /// A quick reply button tapped in a template message.
    Button {
        payload: Option<String>,
        text: Option<String>,
    },
    Reaction {
        message_id: String,
        emoji: Option<String>,
    },
    /// Shared contact cards, verbatim.
    Contacts(Vec<serde_json::Value>),
    /// A type this version does not know (and WhatsApp's own `unsupported`), verbatim.
    Unknown(Unknown),
}

/// What a reply or forward refers to.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MessageContext {
    pub from: Option<String>,
    pub id: Option<String>,
    #[serde(default)]
    pub forwarded: bool,
    #[serde(default)]
    pub frequently_forwarded: bool,
}

/// A media object of an incoming message; the file is fetched by `id`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Media {
    pub id: String,
    pub mime_type: Option<String>,
    pub sha256: Option<String>,
    pub caption: Option<String>,
    pub filename: Option<String>,
    /// Audio: a voice note.
    pub voice: Option<bool>,
    /// Sticker: animated.
    pub animated: Option<bool>,
}

/// A shared location.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
    pub name: Option<String>,
    pub address: Option<String>,
    pub url: Option<String>,
}

/// The user's answer to an interactive message.
#[derive(Debug, Clone, PartialEq)]
pub enum Interactive {
    ButtonReply {
        id: String,
        title: String,
    },
    ListReply {
        id: String,
        title: String,
        description: Option<String>,
    },
    Unknown(Unknown),
}

impl<'de> Deserialize<'de> for Interactive {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Reply {
            id: String,
            title: String,
            description: Option<String>,
        }
        let value = buffered(deserializer)?;
        let kind = str_field(&value, "type").unwrap_or_default();
        let reply = |field: &str| match value.get(field) {
            Some(v) => typed::<Reply, D::Error>(v),
            None => Err(serde::de::Error::missing_field("reply")),
        };
        Ok(match kind {
            "button_reply" => {
                let r = reply("button_reply")?;
                Interactive::ButtonReply {
                    id: r.id,
                    title: r.title,
                }
            }
            "list_reply" => {
                let r = reply("list_reply")?;
                Interactive::ListReply {
                    id: r.id,
                    title: r.title,
                    description: r.description,
                }
            }
            other => Interactive::Unknown(Unknown::new(other, &value)),
        })
    }
}

impl<'de> Deserialize<'de> for WhatsAppMessage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Common {
            from: String,
            id: String,
            timestamp: String,
            #[serde(rename = "type")]
            kind: String,
            context: Option<MessageContext>,
        }
        #[derive(Deserialize)]
        struct Text {
            body: String,
        }
        #[derive(Deserialize)]
        struct Button {
            payload: Option<String>,
            text: Option<String>,
        }
        #[derive(Deserialize)]
        struct Reaction {
            message_id: String,
            emoji: Option<String>,
        }
        let value = buffered(deserializer)?;
        let common: Common = typed(&value)?;
        // The content sits under a field named like the type.
        let body = |name: &str| {
            value
                .get(name)
                .ok_or_else(|| <D::Error as serde::de::Error>::missing_field("content"))
        };
        let content = match common.kind.as_str() {
            "text" => WhatsAppContent::Text {
                body: typed::<Text, D::Error>(body("text")?)?.body,
            },
            "image" => WhatsAppContent::Image(typed(body("image")?)?),
            "video" => WhatsAppContent::Video(typed(body("video")?)?),
            "audio" => WhatsAppContent::Audio(typed(body("audio")?)?),
            "document" => WhatsAppContent::Document(typed(body("document")?)?),
            "sticker" => WhatsAppContent::Sticker(typed(body("sticker")?)?),
            "location" => WhatsAppContent::Location(typed(body("location")?)?),
            "interactive" => WhatsAppContent::Interactive(typed(body("interactive")?)?),
            "button" => {
                let b: Button = typed(body("button")?)?;
                WhatsAppContent::Button {
                    payload: b.payload,
                    text: b.text,
                }
            }
            "reaction" => {
                let r: Reaction = typed(body("reaction")?)?;
                WhatsAppContent::Reaction {
                    message_id: r.message_id,
                    emoji: r.emoji,
                }
            }
            "contacts" => WhatsAppContent::Contacts(typed(body("contacts")?)?),
            other => WhatsAppContent::Unknown(Unknown::new(other, &value)),
        };
        Ok(WhatsAppMessage {
            from: common.from,
            id: common.id,
            timestamp: common.timestamp,
            context: common.context,
            content,
        })
    }
}

open_enum! {
    /// The state of a message the business sent.
    pub enum StatusKind {
        Sent = "sent",
        Delivered = "delivered",
        Read = "read",
        Failed = "failed",
        Deleted = "deleted",
    }
}

/// A status update for a message the business sent.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Status {
    /// The id of the message the status is about.
    pub id: String,
    pub status: StatusKind,
    /// Seconds since the epoch, as a string.
    pub timestamp: String,
    pub recipient_id: Option<String>,
    pub conversation: Option<serde_json::Value>,
    pub pricing: Option<serde_json::Value>,
    #[serde(default)]
    pub errors: Vec<serde_json::Value>,
}
