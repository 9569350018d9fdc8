//! `[rotation]`: the engine's timings and limits, as [`RotationSettings`], each with a default.

use super::document::Document;
use super::error::ConfigError;
use super::locate::KeyPath;
use super::schema::RotationSchema;
use super::validate::nonzero;

/// The engine's own settings type: the config fills in what it sets and keeps the engine's defaults for the
/// rest, so each default is written once.
pub use crate::rotation::Settings as RotationSettings;

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
        apply_horizon: match nonzero(doc, &at.key("apply_horizon"), schema.apply_horizon)? {
            Some(horizon) => Some(horizon),
            None => nonzero(doc, &at.key("propagation_grace"), schema.propagation_grace)?,
        },
        max_failed_logins: match schema.max_failed_logins {
            Some(n) if !(1..=10).contains(&n) => {
                return Err(doc.error(
                    &at.key("max_failed_logins"),
                    format!("{n} is out of range: expected 1 to 10, below the target's lockout threshold"),
                ));
            }
            Some(n) => n,
            None => defaults.max_failed_logins,
        },
        // Unset by default: Autotask forgets failed logins only when the account logs in successfully.
        failed_login_window: nonzero(doc, &at.key("failed_login_window"), schema.failed_login_window)?,
        ..defaults
    })
}
