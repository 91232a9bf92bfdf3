//! WhatsApp Cloud API notifications: the `value` of `entry[].changes[]` when `field` is
//! `messages` or `smb_message_echoes` (and `user_preferences`, `user_id_update`).
//!
//! Every message type of the Cloud API's webhook reference is typed (text, image, video, audio,
//! document, sticker, location, contacts, interactive, button, reaction, order, system, referral
//! on any message, unsupported with its subtype, request_welcome, and the coexistence types revoke
//! and edit), with [`WhatsAppContent::Unknown`] kept for the next one. As everywhere in the
//! models, a field the reference calls required but that is missing is `None`: Meta sends an
//! `interactive` message without its `interactive` object (error 131000), failed statuses without
//! `contacts`, and, since usernames (2026), messages without `from` and contacts without `wa_id`
//! for users whose phone number it withholds. Those users are known by their business-scoped user
//! id (BSUID: `from_user_id`, `contacts[].user_id`, `recipient_user_id`).

use crate::compat::{Unknown, buffered, lenient, open_enum, str_field};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// `changes[].value` of a WhatsApp Business Account `messages` notification.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct WhatsAppValue {
    /// Always `whatsapp` today.
    #[serde(deserialize_with = "lenient::option")]
    pub messaging_product: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub metadata: Option<Metadata>,
    #[serde(deserialize_with = "lenient::list")]
    pub contacts: Vec<Contact>,
    #[serde(deserialize_with = "lenient::list")]
    pub messages: Vec<WhatsAppMessage>,
    #[serde(deserialize_with = "lenient::list")]
    pub statuses: Vec<Status>,
    /// `smb_message_echoes` (coexistence): messages the business sent from the WhatsApp Business
    /// app, revokes and edits of its own included; `from` is the business's number.
    #[serde(deserialize_with = "lenient::list")]
    pub message_echoes: Vec<WhatsAppMessage>,
    /// Errors about the notification itself.
    #[serde(deserialize_with = "lenient::list")]
    pub errors: Vec<WhatsAppError>,
}

impl WhatsAppValue {
    /// The contact of a user, found by phone number or BSUID.
    pub fn contact_of(&self, wa_id: Option<&str>, user_id: Option<&str>) -> Option<&Contact> {
        self.contacts.iter().find(|c| {
            (wa_id.is_some() && c.wa_id.as_deref() == wa_id)
                || (user_id.is_some() && c.user_id.as_deref() == user_id)
        })
    }
}

/// The business phone number that received the notification.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Metadata {
    #[serde(deserialize_with = "lenient::id")]
    pub display_phone_number: Option<String>,
    #[serde(deserialize_with = "lenient::id")]
    pub phone_number_id: Option<String>,
}

/// A user the notification is about.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Contact {
    /// The phone number; withheld for users with a username (2026).
    #[serde(deserialize_with = "lenient::id")]
    pub wa_id: Option<String>,
    /// The business-scoped user id (BSUID).
    #[serde(deserialize_with = "lenient::option")]
    pub user_id: Option<String>,
    /// The parent BSUID, shared by linked business portfolios.
    #[serde(deserialize_with = "lenient::option")]
    pub parent_user_id: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub profile: Option<Profile>,
}

/// A contact's profile.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Profile {
    #[serde(deserialize_with = "lenient::option")]
    pub name: Option<String>,
    /// The user's username, when they set one (2026).
    #[serde(deserialize_with = "lenient::option")]
    pub username: Option<String>,
}

/// An error Meta reports on a notification, a message or a status.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct WhatsAppError {
    #[serde(deserialize_with = "lenient::number")]
    pub code: Option<i64>,
    #[serde(deserialize_with = "lenient::option")]
    pub title: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub message: Option<String>,
    pub error_data: Option<Value>,
    #[serde(deserialize_with = "lenient::option")]
    pub href: Option<String>,
}

/// An incoming message.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WhatsAppMessage {
    /// The sender's phone number; withheld for users with a username.
    pub from: Option<String>,
    /// The sender's business-scoped user id.
    pub from_user_id: Option<String>,
    pub from_parent_user_id: Option<String>,
    /// The message id (`wamid.…`).
    pub id: Option<String>,
    /// Seconds since the epoch (sent as a string).
    pub timestamp: Option<i64>,
    /// The group it was sent in (Groups API).
    pub group_id: Option<String>,
    /// Set for replies and forwarded messages.
    pub context: Option<MessageContext>,
    /// Set when the user came from a click-to-WhatsApp ad or post.
    pub referral: Option<AdReferral>,
    /// Set when Meta could not deliver the message's content (`unsupported`, error 131000).
    pub errors: Vec<WhatsAppError>,
    pub content: WhatsAppContent,
}

