//! Archived records and the rules that change them ([`merge`]): pure, the same for every
//! adapter.

use super::object_key;
use crate::platform::Platform;
use serde::{Deserialize, Serialize};

/// Whether a record holds a message or only remembers that it was unsent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageState {
    Stored,
    Unsent,
}

/// Where a media file comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaSource {
    /// LINE's content API: the file, or with `preview` its preview image.
    LineContent { message_id: String, preview: bool },
    /// A URL the platform gave (Meta attachments).
    Url { url: String },
    /// A WhatsApp media id: its URL (valid about 5 minutes) is asked for when the file is
    /// fetched, then the file downloaded with the access token.
    WhatsappMedia { media_id: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum MediaState {
    /// Not fetched yet, or the last fetch failed for now.
    Pending,
    Stored {
        content_type: String,
        bytes: u64,
    },
    /// The platform refused it for good (gone, too large, no access token): not retried.
    Failed {
        reason: String,
    },
}

/// One media file of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Media {
    /// `content`, `preview`, or `attachment-N`.
    pub role: String,
    pub source: MediaSource,
    /// The object's key in the media store.
    pub object_key: String,
    #[serde(flatten)]
    pub state: MediaState,
}

/// One archived message, or the tombstone of an unsent one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchivedMessage {
    pub platform: Platform,
    pub conversation: String,
    pub message_id: String,
    pub state: MessageState,
    /// The sender's user id (LINE `source.userId`, Meta `sender.id`).
    pub sender: Option<String>,
    /// When the message was sent; `None` while only an edit of it has arrived.
    pub sent_at: Option<i64>,
    /// The `(timestamp, edit number)` of the event that set the text: edits apply only above it.
    pub text_version: (i64, i64),
    pub edited: bool,
    /// `text`, `image`, `sticker`...: the platform's message type.
    pub kind: String,
    pub text: Option<String>,
    /// The event as received, for everything else (stickers, locations, file names, mentions).
    pub event: Option<serde_json::Value>,
    pub media: Vec<Media>,
    /// Media objects of an unsent message still to delete.
    #[serde(default)]
    pub pending_deletes: Vec<String>,
    /// The delivery state of a message the business sent (WhatsApp statuses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
    /// When the record (and its media) expire, in milliseconds since the epoch.
    pub expires_at_ms: i64,
    /// Bumped by every write; the compare-and-swap version.
    pub version: u64,
}

impl ArchivedMessage {
    /// The time the history is ordered by.
    pub fn order_time(&self) -> i64 {
        self.sent_at.unwrap_or(self.text_version.0)
    }

    /// The sort key within a conversation: time, then message id.
    pub fn order_key(&self) -> String {
        format!("{:015}#{}", self.order_time().max(0), self.message_id)
    }

    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.expires_at_ms <= now_ms
    }
}

/// Where a sent message has got to: WhatsApp's latest status of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// `sent`, `delivered`, `read`, `played`, `failed`, `deleted`, or a newer one.
    pub status: String,
    /// The status's time, in milliseconds since the epoch.
    pub at: i64,
    /// The error code of a `failed` status (131026 undeliverable, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i64>,
}

impl Delivery {
    /// Statuses arrive out of order (a `read` before its `delivered`): a later stage wins, a
    /// failure or deletion ends it.
    fn rank(&self) -> u8 {
        match self.status.as_str() {
            "sent" => 1,
            "delivered" => 2,
            "read" => 3,
            "played" | "failed" => 4,
            "deleted" => 5,
            _ => 0,
        }
    }

    /// True when `self` says more than `other`.
    pub fn supersedes(&self, other: &Delivery) -> bool {
        (self.rank(), self.at) > (other.rank(), other.at)
    }
}

/// A user's profile as stored on `follow`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchivedProfile {
    pub conversation: String,
    pub user_id: String,
    pub display_name: String,
    pub picture_url: Option<String>,
    pub status_message: Option<String>,
    pub updated_at: i64,
    pub expires_at_ms: i64,
}

