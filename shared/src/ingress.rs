//! The ingress: verify a webhook request, split it into one queue message per event, queue them
//! all, and answer. Transport-free: it takes an `http::Request` of the raw body bytes, so the
//! Lambda function and the local server run exactly this code.
//!
//! | method | path | answer |
//! | --- | --- | --- |
//! | `POST` | `/line` | `200` once every event is queued; `401` bad signature; `400` not LINE's envelope; `413` too large; `503` not queued |
//! | `GET` | `/meta` | `200` with `hub.challenge` when `hub.mode=subscribe` and the verify token match; `403` otherwise |
//! | `POST` | `/meta` | as `/line`, and `404` for an `object` the gateway does not handle |
//!
//! Any other path answers `404`, another method on a known path `405`, and a platform whose secret
//! is not configured answers `404` on its routes.

use crate::envelope::{ENVELOPE_VERSION, Envelope, LineContext, MetaContext, Oversized};
use crate::line::{Callback, EventHead};
use crate::meta::{MetaObject, Notification};
use crate::platform::{MalformedBody, Platform};
use crate::ports::{EventQueue, QueueMessage};
use crate::settings::Reloading;
use crate::signature::{Secrets, SignatureError, VerifyToken, verify_line, verify_meta};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// Default body limit: 4 MiB. WhatsApp notifications reach 3 MB and a 1000-update Meta batch
/// stays well under that; Lambda's 6 MB invocation limit, with API Gateway's base64 encoding of
/// binary bodies, caps what can arrive at about 4.5 MB anyway.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Default time to get every event into the queue: leaves half a second of LINE's 2 seconds for
/// API Gateway, a cold start's remainder and the answer.
pub const DEFAULT_ENQUEUE_BUDGET: Duration = Duration::from_millis(1500);

/// What the ingress needs to know. Secrets are keyed once, here.
#[derive(Debug, Clone)]
pub struct IngressConfig {
    /// LINE channel secrets; `None` switches LINE off.
    pub line_secrets: Option<Secrets>,
    /// Meta app secrets; `None` switches Meta off.
    pub meta_secrets: Option<Secrets>,
    /// Meta's verify token; without it the `GET /meta` challenge is refused.
    pub meta_verify_token: Option<VerifyToken>,
    pub max_body_bytes: usize,
    pub enqueue_budget: Duration,
}

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("configuration variable {name}: {problem}")]
pub struct ConfigError {
    pub name: &'static str,
    pub problem: String,
}

/// Reads `name` through `var` as a positive whole number; `None` when it is unset.
pub(crate) fn positive_number(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<Option<u64>, ConfigError> {
    var(name)
        .map(|v| {
            v.trim()
                .parse::<u64>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or(ConfigError {
                    name,
                    problem: format!("not a positive whole number: {v:?}"),
                })
        })
        .transpose()
}

impl IngressConfig {
    /// Reads `LINE_CHANNEL_SECRET`, `META_APP_SECRET` (comma-separated lists), `META_VERIFY_TOKEN`,
    /// `MAX_BODY_BYTES` and `ENQUEUE_BUDGET_MS` through `var`, usually `std::env::var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<IngressConfig, ConfigError> {
        let number = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            match var(name) {
                None => Ok(default),
                Some(text) => text.trim().parse().map_err(|e| ConfigError {
                    name,
                    problem: format!("not a whole number: {e}"),
                }),
            }
        };
        Ok(IngressConfig {
            line_secrets: var("LINE_CHANNEL_SECRET").and_then(|s| Secrets::from_list(&s)),
            meta_secrets: var("META_APP_SECRET").and_then(|s| Secrets::from_list(&s)),
            meta_verify_token: var("META_VERIFY_TOKEN").and_then(|t| VerifyToken::new(t.trim())),
            max_body_bytes: number("MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES as u64)? as usize,
            enqueue_budget: Duration::from_millis(number(
                "ENQUEUE_BUDGET_MS",
                DEFAULT_ENQUEUE_BUDGET.as_millis() as u64,
            )?),
        })
    }

    /// [`IngressConfig::from_vars`] over the process environment.
    pub fn from_env() -> Result<IngressConfig, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }
}

/// How a request ended, for the log line and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every event is in the queue (`events` may be 0: LINE's Verify button).
    Accepted { events: usize },
    /// Meta's verification request, answered with the challenge.
    Verified,
    /// Refused; `reason` is a short label such as `signature_mismatch`.
    Rejected { reason: &'static str },
    /// Some events could not be queued; the platform will retry.
    EnqueueFailed { events: usize },
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Accepted { .. } => "accepted",
            Outcome::Verified => "verified",
            Outcome::Rejected { reason } => reason,
            Outcome::EnqueueFailed { .. } => "enqueue_failed",
        }
    }
}

