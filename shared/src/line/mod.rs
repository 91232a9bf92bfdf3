//! LINE Messaging API webhooks: the request body, every event and message type, and the helpers
//! that the ingress and bots need.
//!
//! Parsing happens in two layers, so that one event can never cost the others:
//! [`Callback::parse`] reads only the envelope and keeps each event's exact bytes; each event is
//! then read on its own ([`Callback::events`]), and an event that does not fit its type keeps its
//! bytes and carries the error beside them.
//!
//! ```
//! use shared::line::{Callback, EventKind};
//! let body = br#"{"destination":"U0","events":[
//!   {"type":"follow","timestamp":1,"mode":"active","webhookEventId":"01A",
//!    "deliveryContext":{"isRedelivery":false},"replyToken":"r","follow":{"isUnblocked":false},
//!    "source":{"type":"user","userId":"U1"}},
//!   {"type":"somethingNew","timestamp":2,"mode":"active","webhookEventId":"01B",
//!    "deliveryContext":{"isRedelivery":false},"newField":{"x":1}}]}"#;
//! let callback = Callback::parse(body).unwrap();
//! assert_eq!(callback.destination.as_deref(), Some("U0"));
//! let events: Vec<_> = callback.events().collect();
//! assert!(matches!(events[0].event.as_ref().unwrap().kind, EventKind::Follow(_)));
//! let EventKind::Unknown(unknown) = &events[1].event.as_ref().unwrap().kind else { panic!() };
//! assert_eq!(unknown.kind, "somethingNew");
//! assert_eq!(unknown.raw["newField"]["x"], 1);
//! ```

mod event;
mod message;

pub use event::*;
pub use message::*;

use crate::key;
use crate::platform::{MalformedBody, Platform};
use serde::Deserialize;
use serde_json::value::RawValue;

/// A LINE webhook request body, with each event kept as the exact bytes received.
#[derive(Debug)]
pub struct Callback<'a> {
    /// The user id of the bot that receives the events. The spec calls it required; bodies
    /// without it exist (the Python SDK's tests), and their events are kept all the same.
    pub destination: Option<String>,
    /// Each event's JSON, byte for byte.
    pub events: Vec<&'a RawValue>,
}

/// One event of a request: its exact bytes, and its typed view or why there is none.
#[derive(Debug)]
pub struct ParsedEvent<'a> {
    pub raw: &'a RawValue,
    pub event: Result<Event, serde_json::Error>,
}

impl<'a> Callback<'a> {
    /// Reads the envelope (`destination`, `events[]`) of a request body. Fails only when the
    /// body is not JSON or has no list of events; the events themselves are not read here.
    pub fn parse(body: &'a [u8]) -> Result<Self, MalformedBody> {
        #[derive(Deserialize)]
        struct Body<'a> {
            #[serde(default, deserialize_with = "crate::compat::lenient::option")]
            destination: Option<String>,
            #[serde(borrow)]
            events: Vec<&'a RawValue>,
        }
        if !crate::compat::is_object(body) {
            return Err(MalformedBody::new(
                Platform::Line,
                crate::json_error::JsonError::not_an_object(),
            ));
        }
        let body: Body<'a> = serde_json::from_slice(body)
            .map_err(|e| MalformedBody::new(Platform::Line, e.into()))?;
        Ok(Callback {
            destination: body.destination,
            events: body.events,
        })
    }

    /// Every event, typed where it fits.
    pub fn events(&self) -> impl Iterator<Item = ParsedEvent<'a>> + '_ {
        self.events.iter().map(|raw| ParsedEvent {
            raw,
            event: Event::from_json(raw.get()),
        })
    }
}

/// The few fields the ingress needs from an event, read leniently: whatever the rest of the event
/// looks like, it yields a key, a conversation and (where there is one) a timestamp.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventHead {
    pub webhook_event_id: Option<String>,
    pub timestamp: Option<i64>,
    pub source: Option<Source>,
}