/// A message's content, by `type`.
#[derive(Debug, Clone, PartialEq)]
pub enum WhatsAppContent {
    Text(Text),
    Image(Media),
    Video(Media),
    Audio(Media),
    Document(Media),
    Sticker(Media),
    Location(Location),
    /// Shared contact cards, verbatim.
    Contacts(Vec<Value>),
    /// The user's answer to an interactive message; `Unknown` with an empty kind when Meta sent
    /// no `interactive` object (see the message's `errors`).
    Interactive(Interactive),
    /// A quick reply button tapped in a template message.
    Button(Button),
    Reaction(WhatsAppReaction),
    /// An order from a catalog.
    Order(Order),
    /// A system notice: a user changed their number or identity.
    System(System),
    /// The user deleted a message (coexistence with the WhatsApp Business app).
    Revoke(Revoke),
    /// The user edited a message (coexistence).
    Edit(Edit),
    /// A message type WhatsApp could not deliver to the API (see `errors`), with its subtype.
    Unsupported(Unsupported),
    /// The user opened a chat for the first time (`request_welcome`).
    RequestWelcome,
    /// A type this version does not know, verbatim.
    Unknown(Unknown),
}

impl Default for WhatsAppContent {
    fn default() -> Self {
        WhatsAppContent::Unknown(Unknown::new("", &Value::Null))
    }
}

impl WhatsAppContent {
    /// The `type` as Meta spells it.
    pub fn type_name(&self) -> &str {
        match self {
            WhatsAppContent::Text(_) => "text",
            WhatsAppContent::Image(_) => "image",
            WhatsAppContent::Video(_) => "video",
            WhatsAppContent::Audio(_) => "audio",
            WhatsAppContent::Document(_) => "document",
            WhatsAppContent::Sticker(_) => "sticker",
            WhatsAppContent::Location(_) => "location",
            WhatsAppContent::Contacts(_) => "contacts",
            WhatsAppContent::Interactive(_) => "interactive",
            WhatsAppContent::Button(_) => "button",
            WhatsAppContent::Reaction(_) => "reaction",
            WhatsAppContent::Order(_) => "order",
            WhatsAppContent::System(_) => "system",
            WhatsAppContent::Revoke(_) => "revoke",
            WhatsAppContent::Edit(_) => "edit",
            WhatsAppContent::Unsupported(_) => "unsupported",
            WhatsAppContent::RequestWelcome => "request_welcome",
            WhatsAppContent::Unknown(unknown) => &unknown.kind,
        }
    }

    /// The media of an image, video, audio, document or sticker message.
    pub fn media(&self) -> Option<&Media> {
        match self {
            WhatsAppContent::Image(m)
            | WhatsAppContent::Video(m)
            | WhatsAppContent::Audio(m)
            | WhatsAppContent::Document(m)
            | WhatsAppContent::Sticker(m) => Some(m),
            _ => None,
        }
    }
}

/// `text`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Text {
    #[serde(deserialize_with = "lenient::option")]
    pub body: Option<String>,
}

/// What a reply or forward refers to.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct MessageContext {
    #[serde(deserialize_with = "lenient::id")]
    pub from: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub id: Option<String>,
    #[serde(deserialize_with = "lenient::flag")]
    pub forwarded: bool,
    #[serde(deserialize_with = "lenient::flag")]
    pub frequently_forwarded: bool,
    /// A product the user asked about from a catalog message.
    pub referred_product: Option<Value>,
}

/// Where a user came from: a click-to-WhatsApp ad or post.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct AdReferral {
    #[serde(deserialize_with = "lenient::option")]
    pub source_url: Option<String>,
    #[serde(deserialize_with = "lenient::id")]
    pub source_id: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub source_type: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub headline: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub body: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub media_type: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub image_url: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub video_url: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub thumbnail_url: Option<String>,
    /// The click id, for conversion tracking.
    #[serde(deserialize_with = "lenient::option")]
    pub ctwa_clid: Option<String>,
}

