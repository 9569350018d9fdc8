//! `[audit]`: where audit events are appended (`path`, one CloudEvents JSON line each), as [`AuditConfig`]. Its
//! `warn_before` is the older place of `[policy] warn_before`, still read.

use super::document::Document;
use super::error::ConfigError;
use super::locate::KeyPath;
use super::schema::AuditSchema;
use super::validate::{Limit, nonzero, resolve_path};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(super) const WARN_BEFORE_LIMIT: Limit = Limit {
    max: Duration::from_secs(90 * 24 * 3600),
    why: "a warning months ahead of the deadline is noise nobody acts on",
};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditConfig {
    /// The audit file; `None`: events go to the log only.
    pub path: Option<PathBuf>,
    /// `[audit] warn_before` as written: the older place of `[policy] warn_before` (see `Config::warn_before`).
    pub warn_before: Option<Duration>,
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
    let warn_before = nonzero(doc, &at.key("warn_before"), schema.warn_before, WARN_BEFORE_LIMIT)?;
    Ok(AuditConfig { path, warn_before })
}
