//! The whole gateway in one process: the ingress over HTTP, the worker and the bot, on an
//! embedded SQLite queue and idempotency store. The same ingress and worker code as the Lambda
//! functions ([`shared::ingress`], [`shared::worker`]); only the adapters differ.

mod archive_cli;

pub use archive_cli::print_archive;
use async_trait::async_trait;
use axum::body::Body;
use bytes::Bytes;
use shared::adapters::sqlite::{SqliteClaims, SqliteDb, SqliteQueue, SqliteStore};
use shared::adapters::sqlite_archive::SqliteArchive;
use shared::archive::{Archive, ArchiveConfig};
use shared::bot::{Bot, BotError, BotEvent};
use shared::clients::Clients;
use shared::ingress::{Ingress, IngressConfig};
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
    if value.is_some() || !demo {
        return value;
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

/// Prints one line per event the bot handles (kind, key, conversation, outcome; never content).
struct PrintingBot<B> {
    inner: B,
    quiet: bool,
}

#[async_trait]
impl<B: Bot> Bot for PrintingBot<B> {
    async fn handle(&self, event: &BotEvent, clients: &Clients) -> Result<(), BotError> {
        let result = self.inner.handle(event, clients).await;
        if self.quiet {
            return result;
        }
        println!(
            "{} {:<5} {:<24} {}  ({})",
            if result.is_ok() { "handled" } else { "FAILED " },
            event.platform.as_str(),
            event.type_name(),
            event.key,
            event.conversation
        );
        result
    }
}

/// Runs the gateway until `shutdown` resolves.
pub async fn serve(
    settings: Settings,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), LocalError> {
    let demo = demo_mode();
    let config = IngressConfig::from_vars(|name| setting(name, demo))
        .map_err(|e| fail("configuration", e))?;
    if demo {
        eprintln!(
            "\n  !!! DEMO SECRETS: neither LINE_CHANNEL_SECRET nor META_APP_SECRET is set.\n  \
             !!! Requests signed with the test secrets of the README are accepted.\n  \
             !!! Set your channel secret and app secret before exposing this port.\n"
        );
    }
    if let Some(parent) = settings.data.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| fail("creating the data folder", e))?;
    }
    let db = SqliteDb::open(&settings.data).map_err(|e| fail("opening the database", e))?;
    let queue = SqliteQueue::new(db.clone(), settings.max_receives);
    let claims = Arc::new(SqliteClaims::new(db.clone()));
    let max_body = config.max_body_bytes;
    let ingress =
        Arc::new(Ingress::new(config, Arc::new(queue.clone())).with_claims(claims.clone()));

    let mut worker_parts = None;
    if settings.worker {
        let mut worker_config = WorkerConfig::from_vars(|name| std::env::var(name).ok())
            .map_err(|e| fail("configuration", e))?;
        // Here an "invocation" lasts the whole visibility timeout, so a lease past it would still
        // hold when the message comes back; SQLite does not throttle, so no grace is needed.
        worker_config.lease_grace = Duration::ZERO;
        let bot = PrintingBot {
            inner: worker::bot::ExampleBot,
            quiet: settings.quiet,
        };
        let mut worker = Worker::new(
            Arc::new(SqliteStore::new(db.clone())),
            Arc::new(bot),
            Clients::from_env(),
            worker_config,
        )
        .with_dead_letters(Arc::new(queue.clone()))
        .with_claims(claims);
        if settings.archive {
            let archive_config = ArchiveConfig::from_vars(|name| std::env::var(name).ok())
                .map_err(|e| fail("configuration", e))?;
            let archive = Arc::new(SqliteArchive::new(db));
            worker = worker.with_archive(
                Arc::new(Archive::new(archive.clone(), archive, archive_config)),
                Arc::new(queue.clone()),
            );
        }
        worker_parts = Some(Arc::new(worker));
    }

    let pump_parts = worker_parts.map(|worker| (queue, worker, settings.visibility));
    let announce = format!(
        "data in {}; worker {}; archive {}",
        settings.data.display(),
        if settings.worker { "on" } else { "off" },
        if settings.worker && settings.archive {
            "on"
        } else {
            "off"
        }
    );
    run(
        settings.listen,
        ingress,
        max_body,
        pump_parts,
        &announce,
        shutdown,
    )
    .await
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
    if let Some((queue, worker, visibility)) = pump_parts {
        tokio::spawn(pump(queue, worker, visibility));
    }
    let app = axum::Router::new()
        .fallback(move |request: axum::extract::Request| {
            let ingress = Arc::clone(&ingress);
            async move { handle(&ingress, request, max_body).await }
        })
        .layer(axum::extract::DefaultBodyLimit::disable());
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| fail(&format!("listening on {listen}"), e))?;
    let address = listener.local_addr().map_err(|e| fail("listening", e))?;
    println!(
        "chat gateway listening on http://{address}  (POST /line, GET /meta, POST /meta; {announce})"
    );
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

/// A request `send` makes from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub method: String,
    /// Path and query.
    pub path: String,
    pub body: Vec<u8>,
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
        return Ok(Outgoing { method, path, body });
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
    })
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
        if outgoing.path.starts_with("/line") {
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
    let response = request
        .send()
        .await
        .map_err(|e| fail(&format!("sending to {url}"), e))?;
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
