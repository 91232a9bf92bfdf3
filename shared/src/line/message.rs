//! The `message` object of LINE `message` and `messageEdited` events. As everywhere in the
//! models, a missing field is `None` (or empty), never an error of the event.

use crate::compat::{Unknown, buffered, lenient, open_enum, str_field};
use serde::{Deserialize, Deserializer};

/// A message a user sent: its id and its content by type.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Message id; the key for content retrieval and for `unsend.messageId`.
    pub id: Option<String>,
    /// The content, by `type`.
    pub content: MessageContent,
}

/// A message event without its `message` object: no id, content of no known type.
impl Default for Message {
    fn default() -> Self {
        Message {
            id: None,
            content: MessageContent::Unknown(Unknown::new("", &serde_json::Value::Null)),
        }
    }
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

    /// The token that marks the chat read up to this message (`markAsReadToken`).
    pub fn mark_as_read_token(&self) -> Option<&str> {
        match &self.content {
            MessageContent::Text(m) => m.mark_as_read_token.as_deref(),
            MessageContent::Image(m) => m.mark_as_read_token.as_deref(),
            MessageContent::Video(m) => m.mark_as_read_token.as_deref(),
            MessageContent::Audio(m) => m.mark_as_read_token.as_deref(),
            MessageContent::File(m) => m.mark_as_read_token.as_deref(),
            MessageContent::Location(m) => m.mark_as_read_token.as_deref(),
            MessageContent::Sticker(m) => m.mark_as_read_token.as_deref(),
            MessageContent::Unknown(u) => str_field(&u.raw, "markAsReadToken"),
        }
    }

    /// The content provider, for media that may be fetched from LINE's content API.
    pub fn content_provider(&self) -> Option<&ContentProvider> {
        match &self.content {
            MessageContent::Image(m) => m.content_provider.as_ref(),
            MessageContent::Video(m) => m.content_provider.as_ref(),
            MessageContent::Audio(m) => m.content_provider.as_ref(),
            _ => None,
        }
    }

    /// True for media on LINE's servers (fetched from the content API): `contentProvider.type`
    /// `line`, or no provider said at all (as in events from before LINE added it).
    pub fn is_on_line(&self) -> bool {
        self.content_provider()
            .and_then(|p| p.kind.as_ref())
            .is_none_or(|kind| *kind == ContentProviderType::Line)
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = buffered(deserializer)?;
        fn typed<T: Default + serde::de::DeserializeOwned>(value: &serde_json::Value) -> T {
            T::deserialize(value).unwrap_or_default()
        }
        let content = match str_field(&value, "type").unwrap_or_default() {
            "text" => MessageContent::Text(typed(&value)),
            "image" => MessageContent::Image(typed(&value)),
            "video" => MessageContent::Video(typed(&value)),
            "audio" => MessageContent::Audio(typed(&value)),
            "file" => MessageContent::File(typed(&value)),
            "location" => MessageContent::Location(typed(&value)),
            "sticker" => MessageContent::Sticker(typed(&value)),
            other => MessageContent::Unknown(Unknown::new(other, &value)),
        };
        Ok(Message {
            id: value.get("id").and_then(|id| match id {
                serde_json::Value::String(text) => Some(text.clone()),
                serde_json::Value::Number(number) => Some(number.to_string()),
                _ => None,
            }),
            content,
        })
    }
}

/// `type: text`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TextMessage {
    #[serde(deserialize_with = "lenient::option")]
    pub text: Option<String>,
    /// LINE emoji in the text.
    #[serde(deserialize_with = "lenient::list")]
    pub emojis: Vec<Emoji>,
    #[serde(deserialize_with = "lenient::option")]
    pub mention: Option<Mention>,
    #[serde(deserialize_with = "lenient::option")]
    pub quote_token: Option<String>,
    /// Id of the message this one quotes.
    #[serde(deserialize_with = "lenient::id")]
    pub quoted_message_id: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub mark_as_read_token: Option<String>,
}

/// A LINE emoji inside a text message.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Emoji {
    #[serde(deserialize_with = "lenient::number")]
    pub index: Option<i64>,
    #[serde(deserialize_with = "lenient::number")]
    pub length: Option<i64>,
    #[serde(deserialize_with = "lenient::id")]
    pub product_id: Option<String>,
    #[serde(deserialize_with = "lenient::id")]
    pub emoji_id: Option<String>,
}

/// The mentions in a text message.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Mention {
    #[serde(deserialize_with = "lenient::list")]
    pub mentionees: Vec<Mentionee>,
}

