//! What the ingress reads of each Meta item: its deduplication key, conversation and time
//! ([`ItemHead`]), read strictly first (serde in one pass, borrowed strings), then by
//! [`crate::scan`], then by the lenient serde readings that define it.

use super::{ItemList, Profile};
use crate::compat::{ObjectOnly, lenient};
use crate::key;
use crate::scan::{self, Json, Kind, Spans, Unclean};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// What the ingress needs to know of one item, whatever the rest of it looks like.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemHead {
    /// The deduplication key:
    /// - `meta:{mid}` for a message and a postback, `meta:{mid}:deleted` for an Instagram unsend,
    ///   `meta:{mid}:edit:{num_edit}` for an edit;
    /// - `meta:wa:{id}` for a WhatsApp message, `meta:wa:{id}:{status}` for a status;
    /// - otherwise `meta:h:` + SHA-256 over the object, the entry id and the item's canonical
    ///   JSON, so that a retry batched differently gives the same key; for `changes[]` items the
    ///   entry's `time` too, the time of the change, since their content alone does not tell two
    ///   events apart (a template approved twice months apart, a page renamed back). Messaging
    ///   items carry their own `timestamp` and are keyed without the entry's time, which a retry
    ///   may change.
    pub key: String,
    /// The conversation: `meta:{page}:{user}` for Messenger and Instagram (the user is whichever
    /// of sender and recipient is not the page), `meta:wa:{phone_number_id}:{wa_id}` for WhatsApp
    /// (a coexistence echo: the user it went to),
    /// `meta:{entry id}` where there is no user.
    pub conversation: String,
    /// The event's time in milliseconds, where the item gives one.
    pub timestamp: Option<i64>,
}

impl ItemHead {
    /// The head of an item of an entry without a `time`.
    pub fn of(object: &str, entry_id: &str, list: ItemList, raw: &RawValue) -> ItemHead {
        ItemHead::of_entry(object, entry_id, None, list, raw)
    }

    pub fn of_entry(
        object: &str,
        entry_id: &str,
        entry_time: Option<i64>,
        list: ItemList,
        raw: &RawValue,
    ) -> ItemHead {
        Self::read(object, entry_id, entry_time, list, raw.get(), false)
    }

    /// The head as serde reads it (and keys it): the definition that [`ItemHead::of_entry`]'s
    /// faster reading equals on every input (property tests, the `meta_webhook` fuzz target).
    pub fn of_entry_serde(
        object: &str,
        entry_id: &str,
        entry_time: Option<i64>,
        list: ItemList,
        raw: &RawValue,
    ) -> ItemHead {
        Self::read(object, entry_id, entry_time, list, raw.get(), true)
    }

    /// [`ItemHead::of_entry`] of an item's text known to be one valid JSON value, written as
    /// [`ItemHead::checked_into`] writes it.
    pub(crate) fn of_valid_into(
        object: &str,
        entry_id: &str,
        entry_time: Option<i64>,
        list: ItemList,
        text: &str,
        out: &mut String,
    ) -> Written {
        Self::read_into(object, entry_id, entry_time, list, text, false, out)
    }

    /// [`ItemHead::of_entry`] of an item's text not yet known to be JSON, validating it: the
    /// validating reading ([`crate::validating`]), or where it is not sure serde's strict one,
    /// goes through the whole item, so where either reads, the item is valid; anywhere else
    /// serde validates it first. An item that is not valid JSON is an
    /// error, as it is in [`super::Notification::parse`].
    pub fn checked(
        object: &str,
        entry_id: &str,
        entry_time: Option<i64>,
        list: ItemList,
        text: &str,
    ) -> Result<ItemHead, serde_json::Error> {
        let mut out = String::new();
        let written = Self::checked_into(object, entry_id, entry_time, list, text, &mut out)?;
        Ok(Self::from_written(out, written))
    }

    /// [`ItemHead::checked`] with the key and the conversation written into `out` (cleared
    /// first) instead of strings of their own: the split's reading, two allocations per item
    /// fewer.
    pub(crate) fn checked_into(
        object: &str,
        entry_id: &str,
        entry_time: Option<i64>,
        list: ItemList,
        text: &str,
        out: &mut String,
    ) -> Result<Written, serde_json::Error> {
        let item = Item {
            object,
            entry_id,
            entry_time,
            text,
        };
        let strict = match list {
            ItemList::Messaging | ItemList::Standby => MessagingHead::validating(text)
                .or_else(|| MessagingHead::strict(text))
                .map(|head| item.messaging(head, key::hashed_json, out)),
            ItemList::Changes => ChangeHead::validating(text)
                .or_else(|| ChangeHead::strict(text))
                .map(|head| item.change(head, key::hashed_json, out)),
        };
        match strict {
            Some(written) => Ok(written),
            None => {
                let raw: &RawValue = serde_json::from_str(text)?;
                Ok(Self::read_into(
                    object,
                    entry_id,
                    entry_time,
                    list,
                    raw.get(),
                    false,
                    out,
                ))
            }
        }
    }