/// A media object of an incoming message; the file is fetched by `id` (`GET /{media-id}`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Media {
    #[serde(deserialize_with = "lenient::id")]
    pub id: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub mime_type: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub sha256: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub caption: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub filename: Option<String>,
    /// Audio: a voice note.
    #[serde(deserialize_with = "lenient::option")]
    pub voice: Option<bool>,
    /// Sticker: animated.
    #[serde(deserialize_with = "lenient::option")]
    pub animated: Option<bool>,
    /// A URL Meta includes on some media (coexistence, edits); fetch by `id` regardless.
    #[serde(deserialize_with = "lenient::option")]
    pub url: Option<String>,
}

/// A shared location.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Location {
    #[serde(deserialize_with = "lenient::float")]
    pub latitude: Option<f64>,
    #[serde(deserialize_with = "lenient::float")]
    pub longitude: Option<f64>,
    #[serde(deserialize_with = "lenient::option")]
    pub name: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub address: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub url: Option<String>,
}

/// The user's answer to an interactive message.
#[derive(Debug, Clone, PartialEq)]
pub enum Interactive {
    ButtonReply {
        id: Option<String>,
        title: Option<String>,
    },
    ListReply {
        id: Option<String>,
        title: Option<String>,
        description: Option<String>,
    },
    /// A WhatsApp Flow's answer; `response_json` is the flow's own JSON, as a string.
    NfmReply {
        name: Option<String>,
        body: Option<String>,
        response_json: Option<String>,
    },
    /// The user's answer to a call permission request.
    CallPermissionReply {
        response: Option<String>,
        expiration_timestamp: Option<i64>,
        response_source: Option<String>,
    },
    Unknown(Unknown),
}

impl Interactive {
    /// The `type` as Meta spells it.
    pub fn type_name(&self) -> &str {
        match self {
            Interactive::ButtonReply { .. } => "button_reply",
            Interactive::ListReply { .. } => "list_reply",
            Interactive::NfmReply { .. } => "nfm_reply",
            Interactive::CallPermissionReply { .. } => "call_permission_reply",
            Interactive::Unknown(unknown) => &unknown.kind,
        }
    }
}

impl<'de> Deserialize<'de> for Interactive {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = buffered(deserializer)?;
        let kind = str_field(&value, "type").unwrap_or_default();
        let part = value.get(kind).cloned().unwrap_or_default();
        let text = |name: &str| lenient::field::<String>(&part, name);
        Ok(match kind {
            "button_reply" => Interactive::ButtonReply {
                id: text("id"),
                title: text("title"),
            },
            "list_reply" => Interactive::ListReply {
                id: text("id"),
                title: text("title"),
                description: text("description"),
            },
            "nfm_reply" => Interactive::NfmReply {
                name: text("name"),
                body: text("body"),
                response_json: text("response_json"),
            },
            "call_permission_reply" => Interactive::CallPermissionReply {
                response: text("response"),
                expiration_timestamp: part
                    .get("expiration_timestamp")
                    .and_then(lenient::whole_number),
                response_source: text("response_source"),
            },
            other => Interactive::Unknown(Unknown::new(other, &value)),
        })
    }
}

/// A quick reply button tapped in a template message.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Button {
    #[serde(deserialize_with = "lenient::option")]
    pub payload: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub text: Option<String>,
}

/// A reaction to a message; an empty emoji removes it.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct WhatsAppReaction {
    #[serde(deserialize_with = "lenient::option")]
    pub message_id: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub emoji: Option<String>,
}

/// An order sent from a catalog.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Order {
    #[serde(deserialize_with = "lenient::id")]
    pub catalog_id: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub text: Option<String>,
    #[serde(deserialize_with = "lenient::list")]
    pub product_items: Vec<ProductItem>,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct ProductItem {
    #[serde(deserialize_with = "lenient::id")]
    pub product_retailer_id: Option<String>,
    #[serde(deserialize_with = "lenient::number")]
    pub quantity: Option<i64>,
    #[serde(deserialize_with = "lenient::float")]
    pub item_price: Option<f64>,
    #[serde(deserialize_with = "lenient::option")]
    pub currency: Option<String>,
}

open_enum! {
    /// What a system message says happened.
    pub enum SystemKind {
        UserChangedNumber = "user_changed_number",
        CustomerChangedNumber = "customer_changed_number",
        CustomerIdentityChanged = "customer_identity_changed",
        UserPreferenceChanged = "user_preference_changed",
    }
}

