//! `[rotation]`: the engine's timings and limits, as [`RotationSettings`], each with a default and an upper bound.
//!
//! `call_timeout` is held against the targets: the engine cuts off any apply that runs longer, and an apply cut
//! off is an outcome nobody knows, so it must leave room for every attempt a target's own limits allow. Unset, it
//! is the engine's default raised to the longest apply of any target.

use super::document::Document;
use super::duration::display;
use super::error::ConfigError;
use super::locate::KeyPath;
use super::schema::RotationSchema;
use super::target::TargetConfig;
use super::validate::{Limit, at_most, nonzero};
use std::collections::BTreeMap;
use std::time::Duration;

/// The engine's own settings type: the config fills in what it sets and keeps the engine's defaults for the
/// rest, so each default is written once.
pub use crate::rotation::Settings as RotationSettings;

const VERIFY_ATTEMPTS: std::ops::RangeInclusive<u32> = 1..=10;

const MINUTE: u64 = 60;
const SETTLE_LIMIT: Limit = Limit {
    max: Duration::from_secs(10 * MINUTE),
    why: "the job's lock is held meanwhile; a target slower than that is waited for by `apply_horizon`",
};
const VERIFY_BACKOFF_LIMIT: Limit = Limit {
    max: Duration::from_secs(5 * MINUTE),
    why: "it doubles after each failed verify, so a few attempts already span hours",
};
const CALL_TIMEOUT_LIMIT: Limit = Limit {
    max: Duration::from_secs(60 * MINUTE),
    why: "a store or target call that has not answered in an hour will not, and the job's lock is held meanwhile",
};
const APPLY_HORIZON_LIMIT: Limit = Limit {
    max: Duration::from_secs(24 * 60 * MINUTE),
    why: "a target that carries out a request a day after it was sent is broken",
};
const FAILED_LOGIN_WINDOW_LIMIT: Limit = Limit {
    max: Duration::from_secs(7 * 24 * 60 * MINUTE),
    why: "a week; the guard counts failures toward the target's lockout, and a longer memory protects nothing more",
};

pub(super) fn build(
    doc: &Document<'_>,
    schema: RotationSchema,
    targets: &BTreeMap<String, TargetConfig>,
) -> Result<RotationSettings, ConfigError> {
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
        settle: at_most(doc, &at.key("settle"), schema.settle, SETTLE_LIMIT)?.unwrap_or(defaults.settle),
        verify_attempts: schema.verify_attempts.unwrap_or(defaults.verify_attempts),
        // Zero here would retry a failing login back to back, straight into the lockout.
        verify_backoff: nonzero(doc, &at.key("verify_backoff"), schema.verify_backoff, VERIFY_BACKOFF_LIMIT)?
            .unwrap_or(defaults.verify_backoff),
        call_timeout: call_timeout(doc, &at, schema.call_timeout, targets, defaults.call_timeout)?,
        apply_horizon: match nonzero(
            doc,
            &at.key("apply_horizon"),
            schema.apply_horizon,
            APPLY_HORIZON_LIMIT,
        )? {
            Some(horizon) => Some(horizon),
            None => {
                nonzero(doc, &at.key("propagation_grace"), schema.propagation_grace, APPLY_HORIZON_LIMIT)?
            }
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
        failed_login_window: nonzero(
            doc,
            &at.key("failed_login_window"),
            schema.failed_login_window,
            FAILED_LOGIN_WINDOW_LIMIT,
        )?,
        ..defaults
    })
}

/// `call_timeout` as set, if every target's apply fits in it; unset, the default raised to fit them all.
fn call_timeout(
    doc: &Document<'_>,
    at: &KeyPath,
    set: Option<super::duration::ConfigDuration>,
    targets: &BTreeMap<String, TargetConfig>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let at = at.key("call_timeout");
    let longest = targets
        .iter()
        .filter_map(|(name, target)| Some((name, target, target.longest_apply()?)))
        .max_by_key(|(_, _, apply)| *apply);
    let Some(timeout) = nonzero(doc, &at, set, CALL_TIMEOUT_LIMIT)? else {
        return Ok(longest.map_or(default, |(_, _, apply)| default.max(apply)));
    };
    match longest {
        Some((name, target, apply)) if timeout < apply => {
            let why = match target {
                TargetConfig::Autotask(autotask) => format!(
                    "with targets.{name}.timeout = {}, one call to Autotask may take up to {} (every attempt and \
                     the back-offs between them), and an apply, a query then an update, up to {}",
                    display(autotask.timeout),
                    display(autotask.tenant_settings().longest_call()),
                    display(apply)
                ),
                TargetConfig::Command(_) | TargetConfig::Webhook(_) => {
                    format!("with targets.{name}.timeout = {}, an apply may take up to that", display(apply))
                }
                TargetConfig::Generated => format!("an apply may take up to {}", display(apply)),
            };
            Err(doc.error(
                &at,
                format!(
                    "{} cannot hold an apply of target `{name}`: {why}: expected rotation.call_timeout = \"{}\" \
                     or more, or a shorter targets.{name}.timeout",
                    display(timeout),
                    display(apply)
                ),
            ))
        }
        _ => Ok(timeout),
    }
}