/// A handled request: the answer and how it ended.
#[derive(Debug)]
pub struct Handled {
    pub response: Response<String>,
    pub platform: Option<Platform>,
    pub outcome: Outcome,
    /// How long the queue took, where events were sent.
    pub enqueue_time: Option<Duration>,
}

/// The ingress, built once per process and shared by every request.
pub struct Ingress {
    config: Arc<Reloading<IngressConfig>>,
    queue: Arc<dyn EventQueue>,
    metrics: bool,
}

impl Ingress {
    /// An ingress with a fixed configuration.
    pub fn new(config: IngressConfig, queue: Arc<dyn EventQueue>) -> Ingress {
        Ingress::reloading(Reloading::fixed(config), queue)
    }

    /// An ingress whose configuration (secrets) is rebuilt from its source in the background.
    pub fn reloading(config: Arc<Reloading<IngressConfig>>, queue: Arc<dyn EventQueue>) -> Ingress {
        Ingress {
            config,
            queue,
            metrics: false,
        }
    }

    /// Also writes CloudWatch Embedded Metric Format records: `EventsAccepted`,
    /// `RequestsRejected` (by `Reason`), `EnqueueFailures`, `EnqueueTime` and `RequestTime`, for
    /// `Service=ingress`.
    pub fn with_metrics(mut self, on: bool) -> Ingress {
        self.metrics = on;
        self
    }

    /// Handles one request and writes its one structured log line.
    pub async fn handle(&self, request: Request<Bytes>) -> Response<String> {
        let started = Instant::now();
        let handled = self.handle_request(request).await;
        let elapsed = started.elapsed();
        let events = match handled.outcome {
            Outcome::Accepted { events } | Outcome::EnqueueFailed { events } => events,
            _ => 0,
        };
        tracing::info!(
            target: "ingress",
            platform = handled.platform.map(Platform::as_str).unwrap_or("none"),
            events,
            outcome = handled.outcome.label(),
            status = handled.response.status().as_u16(),
            duration_us = elapsed.as_micros() as u64,
            "request"
        );
        if self.metrics {
            self.emit_metrics(&handled, elapsed);
        }
        handled.response
    }

    /// `RequestTime` is the whole request in the handler and `EnqueueTime` its SQS calls: the
    /// difference is the ingress's own work.
    fn emit_metrics(&self, handled: &Handled, elapsed: std::time::Duration) {
        use crate::telemetry::{Metric, emit_metrics};
        let enqueue_ms = handled
            .enqueue_time
            .map_or(0.0, |t| t.as_secs_f64() * 1000.0);
        let request_ms = elapsed.as_secs_f64() * 1000.0;
        match &handled.outcome {
            Outcome::Accepted { events } => emit_metrics(
                &[("Service", "ingress")],
                &[
                    Metric::count("EventsAccepted", *events),
                    Metric::milliseconds("EnqueueTime", enqueue_ms),
                    Metric::milliseconds("RequestTime", request_ms),
                ],
            ),
            Outcome::EnqueueFailed { events } => emit_metrics(
                &[("Service", "ingress")],
                &[
                    Metric::count("EnqueueFailures", 1),
                    Metric::count("EventsNotQueued", *events),
                    Metric::milliseconds("EnqueueTime", enqueue_ms),
                ],
            ),
            Outcome::Rejected { reason } => emit_metrics(
                &[("Service", "ingress"), ("Reason", reason)],
                &[Metric::count("RequestsRejected", 1)],
            ),
            Outcome::Verified => {}
        }
    }

    /// Handles one request without logging; for callers that report outcomes themselves.
    pub async fn handle_request(&self, request: Request<Bytes>) -> Handled {
        let config = self.config.current();
        let config = config.as_ref();
        let (parts, body) = request.into_parts();
        let path = parts.uri.path();
        let path = path
            .strip_suffix('/')
            .filter(|p| !p.is_empty())
            .unwrap_or(path);
        match path {
            "/line" if config.line_secrets.is_some() => {
                let handled = match parts.method {
                    Method::POST => self.line(config, &parts.headers, &body).await,
                    _ => method_not_allowed("POST"),
                };
                handled.on(Platform::Line)
            }
            "/meta" if config.meta_secrets.is_some() => {
                let handled = match parts.method {
                    Method::POST => self.meta(config, &parts.headers, &body).await,
                    Method::GET => meta_verification(config, parts.uri.query().unwrap_or("")),
                    _ => method_not_allowed("GET, POST"),
                };
                handled.on(Platform::Meta)
            }
            _ => rejected(StatusCode::NOT_FOUND, "not_found", "not found"),
        }
    }