impl EventHead {
    /// Reads the head of one event's JSON, with the typed view's own lenient readers, so that
    /// the two agree on every field they both read. The scan comes first here (unlike Meta's
    /// small items): an event is mostly its `message`, which the scan skips 64 bytes at a time
    /// (`scan::blocks`) where serde reads it through; 100 events' heads 56 -> 44 us.
    pub fn of(raw: &RawValue) -> EventHead {
        Self::of_valid(raw.get())
    }

    /// [`EventHead::of`] of an event's text known to be one valid JSON value.
    pub(crate) fn of_valid(text: &str) -> EventHead {
        Self::scan(text)
            .ok()
            .or_else(|| Self::strict(text))
            .unwrap_or_else(|| Self::of_serde_text(text))
    }

    /// [`EventHead::of`] of an event's text not yet known to be JSON, validating it: the
    /// validating reading ([`crate::validating`]), or where it is not sure serde's strict one,
    /// goes through the whole event, so where either reads, the event is valid; anywhere else
    /// serde validates it first. An event that is not valid JSON is an error, as
    /// it is in [`Callback::parse`].
    pub fn checked(text: &str) -> Result<EventHead, serde_json::Error> {
        match Self::validating(text).or_else(|| Self::strict(text)) {
            Some(head) => Ok(head),
            None => serde_json::from_str::<&RawValue>(text).map(Self::of),
        }
    }

    /// The head of an event whose fields have the types LINE documents, read by serde in one
    /// pass with borrowed strings (see [`crate::compat::strict`]); `None` sends the caller to the
    /// lenient readings, as does a source of a type other than the three chats (kept verbatim).
    fn strict(text: &str) -> Option<EventHead> {
        use crate::compat::ObjectOnly;
        use crate::compat::strict::{Text, object, owned};
        object! {
            struct SourceText<'a> {
                kind: Text<'a> = "type",
                user_id: Text<'a> = "userId",
                group_id: Text<'a> = "groupId",
                room_id: Text<'a> = "roomId",
            }
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Head<'a> {
            #[serde(borrow)]
            webhook_event_id: Option<Text<'a>>,
            timestamp: Option<i64>,
            #[serde(borrow)]
            source: Option<SourceText<'a>>,
        }
        let ObjectOnly(head) = serde_json::from_str::<ObjectOnly<Head<'_>>>(text).ok()?;
        let source = match head.source {
            Some(source) => Some(Source::chat(
                source.kind.as_ref().map_or("", |kind| &kind.0),
                owned(source.user_id),
                owned(source.group_id),
                owned(source.room_id),
            )?),
            None => None,
        };
        Some(EventHead {
            webhook_event_id: owned(head.webhook_event_id),
            timestamp: head.timestamp,
            source,
        })
    }

    /// [`EventHead::strict`] without serde, validating the event as it reads it
    /// ([`crate::validating`]): the same head wherever it is sure of it, `None` anywhere else.
    fn validating(text: &str) -> Option<EventHead> {
        let mut reader = crate::validating::Reader::new(text);
        let head = HeadRef::validating_read(&mut reader)?;
        reader.end().ok().map(|()| head.to_owned())
    }

    /// The head borrowed ([`HeadRef`]), for the split.
    pub(crate) fn as_ref(&self) -> HeadRef<'_> {
        HeadRef {
            webhook_event_id: self.webhook_event_id.as_deref(),
            timestamp: self.timestamp,
            chat: self.source.as_ref().and_then(Source::chat_ref),
            source: self.source.as_ref(),
        }
    }

    /// The head read without building values ([`crate::scan`]), or `Unclean` where only serde's
    /// reading gives the answer.
    fn scan(text: &str) -> Result<EventHead, crate::scan::Unclean> {
        use crate::scan::{Json, Kind, lenient, top_level};
        let json = Json::new(text);
        if json.kind() != Kind::Object {
            return Ok(EventHead::default());
        }
        let [id, timestamp, source] = top_level(json, ["webhookEventId", "timestamp", "source"])?;
        Ok(EventHead {
            webhook_event_id: id.map(lenient::string).transpose()?.flatten(),
            timestamp: timestamp.map(lenient::number).transpose()?.flatten(),
            source: source.map(Source::scan).transpose()?.flatten(),
        })
    }

    /// The head as serde reads it: the definition that [`EventHead::of`]'s faster reading
    /// equals on every input (property tests and the `line_webhook` fuzz target).
    pub fn of_serde(raw: &RawValue) -> EventHead {
        Self::of_serde_text(raw.get())
    }

    fn of_serde_text(text: &str) -> EventHead {
        #[derive(Deserialize, Default)]
        #[serde(default, rename_all = "camelCase")]
        struct Head {
            #[serde(deserialize_with = "crate::compat::lenient::option")]
            webhook_event_id: Option<String>,
            #[serde(deserialize_with = "crate::compat::lenient::number")]
            timestamp: Option<i64>,
            #[serde(deserialize_with = "crate::compat::lenient::option")]
            source: Option<Source>,
        }
        let head: Head = crate::compat::object_or_default(text);
        EventHead {
            webhook_event_id: head.webhook_event_id,
            timestamp: head.timestamp,
            source: head.source,
        }
    }

    /// The deduplication key: `line:` + `webhookEventId`, or, for an event without one, a hash
    /// of the destination and the event's canonical JSON (`event`, the event's text).
    pub fn dedup_key(&self, destination: &str, event: &str) -> String {
        let mut key = String::new();
        self.as_ref().write_dedup_key(destination, event, &mut key);
        key
    }

    /// The conversation; see [`conversation_id`].
    pub fn conversation_id(&self, destination: &str) -> String {
        conversation_id(destination, self.source.as_ref())
    }
}

