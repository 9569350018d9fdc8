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
//!   (with `hooks.rs` and `max_age.rs`), `audit.rs` and `secret_rules.rs` each own the rules and output type of theirs; `files.rs` lists the files the config
//!   names, for `check` to find.

mod audit;
mod blackout;
mod document;
mod duration;
mod error;
mod files;
mod hooks;
mod hooks_webhook;
mod http;
mod job;
mod lease;
mod locate;
mod max_age;
mod notify;
mod policy;
mod rotation_settings;
mod schema;
mod secret_rules;
mod sections;
mod store;
mod target;
mod toml_error;
mod validate;

#[cfg(test)]
mod tests;

pub use audit::AuditConfig;
pub use duration::{display as display_duration, parse as parse_duration};
pub use error::{ConfigError, EXIT_CONFIG};
pub use files::NamedFile;
pub use hooks::{DEFAULT_HOOK_TIMEOUT, HookConfig};
pub use hooks_webhook::WebhookHookConfig;
pub use http::{DEFAULT_LISTEN, HttpSettings};
pub use job::{AutotaskAccount, FileRef, JobConfig, JobStore};
pub use lease::{KubernetesLease, LeaseConfig};
pub use notify::{EmailConfig, NotifyChannelConfig, NotifyConfig};
pub use policy::GlobalPolicy;
pub use rotation_settings::RotationSettings;
pub use store::{
    AWS_BACKEND, AZURE_BACKEND, AwsStoreConfig, AzureIdentityConfig, AzureStoreConfig, StoreConfig,
    VAULT_BACKEND, VaultAuthConfig, VaultStoreConfig,
};
pub use target::{AUTOTASK_ZONE_LOOKUP, AdminRef, AutotaskTargetConfig, TargetConfig, WebhookTargetConfig};
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
    /// `[http]`: health, metrics and the job API.
    pub http: HttpSettings,
    pub stores: BTreeMap<String, StoreConfig>,
    pub targets: BTreeMap<String, TargetConfig>,
    pub jobs: BTreeMap<String, JobConfig>,
    /// `[audit]`: the audit file and age warnings.
    pub audit: AuditConfig,
    /// `[lease]`: how replicas agree on which one runs the jobs.
    pub lease: LeaseConfig,
    /// `[[blackout]]`: the windows in which no job's scheduled rotation starts (each job adds its own).
    pub blackouts: Vec<crate::schedule::Blackout>,
    /// `[notify.NAME]`: notification sinks.
    pub notify: BTreeMap<String, NotifyConfig>,
    /// Every file a store, target or job names, for `check` to prove present.
    pub files: Vec<NamedFile>,
}

impl Config {
    /// How long before a secret of a job with `max_age` reaches it an age warning is raised: `[policy]
    /// warn_before`, else its older place `[audit] warn_before`, else a tenth of `max_age`.
    pub fn warn_before(&self, max_age: std::time::Duration) -> std::time::Duration {
        self.policy.warn_before.or(self.audit.warn_before).unwrap_or(max_age / 10)
    }
}

/// Whether a config without any job is accepted. Every command that acts refuses one (a daemon with nothing to do
/// is a mistake); `status` shows it, so that a person can see what rotavault reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jobs {
    Required,
    Optional,
}

/// Reads and validates the config file at `path`, which must define at least one job. A relative `path` is made
/// absolute first, so that errors and [`Config::path`] name the file unambiguously.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_with(path, Jobs::Required)
}

/// [`load`], saying whether a config without jobs is accepted.
pub fn load_with(path: &Path, jobs: Jobs) -> Result<Config, ConfigError> {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let bytes = std::fs::read(&path)
        .map_err(|e| ConfigError::file(&path, format!("cannot read the config file: {e}")))?;
    let source = text(&bytes, &path)?;
    parse_at(source, &path, Utc::now(), jobs)
}

/// Validates `source` as if read from `path` (relative paths in it are resolved against `path`'s directory); it
/// must define at least one job. For tests and embedded configs.
pub fn parse(source: &str, path: &Path) -> Result<Config, ConfigError> {
    parse_at(source, path, Utc::now(), Jobs::Required)
}

/// The file's bytes as text. TOML is UTF-8; a file that is not is reported where its first bad byte is, which is
/// all a person needs to find a stray Latin-1 character pasted into it.
fn text<'b>(bytes: &'b [u8], path: &Path) -> Result<&'b str, ConfigError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let valid = &bytes[..e.valid_up_to()];
        // Everything before the bad byte is valid UTF-8 by definition.
        let before = std::str::from_utf8(valid).unwrap_or_default();
        ConfigError::at(
            path,
            before,
            Some(before.len()),
            None,
            format!(
                "byte 0x{:02X} is not UTF-8: expected a UTF-8 text file (re-save it as UTF-8)",
                bytes[e.valid_up_to()]
            ),
        )
    })
}

/// [`parse`] with the moment schedules are measured from.
///
/// A config whose jobs are plain `[jobs.NAME]` sections is read a job at a time ([`parse_apart`]); anything that
/// is not, and any error, is read again as one document ([`parse_whole`]), so that what is accepted and every
/// error are exactly those of the one-document read.
fn parse_at(source: &str, path: &Path, now: DateTime<Utc>, jobs: Jobs) -> Result<Config, ConfigError> {
    match parse_apart(source, path, now, jobs) {
        Some(config) => Ok(config),
        None => parse_whole(source, path, now, jobs),
    }
}

/// The config read a job section at a time (see `sections`), when it is valid and can be read that way.
fn parse_apart(source: &str, path: &Path, now: DateTime<Utc>, jobs: Jobs) -> Option<Config> {
    let split = sections::split(source)?;
    let rest = Document::parse_pieces(&split.rest, split.pieces, source, path)?;
    if rest.holds_anything_at(&locate::KeyPath::root().key("jobs")) {
        return None;
    }
    validate::build(&rest, validate::JobsIn::Sections { source, groups: &split.groups }, now, jobs).ok()
}

/// The config read as one document.
fn parse_whole(source: &str, path: &Path, now: DateTime<Utc>, jobs: Jobs) -> Result<Config, ConfigError> {
    let doc = Document::parse(source, path)?;
    validate::build(&doc, validate::JobsIn::Document, now, jobs)
}
