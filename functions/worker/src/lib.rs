//! The worker Lambda function: SQS batches in, the bot run once per event, partial batch
//! failures out. Everything it decides is in [`shared::worker`]; this crate converts Lambda's
//! SQS events, wires the DynamoDB store, and holds the example bot ([`bot`]).

pub mod bot;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use shared::adapters::dynamodb::DynamoDbStore;
use shared::clients::Clients;
use shared::worker::{QueueRecord, Worker, WorkerConfig};
use std::sync::Arc;

/// Handles one SQS batch; `deadline_ms` is the invocation's deadline (ms since the epoch).
pub async fn handle(worker: &Worker, event: SqsEvent, deadline_ms: i64) -> SqsBatchResponse {
    let records: Vec<QueueRecord> = event
        .records
        .into_iter()
        .map(|record| QueueRecord {
            message_id: record.message_id.unwrap_or_default(),
            body: record.body.unwrap_or_default(),
            group_id: record.attributes.get("MessageGroupId").cloned(),
        })
        .collect();
    let report = worker.process(&records, deadline_ms).await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = report
        .failed_message_ids()
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

/// Why the function cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("IDEMPOTENCY_TABLE is not set: the worker needs the DynamoDB idempotency table's name")]
    NoTable,
    #[error(transparent)]
    Config(#[from] shared::ingress::ConfigError),
}

/// Builds the worker from the environment: `IDEMPOTENCY_TABLE`, [`WorkerConfig::from_vars`],
/// the API clients of [`Clients::from_env`], and the example bot.
pub async fn from_env() -> Result<Worker, StartError> {
    let table = std::env::var("IDEMPOTENCY_TABLE")
        .ok()
        .filter(|t| !t.is_empty())
        .ok_or(StartError::NoTable)?;
    let config = WorkerConfig::from_vars(|name| std::env::var(name).ok())?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&sdk), table);
    Ok(Worker::new(
        Arc::new(store),
        Arc::new(bot::ExampleBot),
        Clients::from_env(),
        config,
    ))
}
