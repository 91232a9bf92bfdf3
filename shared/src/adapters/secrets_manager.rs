//! The Secrets Manager adapter of [`SecretSource`]: one secret whose value is a JSON object of
//! settings by name (`{"LINE_CHANNEL_SECRET": "…", "META_APP_SECRET": "…", …}`).

use crate::settings::{EnvironmentOnly, SecretError, SecretSource, Values};
use async_trait::async_trait;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use std::sync::Arc;
use std::time::Duration;

/// The secret named by `GATEWAY_SECRET_ID` (name or ARN), or the environment alone when it is not
/// set (local runs and tests).
pub fn source_from_env(sdk: &aws_config::SdkConfig) -> Arc<dyn SecretSource> {
    match std::env::var("GATEWAY_SECRET_ID") {
        Ok(id) if !id.trim().is_empty() => Arc::new(SecretsManagerSource::new(sdk, id.trim())),
        _ => Arc::new(EnvironmentOnly),
    }
}

/// One Secrets Manager secret holding a JSON object.
#[derive(Debug, Clone)]
pub struct SecretsManagerSource {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
}

impl SecretsManagerSource {
    /// A source for `secret_id` (name or ARN), with short timeouts: a cold start should not hang
    /// on it.
    pub fn new(sdk: &aws_config::SdkConfig, secret_id: impl Into<String>) -> SecretsManagerSource {
        let config = aws_sdk_secretsmanager::config::Builder::from(sdk)
            .timeout_config(
                aws_sdk_secretsmanager::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(1))
                    .operation_attempt_timeout(Duration::from_secs(2))
                    .build(),
            )
            .build();
        SecretsManagerSource {
            client: aws_sdk_secretsmanager::Client::from_conf(config),
            secret_id: secret_id.into(),
        }
    }

    fn error(&self, reason: impl Into<String>) -> SecretError {
        SecretError {
            id: self.secret_id.clone(),
            reason: reason.into(),
        }
    }
}

#[async_trait]
impl SecretSource for SecretsManagerSource {
    async fn fetch(&self) -> Result<Values, SecretError> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| self.error(DisplayErrorContext(&e).to_string()))?;
        let text = output
            .secret_string()
            .ok_or_else(|| self.error("the secret has no string value"))?;
        // The error never quotes the secret: serde_json's messages name positions, not content,
        // for a map of strings; say only what shape was expected.
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
            .map_err(|_| self.error("the secret's value is not a JSON object"))?;
        Ok(object
            .into_iter()
            .filter_map(|(name, value)| match value {
                serde_json::Value::String(text) => Some((name, text)),
                serde_json::Value::Null => None,
                other => Some((name, other.to_string())),
            })
            .collect())
    }
}
