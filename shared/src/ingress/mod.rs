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
//!
//! A body is read by its outline where it has the platform's shape (`outline`: each event found
//! without being validated, then validated once as its head is read, on whichever core splits
//! it), and by `Callback::parse` or `Notification::parse` otherwise; `split` writes the messages.

mod config;
mod outline;
mod split;

pub use config::{
    DEFAULT_ENQUEUE_BUDGET, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_EVENTS, IngressConfig,
};
pub use outline::{EntryOutline, LineOutline, MetaOutline, OutlinedEvent, OutlinedItem};
pub use split::{
    LineBody, Split, SplitOptions, line_body, line_messages, line_outline_messages, meta_body,
    meta_messages, meta_outline_messages, meta_outlined,
};

use crate::clock::{self, Clock};
use crate::meta::{MetaObject, Notification};
use crate::platform::{MalformedBody, Platform};
use crate::ports::{ClaimStore, EventQueue};
use crate::settings::Reloading;
use crate::signature::{Secrets, SignatureError, Verified, VerifyToken, verify_line, verify_meta};
use crate::tenants::signing::{ForeignEntries, MetaSigning};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

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
    /// The registry tenant of the route, on `/line/{tenant}` and `/meta/{tenant}`.
    pub tenant: Option<String>,
    pub outcome: Outcome,
    /// How long the queue took, where events were sent.
    pub enqueue_time: Option<Duration>,
}

