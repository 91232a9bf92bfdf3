//! Where secrets and settings come from, and how they stay fresh.
//!
//! A setting is looked up by its environment variable name (`LINE_CHANNEL_SECRET`,
//! `META_PAGE_ACCESS_TOKEN`, …): first in the process environment (local runs and tests), then in
//! a [`SecretSource`] (on AWS, one Secrets Manager secret holding a JSON object with the same
//! names). [`Reloading`] builds a value (an ingress configuration, the API clients) from those
//! settings at start-up and rebuilds it in the background at most every few minutes, so that a
//! rotated secret takes effect without a redeploy and no request waits for Secrets Manager.

use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::time::Instant;

/// How often a [`Reloading`] value is rebuilt from its source, at most.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(300);

/// Settings by name.
pub type Values = HashMap<String, String>;

/// A secret source failed.
#[derive(Debug, thiserror::Error)]
#[error("secret {id}: {reason}")]
pub struct SecretError {
    pub id: String,
    pub reason: String,
}

/// Somewhere settings are kept outside the environment.
#[async_trait]
pub trait SecretSource: Send + Sync {
    async fn fetch(&self) -> Result<Values, SecretError>;
}

/// No secret source: everything comes from the environment.
#[derive(Debug, Default, Clone)]
pub struct EnvironmentOnly;

#[async_trait]
impl SecretSource for EnvironmentOnly {
    async fn fetch(&self) -> Result<Values, SecretError> {
        Ok(Values::new())
    }
}

/// The settings only the ingress may hold: they prove a request came from LINE or Meta.
pub const SIGNING_SECRETS: &[&str] = &[
    "LINE_CHANNEL_SECRET",
    "META_APP_SECRET",
    "META_VERIFY_TOKEN",
];

/// The settings only the worker may hold: they let their holder speak as the bot.
pub const API_TOKENS: &[&str] = &[
    "LINE_CHANNEL_ACCESS_TOKEN",
    "META_PAGE_ACCESS_TOKEN",
    "WHATSAPP_ACCESS_TOKEN",
];

/// A source that drops the settings its function must not hold (least privilege in code, behind
/// the IAM policies that give each function its own secret): the internet-facing ingress never
/// keeps an API token in memory, the worker never a signing secret, and the same goes for each
/// tenant's fields in the registry (`TENANTS`, see [`crate::tenants::withhold`]). A value found there is
/// logged by name only, so that a deployment upgraded from one shared secret learns what to move.
pub struct Withholding {
    inner: Arc<dyn SecretSource>,
    names: &'static [&'static str],
    /// The same half of the registry's tenants (`TENANTS`).
    tenant_fields: &'static [&'static str],
    holder: &'static str,
}

impl Withholding {
    /// `inner` without `names`; `holder` names the function in the warning.
    pub fn new(
        inner: Arc<dyn SecretSource>,
        names: &'static [&'static str],
        holder: &'static str,
    ) -> Arc<Withholding> {
        let tenant_fields = if names == API_TOKENS {
            crate::tenants::TOKEN_FIELDS
        } else {
            crate::tenants::SECRET_FIELDS
        };
        Arc::new(Withholding {
            inner,
            names,
            tenant_fields,
            holder,
        })
    }
}

#[async_trait]
impl SecretSource for Withholding {
    async fn fetch(&self) -> Result<Values, SecretError> {
        let mut values = self.inner.fetch().await?;
        let mut misplaced = Vec::new();
        for name in self.names {
            if let Some(value) = values.remove(*name)
                && !value.trim().is_empty()
            {
                misplaced.push(*name);
            }
        }
        if let Some(registry) = values.get_mut(crate::tenants::TENANTS) {
            let (kept, removed) = crate::tenants::withhold(registry, self.tenant_fields);
            *registry = kept;
            if removed {
                misplaced.push("TENANTS (the other function's fields)");
            }
        }
        if !misplaced.is_empty() {
            tracing::warn!(
                target: "settings",
                holder = self.holder,
                misplaced = %misplaced.join(","),
                "the secret holds settings this function must not have; they are ignored here: move them to the other function's secret (SECURITY.md)"
            );
        }
        Ok(values)
    }
}

/// Several sources read as one: a setting is taken from the first source that has it (the worker
/// reads its API tokens from one secret and the HTTPS destination's signing secrets from another).
/// Any source failing fails the fetch, so that a half-read configuration is never used.
pub struct Layered(pub Vec<Arc<dyn SecretSource>>);

