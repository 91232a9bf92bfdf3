//! LINE webhook event objects: the fields every event has, and one variant per event type.
//!
//! The rule of every model here: a field the spec calls required but that is missing never makes
//! an event unreadable. What is present is typed; what is absent (or of a shape nobody expected)
//! is `None`, empty or `false`. Only an event that is not an object, or has no `type`, is
//! unreadable. The official SDKs parse events without `webhookEventId`, `mode` or
//! `deliveryContext`, and LINE adds fields and types without notice.

use super::message::{MentionTarget, Message, MessageContent};
use crate::compat::{Unknown, buffered, lenient, open_enum, str_field};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::collections::BTreeMap;

open_enum! {
    /// The channel's state. In `standby` another channel is in control and the bot must not send.
    pub enum Mode {
        Active = "active",
        Standby = "standby",
    }
}

/// `deliveryContext`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DeliveryContext {
    /// True when LINE sends the event again after a failed delivery.
    #[serde(deserialize_with = "lenient::flag")]
    pub is_redelivery: bool,
}

/// Where an event comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A one-to-one chat.
    User {
        user_id: Option<String>,
    },
    /// A group chat. `user_id` is the sender, in message events.
    Group {
        group_id: Option<String>,
        user_id: Option<String>,
    },
    /// A multi-person chat.
    Room {
        room_id: Option<String>,
        user_id: Option<String>,
    },
    Unknown(Unknown),
}

impl Source {
    /// The user who caused the event, where LINE names one.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Source::User { user_id }
            | Source::Group { user_id, .. }
            | Source::Room { user_id, .. } => user_id.as_deref(),
            Source::Unknown(unknown) => str_field(&unknown.raw, "userId"),
        }
    }

    /// Where a push to this chat goes: the group or room, else the user.
    pub fn chat_id(&self) -> Option<&str> {
        match self {
            Source::User { user_id } => user_id.as_deref(),
            Source::Group { group_id, .. } => group_id.as_deref(),
            Source::Room { room_id, .. } => room_id.as_deref(),
            Source::Unknown(unknown) => str_field(&unknown.raw, "userId"),
        }
    }

    /// True for group and room chats, where a bot should speak only when spoken to.
    pub fn is_multi_person(&self) -> bool {
        matches!(self, Source::Group { .. } | Source::Room { .. })
    }

    /// The `type` as LINE spells it.
    pub fn type_name(&self) -> &str {
        match self {
            Source::User { .. } => "user",
            Source::Group { .. } => "group",
            Source::Room { .. } => "room",
            Source::Unknown(unknown) => &unknown.kind,
        }
    }
}

impl Source {
    /// `lenient::option::<Source>` without building values, where the source is one of the
    /// three chats; see [`crate::scan`].
    pub(crate) fn scan(
        value: crate::scan::Json<'_>,
    ) -> Result<Option<Source>, crate::scan::Unclean> {
        #[derive(Default)]
        struct Fields<'a> {
            kind: Option<std::borrow::Cow<'a, str>>,
            user_id: Option<String>,
            group_id: Option<String>,
            room_id: Option<String>,
        }
        let fields = crate::scan::lenient::object(value, |f: &mut Fields<'_>, key, item| {
            match key {
                "type" => f.kind = item.string()?,
                "userId" => f.user_id = item.string()?.map(|s| s.into_owned()),
                "groupId" => f.group_id = item.string()?.map(|s| s.into_owned()),
                "roomId" => f.room_id = item.string()?.map(|s| s.into_owned()),
                _ => {}
            }
            Ok(())
        })?;
        let Some(fields) = fields else {
            return Ok(None);
        };
        let kind = fields.kind.as_deref().unwrap_or_default();
        match Source::chat(kind, fields.user_id, fields.group_id, fields.room_id) {
            Some(chat) => Ok(Some(chat)),
            None => {
                let raw: Value = serde_json::from_str(value.0).map_err(|_| crate::scan::Unclean)?;
                Ok(Some(Source::Unknown(Unknown::new(kind, &raw))))
            }
        }
    }

    /// The source of one of the three chat types; `None` for another type.
    pub(crate) fn chat(
        kind: &str,
        user_id: Option<String>,
        group_id: Option<String>,
        room_id: Option<String>,
    ) -> Option<Source> {
        Some(match kind {
            "user" => Source::User { user_id },
            "group" => Source::Group { group_id, user_id },
            "room" => Source::Room { room_id, user_id },
            _ => return None,
        })
    }
}

