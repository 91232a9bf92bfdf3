//! The conversation archive: every message kept with its media before the platform forgets it,
//! edits applied newest-wins, unsent messages deleted with their media and remembered.
//!
//! The worker feeds it when it is switched on, **beside the bot, not before it**: the bot runs
//! first (its reply must not wait for media, and LINE's reply token expires), then the archive;
//! what cannot be archived yet (LINE's "still preparing" `202`, a `5xx`, a `429`) continues as an
//! archive-only queue message with its own retries, which never holds up the bot's next events
//! ([`crate::worker`]). On the last of those retries, what still fails is marked failed for good.
//! Records live behind [`ArchiveStore`] (DynamoDB, or SQLite locally) and files behind
//! [`MediaStore`] (S3, or SQLite locally).
//!
//! The rules, all in [`merge`], so that every adapter behaves the same:
//! - a message is stored once, however often it arrives;
//! - the text is the newest edit's: an edit applies only when its `(timestamp, edit number)` is
//!   higher than the text's, so edits delivered out of order end with the newest;
//! - `unsend` (LINE; Instagram's `is_deleted`) turns the record into a tombstone without content,
//!   deletes its media files, and the tombstone keeps a message that arrives later (redelivery
//!   reorders) from being stored;
//! - media is fetched after the record is written; a fetch that fails for now fails the archive
//!   step, which is retried: the record is then already there and only the missing files are
//!   fetched. Files the platform refuses (gone, too large) are marked failed, not retried;
//! - the bytes of files being fetched and stored are capped across the process
//!   ([`ArchiveConfig::max_bytes_in_flight`]), so concurrent large files wait their turn instead
//!   of growing the worker past its memory.
//! - every record and file expires after the retention period (TTL and an S3 lifecycle rule;
//!   expiry is also checked on read, since a TTL deletes late).
//!
//! ```
//! use shared::archive::{ArchivedMessage, Change, Incoming, Merge, merge};
//! let incoming = |text: &str, at| Incoming::text("line:U1", "m1", text, at);
//! let first = match merge(None, &Change::Message(incoming("hello", 1)), 0, 99) {
//!     Merge::Write(record) => record,
//!     other => panic!("{other:?}"),
//! };
//! // The second edit arrives before the first: the first is then too old to apply.
//! let edited = match merge(Some(first), &Change::Edit(incoming("hello!!", 3)), 0, 99) {
//!     Merge::Write(record) => record,
//!     other => panic!("{other:?}"),
//! };
//! assert!(matches!(merge(Some(edited.clone()), &Change::Edit(incoming("hello!", 2)), 0, 99), Merge::Unchanged));
//! assert_eq!(edited.text.as_deref(), Some("hello!!"));
//! ```

use crate::bot::{BotEvent, BotEventKind};
use crate::clients::{ApiError, Clients, Download};
use crate::line::{self, EventKind, MessageContent};
use crate::meta::{self, Item, MessagingKind};
use crate::platform::Platform;
use crate::ports::{ArchiveError, ArchiveStore, MediaStore};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How long archived messages and files are kept unless configured (`ARCHIVE_RETENTION_DAYS`).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(365 * 24 * 3600);
/// The largest file fetched unless configured (`ARCHIVE_MAX_MEDIA_BYTES`): the worker holds a
/// file in memory while it stores it, and runs in 128 MB.
pub const DEFAULT_MAX_MEDIA_BYTES: usize = 20 * 1024 * 1024;
/// The most bytes of files held at once across the process unless configured
/// (`ARCHIVE_MAX_BYTES_IN_FLIGHT`): with the default file limit, one large file and some small
/// ones at a time, well inside a 128 MB worker.
pub const DEFAULT_MAX_BYTES_IN_FLIGHT: usize = 32 * 1024 * 1024;
/// Compare-and-swap attempts before a write gives up (and the event is retried later).
const SAVE_ATTEMPTS: usize = 5;
/// Time kept back from media downloads for the record's writes.
const STORE_RESERVE: Duration = Duration::from_secs(1);

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
}

impl Change {
    fn conversation(&self) -> &str {
        match self {
            Change::Message(m) | Change::Edit(m) => &m.conversation,
            Change::Unsend { conversation, .. } => conversation,
        }
    }
    fn message_id(&self) -> &str {
        match self {
            Change::Message(m) | Change::Edit(m) => &m.message_id,
            Change::Unsend { message_id, .. } => message_id,
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
                expires_at_ms,
                version,
            })
        }
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

