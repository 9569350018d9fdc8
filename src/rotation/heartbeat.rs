//! The drift heartbeat: between rotations, proves that the value a job's stores hold as current still works at the
//! target, and that every store holds the same one.
//!
//! A heartbeat changes nothing at the target and writes no store. It verifies one value (the one most stores hold,
//! ties to the first store in the job's order) with one login at most, through the lockout guard like every
//! login, and always leaves the logins a later rotation needs. After a login of the account failed, no heartbeat
//! logs in as it again until one is accepted or a person runs `rotavault resolve`: a heartbeat exists to notice a
//! problem, never to add failed logins to one.
//!
//! - The target refuses the stored value: the credential was changed behind rotavault's back. The job is marked
//!   diverged (event and notification), and nothing more is tried until a person acts.
//! - The target accepts it, and a store holds another value or none: a person overwrote that store. The job's
//!   state names the store (a `drifted` event once, when the set of stores changes) until a heartbeat finds every
//!   store in step again, or a rotation writes them all anew. The store's value is left as it is: the person may
//!   have meant it, and the next rotation keeps it as previous.

use super::Engine;
use super::audit::Facts;
use super::error::{RotationError, Step};
use super::job::{Job, Trigger};
use super::login::{Verdict, reserve};
use super::state::{DriftMark, Verified};
use crate::events::EventKind;
use crate::secret::SecretValue;
use tracing::Instrument;

/// What a heartbeat found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Heartbeat {
    /// The target accepts the stored current value. `drift` names the stores whose current is another value, or
    /// none.
    Verified { drift: Vec<String> },
    /// Nothing was verified, and why (the job is pending, diverged or blocked, an account has failed logins, a
    /// store could not be read, the target did not answer).
    Skipped(String),
}

impl Engine {
    /// Verifies `job`'s stored current value against its target, and compares its stores with each other.
    pub async fn heartbeat(&self, job: &Job) -> Result<Heartbeat, RotationError> {
        let _guard = self.locks.try_acquire(&job.name)?;
        let span = tracing::info_span!("heartbeat", job = %job.name, stores = %job.backends());
        let result = self.heartbeat_locked(job).instrument(span).await;
        match &result {
            Ok(Heartbeat::Verified { drift }) => self.record_verified(job, drift)?,
            Ok(Heartbeat::Skipped(why)) => tracing::info!(job = %job.name, %why, "heartbeat skipped"),
            Err(e) => self.record(job, Err(e), Some(&Trigger::Heartbeat))?,
        }
        result
    }

