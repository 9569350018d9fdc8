//! A job's effective secret rules: its target's rules, the global `[policy]` and the job's own
//! `[jobs.NAME.secret]`, combined with [`SecretPolicy::intersect`] into the strictest, and proven satisfiable
//! with [`SecretPolicy::validate`] at load, so that generation cannot fail during a rotation.
//!
//! Rules that one key breaks on its own are reported at that key; what only the combination breaks is reported
//! at the job's `secret` table (or the job, when it has none) with `validate`'s reason.

use super::document::Document;
use super::error::ConfigError;
use super::locate::KeyPath;
use super::policy::GlobalPolicy;
use super::schema::SecretSchema;
use super::target::TargetConfig;
use super::validate::char_set;
use crate::secret::{PositionRule, SecretPolicy};

pub(super) fn effective(
    doc: &Document<'_>,
    job_at: &KeyPath,
    target_name: &str,
    target: &TargetConfig,
    global: &GlobalPolicy,
    secret: Option<&SecretSchema>,
) -> Result<SecretPolicy, ConfigError> {
    let at = job_at.key("secret");
    let none = SecretSchema::default();
    let rules = secret.unwrap_or(&none);

    if let Some(alphabet) = &rules.alphabet
        && alphabet.chars().any(char::is_control)
    {
        return Err(doc.error(
            &at.key("alphabet"),
            "the alphabet has a control character: expected printable characters only",
        ));
    }
    if let Some(groups) = rules.min_groups
        && groups > 3
    {
        return Err(doc.error(
            &at.key("min_groups"),
            format!("{groups} is more than there are: expected 0 to 3 of the groups upper, lower and digit"),
        ));
    }
    let mut positions = Vec::with_capacity(rules.positions.len());
    for (i, rule) in rules.positions.iter().enumerate() {
        if rule.from == 0 || rule.from > rule.to {
            return Err(doc.error(
                &at.key("positions").index(i),
                format!(
                    "positions {} to {} are not a range: expected 1 <= from <= to (positions count from 1)",
                    rule.from, rule.to
                ),
            ));
        }
        positions.push(PositionRule { class: rule.class, from: rule.from, to: rule.to });
    }

    let own = SecretPolicy {
        alphabet: rules.alphabet.as_deref().map(char_set),
        forbidden: rules.forbidden.as_deref().map(char_set).unwrap_or_default(),
        require: rules.require.iter().copied().collect(),
        min_groups: rules.min_groups.unwrap_or(0),
        positions,
        ..SecretPolicy::default()
    };
    // Without an explicit length, `intersect` takes the largest wish (32 by default) clamped to the combined
    // bounds, so a `[policy] min_length` above 32 raises it.
    let mut policy = target.rules().intersect(&global.secret_rules()).intersect(&own);

    if let Some(length) = rules.length {
        // An explicit length is taken as written, never silently raised to a minimum: refuse it instead.
        let (min, max) = (policy.min_length, policy.max_length);
        if min <= max && !(min..=max).contains(&length) {
            return Err(doc.error(
                &at.key("length"),
                format!(
                    "{length} is outside the lengths allowed by target `{target_name}` and [policy] min_length: \
                     expected {min} to {max}"
                ),
            ));
        }
        policy.length = length;
    }

    let where_ = if secret.is_some() { &at } else { job_at };
    policy.validate().map_err(|err| {
        doc.error(
            where_,
            format!(
                "{err} (the rules of target `{target_name}`, [policy] and [{at}] combined): relax the job's rules \
                 or [policy]"
            ),
        )
    })?;
    if let Some(min) = global.min_strength_bits {
        let bits = policy.strength_bits();
        if bits < min {
            return Err(doc.error(
                where_,
                format!(
                    "the secret rules give {bits} bits ({} characters from {} possible, with the rules of target \
                     `{target_name}`, [policy] and [{at}] combined): expected at least {min} ([policy] \
                     min_strength_bits); set a longer `length` or a larger `alphabet`",
                    policy.length,
                    policy.charset().len()
                ),
            ));
        }
    }
    Ok(policy)
}
