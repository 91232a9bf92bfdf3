//! Embedded, durable adapters on SQLite, for the local pipeline: a queue with SQS's contract and
//! an idempotency store with DynamoDB's, in one file (the archive's tables are there too:
//! [`super::sqlite_archive`]).
//!
//! SQLite because it is one file, needs no server, survives a crash (write-ahead log with
//! `synchronous = FULL`: a message is on disk before the ingress answers `200`), and its
//! transactions give the queue's receive and the store's conditional claim the same atomicity as
//! SQS and DynamoDB.
//!
//! The queue keeps SQS's semantics: a received message is invisible for the visibility timeout
//! and comes back if it is not deleted; each receive counts; a message received `max_receives`
//! times without being deleted moves to the dead-letter state at its next receive, where it can be
//! listed and redriven.

use crate::ports::{
    Claim, ClaimError, ClaimStore, DeadLetterError, DeadLetterQueue, EnqueueError, EventQueue,
    IdempotencyStore, QueueMessage, Release, StoreError,
};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;
use tokio::time::Instant;

/// A SQLite database holding the queue and the idempotency records.
pub struct SqliteDb {
    connection: Mutex<Connection>,
}

/// A SQLite operation failed.
#[derive(Debug, thiserror::Error)]
#[error("sqlite {operation}: {source}")]
pub struct SqliteError {
    pub operation: &'static str,
    #[source]
    pub source: rusqlite::Error,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

impl SqliteDb {
    /// Opens (and creates, if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Arc<SqliteDb>, SqliteError> {
        let error = |operation| move |source| SqliteError { operation, source };
        let connection = Connection::open(path).map_err(error("open"))?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = FULL;
                 PRAGMA busy_timeout = 5000;
                 CREATE TABLE IF NOT EXISTS queue (
                     id INTEGER PRIMARY KEY AUTOINCREMENT,
                     key TEXT NOT NULL,
                     conversation TEXT NOT NULL,
                     platform TEXT NOT NULL,
                     body TEXT NOT NULL,
                     enqueued_at INTEGER NOT NULL,
                     visible_at INTEGER NOT NULL,
                     receive_count INTEGER NOT NULL DEFAULT 0,
                     dead_at INTEGER,
                     last_error TEXT
                 );
                 CREATE INDEX IF NOT EXISTS queue_ready ON queue (dead_at, visible_at, id);
                 CREATE TABLE IF NOT EXISTS idempotency (
                     id TEXT PRIMARY KEY,
                     status TEXT NOT NULL,
                     expiration INTEGER NOT NULL,
                     in_progress_expiration INTEGER NOT NULL,
                     owner TEXT,
                     failures INTEGER NOT NULL DEFAULT 0,
                     last_error TEXT
                 );
                 CREATE TABLE IF NOT EXISTS claims (
                     object TEXT PRIMARY KEY,
                     bytes BLOB NOT NULL
                 );
                 CREATE TABLE IF NOT EXISTS archive_messages (
                     conversation TEXT NOT NULL,
                     message_id TEXT NOT NULL,
                     order_key TEXT NOT NULL,
                     state TEXT NOT NULL,
                     version INTEGER NOT NULL,
                     expires_at INTEGER NOT NULL,
                     record TEXT NOT NULL,
                     PRIMARY KEY (conversation, message_id)
                 );
                 CREATE INDEX IF NOT EXISTS archive_history
                     ON archive_messages (conversation, order_key);
                 CREATE TABLE IF NOT EXISTS archive_profiles (
                     conversation TEXT NOT NULL,
                     user_id TEXT NOT NULL,
                     expires_at INTEGER NOT NULL,
                     record TEXT NOT NULL,
                     PRIMARY KEY (conversation, user_id)
                 );
                 CREATE TABLE IF NOT EXISTS archive_media (
                     key TEXT PRIMARY KEY,
                     content_type TEXT NOT NULL,
                     bytes BLOB NOT NULL
                 );",
            )
            .map_err(error("create schema"))?;
        // Databases made by earlier versions lack the claim's owner and failure count.
        for (column, definition) in [
            ("owner", "TEXT"),
            ("failures", "INTEGER NOT NULL DEFAULT 0"),
            ("last_error", "TEXT"),
        ] {
            let present: bool = connection
                .query_row(
                    "SELECT COUNT(*) > 0 FROM pragma_table_info('idempotency') WHERE name = ?1",
                    params![column],
                    |row| row.get(0),
                )
                .map_err(error("read schema"))?;
            if !present {
                connection
                    .execute_batch(&format!(
                        "ALTER TABLE idempotency ADD COLUMN {column} {definition}"
                    ))
                    .map_err(error("upgrade schema"))?;
            }
        }
        Ok(Arc::new(SqliteDb {
            connection: Mutex::new(connection),
        }))
    }

    /// Runs `work` on the connection on a blocking thread.
    pub(crate) async fn run<T, F>(
        self: &Arc<Self>,
        operation: &'static str,
        work: F,
    ) -> Result<T, SqliteError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let db = Arc::clone(self);
        let joined = tokio::task::spawn_blocking(move || {
            let mut connection = db.connection.lock().unwrap_or_else(|e| e.into_inner());
            work(&mut connection)
        })
        .await;
        match joined {
            Ok(result) => result.map_err(|source| SqliteError { operation, source }),
            Err(_) => Err(SqliteError {
                operation,
                source: rusqlite::Error::ExecuteReturnedResults,
            }),
        }
    }
}