/// A message as an event carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    pub platform: Platform,
    pub conversation: String,
    pub message_id: String,
    pub sender: Option<String>,
    /// The event's time; for an edit, the edit's.
    pub at: i64,
    /// Meta's `num_edit`; 0 elsewhere.
    pub edit_number: i64,
    pub kind: String,
    pub text: Option<String>,
    pub event: Option<serde_json::Value>,
    pub media: Vec<(String, MediaSource)>,
}

impl Incoming {
    /// A LINE text message; for examples and tests.
    pub fn text(conversation: &str, message_id: &str, text: &str, at: i64) -> Incoming {
        Incoming {
            platform: Platform::Line,
            conversation: conversation.to_owned(),
            message_id: message_id.to_owned(),
            sender: None,
            at,
            edit_number: 0,
            kind: "text".into(),
            text: Some(text.to_owned()),
            event: None,
            media: Vec::new(),
        }
    }

    fn media(&self) -> Vec<Media> {
        self.media
            .iter()
            .map(|(role, source)| Media {
                role: role.clone(),
                source: source.clone(),
                object_key: object_key(&self.conversation, &self.message_id, role),
                state: MediaState::Pending,
            })
            .collect()
    }
}

/// What an event asks of the archive.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Message(Incoming),
    Edit(Incoming),
    Unsend {
        platform: Platform,
        conversation: String,
        message_id: String,
        at: i64,
    },
    /// A status of a message the business sent (WhatsApp): kept as its [`Delivery`]. A status of
    /// a message the archive has not stored makes a record of kind `outgoing` for it.
    Status {
        platform: Platform,
        conversation: String,
        message_id: String,
        delivery: Delivery,
    },
}

impl Change {
    pub(crate) fn conversation(&self) -> &str {
        match self {
            Change::Message(m) | Change::Edit(m) => &m.conversation,
            Change::Unsend { conversation, .. } | Change::Status { conversation, .. } => {
                conversation
            }
        }
    }
    pub(crate) fn message_id(&self) -> &str {
        match self {
            Change::Message(m) | Change::Edit(m) => &m.message_id,
            Change::Unsend { message_id, .. } | Change::Status { message_id, .. } => message_id,
        }
    }
}

/// The outcome of [`merge`].
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // one per event, never stored: boxing would only add an allocation
pub enum Merge {
    /// Nothing to write: a duplicate, an older edit, or a message already unsent.
    Unchanged,
    /// Write this record (its version is the next one).
    Write(ArchivedMessage),
}

