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

mod object_key;
mod plan;
mod record;

pub use object_key::{object_key, safe_segment};
pub use plan::{Plan, plan};
pub use record::{
    ArchivedMessage, ArchivedProfile, Change, Delivery, Incoming, Media, MediaSource, MediaState,
    Merge, MessageState, merge,
};

use crate::bot::BotEvent;
use crate::clients::fetch::{FetchPolicy, sniff_content_type};
use crate::clients::{ApiError, Clients, Download};
use crate::ports::{ArchiveError, ArchiveStore, MediaStore};
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

/// The archive's settings.
#[derive(Debug, Clone)]
pub struct ArchiveConfig {
    pub retention: Duration,
    pub max_media_bytes: usize,
    /// The most bytes of media held in memory at once, across concurrent events (at least
    /// `max_media_bytes`).
    pub max_bytes_in_flight: usize,
    /// Where attachment URLs from payloads may be fetched from.
    pub fetch: FetchPolicy,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        ArchiveConfig {
            retention: DEFAULT_RETENTION,
            max_media_bytes: DEFAULT_MAX_MEDIA_BYTES,
            max_bytes_in_flight: DEFAULT_MAX_BYTES_IN_FLIGHT,
            fetch: FetchPolicy::default(),
        }
    }
}

impl ArchiveConfig {
    /// The defaults with `ARCHIVE_RETENTION_DAYS`, `ARCHIVE_MAX_MEDIA_BYTES`,
    /// `ARCHIVE_MAX_BYTES_IN_FLIGHT` and `MEDIA_ALLOWED_HOSTS` applied.
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
            fetch: FetchPolicy::from_vars(&var),
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

/// The archive: records, media, and the HTTP client that fetches media from payload URLs (only
/// from the platforms' media hosts: [`FetchPolicy`]).
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
            http: config.fetch.client(),
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
                self.change(&change, clients, event.deadline, last_attempt)
                    .await
            }
            Plan::Changes(changes) => {
                // Every change is tried; the first failure is reported (and the event retried:
                // the changes that were applied are then unchanged).
                let mut first_failure = None;
                for change in &changes {
                    if let Err(failure) = self
                        .change(change, clients, event.deadline, last_attempt)
                        .await
                    {
                        first_failure.get_or_insert(failure);
                    }
                }
                first_failure.map_or(Ok(()), Err)
            }
        }
    }

    async fn change(
        &self,
        change: &Change,
        clients: &Clients,
        deadline: Instant,
        last_attempt: bool,
    ) -> Result<(), ArchiveFailure> {
        match self.apply(change).await? {
            Some(record) if record.state == MessageState::Unsent => self.delete_media(record).await,
            Some(record) => {
                self.fetch_media(record, clients, deadline, last_attempt)
                    .await
            }
            None => Ok(()),
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
                    // The bytes' own type, never the server's claim: see `sniff_content_type`.
                    let content_type = sniff_content_type(&download.bytes);
                    self.media
                        .put(&media.object_key, &content_type, download.bytes)
                        .await?;
                    MediaState::Stored {
                        content_type,
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
                let url = match reqwest::Url::parse(url) {
                    Ok(url) => url,
                    Err(_) => return Err(Fetch::Permanent("not fetched: not a URL".into())),
                };
                if let Some(reason) = self.config.fetch.refuse(&url) {
                    return Err(Fetch::Permanent(format!("not fetched: {reason}")));
                }
                crate::clients::download(
                    None,
                    "media URL",
                    || self.http.get(url.clone()),
                    deadline,
                    self.config.max_media_bytes,
                    Some(&self.in_flight),
                )
                .await
            }
            MediaSource::WhatsappMedia { media_id } => {
                let Some(whatsapp) = &clients.whatsapp else {
                    return Err(Fetch::Permanent(
                        "WHATSAPP_ACCESS_TOKEN is not set: WhatsApp media cannot be fetched".into(),
                    ));
                };
                // The id gives a URL valid for about 5 minutes: asked for on every attempt.
                let info = match whatsapp.media_info(media_id, deadline).await {
                    Ok(info) => info,
                    Err(error @ ApiError::Unavailable { .. }) => return Err(Fetch::Later(error)),
                    Err(error) => return Err(Fetch::Permanent(error.to_string())),
                };
                if info
                    .file_size
                    .is_some_and(|size| size > self.config.max_media_bytes as u64)
                {
                    return Err(Fetch::Permanent(format!(
                        "larger than the limit of {} bytes",
                        self.config.max_media_bytes
                    )));
                }
                let url = match reqwest::Url::parse(&info.url) {
                    Ok(url) => url,
                    Err(_) => return Err(Fetch::Permanent("not fetched: not a URL".into())),
                };
                if let Some(reason) = self.config.fetch.refuse(&url) {
                    return Err(Fetch::Permanent(format!("not fetched: {reason}")));
                }
                crate::clients::download(
                    whatsapp.limiter(),
                    "WhatsApp media",
                    || whatsapp.authorize(self.http.get(url.clone())),
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
