//! A request body's outline: its envelope read and where each event lies. Each event is
//! validated once, by the reading of its head: in a LINE body of up to [`HEADS_MAX_BYTES`], by
//! the outline itself as it finds the event; elsewhere by
//! [`EventHead::checked`](crate::line::EventHead::checked) or
//! [`ItemHead::checked`](crate::meta::ItemHead::checked), on whichever core splits it, where
//! [`Callback::parse`](crate::line::Callback::parse) and
//! [`Notification::parse`](crate::meta::Notification::parse) validate every event on one core
//! before the heads read it again (issue 20: a third of the Meta batch's work).
//!
//! Only bodies of the shape the platforms send are outlined: the envelope's own members, each
//! once, keys without escapes, scalars where the envelope has scalars. Any other body gets no
//! outline and is read by `parse`; so is one whose outline holds an event that is not JSON, so
//! that every refusal is `parse`'s own. Where both read a body, they read the same: the
//! envelope's scalars through the same serde readers, each event's exact text (a property test
//! and the fuzz targets compare the two).

use crate::compat::{flexible_id, lenient};
use crate::line::HeadRef;
use crate::meta::{MetaObject, RawItem, entry_items};
use crate::scan::{skip_ws, string_end_escaped, value_end};
use serde::Deserialize;
use serde_json::de::StrRead;

/// A LINE body's outline.
#[derive(Debug)]
pub struct LineOutline<'a> {
    /// As [`Callback::destination`](crate::line::Callback::destination).
    pub destination: Option<String>,
    /// Each event, in the body's order.
    pub events: Vec<OutlinedEvent<'a>>,
}

/// One event of a [`LineOutline`].
#[derive(Debug, Clone, Copy)]
pub struct OutlinedEvent<'a> {
    /// The event's text.
    pub text: &'a str,
    /// Its head where it was read as the event was found (the event then validated), in a
    /// body of [`HEADS_MAX_BYTES`] or less; `None` elsewhere. Kept beside the text, not in a
    /// list of its own: one allocation a request fewer, a tenth of a one-event request's
    /// time being the allocator's.
    pub(crate) head: Option<HeadRef<'a>>,
}

/// Bodies up to this size have their events' heads read as the outline finds each event (one
/// pass over each event instead of two: its end found on the block masks, then its head read):
/// below it the ingress verifies the body before reading it and splits it on one core (100
/// events: 85 KB). Larger bodies' heads are read by the split, on every core.
pub const HEADS_MAX_BYTES: usize = 128 * 1024;

impl<'a> LineOutline<'a> {
    /// The outline of `{"destination": …, "events": […]}`; `None` for any other body.
    pub fn read(body: &'a [u8]) -> Option<LineOutline<'a>> {
        let mut reader = Reader::new(body)?;
        let (mut destination, mut events) = (None, None);
        reader.members(|reader, key| match key {
            "destination" if destination.is_none() => {
                destination = Some(reader.scalar(|de| lenient::option::<_, String>(de))?);
                Some(())
            }
            "events" if events.is_none() => {
                events = Some(if body.len() <= HEADS_MAX_BYTES {
                    reader.events()?
                } else {
                    let texts = reader.values()?;
                    texts
                        .into_iter()
                        .map(|text| OutlinedEvent { text, head: None })
                        .collect()
                });
                Some(())
            }
            _ => None,
        })?;
        reader.end()?;
        Some(LineOutline {
            destination: destination.flatten(),
            events: events?,
        })
    }
}

/// A Meta body's outline.
#[derive(Debug)]
pub struct MetaOutline<'a> {
    pub object: MetaObject,
    pub entries: Vec<EntryOutline<'a>>,
}

/// One entry of a [`MetaOutline`], as [`crate::meta::Entry`] with each item's text.
#[derive(Debug, Default)]
pub struct EntryOutline<'a> {
    pub id: Option<String>,
    pub time: Option<i64>,
    pub messaging: Vec<&'a str>,
    pub standby: Vec<&'a str>,
    pub changes: Vec<&'a str>,
}

/// One item of a [`MetaOutline`] with the context it came in, its text not yet validated.
pub type OutlinedItem<'a> = RawItem<'a, &'a str>;

