//! The rotation engine: the protocol of DESIGN.md, implemented once for every target and store.
//!
//! A rotation runs Plan, Generate, Stage, Apply, Verify, Promote and Finish ([`steps`]), each in its own tracing
//! span, under the job's lock, after [recovery](recovery) has settled whatever an earlier run left pending. The
//! order is the whole point:
//!
//! - **Invariant 1 (no loss)**: the target is never changed before every store holds the new value as pending,
//!   and a pending value is only ever discarded once the target is known not to have it: no apply was ever sent
//!   for it (no apply intent), the target refused it, or the apply horizon has passed and the old value still
//!   works.
//! - **Invariant 2 (no break)**: a store's current slot only moves to a value the target has accepted.
//! - **Invariant 3 (one at a time)**: every entry point takes the job's [lock](lock) first.
//!
//! The map: [`settings`] (how patient), [`job`] (what runs), [`error`] (how it ends), [`steps`] (the protocol),
//! [`login`] (every verify, through the lockout guard), [`recovery`], [`import`], [`heartbeat`] (the stored value
//! verified between rotations, the stores compared), [`state`] (the job's record between runs, with the apply
//! intent), [`lock`].

mod audit;
pub mod error;
mod heartbeat;
mod import;
pub mod job;
pub mod lock;
mod login;
mod recovery;
mod reload;
pub mod settings;
pub mod state;
mod steps;

pub use error::{RotationError, Step};
pub use heartbeat::Heartbeat;
pub use job::{Job, JobStore, Outcome, Trigger};
pub use recovery::Recovery;
pub use settings::Settings;

use crate::events::{EventKind, EventSink, LogSink};
use crate::hooks::Hook;
use crate::lockout::LockoutGuard;
use crate::schedule::Clock;
use chrono::{DateTime, Utc};
use lock::JobLocks;
use state::{ApplyIntent, Attempt, AttemptOutcome, DivergedMark, StateDir, Success, Verified};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub struct Engine {
    settings: Settings,
    clock: Arc<dyn Clock>,
    locks: JobLocks,
    states: StateDir,
    lockout: Arc<LockoutGuard>,
    shutdown: CancellationToken,
    events: Arc<dyn EventSink>,
    /// Each job's `after_rotation` hooks, by job name.
    hooks: BTreeMap<String, Vec<Hook>>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine").field("settings", &self.settings).field("states", &self.states).finish()
    }
}

impl Engine {
    /// `state_dir` holds job state files, the lockout guard's records and, when `cross_process_locks`, the lock
    /// files.
    pub fn new(
        settings: Settings,
        clock: Arc<dyn Clock>,
        states: StateDir,
        cross_process_locks: bool,
    ) -> Self {
        let locks = JobLocks::new(cross_process_locks.then(|| states.root().join("locks")));
        let lockout = Arc::new(LockoutGuard::new(
            states.root(),
            settings.max_failed_logins,
            settings.failed_login_window,
            clock.clone(),
        ));
        Self {
            settings,
            clock,
            locks,
            states,
            lockout,
            shutdown: CancellationToken::new(),
            events: Arc::new(LogSink),
            hooks: BTreeMap::new(),
        }
    }

    /// Once `shutdown` is cancelled, a rotation that has not reached Apply stops there and discards what it
    /// staged; one past Apply runs to its end, so that a shutdown never leaves more for recovery than it must.
    pub fn with_shutdown(mut self, shutdown: CancellationToken) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Shares `lockout` with the targets that log in on their own (the Autotask admin), so that one count per
    /// account holds for every login.
    pub fn with_lockout(mut self, lockout: Arc<LockoutGuard>) -> Self {
        self.lockout = lockout;
        self
    }

    /// Where the engine's audit events go (by default only to the log): one event per decision, emitted where
    /// the decision is made.
    pub fn with_events(mut self, events: Arc<dyn EventSink>) -> Self {
        self.events = events;
        self
    }

