//! The conversation archive's records in DynamoDB: one table, one item per message and per
//! profile, a conversation's history read back in order with one query of the `by-time` index.
//!
//! | attribute | type | meaning |
//! | --- | --- | --- |
//! | `pk` | S | `conversation#{conversation}` (partition key) |
//! | `sk` | S | `message#{message id}` or `profile#{user id}` (sort key) |
//! | `order` | S | `{time:015}#{message id}`, only on stored messages: the sort key of the sparse `by-time` index (`pk`, `order`), so unsent messages and profiles are not in it |
//! | `version` | N | compare-and-swap version, bumped by every write |
//! | `expires_at` | N | epoch **seconds**: the table's TTL attribute |
//! | `state`, `platform`, `kind`, `sender`, `sent_at`, `text` | S/N | the record's main fields, readable in the console |
//! | `record` | S | the whole record as JSON (media, the event as received) |
//!
//! Every write is one `PutItem` conditioned on the version read before (or on the item's
//! absence). Expiry is checked in code on read, since TTL deletes late (and moto never does).

use crate::archive::{ArchivedMessage, ArchivedProfile, MessageState};
use crate::ports::{ArchiveError, ArchiveStore};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// The name of the history index.
pub const HISTORY_INDEX: &str = "by-time";

/// The archive table (partition key `pk`, sort key `sk`, index `by-time` on `pk` and `order`).
#[derive(Debug, Clone)]
pub struct DynamoDbArchive {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

fn failed<E: std::error::Error + 'static>(
    operation: &'static str,
    key: &str,
    error: &SdkError<E>,
) -> ArchiveError {
    ArchiveError {
        operation,
        key: key.to_owned(),
        reason: DisplayErrorContext(error).to_string(),
    }
}

fn unreadable(operation: &'static str, key: &str, reason: impl ToString) -> ArchiveError {
    ArchiveError {
        operation,
        key: key.to_owned(),
        reason: reason.to_string(),
    }
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn partition(conversation: &str) -> AttributeValue {
    s(format!("conversation#{conversation}"))
}

fn record_json<T: serde::de::DeserializeOwned>(
    item: &HashMap<String, AttributeValue>,
    operation: &'static str,
    key: &str,
) -> Result<T, ArchiveError> {
    let json = item
        .get("record")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| unreadable(operation, key, "item without its record attribute"))?;
    serde_json::from_str(json)
        .map_err(|e| unreadable(operation, key, crate::json_error::JsonError::from(e)))
}

impl DynamoDbArchive {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> DynamoDbArchive {
        DynamoDbArchive {
            client,
            table: table.into(),
        }
    }

    /// Pages through a query until `limit` unexpired records are read.
    async fn query<T: serde::de::DeserializeOwned>(
        &self,
        conversation: &str,
        history: bool,
        limit: usize,
        now_ms: i64,
        expires: impl Fn(&T) -> i64,
    ) -> Result<Vec<T>, ArchiveError> {
        let operation = if history { "history" } else { "profiles" };
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let mut request = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":pk", partition(conversation))
                .set_exclusive_start_key(start.take());
            request = if history {
                request
                    .index_name(HISTORY_INDEX)
                    .key_condition_expression("pk = :pk")
                    .scan_index_forward(true)
            } else {
                request
                    .key_condition_expression("pk = :pk AND begins_with(sk, :profile)")
                    .expression_attribute_values(":profile", s("profile#"))
            };
            let page = request
                .send()
                .await
                .map_err(|e| failed(operation, conversation, &e))?;
            for item in page.items() {
                let record: T = record_json(item, operation, conversation)?;
                if expires(&record) > now_ms {
                    found.push(record);
                    if found.len() == limit {
                        return Ok(found);
                    }
                }
            }
            match page.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => return Ok(found),
            }
        }
    }
}

#[async_trait]
impl ArchiveStore for DynamoDbArchive {
    async fn load(
        &self,
        conversation: &str,
        message_id: &str,
    ) -> Result<Option<ArchivedMessage>, ArchiveError> {
        let key = format!("{conversation}/{message_id}");
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", partition(conversation))
            .key("sk", s(format!("message#{message_id}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| failed("load", &key, &e))?;
        output
            .item()
            .map(|item| record_json(item, "load", &key))
            .transpose()
    }

    async fn save(
        &self,
        record: &ArchivedMessage,
        expected_version: Option<u64>,
    ) -> Result<bool, ArchiveError> {
        let key = format!("{}/{}", record.conversation, record.message_id);
        let json = serde_json::to_string(record).map_err(|e| unreadable("save", &key, e))?;
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", partition(&record.conversation))
            .item("sk", s(format!("message#{}", record.message_id)))
            .item("version", n(record.version as i64))
            .item("expires_at", n(record.expires_at_ms / 1000))
            .item("platform", s(record.platform.as_str()))
            .item("kind", s(record.kind.clone()))
            .item("record", s(json));
        request = match record.state {
            MessageState::Stored => request
                .item("state", s("stored"))
                .item("order", s(record.order_key())),
            MessageState::Unsent => request.item("state", s("unsent")),
        };
        if let Some(sender) = &record.sender {
            request = request.item("sender", s(sender.clone()));
        }
        if let Some(sent_at) = record.sent_at {
            request = request.item("sent_at", n(sent_at));
        }
        if let Some(text) = &record.text {
            request = request.item("text", s(text.clone()));
        }
        request = match expected_version {
            None => request.condition_expression("attribute_not_exists(pk)"),
            Some(version) => request
                .condition_expression("#version = :expected")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":expected", n(version as i64)),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(context))
                if matches!(
                    context.err(),
                    PutItemError::ConditionalCheckFailedException(_)
                ) =>
            {
                Ok(false)
            }
            Err(error) => Err(failed("save", &key, &error)),
        }
    }

    async fn history(
        &self,
        conversation: &str,
        limit: usize,
        now_ms: i64,
    ) -> Result<Vec<ArchivedMessage>, ArchiveError> {
        self.query(conversation, true, limit, now_ms, |r: &ArchivedMessage| {
            r.expires_at_ms
        })
        .await
    }

    async fn save_profile(&self, profile: &ArchivedProfile) -> Result<(), ArchiveError> {
        let key = format!("{}/{}", profile.conversation, profile.user_id);
        let json =
            serde_json::to_string(profile).map_err(|e| unreadable("save profile", &key, e))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", partition(&profile.conversation))
            .item("sk", s(format!("profile#{}", profile.user_id)))
            .item("expires_at", n(profile.expires_at_ms / 1000))
            .item("display_name", s(profile.display_name.clone()))
            .item("record", s(json))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| failed("save profile", &key, &e))
    }

    async fn profiles(
        &self,
        conversation: &str,
        now_ms: i64,
    ) -> Result<Vec<ArchivedProfile>, ArchiveError> {
        self.query(
            conversation,
            false,
            usize::MAX,
            now_ms,
            |p: &ArchivedProfile| p.expires_at_ms,
        )
        .await
    }
}