/// A system notice.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct System {
    pub kind: Option<SystemKind>,
    pub body: Option<String>,
    /// The user's new WhatsApp id, for a number change.
    pub wa_id: Option<String>,
    /// The user's new BSUID, where Meta gives one.
    pub user_id: Option<String>,
    /// The message's `identity` object (identity changes), verbatim.
    pub identity: Option<Value>,
    /// The whole `system` object, for fields this version does not name.
    pub raw: Value,
}

/// `revoke`: the user deleted one of their messages.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Revoke {
    #[serde(deserialize_with = "lenient::option")]
    pub original_message_id: Option<String>,
}

/// `edit`: the user edited one of their messages; `message` is the new content.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Edit {
    pub original_message_id: Option<String>,
    pub message: Option<Box<WhatsAppMessage>>,
}

/// `unsupported`: a message WhatsApp could not deliver to the API; the subtype where given.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Unsupported {
    /// `unsupported.type` (for example `poll`, `edit`, `view_once`).
    pub kind: Option<String>,
}

impl<'de> Deserialize<'de> for WhatsAppMessage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = buffered(deserializer)?;
        Ok(WhatsAppMessage::read(&value))
    }
}

impl WhatsAppMessage {
    /// Reads a message object leniently (also the nested message of an `edit`).
    fn read(value: &Value) -> WhatsAppMessage {
        fn typed<T: Default + serde::de::DeserializeOwned>(value: Option<&Value>) -> T {
            value
                .and_then(|v| T::deserialize(v).ok())
                .unwrap_or_default()
        }
        let id = |name: &str| -> Option<String> {
            match value.get(name) {
                Some(Value::String(text)) => Some(text.clone()),
                Some(Value::Number(number)) => Some(number.to_string()),
                _ => None,
            }
        };
        let kind = str_field(value, "type").unwrap_or_default();
        // The content sits under a field named like the type.
        let body = value.get(kind);
        let content = match kind {
            "text" => WhatsAppContent::Text(typed(body)),
            "image" => WhatsAppContent::Image(typed(body)),
            "video" => WhatsAppContent::Video(typed(body)),
            "audio" => WhatsAppContent::Audio(typed(body)),
            "document" => WhatsAppContent::Document(typed(body)),
            "sticker" => WhatsAppContent::Sticker(typed(body)),
            "location" => WhatsAppContent::Location(typed(body)),
            "contacts" => WhatsAppContent::Contacts(typed(body)),
            "interactive" => WhatsAppContent::Interactive(
                body.and_then(|v| Interactive::deserialize(v).ok())
                    .unwrap_or_else(|| Interactive::Unknown(Unknown::new("", &Value::Null))),
            ),
            "button" => WhatsAppContent::Button(typed(body)),
            "reaction" => WhatsAppContent::Reaction(typed(body)),
            "order" => WhatsAppContent::Order(typed(body)),
            "system" => {
                let raw = body.cloned().unwrap_or_default();
                WhatsAppContent::System(System {
                    kind: lenient::field(&raw, "type"),
                    body: lenient::field(&raw, "body"),
                    wa_id: lenient::field(&raw, "wa_id"),
                    user_id: lenient::field(&raw, "user_id"),
                    identity: value.get("identity").cloned(),
                    raw,
                })
            }
            "revoke" => WhatsAppContent::Revoke(typed(body)),
            "edit" => WhatsAppContent::Edit(Edit {
                original_message_id: body.and_then(|b| lenient::field(b, "original_message_id")),
                message: body
                    .and_then(|b| b.get("message"))
                    .filter(|m| m.is_object())
                    .map(|m| Box::new(WhatsAppMessage::read(m))),
            }),
            "unsupported" => WhatsAppContent::Unsupported(Unsupported {
                kind: body.and_then(|b| lenient::field(b, "type")),
            }),
            "request_welcome" => WhatsAppContent::RequestWelcome,
            other => WhatsAppContent::Unknown(Unknown::new(other, value)),
        };
        WhatsAppMessage {
            from: id("from"),
            from_user_id: lenient::field(value, "from_user_id"),
            from_parent_user_id: lenient::field(value, "from_parent_user_id"),
            id: lenient::field(value, "id"),
            timestamp: value.get("timestamp").and_then(lenient::whole_number),
            group_id: lenient::field(value, "group_id"),
            context: lenient::field(value, "context"),
            referral: lenient::field(value, "referral"),
            errors: typed(value.get("errors")),
            content,
        }
    }

