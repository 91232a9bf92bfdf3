//! The whole gateway in one process: the ingress over HTTP, the worker and the bot, on an
//! embedded SQLite queue and idempotency store. The same ingress and worker code as the Lambda
//! functions ([`shared::ingress`], [`shared::worker`]); only the adapters differ.

mod archive_cli;
pub mod fake_apis;
mod report;
pub mod tenants_file;

pub use archive_cli::print_archive;
use async_trait::async_trait;
use axum::body::Body;
use bytes::Bytes;
use shared::adapters::sqlite::{SqliteClaims, SqliteDb, SqliteQueue, SqliteStore};
use shared::adapters::sqlite_archive::SqliteArchive;
use shared::archive::{Archive, ArchiveConfig};
use shared::bot::{Bot, BotError, BotEvent};
use shared::clients::Clients;
use shared::destinations::DestinationConfig;
use shared::ingress::{Ingress, IngressConfig};
use shared::settings::{Reloading, SecretSource};
use shared::worker::{QueueRecord, Worker, WorkerConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The secrets used when none is configured: the documented test secrets, which also sign the
/// sample events in `events/`.
pub const DEMO_LINE_CHANNEL_SECRET: &str = "test-line-channel-secret";
pub const DEMO_META_APP_SECRET: &str = "test-meta-app-secret";
pub const DEMO_META_VERIFY_TOKEN: &str = "test-meta-verify-token";

/// How the local gateway runs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data: PathBuf,
    /// Run the worker (off: only accept and queue, as when the worker is down).
    pub worker: bool,
    /// How long a received message stays invisible (SQS's visibility timeout).
    pub visibility: Duration,
    /// Receives before a message goes to the dead-letter state (SQS's maxReceiveCount).
    pub max_receives: u32,
    /// Print no line per handled event (benchmarks).
    pub quiet: bool,
    /// Archive every message and its media in the database (`chat-gateway archive` reads it).
    pub archive: bool,
    /// Answer the bot's API calls with [`fake_apis`] on this listener instead of LINE's and
    /// Meta's, printing what it sends (the playground).
    pub fake_apis: bool,
    /// Where handled events go: the bot, or a destination ([`shared::destinations`]).
    pub destination: DestinationConfig,
    /// The registry's file ([`tenants_file`]): `/line/{tenant}` and `/meta/{tenant}`.
    pub tenants: Option<PathBuf>,
}

/// A failure to start or run.
#[derive(Debug)]
pub struct LocalError(pub String);

impl std::fmt::Display for LocalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LocalError {}

fn fail(context: &str, error: impl std::fmt::Display) -> LocalError {
    LocalError(format!("{context}: {error}"))
}

/// A setting from the environment, or its demo value when neither platform is configured.
fn setting(name: &str, demo: bool) -> Option<String> {
    let value = std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    value.or_else(|| demo_value(name, demo))
}

fn demo_value(name: &str, demo: bool) -> Option<String> {
    if !demo {
        return None;
    }
    match name {
        "LINE_CHANNEL_SECRET" => Some(DEMO_LINE_CHANNEL_SECRET.to_owned()),
        "META_APP_SECRET" => Some(DEMO_META_APP_SECRET.to_owned()),
        "META_VERIFY_TOKEN" => Some(DEMO_META_VERIFY_TOKEN.to_owned()),
        _ => None,
    }
}

/// True when neither `LINE_CHANNEL_SECRET` nor `META_APP_SECRET` is set: demo secrets apply.
pub fn demo_mode() -> bool {
    ["LINE_CHANNEL_SECRET", "META_APP_SECRET"]
        .iter()
        .all(|name| std::env::var(name).map_or(true, |v| v.trim().is_empty()))
}

/// The secret `send` signs with: the first of the configured list, or the demo one.
pub fn signing_secret(name: &str) -> Option<String> {
    setting(name, demo_mode()).and_then(|list| {
        list.split(',')
            .map(str::trim)
            .find(|s| !s.is_empty())
            .map(str::to_owned)
    })
}

/// Prints one line per event the bot handles, and tells the fake APIs whom each reply token
/// answers.
struct PrintingBot {
    inner: Arc<dyn Bot>,
    quiet: bool,
    fakes: Option<Arc<fake_apis::FakeApis>>,
}

