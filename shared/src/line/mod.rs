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
        let head = Self::validating_read(&mut reader)?;
        reader.end().ok().map(|()| head)
    }

    /// [`EventHead::validating`] of the event that starts at `start` in a body's `text`: its
    /// head and where the event ends, so that a body's outline finds the event and reads it in
    /// one pass.
    pub(crate) fn validating_at(text: &str, start: usize) -> Option<(EventHead, usize)> {
        let mut reader = crate::validating::Reader::at(text, start);
        let head = Self::validating_read(&mut reader)?;
        Some((head, reader.position()))
    }

    fn validating_read(reader: &mut crate::validating::Reader<'_>) -> Option<EventHead> {
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
        let owned = |text: Option<&str>| text.map(str::to_owned);
        let source = match source.flatten() {
            Some([kind, user, group, room]) => Some(Source::chat(
                kind.unwrap_or_default(),
                owned(user),
                owned(group),
                owned(room),
            )?),
            None => None,
        };
        Some(EventHead {
            webhook_event_id: owned(id.flatten()),
            timestamp: timestamp.flatten(),
            source,
        })
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
        match &self.webhook_event_id {
            Some(id) if !id.is_empty() => dedup_key_for_id(id),
            _ => key::hashed_json("line:h:", &[destination], event),
        }
    }

    /// The conversation; see [`conversation_id`].
    pub fn conversation_id(&self, destination: &str) -> String {
        conversation_id(destination, self.source.as_ref())
    }
}

/// `line:` + the webhook event id.
pub(crate) fn dedup_key_for_id(webhook_event_id: &str) -> String {
    ["line:", webhook_event_id].concat()
}

/// The conversation an event belongs to, as a string that is also a valid SQS FIFO message group
/// id: `line:{destination}:user:{userId}`, `…:group:{groupId}`, `…:room:{roomId}`, or
/// `line:{destination}` for events without a source (module and partner events) or whose source
/// names no chat. `destination` is empty for the rare body without one.
pub fn conversation_id(destination: &str, source: Option<&Source>) -> String {
    let id = match source {
        Some(Source::User {
            user_id: Some(user_id),
        }) => ["line:", destination, ":user:", user_id].concat(),
        Some(Source::Group {
            group_id: Some(group_id),
            ..
        }) => ["line:", destination, ":group:", group_id].concat(),
        Some(Source::Room {
            room_id: Some(room_id),
            ..
        }) => ["line:", destination, ":room:", room_id].concat(),
        _ => ["line:", destination].concat(),
    };
    key::fit_conversation(id)
}