/// An event's head as the split reads it: borrowed from the event's text (or from an
/// [`EventHead`]), so that reading it copies no string: three allocations per event fewer,
/// which had been most of the allocator's time in a LINE request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeadRef<'a> {
    pub(crate) webhook_event_id: Option<&'a str>,
    pub(crate) timestamp: Option<i64>,
    /// The chat the event belongs to, where its source is one of the three chats.
    chat: Option<ChatRef<'a>>,
    /// The source as an [`EventHead`] holds it, where the head was borrowed from one.
    source: Option<&'a Source>,
}

/// A source of one of the three chat types, borrowed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChatRef<'a> {
    kind: ChatKind,
    user_id: Option<&'a str>,
    /// `groupId` or `roomId`; none for a one-to-one chat, whose id is the user's.
    chat_id: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChatKind {
    User,
    Group,
    Room,
}

impl<'a> ChatRef<'a> {
    /// [`Source::chat`] borrowed: the source of one of the three chat types; `None` for another.
    fn new(
        kind: &str,
        user_id: Option<&'a str>,
        group_id: Option<&'a str>,
        room_id: Option<&'a str>,
    ) -> Option<ChatRef<'a>> {
        let (kind, chat_id) = match kind {
            "user" => (ChatKind::User, None),
            "group" => (ChatKind::Group, group_id),
            "room" => (ChatKind::Room, room_id),
            _ => return None,
        };
        Some(ChatRef {
            kind,
            user_id,
            chat_id,
        })
    }

    fn to_source(self) -> Source {
        let owned = |text: Option<&str>| text.map(str::to_owned);
        match self.kind {
            ChatKind::User => Source::User {
                user_id: owned(self.user_id),
            },
            ChatKind::Group => Source::Group {
                group_id: owned(self.chat_id),
                user_id: owned(self.user_id),
            },
            ChatKind::Room => Source::Room {
                room_id: owned(self.chat_id),
                user_id: owned(self.user_id),
            },
        }
    }

    /// The chat's kind as the conversation names it, and its id (where it has one).
    fn conversation(self) -> Option<(&'static str, &'a str)> {
        match self.kind {
            ChatKind::User => self.user_id.map(|id| ("user", id)),
            ChatKind::Group => self.chat_id.map(|id| ("group", id)),
            ChatKind::Room => self.chat_id.map(|id| ("room", id)),
        }
    }
}