#[async_trait]
impl Bot for PrintingBot {
    async fn handle(&self, event: &BotEvent, clients: &Clients) -> Result<(), BotError> {
        if let (Some(fakes), shared::bot::BotEventKind::Line { event: line, .. }) =
            (&self.fakes, &event.kind)
            && let Some(token) = line.reply_token()
        {
            let to = line
                .source
                .as_ref()
                .and_then(|s| s.chat_id())
                .unwrap_or("?");
            fakes.hand_out_reply_token(token, to);
        }
        let result = self.inner.handle(event, clients).await;
        if !self.quiet {
            report::bot_ran(event, &result);
        }
        result
    }
}

/// Runs the gateway until `shutdown` resolves.
pub async fn serve(
    settings: Settings,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), LocalError> {
    // With a tenants file the demo secrets stay off: its tenants are what is served.
    let demo = demo_mode() && settings.tenants.is_none();
    let source: Arc<dyn SecretSource> = match &settings.tenants {
        Some(path) => Arc::new(tenants_file::TenantsFile { path: path.clone() }),
        None => Arc::new(shared::settings::EnvironmentOnly),
    };
    // Only a file changes while the gateway runs; the environment does not.
    let refresh = match &settings.tenants {
        Some(_) => tenants_file::REFRESH,
        None => Duration::MAX,
    };
    let config = Reloading::start(source.clone(), refresh, move |var| {
        IngressConfig::from_vars(|name| var(name).or_else(|| demo_value(name, demo)))
    })
    .await
    .map_err(|e| fail("configuration", e))?;
    let tenants = config.current().tenants.len();
    if demo {
        eprintln!(
            "\n  !!! DEMO SECRETS: neither LINE_CHANNEL_SECRET nor META_APP_SECRET is set.\n  \
             !!! Requests signed with the test secrets of the README are accepted.\n  \
             !!! Set your channel secret and app secret before exposing this port.\n"
        );
    }
    let current = config.current();
    let routes = match (
        current.line_secrets.is_some(),
        current.meta_secrets.is_some(),
    ) {
        (true, true) => "POST /line, GET /meta, POST /meta",
        (true, false) => "POST /line; Meta off: META_APP_SECRET is not set",
        (false, true) => "GET /meta, POST /meta; LINE off: LINE_CHANNEL_SECRET is not set",
        (false, false) if tenants > 0 => "single-tenant routes off",
        (false, false) => "no routes: neither secret is set",
    };
    let routes = if settings.tenants.is_some() {
        format!("{routes}; {tenants} tenant(s) on /line/{{tenant}} and /meta/{{tenant}}")
    } else {
        routes.to_owned()
    };
    if let Some(parent) = settings.data.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| fail("creating the data folder", e))?;
    }
    let db = SqliteDb::open(&settings.data).map_err(|e| fail("opening the database", e))?;
    let queue = SqliteQueue::new(db.clone(), settings.max_receives);
    let claims = Arc::new(SqliteClaims::new(db.clone()));
    let max_body = current.max_body_bytes;
    drop(current);
    let ingress =
        Arc::new(Ingress::reloading(config, Arc::new(queue.clone())).with_claims(claims.clone()));

    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| fail(&format!("listening on {}", settings.listen), e))?;
    let address = listener.local_addr().map_err(|e| fail("listening", e))?;
    let fakes = settings
        .fake_apis
        .then(|| fake_apis::FakeApis::new(settings.quiet));
    let fake_base = fakes
        .as_ref()
        .map(|_| format!("http://{address}{}", fake_apis::PREFIX));
    // The tenants' tokens come from the same file, reloaded alike.
    let clients = Reloading::start(source, refresh, move |var| {
        Clients::try_from_vars(|name| match &fake_base {
            Some(base) => match name {
                "LINE_CHANNEL_ACCESS_TOKEN" => Some("playground-line-token".into()),
                "META_PAGE_ACCESS_TOKEN" => Some("playground-page-token".into()),
                "WHATSAPP_ACCESS_TOKEN" => Some("playground-whatsapp-token".into()),
                "LINE_API_BASE_URL" => Some(format!("{base}/line")),
                "LINE_DATA_API_BASE_URL" => Some(format!("{base}/line-data")),
                "META_GRAPH_API_BASE_URL" => Some(format!("{base}/meta")),
                shared::tenants::TENANTS => var(name),
                _ => None,
            },
            None => var(name),
        })
    })
    .await
    .map_err(|e| fail("configuration", e))?;
    let mut worker_parts = None;
    if settings.worker {
        let mut worker_config = WorkerConfig::from_vars(|name| std::env::var(name).ok())
            .map_err(|e| fail("configuration", e))?;
        // Here an "invocation" lasts the whole visibility timeout, so a lease past it would still
        // hold when the message comes back; SQLite does not throttle, so no grace is needed.
        worker_config.lease_grace = Duration::ZERO;
        if let Some(warning) = report::visibility_warning(&worker_config, settings.visibility) {
            eprintln!("{warning}");
        }
        let sdk = match settings.destination {
            DestinationConfig::EventBridge { .. } | DestinationConfig::Lambda { .. } => {
                Some(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
            }
            _ => None,
        };
        let (inner, _) = worker::destination(
            &settings.destination,
            sdk.as_ref(),
            Arc::new(shared::settings::EnvironmentOnly),
            None,
        )
        .await
        .map_err(|e| fail("destination", e))?;
        let bot = PrintingBot {
            inner,
            quiet: settings.quiet,
            fakes: fakes.clone(),
        };
        let dead_letters = report::PrintingDeadLetters {
            inner: queue.clone(),
            quiet: settings.quiet,
        };
        let mut worker = Worker::reloading(
            Arc::new(SqliteStore::new(db.clone())),
            Arc::new(bot),
            clients,
            worker_config,
        )
        .with_dead_letters(Arc::new(dead_letters))
        .with_claims(claims);
        if settings.archive {
            let mut archive_config = ArchiveConfig::from_vars(|name| std::env::var(name).ok())
                .map_err(|e| fail("configuration", e))?;
            if fakes.is_some() {
                // The playground's media (WhatsApp files) comes from its own fake API, on
                // loopback; with the real APIs the fetch policy stays as configured.
                archive_config.fetch =
                    shared::clients::fetch::FetchPolicy::allowing_loopback_for_tests();
            }
            let archive = Arc::new(SqliteArchive::new(db));
            worker = worker.with_archive(
                Arc::new(Archive::new(archive.clone(), archive, archive_config)),
                Arc::new(queue.clone()),
            );
        }
        worker_parts = Some(Arc::new(worker));
    }

    let pump_parts = worker_parts.map(|worker| {
        (
            queue,
            worker,
            settings.visibility,
            Reporting::Print {
                quiet: settings.quiet,
            },
        )
    });
    let delivers_to = match &settings.destination {
        DestinationConfig::Bot => "the bot".to_owned(),
        DestinationConfig::Https { url, .. } => format!("{url} (Standard Webhooks)"),
        DestinationConfig::EventBridge { bus, .. } => format!("EventBridge bus {bus}"),
        DestinationConfig::Lambda { function } => format!("Lambda function {function}"),
    };
    let announce = format!(
        "{routes}; data in {}; worker {} (events to {delivers_to}); archive {}; {}",
        settings.data.display(),
        if settings.worker { "on" } else { "off" },
        if settings.worker && settings.archive {
            "on"
        } else {
            "off"
        },
        if fakes.is_some() {
            "fake LINE and Meta APIs (playground): the bot's messages print here"
        } else {
            "real LINE and Meta APIs"
        }
    );
    let extra = fakes.map(|fakes| axum::Router::new().nest(fake_apis::PREFIX, fakes.router()));
    serve_on(
        listener, ingress, max_body, pump_parts, extra, &announce, shutdown,
    )
    .await
}

