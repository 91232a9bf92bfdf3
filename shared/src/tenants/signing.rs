//! The ingress's half of the registry: each tenant's signing secrets, keyed once, and the bot,
//! pages, accounts and numbers each secret may speak for.

use super::{Registry, TenantEntry};
use crate::meta::Notification;
use crate::signature::{Secrets, SignatureError, VerifyToken, verify_meta};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};

/// Every tenant's signing side, by tenant id.
#[derive(Debug, Clone, Default)]
pub struct SigningTenants {
    tenants: BTreeMap<String, SigningTenant>,
}

/// One tenant, as the ingress sees it.
#[derive(Debug, Clone, Default)]
pub struct SigningTenant {
    pub line: Option<LineSigning>,
    pub meta: Option<MetaSigning>,
}

/// A LINE channel: its secrets verify only requests whose `destination` is its bot.
#[derive(Debug, Clone)]
pub struct LineSigning {
    pub bot_user_id: String,
    pub secrets: Secrets,
}

/// A tenant's Meta apps.
#[derive(Debug, Clone)]
pub struct MetaSigning {
    pub verify_token: Option<VerifyToken>,
    pub apps: Vec<AppSigning>,
}

/// One Meta app: its secrets, and the entries (page, Instagram account, WhatsApp Business
/// Account ids) and WhatsApp numbers a request it signed may carry.
#[derive(Debug, Clone)]
pub struct AppSigning {
    pub app_id: String,
    pub secrets: Secrets,
    pub accounts: HashSet<String>,
    pub phone_number_ids: HashSet<String>,
}

/// What to do with a Meta entry whose page, account or number the verifying app does not serve
/// for this tenant (`FOREIGN_ENTRIES`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ForeignEntries {
    /// Refuse the whole request (`403`): nothing of it is queued. The default.
    #[default]
    Refuse,
    /// Queue the rest, leave the foreign items out, and log and count them.
    Drop,
}

impl ForeignEntries {
    pub fn parse(text: Option<&str>) -> Result<ForeignEntries, crate::settings::ConfigError> {
        match text.map(str::trim) {
            None | Some("") | Some("refuse") => Ok(ForeignEntries::Refuse),
            Some("drop") => Ok(ForeignEntries::Drop),
            Some(other) => Err(crate::settings::ConfigError {
                name: "FOREIGN_ENTRIES",
                problem: format!("expected refuse or drop, found {other:?}"),
            }),
        }
    }
}

impl SigningTenants {
    /// The signing side of `registry`; tokens in it are not read.
    pub fn from_registry(registry: &Registry) -> SigningTenants {
        SigningTenants {
            tenants: registry
                .tenants
                .iter()
                .map(|(id, entry)| (id.clone(), SigningTenant::from_entry(entry)))
                .collect(),
        }
    }

    pub fn get(&self, tenant: &str) -> Option<&SigningTenant> {
        self.tenants.get(tenant)
    }

    pub fn len(&self) -> usize {
        self.tenants.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tenants.is_empty()
    }
}

impl SigningTenant {
    fn from_entry(entry: &TenantEntry) -> SigningTenant {
        let list = |secrets: &[String]| Secrets::from_list(&secrets.join(","));
        SigningTenant {
            line: entry.line.as_ref().and_then(|line| {
                Some(LineSigning {
                    bot_user_id: line.bot_user_id.clone(),
                    // A channel with no secret has its LINE route off.
                    secrets: list(&line.channel_secrets)?,
                })
            }),
            meta: entry.meta.as_ref().map(|meta| MetaSigning {
                verify_token: meta
                    .verify_token
                    .as_deref()
                    .and_then(|t| VerifyToken::new(t.trim())),
                apps: meta
                    .apps
                    .iter()
                    .filter_map(|app| {
                        Some(AppSigning {
                            app_id: app.app_id.clone(),
                            secrets: list(&app.app_secrets)?,
                            accounts: app
                                .pages
                                .iter()
                                .chain(&app.instagram_accounts)
                                .chain(&app.whatsapp_business_accounts)
                                .cloned()
                                .collect(),
                            phone_number_ids: app.phone_number_ids.iter().cloned().collect(),
                        })
                    })
                    .collect(),
            }),
        }
    }
}

impl MetaSigning {
    /// The apps whose secrets verify `body`. Every app's every secret is tried, so that the time
    /// taken does not tell which matched.
    pub fn verify(&self, body: &[u8], header: Option<&[u8]>) -> Result<Vec<usize>, SignatureError> {
        let mut matched = Vec::new();
        let mut error = SignatureError::Mismatch;
        for (index, app) in self.apps.iter().enumerate() {
            match verify_meta(&app.secrets, body, header) {
                Ok(_) => matched.push(index),
                Err(e) => error = e,
            }
        }
        if matched.is_empty() {
            Err(error)
        } else {
            Ok(matched)
        }
    }

    /// Removes what the apps in `verified` do not serve from `notification`: entries of another
    /// page, account or WhatsApp Business Account, and WhatsApp changes of another number. Returns
    /// how many items were removed.
    pub fn remove_foreign(&self, verified: &[usize], notification: &mut Notification<'_>) -> usize {
        let apps: Vec<&AppSigning> = verified.iter().filter_map(|&i| self.apps.get(i)).collect();
        let mut removed = 0;
        notification.entries.retain_mut(|entry| {
            let id = entry.id_or_empty();
            let serving: Vec<&&AppSigning> = apps
                .iter()
                .filter(|app| app.accounts.contains(id))
                .collect();
            if serving.is_empty() {
                removed += entry.messaging.len() + entry.standby.len() + entry.changes.len();
                return false;
            }
            // A number is checked only when every serving app lists its numbers.
            if serving.iter().all(|app| !app.phone_number_ids.is_empty()) {
                entry.changes.retain(|change| {
                    let keep = match phone_number_id(change.get()) {
                        Some(number) => serving
                            .iter()
                            .any(|app| app.phone_number_ids.contains(&number)),
                        None => true,
                    };
                    removed += usize::from(!keep);
                    keep
                });
            }
            true
        });
        removed
    }
}

/// `value.metadata.phone_number_id` of a WhatsApp change, as a string.
fn phone_number_id(change: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Change {
        value: Option<Value>,
    }
    #[derive(Deserialize)]
    struct Value {
        metadata: Option<Metadata>,
    }
    #[derive(Deserialize)]
    struct Metadata {
        phone_number_id: Option<serde_json::Value>,
    }
    let change: Change = serde_json::from_str(change).ok()?;
    match change.value?.metadata?.phone_number_id? {
        serde_json::Value::String(id) => Some(id),
        serde_json::Value::Number(id) => Some(id.to_string()),
        _ => None,
    }
}