impl Source {
    /// The source borrowed, where it is one of the three chats.
    fn chat_ref(&self) -> Option<ChatRef<'_>> {
        let (kind, user_id, chat_id) = match self {
            Source::User { user_id } => (ChatKind::User, user_id, &None),
            Source::Group { group_id, user_id } => (ChatKind::Group, user_id, group_id),
            Source::Room { room_id, user_id } => (ChatKind::Room, user_id, room_id),
            Source::Unknown(_) => return None,
        };
        Some(ChatRef {
            kind,
            user_id: user_id.as_deref(),
            chat_id: chat_id.as_deref(),
        })
    }
}

impl<'a> HeadRef<'a> {
    /// [`EventHead::validating`] of the event that starts at `start` in a body's `text`: its
    /// head and where the event ends, so that a body's outline finds the event and reads it in
    /// one pass.
    pub(crate) fn validating_at(text: &'a str, start: usize) -> Option<(HeadRef<'a>, usize)> {
        let mut reader = crate::validating::Reader::at(text, start);
        let head = Self::validating_read(&mut reader)?;
        Some((head, reader.position()))
    }

    fn validating_read(reader: &mut crate::validating::Reader<'a>) -> Option<HeadRef<'a>> {
        use crate::validating::once;
        let (mut id, mut timestamp, mut source) = (None, None, None);
        reader
            .item(|reader, key| match key {
                "webhookEventId" => once(&mut id, reader.text()?),
                "timestamp" => once(&mut timestamp, reader.integer()?),
                "source" => once(
                    &mut source,
                    reader.texts(["type", "userId", "groupId", "roomId"])?,
                ),
                _ => reader.skip(),
            })
            .ok()?;
        let chat = match source.flatten() {
            Some([kind, user, group, room]) => {
                Some(ChatRef::new(kind.unwrap_or_default(), user, group, room)?)
            }
            None => None,
        };
        Some(HeadRef {
            webhook_event_id: id.flatten(),
            timestamp: timestamp.flatten(),
            chat,
            source: None,
        })
    }

    /// The head owned.
    fn to_owned(self) -> EventHead {
        EventHead {
            webhook_event_id: self.webhook_event_id.map(str::to_owned),
            timestamp: self.timestamp,
            source: match self.source {
                Some(source) => Some(source.clone()),
                None => self.chat.map(ChatRef::to_source),
            },
        }
    }

    /// Writes the deduplication key ([`EventHead::dedup_key`]) at the end of `out`.
    pub(crate) fn write_dedup_key(&self, destination: &str, event: &str, out: &mut String) {
        match self.webhook_event_id {
            Some(id) if !id.is_empty() => write_key_for_id(id, out),
            _ => out.push_str(&key::hashed_json("line:h:", &[destination], event)),
        }
    }

    /// Writes the conversation ([`conversation_id`]) at the end of `out`.
    pub(crate) fn write_conversation(&self, destination: &str, out: &mut String) {
        write_conversation(destination, self.chat.and_then(ChatRef::conversation), out);
    }
}

/// `line:` + the webhook event id.
pub(crate) fn dedup_key_for_id(webhook_event_id: &str) -> String {
    let mut key = String::new();
    write_key_for_id(webhook_event_id, &mut key);
    key
}

fn write_key_for_id(webhook_event_id: &str, out: &mut String) {
    out.push_str("line:");
    out.push_str(webhook_event_id);
}

/// The conversation an event belongs to, as a string that is also a valid SQS FIFO message group
/// id: `line:{destination}:user:{userId}`, `…:group:{groupId}`, `…:room:{roomId}`, or
/// `line:{destination}` for events without a source (module and partner events) or whose source
/// names no chat. `destination` is empty for the rare body without one.
pub fn conversation_id(destination: &str, source: Option<&Source>) -> String {
    let chat = source
        .and_then(Source::chat_ref)
        .and_then(ChatRef::conversation);
    let mut id = String::new();
    write_conversation(destination, chat, &mut id);
    id
}

/// [`conversation_id`] written at the end of `out`, from the chat's kind and id.
fn write_conversation(destination: &str, chat: Option<(&str, &str)>, out: &mut String) {
    let start = out.len();
    out.push_str("line:");
    out.push_str(destination);
    if let Some((kind, id)) = chat {
        out.push(':');
        out.push_str(kind);
        out.push(':');
        out.push_str(id);
    }
    key::fit_in_place(out, start);
}
