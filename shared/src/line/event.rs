//! LINE webhook event objects: the fields every event has, and one variant per event type.

use super::message::{MentionTarget, Message, MessageContent};
use crate::compat::{Unknown, buffered, open_enum, typed};
use serde::{Deserialize, Deserializer};
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
#[serde(rename_all = "camelCase")]
pub struct DeliveryContext {
    /// True when LINE sends the event again after a failed delivery.
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
        group_id: String,
        user_id: Option<String>,
    },
    /// A multi-person chat.
    Room {
        room_id: String,
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
            Source::Unknown(unknown) => crate::compat::str_field(&unknown.raw, "userId"),
        }
    }

    /// True for group and room chats, where a bot should speak only when spoken to.
    pub fn is_multi_person(&self) -> bool {
        matches!(self, Source::Group { .. } | Source::Room { .. })
    }
}

impl<'de> Deserialize<'de> for Source {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Fields {
            #[serde(rename = "type")]
            kind: String,
            user_id: Option<String>,
            group_id: Option<String>,
            room_id: Option<String>,
        }
        let value = buffered(deserializer)?;
        let fields: Fields = typed(&value)?;
        let missing = |name| serde::de::Error::missing_field(name);
        Ok(match fields.kind.as_str() {
            "user" => Source::User {
                user_id: fields.user_id,
            },
            "group" => Source::Group {
                group_id: fields.group_id.ok_or_else(|| missing("groupId"))?,
                user_id: fields.user_id,
            },
            "room" => Source::Room {
                room_id: fields.room_id.ok_or_else(|| missing("roomId"))?,
                user_id: fields.user_id,
            },
            other => Source::Unknown(Unknown::new(other, &value)),
        })
    }
}

/// One webhook event: the common fields, and what happened in [`Event::kind`].
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// When the event happened, in milliseconds since the epoch.
    pub timestamp: i64,
    pub mode: Mode,
    /// A ULID that stays the same across redeliveries: the deduplication key.
    pub webhook_event_id: String,
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
    /// An event type this version does not know, with its JSON.
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
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unsend {
    pub message_id: String,
}

/// `follow`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Follow {
    /// True when the user unblocked the account rather than adding it for the first time.
    pub is_unblocked: bool,
}

/// Users who joined or left a group or room.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Members {
    pub members: Vec<Source>,
}

