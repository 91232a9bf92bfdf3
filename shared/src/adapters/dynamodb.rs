//! The DynamoDB adapter of [`IdempotencyStore`], with the record layout of AWS Lambda Powertools'
//! idempotency utility (so that its tooling and its users' habits carry over), plus who holds a
//! claim and how many runs failed:
//!
//! | attribute | type | meaning |
//! | --- | --- | --- |
//! | `id` | S | the event's deduplication key (partition key) |
//! | `status` | S | `INPROGRESS`, `COMPLETED` or `FAILED` (a failed run released it) |
//! | `expiration` | N | when the record expires, in epoch **seconds** (the table's TTL attribute) |
//! | `in_progress_expiration` | N | when an `INPROGRESS` claim's lease ends, in epoch milliseconds |
//! | `owner` | S | the claim attempt that holds it |
//! | `failures` | N | runs that failed and released it |
//! | `last_error` | S | why the last run failed (a short reason, never content) |
//!
//! A claim is one `UpdateItem` that keeps `failures`, conditioned on
//! `attribute_not_exists(id) OR (expiration >= :now AND (status = FAILED OR (status = INPROGRESS
//! AND (in_progress_expiration < :now_ms OR owner = :owner))))`, returning the new item (the
//! attempt number) on success and, with `ReturnValuesOnConditionCheckFailure = ALL_OLD`, the
//! record that refused it: a duplicate costs one request. Only an expired record takes a second
//! request (a `PutItem` conditioned on its expiry), because an update cannot reset its counter.
//! Expiry is checked in code, because DynamoDB's TTL deletes late (and moto never does).

use crate::ports::{Claim, IdempotencyStore, Release, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use std::collections::HashMap;
use std::time::Duration;

const ID: &str = "id";
const STATUS: &str = "status";
const EXPIRATION: &str = "expiration";
const IN_PROGRESS_EXPIRATION: &str = "in_progress_expiration";
const OWNER: &str = "owner";
const FAILURES: &str = "failures";
const LAST_ERROR: &str = "last_error";
const IN_PROGRESS: &str = "INPROGRESS";
const COMPLETED: &str = "COMPLETED";
const FAILED: &str = "FAILED";

/// An idempotency table in DynamoDB (partition key `id`, TTL attribute `expiration`).
#[derive(Debug, Clone)]
pub struct DynamoDbStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoDbStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> DynamoDbStore {
        DynamoDbStore {
            client,
            table: table.into(),
        }
    }

    /// A client for the worker: one attempt per call with short timeouts, because the worker
    /// retries each request itself, within the invocation's time budget. The SDK's own retries
    /// (three attempts, backoff up to seconds) and its lack of an operation timeout let one
    /// throttled write outlast the invocation.
    pub fn client_for_worker(
        sdk: &aws_config::SdkConfig,
        attempt_timeout: Duration,
    ) -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::config::Builder::from(sdk)
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_millis(300))
                    .operation_attempt_timeout(attempt_timeout)
                    .operation_timeout(attempt_timeout)
                    .build(),
            )
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    fn error<E>(operation: &'static str, key: &str, error: &SdkError<E>) -> StoreError
    where
        E: std::error::Error + 'static,
    {
        StoreError {
            operation,
            key: key.to_owned(),
            reason: DisplayErrorContext(error).to_string(),
        }
    }

    /// Claims an expired record afresh: a new record, conditioned on the old one's expiry.
    async fn claim_expired(
        &self,
        key: &str,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
        expires_at_ms: i64,
    ) -> Result<Claim, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(ID, s(key))
            .item(STATUS, s(IN_PROGRESS))
            .item(OWNER, s(owner))
            .item(FAILURES, n(0))
            .item(EXPIRATION, n(expires_at_ms / 1000))
            .item(IN_PROGRESS_EXPIRATION, n(lease_until_ms))
            .condition_expression("attribute_not_exists(#id) OR #expiration < :now")
            .expression_attribute_names("#id", ID)
            .expression_attribute_names("#expiration", EXPIRATION)
            .expression_attribute_values(":now", n(now_ms / 1000))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Claimed { attempt: 1 }),
            // Someone renewed it between our two requests: let the queue bring it back.
            Err(SdkError::ServiceError(context))
                if matches!(
                    context.err(),
                    PutItemError::ConditionalCheckFailedException(_)
                ) =>
            {
                Ok(Claim::InProgressElsewhere { until_ms: 0 })
            }
            Err(error) => Err(Self::error("claim", key, &error)),
        }
    }
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

fn string<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name)?.as_s().ok().map(String::as_str)
}

/// Reads the record that refused a claim: `None` when it has expired (claim it afresh).
fn refusal(item: Option<&HashMap<String, AttributeValue>>, now_ms: i64) -> Option<Claim> {
    let Some(item) = item else {
        // The condition failed, so a record exists; without its content, be safe: retry later.
        return Some(Claim::InProgressElsewhere { until_ms: 0 });
    };
    if number(item, EXPIRATION).is_some_and(|seconds| seconds < now_ms / 1000) {
        return None;
    }
    Some(match string(item, STATUS) {
        Some(COMPLETED) => Claim::AlreadyCompleted,
        _ => Claim::InProgressElsewhere {
            until_ms: number(item, IN_PROGRESS_EXPIRATION).unwrap_or(0),
        },
    })
}

