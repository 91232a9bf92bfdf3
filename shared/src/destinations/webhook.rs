//! The HTTPS destination, by the [Standard Webhooks](https://www.standardwebhooks.com/)
//! specification: each event is POSTed as its [`Document`](super::Document) with
//!
//! - `webhook-id`: the event's deduplication key, the same on every delivery of the event (retries
//!   here, redeliveries by the queue), so that the receiver can deduplicate by it;
//! - `webhook-timestamp`: the attempt's time in Unix seconds (receivers refuse old ones);
//! - `webhook-signature`: `v1,{base64 HMAC-SHA256 over "{id}.{timestamp}.{body}"}`, once per
//!   secret, space-separated, so that a receiver holding either the old or the new secret verifies
//!   during a rotation.
//!
//! Secrets are `whsec_` followed by base64 (24 to 64 random bytes), as the specification and its
//! libraries have them; `DESTINATION_SIGNING_SECRETS` holds one or more, separated by spaces or
//! commas, and is reloaded with the worker's other settings.
//!
//! `2xx` delivers. `408`, `409`, `429`, `5xx`, timeouts and network errors are retried with backoff
//! inside the event's deadline (then by the queue). Any other status (other `4xx`; `3xx`, since
//! redirects are not followed) is a refusal: the event is dead-lettered at once with the status.

use super::document::Document;
use super::retry::{Attempt, DeliveryStats, deliver_with_retries};
use crate::bot::{Bot, BotError, BotEvent};
use crate::clients::Clients;
use crate::settings::Reloading;
use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;

/// The prefix of a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// Checks a destination URL: `https`, or `http` to this machine only (a receiver on the same host,
/// for local runs); no credentials in it.
pub fn endpoint_url(raw: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials do not belong in the URL; the signature authenticates".into());
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err("the URL has no host".into()),
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        "http" => {
            Err("events leave this machine only over https (http is allowed to localhost)".into())
        }
        other => Err(format!("unsupported scheme {other}: use https")),
    }
}

/// The signing secrets, newest first.
#[derive(Clone, Default)]
pub struct Signer {
    keys: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys.
        write!(f, "Signer({} secrets)", self.keys.len())
    }
}

/// A signing secret that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("DESTINATION_SIGNING_SECRETS: secret {position} {problem}")]
pub struct SecretProblem {
    /// 1 for the first secret of the list.
    pub position: usize,
    pub problem: &'static str,
}

impl Signer {
    /// Reads secrets separated by spaces or commas; each `whsec_` + base64 (the prefix may be
    /// left out) of 24 to 64 bytes. None at all is an error: an unsigned delivery could be forged.
    pub fn parse(list: &str) -> Result<Signer, SecretProblem> {
        let mut keys = Vec::new();
        for (index, secret) in list
            .split([' ', ',', '\n', '\t'])
            .filter(|s| !s.is_empty())
            .enumerate()
        {
            let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
            let key = STANDARD.decode(encoded).map_err(|_| SecretProblem {
                position: index + 1,
                problem: "is not base64 after whsec_",
            })?;
            if !(24..=64).contains(&key.len()) {
                return Err(SecretProblem {
                    position: index + 1,
                    problem: "must be 24 to 64 bytes (32 random bytes, base64-encoded, is usual)",
                });
            }
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(SecretProblem {
                position: 1,
                problem: "is missing: the HTTPS destination signs every delivery",
            });
        }
        Ok(Signer { keys })
    }

    /// Reads `DESTINATION_SIGNING_SECRETS` through `var`.
    pub fn from_vars(var: &dyn Fn(&str) -> Option<String>) -> Result<Signer, SecretProblem> {
        Signer::parse(&var("DESTINATION_SIGNING_SECRETS").unwrap_or_default())
    }

    /// The `webhook-signature` header's value for one attempt.
    pub fn signature(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut header = String::new();
        for key in &self.keys {
            // HMAC takes a key of any length.
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
                continue;
            };
            mac.update(id.as_bytes());
            mac.update(b".");
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            if !header.is_empty() {
                header.push(' ');
            }
            header.push_str("v1,");
            header.push_str(&STANDARD.encode(mac.finalize().into_bytes()));
        }
        header
    }
}

/// The HTTPS destination.
pub struct WebhookDestination {
    http: reqwest::Client,
    url: url::Url,
    timeout: Duration,
    signer: Arc<Reloading<Signer>>,
    stats: Arc<DeliveryStats>,
}

