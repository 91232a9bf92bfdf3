//! The registry from a file (`chat-gateway serve --tenants FILE`): the same document as the
//! `TENANTS` setting on AWS ([`shared::tenants`]), as TOML (`.toml`) or JSON, read again every few
//! seconds so that a tenant is added, rotated or removed without a restart.

use async_trait::async_trait;
use shared::settings::{SecretError, SecretSource, Values};
use std::path::PathBuf;
use std::time::Duration;

/// How often the file is read again.
pub const REFRESH: Duration = Duration::from_secs(5);

/// A tenants file.
#[derive(Debug, Clone)]
pub struct TenantsFile {
    pub path: PathBuf,
}

impl TenantsFile {
    fn error(&self, reason: impl Into<String>) -> SecretError {
        SecretError {
            id: self.path.display().to_string(),
            reason: reason.into(),
        }
    }

    /// The file as the `TENANTS` JSON text.
    pub fn read(&self) -> Result<String, SecretError> {
        let text = std::fs::read_to_string(&self.path)
            .map_err(|e| self.error(format!("cannot be read: {}", e.kind())))?;
        let is_toml = self
            .path
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("toml"));
        if !is_toml {
            return Ok(text);
        }
        // TOML's own messages quote the offending line, which may hold a secret: say where only.
        let document: toml::Table = toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|span| text[..span.start.min(text.len())].lines().count().max(1));
            self.error(match line {
                Some(line) => format!("not valid TOML (line {line})"),
                None => "not valid TOML".to_owned(),
            })
        })?;
        serde_json::to_string(&document).map_err(|_| self.error("not convertible to JSON"))
    }
}

#[async_trait]
impl SecretSource for TenantsFile {
    async fn fetch(&self) -> Result<Values, SecretError> {
        Ok(Values::from([(
            shared::tenants::TENANTS.to_owned(),
            self.read()?,
        )]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_and_json_read_the_same_and_errors_never_quote_the_file() {
        let dir = tempfile::tempdir().expect("dir");
        let toml_path = dir.path().join("tenants.toml");
        std::fs::write(
            &toml_path,
            "[a.line]\nbot_user_id = \"U0123456789abcdef0123456789abcdef\"\nchannel_secrets = [\"s\"]\n",
        )
        .expect("write");
        let json = TenantsFile {
            path: toml_path.clone(),
        }
        .read()
        .expect("toml");
        let registry = shared::tenants::Registry::parse(Some(&json)).expect("registry");
        assert_eq!(registry.tenants.len(), 1);
        std::fs::write(&toml_path, "[a.line]\nchannel_secrets = [\"hunter2\"\n").expect("write");
        let error = TenantsFile { path: toml_path }
            .read()
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("line") && !error.contains("hunter2"),
            "{error}"
        );
        let missing = TenantsFile {
            path: dir.path().join("none.json"),
        }
        .read()
        .unwrap_err();
        assert!(missing.to_string().contains("cannot be read"));
    }

    #[test]
    fn the_readmes_example_is_a_registry() {
        let readme = include_str!("../../README.md");
        let start = readme.find("# tenants.toml").expect("the README's example");
        let end = start + readme[start..].find("```").expect("end of the block");
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("tenants.toml");
        std::fs::write(&path, &readme[start..end]).expect("write");
        let json = TenantsFile { path }.read().expect("toml");
        let registry = shared::tenants::Registry::parse(Some(&json)).expect("registry");
        let tenant = &registry.tenants["brand-a"];
        assert_eq!(tenant.meta.as_ref().map(|m| m.apps.len()), Some(2));
        assert_eq!(tenant.limits.concurrency.map(|n| n.get()), Some(4));
    }
}
