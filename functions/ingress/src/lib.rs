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
    let tuning = SqsTuning::from_env();
    let queue =
        SqsQueue::new(SqsQueue::client_for_sending(&sdk, tuning), queue_url).batched(tuning);
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
