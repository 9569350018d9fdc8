//! `[policy]`: the security team's rules, enforced at load for every job, as [`GlobalPolicy`].
//!
//! The policy is checked where it is written (a `min_length` of 0 is refused here, once) and enforced where it
//! bites: each job's schedule and secret rules are held against it in `job.rs` and `secret_rules.rs`.

use super::document::Document;
use super::error::ConfigError;
use super::locate::KeyPath;
use super::schema::PolicySchema;
use super::validate::{Limit, char_set, nonzero};
use crate::secret::SecretPolicy;
use std::collections::BTreeSet;
use std::time::Duration;

/// The global policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GlobalPolicy {
    /// Every job must rotate its secret before it is this old.
    pub max_age: Option<Duration>,
    /// Every generated secret has at least this many characters.
    pub min_length: Option<usize>,
    /// No generated secret contains any of these.
    pub forbidden: BTreeSet<char>,
}

impl GlobalPolicy {
    /// The policy's share of a job's secret rules.
    pub(super) fn secret_rules(&self) -> SecretPolicy {
        SecretPolicy {
            min_length: self.min_length.unwrap_or(1),
            forbidden: self.forbidden.clone(),
            ..SecretPolicy::default()
        }
    }
}

/// The longest `max_age`, for `[policy]` and for every job: a secret kept longer than two years is not rotated in
/// any sense a policy means, and a typo of unit (`"90M"` for `"90d"`) lands above it.
pub(super) const MAX_AGE_LIMIT: Limit = Limit {
    max: Duration::from_secs(730 * 86_400),
    why: "two years; a secret kept longer is not rotated in any useful sense",
};

pub(super) fn build(doc: &Document<'_>, schema: PolicySchema) -> Result<GlobalPolicy, ConfigError> {
    let at = KeyPath::root().key("policy");
    let max_age = nonzero(doc, &at.key("max_age"), schema.max_age, MAX_AGE_LIMIT)?;
    let longest = SecretPolicy::default().max_length;
    if let Some(n) = schema.min_length
        && !(1..=longest).contains(&n)
    {
        return Err(doc.error(
            &at.key("min_length"),
            format!("{n} is not a usable minimum length: expected 1 to {longest} characters"),
        ));
    }
    Ok(GlobalPolicy {
        max_age,
        min_length: schema.min_length,
        forbidden: schema.forbidden.as_deref().map(char_set).unwrap_or_default(),
    })
}
