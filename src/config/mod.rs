//! The TOML configuration: its schema, loading, and validation into a [`Config`] the engine can trust.
//!
//! A config that loads is one the daemon can run: every reference resolves, every job rotates often enough for
//! `[policy]`, and every job's secret rules can be met. Anything else is one [`ConfigError`] naming the file, the
//! line and column, the dotted key, what is wrong and what is expected; the process exits with [`EXIT_CONFIG`].
//! Secrets are never written in the config: only references to stores, files and systemd credentials.
//!
//! How it reads, in order:
//! - `document.rs` parses the text once into `toml`'s spanned tree; `locate.rs` maps spans to dotted keys and
//!   back; `toml_error.rs` words `toml` and serde errors (never repeating a string value).
//! - `schema.rs` holds the serde structs, all `deny_unknown_fields`; `duration.rs` reads `"90d"`.
//! - `validate.rs` walks the sections; `policy.rs`, `rotation_settings.rs`, `store.rs`, `target.rs`, `job.rs`
//!   and `secret_rules.rs` each own the rules and output type of theirs.

mod document;
mod duration;
mod error;
mod job;
mod locate;
mod policy;
mod rotation_settings;
mod schema;
mod secret_rules;
mod store;
mod target;
mod toml_error;
mod validate;

#[cfg(test)]
mod tests;

pub use error::{ConfigError, EXIT_CONFIG};
pub use job::{AutotaskAccount, FileRef, JobConfig, JobStore};
pub use policy::GlobalPolicy;
pub use rotation_settings::RotationSettings;
pub use store::{
    AWS_BACKEND, AZURE_BACKEND, AwsStoreConfig, AzureIdentityConfig, AzureStoreConfig, StoreConfig,
    VAULT_BACKEND, VaultAuthConfig, VaultStoreConfig,
};
pub use target::{AUTOTASK_ZONE_LOOKUP, AdminRef, AutotaskTargetConfig, TargetConfig};
pub use validate::DEFAULT_STATE_DIR;

use chrono::{DateTime, Utc};
use document::Document;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A loaded and validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// Job state (last outcome, diverged marks) and job lock files.
    pub state_dir: PathBuf,
    pub policy: GlobalPolicy,
    pub rotation: RotationSettings,
    pub stores: BTreeMap<String, StoreConfig>,
    pub targets: BTreeMap<String, TargetConfig>,
    pub jobs: BTreeMap<String, JobConfig>,
}

/// Reads and validates the config file at `path`. A relative `path` is made absolute first, so that errors and
/// [`Config::path`] name the file unambiguously.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let source = std::fs::read_to_string(&path)
        .map_err(|e| ConfigError::file(&path, format!("cannot read the config file: {e}")))?;
    parse(&source, &path)
}

/// Validates `source` as if read from `path` (relative paths in it are resolved against `path`'s directory).
/// For tests and embedded configs.
pub fn parse(source: &str, path: &Path) -> Result<Config, ConfigError> {
    parse_at(source, path, Utc::now())
}

/// [`parse`] with the moment schedules are measured from.
fn parse_at(source: &str, path: &Path, now: DateTime<Utc>) -> Result<Config, ConfigError> {
    let doc = Document::parse(source, path)?;
    validate::build(&doc, now)
}
