//! The worker Lambda function: SQS batches in, the bot run once per event, partial batch
//! failures out. Everything it decides is in [`shared::worker`]; this crate converts Lambda's
//! SQS events, wires the DynamoDB store and (when on) the archive, and holds the example bot ([`bot`]).

pub mod bot;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use shared::adapters::dynamodb::DynamoDbStore;
use shared::adapters::dynamodb_archive::DynamoDbArchive;
use shared::adapters::s3::{S3Claims, S3Media};
use shared::adapters::secrets_manager;
use shared::adapters::sqs::{PLATFORM_ATTRIBUTE, SqsDeadLetters, SqsQueue, SqsTuning};
use shared::archive::{Archive, ArchiveConfig};
use shared::bot::Bot;
use shared::clients::Clients;
use shared::destinations::eventbridge::EventBridgeDestination;
use shared::destinations::lambda::LambdaDestination;
use shared::destinations::webhook::{Signer, WebhookDestination};
use shared::destinations::{DeliveryStats, DestinationConfig, Offload};
use shared::ports::ClaimStore;
use shared::settings::{
    DEFAULT_REFRESH, Layered, Reloading, SIGNING_SECRETS, SecretSource, Withholding,
};
use shared::worker::{QueueRecord, Worker, WorkerConfig};
use std::sync::Arc;

/// A record of Lambda's SQS event as the worker reads it.
pub fn queue_record(message: SqsMessage) -> QueueRecord {
    QueueRecord {
        receive_count: message
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|count| count.parse().ok())
            .unwrap_or(1),
        group_id: message.attributes.get("MessageGroupId").cloned(),
        platform: message
            .message_attributes
            .get(PLATFORM_ATTRIBUTE)
            .and_then(|attribute| attribute.string_value.clone()),
        message_id: message.message_id.unwrap_or_default(),
        body: message.body.unwrap_or_default(),
    }
}

/// The worker function: the worker and, when it delivers to a destination, the delivery counts
/// its metrics report.
pub struct WorkerFunction {
    pub worker: Worker,
    /// `bot`, `eventbridge`, `https` or `lambda`.
    pub destination: &'static str,
    pub deliveries: Option<Arc<DeliveryStats>>,
}

/// Handles one SQS batch; `deadline_ms` is the invocation's deadline (ms since the epoch).
pub async fn handle(worker: &Worker, event: SqsEvent, deadline_ms: i64) -> SqsBatchResponse {
    handle_batch(worker, None, event, deadline_ms).await
}

/// [`handle`] for the function built by [`from_env`], with its delivery metrics.
pub async fn handle_function(
    function: &WorkerFunction,
    event: SqsEvent,
    deadline_ms: i64,
) -> SqsBatchResponse {
    let deliveries = function.deliveries.as_deref();
    handle_batch(&function.worker, deliveries, event, deadline_ms).await
}