impl<'de> Deserialize<'de> for Source {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(default, rename_all = "camelCase")]
        #[derive(Default)]
        struct Fields {
            #[serde(deserialize_with = "lenient::option")]
            user_id: Option<String>,
            #[serde(deserialize_with = "lenient::option")]
            group_id: Option<String>,
            #[serde(deserialize_with = "lenient::option")]
            room_id: Option<String>,
        }
        let value = buffered(deserializer)?;
        let fields = Fields::deserialize(&value).unwrap_or_default();
        let kind = str_field(&value, "type").unwrap_or_default();
        Ok(
            Source::chat(kind, fields.user_id, fields.group_id, fields.room_id)
                .unwrap_or_else(|| Source::Unknown(Unknown::new(kind, &value))),
        )
    }
}

/// One webhook event: the common fields, and what happened in [`Event::kind`].
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// When the event happened, in milliseconds since the epoch.
    pub timestamp: Option<i64>,
    pub mode: Option<Mode>,
    /// A ULID that stays the same across redeliveries: the deduplication key.
    pub webhook_event_id: Option<String>,
    pub delivery_context: DeliveryContext,
    /// Absent for some events (module and partner events).
    pub source: Option<Source>,
    /// Present for events that can be replied to.
    pub reply_token: Option<String>,
    pub kind: EventKind,
}

/// What happened, one variant per event `type`.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    Message(Message),
    /// A message in a group chat was edited; carries the whole edited message. Edits may arrive
    /// out of order: the largest `timestamp` is the latest.
    MessageEdited(Message),
    Unsend(Unsend),
    Follow(Follow),
    Unfollow,
    Join,
    Leave,
    MemberJoined(Members),
    MemberLeft(Members),
    Postback(Postback),
    VideoPlayComplete(VideoPlayComplete),
    Beacon(Beacon),
    AccountLink(AccountLink),
    Membership(Membership),
    Module(Module),
    Activated(ChatControl),
    Deactivated,
    BotSuspended,
    BotResumed,
    /// A LINE notification message was delivered (`type: delivery`).
    Delivery(PnpDelivery),
    /// An event type this version does not know (LINE's retired `things` events among them),
    /// with its JSON.
    Unknown(Unknown),
}

impl EventKind {
    /// The event `type` as LINE spells it.
    pub fn type_name(&self) -> &str {
        match self {
            EventKind::Message(_) => "message",
            EventKind::MessageEdited(_) => "messageEdited",
            EventKind::Unsend(_) => "unsend",
            EventKind::Follow(_) => "follow",
            EventKind::Unfollow => "unfollow",
            EventKind::Join => "join",
            EventKind::Leave => "leave",
            EventKind::MemberJoined(_) => "memberJoined",
            EventKind::MemberLeft(_) => "memberLeft",
            EventKind::Postback(_) => "postback",
            EventKind::VideoPlayComplete(_) => "videoPlayComplete",
            EventKind::Beacon(_) => "beacon",
            EventKind::AccountLink(_) => "accountLink",
            EventKind::Membership(_) => "membership",
            EventKind::Module(_) => "module",
            EventKind::Activated(_) => "activated",
            EventKind::Deactivated => "deactivated",
            EventKind::BotSuspended => "botSuspended",
            EventKind::BotResumed => "botResumed",
            EventKind::Delivery(_) => "delivery",
            EventKind::Unknown(unknown) => &unknown.kind,
        }
    }
}

/// `unsend`: the user took a message back; stop showing it and delete stored copies.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Unsend {
    #[serde(deserialize_with = "lenient::id")]
    pub message_id: Option<String>,
}

/// `follow`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Follow {
    /// True when the user unblocked the account rather than adding it for the first time.
    #[serde(deserialize_with = "lenient::flag")]
    pub is_unblocked: bool,
}

/// Users who joined or left a group or room.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Members {
    #[serde(deserialize_with = "lenient::list")]
    pub members: Vec<Source>,
}

/// `postback`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Postback {
    #[serde(deserialize_with = "lenient::option")]
    pub data: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub params: Option<PostbackParams>,
}

open_enum! {
    /// Outcome of a rich menu switch action.
    pub enum RichMenuSwitchStatus {
        Success = "SUCCESS",
        RichMenuAliasIdNotFound = "RICHMENU_ALIAS_ID_NOTFOUND",
        RichMenuNotFound = "RICHMENU_NOTFOUND",
        Failed = "FAILED",
    }
}

/// `postback.params`: what a datetime picker or a rich menu switch action returned.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PostbackParams {
    /// `YYYY-MM-DD`, from a date picker.
    #[serde(deserialize_with = "lenient::option")]
    pub date: Option<String>,
    /// `HH:mm`, from a time picker.
    #[serde(deserialize_with = "lenient::option")]
    pub time: Option<String>,
    /// `YYYY-MM-DDTHH:mm`, from a datetime picker.
    #[serde(deserialize_with = "lenient::option")]
    pub datetime: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub new_rich_menu_alias_id: Option<String>,
    #[serde(deserialize_with = "lenient::option")]
    pub status: Option<RichMenuSwitchStatus>,
    /// Parameters this version does not name, kept as they arrived.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// `videoPlayComplete`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct VideoPlayComplete {
    #[serde(deserialize_with = "lenient::option")]
    pub tracking_id: Option<String>,
}