/// Whether the pump prints what happened to each event.
#[derive(Debug, Clone, Copy)]
pub enum Reporting {
    Silent,
    Print { quiet: bool },
}

/// Serves `ingress` on `listen` and, when given, pumps the queue to the worker; the building
/// block of [`serve`], for assembling the pipeline from other adapters (fault and load tests).
pub async fn run(
    listen: SocketAddr,
    ingress: Arc<Ingress>,
    max_body: usize,
    pump_parts: Option<(SqliteQueue, Arc<Worker>, Duration)>,
    announce: &str,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), LocalError> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| fail(&format!("listening on {listen}"), e))?;
    let pump_parts = pump_parts
        .map(|(queue, worker, visibility)| (queue, worker, visibility, Reporting::Silent));
    serve_on(
        listener, ingress, max_body, pump_parts, None, announce, shutdown,
    )
    .await
}

type PumpParts = (SqliteQueue, Arc<Worker>, Duration, Reporting);

async fn serve_on(
    listener: tokio::net::TcpListener,
    ingress: Arc<Ingress>,
    max_body: usize,
    pump_parts: Option<PumpParts>,
    extra: Option<axum::Router>,
    announce: &str,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), LocalError> {
    if let Some((queue, worker, visibility, reporting)) = pump_parts {
        tokio::spawn(pump_reporting(queue, worker, visibility, reporting));
    }
    let app = extra
        .unwrap_or_default()
        .fallback(move |request: axum::extract::Request| {
            let ingress = Arc::clone(&ingress);
            async move { handle(&ingress, request, max_body).await }
        })
        .layer(axum::extract::DefaultBodyLimit::disable());
    let address = listener.local_addr().map_err(|e| fail("listening", e))?;
    println!("chat gateway listening on http://{address}  ({announce})");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| fail("serving", e))
}

