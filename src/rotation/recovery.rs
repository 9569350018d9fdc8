//! Recovery: settling a pending value that an interrupted rotation left behind. It knows rather than infers.
//!
//! A pending value means a rotation got past Stage and then stopped: before Apply, during it (the answer was
//! lost), or after it (before Promote finished). The job's state says which: before the apply request leaves, the
//! engine writes an **apply intent** (rotation id, account, time) and syncs it. So:
//!
//! 1. No intent names the pending value: no apply was ever sent for it, the target cannot have it. It is
//!    discarded everywhere, without a single login.
//! 2. The target accepts the pending value: the apply happened. It is promoted everywhere (written where a store
//!    lacks it) and the rotation is complete.
//! 3. It does not, and the intent is younger than the **apply horizon**: the job is **unsettled**. A server can
//!    finish an update after its client gave up, so "the old value still works" proves nothing yet; the value
//!    stays pending and is looked at again when the horizon has passed. Never discarded before.
//! 4. Past the horizon, the target still accepts the value before it: the apply never took effect; pending is
//!    discarded everywhere. It accepts neither: the job is **diverged**: rotavault stops touching it and leaves
//!    every store exactly as it is for a person to decide (the pending value is still there, should the target
//!    have carried out the apply later still).
//!
//! Every verify is a login, through the lockout guard ([`login`](super::login)); each leaves the logins that the
//! steps after it may still need.

use super::Engine;
use super::audit::Facts;
use super::error::{RotationError, Step};
use super::job::Job;
use super::login::{RunLogins, Verdict, reserve};
use super::state::{ApplyIntent, FORMAT};
use crate::events::EventKind;
use crate::secret::SecretValue;
use crate::store::{Pending, RotationId};

/// What recovery found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// Nothing was pending.
    Clean,
    /// The target had the pending value; it is now current everywhere.
    Promoted { rotation_id: RotationId },
    /// The target does not have the pending value; it was discarded everywhere, for the reason given.
    Discarded { rotation_id: RotationId, reason: String },
}