    async fn line(
        &self,
        config: &IngressConfig,
        headers: &http::HeaderMap,
        body: &Bytes,
    ) -> Handled {
        if let Some(refusal) = refuse_unverified(config, Platform::Line, headers, body) {
            return refusal;
        }
        let callback = match Callback::parse(body) {
            Ok(callback) => callback,
            Err(error) => return malformed(&error),
        };
        match line_messages(&callback, now_ms(), self.queue.max_message_bytes()) {
            Ok(messages) => self.enqueue(config, messages).await,
            Err(error) => encode_failed(&error),
        }
    }

    async fn meta(
        &self,
        config: &IngressConfig,
        headers: &http::HeaderMap,
        body: &Bytes,
    ) -> Handled {
        if let Some(refusal) = refuse_unverified(config, Platform::Meta, headers, body) {
            return refusal;
        }
        let notification = match Notification::parse(body) {
            Ok(notification) => notification,
            Err(error) => return malformed(&error),
        };
        if let MetaObject::Unknown(_) = notification.object {
            // As Meta's own sample app does for objects it does not subscribe to.
            return rejected(
                StatusCode::NOT_FOUND,
                "unknown_object",
                "object not handled",
            );
        }
        match meta_messages(&notification, now_ms(), self.queue.max_message_bytes()) {
            Ok(messages) => self.enqueue(config, messages).await,
            Err(error) => encode_failed(&error),
        }
    }

    async fn enqueue(&self, config: &IngressConfig, messages: Vec<QueueMessage>) -> Handled {
        let events = messages.len();
        if events == 0 {
            return accepted(0);
        }
        let started = Instant::now();
        let deadline = started + config.enqueue_budget;
        let mut handled = match self.queue.send_all(&messages, deadline).await {
            Ok(()) => accepted(events),
            Err(error) => {
                tracing::error!(target: "ingress", error = %error, events, "events not queued; answering 503 so that the platform retries");
                Handled {
                    response: text(StatusCode::SERVICE_UNAVAILABLE, "events not queued, retry"),
                    platform: None,
                    outcome: Outcome::EnqueueFailed { events },
                    enqueue_time: None,
                }
            }
        };
        handled.enqueue_time = Some(started.elapsed());
        handled
    }
}

fn meta_verification(config: &IngressConfig, query: &str) -> Handled {
    let refused = || rejected(StatusCode::FORBIDDEN, "verification_refused", "forbidden");
    let Some(token) = &config.meta_verify_token else {
        return refused();
    };
    let (mut mode, mut verify_token, mut challenge) = (None, None, None);
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        let slot = match name.as_ref() {
            "hub.mode" => &mut mode,
            "hub.verify_token" => &mut verify_token,
            "hub.challenge" => &mut challenge,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            // A repeated parameter is ambiguous: refuse rather than guess which one counts.
            return refused();
        }
    }
    match (mode, verify_token, challenge) {
        (Some(mode), Some(candidate), Some(challenge))
            if mode == "subscribe" && token.matches(candidate.as_bytes()) =>
        {
            Handled {
                response: text(StatusCode::OK, challenge.into_owned()),
                platform: None,
                outcome: Outcome::Verified,
                enqueue_time: None,
            }
        }
        _ => refused(),
    }
}

