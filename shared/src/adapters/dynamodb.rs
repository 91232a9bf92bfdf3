//! The DynamoDB adapter of [`IdempotencyStore`], with the record layout of AWS Lambda Powertools'
//! idempotency utility, so that its tooling and its users' habits carry over:
//!
//! | attribute | type | meaning |
//! | --- | --- | --- |
//! | `id` | S | the event's deduplication key (partition key) |
//! | `status` | S | `INPROGRESS` or `COMPLETED` |
//! | `expiration` | N | when the record expires, in epoch **seconds** (the table's TTL attribute) |
//! | `in_progress_expiration` | N | when an `INPROGRESS` claim lapses, in epoch milliseconds |
//!
//! A claim is one `PutItem` with the condition
//! `attribute_not_exists(id) OR expiration < :now OR (status = INPROGRESS AND in_progress_expiration < :now_ms)`
//! and `ReturnValuesOnConditionCheckFailure = ALL_OLD`, so a duplicate costs exactly one request:
//! the refusal carries the record that caused it. Expiry is checked in the condition, in code,
//! because DynamoDB's TTL deletes late (and moto never does).

use crate::ports::{Claim, IdempotencyStore, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use std::collections::HashMap;

const ID: &str = "id";
const STATUS: &str = "status";
const EXPIRATION: &str = "expiration";
const IN_PROGRESS_EXPIRATION: &str = "in_progress_expiration";
const IN_PROGRESS: &str = "INPROGRESS";
const COMPLETED: &str = "COMPLETED";

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

/// Reads the record that refused a claim.
fn refusal(item: Option<&HashMap<String, AttributeValue>>) -> Claim {
    let Some(item) = item else {
        // The condition failed, so a record exists; without its content, be safe: retry later.
        return Claim::InProgressElsewhere { until_ms: 0 };
    };
    match item
        .get(STATUS)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
    {
        Some(COMPLETED) => Claim::AlreadyCompleted,
        _ => Claim::InProgressElsewhere {
            until_ms: number(item, IN_PROGRESS_EXPIRATION).unwrap_or(0),
        },
    }
}

#[async_trait]
impl IdempotencyStore for DynamoDbStore {
    async fn claim(
        &self,
        key: &str,
        now_ms: i64,
        in_progress_until_ms: i64,
        expires_at_ms: i64,
    ) -> Result<Claim, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(ID, s(key))
            .item(STATUS, s(IN_PROGRESS))
            .item(EXPIRATION, n(expires_at_ms / 1000))
            .item(IN_PROGRESS_EXPIRATION, n(in_progress_until_ms))
            .condition_expression(
                "attribute_not_exists(#id) OR #expiration < :now \
                 OR (#status = :in_progress AND #in_progress_expiration < :now_ms)",
            )
            .expression_attribute_names("#id", ID)
            .expression_attribute_names("#expiration", EXPIRATION)
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_names("#in_progress_expiration", IN_PROGRESS_EXPIRATION)
            .expression_attribute_values(":now", n(now_ms / 1000))
            .expression_attribute_values(":now_ms", n(now_ms))
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Claimed),
            Err(SdkError::ServiceError(context))
                if matches!(
                    context.err(),
                    PutItemError::ConditionalCheckFailedException(_)
                ) =>
            {
                match context.err() {
                    PutItemError::ConditionalCheckFailedException(refused) => {
                        Ok(refusal(refused.item()))
                    }
                    _ => Ok(Claim::InProgressElsewhere { until_ms: 0 }),
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

    async fn release(&self, key: &str) -> Result<(), StoreError> {
        // Only an in-progress claim is released: never a record another invocation completed.
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(ID, s(key))
            .condition_expression("#status = :in_progress")
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(context))
                if matches!(
                    context.err(),
                    DeleteItemError::ConditionalCheckFailedException(_)
                ) =>
            {
                Ok(())
            }
            Err(error) => Err(Self::error("release", key, &error)),
        }
    }
}