    fn read(
        object: &str,
        entry_id: &str,
        entry_time: Option<i64>,
        list: ItemList,
        text: &str,
        serde: bool,
    ) -> ItemHead {
        let mut out = String::new();
        let written = Self::read_into(object, entry_id, entry_time, list, text, serde, &mut out);
        Self::from_written(out, written)
    }

    fn read_into(
        object: &str,
        entry_id: &str,
        entry_time: Option<i64>,
        list: ItemList,
        text: &str,
        serde: bool,
        out: &mut String,
    ) -> Written {
        let hashed_json = if serde {
            key::hashed_json_serde
        } else {
            key::hashed_json
        };
        let item = Item {
            object,
            entry_id,
            entry_time,
            text,
        };
        match list {
            ItemList::Messaging | ItemList::Standby => {
                let head = if serde {
                    MessagingHead::read_with_serde(text)
                } else {
                    MessagingHead::read(text)
                };
                item.messaging(head, hashed_json, out)
            }
            ItemList::Changes => {
                let head = if serde {
                    ChangeHead::read_with_serde(text)
                } else {
                    ChangeHead::read(text)
                };
                item.change(head, hashed_json, out)
            }
        }
    }

    fn from_written(mut key: String, written: Written) -> ItemHead {
        let conversation = key.split_off(written.key_len);
        ItemHead {
            key,
            conversation,
            timestamp: written.timestamp,
        }
    }
}

/// An item's head as [`ItemHead::checked_into`] wrote it: its key, then its conversation, from
/// the start of the string it was given.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Written {
    /// Where the key ends and the conversation starts.
    pub(crate) key_len: usize,
    pub(crate) timestamp: Option<i64>,
}

/// An item's context and text, for keying it once its head is read.
struct Item<'a> {
    object: &'a str,
    entry_id: &'a str,
    entry_time: Option<i64>,
    text: &'a str,
}

/// [`key::hashed_json`] or its serde definition.
type HashedJson = fn(&str, &[&str], &str) -> String;

impl Item<'_> {
    /// `meta:{entry id}`, for an item without a user, at the end of `out`.
    fn write_fallback_conversation(&self, out: &mut String) {
        let start = out.len();
        out.push_str("meta:");
        out.push_str(self.entry_id);
        key::fit_in_place(out, start);
    }

    fn messaging(
        &self,
        head: MessagingHead<'_>,
        hashed_json: HashedJson,
        out: &mut String,
    ) -> Written {
        out.clear();
        if !head.write_own_key(out) {
            out.push_str(&hashed_json(
                "meta:h:",
                &[self.object, self.entry_id],
                self.text,
            ));
        }
        let key_len = out.len();
        match head.counterpart(self.entry_id) {
            Some(user) => {
                out.push_str("meta:");
                out.push_str(self.entry_id);
                out.push(':');
                out.push_str(user);
                key::fit_in_place(out, key_len);
            }
            None => self.write_fallback_conversation(out),
        }
        Written {
            key_len,
            timestamp: head.timestamp,
        }
    }

    fn change(&self, head: ChangeHead<'_>, hashed_json: HashedJson, out: &mut String) -> Written {
        out.clear();
        match head.own_key(self.object, self.entry_id) {
            Some(key) => out.push_str(&key),
            None => {
                let time = self.entry_time.map(|t| t.to_string()).unwrap_or_default();
                out.push_str(&hashed_json(
                    "meta:h:",
                    &[self.object, self.entry_id, &time],
                    self.text,
                ));
            }
        }
        let key_len = out.len();
        match head.conversation() {
            Some(conversation) => out.push_str(&conversation),
            None => self.write_fallback_conversation(out),
        }
        Written {
            key_len,
            timestamp: head.timestamp_ms(),
        }
    }
}

