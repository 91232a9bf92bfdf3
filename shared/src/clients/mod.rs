//! Clients for the platforms' APIs, for bots to reply with: [`line::LineClient`] and
//! [`meta::MetaClient`], built once per process from the environment ([`Clients::from_env`]).
//!
//! Every call has a timeout and is retried on `429` and `5xx` (honouring `Retry-After`) with
//! jittered exponential backoff, but never past the deadline the worker gives the event: a
//! call that cannot finish in time fails, the event is released, and SQS delivers it again.

pub mod fetch;
pub mod limits;
pub mod line;
pub mod meta;
pub mod tenants;
pub mod throughput;
pub mod whatsapp;

use std::time::Duration;
use tokio::time::Instant;

/// The API clients a bot may use; a client is `None` when its access token is not configured.
/// The worker hands the bot the clients of the event's tenant ([`Clients::for_tenant`]).
#[derive(Debug, Clone, Default)]
pub struct Clients {
    pub line: Option<line::LineClient>,
    pub meta: Option<meta::MetaClient>,
    /// The WhatsApp Cloud API (`WHATSAPP_ACCESS_TOKEN`, a system user's token).
    pub whatsapp: Option<whatsapp::WhatsAppClient>,
    /// The registry's tenants' clients ([`tenants`]).
    tenants: std::sync::Arc<std::collections::BTreeMap<String, tenants::TenantClients>>,
}

/// Where the APIs are: the platforms', or stand-ins (tests, the playground).
#[derive(Debug, Clone)]
pub(crate) struct ApiBases {
    pub line: String,
    pub line_data: String,
    pub graph: String,
}

impl Clients {
    /// Reads `LINE_CHANNEL_ACCESS_TOKEN`, `LINE_API_BASE_URL`, `LINE_DATA_API_BASE_URL`,
    /// `META_PAGE_ACCESS_TOKEN`, `WHATSAPP_ACCESS_TOKEN`, `META_GRAPH_API_BASE_URL` and the
    /// registry's tokens (`TENANTS`) through `var`. A registry that cannot be read is logged and
    /// left out; [`Clients::try_from_vars`] refuses it instead.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Clients {
        match Clients::try_from_vars(&var) {
            Ok(clients) => clients,
            Err(error) => {
                tracing::error!(target: "settings", %error, "the tenants' clients are left out");
                Clients::try_from_vars(|name| match name {
                    crate::tenants::TENANTS => None,
                    other => var(other),
                })
                .unwrap_or_default()
            }
        }
    }

    /// [`Clients::from_vars`], failing on a registry that cannot be read.
    pub fn try_from_vars(
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Clients, crate::tenants::RegistryError> {
        let http = http_client();
        let present = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let bases = ApiBases {
            line: present("LINE_API_BASE_URL").unwrap_or_else(|| line::DEFAULT_API_BASE_URL.into()),
            line_data: present("LINE_DATA_API_BASE_URL")
                .unwrap_or_else(|| line::DEFAULT_DATA_API_BASE_URL.into()),
            graph: present("META_GRAPH_API_BASE_URL")
                .unwrap_or_else(|| meta::DEFAULT_GRAPH_API_BASE_URL.into()),
        };
        let registry = crate::tenants::Registry::parse(var(crate::tenants::TENANTS).as_deref())?;
        let tenants = std::sync::Arc::new(tenants::build(&registry, &http, &bases));
        Ok(Clients {
            tenants,
            line: present("LINE_CHANNEL_ACCESS_TOKEN").map(|token| {
                line::LineClient::new(http.clone(), token, &bases.line, &bases.line_data)
            }),
            meta: present("META_PAGE_ACCESS_TOKEN")
                .map(|token| meta::MetaClient::new(http.clone(), token, &bases.graph)),
            whatsapp: present("WHATSAPP_ACCESS_TOKEN")
                .map(|token| whatsapp::WhatsAppClient::new(http.clone(), token, &bases.graph)),
        })
    }

    /// [`Clients::from_vars`] over the process environment.
    pub fn from_env() -> Clients {
        Self::from_vars(|name| std::env::var(name).ok())
    }
}

/// The one HTTP client of the process: connection pooling across events and invocations.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .timeout(MAX_ATTEMPT)
        .pool_idle_timeout(Duration::from_secs(50))
        .build()
        .unwrap_or_default()
}

