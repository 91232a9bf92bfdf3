//! Logging: one JSON object per line, as CloudWatch Logs Insights reads it.

/// Installs a JSON log subscriber, filtered by `RUST_LOG` (default `info`). Safe to call twice.
pub fn init_json_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(true)
        .try_init();
}
