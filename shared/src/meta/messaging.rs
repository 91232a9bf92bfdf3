//! Messenger and Instagram messaging events: the items of `entry[].messaging[]` and
//! `entry[].standby[]`.

use crate::compat::{Unknown, buffered, lenient, open_enum};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;

/// A party of a messaging event: a user's page-scoped id, or the page's id.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Party {
    #[serde(deserialize_with = "lenient::id")]
    pub id: Option<String>,
    /// For checkbox-plugin opt-ins, before a PSID exists.
    #[serde(deserialize_with = "lenient::id")]
    pub user_ref: Option<String>,
}

/// One messaging event. The kind of event is named by the field that carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct MessagingEvent {
    /// Absent for `policy_enforcement`.
    pub sender: Option<Party>,
    pub recipient: Option<Party>,
    /// Milliseconds since the epoch.
    pub timestamp: Option<i64>,
    pub kind: MessagingKind,
}

/// What happened, one variant per field that carries a messaging event.
#[derive(Debug, Clone, PartialEq)]
pub enum MessagingKind {
    /// A message; with `is_echo` it is one the page sent.
    Message(Message),
    Postback(Postback),
    Delivery(Delivery),
    Read(Read),
    Reaction(Reaction),
    MessageEdit(MessageEdit),
    Optin(Optin),
    Referral(Referral),
    AccountLinking(AccountLinking),
    PassThreadControl(ThreadControl),
    TakeThreadControl(ThreadControl),
    RequestThreadControl(ThreadControl),
    /// `app_roles`: app id to its roles on the page.
    AppRoles(BTreeMap<String, Vec<String>>),
    PolicyEnforcement(PolicyEnforcement),
    /// An event kind this version does not know; `kind` is the field that carries it.
    Unknown(Unknown),
}

/// The fields of a messaging event that are not the event itself.
const COMMON_FIELDS: [&str; 3] = ["sender", "recipient", "timestamp"];

impl MessagingKind {
    /// The field name that carries the event (`message`, `postback`, …).
    pub fn field_name(&self) -> &str {
        match self {
            MessagingKind::Message(_) => "message",
            MessagingKind::Postback(_) => "postback",
            MessagingKind::Delivery(_) => "delivery",
            MessagingKind::Read(_) => "read",
            MessagingKind::Reaction(_) => "reaction",
            MessagingKind::MessageEdit(_) => "message_edit",
            MessagingKind::Optin(_) => "optin",
            MessagingKind::Referral(_) => "referral",
            MessagingKind::AccountLinking(_) => "account_linking",
            MessagingKind::PassThreadControl(_) => "pass_thread_control",
            MessagingKind::TakeThreadControl(_) => "take_thread_control",
            MessagingKind::RequestThreadControl(_) => "request_thread_control",
            MessagingKind::AppRoles(_) => "app_roles",
            MessagingKind::PolicyEnforcement(_) => "policy_enforcement",
            MessagingKind::Unknown(unknown) => &unknown.kind,
        }
    }
}