/// What every webhook body goes through before it is read: the size limit (before spending an
/// HMAC on it), then the platform's signature with every configured secret. Returns the refusal,
/// if any.
fn refuse_unverified(
    config: &IngressConfig,
    platform: Platform,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Option<Handled> {
    if body.len() > config.max_body_bytes {
        return Some(rejected(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "payload too large",
        ));
    }
    type Verify = fn(&Secrets, &[u8], Option<&[u8]>) -> Result<(), SignatureError>;
    let (secrets, header, verify): (&Option<Secrets>, &str, Verify) = match platform {
        Platform::Line => (&config.line_secrets, "x-line-signature", verify_line),
        Platform::Meta => (&config.meta_secrets, "x-hub-signature-256", verify_meta),
    };
    let Some(secrets) = secrets else {
        return Some(rejected(StatusCode::NOT_FOUND, "not_found", "not found"));
    };
    let signature = headers.get(header).map(|v| v.as_bytes());
    verify(secrets, body, signature)
        .err()
        .map(signature_refused)
}

impl Handled {
    fn on(mut self, platform: Platform) -> Handled {
        self.platform = Some(platform);
        self
    }
}

/// One queue message per LINE event, each carrying the event's exact bytes.
pub fn line_messages(
    callback: &Callback<'_>,
    received_at: i64,
    max_message_bytes: usize,
) -> Result<Vec<QueueMessage>, serde_json::Error> {
    let destination = callback.destination.as_str();
    callback
        .events
        .iter()
        .map(|raw| {
            let head = EventHead::of(raw);
            let envelope = Envelope {
                version: ENVELOPE_VERSION,
                platform: Platform::Line,
                key: head.dedup_key(destination, raw),
                conversation: head.conversation_id(destination),
                timestamp: head.timestamp,
                received_at,
                line: Some(LineContext {
                    destination: destination.to_owned(),
                }),
                meta: None,
                oversized: None,
                event: *raw,
            };
            queue_message(envelope, max_message_bytes)
        })
        .collect()
}

/// One queue message per item of `messaging[]`, `standby[]` and `changes[]` of every entry.
pub fn meta_messages(
    notification: &Notification<'_>,
    received_at: i64,
    max_message_bytes: usize,
) -> Result<Vec<QueueMessage>, serde_json::Error> {
    let mut messages = Vec::with_capacity(notification.item_count());
    for item in notification.items() {
        let head = item.head();
        let envelope = Envelope {
            version: ENVELOPE_VERSION,
            platform: Platform::Meta,
            key: head.key,
            conversation: head.conversation,
            timestamp: head.timestamp,
            received_at,
            line: None,
            meta: Some(MetaContext {
                object: item.object.to_owned(),
                entry_id: item.entry_id.to_owned(),
                entry_time: item.entry_time,
                list: item.list,
            }),
            oversized: None,
            event: item.raw,
        };
        messages.push(queue_message(envelope, max_message_bytes)?);
    }
    Ok(messages)
}

/// Encodes an envelope; an event too large for one queue message travels as an `oversized`
/// marker with its key, size and hash, and is logged at error level, so that it never vanishes
/// in silence.
fn queue_message(
    envelope: Envelope<&RawValue>,
    max_message_bytes: usize,
) -> Result<QueueMessage, serde_json::Error> {
    let mut body = envelope.encode_sized()?;
    if body.len() > max_message_bytes {
        let event = envelope.event.get().as_bytes();
        let oversized = Oversized {
            bytes: event.len(),
            sha256: hex::encode(Sha256::digest(event)),
        };
        tracing::error!(
            target: "ingress",
            key = %envelope.key,
            bytes = oversized.bytes,
            sha256 = %oversized.sha256,
            limit = max_message_bytes,
            "event too large for one queue message: queued as an oversized marker without its content"
        );
        body = Envelope {
            oversized: Some(oversized),
            event: RawValue::NULL,
            ..envelope.clone()
        }
        .encode()?;
    }
    Ok(QueueMessage {
        key: envelope.key,
        conversation: envelope.conversation,
        platform: envelope.platform,
        body,
    })
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<String> {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn accepted(events: usize) -> Handled {
    Handled {
        response: text(StatusCode::OK, "OK"),
        platform: None,
        outcome: Outcome::Accepted { events },
        enqueue_time: None,
    }
}

fn rejected(status: StatusCode, reason: &'static str, message: &'static str) -> Handled {
    Handled {
        response: text(status, message),
        platform: None,
        outcome: Outcome::Rejected { reason },
        enqueue_time: None,
    }
}

fn method_not_allowed(allow: &'static str) -> Handled {
    let mut handled = rejected(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed",
    );
    handled
        .response
        .headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    handled
}

fn signature_refused(error: SignatureError) -> Handled {
    rejected(
        StatusCode::UNAUTHORIZED,
        error.reason(),
        "invalid signature",
    )
}

fn malformed(error: &MalformedBody) -> Handled {
    // The reason names the first structural problem; it never quotes the body.
    tracing::warn!(target: "ingress", platform = %error.platform, "verified body is not the platform's envelope");
    rejected(StatusCode::BAD_REQUEST, "malformed_body", "malformed body")
}

fn encode_failed(error: &serde_json::Error) -> Handled {
    tracing::error!(target: "ingress", error = %error, "could not encode an envelope");
    Handled {
        response: text(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
        platform: None,
        outcome: Outcome::Rejected {
            reason: "encode_failed",
        },
        enqueue_time: None,
    }
}
