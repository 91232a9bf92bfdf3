//! The channel registry: several LINE channels, Facebook pages, Instagram accounts and WhatsApp
//! numbers, grouped by tenant, served by one deployment.
//!
//! The registry is one JSON object, the setting `TENANTS` (on AWS a key of each function's
//! Secrets Manager secret, so it is reloaded like every secret and a tenant is added, rotated or
//! removed without a redeploy; locally a TOML or JSON file). A tenant's id is its URL segment:
//! LINE posts to `/line/{tenant}`, Meta to `/meta/{tenant}`.
//!
//! ```json
//! {"brand-a": {
//!    "line": {"bot_user_id": "U…", "channel_id": "1657…",
//!             "channel_secrets": ["new", "old"], "channel_access_token": "…"},
//!    "meta": {"verify_token": "…",
//!             "apps": [{"app_id": "…", "app_secrets": ["…"], "pages": ["…"],
//!                       "instagram_accounts": ["…"], "whatsapp_business_accounts": ["…"],
//!                       "phone_number_ids": ["…"]}],
//!             "access_tokens": {"<page or Instagram account id>": "…"},
//!             "whatsapp_access_token": "…"},
//!    "limits": {"requests_per_second": 20, "concurrency": 4}}}
//! ```
//!
//! Each function reads only its half: the ingress the signing secrets and the ids they may speak
//! for ([`signing`]), the worker the tokens ([`crate::clients::tenants`]). The other half is
//! removed from the document before it is read ([`withhold`]), so the internet-facing ingress
//! never holds a token even when a team keeps one document for both secrets.
//!
//! Isolation: a tenant's events carry its id in the envelope; their deduplication keys and
//! conversation ids are prefixed with it (so the archive and per-conversation order are per
//! tenant); the bot receives that tenant's clients, whose calls share that tenant's rate and
//! concurrency limits only; metrics carry a `Tenant` dimension.

pub mod signing;

use serde::Deserialize;
use std::collections::BTreeMap;
use std::num::NonZeroU32;

/// The setting that holds the registry.
pub const TENANTS: &str = "TENANTS";

/// The longest tenant id: it prefixes keys and conversation ids, which SQS caps at 128.
pub const MAX_TENANT_ID_LEN: usize = 32;

/// Fields that let their holder speak as a bot: only the worker reads them.
pub const TOKEN_FIELDS: &[&str] = &[
    "channel_access_token",
    "access_tokens",
    "whatsapp_access_token",
];

/// Fields that prove a request came from a platform: only the ingress reads them.
pub const SECRET_FIELDS: &[&str] = &["channel_secrets", "app_secrets", "verify_token"];

/// The registry as written: tenants by id.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Registry {
    pub tenants: BTreeMap<String, TenantEntry>,
}

/// One tenant: a brand, a customer, a team.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantEntry {
    #[serde(default)]
    pub line: Option<LineEntry>,
    #[serde(default)]
    pub meta: Option<MetaEntry>,
    /// Outbound API calls of this tenant's clients.
    #[serde(default)]
    pub limits: Limits,
}

/// A LINE channel.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineEntry {
    /// The bot's user id: the `destination` of the channel's webhooks.
    pub bot_user_id: String,
    /// For people reading the registry; not used to route.
    #[serde(default)]
    pub channel_id: Option<String>,
    /// The channel secret, and the previous one while it is being rotated.
    #[serde(default)]
    pub channel_secrets: Vec<String>,
    #[serde(default)]
    pub channel_access_token: Option<String>,
}

/// Facebook pages, Instagram accounts and WhatsApp numbers, by the Meta app that signs their
/// webhooks.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaEntry {
    /// Answers `GET /meta/{tenant}` (the subscription check).
    #[serde(default)]
    pub verify_token: Option<String>,
    #[serde(default)]
    pub apps: Vec<MetaApp>,
    /// Page access tokens, and Instagram tokens, by page or Instagram account id.
    #[serde(default)]
    pub access_tokens: BTreeMap<String, String>,
    /// A system user's token for the tenant's WhatsApp numbers.
    #[serde(default)]
    pub whatsapp_access_token: Option<String>,
}

