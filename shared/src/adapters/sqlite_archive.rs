//! The conversation archive on SQLite, for the local pipeline: records, profiles and media files
//! in the same database file as the queue (see [`super::sqlite::SqliteDb`]).

use super::sqlite::{SqliteDb, SqliteError};
use crate::archive::{ArchivedMessage, ArchivedProfile, MessageState};
use crate::ports::{ArchiveError, ArchiveStore, MediaStore};
use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::{OptionalExtension, params};
use std::sync::Arc;

/// The archive's records and media in SQLite.
#[derive(Clone)]
pub struct SqliteArchive {
    db: Arc<SqliteDb>,
}

fn failed(operation: &'static str, key: &str, reason: impl ToString) -> ArchiveError {
    ArchiveError {
        operation,
        key: key.to_owned(),
        reason: reason.to_string(),
    }
}

fn decode<T: serde::de::DeserializeOwned>(json: &str) -> rusqlite::Result<T> {
    // A record holds messages: its errors must not quote it.
    serde_json::from_str(json).map_err(|e| {
        rusqlite::Error::ToSqlConversionFailure(Box::new(crate::json_error::JsonError::from(e)))
    })
}

impl SqliteArchive {
    pub fn new(db: Arc<SqliteDb>) -> SqliteArchive {
        SqliteArchive { db }
    }

    /// Every conversation with stored messages, and how many: for the read CLI.
    pub async fn conversations(&self, now_ms: i64) -> Result<Vec<(String, i64)>, ArchiveError> {
        self.db
            .run("list conversations", move |connection| {
                let mut statement = connection.prepare(
                    "SELECT conversation, COUNT(*) FROM archive_messages
                     WHERE state = 'stored' AND expires_at > ?1
                     GROUP BY conversation ORDER BY conversation",
                )?;
                let rows =
                    statement.query_map(params![now_ms], |row| Ok((row.get(0)?, row.get(1)?)))?;
                rows.collect()
            })
            .await
            .map_err(|e: SqliteError| failed("list conversations", "*", e))
    }
}

#[async_trait]
impl ArchiveStore for SqliteArchive {
    async fn load(
        &self,
        conversation: &str,
        message_id: &str,
    ) -> Result<Option<ArchivedMessage>, ArchiveError> {
        let (c, m) = (conversation.to_owned(), message_id.to_owned());
        self.db
            .run("load", move |connection| {
                let json: Option<String> = connection
                    .query_row(
                        "SELECT record FROM archive_messages WHERE conversation = ?1 AND message_id = ?2",
                        params![c, m],
                        |row| row.get(0),
                    )
                    .optional()?;
                json.map(|j| decode(&j)).transpose()
            })
            .await
            .map_err(|e| failed("load", &format!("{conversation}/{message_id}"), e))
    }

    async fn save(
        &self,
        record: &ArchivedMessage,
        expected_version: Option<u64>,
    ) -> Result<bool, ArchiveError> {
        let key = format!("{}/{}", record.conversation, record.message_id);
        let json = serde_json::to_string(record).map_err(|e| failed("save", &key, e))?;
        let (c, m, order) = (
            record.conversation.clone(),
            record.message_id.clone(),
            record.order_key(),
        );
        let state = match record.state {
            MessageState::Stored => "stored",
            MessageState::Unsent => "unsent",
        };
        let (version, expires_at) = (record.version as i64, record.expires_at_ms);
        self.db
            .run("save", move |connection| {
                let transaction = connection.transaction()?;
                let current: Option<i64> = transaction
                    .query_row(
                        "SELECT version FROM archive_messages WHERE conversation = ?1 AND message_id = ?2",
                        params![c, m],
                        |row| row.get(0),
                    )
                    .optional()?;
                if current != expected_version.map(|v| v as i64) {
                    return Ok(false);
                }
                transaction.execute(
                    "INSERT OR REPLACE INTO archive_messages
                     (conversation, message_id, order_key, state, version, expires_at, record)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![c, m, order, state, version, expires_at, json],
                )?;
                transaction.commit()?;
                Ok(true)
            })
            .await
            .map_err(|e| failed("save", &key, e))
    }

