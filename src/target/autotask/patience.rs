//! One call's attempts against Autotask: what an attempt came to ([`Attempt`]) and the back-off between attempts
//! ([`Patience`]), bounded so that a long wait is left to the engine to schedule.

use super::answer::Refusal;
use super::tenant::transient;
use crate::retry::Backoff;
use crate::target::TargetError;
use std::time::Duration;

/// Attempts per call, the first included; see `TenantSettings::longest_call` for what they add up to.
pub(super) const ATTEMPTS: u32 = 3;
const FIRST_WAIT: Duration = Duration::from_millis(500);

/// What one attempt of a call came to.
pub(super) enum Attempt<T, E> {
    Done(T),
    /// Nothing happened at Autotask; try again after a back-off (at least `retry_after`), or at once when
    /// `at_once` (the zone was just re-resolved).
    Again {
        detail: String,
        retry_after: Option<Duration>,
        at_once: bool,
    },
    Stop(E),
}

impl<T, E> Attempt<T, E> {
    /// The attempt that follows a temporary refusal.
    pub fn after(refusal: &Refusal) -> Self {
        let retry_after = match refusal {
            Refusal::Throttled { retry_after, .. } => *retry_after,
            _ => None,
        };
        Self::Again { detail: refusal.to_string(), retry_after, at_once: false }
    }
}

/// One call's attempts. A caller loops: make an attempt, hand it to [`Patience::settle`], stop on its answer.
pub(super) struct Patience<'a> {
    what: &'a str,
    n: u32,
    max: Duration,
    backoff: Backoff,
}

impl<'a> Patience<'a> {
    /// A call named `what` (method and path, for logs and errors) that waits at most `max` between attempts.
    pub fn new(what: &'a str, max: Duration) -> Self {
        Patience { what, n: 0, max, backoff: Backoff { attempts: ATTEMPTS, first: FIRST_WAIT.min(max), max } }
    }

    /// `Ok(Some)` when done, `Err` when stopped, `Ok(None)` (after the back-off) to try again. Gives up with
    /// `Transient` (and the wait it would have made) after [`ATTEMPTS`], or at once when the server asks for a
    /// longer wait than `max_backoff`: the engine schedules long waits, so that no job holds a thread meanwhile.
    pub async fn settle<T, E: From<TargetError>>(&mut self, attempt: Attempt<T, E>) -> Result<Option<T>, E> {
        self.n += 1;
        let (detail, hint, at_once) = match attempt {
            Attempt::Done(value) => return Ok(Some(value)),
            Attempt::Stop(e) => return Err(e),
            Attempt::Again { detail, retry_after, at_once } => (detail, retry_after, at_once),
        };
        let (what, n) = (self.what, self.n);
        if n >= ATTEMPTS || hint.is_some_and(|h| h > self.max) {
            let wait = hint.unwrap_or_else(|| self.backoff.delay(n, None));
            tracing::warn!(what, %detail, attempts = n, "giving up for now");
            return Err(transient(format!("{detail} (after {n} attempt(s))"), Some(wait)).into());
        }
        if !at_once {
            let wait = self.backoff.delay(n, hint);
            tracing::info!(what, %detail, wait_ms = wait.as_millis() as u64, "backing off");
            tokio::time::sleep(wait).await;
        }
        Ok(None)
    }
}