async fn handle_batch(
    worker: &Worker,
    deliveries: Option<&DeliveryStats>,
    event: SqsEvent,
    deadline_ms: i64,
) -> SqsBatchResponse {
    let records: Vec<QueueRecord> = event.records.into_iter().map(queue_record).collect();
    let deadline_ms = absolute_deadline(deadline_ms, now_ms());
    let report = worker.process(&records, deadline_ms).await;
    if shared::telemetry::metrics_enabled() {
        emit_batch_metrics(worker, deliveries, &records, &report);
    }
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

/// The batch's metrics: one record for the service, and one per registry tenant (with a `Tenant`
/// dimension, counted for the service too: see `shared::telemetry::emf_record`), so that each
/// outcome is counted once.
fn emit_batch_metrics(
    worker: &Worker,
    deliveries: Option<&DeliveryStats>,
    records: &[QueueRecord],
    report: &shared::worker::BatchReport,
) {
    use shared::telemetry::{Metric, emit_metrics};
    use shared::worker::RecordOutcome as O;
    use std::collections::BTreeMap;
    let tenants: std::collections::HashMap<&str, String> = records
        .iter()
        .filter_map(|r| Some((r.message_id.as_str(), tenant_of(&r.body)?)))
        .collect();
    let mut by_tenant: BTreeMap<Option<&str>, Vec<&O>> = BTreeMap::new();
    for (id, outcome) in &report.outcomes {
        let tenant = tenants.get(id.as_str()).map(String::as_str);
        by_tenant.entry(tenant).or_default().push(outcome);
    }
    let counts =
        |outcomes: &[&O], wanted: &[O]| outcomes.iter().filter(|o| wanted.contains(o)).count();
    let delivered = deliveries.map(DeliveryStats::take).unwrap_or_default();
    let untenanted = by_tenant.remove(&None).unwrap_or_default();
    emit_metrics(
        &[("Service", "worker")],
        &[
            Metric::count("EventsDelivered", delivered.delivered as usize),
            Metric::count("DeliveryFailures", delivered.failed_attempts as usize),
            Metric::count("DeliveriesRefused", delivered.refused as usize),
            Metric::count("EventsHandled", counts(&untenanted, &[O::Handled])),
            Metric::count("DuplicatesSkipped", counts(&untenanted, &[O::Duplicate])),
            Metric::count(
                "HandlerFailures",
                counts(&untenanted, &[O::Failed, O::OutOfTime]),
            ),
            Metric::count("PoisonMessages", counts(&untenanted, &[O::Poison])),
            Metric::count("DeadLettered", counts(&untenanted, &[O::DeadLettered])),
            Metric::count("CompletionsUnrecorded", worker.unrecorded_completions()),
            Metric::count(
                "RetriedLater",
                counts(&untenanted, &[O::InProgressElsewhere, O::Blocked]),
            ),
        ],
    );
    for (tenant, outcomes) in by_tenant {
        let Some(tenant) = tenant else { continue };
        emit_metrics(
            &[("Service", "worker"), ("Tenant", tenant)],
            &[
                Metric::count("EventsHandled", counts(&outcomes, &[O::Handled])),
                Metric::count("DuplicatesSkipped", counts(&outcomes, &[O::Duplicate])),
                Metric::count(
                    "HandlerFailures",
                    counts(&outcomes, &[O::Failed, O::OutOfTime]),
                ),
                Metric::count("DeadLettered", counts(&outcomes, &[O::DeadLettered])),
                Metric::count(
                    "RetriedLater",
                    counts(&outcomes, &[O::InProgressElsewhere, O::Blocked]),
                ),
            ],
        );
    }
}

/// The envelope's `tenant`, read without reading the event (serde skips it).
fn tenant_of(body: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Head {
        tenant: Option<String>,
    }
    serde_json::from_str::<Head>(body).ok()?.tenant
}

/// Lambda gives the invocation's deadline in milliseconds since the epoch; `cargo lambda watch`
/// gives the function's timeout in milliseconds instead. A value before 2001 cannot be a real
/// deadline, so it is read as a duration from now.
pub fn absolute_deadline(deadline_ms: i64, now_ms: i64) -> i64 {
    const YEAR_2001_MS: i64 = 978_307_200_000;
    if deadline_ms < YEAR_2001_MS {
        now_ms.saturating_add(deadline_ms.max(0))
    } else {
        deadline_ms
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::absolute_deadline;

    #[test]
    fn deadlines_are_absolute_or_read_as_durations() {
        let now = 1_763_715_600_000;
        assert_eq!(absolute_deadline(now + 30_000, now), now + 30_000, "Lambda");
        assert_eq!(
            absolute_deadline(600_000, now),
            now + 600_000,
            "cargo lambda watch"
        );
        assert_eq!(absolute_deadline(-5, now), now);
    }
}

/// Why the function cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("IDEMPOTENCY_TABLE is not set: the worker needs the DynamoDB idempotency table's name")]
    NoTable,
    #[error(transparent)]
    Config(#[from] shared::settings::ConfigError),
    #[error("QUEUE_URL is not set: with the archive on, the worker queues its follow-ups there")]
    NoQueueForArchive,
    #[error("settings: {0}")]
    Settings(String),
    #[error(
        "ARCHIVE_TABLE and ARCHIVE_BUCKET go together: set both to switch the archive on, neither to leave it off"
    )]
    HalfAnArchive,
}