impl WebhookDestination {
    pub fn new(url: url::Url, timeout: Duration, signer: Arc<Reloading<Signer>>) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .pool_idle_timeout(Duration::from_secs(50))
            // A redirect is the receiver's misconfiguration, and following one would send the
            // signed event somewhere it was not configured to go.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("chat-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        WebhookDestination {
            http,
            url,
            timeout,
            signer,
            stats: Arc::new(DeliveryStats::default()),
        }
    }

    /// The delivery counts, for metrics.
    pub fn stats(&self) -> Arc<DeliveryStats> {
        Arc::clone(&self.stats)
    }

    async fn attempt(
        &self,
        id: &str,
        body: &bytes::Bytes,
        signer: &Signer,
        left: Duration,
    ) -> Result<(), Attempt> {
        let timestamp = unix_seconds();
        let response = self
            .http
            .post(self.url.clone())
            .timeout(self.timeout.min(left))
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signer.signature(id, timestamp, body))
            .body(body.clone())
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(error) => {
                let reason = if error.is_timeout() {
                    "no answer within the timeout".to_owned()
                } else if error.is_connect() {
                    "could not connect".to_owned()
                } else {
                    "the request failed".to_owned()
                };
                return Err(Attempt::Retry {
                    reason,
                    after: None,
                });
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        // The answer's body is the receiver's; it is neither read nor logged.
        drop(response);
        classify(status, retry_after)
    }
}

/// What a status means for the delivery (see the module's description).
pub fn classify(status: http::StatusCode, retry_after: Option<Duration>) -> Result<(), Attempt> {
    let code = status.as_u16();
    let named = format!(
        "answered {code}{}",
        status
            .canonical_reason()
            .map(|r| format!(" {r}"))
            .unwrap_or_default()
    );
    match code {
        200..=299 => Ok(()),
        408 | 409 | 429 | 500..=599 => Err(Attempt::Retry {
            reason: named,
            after: retry_after,
        }),
        300..=399 => Err(Attempt::Permanent(format!(
            "{named}; redirects are not followed: configure the final URL"
        ))),
        _ => Err(Attempt::Permanent(named)),
    }
}

fn unix_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

#[async_trait]
impl Bot for WebhookDestination {
    async fn handle(&self, event: &BotEvent, _clients: &Clients) -> Result<(), BotError> {
        // One body for every attempt: only the timestamp and signature headers change.
        let body = bytes::Bytes::from(Document::of(event).to_bytes());
        let signer = self.signer.current();
        deliver_with_retries("https", &self.stats, event.deadline, |left| {
            let body = body.clone();
            let signer = Arc::clone(&signer);
            let id = event.key.clone();
            async move { self.attempt(&id, &body, &signer, left).await }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_as_the_specification_does() {
        // The example of the Standard Webhooks specification's reference libraries.
        let signer = Signer::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signer.signature("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn several_secrets_sign_once_each_and_bad_ones_are_named() {
        let old = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let new = format!("whsec_{}", STANDARD.encode([7u8; 32]));
        let signer = Signer::parse(&format!("{new}, {old}")).unwrap();
        let header = signer.signature("id", 1, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        assert!(header.split(' ').all(|s| s.starts_with("v1,")));
        assert!(format!("{signer:?}").contains("2 secrets"));
        assert!(!format!("{signer:?}").contains("MfKQ"));

        assert_eq!(Signer::parse("").err().map(|e| e.position), Some(1));
        assert_eq!(
            Signer::parse(&format!("{old} whsec_!!"))
                .err()
                .map(|e| e.position),
            Some(2)
        );
        assert!(Signer::parse("whsec_c2hvcnQ=").is_err(), "5 bytes");
    }

    #[test]
    fn statuses_are_delivered_retried_or_refused() {
        use http::StatusCode as S;
        assert!(classify(S::OK, None).is_ok());
        assert!(classify(S::NO_CONTENT, None).is_ok());
        for retried in [408, 409, 429, 500, 502, 503, 504] {
            let status = S::from_u16(retried).unwrap();
            assert!(
                matches!(classify(status, None), Err(Attempt::Retry { .. })),
                "{retried}"
            );
        }
        for refused in [301, 302, 400, 401, 403, 404, 410, 413, 422] {
            let status = S::from_u16(refused).unwrap();
            assert!(
                matches!(classify(status, None), Err(Attempt::Permanent(_))),
                "{refused}"
            );
        }
    }

    #[test]
    fn only_https_leaves_the_machine() {
        assert!(endpoint_url("https://bot.example.com/hooks/line").is_ok());
        assert!(endpoint_url("http://127.0.0.1:8000/hook").is_ok());
        assert!(endpoint_url("http://localhost:8000/hook").is_ok());
        assert!(endpoint_url("http://[::1]:8000/hook").is_ok());
        assert!(endpoint_url("http://bot.example.com/hook").is_err());
        assert!(endpoint_url("ftp://bot.example.com/").is_err());
        assert!(endpoint_url("https://user:pw@bot.example.com/").is_err());
        assert!(endpoint_url("bot.example.com").is_err());
    }
}
