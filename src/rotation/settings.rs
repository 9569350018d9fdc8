//! How patient the engine is: its timings and the lockout guard's limits. Defaults match `[rotation]` in the
//! config, which fills in what it sets and keeps these for the rest, so each default is written once.

use crate::retry::Backoff;
use std::time::Duration;

/// The apply horizon is never shorter than this, whatever the target's own timeouts: a server can sit on a
/// request in its queue for a while before it starts the work.
pub const MIN_APPLY_HORIZON: Duration = Duration::from_secs(5 * 60);
/// Added to the target's longest apply: the time a server may still need after its client gave up.
const APPLY_HORIZON_MARGIN: Duration = Duration::from_secs(2 * 60);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Wait after apply before the first verify: targets take a moment to accept a new secret.
    pub settle: Duration,
    /// Failed logins one run may cause, over every verify it makes.
    pub verify_attempts: u32,
    /// First wait between two verifies; doubles each time.
    pub verify_backoff: Duration,
    /// Timeout of every store call, of every verify, and of an apply from the moment it sends.
    pub call_timeout: Duration,
    /// How long after an apply was sent the target may still carry it out (a server finishes a request after its
    /// client has gone). Until then a pending value the target does not accept yet is kept, never discarded.
    /// `None`: worked out from the target's own timeouts (see [`Settings::apply_horizon`]).
    pub apply_horizon: Option<Duration>,
    /// The most consecutive failed logins the lockout guard lets an account reach, counted across every job and
    /// process of the host; keep it below the target's lockout threshold.
    pub max_failed_logins: u32,
    /// Opt-in: failed logins older than this stop counting, for targets whose lockout resets with time. `None`
    /// (the default): only an accepted login resets the count, as at Autotask.
    pub failed_login_window: Option<Duration>,
    /// Retries of store calls and of target calls that did not happen.
    pub backoff: Backoff,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            settle: Duration::from_secs(2),
            verify_attempts: 3,
            verify_backoff: Duration::from_secs(5),
            call_timeout: Duration::from_secs(60),
            apply_horizon: None,
            max_failed_logins: 3,
            failed_login_window: None,
            backoff: Backoff::default(),
        }
    }
}

impl Settings {
    /// The apply horizon for a target whose apply takes at most `longest_apply` once it sends: the configured one,
    /// or that (at least the call timeout) plus a margin, and never under [`MIN_APPLY_HORIZON`].
    pub fn apply_horizon(&self, longest_apply: Duration) -> Duration {
        self.apply_horizon.unwrap_or_else(|| {
            (longest_apply.max(self.call_timeout) + APPLY_HORIZON_MARGIN).max(MIN_APPLY_HORIZON)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_apply_horizon_covers_the_target_and_is_at_least_a_few_minutes() {
        let s = Settings::default();
        assert_eq!(s.apply_horizon(Duration::ZERO), MIN_APPLY_HORIZON);
        assert_eq!(s.apply_horizon(Duration::from_secs(600)), Duration::from_secs(720));
        let set = Settings { apply_horizon: Some(Duration::from_secs(30)), ..s };
        assert_eq!(
            set.apply_horizon(Duration::from_secs(600)),
            Duration::from_secs(30),
            "an operator's choice"
        );
    }
}