fn variable(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The bot: yours ([`bot::ExampleBot`] until you replace it), or the gateway's own test bot when
/// `GATEWAY_TEST_BOT=1` ([`shared::test_bot`]).
pub fn bot_from_env() -> Arc<dyn shared::bot::Bot> {
    if shared::test_bot::requested() {
        tracing::warn!("GATEWAY_TEST_BOT=1: running the gateway's test bot, not yours");
        Arc::new(shared::test_bot::GatewayTestBot)
    } else {
        Arc::new(bot::ExampleBot)
    }
}

/// The archive, when `ARCHIVE_TABLE` and `ARCHIVE_BUCKET` are set (the template sets both when
/// its `Archive` parameter is `Enabled`).
pub fn archive_from_env(sdk: &aws_config::SdkConfig) -> Result<Option<Archive>, StartError> {
    match (variable("ARCHIVE_TABLE"), variable("ARCHIVE_BUCKET")) {
        (None, None) => Ok(None),
        (Some(table), Some(bucket)) => Ok(Some(Archive::new(
            Arc::new(DynamoDbArchive::new(
                aws_sdk_dynamodb::Client::new(sdk),
                table,
            )),
            Arc::new(S3Media::new(S3Media::client(sdk), bucket)),
            ArchiveConfig::from_vars(|name| std::env::var(name).ok())?,
        ))),
        _ => Err(StartError::HalfAnArchive),
    }
}

/// Where the worker delivers ([`DestinationConfig`]): the bot of this crate, or a destination
/// built here, with its delivery counts. `source` gives the HTTPS destination's signing secrets
/// (reloaded like the API tokens); `offload` takes events too large for EventBridge or Lambda.
pub async fn destination(
    config: &DestinationConfig,
    sdk: Option<&aws_config::SdkConfig>,
    source: Arc<dyn SecretSource>,
    offload: Option<Offload>,
) -> Result<(Arc<dyn Bot>, Option<Arc<DeliveryStats>>), StartError> {
    let needs_aws = || {
        sdk.ok_or_else(|| {
            StartError::Settings(format!(
                "the {} destination needs AWS credentials and a region",
                config.name()
            ))
        })
    };
    Ok(match config {
        DestinationConfig::Bot => (bot_from_env(), None),
        DestinationConfig::Https { url, timeout } => {
            let signer = Reloading::start(source, DEFAULT_REFRESH, |var| Signer::from_vars(var))
                .await
                .map_err(StartError::Settings)?;
            let destination = WebhookDestination::new(url.clone(), *timeout, signer);
            let stats = destination.stats();
            (Arc::new(destination), Some(stats))
        }
        DestinationConfig::EventBridge { bus, source } => {
            let destination = EventBridgeDestination::new(
                EventBridgeDestination::client(needs_aws()?),
                bus,
                source,
                offload,
            );
            let stats = destination.stats();
            (Arc::new(destination), Some(stats))
        }
        DestinationConfig::Lambda { function } => {
            let destination =
                LambdaDestination::new(LambdaDestination::client(needs_aws()?), function, offload);
            let stats = destination.stats();
            (Arc::new(destination), Some(stats))
        }
    })
}

/// Builds the worker from the environment: `IDEMPOTENCY_TABLE`, [`WorkerConfig::from_vars`],
/// `DEAD_LETTER_QUEUE_URL` (the worker dead-letters records itself), `CLAIM_CHECK_BUCKET` (events
/// too large for a message), the API clients of [`Clients::from_vars`] with their tokens looked
/// up in the environment and then in the Secrets Manager secret named by `GATEWAY_SECRET_ID`
/// (reloaded every few minutes; signing secrets found there are withheld), the destination of
/// [`DestinationConfig::from_vars`] (the example bot by default; the HTTPS destination's secrets
/// also from the secret named by `DESTINATION_SECRET_ID`), and the archive beside it when
/// [`archive_from_env`] finds one (its follow-ups go to `QUEUE_URL`).
pub async fn from_env() -> Result<WorkerFunction, StartError> {
    let table = variable("IDEMPOTENCY_TABLE").ok_or(StartError::NoTable)?;
    let config = WorkerConfig::from_vars(|name| std::env::var(name).ok())?;
    let destination_config = DestinationConfig::from_vars(|name| std::env::var(name).ok())?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    // The signing secrets are the ingress's: the worker never holds them.
    let mut source: Arc<dyn SecretSource> = Withholding::new(
        secrets_manager::source_from_env(&sdk),
        SIGNING_SECRETS,
        "worker",
    );
    // The HTTPS destination's signing secrets live in a secret of their own (the template's
    // DestinationSecret), which the receiving team reads too.
    if let Some(id) = variable("DESTINATION_SECRET_ID") {
        source = Arc::new(Layered(vec![
            source,
            Arc::new(secrets_manager::SecretsManagerSource::new(&sdk, id)),
        ]));
    }
    // The registry's tokens too (`TENANTS`): one that cannot be read stops the start, and a
    // reload that cannot be read keeps the previous clients.
    let clients = Reloading::start(source.clone(), DEFAULT_REFRESH, |var| {
        Clients::try_from_vars(var)
    })
    .await
    .map_err(StartError::Settings)?;
    let store = DynamoDbStore::new(
        DynamoDbStore::client_for_worker(&sdk, config.budget.attempt_timeout),
        table,
    );
    let tuning = SqsTuning::from_env();
    let sqs = SqsQueue::client_for_sending(&sdk, tuning);
    let archive = archive_from_env(&sdk)?;
    let claims = variable("CLAIM_CHECK_BUCKET").map(|bucket| {
        let store: Arc<dyn ClaimStore> = Arc::new(S3Claims::new(
            S3Claims::client(&sdk, config.budget.attempt_timeout),
            bucket.clone(),
        ));
        (store, bucket)
    });
    let offload = claims.as_ref().map(|(store, bucket)| Offload {
        store: Arc::clone(store),
        bucket: bucket.clone(),
    });
    let (bot, deliveries) = destination(&destination_config, Some(&sdk), source, offload).await?;
    tracing::info!(
        destination = destination_config.name(),
        "worker delivers to its destination"
    );
    let mut worker = Worker::reloading(Arc::new(store), bot, clients, config.clone());
    if let Some(url) = variable("DEAD_LETTER_QUEUE_URL") {
        worker = worker.with_dead_letters(Arc::new(SqsDeadLetters::new(sqs.clone(), url)));
    }
    if let Some((store, _)) = claims {
        worker = worker.with_claims(store);
    }
    if let Some(archive) = archive {
        let url = variable("QUEUE_URL").ok_or(StartError::NoQueueForArchive)?;
        let follow_ups = SqsQueue::new(sqs, url).batched(tuning);
        worker = worker.with_archive(Arc::new(archive), Arc::new(follow_ups));
    }
    Ok(WorkerFunction {
        worker,
        destination: destination_config.name(),
        deliveries,
    })
}