impl Engine {
    /// `after_apply`: called right after an apply whose outcome is unknown, so the new value gets the settle
    /// delay and the retries a normal verify gets.
    pub(super) async fn recover_locked(
        &self,
        job: &Job,
        run: &mut RunLogins,
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
        let state = self.states.load(&job.name)?;
        let Some(newest) = candidates.first().copied() else {
            // Settled earlier (a crash between the last promote and forgetting the intent, say).
            if let Some(intent) = &state.apply_intent {
                self.clear_intent(job, &intent.rotation_id)?;
            }
            return Ok(Recovery::Clean);
        };

        // The intent names the one value that may have reached the target. A state file from a rotavault that
        // recorded no intents cannot say, so its newest value is treated as sent when it was staged.
        let intent = state
            .apply_intent
            .clone()
            .filter(|i| candidates.iter().any(|c| c.rotation_id == i.rotation_id))
            .or_else(|| {
                (state.format < FORMAT).then(|| ApplyIntent {
                    rotation_id: newest.rotation_id.clone(),
                    account: None,
                    at: newest.metadata.rotated_at,
                    confirmed: false,
                })
            });
        for unsent in
            candidates.iter().filter(|c| intent.as_ref().is_none_or(|i| i.rotation_id != c.rotation_id))
        {
            self.discard_everywhere(job, &unsent.rotation_id).await?;
            tracing::info!(rotation_id = %unsent.rotation_id, "no apply was ever sent for this pending value; discarded without a login");
            let detail = "no apply was ever sent for it (the run stopped before Apply)".to_owned();
            self.emit_discarded(job, &unsent.rotation_id, detail);
        }
        let sent = intent.and_then(|i| {
            candidates.iter().copied().find(|c| c.rotation_id == i.rotation_id).map(|c| (i, c))
        });
        let Some((intent, sent)) = sent else {
            return Ok(Recovery::Discarded {
                rotation_id: newest.rotation_id.clone(),
                reason: "no apply was ever sent for it (the run stopped before Apply)".into(),
            });
        };
        tracing::info!(rotation_id = %sent.rotation_id, sent_at = %intent.at, after_apply, "a pending value whose apply was sent; asking the target");

        // What would prove, past the horizon, that the apply did not take effect: the target still accepting the
        // last value stored for the same account. With one account that is the current value; with alternating
        // accounts the current value belongs to the other account, and the pending one's account last had the
        // previous value.
        let account = job.target.account_of(&sent.value);
        let same = |value: &SecretValue| job.target.account_of(value) == account;
        let currents = self.read_currents(job).await?;
        let mut known: Vec<SecretValue> = Vec::new();
        for c in currents.iter().flatten() {
            if same(&c.value) && !known.contains(&c.value) {
                known.push(c.value.clone());
            }
        }
        if known.is_empty() && account.is_some() {
            for js in &job.stores {
                let previous =
                    self.store_call(js, || js.store.previous(&js.secret)).await.map_err(|source| {
                        RotationError::Store { step: Step::Recovery, store: js.label.clone(), source }
                    })?;
                if let Some(p) = previous.filter(|p| same(&p.value) && !known.contains(&p.value)) {
                    known.push(p.value);
                }
            }
        }
        let horizon = self.apply_horizon(job);
        let settles_at = self.settles_at(job, &intent);
        let within = self.clock.now() < settles_at;
        // Within the horizon, keep a login for the new value and one for the old, for when the horizon has passed;
        // past it, one for the old. There is no old value to try when the account never had one stored.
        let old = u32::from(!known.is_empty());
        // Past the horizon with a single login left (logins cut off by a crash count until an accepted one), the
        // two values cannot both be tried, and the last login goes to the likelier one: the new value when the
        // target confirmed the apply, else the old one (an apply whose answer was lost most often never happened,
        // and the old value accepted past the horizon is proof enough on its own).
        let single = !within && !after_apply && old > 0 && self.logins_left(job, &sent.value) == 1;
        let pending_first = !single || intent.confirmed;
        let (max, keep) = match (after_apply, within) {
            _ if single => (1, reserve::NONE),
            (true, _) => (self.settings.verify_attempts, reserve::CURRENT + old),
            (false, true) => (1, reserve::CURRENT + old),
            (false, false) => (1, reserve::NONE + old),
        };
        let verdict = if pending_first {
            self.verify(job, &sent.value, run, max, keep, after_apply).await
        } else {
            tracing::info!(rotation_id = %sent.rotation_id, "one login left: trying the value before it");
            Verdict::Rejected
        };
        match verdict {
            Verdict::Accepted => {
                let recovery = self.roll_forward(job, sent, &pendings).await?;
                self.clear_intent(job, &sent.rotation_id)?;
                return Ok(recovery);
            }
            Verdict::Rejected => {}
            Verdict::Blocked(detail) => return Err(RotationError::Blocked { step: Step::Recovery, detail }),
            Verdict::Undecided(detail) => {
                return Err(RotationError::Unsettled {
                    rotation_id: sent.rotation_id.clone(),
                    detail: if within {
                        format!("{detail}; it is looked at again after {settles_at}")
                    } else {
                        detail
                    },
                });
            }
        }
        if single && pending_first {
            return Err(self.no_login_left(job, "the pending value", "the value before it"));
        }
        if within {
            return Err(RotationError::Unsettled {
                rotation_id: sent.rotation_id.clone(),
                detail: format!(
                    "the target does not accept it yet, and the apply sent at {} may still be carried out until \
                     {settles_at} (the apply horizon, {}); it is looked at again then and never discarded before",
                    intent.at,
                    humantime::format_duration(horizon)
                ),
            });
        }

        for value in &known {
            match self.verify(job, value, run, 1, reserve::NONE, false).await {
                Verdict::Accepted => {
                    self.discard_everywhere(job, &sent.rotation_id).await?;
                    self.clear_intent(job, &sent.rotation_id)?;
                    tracing::info!(rotation_id = %sent.rotation_id, "the apply never took effect; pending discarded");
                    let reason = format!(
                        "the target still accepts the value before it, {} after the apply was sent: the apply \
                         never took effect",
                        humantime::format_duration(horizon)
                    );
                    self.emit_discarded(job, &sent.rotation_id, reason.clone());
                    return Ok(Recovery::Discarded { rotation_id: sent.rotation_id.clone(), reason });
                }
                Verdict::Rejected => {}
                Verdict::Blocked(detail) => {
                    return Err(RotationError::Blocked { step: Step::Recovery, detail });
                }
                Verdict::Undecided(detail) => {
                    return Err(RotationError::Unsettled { rotation_id: sent.rotation_id.clone(), detail });
                }
            }
        }
        if !pending_first {
            // The pending value was never tried: nothing is proven, and only a person can let it be tried.
            return Err(self.no_login_left(job, "the value before it", "the pending value"));
        }
        let now = self.clock.now();
        let reason = format!(
            "the target accepts neither the pending value of rotation {} nor the value before it, {} after \
             rotavault sent that apply (at {}). Either the credential was changed outside rotavault, or the target \
             carried out rotavault's own apply later than the apply horizon: every store still holds that pending \
             value, so check whether it works before setting the credential by hand",
            sent.rotation_id,
            humantime::format_duration(horizon),
            intent.at
        );
        tracing::error!(job = %job.name, %reason, "job diverged; it will not be touched again until resolved");
        Err(RotationError::Diverged { job: job.name.clone(), since: now, reason })
    }