async fn handle(
    ingress: &Ingress,
    request: axum::extract::Request,
    max_body: usize,
) -> http::Response<Body> {
    let (parts, body) = request.into_parts();
    // One byte more than the limit, so that the ingress itself answers 413 with its log line.
    let bytes: Bytes = match axum::body::to_bytes(body, max_body.saturating_add(1)).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return shared::ingress::text(http::StatusCode::PAYLOAD_TOO_LARGE, "payload too large")
                .map(Body::from);
        }
    };
    ingress
        .handle(http::Request::from_parts(parts, bytes))
        .await
        .map(Body::from)
}

/// Moves messages from the queue to the worker, as Lambda's SQS event source does: batches of
/// ten, handled messages deleted, failed ones left to reappear after the visibility timeout.
pub async fn pump(queue: SqliteQueue, worker: Arc<Worker>, visibility: Duration) {
    pump_reporting(queue, worker, visibility, Reporting::Silent).await
}

async fn pump_reporting(
    queue: SqliteQueue,
    worker: Arc<Worker>,
    visibility: Duration,
    reporting: Reporting,
) {
    loop {
        let received = match queue.receive(10, visibility).await {
            Ok(received) => received,
            Err(error) => {
                tracing::error!(%error, "receiving from the local queue failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if received.is_empty() {
            queue.wait_for_messages(Duration::from_millis(250)).await;
            continue;
        }
        let records: Vec<QueueRecord> = received
            .iter()
            .map(|r| QueueRecord {
                message_id: r.id.to_string(),
                body: r.body.clone(),
                group_id: None,
                receive_count: u32::try_from(r.receive_count).unwrap_or(u32::MAX),
                platform: None,
            })
            .collect();
        // An "invocation" may run until its messages would reappear.
        let deadline_ms = now_ms() + visibility.as_millis() as i64;
        let report = worker.process(&records, deadline_ms).await;
        if let Reporting::Print { quiet: false } = reporting {
            report::outcomes(&records, &report, visibility, worker.config().max_attempts);
        }
        let mut handled = Vec::new();
        for (id, outcome) in &report.outcomes {
            let Ok(id) = id.parse::<i64>() else { continue };
            if outcome.is_failure() {
                let _ = queue.record_failure(id, outcome.label().to_owned()).await;
            } else {
                handled.push(id);
            }
        }
        if let Err(error) = queue.delete(handled).await {
            tracing::error!(%error, "deleting handled messages failed; they will be received again and skipped as duplicates");
        }
    }
}

fn now_ms() -> i64 {
    shared::clock::now_ms()
}

/// True when neither `LINE_CHANNEL_ACCESS_TOKEN` nor `META_PAGE_ACCESS_TOKEN` is set: the
/// playground's fake APIs are on unless asked otherwise.
pub fn no_access_tokens() -> bool {
    ["LINE_CHANNEL_ACCESS_TOKEN", "META_PAGE_ACCESS_TOKEN"]
        .iter()
        .all(|name| std::env::var(name).map_or(true, |v| v.trim().is_empty()))
}

/// A request `send` makes from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub method: String,
    /// Path and query.
    pub path: String,
    pub body: Vec<u8>,
    /// The file's own signature header (name, value), for files signed on purpose with a wrong
    /// secret: kept when the demo secret does not verify it.
    pub signature: Option<(String, String)>,
}

/// The platform of a `send --text` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Platform {
    Line,
    Messenger,
    Whatsapp,
}

