//! Meta webhooks: Messenger (`object: page`), Instagram messaging (`instagram`) and the WhatsApp
//! Cloud API (`whatsapp_business_account`).
//!
//! As for LINE, parsing has two layers: [`Notification::parse`] reads the envelope and keeps each
//! item of `entry[].messaging[]`, `entry[].standby[]` and `entry[].changes[]` as its exact bytes;
//! [`RawItem::typed`] reads one item. Each item is one event for the rest of the gateway.
//!
//! ```
//! use shared::meta::{Item, MessagingKind, Notification};
//! let body = br#"{"object":"page","entry":[{"id":"P1","time":1,"messaging":[
//!   {"sender":{"id":"U1"},"recipient":{"id":"P1"},"timestamp":5,
//!    "message":{"mid":"m_1","text":"hi"}}]}]}"#;
//! let notification = Notification::parse(body).unwrap();
//! let item = notification.items().next().unwrap();
//! assert_eq!(item.dedup_key(), "meta:m_1");
//! assert_eq!(item.conversation_id(), "meta:P1:U1");
//! let Item::Messaging(event) = item.typed().unwrap() else { panic!() };
//! assert_eq!(event.incoming_text(), Some("hi"));
//! ```

mod head;
mod messaging;
mod whatsapp;

pub use head::ItemHead;
pub(crate) use head::Written;
pub use messaging::*;
pub use whatsapp::*;

use crate::compat::{ObjectOnly, flexible_id, lenient, open_enum};
use crate::platform::{MalformedBody, Platform};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

open_enum! {
    /// The kind of object a notification is about.
    pub enum MetaObject {
        /// Messenger.
        Page = "page",
        /// Instagram messaging.
        Instagram = "instagram",
        /// WhatsApp Cloud API.
        WhatsAppBusinessAccount = "whatsapp_business_account",
    }
}

/// The list of an entry an item came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemList {
    /// `entry[].messaging[]`: messaging events for the app that controls the thread.
    Messaging,
    /// `entry[].standby[]`: events of a thread another app controls (handover protocol).
    Standby,
    /// `entry[].changes[]`: `{field, value}` items, including all WhatsApp traffic.
    Changes,
}

impl ItemList {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemList::Messaging => "messaging",
            ItemList::Standby => "standby",
            ItemList::Changes => "changes",
        }
    }
}

/// A Meta webhook notification, with each item kept as the exact bytes received.
#[derive(Debug)]
pub struct Notification<'a> {
    pub object: MetaObject,
    pub entries: Vec<Entry<'a>>,
}

/// One `entry[]`: the page, Instagram account or WhatsApp Business Account, and its items.
#[derive(Debug, Deserialize)]
pub struct Entry<'a> {
    /// Page id, Instagram account id or WhatsApp Business Account id.
    #[serde(default, deserialize_with = "flexible_id")]
    pub id: Option<String>,
    /// When Meta sent the entry (milliseconds for Messenger).
    #[serde(default, deserialize_with = "lenient::number")]
    pub time: Option<i64>,
    #[serde(default, borrow)]
    pub messaging: Vec<&'a RawValue>,
    #[serde(default, borrow)]
    pub standby: Vec<&'a RawValue>,
    #[serde(default, borrow)]
    pub changes: Vec<&'a RawValue>,
}

impl Entry<'_> {
    /// The entry id, or the empty string when Meta sent none.
    pub fn id_or_empty(&self) -> &str {
        self.id.as_deref().unwrap_or("")
    }
}

impl<'a> Notification<'a> {
    /// Reads the envelope (`object`, `entry[]` with its lists) of a request body. Fails only when
    /// the body is not JSON or not the envelope; the items themselves are not read here.
    pub fn parse(body: &'a [u8]) -> Result<Self, MalformedBody> {
        #[derive(Deserialize)]
        struct Body<'a> {
            object: MetaObject,
            #[serde(borrow)]
            entry: Vec<ObjectOnly<Entry<'a>>>,
        }
        let malformed = |e| MalformedBody::new(Platform::Meta, e);
        use crate::json_error::JsonError;
        if !crate::compat::is_object(body) {
            return Err(malformed(JsonError::not_an_object()));
        }
        // One pass: the entries are read where they stand, their items kept as raw text.
        let body: Body<'a> = serde_json::from_slice(body).map_err(|e| malformed(e.into()))?;
        let entries = body.entry.into_iter().map(|entry| entry.0).collect();
        Ok(Notification {
            object: body.object,
            entries,
        })
    }

    /// Every item of every entry, in the order received.
    pub fn items(&self) -> impl Iterator<Item = RawItem<'_>> + '_ {
        let object = self.object.as_str();
        self.entries.iter().flat_map(move |entry| {
            let lists = [&entry.messaging[..], &entry.standby, &entry.changes];
            entry_items(object, entry.id_or_empty(), entry.time, lists)
        })
    }

    /// The number of items, without reading them.
    pub fn item_count(&self) -> usize {
        self.entries
            .iter()
            .map(|e| e.messaging.len() + e.standby.len() + e.changes.len())
            .sum()
    }
}