    async fn heartbeat_locked(&self, job: &Job) -> Result<Heartbeat, RotationError> {
        let skip = |why: String| Ok(Heartbeat::Skipped(why));
        if job.stores.is_empty() {
            return skip("the job has no store".into());
        }
        if self.states.load(&job.name)?.diverged.is_some() {
            return skip(format!("diverged: nothing is verified until `rotavault resolve {}`", job.name));
        }
        if let Some(why) = job.target.blocked().await {
            return skip(format!("blocked: {why}"));
        }
        for account in job.target.accounts() {
            match self.lockout.consecutive(&account) {
                Ok(0) => {}
                Ok(n) => {
                    return skip(format!(
                        "{account} has {n} failed login(s) since its last accepted one: a heartbeat waits for an \
                         accepted login or `rotavault resolve {}`",
                        job.name
                    ));
                }
                Err(e) => {
                    return skip(format!("the lockout guard's record of {account} cannot be read: {e}"));
                }
            }
        }

        let mut currents: Vec<Option<SecretValue>> = Vec::with_capacity(job.stores.len());
        for js in &job.stores {
            let read = async {
                let pending = self.store_call(js, || js.store.pending(&js.secret)).await?;
                let current = self.store_call(js, || js.store.current(&js.secret)).await?;
                Ok::<_, crate::store::StoreError>((pending.is_some(), current))
            };
            match read.await {
                Ok((true, _)) => {
                    return skip(format!(
                        "store {} holds a pending value: recovery settles it first",
                        js.label
                    ));
                }
                Ok((false, current)) => currents.push(current.map(|stored| stored.value)),
                Err(e) => return skip(format!("store {} cannot be read: {e}", js.label)),
            }
        }
        let Some(value) = most_held(&currents).and_then(|i| currents[i].clone()) else {
            return skip("no store holds a current value yet".into());
        };
        let (holders, differing): (Vec<_>, Vec<_>) =
            job.stores.iter().zip(&currents).partition(|(_, current)| current.as_ref() == Some(&value));
        let labels = |stores: Vec<(&super::JobStore, _)>| -> Vec<String> {
            stores.into_iter().map(|(js, _)| js.label.clone()).collect()
        };
        let (holders, differing) = (labels(holders), labels(differing));

        let mut run = self.run_logins();
        match self.verify(job, &value, &mut run, 1, reserve::SETTLE, false).await {
            Verdict::Accepted => Ok(Heartbeat::Verified { drift: differing }),
            Verdict::Rejected => Err(RotationError::Diverged {
                job: job.name.clone(),
                since: self.clock.now(),
                reason: format!(
                    "a heartbeat found that the target refuses the current value held by store(s) {}: the \
                     credential was changed outside rotavault, or the account was disabled",
                    holders.join(", ")
                ),
            }),
            Verdict::Blocked(detail) => Err(RotationError::Blocked { step: Step::Verify, detail }),
            Verdict::Undecided(why) => skip(format!("the target could not tell: {why}")),
        }
    }

    /// Records an accepted heartbeat, and the stores out of step; a change in those stores is an event.
    fn record_verified(&self, job: &Job, drift: &[String]) -> Result<(), RotationError> {
        let now = self.clock.now();
        let mut changed = false;
        self.states.update(&job.name, |state| {
            state.last_verify = Some(Verified { at: now, by: "heartbeat".into() });
            let before = state.drift.take();
            changed = before.as_ref().map(|d| d.stores.as_slice()) != Some(drift) && !drift.is_empty();
            if !drift.is_empty() {
                let since = before.filter(|d| d.stores == drift).map_or(now, |d| d.since);
                state.drift = Some(DriftMark { since, stores: drift.to_vec() });
            }
        })?;
        if drift.is_empty() {
            tracing::info!(job = %job.name, "heartbeat: the target accepts the stored value, every store in step");
        } else {
            tracing::warn!(job = %job.name, stores = %drift.join(","), "heartbeat: store(s) hold another current value");
        }
        if changed {
            let detail = format!(
                "store(s) {} hold a current value other than the one the target accepts (a person overwrote it, or \
                 deleted it): set it right, or the next rotation writes every store anew",
                drift.join(", ")
            );
            self.emit(job, EventKind::Drifted, Facts { detail: Some(detail), ..Facts::default() });
        }
        Ok(())
    }
}

/// The index of the value most stores hold (ties: the first store's), `None` when no store holds one.
fn most_held(currents: &[Option<SecretValue>]) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (i, value) in currents.iter().enumerate() {
        let Some(value) = value else { continue };
        let count = currents.iter().filter(|other| other.as_ref() == Some(value)).count();
        if best.is_none_or(|(_, most)| count > most) {
            best = Some((i, count));
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Option<SecretValue> {
        Some(SecretValue::new(s))
    }

    #[test]
    fn the_value_most_stores_hold_is_verified_and_a_tie_goes_to_the_first_store() {
        assert_eq!(most_held(&[v("a"), v("b"), v("b")]), Some(1));
        assert_eq!(most_held(&[v("a"), v("b")]), Some(0));
        assert_eq!(most_held(&[None, v("b"), None]), Some(1));
        assert_eq!(most_held(&[None, None]), None);
    }
}