/// The head of a messaging item, with the typed view's own lenient readers: the two agree on
/// every field they both read (a `timestamp` given as a string, Meta's own test payload's
/// `"message": "…"`).
/// Its strings are borrowed from the item's text where the strict reading read it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct MessagingHead<'a> {
    #[serde(deserialize_with = "lenient::option")]
    sender: Option<PartyHead<'a>>,
    #[serde(deserialize_with = "lenient::option")]
    recipient: Option<PartyHead<'a>>,
    #[serde(deserialize_with = "lenient::number")]
    timestamp: Option<i64>,
    #[serde(deserialize_with = "lenient::option")]
    message: Option<MidHead<'a>>,
    #[serde(deserialize_with = "lenient::option")]
    postback: Option<MidHead<'a>>,
    #[serde(deserialize_with = "lenient::option")]
    message_edit: Option<EditHead<'a>>,
}

/// [`Party`] as the head reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PartyHead<'a> {
    #[serde(deserialize_with = "lenient_id")]
    id: Option<Cow<'a, str>>,
    #[serde(deserialize_with = "lenient_id")]
    user_ref: Option<Cow<'a, str>>,
}

fn lenient_id<'de, 'a, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Cow<'a, str>>, D::Error> {
    Ok(lenient::id(deserializer)?.map(Cow::Owned))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct MidHead<'a> {
    #[serde(deserialize_with = "lenient::option")]
    mid: Option<Cow<'a, str>>,
    #[serde(deserialize_with = "lenient::flag")]
    is_deleted: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EditHead<'a> {
    #[serde(deserialize_with = "lenient::option")]
    mid: Option<Cow<'a, str>>,
    #[serde(deserialize_with = "lenient::number")]
    num_edit: Option<i64>,
}

