//! `[rotation]`: the engine's timings and limits, as [`RotationSettings`], each with a default.

use super::document::Document;
use super::error::ConfigError;
use super::locate::KeyPath;
use super::schema::RotationSchema;
use super::validate::nonzero;
use std::time::Duration;

/// How the engine paces a rotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RotationSettings {
    /// Wait after apply before the first verify: targets take a moment to accept a new secret.
    pub settle: Duration,
    /// Failed verifies before a rotation stops: each one is a failed login that counts toward the target's
    /// lockout, so the range is kept small (1..=10).
    pub verify_attempts: u32,
    /// The first wait between verifies; it doubles after each failed one.
    pub verify_backoff: Duration,
    /// Timeout of each store and target call.
    pub call_timeout: Duration,
    /// How long an applied but not yet accepted secret is waited for before the job is diverged.
    pub propagation_grace: Duration,
}

impl Default for RotationSettings {
    fn default() -> Self {
        Self {
            settle: Duration::from_secs(2),
            verify_attempts: 3,
            verify_backoff: Duration::from_secs(5),
            call_timeout: Duration::from_secs(60),
            propagation_grace: Duration::from_secs(10 * 60),
        }
    }
}

const VERIFY_ATTEMPTS: std::ops::RangeInclusive<u32> = 1..=10;

pub(super) fn build(doc: &Document<'_>, schema: RotationSchema) -> Result<RotationSettings, ConfigError> {
    let at = KeyPath::root().key("rotation");
    let defaults = RotationSettings::default();
    if let Some(n) = schema.verify_attempts
        && !VERIFY_ATTEMPTS.contains(&n)
    {
        return Err(doc.error(
            &at.key("verify_attempts"),
            format!(
                "{n} is out of range: expected {} to {} (every failed verify is a failed login that counts \
                 toward the target's lockout)",
                VERIFY_ATTEMPTS.start(),
                VERIFY_ATTEMPTS.end()
            ),
        ));
    }
    Ok(RotationSettings {
        // No settle time is a legitimate choice for a target that accepts a secret at once.
        settle: schema.settle.map_or(defaults.settle, |d| d.0),
        verify_attempts: schema.verify_attempts.unwrap_or(defaults.verify_attempts),
        // Zero here would retry a failing login back to back, straight into the lockout.
        verify_backoff: nonzero(doc, &at.key("verify_backoff"), schema.verify_backoff)?
            .unwrap_or(defaults.verify_backoff),
        call_timeout: nonzero(doc, &at.key("call_timeout"), schema.call_timeout)?
            .unwrap_or(defaults.call_timeout),
        propagation_grace: nonzero(doc, &at.key("propagation_grace"), schema.propagation_grace)?
            .unwrap_or(defaults.propagation_grace),
    })
}