/// The media store key of a message's file: one prefix per conversation and message.
pub fn object_key(conversation: &str, message_id: &str, role: &str) -> String {
    format!(
        "media/{}/{}/{}",
        safe_segment(conversation),
        safe_segment(message_id),
        role
    )
}

/// Keeps keys readable and safe in S3 and file systems: other characters become `_`.
fn safe_segment(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// What the archive does with one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    Change(Change),
    /// LINE `follow`: fetch and store the user's profile.
    Profile {
        conversation: String,
        user_id: String,
    },
    Nothing,
}

/// Reads what an event asks of the archive.
pub fn plan(event: &BotEvent) -> Plan {
    match &event.kind {
        BotEventKind::Line { event: line, .. } => plan_line(event, line),
        BotEventKind::Meta { item, .. } => plan_meta(event, item),
        BotEventKind::Unreadable { .. } | BotEventKind::Oversized(_) => Plan::Nothing,
    }
}

fn raw_json(event: &BotEvent) -> Option<serde_json::Value> {
    serde_json::from_str(event.raw.get()).ok()
}

fn plan_line(event: &BotEvent, line: &line::Event) -> Plan {
    let sender = line
        .source
        .as_ref()
        .and_then(|s| s.user_id())
        .map(str::to_owned);
    let at = line.timestamp.or(event.timestamp).unwrap_or(0);
    let incoming = |message: &line::Message| {
        let id = message.id.clone()?;
        let text = match &message.content {
            MessageContent::Text(text) => text.text.clone(),
            _ => None,
        };
        let on_line = message.is_on_line();
        let media = match &message.content {
            MessageContent::Image(_) | MessageContent::Video(_) if on_line => {
                vec![("content", false), ("preview", true)]
            }
            MessageContent::Audio(_) | MessageContent::File(_) if on_line => {
                vec![("content", false)]
            }
            _ => Vec::new(),
        }
        .into_iter()
        .map(|(role, preview)| {
            (
                role.to_owned(),
                MediaSource::LineContent {
                    message_id: id.clone(),
                    preview,
                },
            )
        })
        .collect();
        Some(Incoming {
            platform: Platform::Line,
            conversation: event.conversation.clone(),
            message_id: id,
            sender: sender.clone(),
            at,
            edit_number: 0,
            kind: message.type_name().to_owned(),
            text,
            event: raw_json(event),
            media,
        })
    };
    let change = match &line.kind {
        EventKind::Message(message) => incoming(message).map(Change::Message),
        EventKind::MessageEdited(message) => incoming(message).map(Change::Edit),
        EventKind::Unsend(unsend) => unsend.message_id.clone().map(|message_id| Change::Unsend {
            platform: Platform::Line,
            conversation: event.conversation.clone(),
            message_id,
            at,
        }),
        EventKind::Follow(_) => {
            return match sender {
                Some(user_id) => Plan::Profile {
                    conversation: event.conversation.clone(),
                    user_id,
                },
                None => Plan::Nothing,
            };
        }
        _ => None,
    };
    change.map_or(Plan::Nothing, Plan::Change)
}

