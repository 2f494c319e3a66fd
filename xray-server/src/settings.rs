//! The server's settings: flags and environment ([`Config`](crate::Config)) merged with an
//! optional TOML file. It only reads and checks settings: acting on them is the modules'.
//!
//! ```toml
//! [auth]
//! ingest_keys = ["k-ingest"]
//! read_keys = ["k-read"]
//! admin_keys = ["k-admin"]
//!
//! [retention]
//! max_age_days = 30          # every pipeline without its own policy
//! max_runs = 100000          # newest runs kept per pipeline
//! sweep_interval_secs = 300
//! batch_size = 500
//! [[retention.pipelines]]
//! pipeline = "competitor_selection"
//! max_age_days = 7
//!
//! [[alerts]]
//! name = "filter rejects nearly everything"
//! webhook_url = "http://hooks.internal/xray"
//! condition = { kind = "rejection_rate", pipeline = "competitor_selection", above = 0.9, more_than = 5, last_runs = 100 }
//! ```

use crate::http::auth::{ApiKeys, Secret};
use crate::retention::RetentionConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use xray_wire::AlertRuleSpec;

/// A config file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// It could not be read.
    #[error("cannot read the config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It is not valid TOML or has unknown or mistyped keys.
    #[error("invalid config file {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        message: String,
    },
    /// An alert rule in it is invalid.
    #[error("invalid alert rule in {path}: {message}")]
    Alert {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// The `[auth]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Keys that may ingest.
    #[serde(default)]
    pub ingest_keys: Vec<Secret>,
    /// Keys that may read.
    #[serde(default)]
    pub read_keys: Vec<Secret>,
    /// Keys that may do everything.
    #[serde(default)]
    pub admin_keys: Vec<Secret>,
}

/// The config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// API keys.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Retention policies.
    #[serde(default)]
    pub retention: RetentionConfig,
    /// Alert rules.
    #[serde(default)]
    pub alerts: Vec<AlertRuleSpec>,
}

impl FileConfig {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<FileConfig, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let file: FileConfig = toml::from_str(&text).map_err(|e| SettingsError::Invalid {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        for rule in &file.alerts {
            crate::alerts::check_rule(rule).map_err(|message| SettingsError::Alert {
                path: path.to_path_buf(),
                message,
            })?;
        }
        Ok(file)
    }
}

/// Everything the running server needs besides its database and listener.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// API keys (none: the API is open).
    pub keys: ApiKeys,
    /// Retention policies.
    pub retention: RetentionConfig,
    /// Alert rules from the config (stored at start-up, beside those made over the API).
    pub alerts: Vec<AlertRuleSpec>,
    /// How often alert rules are evaluated.
    pub alert_interval: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            body_limit: 16 * 1024 * 1024,
            keys: ApiKeys::default(),
            retention: RetentionConfig::default(),
            alerts: Vec::new(),
            alert_interval: Duration::from_secs(10),
        }
    }
}

impl crate::Config {
    /// The settings: the config file (if any), then flags and environment on top.
    pub fn settings(&self) -> Result<Settings, SettingsError> {
        let mut file = match &self.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        file.auth
            .ingest_keys
            .extend(self.ingest_keys.iter().cloned());
        file.auth.read_keys.extend(self.read_keys.iter().cloned());
        file.auth.admin_keys.extend(self.admin_keys.iter().cloned());
        if self.retain_days.is_some() {
            file.retention.default.max_age_days = self.retain_days;
        }
        if self.retain_runs.is_some() {
            file.retention.default.max_runs = self.retain_runs;
        }
        Ok(Settings {
            body_limit: self.body_limit,
            keys: ApiKeys::new(
                &file.auth.ingest_keys,
                &file.auth.read_keys,
                &file.auth.admin_keys,
            ),
            retention: file.retention,
            alerts: file.alerts,
            alert_interval: Duration::from_millis(self.alert_interval_ms.max(10)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn the_example_config_file_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("xray.example.toml");
        let file = FileConfig::load(&path).expect("the shipped example is valid");
        assert_eq!(file.alerts.len(), 3);
        assert_eq!(file.retention.default.max_age_days, Some(30));
        assert_eq!(file.retention.pipelines.len(), 2);
        assert_eq!(file.auth.read_keys.len(), 1);
    }

    #[test]
    fn flags_add_to_the_file_and_mistakes_name_the_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("x.toml");
        std::fs::write(&path, "[retention]\nmax_age_dayz = 3\n").expect("write");
        let err = FileConfig::load(&path).expect_err("typo").to_string();
        assert!(err.contains("max_age_dayz"), "{err}");
        std::fs::write(
            &path,
            "[[alerts]]\nname = \"a\"\nwebhook_url = \"ftp://x\"\ncondition = { kind = \"run_failed\", pipeline = \"p\" }\n",
        )
        .expect("write");
        let err = FileConfig::load(&path).expect_err("bad url").to_string();
        assert!(err.contains("webhook_url"), "{err}");
        std::fs::write(&path, "[retention]\nmax_age_days = 3\n").expect("write");
        let config = crate::Config::parse_from([
            "xray-server",
            "--config",
            path.to_str().expect("utf-8 path"),
            "--retain-runs",
            "10",
            "--read-key",
            "r",
        ]);
        let settings = config.settings().expect("valid");
        assert_eq!(settings.retention.default.max_age_days, Some(3));
        assert_eq!(settings.retention.default.max_runs, Some(10));
        assert!(settings.keys.enabled());
    }
}
