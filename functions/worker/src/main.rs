//! Entry point of the worker Lambda function: wiring only.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::heap::keep_freed_memory();
    shared::telemetry::init_json_logs();
    // Built once per cold start: configuration, the DynamoDB client, the API clients, the bot or
    // destination.
    let function = Arc::new(worker::from_env().await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let function = Arc::clone(&function);
        async move {
            let deadline_ms = i64::try_from(event.context.deadline).unwrap_or(i64::MAX);
            Ok::<_, std::convert::Infallible>(
                worker::handle_function(&function, event.payload, deadline_ms).await,
            )
        }
    }))
    .await
}