fn plan_meta(event: &BotEvent, item: &Item) -> Plan {
    let Item::Messaging(messaging) = item else {
        return Plan::Nothing;
    };
    let at = messaging.timestamp.or(event.timestamp).unwrap_or(0);
    let sender = messaging.sender.as_ref().and_then(|p| p.id.clone());
    match &messaging.kind {
        MessagingKind::Message(message) => {
            let Some(mid) = message.mid.clone() else {
                return Plan::Nothing;
            };
            if message.is_deleted {
                return Plan::Change(Change::Unsend {
                    platform: Platform::Meta,
                    conversation: event.conversation.clone(),
                    message_id: mid,
                    at,
                });
            }
            let media = message
                .attachments
                .iter()
                .enumerate()
                .filter_map(|(i, attachment)| {
                    let url = match attachment {
                        meta::Attachment::Image(p)
                        | meta::Attachment::Video(p)
                        | meta::Attachment::Audio(p)
                        | meta::Attachment::File(p) => p.url.clone(),
                        _ => None,
                    }?;
                    Some((format!("attachment-{i}"), MediaSource::Url { url }))
                })
                .collect();
            let kind = match (&message.text, message.attachments.first()) {
                (Some(_), _) => "text".to_owned(),
                (None, Some(attachment)) => attachment.type_name().to_owned(),
                (None, None) => "message".to_owned(),
            };
            Plan::Change(Change::Message(Incoming {
                platform: Platform::Meta,
                conversation: event.conversation.clone(),
                message_id: mid,
                sender,
                at,
                edit_number: 0,
                kind,
                text: message.text.clone(),
                event: raw_json(event),
                media,
            }))
        }
        MessagingKind::MessageEdit(edit) => match &edit.mid {
            Some(mid) => Plan::Change(Change::Edit(Incoming {
                platform: Platform::Meta,
                conversation: event.conversation.clone(),
                message_id: mid.clone(),
                sender,
                at,
                edit_number: edit.num_edit.unwrap_or(0),
                kind: "text".into(),
                text: edit.text.clone(),
                event: raw_json(event),
                media: Vec::new(),
            })),
            None => Plan::Nothing,
        },
        _ => Plan::Nothing,
    }
}

/// The archive's settings.
#[derive(Debug, Clone)]
pub struct ArchiveConfig {
    pub retention: Duration,
    pub max_media_bytes: usize,
    /// The most bytes of media held in memory at once, across concurrent events (at least
    /// `max_media_bytes`).
    pub max_bytes_in_flight: usize,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        ArchiveConfig {
            retention: DEFAULT_RETENTION,
            max_media_bytes: DEFAULT_MAX_MEDIA_BYTES,
            max_bytes_in_flight: DEFAULT_MAX_BYTES_IN_FLIGHT,
        }
    }
}

impl ArchiveConfig {
    /// The defaults with `ARCHIVE_RETENTION_DAYS`, `ARCHIVE_MAX_MEDIA_BYTES` and
    /// `ARCHIVE_MAX_BYTES_IN_FLIGHT` applied.
    pub fn from_vars(
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<ArchiveConfig, crate::settings::ConfigError> {
        let number = |name| crate::settings::positive_number(&var, name);
        let defaults = ArchiveConfig::default();
        let max_media_bytes =
            number("ARCHIVE_MAX_MEDIA_BYTES")?.map_or(defaults.max_media_bytes, |n| n as usize);
        Ok(ArchiveConfig {
            retention: number("ARCHIVE_RETENTION_DAYS")?.map_or(defaults.retention, |days| {
                Duration::from_secs(days.saturating_mul(24 * 3600))
            }),
            max_media_bytes,
            max_bytes_in_flight: number("ARCHIVE_MAX_BYTES_IN_FLIGHT")?
                .map_or(defaults.max_bytes_in_flight, |n| n as usize)
                .max(max_media_bytes),
        })
    }
}

/// Why an event could not be archived (yet). The event fails and is delivered again.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveFailure {
    #[error(transparent)]
    Store(#[from] ArchiveError),
    #[error("media {object_key} not fetched yet: {source}")]
    Fetch {
        object_key: String,
        #[source]
        source: ApiError,
    },
    #[error("archive record {key} kept changing under {SAVE_ATTEMPTS} attempts to write it")]
    Contended { key: String },
}

/// The archive: records, media, and the HTTP client that fetches media from URLs.
pub struct Archive {
    store: Arc<dyn ArchiveStore>,
    media: Arc<dyn MediaStore>,
    http: reqwest::Client,
    config: ArchiveConfig,
    /// The bytes of media that may be held at once.
    in_flight: crate::clients::ByteBudget,
}

impl Archive {
    pub fn new(
        store: Arc<dyn ArchiveStore>,
        media: Arc<dyn MediaStore>,
        config: ArchiveConfig,
    ) -> Archive {
        Archive {
            store,
            media,
            http: crate::clients::http_client(),
            in_flight: crate::clients::ByteBudget::new(config.max_bytes_in_flight),
            config,
        }
    }

    pub fn store(&self) -> &Arc<dyn ArchiveStore> {
        &self.store
    }

    pub fn media(&self) -> &Arc<dyn MediaStore> {
        &self.media
    }

    fn expires_at(&self, now_ms: i64) -> i64 {
        now_ms.saturating_add(self.config.retention.as_millis() as i64)
    }