/// The ingress, built once per process and shared by every request.
pub struct Ingress {
    config: Arc<Reloading<IngressConfig>>,
    queue: Arc<dyn EventQueue>,
    claims: Option<Arc<dyn ClaimStore>>,
    clock: Arc<dyn Clock>,
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
            claims: None,
            clock: clock::system(),
            metrics: false,
        }
    }

    /// Stores events too large for a queue message in `claims` (S3; SQLite locally) and queues a
    /// pointer. Without a claim-check store such a request is refused with `413`.
    pub fn with_claims(mut self, claims: Arc<dyn ClaimStore>) -> Ingress {
        self.claims = Some(claims);
        self
    }

    /// Reads the time from `clock` (the simulation's virtual clock) instead of the system's.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Ingress {
        self.clock = clock;
        self
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
            tenant = handled.tenant.as_deref().unwrap_or("-"),
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
        // A tenant's request is counted for the service and for the tenant (see
        // `telemetry::emf_record`): the alarms keep watching the whole service.
        let mut dimensions = vec![("Service", "ingress")];
        if let Some(tenant) = &handled.tenant {
            dimensions.push(("Tenant", tenant));
        }
        match &handled.outcome {
            Outcome::Accepted { events } => emit_metrics(
                &dimensions,
                &[
                    Metric::count("EventsAccepted", *events),
                    Metric::milliseconds("EnqueueTime", enqueue_ms),
                    Metric::milliseconds("RequestTime", request_ms),
                ],
            ),
            Outcome::EnqueueFailed { events } => emit_metrics(
                &dimensions,
                &[
                    Metric::count("EnqueueFailures", 1),
                    Metric::count("EventsNotQueued", *events),
                    Metric::milliseconds("EnqueueTime", enqueue_ms),
                ],
            ),
            Outcome::Rejected { reason } => {
                dimensions.push(("Reason", reason));
                emit_metrics(&dimensions, &[Metric::count("RequestsRejected", 1)])
            }
            Outcome::Verified => {}
        }
    }

    /// Handles one request without logging; for callers that report outcomes themselves.
    #[allow(clippy::result_large_err)] // see `verify`
    pub async fn handle_request(&self, request: Request<Bytes>) -> Handled {
        let config = self.config.current();
        let config = config.as_ref();
        let (parts, body) = request.into_parts();
        let path = parts.uri.path();
        let path = path
            .strip_suffix('/')
            .filter(|p| !p.is_empty())
            .unwrap_or(path);
        let query = parts.uri.query().unwrap_or("");
        let route = match path.split_once('/').map(|(_, rest)| rest.split_once('/')) {
            Some(Some((platform, tenant))) => (platform, Some(tenant)),
            _ => (path.trim_start_matches('/'), None),
        };
        match route {
            ("line", None) => {
                let Some(secrets) = &config.line_secrets else {
                    return not_found();
                };
                let handled = match parts.method {
                    Method::POST => {
                        let line = LineRoute {
                            secrets,
                            bot_user_id: None,
                            tenant: None,
                        };
                        self.line(config, line, &parts.headers, &body).await
                    }
                    _ => method_not_allowed("POST"),
                };
                handled.on(Platform::Line)
            }
            ("line", Some(tenant)) => {
                let Some(channel) = config.tenants.get(tenant).and_then(|t| t.line.as_ref()) else {
                    return not_found();
                };
                let handled = match parts.method {
                    Method::POST => {
                        let line = LineRoute {
                            secrets: &channel.secrets,
                            bot_user_id: Some(&channel.bot_user_id),
                            tenant: Some(tenant),
                        };
                        self.line(config, line, &parts.headers, &body).await
                    }
                    _ => method_not_allowed("POST"),
                };
                handled.on(Platform::Line).for_tenant(tenant)
            }
            ("meta", None) => {
                let Some(secrets) = &config.meta_secrets else {
                    return not_found();
                };
                let handled = match parts.method {
                    Method::POST => {
                        if body.len() > config.max_body_bytes {
                            return body_too_large().on(Platform::Meta);
                        }
                        let options = self.split_options(&body);
                        // The messages are written beside the verification (used only once it
                        // passed).
                        let read = || {
                            if let Some(split) = meta_outlined(&body, &options, config.max_events) {
                                return Ok(Ok(split));
                            }
                            Notification::parse(&body)
                                .map(|notification| meta_split(config, &notification, &options))
                        };
                        match overlapped(
                            body.len(),
                            || verify(Some(secrets), Platform::Meta, &parts.headers, &body),
                            read,
                        ) {
                            Err(refusal) => refusal,
                            Ok((_, Err(error))) => malformed(&error),
                            Ok((_, Ok(split))) => self.queue_split(config, split).await,
                        }
                    }
                    Method::GET => meta_verification(config.meta_verify_token.as_ref(), query),
                    _ => method_not_allowed("GET, POST"),
                };
                handled.on(Platform::Meta)
            }
            ("meta", Some(tenant)) => {
                let Some(apps) = config.tenants.get(tenant).and_then(|t| t.meta.as_ref()) else {
                    return not_found();
                };
                let handled = match parts.method {
                    Method::POST => self.meta_tenant(config, apps, tenant, &parts, &body).await,
                    Method::GET => meta_verification(apps.verify_token.as_ref(), query),
                    _ => method_not_allowed("GET, POST"),
                };
                handled.on(Platform::Meta).for_tenant(tenant)
            }
            _ => not_found(),
        }
    }

    #[allow(clippy::result_large_err)] // see `verify`
    async fn line(
        &self,
        config: &IngressConfig,
        route: LineRoute<'_>,
        headers: &http::HeaderMap,
        body: &Bytes,
    ) -> Handled {
        if body.len() > config.max_body_bytes {
            return body_too_large();
        }
        let options = SplitOptions {
            tenant: route.tenant,
            ..self.split_options(body)
        };
        // The messages are written beside the verification (used only once it passed).
        let read = || line_body(body, &options, config.max_events);
        let (verified, read) = match overlapped(
            body.len(),
            || verify(Some(route.secrets), Platform::Line, headers, body),
            read,
        ) {
            Ok(both) => both,
            Err(refusal) => return refusal,
        };
        let LineBody {
            destination,
            messages: split,
        } = match read {
            Ok(read) => read,
            Err(error) => return malformed(&error),
        };
        let destination = destination.as_deref();
        let own_bot = match (route.bot_user_id, destination) {
            (Some(bot), Some(destination)) => bot == destination,
            _ => verified.allows(destination),
        };
        if !own_bot {
            // Signed, but by another channel's secret than the bot it names.
            tracing::warn!(target: "ingress", tenant = route.tenant.unwrap_or("-"), "LINE request signed by a secret bound to another destination");
            return rejected(
                StatusCode::UNAUTHORIZED,
                "destination_mismatch",
                "invalid signature",
            );
        }
        match split {
            None => too_many_events(),
            Some(Ok(split)) => self.enqueue(config, split).await,
            Some(Err(error)) => encode_failed(&error),
        }
    }

    /// `POST /meta/{tenant}`: verified with the tenant's apps, then every entry checked against
    /// what the verifying app serves for the tenant.
    async fn meta_tenant(
        &self,
        config: &IngressConfig,
        apps: &MetaSigning,
        tenant: &str,
        parts: &http::request::Parts,
        body: &Bytes,
    ) -> Handled {
        if body.len() > config.max_body_bytes {
            return body_too_large();
        }
        let signature = parts
            .headers
            .get("x-hub-signature-256")
            .map(|v| v.as_bytes());
        // Read beside the verification, written after it: which items stay depends on the app
        // that signed.
        let (verified, notification) = match overlapped(
            body.len(),
            || apps.verify(body, signature),
            || Notification::parse(body),
        ) {
            Ok(both) => both,
            Err(error) => return signature_refused(error),
        };
        let mut notification = match notification {
            Ok(notification) => notification,
            Err(error) => return malformed(&error),
        };
        let removed = apps.remove_foreign(&verified, &mut notification);
        if removed > 0 {
            match config.foreign_entries {
                ForeignEntries::Refuse => {
                    tracing::warn!(target: "ingress", tenant, items = removed, "Meta request names a page, account or number its app does not serve for this tenant; refused");
                    return rejected(
                        StatusCode::FORBIDDEN,
                        "foreign_entry",
                        "entry not served by this tenant",
                    );
                }
                ForeignEntries::Drop => {
                    tracing::warn!(target: "ingress", tenant, items = removed, "Meta request names a page, account or number its app does not serve for this tenant; those items are dropped");
                    if self.metrics {
                        use crate::telemetry::{Metric, emit_metrics};
                        emit_metrics(
                            &[("Service", "ingress"), ("Tenant", tenant)],
                            &[Metric::count("ForeignItemsDropped", removed)],
                        );
                    }
                }
            }
        }
        self.meta(config, body, Some(tenant), notification).await
    }

    /// A verified Meta body (already read, for a tenant) into the queue.
    async fn meta(
        &self,
        config: &IngressConfig,
        body: &Bytes,
        tenant: Option<&str>,
        notification: Notification<'_>,
    ) -> Handled {
        let options = SplitOptions {
            tenant,
            ..self.split_options(body)
        };
        self.queue_split(config, meta_split(config, &notification, &options))
            .await
    }

    /// A request's messages into the queue, or the answer that refuses it.
    async fn queue_split(&self, config: &IngressConfig, split: Result<Split, Handled>) -> Handled {
        match split {
            Ok(split) => self.enqueue(config, split).await,
            Err(refusal) => refusal,
        }
    }

    fn split_options(&self, body: &[u8]) -> SplitOptions<'static> {
        SplitOptions::for_body(body, self.clock.now_ms(), self.queue.max_message_bytes())
    }

    async fn enqueue(&self, config: &IngressConfig, split: Split) -> Handled {
        let events = split.messages.len();
        if events == 0 {
            return accepted(0);
        }
        let started = Instant::now();
        let deadline = started + config.enqueue_budget;
        if !split.claims.is_empty() {
            let Some(claims) = &self.claims else {
                tracing::error!(target: "ingress", events = split.claims.len(), "an event is too large for a queue message and no claim-check store is configured");
                return rejected(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "event_too_large",
                    "an event is too large for a queue message",
                );
            };
            if let Err(error) = store_claims(claims.as_ref(), &split.claims, deadline).await {
                tracing::error!(target: "ingress", %error, events, "claim-check objects not stored; answering 503 so that the platform retries");
                return not_queued(events, started);
            }
        }
        let mut handled = match self.queue.send_all(&split.messages, deadline).await {
            Ok(()) => accepted(events),
            Err(error) => {
                tracing::error!(target: "ingress", error = %error, events, "events not queued; answering 503 so that the platform retries");
                not_queued(events, started)
            }
        };
        handled.enqueue_time = Some(started.elapsed());
        handled
    }
}

