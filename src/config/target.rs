//! `[targets.NAME]`: the systems whose credentials are rotated, as [`TargetConfig`], one variant per kind.
//!
//! Adding a target (Autotask next) is one variant here with its settings, one in `schema::TargetKind`, its schema
//! struct, and one arm in [`build`] and in [`TargetConfig::rules`].

use super::document::Document;
use super::error::ConfigError;
use super::locate::KeyPath;
use super::schema::{KindOnlySchema, TargetKind};
use crate::secret::SecretPolicy;
use crate::target::generated;

/// A configured target, ready to be built by the engine.
#[derive(Clone, Debug)]
pub enum TargetConfig {
    /// No external system: the secret is generated and only stored.
    Generated,
}

impl TargetConfig {
    /// The target's `KIND` constant, which is also its `kind` in the config.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Generated => generated::KIND,
        }
    }

    /// The target's own secret rules, known without contacting it, so that a job whose rules cannot be met is a
    /// config error at load and not a failed rotation at 3 a.m.
    pub fn rules(&self) -> SecretPolicy {
        match self {
            // `GeneratedTarget` accepts whatever it is given: its rules are the default policy.
            Self::Generated => SecretPolicy::default(),
        }
    }
}

pub(super) fn build(doc: &Document<'_>, at: &KeyPath, kind: TargetKind) -> Result<TargetConfig, ConfigError> {
    match kind {
        TargetKind::Generated => {
            doc.deserialize_at::<KindOnlySchema>(at)?;
            Ok(TargetConfig::Generated)
        }
    }
}