impl<'a> MessagingHead<'a> {
    fn read(text: &'a str) -> MessagingHead<'a> {
        Self::strict(text)
            .or_else(|| Self::scan(text).ok())
            .unwrap_or_else(|| Self::read_with_serde(text))
    }

    /// The head of an item whose fields have the types Meta documents, read by serde in one
    /// pass with borrowed strings. `None` when anything the head reads is of another type or
    /// named twice, or the item is not an object: the lenient readings then decide. Where this
    /// reads, they read the same (a strict reading is one of the lenient ones).
    fn strict(text: &'a str) -> Option<MessagingHead<'a>> {
        use crate::compat::strict::{Text, object};
        object! {
            struct PartyText<'a> {
                id: Text<'a> = "id",
                user_ref: Text<'a> = "user_ref",
            }
        }
        object! {
            struct Mid<'a> {
                mid: Text<'a> = "mid",
                is_deleted: bool = "is_deleted",
            }
        }
        object! {
            struct Edit<'a> {
                mid: Text<'a> = "mid",
                num_edit: i64 = "num_edit",
            }
        }
        #[derive(Deserialize)]
        struct Head<'a> {
            #[serde(borrow)]
            sender: Option<PartyText<'a>>,
            #[serde(borrow)]
            recipient: Option<PartyText<'a>>,
            timestamp: Option<i64>,
            #[serde(borrow)]
            message: Option<Mid<'a>>,
            #[serde(borrow)]
            postback: Option<Mid<'a>>,
            #[serde(borrow)]
            message_edit: Option<Edit<'a>>,
        }
        let head: ObjectOnly<Head<'_>> = serde_json::from_str(text).ok()?;
        let head = head.0;
        let text = |t: Option<Text<'a>>| t.map(|t| t.0);
        let party = |p: Option<PartyText<'a>>| {
            p.map(|p| PartyHead {
                id: text(p.id),
                user_ref: text(p.user_ref),
            })
        };
        let mid = |m: Option<Mid<'a>>| {
            m.map(|m| MidHead {
                mid: text(m.mid),
                is_deleted: m.is_deleted.unwrap_or_default(),
            })
        };
        Some(MessagingHead {
            sender: party(head.sender),
            recipient: party(head.recipient),
            timestamp: head.timestamp,
            message: mid(head.message),
            postback: mid(head.postback),
            message_edit: head.message_edit.map(|e| EditHead {
                mid: text(e.mid),
                num_edit: e.num_edit,
            }),
        })
    }

    /// [`MessagingHead::strict`] without serde, validating the item as it reads it
    /// ([`crate::validating`]): the same head wherever it is sure of it, `None` anywhere else.
    fn validating(text: &'a str) -> Option<MessagingHead<'a>> {
        use crate::validating::{Read, Reader, once};
        fn party<'a>(reader: &mut Reader<'a>) -> Read<Option<PartyHead<'a>>> {
            let party = reader.texts(["id", "user_ref"])?;
            Ok(party.map(|[id, user_ref]| PartyHead {
                id: id.map(Cow::Borrowed),
                user_ref: user_ref.map(Cow::Borrowed),
            }))
        }
        fn mid<'a>(reader: &mut Reader<'a>) -> Read<Option<MidHead<'a>>> {
            let (mut mid, mut is_deleted) = (None, None);
            let present = reader.object(|reader, key| match key {
                "mid" => once(&mut mid, reader.text()?),
                "is_deleted" => once(&mut is_deleted, reader.boolean()?),
                _ => reader.skip(),
            })?;
            Ok(present.then(|| MidHead {
                mid: mid.flatten().map(Cow::Borrowed),
                is_deleted: is_deleted.flatten().unwrap_or_default(),
            }))
        }
        let (mut sender, mut recipient, mut timestamp) = (None, None, None);
        let (mut message, mut postback, mut message_edit) = (None, None, None);
        let mut reader = Reader::new(text);
        reader
            .item(|reader, key| match key {
                "sender" => once(&mut sender, party(reader)?),
                "recipient" => once(&mut recipient, party(reader)?),
                "timestamp" => once(&mut timestamp, reader.integer()?),
                "message" => once(&mut message, mid(reader)?),
                "postback" => once(&mut postback, mid(reader)?),
                "message_edit" => {
                    let (mut mid, mut num_edit) = (None, None);
                    let present = reader.object(|reader, key| match key {
                        "mid" => once(&mut mid, reader.text()?),
                        "num_edit" => once(&mut num_edit, reader.integer()?),
                        _ => reader.skip(),
                    })?;
                    once(
                        &mut message_edit,
                        present.then(|| EditHead {
                            mid: mid.flatten().map(Cow::Borrowed),
                            num_edit: num_edit.flatten(),
                        }),
                    )
                }
                _ => reader.skip(),
            })
            .ok()?;
        reader.end().ok()?;
        Some(MessagingHead {
            sender: sender.flatten(),
            recipient: recipient.flatten(),
            timestamp: timestamp.flatten(),
            message: message.flatten(),
            postback: postback.flatten(),
            message_edit: message_edit.flatten(),
        })
    }

    fn read_with_serde(text: &str) -> MessagingHead<'a> {
        crate::compat::object_or_default(text)
    }

    /// The head read without building values ([`crate::scan`]).
    fn scan(text: &str) -> Result<MessagingHead<'a>, Unclean> {
        let json = Json::new(text);
        if json.kind() != Kind::Object {
            return Ok(MessagingHead::default());
        }
        let names = [
            "sender",
            "recipient",
            "timestamp",
            "message",
            "postback",
            "message_edit",
        ];
        let [
            sender,
            recipient,
            timestamp,
            message,
            postback,
            message_edit,
        ] = scan::top_level(json, names)?;
        let party = |value: Json<'_>| {
            scan::lenient::object(value, |party: &mut PartyHead<'a>, key, item| {
                match key {
                    "id" => party.id = scan::lenient::id(item)?.map(Cow::Owned),
                    "user_ref" => party.user_ref = scan::lenient::id(item)?.map(Cow::Owned),
                    _ => {}
                }
                Ok(())
            })
        };
        let mid = |value: Json<'_>| {
            scan::lenient::object(value, |head: &mut MidHead<'a>, key, item| {
                match key {
                    "mid" => head.mid = scan::lenient::string(item)?.map(Cow::Owned),
                    "is_deleted" => head.is_deleted = scan::lenient::flag(item)?,
                    _ => {}
                }
                Ok(())
            })
        };
        let edit = |value: Json<'_>| {
            scan::lenient::object(value, |head: &mut EditHead<'a>, key, item| {
                match key {
                    "mid" => head.mid = scan::lenient::string(item)?.map(Cow::Owned),
                    "num_edit" => head.num_edit = scan::lenient::number(item)?,
                    _ => {}
                }
                Ok(())
            })
        };
        Ok(MessagingHead {
            sender: sender.map(party).transpose()?.flatten(),
            recipient: recipient.map(party).transpose()?.flatten(),
            timestamp: timestamp.map(scan::lenient::number).transpose()?.flatten(),
            message: message.map(mid).transpose()?.flatten(),
            postback: postback.map(mid).transpose()?.flatten(),
            message_edit: message_edit.map(edit).transpose()?.flatten(),
        })
    }

    /// Writes the item's own key at the end of `out`, where it has one.
    fn write_own_key(&self, out: &mut String) -> bool {
        if let Some(EditHead {
            mid: Some(mid),
            num_edit: Some(num_edit),
        }) = &self.message_edit
        {
            out.push_str("meta:");
            out.push_str(mid);
            out.push_str(":edit:");
            out.push_str(itoa::Buffer::new().format(*num_edit));
            return true;
        }
        let mid = match (&self.message, &self.postback) {
            (Some(MidHead { mid: Some(mid), .. }), _)
            | (_, Some(MidHead { mid: Some(mid), .. })) => mid,
            _ => return false,
        };
        out.push_str("meta:");
        out.push_str(mid);
        // An Instagram unsend reuses the original message's mid.
        if let Some(MidHead {
            mid: Some(_),
            is_deleted: true,
        }) = &self.message
        {
            out.push_str(":deleted");
        }
        true
    }

    /// The user of the thread: whichever party is not the page.
    fn counterpart<'s>(&'s self, page_id: &str) -> Option<&'s str> {
        let id = |party: &'s Option<PartyHead<'a>>| {
            party
                .as_ref()
                .and_then(|p| p.id.as_deref().or(p.user_ref.as_deref()))
        };
        let sender = id(&self.sender);
        let recipient = id(&self.recipient);
        match (sender, recipient) {
            (Some(s), Some(r)) if s == page_id => Some(r),
            (Some(s), _) => Some(s),
            (None, r) => r.filter(|r| *r != page_id),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ChangeHead<'a> {
    #[serde(deserialize_with = "lenient::option")]
    value: Option<WaHead<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WaHead<'a> {
    #[serde(deserialize_with = "lenient::option")]
    metadata: Option<MetadataHead<'a>>,
    #[serde(deserialize_with = "lenient::list")]
    contacts: Vec<ContactHead<'a>>,
    #[serde(deserialize_with = "lenient::list")]
    messages: Vec<WaItemHead<'a>>,
    #[serde(deserialize_with = "lenient::list")]
    statuses: Vec<WaItemHead<'a>>,
    /// `smb_message_echoes`: what the business sent from the WhatsApp Business app
    /// (coexistence), in the conversation of the user it went to.
    #[serde(deserialize_with = "lenient::list")]
    message_echoes: Vec<WaItemHead<'a>>,
}