/// Writes the claim-check objects, in parallel, within `deadline`.
async fn store_claims(
    claims: &dyn ClaimStore,
    objects: &[(String, Bytes)],
    deadline: Instant,
) -> Result<(), String> {
    let writes = objects.iter().map(|(object, bytes)| {
        crate::budget::retry_until(deadline, Duration::from_millis(1000), move || {
            claims.put(object, bytes.clone())
        })
    });
    for result in futures::future::join_all(writes).await {
        result.map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn not_queued(events: usize, started: Instant) -> Handled {
    Handled {
        response: text(StatusCode::SERVICE_UNAVAILABLE, "events not queued, retry"),
        platform: None,
        tenant: None,
        outcome: Outcome::EnqueueFailed { events },
        enqueue_time: Some(started.elapsed()),
    }
}

/// The messages of a Meta request, or the answer that refuses it: an object the gateway does not
/// handle, too many items, an envelope that cannot be written.
#[allow(clippy::result_large_err)] // see `verify`
fn meta_split(
    config: &IngressConfig,
    notification: &Notification<'_>,
    options: &SplitOptions<'_>,
) -> Result<Split, Handled> {
    if let MetaObject::Unknown(_) = notification.object {
        // As Meta's own sample app does for objects it does not subscribe to.
        return Err(rejected(
            StatusCode::NOT_FOUND,
            "unknown_object",
            "object not handled",
        ));
    }
    if notification.item_count() > config.max_events {
        return Err(too_many_events());
    }
    meta_messages(notification, options).map_err(|error| encode_failed(&error))
}

fn too_many_events() -> Handled {
    rejected(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_many_events",
        "too many events in one request",
    )
}

fn meta_verification(token: Option<&VerifyToken>, query: &str) -> Handled {
    let refused = || rejected(StatusCode::FORBIDDEN, "verification_refused", "forbidden");
    let Some(token) = token else {
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
                tenant: None,
                outcome: Outcome::Verified,
                enqueue_time: None,
            }
        }
        _ => refused(),
    }
}

