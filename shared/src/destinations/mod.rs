//! Destinations: where the worker hands each event after claiming it, for bots that live outside
//! this process, in any language.
//!
//! Each destination is a [`Bot`](crate::bot::Bot), so the worker's guarantees apply to it
//! unchanged: an event is delivered once its key is claimed, a conversation's next event only
//! after the previous one was acknowledged, a failure is retried (by the destination within the
//! event's deadline, then by the queue), and after the worker's attempts, or at once for a
//! [`Permanent`](crate::bot::Permanent) refusal, the event goes to the dead-letter queue with its
//! reason.
//!
//! | destination | module | acknowledged when |
//! | --- | --- | --- |
//! | the Rust bot of `functions/worker` | — | `handle` returns `Ok` |
//! | HTTPS, [Standard Webhooks](https://www.standardwebhooks.com/) | [`webhook`] | the endpoint answers `2xx` |
//! | Amazon EventBridge | `eventbridge` | `PutEvents` accepted the entry |
//! | another Lambda function | `lambda` | the synchronous invocation returned without a function error |
//!
//! Every destination receives the same JSON [`document`]: the envelope's fields, a `type` such as
//! `line.message.text` and the event's exact JSON.

pub mod document;
#[cfg(feature = "destinations")]
pub mod eventbridge;
#[cfg(feature = "destinations")]
pub mod lambda;
mod retry;
pub mod webhook;

pub use document::{Document, EventClaim, Offload, event_type};
pub use retry::{Attempt, DeliveryCounts, DeliveryStats, deliver_with_retries};

use crate::settings::ConfigError;

/// Which destination the worker delivers to (`DESTINATION`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestinationConfig {
    /// The Rust bot compiled into the worker (the default).
    Bot,
    /// `PutEvents` to `bus` (a name or ARN; `default` for the account's default bus), with
    /// `source` as every entry's source.
    EventBridge { bus: String, source: String },
    /// POST to `url`, signed by the Standard Webhooks scheme (secrets from
    /// `DESTINATION_SIGNING_SECRETS`, reloaded with the other settings).
    Https {
        url: url::Url,
        /// The longest one request may take.
        timeout: std::time::Duration,
    },
    /// Synchronous `Invoke` of `function` (a name or ARN).
    Lambda { function: String },
}

/// The `source` of EventBridge entries when `DESTINATION_SOURCE` is not set.
pub const DEFAULT_SOURCE: &str = "chat-gateway";
/// The longest one HTTPS delivery attempt may take when `DESTINATION_TIMEOUT_MS` is not set.
pub const DEFAULT_HTTPS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl DestinationConfig {
    /// Reads `DESTINATION` (`bot`, `eventbridge`, `https` or `lambda`; empty: `bot`) and what the
    /// chosen one needs: `DESTINATION_EVENT_BUS` (default `default`) and `DESTINATION_SOURCE`
    /// (default `chat-gateway`); `DESTINATION_URL` and `DESTINATION_TIMEOUT_MS`;
    /// `DESTINATION_FUNCTION`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let kind = get("DESTINATION").unwrap_or_else(|| "bot".into());
        match kind.to_ascii_lowercase().as_str() {
            "bot" => Ok(DestinationConfig::Bot),
            "eventbridge" => Ok(DestinationConfig::EventBridge {
                bus: get("DESTINATION_EVENT_BUS").unwrap_or_else(|| "default".into()),
                source: get("DESTINATION_SOURCE").unwrap_or_else(|| DEFAULT_SOURCE.into()),
            }),
            "https" => {
                let raw = get("DESTINATION_URL").ok_or(ConfigError {
                    name: "DESTINATION_URL",
                    problem: "DESTINATION is https: set the endpoint's URL".into(),
                })?;
                let url = webhook::endpoint_url(&raw).map_err(|problem| ConfigError {
                    name: "DESTINATION_URL",
                    problem,
                })?;
                let timeout =
                    crate::settings::positive_number(&|name| var(name), "DESTINATION_TIMEOUT_MS")?
                        .map_or(DEFAULT_HTTPS_TIMEOUT, std::time::Duration::from_millis);
                Ok(DestinationConfig::Https { url, timeout })
            }
            "lambda" => Ok(DestinationConfig::Lambda {
                function: get("DESTINATION_FUNCTION").ok_or(ConfigError {
                    name: "DESTINATION_FUNCTION",
                    problem: "DESTINATION is lambda: set the function's name or ARN".into(),
                })?,
            }),
            _ => Err(ConfigError {
                name: "DESTINATION",
                problem: "expected bot, eventbridge, https or lambda".into(),
            }),
        }
    }

    /// `bot`, `eventbridge`, `https` or `lambda`: the metric dimension and log field.
    pub fn name(&self) -> &'static str {
        match self {
            DestinationConfig::Bot => "bot",
            DestinationConfig::EventBridge { .. } => "eventbridge",
            DestinationConfig::Https { .. } => "https",
            DestinationConfig::Lambda { .. } => "lambda",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<DestinationConfig, ConfigError> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        DestinationConfig::from_vars(|name| map.get(name).cloned())
    }

    #[test]
    fn the_bot_is_the_default_and_each_destination_names_what_it_misses() {
        assert_eq!(read(&[]).ok(), Some(DestinationConfig::Bot));
        assert_eq!(
            read(&[("DESTINATION", " ")]).ok(),
            Some(DestinationConfig::Bot)
        );
        assert_eq!(
            read(&[("DESTINATION", "eventbridge")]).ok(),
            Some(DestinationConfig::EventBridge {
                bus: "default".into(),
                source: "chat-gateway".into()
            })
        );
        let missing = |pairs: &[(&str, &str)]| read(pairs).err().map(|e| e.name);
        assert_eq!(
            missing(&[("DESTINATION", "https")]),
            Some("DESTINATION_URL")
        );
        assert_eq!(
            missing(&[("DESTINATION", "lambda")]),
            Some("DESTINATION_FUNCTION")
        );
        assert_eq!(missing(&[("DESTINATION", "sns")]), Some("DESTINATION"));
        assert_eq!(
            missing(&[
                ("DESTINATION", "https"),
                ("DESTINATION_URL", "http://example.com/")
            ]),
            Some("DESTINATION_URL"),
            "plain http leaves the machine only over TLS"
        );
        assert!(matches!(
            read(&[
                ("DESTINATION", "HTTPS"),
                ("DESTINATION_URL", "https://bot.example.com/hook")
            ]),
            Ok(DestinationConfig::Https { .. })
        ));
    }
}