impl<'a> MetaOutline<'a> {
    /// The outline of `{"object": …, "entry": [{"id": …, "time": …, "messaging": […], …}]}`;
    /// `None` for any other body.
    pub fn read(body: &'a [u8]) -> Option<MetaOutline<'a>> {
        let mut reader = Reader::new(body)?;
        let (mut object, mut entries) = (None, None);
        reader.members(|reader, key| match key {
            "object" if object.is_none() => {
                object = Some(reader.scalar(|de| MetaObject::deserialize(de))?);
                Some(())
            }
            "entry" if entries.is_none() => {
                let mut list = Vec::new();
                reader.items(|reader| {
                    list.push(EntryOutline::read(reader)?);
                    Some(())
                })?;
                entries = Some(list);
                Some(())
            }
            _ => None,
        })?;
        reader.end()?;
        Some(MetaOutline {
            object: object?,
            entries: entries?,
        })
    }

    /// Every item of every entry, in the order of [`crate::meta::Notification::items`].
    pub fn items(&self) -> impl Iterator<Item = OutlinedItem<'_>> + '_ {
        let object = self.object.as_str();
        self.entries.iter().flat_map(move |entry| {
            let lists = [&entry.messaging[..], &entry.standby, &entry.changes];
            entry_items(object, entry.id.as_deref().unwrap_or(""), entry.time, lists)
        })
    }

    /// The number of items.
    pub fn item_count(&self) -> usize {
        self.entries
            .iter()
            .map(|e| e.messaging.len() + e.standby.len() + e.changes.len())
            .sum()
    }
}

impl<'a> EntryOutline<'a> {
    fn read(reader: &mut Reader<'a>) -> Option<EntryOutline<'a>> {
        let mut entry = EntryOutline::default();
        let mut seen = [false; 5];
        reader.members(|reader, key| {
            let index = ["id", "time", "messaging", "standby", "changes"]
                .iter()
                .position(|name| *name == key)?;
            if std::mem::replace(&mut seen[index], true) {
                return None;
            }
            match index {
                0 => entry.id = reader.scalar(|de| flexible_id(de))?,
                1 => entry.time = reader.scalar(|de| lenient::number(de))?,
                2 => entry.messaging = reader.values()?,
                3 => entry.standby = reader.values()?,
                _ => entry.changes = reader.values()?,
            }
            Some(())
        })?;
        Some(entry)
    }
}

/// The body's text, read from the front.
struct Reader<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    /// A reader of UTF-8 text (`parse` refuses other bodies where it reads, and may accept
    /// them where it skips: not a body to outline).
    fn new(body: &'a [u8]) -> Option<Reader<'a>> {
        Some(Reader {
            text: simdutf8::basic::from_utf8(body).ok()?,
            at: 0,
        })
    }

    /// The next byte after white space, not consumed.
    fn peek(&mut self) -> Option<u8> {
        self.at = skip_ws(self.text.as_bytes(), self.at);
        self.text.as_bytes().get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// Nothing but white space left.
    fn end(&mut self) -> Option<()> {
        self.peek().is_none().then_some(())
    }

    /// The next value's text, not validated: where it starts is checked, where it ends found
    /// as it would end if valid (its reader validates it).
    fn value(&mut self) -> Option<&'a str> {
        let start = skip_ws(self.text.as_bytes(), self.at);
        if !matches!(
            self.text.as_bytes().get(start)?,
            b'{' | b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n'
        ) {
            return None;
        }
        let end = value_end(self.text.as_bytes(), start);
        let value = self
            .text
            .get(start..end)
            .filter(|value| !value.is_empty())?;
        self.at = end;
        Some(value)
    }

    /// A scalar read by `read`, as serde reads the member in `parse`. Objects and arrays are
    /// left to `parse`: there they sit a few levels deep, where serde's nesting limit is lower.
    fn scalar<T>(
        &mut self,
        read: impl FnOnce(&mut serde_json::Deserializer<StrRead<'a>>) -> serde_json::Result<T>,
    ) -> Option<T> {
        let text = self.value()?;
        if matches!(text.as_bytes().first(), Some(b'{' | b'[')) {
            return None;
        }
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let value = read(&mut deserializer).ok()?;
        deserializer.end().ok()?;
        Some(value)
    }

    /// An array's values' texts.
    fn values(&mut self) -> Option<Vec<&'a str>> {
        let mut values = Vec::new();
        self.items(|reader| {
            values.push(reader.value()?);
            Some(())
        })?;
        Some(values)
    }

    /// An array of LINE events, each with its head where the validating reading is sure of it
    /// ([`HeadRef::validating_at`], which also finds where the event ends); any other event is
    /// found as [`Reader::value`] finds it, its head left to the split.
    fn events(&mut self) -> Option<Vec<OutlinedEvent<'a>>> {
        let mut events = Vec::new();
        self.items(|reader| {
            let start = skip_ws(reader.text.as_bytes(), reader.at);
            events.push(match HeadRef::validating_at(reader.text, start) {
                Some((head, end)) => {
                    let text = reader.text.get(start..end)?;
                    reader.at = end;
                    OutlinedEvent {
                        text,
                        head: Some(head),
                    }
                }
                None => OutlinedEvent {
                    text: reader.value()?,
                    head: None,
                },
            });
            Some(())
        })?;
        Some(events)
    }

    /// `[` item, … `]`, each item read by `item`.
    fn items(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        if self.eat(b']').is_some() {
            return Some(());
        }
        loop {
            item(self)?;
            match self.peek()? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// `{` key: member, … `}`, each member read by `member` given its key (without escapes).
    fn members(&mut self, mut member: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            if self.peek()? != b'"' {
                return None;
            }
            let (end, escaped) = string_end_escaped(self.text.as_bytes(), self.at);
            if escaped {
                return None;
            }
            let key = self.text.get(self.at + 1..end.checked_sub(1)?)?;
            self.at = end;
            self.eat(b':')?;
            member(self, key)?;
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }
}