/// The bot and user of the sample events in `events/`.
pub const DEMO_LINE_BOT: &str = "Uf00000000000000000000000000000b0";
pub const DEMO_LINE_USER: &str = "U4af4980629000000000000000000c0de";
pub const DEMO_PAGE: &str = "106000000000001";
pub const DEMO_MESSENGER_USER: &str = "2460000000000001";
pub const DEMO_WHATSAPP_ACCOUNT: &str = "102290129340398";
pub const DEMO_WHATSAPP_NUMBER: &str = "106540352242922";
pub const DEMO_WHATSAPP_USER: &str = "16315551181";

/// A webhook body with one text message from `user` (the demo user by default), as the platform
/// would send it, with fresh ids.
pub fn text_event(platform: Platform, text: &str, user: Option<&str>) -> Outgoing {
    let now = now_ms();
    let unique = format!("{now}{:04}", std::process::id() % 10_000);
    let body = match platform {
        Platform::Line => serde_json::json!({
            "destination": DEMO_LINE_BOT,
            "events": [{
                "type": "message",
                "message": {"type": "text", "id": unique, "quoteToken": format!("q{unique}"), "text": text},
                "webhookEventId": format!("01PLAYGROUND{unique}"),
                "deliveryContext": {"isRedelivery": false},
                "timestamp": now,
                "source": {"type": "user", "userId": user.unwrap_or(DEMO_LINE_USER)},
                "replyToken": format!("r{unique}"),
                "mode": "active"
            }]
        }),
        Platform::Messenger => serde_json::json!({
            "object": "page",
            "entry": [{
                "id": DEMO_PAGE,
                "time": now,
                "messaging": [{
                    "sender": {"id": user.unwrap_or(DEMO_MESSENGER_USER)},
                    "recipient": {"id": DEMO_PAGE},
                    "timestamp": now,
                    "message": {"mid": format!("m_playground_{unique}"), "text": text}
                }]
            }]
        }),
        Platform::Whatsapp => serde_json::json!({
            "object": "whatsapp_business_account",
            "entry": [{
                "id": DEMO_WHATSAPP_ACCOUNT,
                "changes": [{"field": "messages", "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550783881", "phone_number_id": DEMO_WHATSAPP_NUMBER},
                    "contacts": [{"profile": {"name": "Demo user"}, "wa_id": user.unwrap_or(DEMO_WHATSAPP_USER)}],
                    "messages": [{"from": user.unwrap_or(DEMO_WHATSAPP_USER),
                        "id": format!("wamid.PLAYGROUND{unique}"), "timestamp": (now / 1000).to_string(),
                        "type": "text", "text": {"body": text}}]
                }}]
            }]
        }),
    };
    Outgoing {
        method: "POST".into(),
        path: match platform {
            Platform::Line => "/line".into(),
            Platform::Messenger | Platform::Whatsapp => "/meta".into(),
        },
        body: body.to_string().into_bytes(),
        signature: None,
    }
}

/// Reads a file for `send`: an API Gateway event from `events/` (its method, path, query and
/// body, decoded from base64 where flagged), or a raw webhook body (LINE's when it has
/// `destination`, Meta's when it has `object`), whose bytes are sent exactly as they are.
pub fn outgoing_from_file(bytes: &[u8]) -> Result<Outgoing, LocalError> {
    use base64::Engine as _;
    let json: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| fail("the file is not JSON", e))?;
    if json.get("requestContext").is_some() {
        let method = json["requestContext"]["http"]["method"]
            .as_str()
            .or_else(|| json["httpMethod"].as_str())
            .unwrap_or("POST")
            .to_owned();
        let mut path = json["rawPath"]
            .as_str()
            .or_else(|| json["path"].as_str())
            .unwrap_or("/")
            .to_owned();
        if let Some(query) = json["rawQueryString"].as_str().filter(|q| !q.is_empty()) {
            path = format!("{path}?{query}");
        }
        let body = json["body"].as_str().unwrap_or("");
        let body = if json["isBase64Encoded"] == true {
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .map_err(|e| fail("the event's body is not base64", e))?
        } else {
            body.as_bytes().to_vec()
        };
        let signature = json["headers"].as_object().and_then(|headers| {
            headers.iter().find_map(|(name, value)| {
                let name = name.to_ascii_lowercase();
                (name == "x-line-signature" || name == "x-hub-signature-256")
                    .then(|| value.as_str().map(|v| (name, v.to_owned())))
                    .flatten()
            })
        });
        return Ok(Outgoing {
            method,
            path,
            body,
            signature,
        });
    }
    let path = if json.get("destination").is_some() {
        "/line"
    } else if json.get("object").is_some() {
        "/meta"
    } else {
        return Err(LocalError(
            "not an API Gateway event, a LINE body (destination) or a Meta body (object)".into(),
        ));
    };
    Ok(Outgoing {
        method: "POST".into(),
        path: path.into(),
        body: bytes.to_vec(),
        signature: None,
    })
}