impl MessagingEvent {
    /// The text of an incoming (not echoed) text message.
    pub fn incoming_text(&self) -> Option<&str> {
        match &self.kind {
            MessagingKind::Message(message) if !message.is_echo => message.text.as_deref(),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for MessagingEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Common {
            #[serde(deserialize_with = "lenient::option")]
            sender: Option<Party>,
            #[serde(deserialize_with = "lenient::option")]
            recipient: Option<Party>,
            /// Meta's dashboard test payload sends it as a string.
            #[serde(deserialize_with = "lenient::number")]
            timestamp: Option<i64>,
        }
        let value = buffered(deserializer)?;
        let common = Common::deserialize(&value).unwrap_or_default();
        let field = |name: &str| value.get(name);
        fn typed<T: Default + serde::de::DeserializeOwned>(value: &serde_json::Value) -> T {
            T::deserialize(value).unwrap_or_default()
        }
        // A postback may carry a `referral` and a message may be accompanied by others: the
        // order below puts the field that names the event first. What the field holds is read
        // leniently: a kind is recognised by its field, whatever the field's shape.
        let kind = if let Some(v) = field("message_edit") {
            MessagingKind::MessageEdit(typed(v))
        } else if let Some(v) = field("message") {
            MessagingKind::Message(typed(v))
        } else if let Some(v) = field("postback") {
            MessagingKind::Postback(typed(v))
        } else if let Some(v) = field("reaction") {
            MessagingKind::Reaction(typed(v))
        } else if let Some(v) = field("read") {
            MessagingKind::Read(typed(v))
        } else if let Some(v) = field("delivery") {
            MessagingKind::Delivery(typed(v))
        } else if let Some(v) = field("optin") {
            MessagingKind::Optin(typed(v))
        } else if let Some(v) = field("account_linking") {
            MessagingKind::AccountLinking(typed(v))
        } else if let Some(v) = field("pass_thread_control") {
            MessagingKind::PassThreadControl(typed(v))
        } else if let Some(v) = field("take_thread_control") {
            MessagingKind::TakeThreadControl(typed(v))
        } else if let Some(v) = field("request_thread_control") {
            MessagingKind::RequestThreadControl(typed(v))
        } else if let Some(v) = field("app_roles") {
            MessagingKind::AppRoles(typed(v))
        } else if let Some(v) = field("policy_enforcement") {
            MessagingKind::PolicyEnforcement(typed(v))
        } else if let Some(v) = field("referral") {
            MessagingKind::Referral(typed(v))
        } else {
            let kind = value
                .as_object()
                .and_then(|map| map.keys().find(|k| !COMMON_FIELDS.contains(&k.as_str())))
                .cloned()
                .unwrap_or_default();
            MessagingKind::Unknown(Unknown::new(kind, &value))
        };
        Ok(MessagingEvent {
            sender: common.sender,
            recipient: common.recipient,
            timestamp: common.timestamp,
            kind,
        })
    }
}

/// `message`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Message {
    #[serde(deserialize_with = "lenient::option")]
    pub mid: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub text: Option<String>,
    #[serde(deserialize_with = "lenient::list")]
    pub attachments: Vec<Attachment>,
    #[serde(deserialize_with = "lenient::option")]
    pub quick_reply: Option<QuickReply>,
    #[serde(deserialize_with = "lenient::option")]
    pub reply_to: Option<ReplyTo>,
    /// True for a message the page itself sent (`message_echoes`).
    #[serde(deserialize_with = "lenient::flag")]
    pub is_echo: bool,
    /// For echoes: the app that sent the message.
    #[serde(deserialize_with = "lenient::id")]
    pub app_id: Option<String>,
    /// For echoes: the metadata the sender attached.
    #[serde(deserialize_with = "lenient::option")]
    pub metadata: Option<String>,
    /// Instagram: the user unsent this message (`mid` is the original's).
    #[serde(deserialize_with = "lenient::flag")]
    pub is_deleted: bool,
    /// Instagram: a message type the API cannot show.
    #[serde(deserialize_with = "lenient::flag")]
    pub is_unsupported: bool,
}

/// A quick reply the user tapped.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct QuickReply {
    #[serde(deserialize_with = "lenient::option")]
    pub payload: Option<String>,
}

/// The message this one replies to.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct ReplyTo {
    #[serde(deserialize_with = "lenient::option")]
    pub mid: Option<String>,
    /// Instagram story replies.
    #[serde(deserialize_with = "lenient::option")]
    pub story: Option<StoryRef>,
}

/// An Instagram story a message refers to.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct StoryRef {
    #[serde(deserialize_with = "lenient::option")]
    pub url: Option<String>,
    #[serde(deserialize_with = "lenient::id")]
    pub id: Option<String>,
}

/// An attachment of a message, by `type`.
#[derive(Debug, Clone, PartialEq)]
pub enum Attachment {
    Image(MediaPayload),
    Video(MediaPayload),
    Audio(MediaPayload),
    File(MediaPayload),
    Location(LocationPayload),
    /// A link shared from outside Messenger.
    Fallback(Fallback),
    Template(serde_json::Value),
    /// Other types (Instagram `share`, `story_mention`, `ig_reel`, …) and future ones, verbatim.
    Unknown(Unknown),
}

impl Attachment {
    /// The attachment `type` as Meta spells it.
    pub fn type_name(&self) -> &str {
        match self {
            Attachment::Image(_) => "image",
            Attachment::Video(_) => "video",
            Attachment::Audio(_) => "audio",
            Attachment::File(_) => "file",
            Attachment::Location(_) => "location",
            Attachment::Fallback(_) => "fallback",
            Attachment::Template(_) => "template",
            Attachment::Unknown(unknown) => &unknown.kind,
        }
    }