/// One mention: where it stands in the text and whom it names.
#[derive(Debug, Clone, PartialEq)]
pub struct Mentionee {
    pub index: Option<i64>,
    pub length: Option<i64>,
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

impl MentionTarget {
    /// The `type` as LINE spells it.
    pub fn type_name(&self) -> &str {
        match self {
            MentionTarget::User { .. } => "user",
            MentionTarget::All => "all",
            MentionTarget::Unknown(unknown) => &unknown.kind,
        }
    }
}

impl<'de> Deserialize<'de> for Mentionee {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = buffered(deserializer)?;
        let number = |name: &str| value.get(name).and_then(lenient::whole_number);
        let target = match str_field(&value, "type").unwrap_or_default() {
            "user" => MentionTarget::User {
                user_id: lenient::field(&value, "userId"),
                is_self: lenient::field(&value, "isSelf"),
            },
            "all" => MentionTarget::All,
            other => MentionTarget::Unknown(Unknown::new(other, &value)),
        };
        Ok(Mentionee {
            index: number("index"),
            length: number("length"),
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
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ContentProvider {
    #[serde(rename = "type", deserialize_with = "lenient::option")]
    pub kind: Option<ContentProviderType>,
    /// Only for `external`.
    #[serde(deserialize_with = "lenient::option")]
    pub original_content_url: Option<String>,
    /// Only for `external`.
    #[serde(deserialize_with = "lenient::option")]
    pub preview_image_url: Option<String>,
}

/// `type: image`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ImageMessage {
    #[serde(deserialize_with = "lenient::option")]
    pub content_provider: Option<ContentProvider>,
    /// Set when several images were sent at once.
    #[serde(deserialize_with = "lenient::option")]
    pub image_set: Option<ImageSet>,
    #[serde(deserialize_with = "lenient::option")]
    pub quote_token: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub mark_as_read_token: Option<String>,
}

/// Several images sent at once.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct ImageSet {
    #[serde(deserialize_with = "lenient::id")]
    pub id: Option<String>,
    /// 1-based position in the set.
    #[serde(deserialize_with = "lenient::number")]
    pub index: Option<i64>,
    #[serde(deserialize_with = "lenient::number")]
    pub total: Option<i64>,
}

/// `type: video`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct VideoMessage {
    /// Length in milliseconds.
    #[serde(deserialize_with = "lenient::number")]
    pub duration: Option<i64>,
    #[serde(deserialize_with = "lenient::option")]
    pub content_provider: Option<ContentProvider>,
    #[serde(deserialize_with = "lenient::option")]
    pub quote_token: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub mark_as_read_token: Option<String>,
}

/// `type: audio`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AudioMessage {
    #[serde(deserialize_with = "lenient::option")]
    pub content_provider: Option<ContentProvider>,
    /// Length in milliseconds.
    #[serde(deserialize_with = "lenient::number")]
    pub duration: Option<i64>,
    #[serde(deserialize_with = "lenient::option")]
    pub mark_as_read_token: Option<String>,
}

/// `type: file`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct FileMessage {
    #[serde(deserialize_with = "lenient::option")]
    pub file_name: Option<String>,
    /// Size in bytes.
    #[serde(deserialize_with = "lenient::number")]
    pub file_size: Option<i64>,
    #[serde(deserialize_with = "lenient::option")]
    pub mark_as_read_token: Option<String>,
}

/// `type: location`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct LocationMessage {
    #[serde(deserialize_with = "lenient::option")]
    pub title: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub address: Option<String>,
    #[serde(deserialize_with = "lenient::float")]
    pub latitude: Option<f64>,
    #[serde(deserialize_with = "lenient::float")]
    pub longitude: Option<f64>,
    #[serde(deserialize_with = "lenient::option")]
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
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct StickerMessage {
    #[serde(deserialize_with = "lenient::id")]
    pub package_id: Option<String>,
    #[serde(deserialize_with = "lenient::id")]
    pub sticker_id: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub sticker_resource_type: Option<StickerResourceType>,
    /// Up to 15 keywords; experimental, and random for stickers with more.
    #[serde(deserialize_with = "lenient::list")]
    pub keywords: Vec<String>,
    /// Text the user typed, for message stickers.
    #[serde(deserialize_with = "lenient::option")]
    pub text: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub quote_token: Option<String>,
    #[serde(deserialize_with = "lenient::id")]
    pub quoted_message_id: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub mark_as_read_token: Option<String>,
}