/// True when a file's signature is one the demo secrets did not make: it is wrong on purpose.
fn deliberately_wrong(outgoing: &Outgoing) -> bool {
    let Some((name, value)) = &outgoing.signature else {
        return false;
    };
    let demo = if name == "x-line-signature" {
        shared::signature::sign_line(DEMO_LINE_CHANNEL_SECRET, &outgoing.body)
    } else {
        shared::signature::sign_meta(DEMO_META_APP_SECRET, &outgoing.body)
    };
    &demo != value
}

/// Signs `outgoing` with the configured (or demo) secret and sends it to `base_url`; returns the
/// status and body of the answer.
pub async fn send(base_url: &str, outgoing: &Outgoing) -> Result<(u16, String), LocalError> {
    let client = reqwest::Client::new();
    let url = format!("{}{}", base_url.trim_end_matches('/'), outgoing.path);
    let request = if outgoing.method.eq_ignore_ascii_case("GET") {
        client.get(&url)
    } else {
        let mut request = client
            .post(&url)
            .header("content-type", "application/json")
            .body(outgoing.body.clone());
        if let Some((name, value)) = outgoing
            .signature
            .as_ref()
            .filter(|_| deliberately_wrong(outgoing))
        {
            request = request.header(name.as_str(), value.as_str());
        } else if outgoing.path.starts_with("/line") {
            let secret = signing_secret("LINE_CHANNEL_SECRET")
                .ok_or_else(|| LocalError("LINE_CHANNEL_SECRET is empty".into()))?;
            request = request.header(
                "x-line-signature",
                shared::signature::sign_line(&secret, &outgoing.body),
            );
        } else if outgoing.path.starts_with("/meta") {
            let secret = signing_secret("META_APP_SECRET")
                .ok_or_else(|| LocalError("META_APP_SECRET is empty".into()))?;
            request = request.header(
                "x-hub-signature-256",
                shared::signature::sign_meta(&secret, &outgoing.body),
            );
        }
        request
    };
    let response = request.send().await.map_err(|e| {
        if e.is_connect() {
            LocalError(format!(
                "nobody is listening at {base_url}: is the gateway running? (chat-gateway serve, or cargo run -p local)"
            ))
        } else {
            fail(&format!("sending to {url}"), e)
        }
    })?;
    let status = response.status().as_u16();
    Ok((status, response.text().await.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_events_and_raw_bodies_become_requests() {
        let event = br#"{"rawPath":"/meta","rawQueryString":"hub.mode=subscribe","requestContext":{"http":{"method":"GET"}}}"#;
        let outgoing = outgoing_from_file(event).expect("event");
        assert_eq!(
            (outgoing.method.as_str(), outgoing.path.as_str()),
            ("GET", "/meta?hub.mode=subscribe")
        );
        let encoded = br#"{"rawPath":"/line","requestContext":{"http":{"method":"POST"}},"body":"e30=","isBase64Encoded":true}"#;
        assert_eq!(outgoing_from_file(encoded).expect("event").body, b"{}");
        let raw = br#"{ "destination": "U0", "events": [] }"#;
        let outgoing = outgoing_from_file(raw).expect("raw");
        assert_eq!(
            (outgoing.path.as_str(), outgoing.body.as_slice()),
            ("/line", &raw[..])
        );
        assert!(outgoing_from_file(br#"{"hello":1}"#).is_err());
        assert!(outgoing_from_file(b"nope").is_err());
    }
}
