//! The `message` object of LINE `message` and `messageEdited` events.

use crate::compat::{Unknown, buffered, open_enum, str_field, typed};
use serde::{Deserialize, Deserializer};

/// A message a user sent: its id and its content by type.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Message id; the key for content retrieval and for `unsend.messageId`.
    pub id: String,
    /// The content, by `type`.
    pub content: MessageContent,
}

/// A message's content, one variant per `message.type`.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageContent {
    Text(TextMessage),
    Image(ImageMessage),
    Video(VideoMessage),
    Audio(AudioMessage),
    File(FileMessage),
    Location(LocationMessage),
    Sticker(StickerMessage),
    /// A message type this version does not know, with its JSON.
    Unknown(Unknown),
}

impl Message {
    /// The `type` as LINE spells it.
    pub fn type_name(&self) -> &str {
        match &self.content {
            MessageContent::Text(_) => "text",
            MessageContent::Image(_) => "image",
            MessageContent::Video(_) => "video",
            MessageContent::Audio(_) => "audio",
            MessageContent::File(_) => "file",
            MessageContent::Location(_) => "location",
            MessageContent::Sticker(_) => "sticker",
            MessageContent::Unknown(unknown) => &unknown.kind,
        }
    }

    /// The quote token, for message types that can be quoted.
    pub fn quote_token(&self) -> Option<&str> {
        match &self.content {
            MessageContent::Text(m) => m.quote_token.as_deref(),
            MessageContent::Image(m) => m.quote_token.as_deref(),
            MessageContent::Video(m) => m.quote_token.as_deref(),
            MessageContent::Sticker(m) => m.quote_token.as_deref(),
            MessageContent::Unknown(u) => str_field(&u.raw, "quoteToken"),
            _ => None,
        }
    }

    /// The content provider, for media that may be fetched from LINE's content API.
    pub fn content_provider(&self) -> Option<&ContentProvider> {
        match &self.content {
            MessageContent::Image(m) => Some(&m.content_provider),
            MessageContent::Video(m) => Some(&m.content_provider),
            MessageContent::Audio(m) => Some(&m.content_provider),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Head {
            id: String,
            #[serde(rename = "type")]
            kind: String,
        }
        let value = buffered(deserializer)?;
        let head: Head = typed(&value)?;
        let content = match head.kind.as_str() {
            "text" => MessageContent::Text(typed(&value)?),
            "image" => MessageContent::Image(typed(&value)?),
            "video" => MessageContent::Video(typed(&value)?),
            "audio" => MessageContent::Audio(typed(&value)?),
            "file" => MessageContent::File(typed(&value)?),
            "location" => MessageContent::Location(typed(&value)?),
            "sticker" => MessageContent::Sticker(typed(&value)?),
            other => MessageContent::Unknown(Unknown::new(other, &value)),
        };
        Ok(Message {
            id: head.id,
            content,
        })
    }
}

/// `type: text`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TextMessage {
    pub text: String,
    /// LINE emoji in the text.
    #[serde(default)]
    pub emojis: Vec<Emoji>,
    pub mention: Option<Mention>,
    pub quote_token: Option<String>,
    /// Id of the message this one quotes.
    pub quoted_message_id: Option<String>,
    pub mark_as_read_token: Option<String>,
}

/// A LINE emoji inside a text message.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Emoji {
    pub index: i64,
    pub length: i64,
    pub product_id: String,
    pub emoji_id: String,
}

/// The mentions in a text message.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Mention {
    pub mentionees: Vec<Mentionee>,
}

/// One mention: where it stands in the text and whom it names.
#[derive(Debug, Clone, PartialEq)]
pub struct Mentionee {
    pub index: i64,
    pub length: i64,
    pub target: MentionTarget,
}

/// Whom a mention names.
#[derive(Debug, Clone, PartialEq)]
pub enum MentionTarget {
    /// One user. `user_id` is present only when the user consented to share their profile;
    /// `is_self` is `Some(true)` when the user is the bot receiving the webhook.
    User {
        user_id: Option<String>,
        is_self: Option<bool>,
    },
    /// `@All`: everybody in the chat.
    All,
    Unknown(Unknown),
}

impl<'de> Deserialize<'de> for Mentionee {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Head {
            #[serde(rename = "type")]
            kind: String,
            index: i64,
            length: i64,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct User {
            user_id: Option<String>,
            is_self: Option<bool>,
        }
        let value = buffered(deserializer)?;
        let head: Head = typed(&value)?;
        let target = match head.kind.as_str() {
            "user" => {
                let user: User = typed(&value)?;
                MentionTarget::User {
                    user_id: user.user_id,
                    is_self: user.is_self,
                }
            }
            "all" => MentionTarget::All,
            other => MentionTarget::Unknown(Unknown::new(other, &value)),
        };
        Ok(Mentionee {
            index: head.index,
            length: head.length,
            target,
        })
    }
}

open_enum! {
    /// Where a media file is: on LINE's servers, or at a URL the sender's service gave.
    pub enum ContentProviderType {
        Line = "line",
        External = "external",
    }
}

/// The provider of a media file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentProvider {
    #[serde(rename = "type")]
    pub kind: ContentProviderType,
    /// Only for `external`.
    pub original_content_url: Option<String>,
    /// Only for `external`.
    pub preview_image_url: Option<String>,
}

/// `type: image`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageMessage {
    pub content_provider: ContentProvider,
    /// Set when several images were sent at once.
    pub image_set: Option<ImageSet>,
    pub quote_token: Option<String>,
    pub mark_as_read_token: Option<String>,
}

/// Several images sent at once.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ImageSet {
    pub id: String,
    /// 1-based position in the set.
    pub index: Option<i64>,
    pub total: Option<i64>,
}

/// `type: video`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoMessage {
    /// Length in milliseconds.
    pub duration: Option<i64>,
    pub content_provider: ContentProvider,
    pub quote_token: Option<String>,
    pub mark_as_read_token: Option<String>,
}

/// `type: audio`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AudioMessage {
    pub content_provider: ContentProvider,
    /// Length in milliseconds.
    pub duration: Option<i64>,
    pub mark_as_read_token: Option<String>,
}

/// `type: file`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileMessage {
    pub file_name: String,
    /// Size in bytes.
    pub file_size: u64,
    pub mark_as_read_token: Option<String>,
}

/// `type: location`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocationMessage {
    pub title: Option<String>,
    pub address: Option<String>,
    pub latitude: f64,
    pub longitude: f64,
    pub mark_as_read_token: Option<String>,
}

open_enum! {
    /// How a sticker looks and behaves.
    pub enum StickerResourceType {
        Static = "STATIC",
        Animation = "ANIMATION",
        Sound = "SOUND",
        AnimationSound = "ANIMATION_SOUND",
        Popup = "POPUP",
        PopupSound = "POPUP_SOUND",
        Custom = "CUSTOM",
        Message = "MESSAGE",
        NameText = "NAME_TEXT",
        PerStickerText = "PER_STICKER_TEXT",
    }
}

/// `type: sticker`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StickerMessage {
    pub package_id: String,
    pub sticker_id: String,
    pub sticker_resource_type: StickerResourceType,
    /// Up to 15 keywords; experimental, and random for stickers with more.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Text the user typed, for message stickers.
    pub text: Option<String>,
    pub quote_token: Option<String>,
    pub quoted_message_id: Option<String>,
    pub mark_as_read_token: Option<String>,
}