/// One Meta app and what it may speak for. With Instagram Login, the Instagram app is an app
/// of its own here, with its Instagram app secret.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaApp {
    pub app_id: String,
    /// The app secret, and the previous one while it is being rotated.
    #[serde(default)]
    pub app_secrets: Vec<String>,
    #[serde(default)]
    pub pages: Vec<String>,
    #[serde(default)]
    pub instagram_accounts: Vec<String>,
    #[serde(default)]
    pub whatsapp_business_accounts: Vec<String>,
    /// When set, a WhatsApp change must name one of these numbers in `metadata.phone_number_id`.
    #[serde(default)]
    pub phone_number_ids: Vec<String>,
}

/// A tenant's share of outbound API calls: one tenant's burst cannot spend another's quota.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Calls started per second, across all of the tenant's clients in one process.
    #[serde(default)]
    pub requests_per_second: Option<NonZeroU32>,
    /// Calls in flight at once, in one process.
    #[serde(default)]
    pub concurrency: Option<NonZeroU32>,
}

/// A registry that cannot be used. Names the tenant and the field, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("TENANTS is not a JSON object of tenants: {0}")]
    Malformed(crate::json_error::JsonError),
    #[error(
        "TENANTS: tenant id {0:?} is not 1 to 32 letters, digits, `-` or `_` (it is the URL's last segment)"
    )]
    BadId(String),
    #[error("TENANTS: tenant {tenant}: {problem}")]
    Invalid { tenant: String, problem: String },
}

impl Registry {
    /// Reads the `TENANTS` setting; an absent or blank one is an empty registry.
    pub fn parse(text: Option<&str>) -> Result<Registry, RegistryError> {
        let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
            return Ok(Registry::default());
        };
        let registry: Registry = serde_json::from_str(text)
            .map_err(|e| RegistryError::Malformed(crate::json_error::JsonError::from(e)))?;
        for (id, entry) in &registry.tenants {
            if !is_tenant_id(id) {
                return Err(RegistryError::BadId(id.chars().take(40).collect()));
            }
            entry.check().map_err(|problem| RegistryError::Invalid {
                tenant: id.clone(),
                problem,
            })?;
        }
        Ok(registry)
    }

    pub fn is_empty(&self) -> bool {
        self.tenants.is_empty()
    }
}

impl TenantEntry {
    fn check(&self) -> Result<(), String> {
        if let Some(line) = &self.line
            && !crate::signature::is_line_user_id(&line.bot_user_id)
        {
            return Err("line.bot_user_id is not a LINE user id (U and 32 hex digits)".into());
        }
        if let Some(meta) = &self.meta {
            for (index, app) in meta.apps.iter().enumerate() {
                if app.app_id.trim().is_empty() {
                    return Err(format!("meta.apps[{index}].app_id is empty"));
                }
                let accounts = app.pages.len()
                    + app.instagram_accounts.len()
                    + app.whatsapp_business_accounts.len();
                if accounts == 0 && !app.app_secrets.is_empty() {
                    return Err(format!(
                        "meta.apps[{index}] (app {}) names no page, Instagram account or WhatsApp Business Account: its webhooks would all be refused",
                        app.app_id
                    ));
                }
            }
        }
        Ok(())
    }
}