/// A message handed out by [`SqliteQueue::receive`].
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub id: i64,
    pub body: String,
    /// How many times it has been received, this time included.
    pub receive_count: i64,
}

/// A message in the dead-letter state.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub id: i64,
    pub key: String,
    pub platform: String,
    pub conversation: String,
    pub receive_count: i64,
    pub dead_at_ms: i64,
    pub last_error: Option<String>,
}

/// The event queue in SQLite.
#[derive(Clone)]
pub struct SqliteQueue {
    db: Arc<SqliteDb>,
    arrived: Arc<Notify>,
    max_receives: i64,
}

impl SqliteQueue {
    /// A queue whose messages go to the dead-letter state after `max_receives` receives.
    pub fn new(db: Arc<SqliteDb>, max_receives: u32) -> SqliteQueue {
        SqliteQueue {
            db,
            arrived: Arc::new(Notify::new()),
            max_receives: i64::from(max_receives.max(1)),
        }
    }

    /// Waits until a message may have arrived, or `timeout` passes.
    pub async fn wait_for_messages(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.arrived.notified()).await;
    }

    /// Receives up to `max` visible messages, hiding them for `visibility`. Messages received
    /// `max_receives` times already go to the dead-letter state instead.
    pub async fn receive(
        &self,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<Received>, SqliteError> {
        let max_receives = self.max_receives;
        let visibility = visibility.as_millis() as i64;
        self.db
            .run("receive", move |connection| {
                let now = now_ms();
                let transaction = connection.transaction()?;
                let candidates: Vec<(i64, String, i64)> = {
                    let mut statement = transaction.prepare_cached(
                        "SELECT id, body, receive_count FROM queue
                         WHERE dead_at IS NULL AND visible_at <= ?1 ORDER BY id LIMIT ?2",
                    )?;
                    statement
                        .query_map(params![now, max as i64], |row| {
                            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                        })?
                        .collect::<rusqlite::Result<_>>()?
                };
                let mut received = Vec::with_capacity(candidates.len());
                for (id, body, count) in candidates {
                    if count >= max_receives {
                        transaction.execute(
                            "UPDATE queue SET dead_at = ?1 WHERE id = ?2",
                            params![now, id],
                        )?;
                        continue;
                    }
                    transaction.execute(
                        "UPDATE queue SET receive_count = receive_count + 1, visible_at = ?1 WHERE id = ?2",
                        params![now + visibility, id],
                    )?;
                    received.push(Received {
                        id,
                        body,
                        receive_count: count + 1,
                    });
                }
                transaction.commit()?;
                Ok(received)
            })
            .await
    }

    /// Deletes handled messages (not those the worker dead-lettered meanwhile).
    pub async fn delete(&self, ids: Vec<i64>) -> Result<(), SqliteError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.db
            .run("delete", move |connection| {
                let transaction = connection.transaction()?;
                for id in ids {
                    transaction.execute(
                        "DELETE FROM queue WHERE id = ?1 AND dead_at IS NULL",
                        params![id],
                    )?;
                }
                transaction.commit()
            })
            .await
    }

    /// Moves a message to the dead-letter state with its reason.
    pub async fn kill(&self, id: i64, reason: String) -> Result<bool, SqliteError> {
        self.db
            .run("dead-letter", move |connection| {
                connection
                    .execute(
                        "UPDATE queue SET dead_at = ?1, last_error = ?2 WHERE id = ?3",
                        params![now_ms(), reason, id],
                    )
                    .map(|changed| changed > 0)
            })
            .await
    }

    /// Notes why a message failed; it stays invisible until its visibility timeout ends.
    pub async fn record_failure(&self, id: i64, reason: String) -> Result<(), SqliteError> {
        self.db
            .run("record failure", move |connection| {
                connection
                    .execute(
                        "UPDATE queue SET last_error = ?1 WHERE id = ?2",
                        params![reason, id],
                    )
                    .map(|_| ())
            })
            .await
    }

    /// Messages waiting (not dead), visible or not.
    pub async fn pending(&self) -> Result<i64, SqliteError> {
        self.db
            .run("count", |connection| {
                connection.query_row(
                    "SELECT COUNT(*) FROM queue WHERE dead_at IS NULL",
                    [],
                    |row| row.get(0),
                )
            })
            .await
    }

    /// Every message in the dead-letter state, oldest first.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, SqliteError> {
        self.db
            .run("list dead letters", |connection| {
                let mut statement = connection.prepare(
                    "SELECT id, key, platform, conversation, receive_count, dead_at, last_error
                     FROM queue WHERE dead_at IS NOT NULL ORDER BY id",
                )?;
                let rows = statement.query_map([], |row| {
                    Ok(DeadLetter {
                        id: row.get(0)?,
                        key: row.get(1)?,
                        platform: row.get(2)?,
                        conversation: row.get(3)?,
                        receive_count: row.get(4)?,
                        dead_at_ms: row.get(5)?,
                        last_error: row.get(6)?,
                    })
                })?;
                rows.collect()
            })
            .await
    }

    /// Puts dead letters back in the queue with a fresh receive count: one (`Some(id)`) or all.
    /// Returns how many moved.
    pub async fn redrive(&self, id: Option<i64>) -> Result<usize, SqliteError> {
        let moved = self
            .db
            .run("redrive", move |connection| {
                let now = now_ms();
                match id {
                    Some(id) => connection.execute(
                        "UPDATE queue SET dead_at = NULL, receive_count = 0, visible_at = ?1
                         WHERE id = ?2 AND dead_at IS NOT NULL",
                        params![now, id],
                    ),
                    None => connection.execute(
                        "UPDATE queue SET dead_at = NULL, receive_count = 0, visible_at = ?1
                         WHERE dead_at IS NOT NULL",
                        params![now],
                    ),
                }
            })
            .await?;
        self.arrived.notify_one();
        Ok(moved)
    }
}

