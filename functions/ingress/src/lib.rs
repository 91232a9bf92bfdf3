//! The ingress Lambda function: API Gateway in, SQS out. Everything it decides is in
//! [`shared::ingress`]; this crate only converts Lambda's HTTP events and wires the SQS adapter.

pub mod apigw;

use apigw::{HttpEvent, HttpResponse};
use shared::adapters::s3::S3Claims;
use shared::adapters::secrets_manager;
use shared::adapters::sqs::{SqsQueue, SqsTuning};
use shared::ingress::{Ingress, IngressConfig};
use shared::settings::{API_TOKENS, DEFAULT_REFRESH, Reloading, Withholding};
use std::sync::Arc;

/// Handles one Lambda HTTP event.
pub async fn handle(ingress: &Ingress, event: HttpEvent) -> HttpResponse {
    let (origin, request) = apigw::into_request(event);
    let response = match request {
        Ok(request) => ingress.handle(request).await,
        Err(error) => {
            tracing::warn!(target: "ingress", outcome = "invalid_base64", status = 400, "{error}");
            shared::ingress::text(http::StatusCode::BAD_REQUEST, "malformed body")
        }
    };
    apigw::into_response(origin, response)
}

/// The longest init waits for the SQS connection it opens: a slow SQS must not hold the function
/// back; the first request then connects itself.
const PREWARM_WAIT: std::time::Duration = std::time::Duration::from_millis(1000);

/// `SQS_PREWARM=off` leaves the SQS connection to the first request (for comparison).
fn prewarm_enabled() -> bool {
    !std::env::var("SQS_PREWARM").is_ok_and(|v| v.trim().eq_ignore_ascii_case("off"))
}

/// One cheap call, so that the client's pool holds an open TLS connection to SQS. Its answer is
/// not needed; an error is only logged.
async fn prewarm(client: aws_sdk_sqs::Client, queue_url: String) {
    let call = client
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout)
        .send()
        .await;
    if let Err(error) = call {
        tracing::warn!(target: "ingress", error = %aws_sdk_sqs::error::DisplayErrorContext(&error), "opening the SQS connection during init failed; the first request opens it");
    }
}

/// Why the function cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("QUEUE_URL is not set: the ingress needs the SQS queue's URL")]
    NoQueueUrl,
    #[error("settings: {0}")]
    Settings(String),
}

/// Builds the ingress from the environment: `QUEUE_URL`, `CLAIM_CHECK_BUCKET` (where events too
/// large for a queue message go; without it they are refused with `413`),
/// [`SqsTuning::from_env`], and the settings of [`IngressConfig::from_vars`] looked up in the
/// environment and then in the Secrets Manager secret named by `GATEWAY_SECRET_ID` (when set),
/// reloaded every few minutes; API tokens found there are withheld. AWS clients come from the default configuration chain, which
/// honours `AWS_ENDPOINT_URL`.
pub async fn from_env() -> Result<Ingress, StartError> {
    let queue_url = std::env::var("QUEUE_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .ok_or(StartError::NoQueueUrl)?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let tuning = SqsTuning::from_env();
    let client = SqsQueue::client_for_sending(&sdk, tuning);
    // The SQS connection (TCP and TLS) is opened during init, beside the secret's fetch, rather
    // than in the first request LINE is timing (BENCHMARKS.md, "Cold path").
    let prewarm =
        prewarm_enabled().then(|| tokio::spawn(prewarm(client.clone(), queue_url.clone())));
    // The API tokens are the worker's: the internet-facing ingress never holds them.
    let source = Withholding::new(
        secrets_manager::source_from_env(&sdk),
        API_TOKENS,
        "ingress",
    );
    let config = Reloading::start(source, DEFAULT_REFRESH, |var| IngressConfig::from_vars(var))
        .await
        .map_err(StartError::Settings)?;
    let current = config.current();
    if current.line_secrets.is_none()
        && current.meta_secrets.is_none()
        && current.tenants.is_empty()
    {
        tracing::warn!(target: "ingress", "neither LINE_CHANNEL_SECRET nor META_APP_SECRET nor TENANTS is set: every route answers 404");
    }
    if let Some(prewarm) = prewarm {
        let _ = tokio::time::timeout(PREWARM_WAIT, prewarm).await;
    }
    let queue = SqsQueue::new(client, queue_url).batched(tuning);
    let mut ingress = Ingress::reloading(config, Arc::new(queue))
        .with_metrics(shared::telemetry::metrics_enabled());
    if let Some(bucket) = std::env::var("CLAIM_CHECK_BUCKET")
        .ok()
        .filter(|b| !b.trim().is_empty())
    {
        let client = S3Claims::client(&sdk, std::time::Duration::from_millis(1000));
        ingress = ingress.with_claims(Arc::new(S3Claims::new(client, bucket)));
    }
    Ok(ingress)
}