    /// The sender as the gateway knows them: the phone number while WhatsApp sends it, the
    /// business-scoped user id when it withholds it.
    pub fn sender(&self) -> Option<&str> {
        self.from.as_deref().or(self.from_user_id.as_deref())
    }
}

open_enum! {
    /// The state of a message the business sent.
    pub enum StatusKind {
        Sent = "sent",
        Delivered = "delivered",
        Read = "read",
        /// A voice message was played.
        Played = "played",
        Failed = "failed",
        Deleted = "deleted",
    }
}

open_enum! {
    /// How a message is priced: conversation-based (CBP, before July 2025) or per message (PMP).
    pub enum PricingModel {
        ConversationBased = "CBP",
        PerMessage = "PMP",
    }
}

/// `pricing` of a status.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Pricing {
    #[serde(deserialize_with = "lenient::option")]
    pub billable: Option<bool>,
    #[serde(deserialize_with = "lenient::option")]
    pub pricing_model: Option<PricingModel>,
    #[serde(deserialize_with = "lenient::option")]
    pub category: Option<String>,
    #[serde(rename = "type", deserialize_with = "lenient::option")]
    pub kind: Option<String>,
}

/// `conversation` of a status (absent under per-message pricing).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct StatusConversation {
    #[serde(deserialize_with = "lenient::id")]
    pub id: Option<String>,
    #[serde(deserialize_with = "lenient::number")]
    pub expiration_timestamp: Option<i64>,
    pub origin: Option<Value>,
}

/// A status update for a message the business sent.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Status {
    /// The id of the message the status is about.
    #[serde(deserialize_with = "lenient::option")]
    pub id: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub status: Option<StatusKind>,
    /// Seconds since the epoch (sent as a string).
    #[serde(deserialize_with = "lenient::number")]
    pub timestamp: Option<i64>,
    /// The user's phone number (or the group's id); withheld for some username users.
    #[serde(deserialize_with = "lenient::id")]
    pub recipient_id: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub recipient_user_id: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub recipient_parent_user_id: Option<String>,
    /// `individual` or `group`.
    #[serde(deserialize_with = "lenient::option")]
    pub recipient_type: Option<String>,
    #[serde(deserialize_with = "lenient::id")]
    pub recipient_participant_id: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub recipient_participant_user_id: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub conversation: Option<StatusConversation>,
    #[serde(deserialize_with = "lenient::option")]
    pub pricing: Option<Pricing>,
    #[serde(deserialize_with = "lenient::option")]
    pub biz_opaque_callback_data: Option<String>,
    #[serde(deserialize_with = "lenient::list")]
    pub errors: Vec<WhatsAppError>,
}

impl Status {
    /// The recipient as the gateway knows them: phone number (or group), else BSUID.
    pub fn recipient(&self) -> Option<&str> {
        self.recipient_id
            .as_deref()
            .or(self.recipient_user_id.as_deref())
    }
}

/// `changes[].value` of a `user_preferences` notification: a user stopped or resumed marketing
/// messages.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct UserPreferencesValue {
    #[serde(deserialize_with = "lenient::option")]
    pub metadata: Option<Metadata>,
    #[serde(deserialize_with = "lenient::list")]
    pub contacts: Vec<Contact>,
    #[serde(deserialize_with = "lenient::list")]
    pub user_preferences: Vec<UserPreference>,
}

/// One preference change.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct UserPreference {
    #[serde(deserialize_with = "lenient::id")]
    pub wa_id: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub user_id: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub detail: Option<String>,
    /// `marketing_messages`.
    #[serde(deserialize_with = "lenient::option")]
    pub category: Option<String>,
    /// `stop`, `resume`, `signup`.
    #[serde(deserialize_with = "lenient::option")]
    pub value: Option<String>,
    #[serde(deserialize_with = "lenient::number")]
    pub timestamp: Option<i64>,
}

/// `changes[].value` of a `user_id_update` notification: a user's business-scoped id changed
/// (they changed their phone number). The items are kept verbatim: their shape is still moving.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct UserIdUpdateValue {
    #[serde(deserialize_with = "lenient::option")]
    pub metadata: Option<Metadata>,
    #[serde(deserialize_with = "lenient::list")]
    pub contacts: Vec<Contact>,
    #[serde(deserialize_with = "lenient::list")]
    pub user_id_update: Vec<Value>,
}