/// `postback`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Postback {
    pub data: String,
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
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostbackParams {
    /// `YYYY-MM-DD`, from a date picker.
    pub date: Option<String>,
    /// `HH:mm`, from a time picker.
    pub time: Option<String>,
    /// `YYYY-MM-DDTHH:mm`, from a datetime picker.
    pub datetime: Option<String>,
    pub new_rich_menu_alias_id: Option<String>,
    pub status: Option<RichMenuSwitchStatus>,
    /// Parameters this version does not name, kept as they arrived.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// `videoPlayComplete`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoPlayComplete {
    pub tracking_id: String,
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
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Beacon {
    pub hwid: String,
    #[serde(rename = "type")]
    pub kind: BeaconType,
    /// Device message.
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
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AccountLink {
    pub result: LinkResult,
    pub nonce: String,
}

/// `membership`: a user joined, left or renewed a membership.
#[derive(Debug, Clone, PartialEq)]
pub enum Membership {
    Joined { membership_id: i64 },
    Left { membership_id: i64 },
    Renewed { membership_id: i64 },
    Unknown(Unknown),
}

impl<'de> Deserialize<'de> for Membership {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Fields {
            membership_id: i64,
        }
        let value = buffered(deserializer)?;
        let kind = crate::compat::str_field(&value, "type").unwrap_or_default();
        let id = || typed::<Fields, D::Error>(&value).map(|f| f.membership_id);
        Ok(match kind {
            "joined" => Membership::Joined {
                membership_id: id()?,
            },
            "left" => Membership::Left {
                membership_id: id()?,
            },
            "renewed" => Membership::Renewed {
                membership_id: id()?,
            },
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
        bot_id: String,
        scopes: Vec<String>,
    },
    Detached {
        bot_id: String,
        reason: DetachReason,
    },
    Unknown(Unknown),
}

impl<'de> Deserialize<'de> for Module {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Attached {
            bot_id: String,
            scopes: Vec<String>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Detached {
            bot_id: String,
            reason: DetachReason,
        }
        let value = buffered(deserializer)?;
        Ok(
            match crate::compat::str_field(&value, "type").unwrap_or_default() {
                "attached" => {
                    let a: Attached = typed(&value)?;
                    Module::Attached {
                        bot_id: a.bot_id,
                        scopes: a.scopes,
                    }
                }
                "detached" => {
                    let d: Detached = typed(&value)?;
                    Module::Detached {
                        bot_id: d.bot_id,
                        reason: d.reason,
                    }
                }
                other => Module::Unknown(Unknown::new(other, &value)),
            },
        )
    }
}

/// `activated` (`chatControl` in the JSON).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatControl {
    /// When control expires, in milliseconds since the epoch.
    pub expire_at: i64,
}

/// `delivery`: a LINE notification message reached the user.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PnpDelivery {
    /// A hashed phone number, or the `X-Line-Delivery-Tag` the sender chose.
    pub data: String,
}

impl Event {
    /// Reads one event from its JSON text.
    ///
    /// ```
    /// use shared::line::{Event, EventKind};
    /// let event = Event::from_json(r#"{"type":"unfollow","timestamp":1,"mode":"active",
    ///     "webhookEventId":"01H","deliveryContext":{"isRedelivery":false},
    ///     "source":{"type":"user","userId":"U1"}}"#).unwrap();
    /// assert_eq!(event.kind, EventKind::Unfollow);
    /// ```
    pub fn from_json(json: &str) -> Result<Event, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// The message of a `message` or `messageEdited` event.
    pub fn message(&self) -> Option<&Message> {
        match &self.kind {
            EventKind::Message(message) | EventKind::MessageEdited(message) => Some(message),
            _ => None,
        }
    }

    /// True when the bot was mentioned: a mentionee with `isSelf: true`, or, for events from
    /// before LINE added `isSelf`, one whose `userId` is the bot's own user id (`destination`).
    pub fn mentions_bot(&self, destination: &str) -> bool {
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
                user_id: Some(user_id),
            } => user_id == destination,
            _ => false,
        })
    }

    /// The conversation the event belongs to; see [`super::conversation_id`].
    pub fn conversation_id(&self, destination: &str) -> String {
        super::conversation_id(destination, self.source.as_ref())
    }

    /// The deduplication key: `line:` + `webhookEventId`.
    pub fn dedup_key(&self) -> String {
        super::dedup_key_for_id(&self.webhook_event_id)
    }

    pub fn reply_token(&self) -> Option<&str> {
        self.reply_token.as_deref()
    }

    pub fn is_redelivery(&self) -> bool {
        self.delivery_context.is_redelivery
    }

    /// True when the channel is in standby: the bot must not send messages.
    pub fn is_standby(&self) -> bool {
        self.mode == Mode::Standby
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Common {
            #[serde(rename = "type")]
            kind: String,
            timestamp: i64,
            mode: Mode,
            webhook_event_id: String,
            // Required by the spec; tolerated when absent, as on events from before it existed.
            #[serde(default)]
            delivery_context: DeliveryContext,
            source: Option<Source>,
            reply_token: Option<String>,
        }
        #[derive(Deserialize)]
        struct WithMessage {
            message: Message,
        }
        #[derive(Deserialize)]
        struct WithUnsend {
            unsend: Unsend,
        }
        #[derive(Deserialize)]
        struct WithFollow {
            #[serde(default)]
            follow: Follow,
        }
        #[derive(Deserialize)]
        struct WithJoined {
            joined: Members,
        }
        #[derive(Deserialize)]
        struct WithLeft {
            left: Members,
        }
        #[derive(Deserialize)]
        struct WithPostback {
            postback: Postback,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct WithVideo {
            video_play_complete: VideoPlayComplete,
        }
        #[derive(Deserialize)]
        struct WithBeacon {
            beacon: Beacon,
        }
        #[derive(Deserialize)]
        struct WithLink {
            link: AccountLink,
        }
        #[derive(Deserialize)]
        struct WithMembership {
            membership: Membership,
        }
        #[derive(Deserialize)]
        struct WithModule {
            module: Module,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct WithChatControl {
            chat_control: ChatControl,
        }
        #[derive(Deserialize)]
        struct WithDelivery {
            delivery: PnpDelivery,
        }

        let value = buffered(deserializer)?;
        let common: Common = typed(&value)?;
        let kind = match common.kind.as_str() {
            "message" => EventKind::Message(typed::<WithMessage, _>(&value)?.message),
            "messageEdited" => EventKind::MessageEdited(typed::<WithMessage, _>(&value)?.message),
            "unsend" => EventKind::Unsend(typed::<WithUnsend, _>(&value)?.unsend),
            "follow" => EventKind::Follow(typed::<WithFollow, _>(&value)?.follow),
            "unfollow" => EventKind::Unfollow,
            "join" => EventKind::Join,
            "leave" => EventKind::Leave,
            "memberJoined" => EventKind::MemberJoined(typed::<WithJoined, _>(&value)?.joined),
            "memberLeft" => EventKind::MemberLeft(typed::<WithLeft, _>(&value)?.left),
            "postback" => EventKind::Postback(typed::<WithPostback, _>(&value)?.postback),
            "videoPlayComplete" => {
                EventKind::VideoPlayComplete(typed::<WithVideo, _>(&value)?.video_play_complete)
            }
            "beacon" => EventKind::Beacon(typed::<WithBeacon, _>(&value)?.beacon),
            "accountLink" => EventKind::AccountLink(typed::<WithLink, _>(&value)?.link),
            "membership" => EventKind::Membership(typed::<WithMembership, _>(&value)?.membership),
            "module" => EventKind::Module(typed::<WithModule, _>(&value)?.module),
            "activated" => EventKind::Activated(typed::<WithChatControl, _>(&value)?.chat_control),
            "deactivated" => EventKind::Deactivated,
            "botSuspended" => EventKind::BotSuspended,
            "botResumed" => EventKind::BotResumed,
            "delivery" => EventKind::Delivery(typed::<WithDelivery, _>(&value)?.delivery),
            other => EventKind::Unknown(Unknown::new(other, &value)),
        };
        Ok(Event {
            timestamp: common.timestamp,
            mode: common.mode,
            webhook_event_id: common.webhook_event_id,
            delivery_context: common.delivery_context,
            source: common.source,
            reply_token: common.reply_token,
            kind,
        })
    }
}
