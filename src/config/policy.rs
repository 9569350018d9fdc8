//! `[policy]`: the security team's rules, enforced at load for every job, as [`GlobalPolicy`].
//!
//! The policy is checked where it is written (a `min_length` of 0 is refused here, once) and enforced where it
//! bites: each job's schedule and secret rules are held against it in `job.rs` and `secret_rules.rs`.

use super::document::Document;
use super::error::ConfigError;
use super::locate::KeyPath;
use super::schema::PolicySchema;
use super::validate::{Limit, at_most, char_set, nonzero};
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
    /// How long before a secret reaches its job's `max_age` an age warning is raised; `None`: a tenth of that
    /// `max_age` (see `Config::warn_before`).
    pub warn_before: Option<Duration>,
    /// Every job's secret rules must give generated secrets at least this strength
    /// ([`SecretPolicy::strength_bits`]).
    pub min_strength_bits: Option<u32>,
    /// How often each job's stored value is verified between rotations (the drift heartbeat); `None`: never.
    pub heartbeat: Option<Duration>,
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

/// The longest heartbeat interval: a credential changed behind rotavault's back should not go unseen for longer.
pub(super) const HEARTBEAT_LIMIT: Limit = Limit {
    max: Duration::from_secs(90 * 86_400),
    why: "a change behind rotavault's back would go unseen for a whole season; \"0s\" turns the heartbeat off",
};

/// `heartbeat` as written: `"0s"` turns it off.
pub(super) fn heartbeat(
    doc: &Document<'_>,
    at: &KeyPath,
    written: Option<super::duration::ConfigDuration>,
) -> Result<Option<Option<Duration>>, ConfigError> {
    Ok(at_most(doc, at, written, HEARTBEAT_LIMIT)?.map(|d| (!d.is_zero()).then_some(d)))
}

/// The most bits `min_strength_bits` may ask for: more than any 4,096-character secret could have is a typo.
const MAX_STRENGTH_BITS: u32 = 4096;

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
    let warn_before =
        nonzero(doc, &at.key("warn_before"), schema.warn_before, super::audit::WARN_BEFORE_LIMIT)?;
    if let (Some(warn), Some(max)) = (warn_before, max_age)
        && warn >= max
    {
        return Err(doc.error(
            &at.key("warn_before"),
            format!(
                "{} is not shorter than `max_age` ({}): every secret would be warned about as soon as it is \
                 rotated; expected less than `max_age` (by default a tenth of each job's max_age)",
                super::duration::display(warn),
                super::duration::display(max)
            ),
        ));
    }
    if let Some(bits) = schema.min_strength_bits
        && !(1..=MAX_STRENGTH_BITS).contains(&bits)
    {
        return Err(doc.error(
            &at.key("min_strength_bits"),
            format!("{bits} is not a usable strength: expected 1 to {MAX_STRENGTH_BITS} bits (128 is a common goal)"),
        ));
    }
    Ok(GlobalPolicy {
        max_age,
        min_length: schema.min_length,
        forbidden: schema.forbidden.as_deref().map(char_set).unwrap_or_default(),
        warn_before,
        min_strength_bits: schema.min_strength_bits,
        heartbeat: heartbeat(doc, &at.key("heartbeat"), schema.heartbeat)?.flatten(),
    })
}