/// The longest one attempt may take.
const MAX_ATTEMPT: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// No attempt is started with less time than this left.
const MIN_ATTEMPT: Duration = Duration::from_millis(100);

/// A platform API call that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The platform answered with a status that retrying cannot fix (most 4xx).
    #[error("{api} answered {status}: {message}")]
    Refused {
        api: &'static str,
        status: u16,
        /// The platform's own error message (never the request body).
        message: String,
    },
    /// `429`, `5xx` or the network, still failing when the deadline came.
    #[error("{api} still failing at the deadline after {attempts} attempts: {last}")]
    Unavailable {
        api: &'static str,
        attempts: u32,
        last: String,
    },
    /// The answer could not be read.
    #[error("{api} answered something unreadable: {reason}")]
    Unreadable { api: &'static str, reason: String },
    /// A URL, a redirect or a resolved address the fetch policy refuses; not retried.
    #[error("{api} not fetched: {reason}")]
    NotAllowed { api: &'static str, reason: String },
    /// A download larger than the configured limit; left alone, not retried.
    #[error("{api} sent a file larger than the limit of {limit} bytes")]
    TooLarge { api: &'static str, limit: usize },
}

impl ApiError {
    /// The HTTP status of a refusal.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Sends the request `build` makes until it succeeds, retrying `429`, `5xx` and network errors
/// with backoff until `deadline`.
pub(crate) async fn send_with_retries(
    limiter: Option<&limits::Limiter>,
    api: &'static str,
    build: impl Fn() -> reqwest::RequestBuilder,
    deadline: Instant,
) -> Result<reqwest::Response, ApiError> {
    let mut backoff = FIRST_BACKOFF;
    let mut attempts = 0;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining < MIN_ATTEMPT {
            return Err(ApiError::Unavailable {
                api,
                attempts,
                last: if attempts == 0 {
                    "no time left to try".into()
                } else {
                    "no time left to retry".into()
                },
            });
        }
        // The tenant's rate and concurrency (see `limits`): every attempt takes its turn.
        let turn = match limiter {
            Some(limiter) => match limiter.turn(deadline).await {
                Some(turn) => Some(turn),
                None => {
                    return Err(ApiError::Unavailable {
                        api,
                        attempts,
                        last: "the tenant's rate or concurrency limit held the call until the deadline"
                            .into(),
                    });
                }
            },
            None => None,
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        attempts += 1;
        let sent = build().timeout(remaining.min(MAX_ATTEMPT)).send().await;
        drop(turn);
        let (last, retry_after) = match sent {
            Ok(response) if response.status().is_success() => return Ok(response),
            Ok(response)
                if response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS
                    || response.status().is_server_error() =>
            {
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                (
                    format!("status {}", response.status().as_u16()),
                    retry_after,
                )
            }
            Ok(response) => {
                let status = response.status().as_u16();
                return Err(ApiError::Refused {
                    api,
                    status,
                    message: error_message(response).await,
                });
            }
            Err(error) => {
                if let Some(refused) = refused_by_policy(&error) {
                    return Err(ApiError::NotAllowed {
                        api,
                        reason: refused.0.clone(),
                    });
                }
                (format!("request failed: {}", without_url(&error)), None)
            }
        };
        let wait = retry_after.unwrap_or_else(|| backoff.mul_f64(0.5 + fastrand::f64() / 2.0));
        if Instant::now() + wait + MIN_ATTEMPT > deadline {
            return Err(ApiError::Unavailable {
                api,
                attempts,
                last,
            });
        }
        tracing::warn!(target: "api", api, attempts, reason = %last, retry_in_ms = wait.as_millis() as u64, "retrying");
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// A downloaded file and its content type. Holds its share of the caller's in-flight byte
/// budget until dropped.
#[derive(Debug)]
pub struct Download {
    pub content_type: String,
    pub bytes: bytes::Bytes,
    _budget: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// Downloads what `build` asks for, with [`send_with_retries`]'s retries, reading at most
/// `max_bytes`. A `202` (LINE: a video or audio file still being prepared) counts as not yet
/// available, so the caller tries again later. With `in_flight` (permits are kibibytes), the
/// file's size (or `max_bytes` when the answer does not say) is taken from that budget before its
/// body is read, so concurrent downloads cannot together outgrow the process.
pub(crate) async fn download(
    limiter: Option<&limits::Limiter>,
    api: &'static str,
    build: impl Fn() -> reqwest::RequestBuilder,
    deadline: Instant,
    max_bytes: usize,
    in_flight: Option<&ByteBudget>,
) -> Result<Download, ApiError> {
    let mut response = send_with_retries(limiter, api, build, deadline).await?;
    if response.status() == reqwest::StatusCode::ACCEPTED {
        return Err(ApiError::Unavailable {
            api,
            attempts: 1,
            last: "202: the content is still being prepared".into(),
        });
    }
    let declared = response.content_length();
    if declared.is_some_and(|n| n > max_bytes as u64) {
        return Err(ApiError::TooLarge {
            api,
            limit: max_bytes,
        });
    }
    let expected = declared.map_or(max_bytes, |n| n as usize);
    let budget = match in_flight {
        Some(budget) => match budget.take(expected, deadline).await {
            Some(permit) => Some(permit),
            None => {
                return Err(ApiError::Unavailable {
                    api,
                    attempts: 1,
                    last: "other downloads held the memory budget until the deadline".into(),
                });
            }
        },
        None => None,
    };
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    // Sized once: growing a buffer by doubling held up to twice the file.
    let mut bytes = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let chunk = match tokio::time::timeout(remaining, response.chunk()).await {
            Ok(Ok(chunk)) => chunk,
            Ok(Err(error)) => {
                return Err(ApiError::Unavailable {
                    api,
                    attempts: 1,
                    last: format!("download failed: {}", without_url(&error)),
                });
            }
            Err(_) => {
                return Err(ApiError::Unavailable {
                    api,
                    attempts: 1,
                    last: "download still running at the deadline".into(),
                });
            }
        };
        let Some(chunk) = chunk else { break };
        if bytes.len() + chunk.len() > max_bytes {
            return Err(ApiError::TooLarge {
                api,
                limit: max_bytes,
            });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Download {
        content_type,
        bytes: bytes.into(),
        _budget: budget,
    })
}

/// A cap on the bytes of downloads held in memory at once, shared by concurrent downloads.
#[derive(Debug, Clone)]
pub struct ByteBudget {
    kib: std::sync::Arc<tokio::sync::Semaphore>,
    capacity_kib: u32,
}

impl ByteBudget {
    pub fn new(bytes: usize) -> ByteBudget {
        let capacity_kib = u32::try_from(bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX >> 4);
        ByteBudget {
            kib: std::sync::Arc::new(tokio::sync::Semaphore::new(capacity_kib as usize)),
            capacity_kib,
        }
    }

    /// Kibibytes free now.
    pub fn available_kib(&self) -> usize {
        self.kib.available_permits()
    }

    /// Takes `bytes` (at most the whole budget) until `deadline`.
    async fn take(
        &self,
        bytes: usize,
        deadline: Instant,
    ) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let kib = u32::try_from(bytes.div_ceil(1024).max(1))
            .unwrap_or(u32::MAX)
            .min(self.capacity_kib);
        tokio::time::timeout_at(deadline, self.kib.clone().acquire_many_owned(kib))
            .await
            .ok()?
            .ok()
    }
}

/// The platform's error message from an error answer: LINE and Meta both answer JSON with a
/// `message` (Meta: `error.message`). Cut short; never the request.
async fn error_message(response: reqwest::Response) -> String {
    let text = response.text().await.unwrap_or_default();
    let parsed: Option<serde_json::Value> = serde_json::from_str(&text).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| {
            v.get("message")
                .or_else(|| v.get("error").and_then(|e| e.get("message")))
        })
        .and_then(|m| m.as_str())
        .map(str::to_owned)
        .unwrap_or(text);
    message.chars().take(200).collect()
}

/// The fetch policy's refusal somewhere in `error`'s chain (from the resolver or a redirect).
fn refused_by_policy(error: &reqwest::Error) -> Option<&fetch::Refused> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(refused) = current.downcast_ref::<fetch::Refused>() {
            return Some(refused);
        }
        source = current.source();
    }
    None
}

/// reqwest errors name the URL, and a URL may carry a token: leave it out.
fn without_url(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "body"
    } else {
        "request"
    };
    kind.to_owned()
}