/// The platform's signature over a body, with every configured secret: the secrets that
/// verified it, or the refusal. Callers check the size limit first, before an HMAC or a read is
/// spent on the body.
#[allow(clippy::result_large_err)] // once per request, and the refusal is the answer: no box
fn verify(
    secrets: Option<&Secrets>,
    platform: Platform,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<Verified, Handled> {
    type Verify = fn(&Secrets, &[u8], Option<&[u8]>) -> Result<Verified, SignatureError>;
    let (header, verify): (&str, Verify) = match platform {
        Platform::Line => ("x-line-signature", verify_line),
        Platform::Meta => ("x-hub-signature-256", verify_meta),
    };
    let Some(secrets) = secrets else {
        return Err(not_found());
    };
    let signature = headers.get(header).map(|v| v.as_bytes());
    verify(secrets, body, signature).map_err(signature_refused)
}

/// Bodies at least this large are verified on one core while they are read on another (which
/// goes where: [`JOIN_MIN_BYTES`]): HMAC and reading the body cost about the same per byte
/// (BENCHMARKS.md, "Beside the official SDKs"), and the reading's own work spreads over both
/// cores once the hash is done. Below it, waking a pool thread costs more than it saves for a
/// request that arrives alone, as webhook requests do: from 64 KiB, hashing on a pool thread
/// while the caller read made a back-to-back loop of 100 LINE events 23 % faster, and each of
/// those requests 10 % slower when it came alone (`examples/ingress_alone.rs`).
pub const OVERLAP_MIN_BYTES: usize = 128 * 1024;

/// From this size the hash, the longest single task of a body, runs first, on the first pool
/// thread awake, and the reading waits for the second (`rayon::join`); below it the calling
/// thread reads at once while the hash waits for a pool thread. Measured here, requests
/// arriving alone, p50 (`examples/ingress_alone.rs`): reading on the caller, the Meta batch
/// (212 KB) 1.07 -> 0.73 ms, 160 and 250 LINE events (136 and 212 KB) 379 -> 243 us and
/// 541 -> 372 us; the 3.6 MB WhatsApp body 3.4-3.7 -> 4.1 ms (the pool's second core comes up
/// 150-350 us late, and the hash is the longest task there).
pub const JOIN_MIN_BYTES: usize = 1024 * 1024;

/// `verify` and `read` of one body: on two cores when it is large, one after the other when it
/// is small, and then `read` runs only once the body verified. `verify` may run on either
/// thread (it is `Fn`: the calling thread verifies itself when no pool thread has taken it by
/// the end of the reading). They must not depend on each other; the caller uses the reading
/// only once the body verified (the size limit is checked before either runs), so `read` may
/// write the request's messages but must not send them.
pub fn overlapped<V: Send, E: Send, R: Send>(
    body_len: usize,
    verify: impl Fn() -> Result<V, E> + Sync,
    read: impl FnOnce() -> R + Send,
) -> Result<(V, R), E> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    if body_len < OVERLAP_MIN_BYTES {
        let verified = verify()?;
        return Ok((verified, read()));
    }
    if body_len >= JOIN_MIN_BYTES {
        let (verified, read) = rayon::join(&verify, read);
        return Ok((verified?, read));
    }
    // The calling thread reads at once while a pool thread, once awake, verifies; whichever
    // comes first to a verification nobody has started runs it.
    let taken = AtomicBool::new(false);
    let pooled = Mutex::new(None);
    let (read, own) = rayon::in_place_scope(|scope| {
        scope.spawn(|_| {
            if !taken.swap(true, Ordering::AcqRel) {
                let verified = verify();
                if let Ok(mut slot) = pooled.lock() {
                    *slot = Some(verified);
                }
            }
        });
        let read = read();
        let own = (!taken.swap(true, Ordering::AcqRel)).then(&verify);
        (read, own)
    });
    // The scope returns once the pool's job is done, so one of the two verified.
    let verified = match own.or_else(|| pooled.into_inner().ok().flatten()) {
        Some(verified) => verified,
        None => verify(),
    };
    Ok((verified?, read))
}