/// Applies `change` to the stored record (`None` or expired: there is none). Pure: the rules of
/// the archive, the same for every adapter.
pub fn merge(
    existing: Option<ArchivedMessage>,
    change: &Change,
    now_ms: i64,
    expires_at_ms: i64,
) -> Merge {
    // Versions keep counting over an expired record, so no writer holding an old copy can match.
    let version = existing.as_ref().map_or(1, |r| r.version + 1);
    let existing = existing.filter(|r| !r.is_expired(now_ms));
    match (existing, change) {
        (None, Change::Message(m)) | (None, Change::Edit(m)) => {
            let is_edit = matches!(change, Change::Edit(_));
            Merge::Write(ArchivedMessage {
                platform: m.platform,
                conversation: m.conversation.clone(),
                message_id: m.message_id.clone(),
                state: MessageState::Stored,
                sender: m.sender.clone(),
                sent_at: (!is_edit).then_some(m.at),
                text_version: (m.at, m.edit_number),
                edited: is_edit,
                kind: m.kind.clone(),
                text: m.text.clone(),
                event: m.event.clone(),
                media: m.media(),
                pending_deletes: Vec::new(),
                delivery: None,
                expires_at_ms,
                version,
            })
        }
        (
            None,
            Change::Status {
                platform,
                conversation,
                message_id,
                delivery,
            },
        ) => Merge::Write(ArchivedMessage {
            platform: *platform,
            conversation: conversation.clone(),
            message_id: message_id.clone(),
            state: MessageState::Stored,
            sender: None,
            sent_at: None,
            text_version: (delivery.at, 0),
            edited: false,
            kind: "outgoing".into(),
            text: None,
            event: None,
            media: Vec::new(),
            pending_deletes: Vec::new(),
            delivery: Some(delivery.clone()),
            expires_at_ms,
            version,
        }),
        (
            None,
            Change::Unsend {
                platform,
                conversation,
                message_id,
                at,
            },
        ) => Merge::Write(ArchivedMessage {
            platform: *platform,
            conversation: conversation.clone(),
            message_id: message_id.clone(),
            state: MessageState::Unsent,
            sender: None,
            sent_at: None,
            text_version: (*at, 0),
            edited: false,
            kind: "unsent".into(),
            text: None,
            event: None,
            media: Vec::new(),
            pending_deletes: Vec::new(),
            delivery: None,
            expires_at_ms,
            version,
        }),
        // Unsent stays unsent: a late message or edit is not stored.
        (Some(record), _) if record.state == MessageState::Unsent => Merge::Unchanged,
        (Some(mut record), Change::Message(m)) => {
            if record.sent_at.is_some() {
                return Merge::Unchanged; // a duplicate
            }
            // Only edits had arrived: the original gives the send time and the rest.
            record.sent_at = Some(m.at);
            record.sender = record.sender.or_else(|| m.sender.clone());
            record.event = m.event.clone().or(record.event);
            if record.media.is_empty() {
                record.media = m.media();
            }
            if (m.at, m.edit_number) > record.text_version {
                record.text = m.text.clone();
                record.text_version = (m.at, m.edit_number);
            }
            record.expires_at_ms = expires_at_ms;
            record.version = version;
            Merge::Write(record)
        }
        (Some(mut record), Change::Edit(m)) => {
            if (m.at, m.edit_number) <= record.text_version {
                return Merge::Unchanged; // an older edit, or this one again
            }
            record.text = m.text.clone();
            record.text_version = (m.at, m.edit_number);
            record.edited = true;
            record.expires_at_ms = expires_at_ms;
            record.version = version;
            Merge::Write(record)
        }
        (Some(mut record), Change::Status { delivery, .. }) => {
            if record
                .delivery
                .as_ref()
                .is_some_and(|current| !delivery.supersedes(current))
            {
                return Merge::Unchanged;
            }
            record.delivery = Some(delivery.clone());
            record.expires_at_ms = expires_at_ms;
            record.version = version;
            Merge::Write(record)
        }
        (Some(mut record), Change::Unsend { at, .. }) => {
            record.pending_deletes = record.media.iter().map(|m| m.object_key.clone()).collect();
            record.state = MessageState::Unsent;
            record.kind = "unsent".into();
            record.text = None;
            record.event = None;
            record.media = Vec::new();
            record.sender = None;
            record.text_version = (*at, 0);
            record.expires_at_ms = expires_at_ms;
            record.version = version;
            Merge::Write(record)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(merge: Merge) -> ArchivedMessage {
        match merge {
            Merge::Write(record) => record,
            Merge::Unchanged => panic!("expected a write"),
        }
    }

    fn incoming(text: &str, at: i64) -> Incoming {
        Incoming::text("line:U1", "m1", text, at)
    }

    fn unsend(at: i64) -> Change {
        Change::Unsend {
            platform: Platform::Line,
            conversation: "line:U1".into(),
            message_id: "m1".into(),
            at,
        }
    }

    #[test]
    fn a_message_is_stored_once() {
        let record = write(merge(None, &Change::Message(incoming("hi", 1)), 0, 9));
        assert_eq!(record.version, 1);
        assert_eq!(record.sent_at, Some(1));
        let again = merge(Some(record), &Change::Message(incoming("hi", 1)), 0, 9);
        assert_eq!(again, Merge::Unchanged);
    }

    #[test]
    fn edits_in_any_order_end_with_the_newest() {
        let edits = [("v1", 2), ("v2", 3), ("v3", 4)];
        let orders: [[usize; 4]; 4] = [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1], [1, 3, 0, 2]];
        for order in orders {
            let mut record = None;
            for i in order {
                let change = if i == 0 {
                    Change::Message(incoming("v0", 1))
                } else {
                    let (text, at) = edits[i - 1];
                    Change::Edit(incoming(text, at))
                };
                if let Merge::Write(r) = merge(record.clone(), &change, 0, 9) {
                    record = Some(r);
                }
            }
            let record = record.expect("stored");
            assert_eq!(record.text.as_deref(), Some("v3"), "order {order:?}");
            assert_eq!(record.sent_at, Some(1), "order {order:?}");
            assert!(record.edited);
        }
    }

    #[test]
    fn meta_edits_with_one_timestamp_order_by_edit_number() {
        let edit = |text: &str, n| {
            Change::Edit(Incoming {
                edit_number: n,
                ..incoming(text, 5)
            })
        };
        let record = write(merge(None, &edit("second", 2), 0, 9));
        assert_eq!(
            merge(Some(record.clone()), &edit("first", 1), 0, 9),
            Merge::Unchanged
        );
        assert_eq!(record.text.as_deref(), Some("second"));
    }

    #[test]
    fn unsend_removes_content_and_keeps_out_a_late_message() {
        let mut message = incoming("secret", 1);
        message.media = vec![(
            "content".into(),
            MediaSource::LineContent {
                message_id: "m1".into(),
                preview: false,
            },
        )];
        let stored = write(merge(None, &Change::Message(message.clone()), 0, 9));
        let unsent = write(merge(Some(stored), &unsend(2), 0, 9));
        assert_eq!(unsent.state, MessageState::Unsent);
        assert_eq!(unsent.text, None);
        assert_eq!(unsent.event, None);
        assert_eq!(
            unsent.pending_deletes,
            vec![object_key("line:U1", "m1", "content")]
        );
        assert_eq!(
            merge(Some(unsent.clone()), &Change::Message(message), 0, 9),
            Merge::Unchanged
        );
        // Unsend first: the tombstone keeps the message out when it comes.
        let tombstone = write(merge(None, &unsend(2), 0, 9));
        assert_eq!(
            merge(
                Some(tombstone.clone()),
                &Change::Message(incoming("secret", 1)),
                0,
                9
            ),
            Merge::Unchanged
        );
        assert_eq!(
            merge(Some(tombstone), &Change::Edit(incoming("secret!", 3)), 0, 9),
            Merge::Unchanged
        );
    }

    #[test]
    fn an_expired_record_counts_as_none() {
        let record = write(merge(None, &Change::Message(incoming("old", 1)), 0, 10));
        let renewed = write(merge(
            Some(record),
            &Change::Message(incoming("new", 20)),
            11,
            99,
        ));
        assert_eq!(renewed.text.as_deref(), Some("new"));
        assert_eq!(renewed.version, 2);
    }
}

#[cfg(test)]
mod delivery_tests {
    use super::*;

    fn status(status: &str, at: i64) -> Change {
        Change::Status {
            platform: Platform::Meta,
            conversation: "wa".into(),
            message_id: "wamid.OUT".into(),
            delivery: Delivery {
                status: status.into(),
                at,
                error_code: None,
            },
        }
    }

    #[test]
    fn statuses_out_of_order_end_with_the_furthest() {
        let Merge::Write(sent) = merge(None, &status("sent", 1), 0, 9) else {
            panic!("a stub for the sent message");
        };
        assert_eq!(sent.kind, "outgoing");
        let Merge::Write(read) = merge(Some(sent), &status("read", 3), 0, 9) else {
            panic!("read");
        };
        assert_eq!(
            merge(Some(read.clone()), &status("delivered", 2), 0, 9),
            Merge::Unchanged
        );
        assert_eq!(
            merge(Some(read.clone()), &status("read", 3), 0, 9),
            Merge::Unchanged
        );
        assert_eq!(read.delivery.map(|d| d.status), Some("read".to_owned()));
    }
}