#[async_trait]
impl SecretSource for Layered {
    async fn fetch(&self) -> Result<Values, SecretError> {
        let mut values = Values::new();
        for source in &self.0 {
            for (name, value) in source.fetch().await? {
                values.entry(name).or_insert(value);
            }
        }
        Ok(values)
    }
}

/// Looks `name` up in the environment, then in `secrets`; empty values count as absent.
pub fn lookup(secrets: &Values, name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| secrets.get(name).filter(|v| !v.trim().is_empty()).cloned())
}

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("configuration variable {name}: {problem}")]
pub struct ConfigError {
    pub name: &'static str,
    pub problem: String,
}

/// Reads `name` through `var` as a positive whole number; `None` when it is unset.
pub fn positive_number(
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

/// Reads `name` through `var` as a whole number (0 allowed), `default` when it is unset.
pub fn whole_number(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
) -> Result<u64, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(text) => text.trim().parse().map_err(|e| ConfigError {
            name,
            problem: format!("not a whole number: {e}"),
        }),
    }
}

type Build<T, E> = dyn Fn(&dyn Fn(&str) -> Option<String>) -> Result<T, E> + Send + Sync;

/// A value built from settings and rebuilt from its source in the background.
pub struct Reloading<T> {
    current: RwLock<Arc<T>>,
    loaded_at: Mutex<Instant>,
    reloading: AtomicBool,
    every: Duration,
    source: Arc<dyn SecretSource>,
    build: Box<Build<T, String>>,
}