    /// Archives one event: its record, then its media. Idempotent: an event archived before
    /// changes nothing, and only missing media is fetched. On the `last_attempt`, media and
    /// profiles that are still unavailable are given up (marked failed, logged) rather than
    /// retried.
    pub async fn record(
        &self,
        event: &BotEvent,
        clients: &Clients,
        last_attempt: bool,
    ) -> Result<(), ArchiveFailure> {
        match plan(event) {
            Plan::Nothing => Ok(()),
            Plan::Profile {
                conversation,
                user_id,
            } => {
                let fetched = self
                    .profile(&conversation, &user_id, clients, event.deadline)
                    .await;
                match fetched {
                    Err(ArchiveFailure::Fetch { source, .. }) if last_attempt => {
                        tracing::warn!(target: "archive", error = %source, "profile not archived: still unavailable at the last attempt");
                        Ok(())
                    }
                    other => other,
                }
            }
            Plan::Change(change) => {
                let record = self.apply(&change).await?;
                match record {
                    Some(record) if record.state == MessageState::Unsent => {
                        self.delete_media(record).await
                    }
                    Some(record) => {
                        self.fetch_media(record, clients, event.deadline, last_attempt)
                            .await
                    }
                    None => Ok(()),
                }
            }
        }
    }

    /// Merges `change` into its record with compare-and-swap; the record as it now stands.
    async fn apply(&self, change: &Change) -> Result<Option<ArchivedMessage>, ArchiveFailure> {
        for _ in 0..SAVE_ATTEMPTS {
            let existing = self
                .store
                .load(change.conversation(), change.message_id())
                .await?;
            let expected = existing.as_ref().map(|r| r.version);
            let now = now_ms();
            match merge(existing.clone(), change, now, self.expires_at(now)) {
                Merge::Unchanged => return Ok(existing),
                Merge::Write(record) => {
                    if self.store.save(&record, expected).await? {
                        return Ok(Some(record));
                    }
                }
            }
        }
        Err(ArchiveFailure::Contended {
            key: format!("{}/{}", change.conversation(), change.message_id()),
        })
    }

    /// Updates one record with `update` under compare-and-swap; `None` when the record is gone.
    async fn update(
        &self,
        conversation: &str,
        message_id: &str,
        update: impl Fn(&mut ArchivedMessage) -> bool,
    ) -> Result<Option<ArchivedMessage>, ArchiveFailure> {
        for _ in 0..SAVE_ATTEMPTS {
            let Some(mut record) = self.store.load(conversation, message_id).await? else {
                return Ok(None);
            };
            let expected = record.version;
            if !update(&mut record) {
                return Ok(Some(record));
            }
            record.version = expected + 1;
            if self.store.save(&record, Some(expected)).await? {
                return Ok(Some(record));
            }
        }
        Err(ArchiveFailure::Contended {
            key: format!("{conversation}/{message_id}"),
        })
    }