/// [`Metadata`] as the head reads it: the same fields in the same order, with the same
/// readers, so that it reads (or is refused) wherever `Metadata` is.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct MetadataHead<'a> {
    #[serde(deserialize_with = "lenient_id")]
    display_phone_number: Option<Cow<'a, str>>,
    #[serde(deserialize_with = "lenient_id")]
    phone_number_id: Option<Cow<'a, str>>,
}

/// [`Contact`] as the head reads it, in the same way (a list keeps the elements `Contact`
/// reads, an array among them by position).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ContactHead<'a> {
    #[serde(deserialize_with = "lenient_id")]
    wa_id: Option<Cow<'a, str>>,
    #[serde(deserialize_with = "lenient::option")]
    user_id: Option<Cow<'a, str>>,
    #[serde(deserialize_with = "lenient::option")]
    parent_user_id: Option<Cow<'a, str>>,
    #[serde(deserialize_with = "lenient::option")]
    profile: Option<Profile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WaItemHead<'a> {
    #[serde(deserialize_with = "lenient::option")]
    id: Option<Cow<'a, str>>,
    /// Statuses only.
    #[serde(deserialize_with = "lenient::option")]
    status: Option<Cow<'a, str>>,
    /// Messages: the sender's phone number (withheld for some username users).
    #[serde(deserialize_with = "lenient_id")]
    from: Option<Cow<'a, str>>,
    /// Messages: the sender's business-scoped user id.
    #[serde(deserialize_with = "lenient::option")]
    from_user_id: Option<Cow<'a, str>>,
    /// Statuses: the user (or group) the business wrote to.
    #[serde(deserialize_with = "lenient_id")]
    recipient_id: Option<Cow<'a, str>>,
    #[serde(deserialize_with = "lenient::option")]
    recipient_user_id: Option<Cow<'a, str>>,
    /// Echoes: the user the business wrote to.
    #[serde(deserialize_with = "lenient_id")]
    to: Option<Cow<'a, str>>,
    #[serde(deserialize_with = "lenient::option")]
    to_user_id: Option<Cow<'a, str>>,
    #[serde(deserialize_with = "lenient::number")]
    timestamp: Option<i64>,
}