impl<T: Send + Sync + 'static> Reloading<T> {
    /// Fetches the settings and builds the first value; fails when either fails, so that a
    /// function with unusable settings does not start.
    pub async fn start<E: std::fmt::Display>(
        source: Arc<dyn SecretSource>,
        every: Duration,
        build: impl Fn(&dyn Fn(&str) -> Option<String>) -> Result<T, E> + Send + Sync + 'static,
    ) -> Result<Arc<Reloading<T>>, String> {
        let build: Box<Build<T, String>> =
            Box::new(move |var| build(var).map_err(|e| e.to_string()));
        let values = source.fetch().await.map_err(|e| e.to_string())?;
        let first = build(&|name| lookup(&values, name))?;
        Ok(Arc::new(Reloading {
            current: RwLock::new(Arc::new(first)),
            loaded_at: Mutex::new(Instant::now()),
            reloading: AtomicBool::new(false),
            every,
            source,
            build,
        }))
    }

    /// A value that never reloads.
    pub fn fixed(value: T) -> Arc<Reloading<T>> {
        Arc::new(Reloading {
            current: RwLock::new(Arc::new(value)),
            loaded_at: Mutex::new(Instant::now()),
            reloading: AtomicBool::new(false),
            every: Duration::MAX,
            source: Arc::new(EnvironmentOnly),
            build: Box::new(|_| Err("a fixed value is not rebuilt".to_owned())),
        })
    }

    /// The current value. When it is older than the refresh interval, a rebuild starts in the
    /// background; this call does not wait for it.
    pub fn current(self: &Arc<Self>) -> Arc<T> {
        let stale = self
            .loaded_at
            .lock()
            .map(|at| at.elapsed() >= self.every)
            .unwrap_or(false);
        if stale && !self.reloading.swap(true, Ordering::SeqCst) {
            let this = Arc::clone(self);
            tokio::spawn(async move {
                this.reload().await;
                this.reloading.store(false, Ordering::SeqCst);
            });
        }
        self.current
            .read()
            .map(|value| Arc::clone(&value))
            .unwrap_or_else(|poisoned| Arc::clone(&poisoned.into_inner()))
    }

    /// Rebuilds now unless the value was (re)loaded less than `age` ago: for callers that find
    /// the value out of date, without letting each of them fetch.
    pub async fn reload_if_older(&self, age: Duration) {
        let fresh = self
            .loaded_at
            .lock()
            .map(|at| at.elapsed() < age)
            .unwrap_or(true);
        // A fixed value (and one whose source never changes) has nothing to read again.
        if !fresh && self.every != Duration::MAX {
            self.reload().await;
        }
    }

    /// Rebuilds now; on failure the previous value stays and the error is logged.
    pub async fn reload(&self) {
        let rebuilt = match self.source.fetch().await {
            Ok(values) => (self.build)(&|name| lookup(&values, name)),
            Err(error) => Err(error.to_string()),
        };
        match rebuilt {
            Ok(value) => {
                if let Ok(mut current) = self.current.write() {
                    *current = Arc::new(value);
                }
                if let Ok(mut at) = self.loaded_at.lock() {
                    *at = Instant::now();
                }
            }
            Err(error) => {
                // Keep serving with the settings we have; try again at the next interval.
                tracing::error!(target: "settings", %error, "reloading settings failed; keeping the previous ones");
                if let Ok(mut at) = self.loaded_at.lock() {
                    *at = Instant::now();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    struct Counting {
        fetches: AtomicUsize,
        value: Mutex<String>,
    }

    #[async_trait]
    impl SecretSource for Counting {
        async fn fetch(&self) -> Result<Values, SecretError> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            let value = self.value.lock().map(|v| v.clone()).unwrap_or_default();
            if value == "fail" {
                return Err(SecretError {
                    id: "test".into(),
                    reason: "unavailable".into(),
                });
            }
            Ok(Values::from([("TEST_SETTINGS_SECRET".to_owned(), value)]))
        }
    }

    #[tokio::test]
    async fn a_rotated_secret_takes_effect_after_the_interval_and_failures_keep_the_old_one() {
        let source = Arc::new(Counting {
            fetches: AtomicUsize::new(0),
            value: Mutex::new("one".into()),
        });
        let reloading = Reloading::start(source.clone(), Duration::from_millis(50), |var| {
            var("TEST_SETTINGS_SECRET").ok_or("missing")
        })
        .await
        .expect("start");
        assert_eq!(*reloading.current(), "one");
        *source.value.lock().expect("lock") = "two".into();
        assert_eq!(*reloading.current(), "one", "not before the interval");
        assert_eq!(source.fetches.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(60)).await;
        let _ = reloading.current(); // starts the reload
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(*reloading.current(), "two");
        *source.value.lock().expect("lock") = "fail".into();
        tokio::time::sleep(Duration::from_millis(60)).await;
        let _ = reloading.current();
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(
            *reloading.current(),
            "two",
            "a failed reload keeps the previous value"
        );
    }

    #[tokio::test]
    async fn unusable_settings_stop_the_start() {
        let source = Arc::new(Counting {
            fetches: AtomicUsize::new(0),
            value: Mutex::new("fail".into()),
        });
        let started = Reloading::start(source, DEFAULT_REFRESH, |_| Ok::<_, String>(1)).await;
        assert!(started.is_err());
    }

    struct Fixed(Values);

    #[async_trait]
    impl SecretSource for Fixed {
        async fn fetch(&self) -> Result<Values, SecretError> {
            Ok(self.0.clone())
        }
    }

    #[tokio::test]
    async fn each_function_is_withheld_the_other_ones_settings() {
        let shared = Arc::new(Fixed(Values::from([
            ("LINE_CHANNEL_SECRET".to_owned(), "line-secret".to_owned()),
            ("META_VERIFY_TOKEN".to_owned(), "verify".to_owned()),
            (
                "LINE_CHANNEL_ACCESS_TOKEN".to_owned(),
                "line-token".to_owned(),
            ),
            ("META_PAGE_ACCESS_TOKEN".to_owned(), "".to_owned()),
            ("MAX_EVENTS_PER_REQUEST".to_owned(), "10".to_owned()),
        ])));
        let ingress = Withholding::new(shared.clone(), API_TOKENS, "ingress")
            .fetch()
            .await
            .expect("fetch");
        let mut names: Vec<_> = ingress.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "LINE_CHANNEL_SECRET",
                "MAX_EVENTS_PER_REQUEST",
                "META_VERIFY_TOKEN"
            ]
        );
        let worker = Withholding::new(shared, SIGNING_SECRETS, "worker")
            .fetch()
            .await
            .expect("fetch");
        let mut names: Vec<_> = worker.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "LINE_CHANNEL_ACCESS_TOKEN",
                "MAX_EVENTS_PER_REQUEST",
                "META_PAGE_ACCESS_TOKEN"
            ]
        );
    }

    #[test]
    fn the_environment_wins_over_the_secret() {
        let secrets = Values::from([
            ("PATH".to_owned(), "from-secret".to_owned()),
            ("SETTINGS_TEST_ONLY_IN_SECRET".to_owned(), "s".to_owned()),
            ("SETTINGS_TEST_EMPTY".to_owned(), " ".to_owned()),
        ]);
        assert_ne!(lookup(&secrets, "PATH").as_deref(), Some("from-secret"));
        assert_eq!(
            lookup(&secrets, "SETTINGS_TEST_ONLY_IN_SECRET").as_deref(),
            Some("s")
        );
        assert_eq!(lookup(&secrets, "SETTINGS_TEST_EMPTY"), None);
    }
}