open_enum! {
    /// What a beacon saw.
    pub enum BeaconType {
        Enter = "enter",
        Banner = "banner",
        Stay = "stay",
    }
}

/// `beacon`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Beacon {
    #[serde(deserialize_with = "lenient::option")]
    pub hwid: Option<String>,
    #[serde(rename = "type", deserialize_with = "lenient::option")]
    pub kind: Option<BeaconType>,
    /// Device message.
    #[serde(deserialize_with = "lenient::option")]
    pub dm: Option<String>,
}

open_enum! {
    /// Whether account linking worked.
    pub enum LinkResult {
        Ok = "ok",
        Failed = "failed",
    }
}

/// `accountLink` (`link` in the JSON).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct AccountLink {
    #[serde(deserialize_with = "lenient::option")]
    pub result: Option<LinkResult>,
    #[serde(deserialize_with = "lenient::option")]
    pub nonce: Option<String>,
}

/// `membership`: a user joined, left or renewed a membership.
#[derive(Debug, Clone, PartialEq)]
pub enum Membership {
    Joined { membership_id: Option<i64> },
    Left { membership_id: Option<i64> },
    Renewed { membership_id: Option<i64> },
    Unknown(Unknown),
}

impl Default for Membership {
    fn default() -> Self {
        Membership::Unknown(Unknown::new("", &serde_json::Value::Null))
    }
}

impl<'de> Deserialize<'de> for Membership {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = buffered(deserializer)?;
        let membership_id = value.get("membershipId").and_then(lenient::whole_number);
        Ok(match str_field(&value, "type").unwrap_or_default() {
            "joined" => Membership::Joined { membership_id },
            "left" => Membership::Left { membership_id },
            "renewed" => Membership::Renewed { membership_id },
            other => Membership::Unknown(Unknown::new(other, &value)),
        })
    }
}

open_enum! {
    /// Why a module channel was detached.
    pub enum DetachReason {
        BotDeleted = "bot_deleted",
    }
}

/// `module`: a module channel was attached to or detached from an account.
#[derive(Debug, Clone, PartialEq)]
pub enum Module {
    Attached {
        bot_id: Option<String>,
        scopes: Vec<String>,
    },
    Detached {
        bot_id: Option<String>,
        reason: Option<DetachReason>,
    },
    Unknown(Unknown),
}

impl Default for Module {
    fn default() -> Self {
        Module::Unknown(Unknown::new("", &serde_json::Value::Null))
    }
}

impl<'de> Deserialize<'de> for Module {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = buffered(deserializer)?;
        let bot_id = lenient::field::<String>(&value, "botId");
        Ok(match str_field(&value, "type").unwrap_or_default() {
            "attached" => Module::Attached {
                bot_id,
                scopes: lenient::field(&value, "scopes").unwrap_or_default(),
            },
            "detached" => Module::Detached {
                bot_id,
                reason: lenient::field(&value, "reason"),
            },
            other => Module::Unknown(Unknown::new(other, &value)),
        })
    }
}

/// `activated` (`chatControl` in the JSON).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ChatControl {
    /// When control expires, in milliseconds since the epoch.
    #[serde(deserialize_with = "lenient::number")]
    pub expire_at: Option<i64>,
}

/// `delivery`: a LINE notification message reached the user.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct PnpDelivery {
    /// A hashed phone number, or the `X-Line-Delivery-Tag` the sender chose.
    #[serde(deserialize_with = "lenient::option")]
    pub data: Option<String>,
}

impl Event {
    /// Reads one event from its JSON text. Fails only when the text is not a JSON object with a
    /// `type`.
    ///
    /// ```
    /// use shared::line::{Event, EventKind};
    /// let event = Event::from_json(r#"{"type":"unfollow","timestamp":1,"mode":"active",
    ///     "webhookEventId":"01H","deliveryContext":{"isRedelivery":false},
    ///     "source":{"type":"user","userId":"U1"}}"#).unwrap();
    /// assert_eq!(event.kind, EventKind::Unfollow);
    /// // Only `type` is needed: the rest is what it is.
    /// let bare = Event::from_json(r#"{"type":"follow"}"#).unwrap();
    /// assert_eq!((bare.timestamp, bare.webhook_event_id), (None, None));
    /// ```
    pub fn from_json(json: &str) -> Result<Event, serde_json::Error> {
        crate::compat::object(json)
    }

    /// The message of a `message` or `messageEdited` event.
    pub fn message(&self) -> Option<&Message> {
        match &self.kind {
            EventKind::Message(message) | EventKind::MessageEdited(message) => Some(message),
            _ => None,
        }
    }