impl WaItemHead<'_> {
    /// The user the item is about, as the typed view names them ([`WhatsAppMessage::sender`],
    /// [`Status::recipient`]): phone number while WhatsApp sends it, else the BSUID.
    fn user(&self) -> Option<&str> {
        if self.to.is_some() || self.to_user_id.is_some() {
            // An echo: from the business, about the user it went to.
            return self.to.as_deref().or(self.to_user_id.as_deref());
        }
        self.from
            .as_deref()
            .or(self.from_user_id.as_deref())
            .or(self.recipient_id.as_deref())
            .or(self.recipient_user_id.as_deref())
    }
}

impl<'a> ChangeHead<'a> {
    fn read(text: &'a str) -> ChangeHead<'a> {
        Self::strict(text)
            .or_else(|| Self::scan(text).ok())
            .unwrap_or_else(|| Self::read_with_serde(text))
    }

    /// The head of a change whose fields have the types Meta documents (ids as strings,
    /// timestamps as integers or numeric strings), read by serde in one pass; `None` sends the
    /// caller to the lenient readings (see [`MessagingHead::strict`]).
    fn strict(text: &'a str) -> Option<ChangeHead<'a>> {
        use crate::compat::strict::{Text, Whole, object};
        object! {
            struct MetadataText<'a> {
                display_phone_number: Text<'a> = "display_phone_number",
                phone_number_id: Text<'a> = "phone_number_id",
            }
        }
        object! {
            struct ContactText<'a> {
                wa_id: Text<'a> = "wa_id",
                user_id: Text<'a> = "user_id",
            }
        }
        object! {
            struct ItemText<'a> {
                id: Text<'a> = "id",
                status: Text<'a> = "status",
                from: Text<'a> = "from",
                from_user_id: Text<'a> = "from_user_id",
                recipient_id: Text<'a> = "recipient_id",
                recipient_user_id: Text<'a> = "recipient_user_id",
                to: Text<'a> = "to",
                to_user_id: Text<'a> = "to_user_id",
                timestamp: Whole = "timestamp",
            }
        }
        object! {
            struct ValueText<'a> {
                metadata: MetadataText<'a> = "metadata",
                contacts: Vec<ContactText<'a>> = "contacts",
                messages: Vec<ItemText<'a>> = "messages",
                statuses: Vec<ItemText<'a>> = "statuses",
                message_echoes: Vec<ItemText<'a>> = "message_echoes",
            }
        }
        #[derive(Deserialize)]
        struct Change<'a> {
            #[serde(borrow)]
            value: Option<ValueText<'a>>,
        }
        let cow = |t: Option<Text<'a>>| t.map(|t| t.0);
        let items = |items: Option<Vec<ItemText<'a>>>| -> Vec<WaItemHead<'a>> {
            items
                .unwrap_or_default()
                .into_iter()
                .map(|item| WaItemHead {
                    id: cow(item.id),
                    status: cow(item.status),
                    from: cow(item.from),
                    from_user_id: cow(item.from_user_id),
                    recipient_id: cow(item.recipient_id),
                    recipient_user_id: cow(item.recipient_user_id),
                    to: cow(item.to),
                    to_user_id: cow(item.to_user_id),
                    timestamp: item.timestamp.and_then(|t| t.0),
                })
                .collect()
        };
        let ObjectOnly(change) = serde_json::from_str::<ObjectOnly<Change<'_>>>(text).ok()?;
        Some(ChangeHead {
            value: change.value.map(|value| WaHead {
                metadata: value.metadata.map(|m| MetadataHead {
                    display_phone_number: cow(m.display_phone_number),
                    phone_number_id: cow(m.phone_number_id),
                }),
                contacts: (value.contacts.unwrap_or_default().into_iter())
                    .map(|c| ContactHead {
                        wa_id: cow(c.wa_id),
                        user_id: cow(c.user_id),
                        ..ContactHead::default()
                    })
                    .collect(),
                messages: items(value.messages),
                statuses: items(value.statuses),
                message_echoes: items(value.message_echoes),
            }),
        })
    }

    /// [`ChangeHead::strict`] without serde, validating the change as it reads it
    /// ([`crate::validating`]): the same head wherever it is sure of it, `None` anywhere else.
    fn validating(text: &'a str) -> Option<ChangeHead<'a>> {
        use crate::validating::{Read, Reader, Unsure, once};
        /// A message, status or echo: an object (the strict reading refuses a `null` one).
        fn item<'a>(reader: &mut Reader<'a>) -> Read<WaItemHead<'a>> {
            let mut texts: [Option<Option<&'a str>>; 8] = [None; 8];
            let mut timestamp = None;
            let present = reader.object(|reader, key| {
                let slot = match key {
                    "id" => 0,
                    "status" => 1,
                    "from" => 2,
                    "from_user_id" => 3,
                    "recipient_id" => 4,
                    "recipient_user_id" => 5,
                    "to" => 6,
                    "to_user_id" => 7,
                    "timestamp" => {
                        return once(&mut timestamp, reader.whole(lenient::whole_number_text)?);
                    }
                    _ => return reader.skip(),
                };
                once(&mut texts[slot], reader.text()?)
            })?;
            if !present {
                return Err(Unsure);
            }
            let [
                id,
                status,
                from,
                from_user_id,
                recipient_id,
                recipient_user_id,
                to,
                to_user_id,
            ] = texts.map(|text| text.flatten().map(Cow::Borrowed));
            Ok(WaItemHead {
                id,
                status,
                from,
                from_user_id,
                recipient_id,
                recipient_user_id,
                to,
                to_user_id,
                timestamp: timestamp.flatten().flatten(),
            })
        }
        /// A list of objects read by `element`, or `null`.
        fn list<'a, T>(
            reader: &mut Reader<'a>,
            element: impl Fn(&mut Reader<'a>) -> Read<T>,
        ) -> Read<Option<Vec<T>>> {
            let mut elements = Vec::new();
            let present = reader.array(|reader| {
                elements.push(element(reader)?);
                Ok(())
            })?;
            Ok(present.then_some(elements))
        }
        /// A contact: an object (the strict reading refuses a `null` one).
        fn contact<'a>(reader: &mut Reader<'a>) -> Read<ContactHead<'a>> {
            let [wa_id, user_id] = reader.texts(["wa_id", "user_id"])?.ok_or(Unsure)?;
            Ok(ContactHead {
                wa_id: wa_id.map(Cow::Borrowed),
                user_id: user_id.map(Cow::Borrowed),
                ..ContactHead::default()
            })
        }
        fn value<'a>(reader: &mut Reader<'a>) -> Read<Option<WaHead<'a>>> {
            let (mut metadata, mut contacts) = (None, None);
            let (mut messages, mut statuses, mut echoes) = (None, None, None);
            let present = reader.object(|reader, key| match key {
                "metadata" => {
                    let texts = reader.texts(["display_phone_number", "phone_number_id"])?;
                    once(
                        &mut metadata,
                        texts.map(|[display, phone]| MetadataHead {
                            display_phone_number: display.map(Cow::Borrowed),
                            phone_number_id: phone.map(Cow::Borrowed),
                        }),
                    )
                }
                "contacts" => once(&mut contacts, list(reader, contact)?),
                "messages" => once(&mut messages, list(reader, item)?),
                "statuses" => once(&mut statuses, list(reader, item)?),
                "message_echoes" => once(&mut echoes, list(reader, item)?),
                _ => reader.skip(),
            })?;
            fn all<T>(items: Option<Option<Vec<T>>>) -> Vec<T> {
                items.flatten().unwrap_or_default()
            }
            Ok(present.then(|| WaHead {
                metadata: metadata.flatten(),
                contacts: all(contacts),
                messages: all(messages),
                statuses: all(statuses),
                message_echoes: all(echoes),
            }))
        }
        let mut change = None;
        let mut reader = Reader::new(text);
        reader
            .item(|reader, key| match key {
                "value" => once(&mut change, value(reader)?),
                _ => reader.skip(),
            })
            .ok()?;
        reader.end().ok()?;
        Some(ChangeHead {
            value: change.flatten(),
        })
    }

    fn read_with_serde(text: &str) -> ChangeHead<'a> {
        crate::compat::object_or_default(text)
    }

    /// The head read without building values ([`crate::scan`]).
    fn scan(text: &str) -> Result<ChangeHead<'a>, Unclean> {
        // Checked whole, once: `value` is most of a change, and the head reads values nested
        // four deep in it, which are then skipped by lookup rather than walked at every level.
        // (A messaging item is shallow: walking it is cheaper than indexing it.)
        let spans = Spans::check(text)?;
        let json = Json::checked(text, &spans);
        if json.kind() != Kind::Object {
            return Ok(ChangeHead::default());
        }
        let [value] = scan::top_level(json, ["value"])?;
        let item = |head: &mut WaItemHead<'a>, key: &str, item: Json<'_>| {
            match key {
                "id" => head.id = scan::lenient::string(item)?.map(Cow::Owned),
                "status" => head.status = scan::lenient::string(item)?.map(Cow::Owned),
                "from" => head.from = scan::lenient::id(item)?.map(Cow::Owned),
                "from_user_id" => head.from_user_id = scan::lenient::string(item)?.map(Cow::Owned),
                "recipient_id" => head.recipient_id = scan::lenient::id(item)?.map(Cow::Owned),
                "recipient_user_id" => {
                    head.recipient_user_id = scan::lenient::string(item)?.map(Cow::Owned)
                }
                "to" => head.to = scan::lenient::id(item)?.map(Cow::Owned),
                "to_user_id" => head.to_user_id = scan::lenient::string(item)?.map(Cow::Owned),
                "timestamp" => head.timestamp = scan::lenient::number(item)?,
                _ => {}
            }
            Ok(())
        };
        let wa = |value: Json<'_>| {
            scan::lenient::object(value, |head: &mut WaHead<'a>, key, field| {
                match key {
                    "metadata" => {
                        head.metadata =
                            scan::lenient::object(field, |m: &mut MetadataHead<'a>, key, v| {
                                match key {
                                    "display_phone_number" => {
                                        m.display_phone_number =
                                            scan::lenient::id(v)?.map(Cow::Owned)
                                    }
                                    "phone_number_id" => {
                                        m.phone_number_id = scan::lenient::id(v)?.map(Cow::Owned)
                                    }
                                    _ => {}
                                }
                                Ok(())
                            })?
                    }
                    "contacts" => {
                        head.contacts =
                            scan::lenient::list(field, |c: &mut ContactHead<'a>, key, v| {
                                match key {
                                    "wa_id" => c.wa_id = scan::lenient::id(v)?.map(Cow::Owned),
                                    "user_id" => {
                                        c.user_id = scan::lenient::string(v)?.map(Cow::Owned)
                                    }
                                    // Read but not used by the head: checked all the same.
                                    _ => {}
                                }
                                Ok(())
                            })?
                    }
                    "messages" => head.messages = scan::lenient::list(field, item)?,
                    "statuses" => head.statuses = scan::lenient::list(field, item)?,
                    "message_echoes" => head.message_echoes = scan::lenient::list(field, item)?,
                    _ => {}
                }
                Ok(())
            })
        };
        Ok(ChangeHead {
            value: value.map(wa).transpose()?.flatten(),
        })
    }

    fn items(&self) -> impl Iterator<Item = &WaItemHead<'_>> {
        self.value.iter().flat_map(|v| {
            v.messages
                .iter()
                .chain(v.statuses.iter())
                .chain(v.message_echoes.iter())
        })
    }

    fn own_key(&self, object: &str, entry_id: &str) -> Option<String> {
        let mut items = self.items();
        let first = items.next()?;
        if items.next().is_none() {
            // One message or status, as nearly every change holds: its key without a list.
            let id = first.id.as_deref()?;
            return Some(match first.status.as_deref() {
                Some(status) => ["meta:wa:", id, ":", status].concat(),
                None => ["meta:wa:", id].concat(),
            });
        }
        let ids: Option<Vec<String>> = self
            .items()
            .map(|item| {
                let id = item.id.as_deref()?;
                Some(match &item.status {
                    Some(status) => format!("{id}:{status}"),
                    None => id.to_owned(),
                })
            })
            .collect();
        let mut ids = ids?;
        match ids.len() {
            0 => None,
            1 => ids.pop().map(|id| ["meta:wa:", &id].concat()),
            // Several messages in one change: a key for the set, whatever their order.
            _ => {
                ids.sort_unstable();
                let set = Value::Array(ids.into_iter().map(Value::String).collect());
                Some(key::hashed("meta:wa:h:", &[object, entry_id], &set))
            }
        }
    }

    /// `meta:wa:{phone_number_id}:{user}`, where the user is the phone number while WhatsApp
    /// sends it and the business-scoped user id when it withholds it (usernames, 2026), so a
    /// username user's conversation stays the same without their number.
    fn conversation(&self) -> Option<String> {
        let value = self.value.as_ref()?;
        let phone = value.metadata.as_ref()?.phone_number_id.as_deref()?;
        let only_contact = match value.contacts.as_slice() {
            [contact] => contact.wa_id.as_deref().or(contact.user_id.as_deref()),
            _ => None,
        };
        let mut users = self.items().filter_map(|i| i.user().or(only_contact));
        let user = users.next()?;
        if users.any(|other| other != user) {
            return None;
        }
        Some(key::fit_conversation(
            ["meta:wa:", phone, ":", user].concat(),
        ))
    }

    fn timestamp_ms(&self) -> Option<i64> {
        self.items().next()?.timestamp?.checked_mul(1000)
    }
}
