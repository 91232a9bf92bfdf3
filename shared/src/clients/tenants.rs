//! The worker's half of the registry ([`crate::tenants`]): each tenant's clients, built once per
//! reload from its tokens, sharing the tenant's limits ([`super::limits`]).

use super::limits::Limiter;
use super::line::LineClient;
use super::meta::MetaClient;
use super::whatsapp::WhatsAppClient;
use super::{ApiBases, Clients};
use crate::tenants::Registry;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

/// One tenant's clients.
#[derive(Debug, Clone, Default)]
pub struct TenantClients {
    pub line: Option<LineClient>,
    /// By page or Instagram account id.
    pub meta: HashMap<String, MetaClient>,
    pub whatsapp: Option<WhatsAppClient>,
}

/// Every tenant's clients, by tenant id.
pub(crate) fn build(
    registry: &Registry,
    http: &reqwest::Client,
    bases: &ApiBases,
) -> BTreeMap<String, TenantClients> {
    registry
        .tenants
        .iter()
        .map(|(id, entry)| {
            // One limiter for all of the tenant's clients: its quota is the tenant's, whatever
            // the platform.
            let limiter = Limiter::new(entry.limits);
            let present = |token: &Option<String>| {
                token
                    .as_deref()
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
            };
            let line = entry.line.as_ref().and_then(|line| {
                let token = present(&line.channel_access_token)?;
                Some(
                    LineClient::new(http.clone(), token, &bases.line, &bases.line_data)
                        .with_limiter(limiter.clone()),
                )
            });
            let meta = entry
                .meta
                .iter()
                .flat_map(|meta| &meta.access_tokens)
                .filter(|(_, token)| !token.trim().is_empty())
                .map(|(account, token)| {
                    let client = MetaClient::new(http.clone(), token.trim(), &bases.graph)
                        .with_limiter(limiter.clone());
                    (account.clone(), client)
                })
                .collect();
            let whatsapp = entry.meta.as_ref().and_then(|meta| {
                let token = present(&meta.whatsapp_access_token)?;
                Some(
                    WhatsAppClient::new(http.clone(), token, &bases.graph)
                        .with_limiter(limiter.clone()),
                )
            });
            let clients = TenantClients {
                line,
                meta,
                whatsapp,
            };
            (id.clone(), clients)
        })
        .collect()
}

impl Clients {
    /// The clients for an event of `tenant`: the tenant's LINE channel, the page or Instagram
    /// account `entry` (a Meta entry id) and its WhatsApp token. A tenant the registry no longer
    /// has gets no clients. Without a tenant, these clients themselves.
    pub fn for_tenant(&self, tenant: Option<&str>, entry: Option<&str>) -> Cow<'_, Clients> {
        let Some(tenant) = tenant else {
            return Cow::Borrowed(self);
        };
        let Some(own) = self.tenants.get(tenant) else {
            tracing::warn!(target: "worker", tenant, "event of a tenant the registry does not have: the bot gets no clients");
            return Cow::Owned(Clients::default());
        };
        Cow::Owned(Clients {
            line: own.line.clone(),
            meta: entry.and_then(|entry| own.meta.get(entry).cloned()),
            whatsapp: own.whatsapp.clone(),
            tenants: Default::default(),
        })
    }

    /// True when the registry these clients were built from has `tenant`.
    pub fn has_tenant(&self, tenant: &str) -> bool {
        self.tenants.contains_key(tenant)
    }

    /// The tenants these clients know.
    pub fn tenant_ids(&self) -> impl Iterator<Item = &str> {
        self.tenants.keys().map(String::as_str)
    }
}