#[async_trait]
impl IdempotencyStore for DynamoDbStore {
    async fn claim(
        &self,
        key: &str,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
        expires_at_ms: i64,
    ) -> Result<Claim, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(ID, s(key))
            .update_expression(
                "SET #status = :in_progress, #owner = :owner, \
                 #in_progress_expiration = :lease, #expiration = :expiration, \
                 #failures = if_not_exists(#failures, :zero)",
            )
            .condition_expression(
                "attribute_not_exists(#id) OR (#expiration >= :now AND (#status = :failed \
                 OR (#status = :in_progress AND (#in_progress_expiration < :now_ms \
                 OR #owner = :owner))))",
            )
            .expression_attribute_names("#id", ID)
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_names("#owner", OWNER)
            .expression_attribute_names("#in_progress_expiration", IN_PROGRESS_EXPIRATION)
            .expression_attribute_names("#expiration", EXPIRATION)
            .expression_attribute_names("#failures", FAILURES)
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .expression_attribute_values(":failed", s(FAILED))
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":lease", n(lease_until_ms))
            .expression_attribute_values(":expiration", n(expires_at_ms / 1000))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":now", n(now_ms / 1000))
            .expression_attribute_values(":now_ms", n(now_ms))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => {
                let failures = output
                    .attributes()
                    .and_then(|item| number(item, FAILURES))
                    .unwrap_or(0);
                Ok(Claim::Claimed {
                    attempt: u32::try_from(failures).unwrap_or(u32::MAX - 1) + 1,
                })
            }
            Err(SdkError::ServiceError(context))
                if matches!(
                    context.err(),
                    UpdateItemError::ConditionalCheckFailedException(_)
                ) =>
            {
                let old = match context.err() {
                    UpdateItemError::ConditionalCheckFailedException(refused) => refused.item(),
                    _ => None,
                };
                match refusal(old, now_ms) {
                    Some(claim) => Ok(claim),
                    None => {
                        self.claim_expired(key, owner, now_ms, lease_until_ms, expires_at_ms)
                            .await
                    }
                }
            }
            Err(error) => Err(Self::error("claim", key, &error)),
        }
    }

    async fn complete(&self, key: &str, expires_at_ms: i64) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item(ID, s(key))
            .item(STATUS, s(COMPLETED))
            .item(EXPIRATION, n(expires_at_ms / 1000))
            .send()
            .await
            .map(|_| ())
            .map_err(|error| Self::error("complete", key, &error))
    }

    async fn release(&self, key: &str, owner: &str, release: Release) -> Result<(), StoreError> {
        // Only the owner's in-progress claim is released: never a record another invocation
        // completed or took over.
        match release {
            Release::Retry { reason } => self
                .client
                .update_item()
                .table_name(&self.table)
                .key(ID, s(key))
                .update_expression(
                    "SET #status = :failed, #last_error = :reason, \
                     #failures = if_not_exists(#failures, :zero) + :one",
                )
                .condition_expression("#status = :in_progress AND #owner = :owner")
                .expression_attribute_names("#status", STATUS)
                .expression_attribute_names("#owner", OWNER)
                .expression_attribute_names("#failures", FAILURES)
                .expression_attribute_names("#last_error", LAST_ERROR)
                .expression_attribute_values(":failed", s(FAILED))
                .expression_attribute_values(":in_progress", s(IN_PROGRESS))
                .expression_attribute_values(":owner", s(owner))
                .expression_attribute_values(":reason", s(&short(&reason)))
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":one", n(1))
                .send()
                .await
                .map(|_| ())
                .or_else(|error| match &error {
                    SdkError::ServiceError(context)
                        if matches!(
                            context.err(),
                            UpdateItemError::ConditionalCheckFailedException(_)
                        ) =>
                    {
                        Ok(())
                    }
                    _ => Err(Self::error("release", key, &error)),
                }),
            Release::Forget => self
                .client
                .delete_item()
                .table_name(&self.table)
                .key(ID, s(key))
                .condition_expression("#status = :in_progress AND #owner = :owner")
                .expression_attribute_names("#status", STATUS)
                .expression_attribute_names("#owner", OWNER)
                .expression_attribute_values(":in_progress", s(IN_PROGRESS))
                .expression_attribute_values(":owner", s(owner))
                .send()
                .await
                .map(|_| ())
                .or_else(|error| match &error {
                    SdkError::ServiceError(context)
                        if matches!(
                            context.err(),
                            DeleteItemError::ConditionalCheckFailedException(_)
                        ) =>
                    {
                        Ok(())
                    }
                    _ => Err(Self::error("release", key, &error)),
                }),
        }
    }
}

/// A failure reason as stored: short, and never empty (DynamoDB refuses empty strings in keys
/// only, but an empty reason says nothing).
fn short(reason: &str) -> String {
    let cut: String = reason.chars().take(300).collect();
    if cut.is_empty() { "failed".into() } else { cut }
}