#[async_trait]
impl DeadLetterQueue for SqliteQueue {
    async fn dead_letter(
        &self,
        record: &crate::worker::QueueRecord,
        reason: &str,
    ) -> Result<(), DeadLetterError> {
        let failed = |reason: String| DeadLetterError {
            message_id: record.message_id.clone(),
            reason,
        };
        let id: i64 = record
            .message_id
            .parse()
            .map_err(|_| failed("not a message id of this queue".into()))?;
        match self.kill(id, reason.to_owned()).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(failed("no such message".into())),
            Err(error) => Err(failed(error.to_string())),
        }
    }
}

#[async_trait]
impl EventQueue for SqliteQueue {
    async fn send_all(
        &self,
        messages: &[QueueMessage],
        deadline: Instant,
    ) -> Result<(), EnqueueError> {
        let total = messages.len();
        let rows: Vec<(String, String, String, String)> = messages
            .iter()
            .map(|m| {
                (
                    m.key().to_owned(),
                    m.conversation().to_owned(),
                    m.platform.as_str().to_owned(),
                    m.body().to_owned(),
                )
            })
            .collect();
        let writing = self.db.run("enqueue", move |connection| {
            let now = now_ms();
            let transaction = connection.transaction()?;
            {
                let mut insert = transaction.prepare_cached(
                    "INSERT INTO queue (key, conversation, platform, body, enqueued_at, visible_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                )?;
                for (key, conversation, platform, body) in &rows {
                    insert.execute(params![key, conversation, platform, body, now])?;
                }
            }
            transaction.commit()
        });
        match tokio::time::timeout_at(deadline, writing).await {
            Ok(Ok(())) => {
                self.arrived.notify_one();
                Ok(())
            }
            Ok(Err(error)) => Err(EnqueueError {
                total,
                failed: total,
                reason: error.to_string(),
            }),
            Err(_) => Err(EnqueueError {
                total,
                failed: total,
                reason: "the database did not commit within the budget".into(),
            }),
        }
    }

    fn max_message_bytes(&self) -> usize {
        // SQLite takes any size this gateway accepts; keep SQS's limit so that what works
        // locally works on AWS (larger events go to the claim-check table).
        crate::enqueue::MAX_BATCH_BYTES - 64
    }
}

/// The idempotency store in SQLite, with the DynamoDB adapter's semantics.
#[derive(Clone)]
pub struct SqliteStore {
    db: Arc<SqliteDb>,
}

impl SqliteStore {
    pub fn new(db: Arc<SqliteDb>) -> SqliteStore {
        SqliteStore { db }
    }