/// How a LINE request is checked: the secrets, and for a tenant its bot.
struct LineRoute<'a> {
    secrets: &'a Secrets,
    /// The only `destination` the request may name (a tenant's channel).
    bot_user_id: Option<&'a str>,
    tenant: Option<&'a str>,
}

fn body_too_large() -> Handled {
    rejected(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        "payload too large",
    )
}

fn not_found() -> Handled {
    rejected(StatusCode::NOT_FOUND, "not_found", "not found")
}

impl Handled {
    fn on(mut self, platform: Platform) -> Handled {
        self.platform = Some(platform);
        self
    }

    fn for_tenant(mut self, tenant: &str) -> Handled {
        self.tenant = Some(tenant.to_owned());
        self
    }
}

/// Every answer of the ingress: plain text that no browser may sniff as markup (the Meta
/// challenge echoes a query parameter) and no cache may keep.
pub fn text(status: StatusCode, body: impl Into<String>) -> Response<String> {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

fn accepted(events: usize) -> Handled {
    Handled {
        response: text(StatusCode::OK, "OK"),
        platform: None,
        tenant: None,
        outcome: Outcome::Accepted { events },
        enqueue_time: None,
    }
}

fn rejected(status: StatusCode, reason: &'static str, message: &'static str) -> Handled {
    Handled {
        response: text(status, message),
        platform: None,
        tenant: None,
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
    let error = crate::json_error::JsonError::from(error);
    tracing::error!(target: "ingress", %error, "could not encode an envelope");
    Handled {
        response: text(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
        platform: None,
        tenant: None,
        outcome: Outcome::Rejected {
            reason: "encode_failed",
        },
        enqueue_time: None,
    }
}
