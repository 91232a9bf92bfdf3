//! Entry point of the ingress Lambda function: wiring only.

use lambda_runtime::{LambdaEvent, service_fn};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::heap::keep_freed_memory();
    shared::telemetry::init_json_logs();
    // Built once per cold start: configuration, keyed secrets and the SQS client.
    let ingress = Arc::new(ingress::from_env().await?);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ingress::apigw::HttpEvent>| {
            let ingress = Arc::clone(&ingress);
            async move {
                Ok::<_, std::convert::Infallible>(ingress::handle(&ingress, event.payload).await)
            }
        },
    ))
    .await
}
