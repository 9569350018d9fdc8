//! The protocol's steps, in order: Plan, Generate, Stage, Apply, Verify, Promote, Finish.
//!
//! What each step may and may not do is the whole of invariants 1 and 2: nothing reaches the target before every
//! store has staged; an apply intent is on disk before the apply is sent; only an answer that says what happened
//! is acted on, anything else goes to recovery; nothing becomes current that the target has not accepted.

use super::Engine;
use super::audit::Facts;
use super::error::{RotationError, Step};
use super::job::{Job, JobStore, Outcome, Trigger};
use super::login::{Verdict, reserve};
use super::recovery::Recovery;
use super::state::ApplyIntent;
use crate::events::EventKind;
use crate::retry::retry;
use crate::secret::SecretValue;
use crate::store::{Metadata, RotationId, StoreError, Stored};
use crate::target::{RotationInfo, TargetError};
use std::time::Duration;
use tracing::Instrument;

/// What a target may spend waiting before its apply sends anything (its gate, a credential being rotated): the
/// target bounds those waits itself and ends them `Transient`; this only catches a target that does not.
const PRE_SEND_ALLOWANCE: Duration = Duration::from_secs(5 * 60);

impl Engine {
    pub(super) async fn rotate_locked(&self, job: &Job, trigger: &Trigger) -> Result<Outcome, RotationError> {
        self.refuse_unusable(job)?;
        // A target a person must fix first (Autotask's refused admin credential) gets no login at all: the job's
        // own verify could present that very credential again (the admin job's), and any other would be spent
        // on a rotation that cannot apply.
        if let Some(detail) = job.target.blocked().await {
            return Err(RotationError::Blocked { step: Step::Plan, detail });
        }
        let mut run = self.run_logins();

        // Plan: settle what an earlier run left, so that at most one rotation is ever in flight per job, and read
        // what is current now.
        let plan = async {
            let recovery =
                self.recover_locked(job, &mut run, false).instrument(tracing::info_span!("recovery")).await?;
            if let Recovery::Promoted { rotation_id } = recovery {
                tracing::info!(%rotation_id, "completed an interrupted rotation instead of starting a new one");
                return Ok(Err(Outcome::Completed { rotation_id }));
            }
            let current = self.read_currents(job).await?;
            // The target must still take what the stores hold: if it refuses the current value, someone changed
            // the credential outside rotavault, and rotating now would hide that. (After a discard, recovery has
            // just proven the current value.)
            let proven = matches!(recovery, Recovery::Discarded { .. });
            if let Some(stored) = current.iter().flatten().next().filter(|_| !proven) {
                match self.verify(job, &stored.value, &mut run, 1, reserve::NONE, false).await {
                    Verdict::Accepted => {}
                    // The current value is the one the target itself needs and now refuses (the Autotask admin's
                    // own): that blocks every job of the target, not this job alone.
                    Verdict::Rejected if let Some(detail) = job.target.blocked().await => {
                        return Err(RotationError::Blocked { step: Step::Plan, detail });
                    }
                    Verdict::Rejected => {
                        let reason =
                            "the target refuses the current value the stores hold: the credential was \
                                      changed outside rotavault"
                                .to_owned();
                        tracing::error!(job = %job.name, %reason, "job diverged; nothing was written");
                        return Err(RotationError::Diverged {
                            job: job.name.clone(),
                            since: self.clock.now(),
                            reason,
                        });
                    }
                    Verdict::Blocked(detail) => {
                        return Err(RotationError::Blocked { step: Step::Plan, detail });
                    }
                    Verdict::Undecided(detail) => {
                        return Err(RotationError::target(
                            Step::Plan,
                            TargetError::Transient { target: job.target.kind(), detail, retry_after: None },
                        ));
                    }
                }
            }
            Ok::<_, RotationError>(Ok(current))
        };
        let current = match plan.instrument(tracing::info_span!("plan")).await? {
            Ok(current) => current,
            Err(completed) => return Ok(completed),
        };
        let generation = current.iter().flatten().map(|s| s.metadata.generation).max().unwrap_or(0) + 1;
        let current_payload = current.iter().flatten().next().map(|s| s.value.clone());
        // Stores whose current value rotavault did not write (generation 0: the secret was there when the job
        // adopted it); once the new value is current there, the secret is rotavault's.
        let adopting: Vec<&str> = job
            .stores
            .iter()
            .zip(&current)
            .filter(|(_, c)| c.as_ref().is_some_and(|c| c.metadata.generation == 0))
            .map(|(js, _)| js.label.as_str())
            .collect();

        if self.shutdown.is_cancelled() {
            return Err(RotationError::ShutDown { step: Step::Plan });
        }
        let rotation_id = RotationId::new();
        tracing::Span::current().record("rotation_id", tracing::field::display(&rotation_id));
        let now = self.clock.now();
        let info = RotationInfo { job: job.name.clone(), rotation_id: rotation_id.clone(), rotated_at: now };
        tracing::info!(%trigger, generation, "rotation starts");

        // Generate: the new secret exists only in memory from here until Stage has finished.
        let payload = async {
            let secret = job.policy.generate()?;
            job.target
                .prepare(current_payload.as_ref(), &secret, &info)
                .await
                .map_err(|source| RotationError::target(Step::Generate, source))
        }
        .instrument(tracing::info_span!("generate"))
        .await?;
        let metadata = Metadata::new(Some(rotation_id.clone()), now, generation);

        self.stage_everywhere(job, &payload, &rotation_id, &metadata)
            .instrument(tracing::info_span!("stage"))
            .await?;
        // The last moment to stop cleanly: past Apply the rotation must run to its end.
        if self.shutdown.is_cancelled() {
            self.discard_everywhere(job, &rotation_id).await?;
            return Err(RotationError::ShutDown { step: Step::Stage });
        }

        // Apply. The intent goes to disk first: from here on the target may get this value whatever happens to
        // this process, and recovery must know that. Only an answer that says what happened is acted on; anything
        // else goes to recovery.
        let intent = ApplyIntent {
            rotation_id: rotation_id.clone(),
            account: job.target.login_account(&payload),
            at: self.clock.now(),
            confirmed: false,
        };
        if let Err(e) = self.states.update(&job.name, |s| s.apply_intent = Some(intent)) {
            self.discard_everywhere(job, &rotation_id).await?;
            return Err(e.into());
        }
        if let Err(detail) = self.fence(job, &rotation_id).instrument(tracing::info_span!("fence")).await {
            tracing::error!(%detail, "the fence before apply did not hold; nothing is sent");
            // Where another rotation's value is pending, this discard is refused and that value left alone; where
            // this one's stays, recovery discards it (no intent: never sent).
            if let Err(e) = self.discard_everywhere(job, &rotation_id).await {
                tracing::warn!(error = %e, "not every store discarded the value after the fence");
            }
            self.clear_intent(job, &rotation_id)?;
            return Err(RotationError::Fenced { rotation_id, detail });
        }
        let applied = self.apply(job, &payload).instrument(tracing::info_span!("apply")).await;
        match applied {
            // Should this process die now, recovery knows the new value is the likelier one.
            Ok(()) => {
                let confirmed = self.states.update(&job.name, |s| {
                    if let Some(intent) = s.apply_intent.as_mut().filter(|i| i.rotation_id == rotation_id) {
                        intent.confirmed = true;
                    }
                });
                if let Err(e) = confirmed {
                    tracing::warn!(error = %e, "could not record that the target confirmed the apply");
                }
            }
            Err(e @ TargetError::Unknown { .. }) => {
                tracing::warn!(error = %e, "the apply's outcome is unknown; recovery decides");
                let recovery = self
                    .recover_locked(job, &mut run, true)
                    .instrument(tracing::info_span!("recovery", after_apply = true))
                    .await?;
                return match recovery {
                    Recovery::Promoted { rotation_id } => Ok(Outcome::Rotated { rotation_id, generation }),
                    Recovery::Discarded { .. } | Recovery::Clean => {
                        Err(RotationError::Target { step: Step::Apply, source: e })
                    }
                };
            }
            // Refused, blocked, or nothing sent (transient past our patience, invalid): the target did not
            // change, so the value goes, and so does the intent.
            Err(source) => {
                self.discard_everywhere(job, &rotation_id).await?;
                self.clear_intent(job, &rotation_id)?;
                return Err(match source {
                    e @ TargetError::Rejected { .. } => RotationError::Refused(e),
                    source => RotationError::target(Step::Apply, source),
                });
            }
        }

        // Logins kept for settling the value later, should this verify not accept it: the new value, and the old
        // one where there is one to prove the apply did not take effect.
        let keep = if current_payload.is_some() { reserve::SETTLE } else { reserve::CURRENT };
        let verdict = self
            .verify(job, &payload, &mut run, self.settings.verify_attempts, keep, true)
            .instrument(tracing::info_span!("verify"))
            .await;
        match verdict {
            Verdict::Accepted => {}
            // Applied but not accepted: perhaps not yet. Discarding could lose a secret the target is about to
            // take, so the value stays pending (with its intent) for recovery to settle after the apply horizon.
            Verdict::Rejected => {
                return Err(RotationError::VerifyFailed { rotation_id, failures: run.failures });
            }
            Verdict::Undecided(detail) => {
                return Err(RotationError::Unsettled { rotation_id, detail });
            }
            // The value stays pending with its intent; a person must look at the account first.
            Verdict::Blocked(detail) => return Err(RotationError::Blocked { step: Step::Verify, detail }),
        }

        self.promote_everywhere(job, &rotation_id, &payload, &metadata)
            .instrument(tracing::info_span!("promote"))
            .await?;
        self.clear_intent(job, &rotation_id)?;
        if !adopting.is_empty() {
            let facts = Facts {
                rotation_id: Some(&rotation_id),
                generation: Some(generation),
                trigger: Some(trigger),
                detail: Some(format!("adopted in {}", adopting.join(", "))),
                ..Facts::default()
            };
            self.emit(job, EventKind::Adopted, facts);
        }

        let _finish = tracing::info_span!("finish").entered();
        tracing::info!(
            target: "rotavault::audit",
            event = "rotated",
            job = %job.name,
            %rotation_id,
            generation,
            stores = %job.stores.iter().map(|s| s.label.as_str()).collect::<Vec<_>>().join(","),
            "rotation complete"
        );
        Ok(Outcome::Rotated { rotation_id, generation })
    }