/// An entry's items with their context, in the order the gateway reads its lists: `messaging[]`,
/// `standby[]`, `changes[]`.
pub(crate) fn entry_items<'e, E: Copy>(
    object: &'e str,
    entry_id: &'e str,
    entry_time: Option<i64>,
    [messaging, standby, changes]: [&'e [E]; 3],
) -> impl Iterator<Item = RawItem<'e, E>> + 'e {
    [
        (ItemList::Messaging, messaging),
        (ItemList::Standby, standby),
        (ItemList::Changes, changes),
    ]
    .into_iter()
    .flat_map(move |(list, items)| {
        items.iter().map(move |raw| RawItem {
            object,
            entry_id,
            entry_time,
            list,
            raw: *raw,
        })
    })
}

/// One item of a notification with the context it came in: its exact bytes as a validated
/// `&RawValue`, or (an outlined body's item, `RawItem<&str>`) as text validated later.
#[derive(Debug, Clone, Copy)]
pub struct RawItem<'a, E = &'a RawValue> {
    pub object: &'a str,
    pub entry_id: &'a str,
    pub entry_time: Option<i64>,
    pub list: ItemList,
    pub raw: E,
}

/// A typed item: a messaging event, or a `{field, value}` change.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Messaging(MessagingEvent),
    Change(Change),
}

/// An item of `entry[].changes[]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub field: String,
    pub value: ChangeValue,
}

/// The `value` of a change.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangeValue {
    /// WhatsApp `messages` notifications, and `smb_message_echoes` (coexistence).
    WhatsApp(WhatsAppValue),
    /// WhatsApp `user_preferences`: a user stopped or resumed marketing messages.
    UserPreferences(UserPreferencesValue),
    /// WhatsApp `user_id_update`: a user's business-scoped id changed.
    UserIdUpdate(UserIdUpdateValue),
    /// Other fields (feed, comments, template status updates, …) verbatim.
    Other(Value),
}

impl Item {
    /// Reads one item of the given list from its JSON. Fails only when the item is not a JSON
    /// object; every field in it is read leniently.
    pub fn parse(object: &str, list: ItemList, json: &str) -> Result<Item, serde_json::Error> {
        match list {
            ItemList::Messaging | ItemList::Standby => {
                crate::compat::object(json).map(Item::Messaging)
            }
            ItemList::Changes => {
                #[derive(Deserialize)]
                struct Raw {
                    #[serde(default, deserialize_with = "lenient::option")]
                    field: Option<String>,
                    #[serde(default)]
                    value: Value,
                }
                let raw: Raw = crate::compat::object(json)?;
                let field = raw.field.unwrap_or_default();
                let whatsapp = object == MetaObject::WhatsAppBusinessAccount.as_str();
                let value = match field.as_str() {
                    "messages" | "smb_message_echoes" if whatsapp => ChangeValue::WhatsApp(
                        WhatsAppValue::deserialize(&raw.value).unwrap_or_default(),
                    ),
                    "user_preferences" if whatsapp => ChangeValue::UserPreferences(
                        UserPreferencesValue::deserialize(&raw.value).unwrap_or_default(),
                    ),
                    "user_id_update" if whatsapp => ChangeValue::UserIdUpdate(
                        UserIdUpdateValue::deserialize(&raw.value).unwrap_or_default(),
                    ),
                    _ => ChangeValue::Other(raw.value),
                };
                Ok(Item::Change(Change { field, value }))
            }
        }
    }
}

impl RawItem<'_, &RawValue> {
    /// The typed view of this item.
    pub fn typed(&self) -> Result<Item, serde_json::Error> {
        Item::parse(self.object, self.list, self.raw.get())
    }

    /// The deduplication key, conversation and time of this item, read leniently.
    pub fn head(&self) -> ItemHead {
        ItemHead::of_entry(
            self.object,
            self.entry_id,
            self.entry_time,
            self.list,
            self.raw,
        )
    }

    /// See [`ItemHead::key`].
    pub fn dedup_key(&self) -> String {
        self.head().key
    }

    /// See [`ItemHead::conversation`].
    pub fn conversation_id(&self) -> String {
        self.head().conversation
    }
}
