//! `[audit]`: where audit events are appended (`path`, one CloudEvents JSON line each) and how long before a
//! secret's `max_age` an age warning is raised (`warn_before`), as [`AuditConfig`].

use super::document::Document;
use super::error::ConfigError;
use super::locate::KeyPath;
use super::schema::AuditSchema;
use super::validate::{Limit, nonzero, resolve_path};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The age warning's lead time when the config does not say.
pub const DEFAULT_WARN_BEFORE: Duration = Duration::from_secs(7 * 24 * 3600);
const WARN_BEFORE_LIMIT: Limit = Limit {
    max: Duration::from_secs(90 * 24 * 3600),
    why: "a warning months ahead of the deadline is noise nobody acts on",
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditConfig {
    /// The audit file; `None`: events go to the log only.
    pub path: Option<PathBuf>,
    /// How long before a secret reaches its job's `max_age` an age warning is raised, if it is not rotated by then.
    pub warn_before: Duration,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self { path: None, warn_before: DEFAULT_WARN_BEFORE }
    }
}

pub(super) fn build(
    doc: &Document<'_>,
    schema: AuditSchema,
    base: &Path,
) -> Result<AuditConfig, ConfigError> {
    let at = KeyPath::root().key("audit");
    let path = match &schema.path {
        Some(path) => Some(resolve_path(doc, &at.key("path"), path, base)?),
        None => None,
    };
    let warn_before = nonzero(doc, &at.key("warn_before"), schema.warn_before, WARN_BEFORE_LIMIT)?
        .unwrap_or(DEFAULT_WARN_BEFORE);
    Ok(AuditConfig { path, warn_before })
}