    /// The media URL of an image, video, audio or file attachment.
    pub fn url(&self) -> Option<&str> {
        match self {
            Attachment::Image(p)
            | Attachment::Video(p)
            | Attachment::Audio(p)
            | Attachment::File(p) => p.url.as_deref(),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Attachment {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = buffered(deserializer)?;
        let kind = crate::compat::str_field(&value, "type").unwrap_or_default();
        let payload = || value.get("payload").cloned().unwrap_or_default();
        let media = || MediaPayload::deserialize(payload()).unwrap_or_default();
        Ok(match kind {
            "image" => Attachment::Image(media()),
            "video" => Attachment::Video(media()),
            "audio" => Attachment::Audio(media()),
            "file" => Attachment::File(media()),
            "location" => {
                Attachment::Location(LocationPayload::deserialize(payload()).unwrap_or_default())
            }
            "fallback" => Attachment::Fallback(Fallback::deserialize(&value).unwrap_or_default()),
            "template" => Attachment::Template(payload()),
            other => Attachment::Unknown(Unknown::new(other, &value)),
        })
    }
}

/// The payload of a media attachment.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct MediaPayload {
    /// Where Meta serves the file; the URL expires.
    #[serde(deserialize_with = "lenient::option")]
    pub url: Option<String>,
    /// Set when the image is a sticker.
    #[serde(deserialize_with = "lenient::id")]
    pub sticker_id: Option<String>,
}

/// The payload of a location attachment.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct LocationPayload {
    #[serde(deserialize_with = "lenient::option")]
    pub coordinates: Option<Coordinates>,
}

/// A point on the map.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Coordinates {
    #[serde(deserialize_with = "lenient::float")]
    pub lat: Option<f64>,
    #[serde(deserialize_with = "lenient::float")]
    pub long: Option<f64>,
}

/// A `fallback` attachment: a shared link.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Fallback {
    #[serde(deserialize_with = "lenient::option")]
    pub title: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub url: Option<String>,
    pub payload: Option<serde_json::Value>,
}

/// `postback`: a button, persistent menu item or Get Started tap.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Postback {
    #[serde(deserialize_with = "lenient::option")]
    pub mid: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub title: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub payload: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub referral: Option<Referral>,
}

/// `delivery`: messages the page sent were delivered.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Delivery {
    /// May be absent.
    #[serde(deserialize_with = "lenient::list")]
    pub mids: Vec<String>,
    /// Everything sent before this time (ms) was delivered.
    #[serde(deserialize_with = "lenient::number")]
    pub watermark: Option<i64>,
}

/// `read`: the user read everything the page sent before `watermark`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Read {
    #[serde(deserialize_with = "lenient::number")]
    pub watermark: Option<i64>,
}

open_enum! {
    /// Whether a reaction was added or removed.
    pub enum ReactionAction {
        React = "react",
        Unreact = "unreact",
    }
}

/// `reaction` to a message.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Reaction {
    /// The message reacted to.
    #[serde(deserialize_with = "lenient::option")]
    pub mid: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub action: Option<ReactionAction>,
    /// Named reaction (`love`, `like`, …), where Meta gives one.
    #[serde(deserialize_with = "lenient::option")]
    pub reaction: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub emoji: Option<String>,
}

/// `message_edit`: a user edited a message they sent.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct MessageEdit {
    #[serde(deserialize_with = "lenient::option")]
    pub mid: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub text: Option<String>,
    /// How many times the message has been edited; with `mid`, names this edit.
    #[serde(deserialize_with = "lenient::number")]
    pub num_edit: Option<i64>,
}

/// `optin`: the user opted in (send-to-Messenger plugin, checkbox, notification messages).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Optin {
    #[serde(rename = "ref", deserialize_with = "lenient::option")]
    pub reference: Option<String>,
    #[serde(deserialize_with = "lenient::id")]
    pub user_ref: Option<String>,
    #[serde(rename = "type", deserialize_with = "lenient::option")]
    pub kind: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub payload: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub notification_messages_token: Option<String>,
}

/// `referral`: the user came through an m.me link, an ad or a plugin.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Referral {
    #[serde(rename = "ref", deserialize_with = "lenient::option")]
    pub reference: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub source: Option<String>,
    #[serde(rename = "type", deserialize_with = "lenient::option")]
    pub kind: Option<String>,
    #[serde(deserialize_with = "lenient::id")]
    pub ad_id: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub referer_uri: Option<String>,
}

open_enum! {
    /// Account linking status.
    pub enum LinkingStatus {
        Linked = "linked",
        Unlinked = "unlinked",
    }
}

/// `account_linking`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct AccountLinking {
    #[serde(deserialize_with = "lenient::option")]
    pub status: Option<LinkingStatus>,
    #[serde(deserialize_with = "lenient::option")]
    pub authorization_code: Option<String>,
}

/// The handover protocol events: `pass_thread_control`, `take_thread_control`,
/// `request_thread_control`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct ThreadControl {
    #[serde(deserialize_with = "lenient::id")]
    pub new_owner_app_id: Option<String>,
    #[serde(deserialize_with = "lenient::id")]
    pub previous_owner_app_id: Option<String>,
    #[serde(deserialize_with = "lenient::id")]
    pub requested_owner_app_id: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub metadata: Option<String>,
}

/// `policy_enforcement`: Meta warned about or blocked the app on this page.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct PolicyEnforcement {
    #[serde(deserialize_with = "lenient::option")]
    pub action: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub reason: Option<String>,
}