    fn error(operation: &'static str, key: &str, error: SqliteError) -> StoreError {
        StoreError {
            operation,
            key: key.to_owned(),
            reason: error.to_string(),
        }
    }
}

#[async_trait]
impl IdempotencyStore for SqliteStore {
    async fn claim(
        &self,
        key: &str,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
        expires_at_ms: i64,
    ) -> Result<Claim, StoreError> {
        let (id, owner) = (key.to_owned(), owner.to_owned());
        self.db
            .run("claim", move |connection| {
                let transaction = connection.transaction()?;
                let existing: Option<(String, i64, i64, Option<String>, i64)> = transaction
                    .query_row(
                        "SELECT status, expiration, in_progress_expiration, owner, failures
                         FROM idempotency WHERE id = ?1",
                        params![id],
                        |row| {
                            Ok((
                                row.get(0)?,
                                row.get(1)?,
                                row.get(2)?,
                                row.get(3)?,
                                row.get(4)?,
                            ))
                        },
                    )
                    .optional()?;
                let mut failures = 0;
                if let Some((status, expiration, lease_until, holder, count)) = existing {
                    // The DynamoDB adapter's condition, at the same (seconds) granularity.
                    if expiration >= now_ms / 1000 {
                        match status.as_str() {
                            "COMPLETED" => return Ok(Claim::AlreadyCompleted),
                            "INPROGRESS"
                                if lease_until >= now_ms && holder.as_deref() != Some(&owner) =>
                            {
                                return Ok(Claim::InProgressElsewhere {
                                    until_ms: lease_until,
                                });
                            }
                            _ => failures = count,
                        }
                    }
                }
                transaction.execute(
                    "INSERT OR REPLACE INTO idempotency
                     (id, status, expiration, in_progress_expiration, owner, failures)
                     VALUES (?1, 'INPROGRESS', ?2, ?3, ?4, ?5)",
                    params![id, expires_at_ms / 1000, lease_until_ms, owner, failures],
                )?;
                transaction.commit()?;
                Ok(Claim::Claimed {
                    attempt: u32::try_from(failures).unwrap_or(u32::MAX - 1) + 1,
                })
            })
            .await
            .map_err(|e| Self::error("claim", key, e))
    }

    async fn complete(&self, key: &str, expires_at_ms: i64) -> Result<(), StoreError> {
        let id = key.to_owned();
        self.db
            .run("complete", move |connection| {
                connection
                    .execute(
                        "INSERT OR REPLACE INTO idempotency (id, status, expiration, in_progress_expiration)
                         VALUES (?1, 'COMPLETED', ?2, 0)",
                        params![id, expires_at_ms / 1000],
                    )
                    .map(|_| ())
            })
            .await
            .map_err(|e| Self::error("complete", key, e))
    }

    async fn release(&self, key: &str, owner: &str, release: Release) -> Result<(), StoreError> {
        let (id, owner) = (key.to_owned(), owner.to_owned());
        self.db
            .run("release", move |connection| {
                match release {
                    Release::Retry { reason } => connection.execute(
                        "UPDATE idempotency SET status = 'FAILED', failures = failures + 1,
                         last_error = ?3 WHERE id = ?1 AND status = 'INPROGRESS' AND owner = ?2",
                        params![id, owner, reason],
                    ),
                    Release::Forget => connection.execute(
                        "DELETE FROM idempotency WHERE id = ?1 AND status = 'INPROGRESS' AND owner = ?2",
                        params![id, owner],
                    ),
                }
                .map(|_| ())
            })
            .await
            .map_err(|e| Self::error("release", key, e))
    }
}

/// Claim-check objects in the same database: what works locally works on AWS, where they go to S3.
#[derive(Clone)]
pub struct SqliteClaims {
    db: Arc<SqliteDb>,
}

impl SqliteClaims {
    pub fn new(db: Arc<SqliteDb>) -> SqliteClaims {
        SqliteClaims { db }
    }
}

fn claim_error(operation: &'static str, object: &str, error: SqliteError) -> ClaimError {
    ClaimError {
        operation,
        object: object.to_owned(),
        reason: error.to_string(),
    }
}

#[async_trait]
impl ClaimStore for SqliteClaims {
    async fn put(&self, object: &str, bytes: bytes::Bytes) -> Result<(), ClaimError> {
        let name = object.to_owned();
        self.db
            .run("put claim", move |connection| {
                connection
                    .execute(
                        "INSERT OR REPLACE INTO claims (object, bytes) VALUES (?1, ?2)",
                        params![name, bytes.as_ref()],
                    )
                    .map(|_| ())
            })
            .await
            .map_err(|e| claim_error("put", object, e))
    }