/// 1 to 32 ASCII letters, digits, `-` or `_`: a URL segment, a metric dimension and a key prefix
/// without escaping.
pub fn is_tenant_id(id: &str) -> bool {
    (1..=MAX_TENANT_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `TENANTS` without `fields` (see [`TOKEN_FIELDS`], [`SECRET_FIELDS`]), and whether any was
/// there. Text that is not JSON comes back unchanged, for the reader to refuse with its error.
pub fn withhold(text: &str, fields: &[&str]) -> (String, bool) {
    let Ok(mut document) = serde_json::from_str::<serde_json::Value>(text) else {
        return (text.to_owned(), false);
    };
    let removed = remove_fields(&mut document, fields);
    (document.to_string(), removed)
}

fn remove_fields(value: &mut serde_json::Value, fields: &[&str]) -> bool {
    let mut removed = false;
    match value {
        serde_json::Value::Object(map) => {
            for field in fields {
                removed |= map.remove(*field).is_some();
            }
            for item in map.values_mut() {
                removed |= remove_fields(item, fields);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                removed |= remove_fields(item, fields);
            }
        }
        _ => {}
    }
    removed
}

/// The tenant part of a deduplication key or conversation id: `{tenant}/{id}`, so that two
/// tenants never share a key, a FIFO message group or an archived conversation.
pub fn scoped(tenant: Option<&str>, id: String) -> String {
    match tenant {
        Some(tenant) => crate::key::fit_conversation(format!("{tenant}/{id}")),
        None => id,
    }
}

/// [`scoped`] of the id that `write` puts at the end of `out`, written there.
pub(crate) fn write_scoped(
    tenant: Option<&str>,
    out: &mut String,
    write: impl FnOnce(&mut String),
) {
    let start = out.len();
    if let Some(tenant) = tenant {
        out.push_str(tenant);
        out.push('/');
    }
    write(out);
    if tenant.is_some() {
        crate::key::fit_in_place(out, start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOT: &str = "U0123456789abcdef0123456789abcdef";

    #[test]
    fn a_registry_reads_and_names_its_problems_without_values() {
        let registry = Registry::parse(Some(&format!(
            r#"{{"a":{{"line":{{"bot_user_id":"{BOT}","channel_secrets":["s1","s0"]}},
                "limits":{{"requests_per_second":5}}}}}}"#
        )))
        .expect("registry");
        assert_eq!(
            registry.tenants["a"]
                .limits
                .requests_per_second
                .map(|n| n.get()),
            Some(5)
        );
        assert!(Registry::parse(None).expect("empty").is_empty());
        assert!(Registry::parse(Some("  ")).expect("empty").is_empty());
        let bad = Registry::parse(Some(r#"{"a/b":{}}"#)).unwrap_err();
        assert!(matches!(bad, RegistryError::BadId(_)));
        let bad = Registry::parse(Some(
            r#"{"a":{"line":{"bot_user_id":"Usecret-looking","channel_secrets":["hunter2"]}}}"#,
        ))
        .unwrap_err()
        .to_string();
        assert!(bad.contains("tenant a") && !bad.contains("hunter2") && !bad.contains("Usecret"));
        let typo = Registry::parse(Some(
            r#"{"a":{"line":{"bot_user_id":"x","chanel_secret":"hunter2"}}}"#,
        ))
        .unwrap_err()
        .to_string();
        assert!(!typo.contains("hunter2"), "{typo}");
        let no_accounts = Registry::parse(Some(
            r#"{"a":{"meta":{"apps":[{"app_id":"1","app_secrets":["s"]}]}}}"#,
        ))
        .unwrap_err()
        .to_string();
        assert!(no_accounts.contains("names no page"), "{no_accounts}");
    }

    #[test]
    fn each_function_gets_its_half_of_the_document() {
        let text = format!(
            r#"{{"a":{{"line":{{"bot_user_id":"{BOT}","channel_secrets":["SECRET-LINE"],"channel_access_token":"TOKEN-LINE"}},
                 "meta":{{"verify_token":"SECRET-VERIFY","apps":[{{"app_id":"1","app_secrets":["SECRET-APP"],"pages":["p"]}}],
                          "access_tokens":{{"p":"TOKEN-PAGE"}},"whatsapp_access_token":"TOKEN-WA"}}}}}}"#
        );
        let (ingress, removed) = withhold(&text, TOKEN_FIELDS);
        assert!(removed);
        assert!(!ingress.contains("TOKEN-"), "{ingress}");
        assert_eq!(ingress.matches("SECRET-").count(), 3);
        assert!(ingress.contains("\"pages\":[\"p\"]"));
        let (worker, removed) = withhold(&text, SECRET_FIELDS);
        assert!(removed);
        assert!(!worker.contains("SECRET-"), "{worker}");
        assert_eq!(worker.matches("TOKEN-").count(), 3);
        assert!(Registry::parse(Some(&worker)).is_ok() && Registry::parse(Some(&ingress)).is_ok());
        let (again, removed) = withhold(&ingress, TOKEN_FIELDS);
        assert!(!removed);
        assert_eq!(again, ingress);
    }

    #[test]
    fn tenant_ids_are_url_segments() {
        assert!(is_tenant_id("brand-a") && is_tenant_id("B_2"));
        for bad in ["", "a/b", "a b", "ä", &"x".repeat(33), ".."] {
            assert!(!is_tenant_id(bad), "{bad:?}");
        }
        assert_eq!(scoped(Some("a"), "line:1".into()), "a/line:1");
        assert_eq!(scoped(None, "line:1".into()), "line:1");
    }
}