    pub(super) async fn read_currents(&self, job: &Job) -> Result<Vec<Option<Stored>>, RotationError> {
        let mut out = Vec::with_capacity(job.stores.len());
        for js in &job.stores {
            let current = self.store_call(js, || js.store.current(&js.secret)).await.map_err(|source| {
                RotationError::Store { step: Step::Plan, store: js.label.clone(), source }
            })?;
            out.push(current);
        }
        Ok(out)
    }

    /// Stage in every store, or in none: a failure discards what was staged, and the target is never touched.
    async fn stage_everywhere(
        &self,
        job: &Job,
        payload: &SecretValue,
        rotation_id: &RotationId,
        metadata: &Metadata,
    ) -> Result<(), RotationError> {
        for (i, js) in job.stores.iter().enumerate() {
            let staged =
                self.store_call(js, || js.store.stage(&js.secret, payload, rotation_id, metadata)).await;
            tracing::trace!(store = %js.label, ok = staged.is_ok(), "stage answered");
            if let Err(source) = staged {
                tracing::error!(store = %js.label, error = %source, "stage failed; discarding what was staged");
                // Discard in every store up to and including the failed one: a stage whose answer was lost may
                // have happened all the same.
                for done in &job.stores[..=i] {
                    if let Err(e) =
                        self.store_call(done, || done.store.discard(&done.secret, rotation_id)).await
                    {
                        tracing::error!(store = %done.label, error = %e, "discard after a failed stage failed; recovery will retry it");
                    }
                }
                return Err(RotationError::Store { step: Step::Stage, store: js.label.clone(), source });
            }
        }
        Ok(())
    }