    /// True when the bot was mentioned: a mentionee with `isSelf: true`, or, for events from
    /// before LINE added `isSelf`, one whose `userId` is the bot's own user id (`destination`),
    /// compared as they are: in the rare body without a destination, a mention of a user LINE
    /// does not name may be the bot, as the SDKs' own test bodies expect.
    pub fn mentions_bot(&self, destination: Option<&str>) -> bool {
        let Some(Message {
            content: MessageContent::Text(text),
            ..
        }) = self.message()
        else {
            return false;
        };
        let Some(mention) = &text.mention else {
            return false;
        };
        mention.mentionees.iter().any(|m| match &m.target {
            MentionTarget::User {
                is_self: Some(is_self),
                ..
            } => *is_self,
            MentionTarget::User {
                is_self: None,
                user_id,
            } => user_id.as_deref() == destination,
            _ => false,
        })
    }

    /// The conversation the event belongs to; see [`super::conversation_id`].
    pub fn conversation_id(&self, destination: &str) -> String {
        super::conversation_id(destination, self.source.as_ref())
    }

    /// The deduplication key, `line:` + `webhookEventId`, where the event has one (the ingress
    /// keys events without one by their content: [`super::EventHead::dedup_key`]).
    pub fn dedup_key(&self) -> Option<String> {
        self.webhook_event_id
            .as_deref()
            .filter(|id| !id.is_empty())
            .map(super::dedup_key_for_id)
    }

    pub fn reply_token(&self) -> Option<&str> {
        self.reply_token.as_deref()
    }

    pub fn is_redelivery(&self) -> bool {
        self.delivery_context.is_redelivery
    }

    /// True when the channel is in standby: the bot must not send messages.
    pub fn is_standby(&self) -> bool {
        self.mode == Some(Mode::Standby)
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize, Default)]
        #[serde(default, rename_all = "camelCase")]
        struct Common {
            #[serde(deserialize_with = "lenient::number")]
            timestamp: Option<i64>,
            #[serde(deserialize_with = "lenient::option")]
            mode: Option<Mode>,
            #[serde(deserialize_with = "lenient::option")]
            webhook_event_id: Option<String>,
            #[serde(deserialize_with = "lenient::option")]
            delivery_context: Option<DeliveryContext>,
            #[serde(deserialize_with = "lenient::option")]
            source: Option<Source>,
            #[serde(deserialize_with = "lenient::option")]
            reply_token: Option<String>,
        }
        let value = buffered(deserializer)?;
        let Some(kind) = str_field(&value, "type") else {
            return Err(serde::de::Error::custom("an event without a `type`"));
        };
        let common = Common::deserialize(&value).unwrap_or_default();
        let of = |name: &str| -> Message {
            value
                .get(name)
                .and_then(|m| Message::deserialize(m).ok())
                .unwrap_or_default()
        };
        fn typed<T: Default + serde::de::DeserializeOwned>(
            value: &serde_json::Value,
            name: &str,
        ) -> T {
            lenient::field(value, name).unwrap_or_default()
        }
        let kind = match kind {
            "message" => EventKind::Message(of("message")),
            "messageEdited" => EventKind::MessageEdited(of("message")),
            "unsend" => EventKind::Unsend(typed(&value, "unsend")),
            "follow" => EventKind::Follow(typed(&value, "follow")),
            "unfollow" => EventKind::Unfollow,
            "join" => EventKind::Join,
            "leave" => EventKind::Leave,
            "memberJoined" => EventKind::MemberJoined(typed(&value, "joined")),
            "memberLeft" => EventKind::MemberLeft(typed(&value, "left")),
            "postback" => EventKind::Postback(typed(&value, "postback")),
            "videoPlayComplete" => EventKind::VideoPlayComplete(typed(&value, "videoPlayComplete")),
            "beacon" => EventKind::Beacon(typed(&value, "beacon")),
            "accountLink" => EventKind::AccountLink(typed(&value, "link")),
            "membership" => EventKind::Membership(typed(&value, "membership")),
            "module" => EventKind::Module(typed(&value, "module")),
            "activated" => EventKind::Activated(typed(&value, "chatControl")),
            "deactivated" => EventKind::Deactivated,
            "botSuspended" => EventKind::BotSuspended,
            "botResumed" => EventKind::BotResumed,
            "delivery" => EventKind::Delivery(typed(&value, "delivery")),
            other => EventKind::Unknown(Unknown::new(other, &value)),
        };
        Ok(Event {
            timestamp: common.timestamp,
            mode: common.mode,
            webhook_event_id: common.webhook_event_id,
            delivery_context: common.delivery_context.unwrap_or_default(),
            source: common.source,
            reply_token: common.reply_token,
            kind,
        })
    }
}
