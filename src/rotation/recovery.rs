//! Recovery: settling a pending value that an interrupted rotation left behind.
//!
//! A pending value means a rotation got past Stage and then stopped: before Apply, during it (the answer was
//! lost), or after it (before Promote finished). Only the target knows which, so recovery asks it, in this order:
//!
//! 1. Does the target accept the **pending** value? Then the apply happened: promote it everywhere (writing it
//!    where a store lost it) and the rotation is complete.
//! 2. Otherwise, does it accept the **current** value? Then the apply never happened: discard pending everywhere.
//! 3. Neither: someone changed the credential outside rotavault, or the new value has not propagated yet. Within
//!    the propagation grace the value stays pending and a later run asks again; after it the job is **diverged**:
//!    rotavault stops touching it and leaves every store exactly as it is for a person to decide.
//!
//! Every verify is a login, and every failed one counts toward the target's lockout, so all of them draw from the
//! run's [`LoginBudget`](super::LoginBudget).

use super::{Engine, Job, LoginBudget, RotationError, Step, Verdict};
use crate::secret::SecretValue;
use crate::store::{Pending, RotationId};

/// What recovery found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// Nothing was pending.
    Clean,
    /// The target had the pending value; it is now current everywhere.
    Promoted { rotation_id: RotationId },
    /// The target never got the pending value; it was discarded everywhere.
    Discarded { rotation_id: RotationId },
}

impl Engine {
    /// `after_apply`: called right after an apply whose outcome is unknown, so the new value gets the settle
    /// delay and the retries a normal verify gets.
    pub(super) async fn recover_locked(
        &self,
        job: &Job,
        budget: &mut LoginBudget,
        after_apply: bool,
    ) -> Result<Recovery, RotationError> {
        let mut pendings: Vec<Option<Pending>> = Vec::with_capacity(job.stores.len());
        for js in &job.stores {
            let pending = self.store_call(js, || js.store.pending(&js.secret)).await.map_err(|source| {
                RotationError::Store { step: Step::Recovery, store: js.label.clone(), source }
            })?;
            pendings.push(pending);
        }
        // Normally one rotation id at most; several can only come from a store edited by hand. Newest first.
        let mut candidates: Vec<&Pending> = Vec::new();
        for p in pendings.iter().flatten() {
            if !candidates.iter().any(|c| c.rotation_id == p.rotation_id) {
                candidates.push(p);
            }
        }
        candidates.sort_by_key(|c| std::cmp::Reverse(c.metadata.rotated_at));
        let Some(newest) = candidates.first().copied() else {
            return Ok(Recovery::Clean);
        };
        tracing::info!(rotation_id = %newest.rotation_id, after_apply, "a pending value was found; asking the target");

        for candidate in &candidates {
            // Leave one login for the current value, should the pending one be refused.
            let max = if after_apply { budget.left.saturating_sub(1).max(1) } else { 1 };
            match self.verify(job, &candidate.value, budget, max, after_apply).await {
                Verdict::Accepted => return self.roll_forward(job, candidate, &pendings).await,
                Verdict::Rejected => {}
                Verdict::Undecided(detail) => {
                    return Err(RotationError::Unsettled {
                        rotation_id: candidate.rotation_id.clone(),
                        detail,
                    });
                }
            }
        }

        // What proves the apply did not happen: the target still accepting the last value stored for the same
        // account. With one account that is the current value; with alternating accounts the current value
        // belongs to the other account, and the pending one's account last had the previous value.
        let account = job.target.account_of(&newest.value);
        let same = |value: &SecretValue| job.target.account_of(value) == account;
        let currents = self.read_currents(job).await?;
        let mut distinct: Vec<SecretValue> = Vec::new();
        for c in currents.iter().flatten() {
            if same(&c.value) && !distinct.contains(&c.value) {
                distinct.push(c.value.clone());
            }
        }
        if distinct.is_empty() && account.is_some() {
            for js in &job.stores {
                let previous =
                    self.store_call(js, || js.store.previous(&js.secret)).await.map_err(|source| {
                        RotationError::Store { step: Step::Recovery, store: js.label.clone(), source }
                    })?;
                if let Some(p) = previous.filter(|p| same(&p.value) && !distinct.contains(&p.value)) {
                    distinct.push(p.value);
                }
            }
        }
        for known in &distinct {
            match self.verify(job, known, budget, 1, false).await {
                Verdict::Accepted => {
                    for candidate in &candidates {
                        self.discard_everywhere(job, &candidate.rotation_id).await?;
                    }
                    tracing::info!(rotation_id = %newest.rotation_id, "the apply never happened; pending discarded");
                    return Ok(Recovery::Discarded { rotation_id: newest.rotation_id.clone() });
                }
                Verdict::Rejected => {}
                Verdict::Undecided(detail) => {
                    return Err(RotationError::Unsettled { rotation_id: newest.rotation_id.clone(), detail });
                }
            }
        }
        Err(self.unsettled_or_diverged(job, newest))
    }

    /// Makes `accepted` current in every store, discarding any other pending value first.
    async fn roll_forward(
        &self,
        job: &Job,
        accepted: &Pending,
        pendings: &[Option<Pending>],
    ) -> Result<Recovery, RotationError> {
        let mut failed = Vec::new();
        for (js, pending) in job.stores.iter().zip(pendings) {
            let other = pending.as_ref().filter(|p| p.rotation_id != accepted.rotation_id);
            if let Some(other) = other
                && let Err(e) = self.store_call(js, || js.store.discard(&js.secret, &other.rotation_id)).await
            {
                failed.push((js.label.clone(), e));
                continue;
            }
            if let Err(e) =
                self.promote_one(js, &accepted.rotation_id, &accepted.value, &accepted.metadata).await
            {
                failed.push((js.label.clone(), e));
            }
        }
        if !failed.is_empty() {
            return Err(RotationError::PromoteIncomplete {
                rotation_id: accepted.rotation_id.clone(),
                stores: failed,
            });
        }
        tracing::info!(
            target: "rotavault::audit",
            event = "rotated",
            job = %job.name,
            rotation_id = %accepted.rotation_id,
            generation = accepted.metadata.generation,
            "an interrupted rotation was completed by recovery"
        );
        Ok(Recovery::Promoted { rotation_id: accepted.rotation_id.clone() })
    }

    fn unsettled_or_diverged(&self, job: &Job, newest: &Pending) -> RotationError {
        let now = self.clock.now();
        let staged_at = newest.metadata.rotated_at;
        let age = (now - staged_at).to_std().unwrap_or_default();
        if age < self.settings.propagation_grace {
            return RotationError::Unsettled {
                rotation_id: newest.rotation_id.clone(),
                detail: format!(
                    "the target accepts neither the pending value (staged at {staged_at}) nor the current one; \
                     waiting up to {} after staging for the new value to propagate",
                    humantime::format_duration(self.settings.propagation_grace)
                ),
            };
        }
        let reason = format!(
            "the target accepts neither the pending value of rotation {} (staged at {staged_at}) nor the current \
             value: the credential was changed outside rotavault",
            newest.rotation_id
        );
        tracing::error!(job = %job.name, %reason, "job diverged; it will not be touched again until resolved");
        RotationError::Diverged { job: job.name.clone(), since: now, reason }
    }
}
