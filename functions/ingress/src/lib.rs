//! The ingress Lambda function: API Gateway in, SQS out. Everything it decides is in
//! [`shared::ingress`]; this crate only converts Lambda's HTTP events and wires the SQS adapter.

pub mod apigw;

use apigw::{HttpEvent, HttpResponse};
use shared::adapters::sqs::{SqsQueue, SqsTuning};
use shared::ingress::{Ingress, IngressConfig};
use std::sync::Arc;

/// Handles one Lambda HTTP event.
pub async fn handle(ingress: &Ingress, event: HttpEvent) -> HttpResponse {
    let (origin, request) = apigw::into_request(event);
    let response = match request {
        Ok(request) => ingress.handle(request).await,
        Err(error) => {
            tracing::warn!(target: "ingress", outcome = "invalid_base64", status = 400, "{error}");
            let mut response = http::Response::new("malformed body".to_owned());
            *response.status_mut() = http::StatusCode::BAD_REQUEST;
            response
        }
    };
    apigw::into_response(origin, response)
}

/// Why the function cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("QUEUE_URL is not set: the ingress needs the SQS queue's URL")]
    NoQueueUrl,
    #[error(transparent)]
    Config(#[from] shared::ingress::ConfigError),
}

/// Builds the ingress from the environment: the configuration of
/// [`IngressConfig::from_env`], `QUEUE_URL` and [`SqsTuning::from_env`], with an SQS client from the default AWS
/// configuration chain (which honours `AWS_ENDPOINT_URL`).
pub async fn from_env() -> Result<Ingress, StartError> {
    let config = IngressConfig::from_env()?;
    let queue_url = std::env::var("QUEUE_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .ok_or(StartError::NoQueueUrl)?;
    if config.line_secrets.is_none() && config.meta_secrets.is_none() {
        tracing::warn!(target: "ingress", "neither LINE_CHANNEL_SECRET nor META_APP_SECRET is set: every route answers 404");
    }
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let tuning = SqsTuning::from_env();
    let queue =
        SqsQueue::new(SqsQueue::client_for_ingress(&sdk, tuning), queue_url).with_tuning(tuning);
    Ok(Ingress::new(config, Arc::new(queue)))
}
