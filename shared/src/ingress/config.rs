//! What the ingress needs to know, read from settings.

use crate::settings::{ConfigError, whole_number};
use crate::signature::{Secrets, VerifyToken};
use crate::tenants::signing::{ForeignEntries, SigningTenants};
use crate::tenants::{Registry, TENANTS};
use std::time::Duration;

/// Default body limit: 4 MiB. WhatsApp notifications reach 3 MB and a 1000-update Meta batch
/// stays well under that; Lambda's 6 MB invocation limit, with API Gateway's base64 encoding of
/// binary bodies, caps what can arrive at about 4.5 MB anyway.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Default limit of events in one request: Meta batches up to 1000 updates; LINE sends fewer.
/// With it, one request's queue messages are at most its body plus about 600 bytes an event,
/// where a body of a million empty events would otherwise become a million messages.
pub const DEFAULT_MAX_EVENTS: usize = 2000;

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
    /// Requests with more events are refused (`413`).
    pub max_events: usize,
    pub enqueue_budget: Duration,
    /// The registry's tenants (`/line/{tenant}`, `/meta/{tenant}`).
    pub tenants: SigningTenants,
    /// What a tenant's Meta request carrying another's page, account or number gets.
    pub foreign_entries: ForeignEntries,
}

impl IngressConfig {
    /// Reads `LINE_CHANNEL_SECRET`, `META_APP_SECRET` (comma-separated lists), `META_VERIFY_TOKEN`,
    /// `MAX_BODY_BYTES`, `MAX_EVENTS_PER_REQUEST`, `ENQUEUE_BUDGET_MS`, the registry `TENANTS`
    /// (see [`crate::tenants`]) and `FOREIGN_ENTRIES` through `var`, usually `std::env::var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<IngressConfig, ConfigError> {
        Ok(IngressConfig {
            line_secrets: var("LINE_CHANNEL_SECRET").and_then(|s| Secrets::from_list(&s)),
            meta_secrets: var("META_APP_SECRET").and_then(|s| Secrets::from_list(&s)),
            meta_verify_token: var("META_VERIFY_TOKEN").and_then(|t| VerifyToken::new(t.trim())),
            max_body_bytes: whole_number(&var, "MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES as u64)?
                as usize,
            max_events: whole_number(&var, "MAX_EVENTS_PER_REQUEST", DEFAULT_MAX_EVENTS as u64)?
                as usize,
            enqueue_budget: Duration::from_millis(whole_number(
                &var,
                "ENQUEUE_BUDGET_MS",
                DEFAULT_ENQUEUE_BUDGET.as_millis() as u64,
            )?),
            tenants: SigningTenants::from_registry(
                &Registry::parse(var(TENANTS).as_deref()).map_err(|e| ConfigError {
                    name: TENANTS,
                    problem: e.to_string(),
                })?,
            ),
            foreign_entries: ForeignEntries::parse(var("FOREIGN_ENTRIES").as_deref())?,
        })
    }

    /// [`IngressConfig::from_vars`] over the process environment.
    pub fn from_env() -> Result<IngressConfig, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }
}