    /// The reload hooks run after each job's new secret became current, by job name.
    pub fn with_hooks(mut self, hooks: BTreeMap<String, Vec<Hook>>) -> Self {
        self.hooks = hooks;
        self
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn states(&self) -> &StateDir {
        &self.states
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn lockout(&self) -> &Arc<LockoutGuard> {
        &self.lockout
    }

    /// How long after an apply was sent `job`'s target may still carry it out.
    pub fn apply_horizon(&self, job: &Job) -> Duration {
        self.settings.apply_horizon(job.target.longest_apply())
    }

    /// When the value `intent` sent for `job` can be settled: the end of its apply horizon.
    pub fn settles_at(&self, job: &Job, intent: &ApplyIntent) -> DateTime<Utc> {
        let horizon = chrono::Duration::from_std(self.apply_horizon(job)).unwrap_or(chrono::Duration::MAX);
        intent.at + horizon
    }

    /// Rotates `job`: settles anything pending first, then runs the whole protocol.
    pub async fn rotate(&self, job: &Job, trigger: Trigger) -> Result<Outcome, RotationError> {
        if job.target.manual() {
            return Err(RotationError::Manual { job: job.name.clone() });
        }
        let _guard = self.locks.try_acquire(&job.name)?;
        let span = tracing::info_span!(
            "rotation",
            job = %job.name,
            trigger = %trigger,
            stores = %job.backends(),
            target = job.target.kind(),
            rotation_id = tracing::field::Empty,
        );
        let result = self.rotate_locked(job, &trigger).instrument(span).await;
        self.record(job, result.as_ref(), Some(&trigger))?;
        if let Ok(Outcome::Rotated { rotation_id, .. } | Outcome::Completed { rotation_id }) = &result {
            self.run_hooks(job, rotation_id).await;
        }
        result
    }

    /// Settles a pending value left by an interrupted rotation (at start-up, and before each rotation).
    pub async fn recover(&self, job: &Job) -> Result<Recovery, RotationError> {
        let _guard = self.locks.try_acquire(&job.name)?;
        self.refuse_unusable(job)?;
        let span = tracing::info_span!("recovery", job = %job.name, stores = %job.backends());
        let mut run = self.run_logins();
        let result = self.recover_locked(job, &mut run, false).instrument(span).await;
        match &result {
            Ok(Recovery::Clean) => {}
            Ok(Recovery::Promoted { rotation_id }) => {
                self.record(job, Ok(&Outcome::Completed { rotation_id: rotation_id.clone() }), None)?;
                self.run_hooks(job, rotation_id).await;
            }
            Ok(Recovery::Discarded { rotation_id, reason }) => {
                let now = self.clock.now();
                let error = format!("rotation {rotation_id} was discarded: {reason}");
                self.states.update(&job.name, |s| {
                    s.last_attempt = Some(Attempt {
                        at: now,
                        rotation_id: Some(rotation_id.clone()),
                        outcome: AttemptOutcome::Failed,
                        error: Some(error),
                    })
                })?;
            }
            Err(e) => self.record(job, Err(e), None)?,
        }
        result
    }

    /// Forgets that `job` is diverged, after a person has set things right.
    pub fn resolve_diverged(&self, job: &str) -> Result<bool, RotationError> {
        let _guard = self.locks.try_acquire(job)?;
        let mut was = false;
        self.states.update(job, |s| was = s.diverged.take().is_some())?;
        Ok(was)
    }

    /// A person has set things right for `job` (`rotavault resolve`): forgets its diverged mark, starts the
    /// lockout guard's count of its accounts afresh, and lets its target forget what blocked it (a refused admin
    /// credential). Returns whether it was diverged.
    pub async fn resolve(&self, job: &Job) -> Result<bool, RotationError> {
        let was = self.resolve_diverged(&job.name)?;
        for account in job.target.accounts() {
            self.lockout
                .reset(&account)
                .map_err(|e| RotationError::Blocked { step: Step::Plan, detail: e.to_string() })?;
        }
        job.target.resolve().await.map_err(|e| RotationError::target(Step::Plan, e))?;
        let detail = if was { "the diverged mark was cleared" } else { "the job's accounts were cleared" };
        self.emit(
            job,
            EventKind::Resolved,
            audit::Facts { detail: Some(detail.into()), ..Default::default() },
        );
        Ok(was)
    }

    /// A job the engine must not run: one with no store (it would change a credential it cannot keep), or one
    /// marked diverged.
    fn refuse_unusable(&self, job: &Job) -> Result<(), RotationError> {
        if job.stores.is_empty() {
            return Err(RotationError::NoStores { job: job.name.clone() });
        }
        if let Some(mark) = self.states.load(&job.name)?.diverged {
            return Err(RotationError::Diverged {
                job: job.name.clone(),
                since: mark.since,
                reason: mark.reason,
            });
        }
        Ok(())
    }

    /// Writes the outcome to the job's state file (a diverged result marks the job) and emits its event.
    fn record(
        &self,
        job: &Job,
        result: Result<&Outcome, &RotationError>,
        trigger: Option<&Trigger>,
    ) -> Result<(), RotationError> {
        if matches!(
            result,
            Err(RotationError::Busy(_)
                | RotationError::State(_)
                | RotationError::ShutDown { .. }
                | RotationError::NoStores { .. })
        ) {
            self.emit_result(job, result, trigger, false);
            return Ok(());
        }
        let now = self.clock.now();
        let mut newly_diverged = true;
        let recorded = self.states.update(&job.name, |state| match result {
            Ok(Outcome::Rotated { rotation_id, generation }) => {
                state.last_attempt = Some(Attempt {
                    at: now,
                    rotation_id: Some(rotation_id.clone()),
                    outcome: AttemptOutcome::Ok,
                    error: None,
                });
                state.last_success =
                    Some(Success { at: now, rotation_id: rotation_id.clone(), generation: *generation });
                // The new value was verified and written to every store.
                state.last_verify = Some(Verified { at: now, by: "rotation".into() });
                state.drift = None;
            }
            Ok(Outcome::Completed { rotation_id }) => {
                state.last_attempt = Some(Attempt {
                    at: now,
                    rotation_id: Some(rotation_id.clone()),
                    outcome: AttemptOutcome::Ok,
                    error: None,
                });
                state.last_verify = Some(Verified { at: now, by: "recovery".into() });
                state.drift = None;
            }
            Err(RotationError::Diverged { reason, since, .. }) => {
                if state.diverged.is_none() {
                    state.diverged = Some(DivergedMark { since: *since, reason: reason.clone() });
                } else {
                    newly_diverged = false;
                }
                state.last_attempt = Some(Attempt {
                    at: now,
                    rotation_id: None,
                    outcome: AttemptOutcome::Diverged,
                    error: Some(reason.clone()),
                });
            }
            Err(e) => {
                state.last_attempt = Some(Attempt {
                    at: now,
                    rotation_id: e.rotation_id(),
                    outcome: e.outcome(),
                    error: Some(e.to_string()),
                });
            }
        });
        self.emit_result(job, result, trigger, newly_diverged);
        if let Err(e) = recorded {
            // The rotation's result stands (the stores hold the truth); only its report is lost.
            tracing::error!(job = %job.name, error = %e, "could not record the job's state");
            if matches!(result, Err(RotationError::Diverged { .. })) {
                return Err(e.into());
            }
        }
        Ok(())
    }
}