    async fn fetch_media(
        &self,
        record: ArchivedMessage,
        clients: &Clients,
        deadline: Instant,
        last_attempt: bool,
    ) -> Result<(), ArchiveFailure> {
        let pending: Vec<Media> = record
            .media
            .iter()
            .filter(|m| m.state == MediaState::Pending)
            .cloned()
            .collect();
        let mut first_failure = None;
        // Each file gets its share of the time, and the record's writes keep theirs, so that one
        // file that keeps failing cannot leave the others untried.
        let now = Instant::now();
        let store_reserve = deadline
            .saturating_duration_since(now)
            .min(STORE_RESERVE * 5)
            / 5;
        let fetch_until = deadline.checked_sub(store_reserve).unwrap_or(now);
        let files = pending.len();
        for (done, media) in pending.into_iter().enumerate() {
            let now = Instant::now();
            let share = fetch_until.saturating_duration_since(now) / (files - done) as u32;
            let state = match self.download(&media.source, clients, now + share).await {
                Ok(download) => {
                    let bytes = download.bytes.len() as u64;
                    self.media
                        .put(&media.object_key, &download.content_type, download.bytes)
                        .await?;
                    MediaState::Stored {
                        content_type: download.content_type,
                        bytes,
                    }
                }
                Err(Fetch::Permanent(reason)) => {
                    tracing::warn!(target: "archive", object_key = %media.object_key, %reason, "media not archived");
                    MediaState::Failed { reason }
                }
                Err(Fetch::Later(source)) if last_attempt => {
                    let reason = format!("still unavailable at the last attempt: {source}");
                    tracing::warn!(target: "archive", object_key = %media.object_key, %reason, "media not archived");
                    MediaState::Failed { reason }
                }
                Err(Fetch::Later(source)) => {
                    tracing::warn!(target: "archive", object_key = %media.object_key, error = %source, "media not fetched yet; the event will be retried");
                    first_failure.get_or_insert(ArchiveFailure::Fetch {
                        object_key: media.object_key.clone(),
                        source,
                    });
                    continue;
                }
            };
            let role = media.role.clone();
            let updated = self
                .update(&record.conversation, &record.message_id, |r| {
                    match r.media.iter_mut().find(|m| m.role == role) {
                        Some(m) if r.state == MessageState::Stored => {
                            m.state = state.clone();
                            true
                        }
                        _ => false,
                    }
                })
                .await?;
            // Unsent (or expired) while the file was on its way: it must not stay.
            if updated.is_none_or(|r| r.state != MessageState::Stored) {
                self.media.delete(&media.object_key).await?;
            }
        }
        match first_failure {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }

    async fn download(
        &self,
        source: &MediaSource,
        clients: &Clients,
        deadline: Instant,
    ) -> Result<Download, Fetch> {
        let result = match source {
            MediaSource::LineContent {
                message_id,
                preview,
            } => {
                let Some(line) = &clients.line else {
                    return Err(Fetch::Permanent(
                        "LINE_CHANNEL_ACCESS_TOKEN is not set: LINE content cannot be fetched"
                            .into(),
                    ));
                };
                line.content(
                    message_id,
                    *preview,
                    deadline,
                    self.config.max_media_bytes,
                    Some(&self.in_flight),
                )
                .await
            }
            MediaSource::Url { url } => {
                crate::clients::download(
                    "media URL",
                    || self.http.get(url),
                    deadline,
                    self.config.max_media_bytes,
                    Some(&self.in_flight),
                )
                .await
            }
        };
        result.map_err(|error| match error {
            ApiError::Unavailable { .. } => Fetch::Later(error),
            permanent => Fetch::Permanent(permanent.to_string()),
        })
    }

    /// Deletes an unsent message's files, then forgets them.
    async fn delete_media(&self, record: ArchivedMessage) -> Result<(), ArchiveFailure> {
        if record.pending_deletes.is_empty() {
            return Ok(());
        }
        for key in &record.pending_deletes {
            self.media.delete(key).await?;
        }
        self.update(&record.conversation, &record.message_id, |r| {
            let changed = !r.pending_deletes.is_empty();
            r.pending_deletes.clear();
            changed
        })
        .await?;
        Ok(())
    }

    async fn profile(
        &self,
        conversation: &str,
        user_id: &str,
        clients: &Clients,
        deadline: Instant,
    ) -> Result<(), ArchiveFailure> {
        let Some(line) = &clients.line else {
            tracing::warn!(target: "archive", "LINE_CHANNEL_ACCESS_TOKEN is not set: profile not archived");
            return Ok(());
        };
        let profile = match line.profile(user_id, deadline).await {
            Ok(profile) => profile,
            Err(error @ ApiError::Unavailable { .. }) => {
                return Err(ArchiveFailure::Fetch {
                    object_key: format!("profile {conversation}"),
                    source: error,
                });
            }
            Err(error) => {
                tracing::warn!(target: "archive", %error, "profile not archived");
                return Ok(());
            }
        };
        let now = now_ms();
        self.store
            .save_profile(&ArchivedProfile {
                conversation: conversation.to_owned(),
                user_id: user_id.to_owned(),
                display_name: profile.display_name,
                picture_url: profile.picture_url,
                status_message: profile.status_message,
                updated_at: now,
                expires_at_ms: self.expires_at(now),
            })
            .await?;
        Ok(())
    }
}

enum Fetch {
    Permanent(String),
    Later(ApiError),
}

fn now_ms() -> i64 {
    crate::clock::now_ms()
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

    #[test]
    fn object_keys_are_safe() {
        assert_eq!(
            object_key("meta:1:2", "m_a/b+c", "attachment-0"),
            "media/meta:1:2/m_a_b_c/attachment-0"
        );
    }
}