    pub(super) async fn discard_everywhere(
        &self,
        job: &Job,
        rotation_id: &RotationId,
    ) -> Result<(), RotationError> {
        let mut first_error = None;
        for js in &job.stores {
            if let Err(source) = self.store_call(js, || js.store.discard(&js.secret, rotation_id)).await {
                tracing::error!(store = %js.label, error = %source, "discard failed");
                first_error.get_or_insert(RotationError::Store {
                    step: Step::Recovery,
                    store: js.label.clone(),
                    source,
                });
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Promote in every store. A store that fails keeps the value pending; the next run rolls it forward, so
    /// nothing is lost and the other stores are not held back.
    async fn promote_everywhere(
        &self,
        job: &Job,
        rotation_id: &RotationId,
        payload: &SecretValue,
        metadata: &Metadata,
    ) -> Result<(), RotationError> {
        let mut failed = Vec::new();
        for js in &job.stores {
            let result = self.promote_one(js, rotation_id, payload, metadata).await;
            tracing::trace!(store = %js.label, ok = result.is_ok(), "promote answered");
            if let Err(e) = result {
                tracing::error!(store = %js.label, error = %e, "promote failed; the next run completes it");
                failed.push((js.label.clone(), e));
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(RotationError::PromoteIncomplete { rotation_id: rotation_id.clone(), stores: failed })
        }
    }

    /// Makes rotation `rotation_id` current in one store, whatever state an interrupted run left it in.
    pub(super) async fn promote_one(
        &self,
        js: &JobStore,
        rotation_id: &RotationId,
        payload: &SecretValue,
        metadata: &Metadata,
    ) -> Result<(), StoreError> {
        match self.store_call(js, || js.store.promote(&js.secret, rotation_id)).await {
            // The store lost its pending value (a discard after a failed stage, say) but the target has the
            // secret: write it, so that the store holds what the target accepts.
            Err(StoreError::NotFound { .. }) => {
                self.store_call(js, || js.store.write_current(&js.secret, payload, metadata)).await
            }
            other => other,
        }
    }

    pub(super) async fn store_call<T, F, Fut>(&self, js: &JobStore, call: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        let backend = js.store.backend();
        let timeout = self.settings.call_timeout;
        retry(
            self.settings.backoff,
            timeout,
            || StoreError::Transient {
                backend,
                detail: format!("no answer within {timeout:?}"),
                retry_after: None,
            },
            call,
        )
        .await
    }

    /// The fence before Apply (invariant 3 across replicas): the apply intent is written where the next leader
    /// reads it, which proves this replica still holds the lease, and every store still holds this rotation's
    /// value as pending, so that no other process has staged since. Either failing, nothing is sent.
    async fn fence(&self, job: &Job, rotation_id: &RotationId) -> Result<(), String> {
        if let Some(shared) = self.states.shared() {
            shared.published(self.settings.call_timeout).await.map_err(|e| e.to_string())?;
        }
        for js in &job.stores {
            let pending = self
                .store_call(js, || js.store.pending(&js.secret))
                .await
                .map_err(|e| format!("store `{}`: reading pending again: {e}", js.label))?;
            let id = pending.as_ref().map(|p| &p.rotation_id);
            if id != Some(rotation_id) {
                return Err(format!(
                    "store `{}` no longer holds this rotation's value as pending ({}): another process has \
                     staged since",
                    js.label,
                    id.map_or_else(
                        || "nothing is pending".to_owned(),
                        |id| format!("rotation {id} is pending")
                    )
                ));
            }
        }
        Ok(())
    }

    /// Forgets the apply intent of `rotation_id` once its value is settled (current, or discarded).
    pub(super) fn clear_intent(&self, job: &Job, rotation_id: &RotationId) -> Result<(), RotationError> {
        let state = self.states.load(&job.name)?;
        if state.apply_intent.as_ref().is_some_and(|i| &i.rotation_id == rotation_id) {
            self.states.update(&job.name, |s| s.apply_intent = None)?;
        }
        Ok(())
    }

    /// Sends the apply, retrying only what the target said did not happen. The call timeout runs from the moment
    /// the target sends (the target applies it); what it waits before that is its own, bounded by it, and the
    /// allowance here only catches a target that hangs before sending.
    async fn apply(&self, job: &Job, payload: &SecretValue) -> Result<(), TargetError> {
        let timeout = self.settings.call_timeout;
        let mut attempt = 1;
        loop {
            let result =
                match tokio::time::timeout(timeout + PRE_SEND_ALLOWANCE, job.target.apply(payload, timeout))
                    .await
                {
                    Ok(result) => result,
                    Err(_) => Err(TargetError::Unknown {
                        target: job.target.kind(),
                        detail: format!("no answer within {:?}", timeout + PRE_SEND_ALLOWANCE),
                    }),
                };
            match result {
                // Retried here only when the target asks for a short wait; a longer one ends the run ("try
                // later"), since nothing was sent and the job's lock should not be held meanwhile.
                Err(TargetError::Transient { retry_after, ref detail, .. })
                    if attempt < self.settings.backoff.attempts
                        && retry_after.is_none_or(|wait| wait <= self.settings.backoff.max) =>
                {
                    let wait = self.settings.backoff.delay(attempt, retry_after);
                    tracing::warn!(%detail, attempt, "apply did not happen; retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}