    async fn history(
        &self,
        conversation: &str,
        limit: usize,
        now_ms: i64,
    ) -> Result<Vec<ArchivedMessage>, ArchiveError> {
        let c = conversation.to_owned();
        self.db
            .run("history", move |connection| {
                let mut statement = connection.prepare(
                    "SELECT record FROM archive_messages
                     WHERE conversation = ?1 AND state = 'stored' AND expires_at > ?2
                     ORDER BY order_key LIMIT ?3",
                )?;
                let rows = statement.query_map(params![c, now_ms, limit as i64], |row| {
                    row.get::<_, String>(0)
                })?;
                rows.map(|json| decode(&json?)).collect()
            })
            .await
            .map_err(|e| failed("history", conversation, e))
    }

    async fn save_profile(&self, profile: &ArchivedProfile) -> Result<(), ArchiveError> {
        let key = format!("{}/{}", profile.conversation, profile.user_id);
        let json = serde_json::to_string(profile).map_err(|e| failed("save profile", &key, e))?;
        let (c, u, expires_at) = (
            profile.conversation.clone(),
            profile.user_id.clone(),
            profile.expires_at_ms,
        );
        self.db
            .run("save profile", move |connection| {
                connection.execute(
                    "INSERT OR REPLACE INTO archive_profiles (conversation, user_id, expires_at, record)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![c, u, expires_at, json],
                )
            })
            .await
            .map(|_| ())
            .map_err(|e| failed("save profile", &key, e))
    }

    async fn profiles(
        &self,
        conversation: &str,
        now_ms: i64,
    ) -> Result<Vec<ArchivedProfile>, ArchiveError> {
        let c = conversation.to_owned();
        self.db
            .run("profiles", move |connection| {
                let mut statement = connection.prepare(
                    "SELECT record FROM archive_profiles
                     WHERE conversation = ?1 AND expires_at > ?2 ORDER BY user_id",
                )?;
                let rows =
                    statement.query_map(params![c, now_ms], |row| row.get::<_, String>(0))?;
                rows.map(|json| decode(&json?)).collect()
            })
            .await
            .map_err(|e| failed("profiles", conversation, e))
    }
}

#[async_trait]
impl MediaStore for SqliteArchive {
    async fn put(&self, key: &str, content_type: &str, bytes: Bytes) -> Result<(), ArchiveError> {
        let (k, t) = (key.to_owned(), content_type.to_owned());
        self.db
            .run("put media", move |connection| {
                connection.execute(
                    "INSERT OR REPLACE INTO archive_media (key, content_type, bytes) VALUES (?1, ?2, ?3)",
                    params![k, t, bytes.as_ref()],
                )
            })
            .await
            .map(|_| ())
            .map_err(|e| failed("put media", key, e))
    }

    async fn get(&self, key: &str) -> Result<Option<(String, Bytes)>, ArchiveError> {
        let k = key.to_owned();
        self.db
            .run("get media", move |connection| {
                connection
                    .query_row(
                        "SELECT content_type, bytes FROM archive_media WHERE key = ?1",
                        params![k],
                        |row| Ok((row.get(0)?, Bytes::from(row.get::<_, Vec<u8>>(1)?))),
                    )
                    .optional()
            })
            .await
            .map_err(|e| failed("get media", key, e))
    }

    async fn delete(&self, key: &str) -> Result<(), ArchiveError> {
        let k = key.to_owned();
        self.db
            .run("delete media", move |connection| {
                connection.execute("DELETE FROM archive_media WHERE key = ?1", params![k])
            })
            .await
            .map(|_| ())
            .map_err(|e| failed("delete media", key, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_sqlite_archive_keeps_the_contract() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let db = SqliteDb::open(&dir.path().join("archive.db")).expect("database");
        let archive = SqliteArchive::new(db);
        crate::adapters::conformance::check_archive(&archive, &archive, "sqlite")
            .await
            .expect("contract");
        let conversations = archive.conversations(i64::MAX - 1).await.expect("list");
        assert!(
            conversations.is_empty(),
            "everything expires at the end of time"
        );
    }
}