    async fn get(&self, object: &str) -> Result<Option<bytes::Bytes>, ClaimError> {
        let name = object.to_owned();
        self.db
            .run("get claim", move |connection| {
                connection
                    .query_row(
                        "SELECT bytes FROM claims WHERE object = ?1",
                        params![name],
                        |row| row.get::<_, Vec<u8>>(0),
                    )
                    .optional()
            })
            .await
            .map(|found| found.map(bytes::Bytes::from))
            .map_err(|e| claim_error("get", object, e))
    }

    async fn delete(&self, object: &str) -> Result<(), ClaimError> {
        let name = object.to_owned();
        self.db
            .run("delete claim", move |connection| {
                connection
                    .execute("DELETE FROM claims WHERE object = ?1", params![name])
                    .map(|_| ())
            })
            .await
            .map_err(|e| claim_error("delete", object, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Platform;

    fn message(key: &str) -> QueueMessage {
        QueueMessage::new(key, "c", Platform::Line, &format!("{{\"key\":\"{key}\"}}"))
    }

    fn temp_db() -> (tempfile::TempDir, Arc<SqliteDb>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = SqliteDb::open(&dir.path().join("gateway.db")).expect("open");
        (dir, db)
    }

    #[tokio::test]
    async fn the_queue_keeps_the_sqs_contract() {
        let (_dir, db) = temp_db();
        let queue = SqliteQueue::new(db, 2);
        let deadline = Instant::now() + Duration::from_secs(5);
        queue
            .send_all(&[message("a"), message("b")], deadline)
            .await
            .expect("send");
        let first = queue
            .receive(10, Duration::from_millis(1_000))
            .await
            .expect("receive");
        assert_eq!(
            first.iter().map(|r| r.receive_count).collect::<Vec<_>>(),
            [1, 1]
        );
        assert!(
            queue
                .receive(10, Duration::from_millis(1_000))
                .await
                .expect("receive")
                .is_empty(),
            "invisible"
        );
        queue.delete(vec![first[0].id]).await.expect("delete");
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        let second = queue
            .receive(10, Duration::from_millis(1_000))
            .await
            .expect("receive");
        assert_eq!(second.len(), 1, "b came back after its visibility timeout");
        assert_eq!(second[0].receive_count, 2);
        queue
            .record_failure(second[0].id, "handler failed".into())
            .await
            .expect("note");
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        assert!(
            queue
                .receive(10, Duration::from_millis(1_000))
                .await
                .expect("receive")
                .is_empty(),
            "dead after 2 receives"
        );
        let dead = queue.dead_letters().await.expect("list");
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].key, "b");
        assert_eq!(dead[0].last_error.as_deref(), Some("handler failed"));
        assert_eq!(queue.pending().await.expect("count"), 0);
        assert_eq!(queue.redrive(None).await.expect("redrive"), 1);
        let again = queue
            .receive(10, Duration::from_millis(1_000))
            .await
            .expect("receive");
        assert_eq!((again.len(), again[0].receive_count), (1, 1));
    }

    #[tokio::test]
    async fn messages_survive_reopening() {
        let (dir, db) = temp_db();
        let queue = SqliteQueue::new(db, 5);
        queue
            .send_all(&[message("kept")], Instant::now() + Duration::from_secs(5))
            .await
            .expect("send");
        drop(queue);
        let reopened = SqliteQueue::new(
            SqliteDb::open(&dir.path().join("gateway.db")).expect("open"),
            5,
        );
        let received = reopened
            .receive(10, Duration::from_secs(1))
            .await
            .expect("receive");
        assert_eq!(received.len(), 1);
    }

    #[tokio::test]
    async fn the_store_keeps_the_contract() {
        let (_dir, db) = temp_db();
        let store = SqliteStore::new(db);
        crate::adapters::conformance::check_idempotency_store(&store, "sqlite")
            .await
            .expect("contract");
    }
}