    fn emit_discarded(&self, job: &Job, rotation_id: &RotationId, reason: String) {
        let facts = Facts { rotation_id: Some(rotation_id), detail: Some(reason), ..Facts::default() };
        self.emit(job, EventKind::Discarded, facts);
    }

    /// Logins the lockout guard still allows as the account of `payload` (none when its record cannot be read).
    fn logins_left(&self, job: &Job, payload: &SecretValue) -> u32 {
        match job.target.login_account(payload) {
            Some(account) => {
                self.lockout.consecutive(&account).map_or(0, |n| self.lockout.max_failed().saturating_sub(n))
            }
            None => u32::MAX,
        }
    }

    /// The target refused `tried` with the account's last allowed login, and `untried` could not be tried: every
    /// store keeps the pending value, and a person must look at the account before another login.
    fn no_login_left(&self, job: &Job, tried: &str, untried: &str) -> RotationError {
        RotationError::Blocked {
            step: Step::Recovery,
            detail: format!(
                "the target refuses {tried}, and the lockout guard leaves no login to try {untried} (logins cut off \
                 by a crash count as failed until an accepted one). Every store still holds the pending value. Check \
                 the account at the target (unlock it if it is locked), then run `rotavault resolve {}`",
                job.name
            ),
        }
    }

    /// Makes `accepted` current in every store. A store's pending is promoted only when it holds exactly the
    /// value the target accepted; any other pending value there is discarded and the accepted one written.
    async fn roll_forward(
        &self,
        job: &Job,
        accepted: &Pending,
        pendings: &[Option<Pending>],
    ) -> Result<Recovery, RotationError> {
        let mut failed = Vec::new();
        for (js, pending) in job.stores.iter().zip(pendings) {
            let result = match pending {
                Some(p) if p.rotation_id == accepted.rotation_id && p.value == accepted.value => {
                    self.promote_one(js, &accepted.rotation_id, &accepted.value, &accepted.metadata).await
                }
                Some(other) => {
                    tracing::warn!(store = %js.label, rotation_id = %other.rotation_id, "this store's pending value is not the one the target accepted; writing the accepted one");
                    match self.store_call(js, || js.store.discard(&js.secret, &other.rotation_id)).await {
                        Ok(()) => {
                            self.store_call(js, || {
                                js.store.write_current(&js.secret, &accepted.value, &accepted.metadata)
                            })
                            .await
                        }
                        Err(e) => Err(e),
                    }
                }
                None => {
                    self.promote_one(js, &accepted.rotation_id, &accepted.value, &accepted.metadata).await
                }
            };
            if let Err(e) = result {
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
}
