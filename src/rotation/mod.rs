//! The rotation engine: the protocol of DESIGN.md, implemented once for every target and store.
//!
//! A rotation runs Plan, Generate, Stage, Apply, Verify, Promote and Finish, each in its own tracing span, under
//! the job's lock, after [recovery](recovery) has settled whatever an earlier run left pending. The order is the
//! whole point:
//!
//! - **Invariant 1 (no loss)**: the target is never changed before every store holds the new value as pending,
//!   and a pending value is only ever discarded once the target is known not to have it.
//! - **Invariant 2 (no break)**: a store's current slot only moves to a value the target has accepted.
//! - **Invariant 3 (one at a time)**: every entry point takes the job's [lock](lock) first.

pub mod lock;
mod recovery;
pub mod retry;
pub mod state;

pub use recovery::Recovery;

use crate::schedule::Clock;
use crate::secret::{PolicyError, SecretPolicy, SecretValue};
use crate::store::{Metadata, RotationId, SecretRef, Store, StoreError, Stored};
use crate::target::{RotationInfo, Target, TargetError};
use lock::{JobLocks, LockError};
use retry::{Backoff, retry};
use state::{Attempt, AttemptOutcome, DivergedMark, StateDir, StateError, Success};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How patient the engine is. Defaults match `[rotation]` in the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Wait after apply before the first verify: targets take a moment to accept a new secret.
    pub settle: Duration,
    /// Failed logins one run may cause, over every verify it makes (the lockout guard).
    pub verify_attempts: u32,
    /// First wait between two verifies; doubles each time.
    pub verify_backoff: Duration,
    /// Timeout of every store and target call.
    pub call_timeout: Duration,
    /// How long an applied secret the target does not accept yet is waited for before the job is diverged.
    pub propagation_grace: Duration,
    /// Failed logins the job may cause within `failed_login_window`, across runs, restarts and crashes (an
    /// accepted login clears the count, as it clears the target's own lockout counter).
    pub max_failed_logins: u32,
    pub failed_login_window: Duration,
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
            propagation_grace: Duration::from_secs(600),
            max_failed_logins: 3,
            failed_login_window: Duration::from_secs(3600),
            backoff: Backoff::default(),
        }
    }
}

/// One of a job's stores: the configured store's name (for messages), the store, and the secret in it.
#[derive(Clone, Debug)]
pub struct JobStore {
    pub label: String,
    pub store: Arc<dyn Store>,
    pub secret: SecretRef,
}

/// A job as the engine runs it.
#[derive(Clone, Debug)]
pub struct Job {
    pub name: String,
    pub target: Arc<dyn Target>,
    pub stores: Vec<JobStore>,
    /// The effective policy: the target's rules, the global policy and the job's own, combined.
    pub policy: SecretPolicy,
}

impl Job {
    fn backends(&self) -> String {
        let mut kinds: Vec<_> = self.stores.iter().map(|s| s.store.backend()).collect();
        kinds.dedup();
        kinds.join(",")
    }
}

/// Why a rotation runs; recorded in logs and the audit event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The schedule or the age policy made the job due; the text says which.
    Due(String),
    /// A person asked (`rotavault rotate`).
    Manual,
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Due(reason) => write!(f, "due: {reason}"),
            Self::Manual => f.write_str("manual"),
        }
    }
}

/// What a successful call achieved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A new secret is current in every store.
    Rotated { rotation_id: RotationId, generation: u64 },
    /// An interrupted rotation was found and completed instead of starting a new one.
    Completed { rotation_id: RotationId },
}

/// The protocol's steps, for spans and errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Plan,
    Generate,
    Stage,
    Apply,
    Verify,
    Promote,
    Finish,
    Recovery,
    Import,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Plan => "plan",
            Self::Generate => "generate",
            Self::Stage => "stage",
            Self::Apply => "apply",
            Self::Verify => "verify",
            Self::Promote => "promote",
            Self::Finish => "finish",
            Self::Recovery => "recovery",
            Self::Import => "import",
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RotationError {
    #[error(transparent)]
    Busy(#[from] LockError),
    #[error(
        "job `{job}` is diverged since {since}: {reason}. rotavault does not touch it until a person has set the \
         credential right and run `rotavault resolve {job}`"
    )]
    Diverged { job: String, since: chrono::DateTime<chrono::Utc>, reason: String },
    #[error("{step}: store `{store}`: {source}")]
    Store { step: Step, store: String, source: StoreError },
    #[error("generate: {0}")]
    Policy(#[from] PolicyError),
    #[error("apply: the target refused the new secret, which was discarded everywhere: {0}")]
    Refused(TargetError),
    #[error("{step}: {source}")]
    Target { step: Step, source: TargetError },
    #[error(
        "verify: the target did not accept the new secret of rotation {rotation_id} after {failures} failed \
         login(s); it stays pending and the next run settles it"
    )]
    VerifyFailed { rotation_id: RotationId, failures: u32 },
    #[error("recovery: rotation {rotation_id} cannot be settled yet: {detail}; it stays pending")]
    Unsettled { rotation_id: RotationId, detail: String },
    #[error(
        "promote: rotation {rotation_id} is accepted by the target but not yet current in {}; the next run completes it",
        stores.iter().map(|(s, e)| format!("`{s}` ({e})")).collect::<Vec<_>>().join(", ")
    )]
    PromoteIncomplete { rotation_id: RotationId, stores: Vec<(String, StoreError)> },
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{step}: stopped by shutdown before the target was changed; nothing is left pending")]
    ShutDown { step: Step },
    #[error("import: the target does not accept the credential given, so nothing was written: {0}")]
    ImportRejected(String),
}

impl RotationError {
    /// What `status` shows for a job after this error.
    fn outcome(&self) -> AttemptOutcome {
        match self {
            Self::Diverged { .. } => AttemptOutcome::Diverged,
            Self::VerifyFailed { .. } | Self::Unsettled { .. } | Self::PromoteIncomplete { .. } => {
                AttemptOutcome::Pending
            }
            _ => AttemptOutcome::Failed,
        }
    }

    fn rotation_id(&self) -> Option<RotationId> {
        match self {
            Self::VerifyFailed { rotation_id, .. }
            | Self::Unsettled { rotation_id, .. }
            | Self::PromoteIncomplete { rotation_id, .. } => Some(rotation_id.clone()),
            _ => None,
        }
    }

    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Busy(_) => "busy",
            Self::Diverged { .. } => "diverged",
            Self::Store { .. } => "store",
            Self::Policy(_) => "policy",
            Self::Refused(_) => "refused",
            Self::Target { .. } => "target",
            Self::VerifyFailed { .. } => "verify_failed",
            Self::Unsettled { .. } => "unsettled",
            Self::PromoteIncomplete { .. } => "promote_incomplete",
            Self::State(_) => "state",
            Self::ShutDown { .. } => "shutdown",
            Self::ImportRejected(_) => "import_rejected",
        }
    }
}

/// How a verify ended.
#[derive(Debug)]
enum Verdict {
    Accepted,
    /// The target refused the secret (failed logins counted).
    Rejected,
    /// The target could not be asked (unreachable, throttled past our patience, or out of login budget).
    Undecided(String),
}

/// Failed logins left in one engine call: every verify draws from it, so one run never causes more failed logins
/// than `verify_attempts`, however its steps combine.
#[derive(Debug)]
struct LoginBudget {
    left: u32,
    failures: u32,
    /// Failed logins earlier runs left in the guard's window; an accepted login clears them.
    prior: u32,
}

pub struct Engine {
    settings: Settings,
    clock: Arc<dyn Clock>,
    locks: JobLocks,
    states: StateDir,
    shutdown: CancellationToken,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine").field("settings", &self.settings).field("states", &self.states).finish()
    }
}

impl Engine {
    /// `state_dir` holds job state files and, when `cross_process_locks`, the lock files.
    pub fn new(
        settings: Settings,
        clock: Arc<dyn Clock>,
        states: StateDir,
        cross_process_locks: bool,
    ) -> Self {
        let locks = JobLocks::new(cross_process_locks.then(|| states.root().join("locks")));
        Self { settings, clock, locks, states, shutdown: CancellationToken::new() }
    }

    /// Once `shutdown` is cancelled, a rotation that has not reached Apply stops there and discards what it
    /// staged; one past Apply runs to its end, so that a shutdown never leaves more for recovery than it must.
    pub fn with_shutdown(mut self, shutdown: CancellationToken) -> Self {
        self.shutdown = shutdown;
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

    /// Rotates `job`: settles anything pending first, then runs the whole protocol.
    pub async fn rotate(&self, job: &Job, trigger: Trigger) -> Result<Outcome, RotationError> {
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
        self.record(job, result.as_ref())?;
        result
    }

    /// Settles a pending value left by an interrupted rotation (at start-up, and before each rotation).
    pub async fn recover(&self, job: &Job) -> Result<Recovery, RotationError> {
        let _guard = self.locks.try_acquire(&job.name)?;
        self.refuse_diverged(job)?;
        let span = tracing::info_span!("recovery", job = %job.name, stores = %job.backends());
        let mut budget = self.budget(job)?;
        let result = self.recover_locked(job, &mut budget, false).instrument(span).await;
        match &result {
            Ok(Recovery::Clean) => {}
            Ok(Recovery::Promoted { rotation_id }) => {
                self.record(job, Ok(&Outcome::Completed { rotation_id: rotation_id.clone() }))?;
            }
            Ok(Recovery::Discarded { rotation_id }) => {
                let now = self.clock.now();
                let error = format!(
                    "rotation {rotation_id} never reached the target; its pending value was discarded"
                );
                self.states.update(&job.name, |s| {
                    s.last_attempt = Some(Attempt {
                        at: now,
                        rotation_id: Some(rotation_id.clone()),
                        outcome: AttemptOutcome::Failed,
                        error: Some(error),
                    })
                })?;
            }
            Err(e) => self.record(job, Err(e))?,
        }
        result
    }

    /// Takes a credential a person had (`rotavault import`): verifies it at the target, then makes it current in
    /// every store. The person asserts it is the truth and the target proves it, so whatever is pending is
    /// discarded and a diverged mark is cleared. Returns the generation written.
    pub async fn import(&self, job: &Job, payload: &SecretValue) -> Result<u64, RotationError> {
        let _guard = self.locks.try_acquire(&job.name)?;
        let span = tracing::info_span!("import", job = %job.name, stores = %job.backends());
        async {
            let mut budget = self.budget(job)?;
            match self.verify(job, payload, &mut budget, 1, false).await {
                Verdict::Accepted => {}
                Verdict::Rejected => {
                    return Err(RotationError::ImportRejected("it does not authenticate".into()));
                }
                Verdict::Undecided(detail) => return Err(RotationError::ImportRejected(detail)),
            }
            for js in &job.stores {
                let pending =
                    self.store_call(js, || js.store.pending(&js.secret)).await.map_err(|source| {
                        RotationError::Store { step: Step::Import, store: js.label.clone(), source }
                    })?;
                if let Some(p) = pending {
                    self.store_call(js, || js.store.discard(&js.secret, &p.rotation_id)).await.map_err(
                        |source| RotationError::Store { step: Step::Import, store: js.label.clone(), source },
                    )?;
                }
            }
            let current = self.read_currents(job).await?;
            let generation = current.iter().flatten().map(|s| s.metadata.generation).max().unwrap_or(0) + 1;
            let metadata = Metadata::new(None, self.clock.now(), generation);
            for js in &job.stores {
                self.store_call(js, || js.store.write_current(&js.secret, payload, &metadata))
                    .await
                    .map_err(|source| RotationError::Store {
                        step: Step::Import,
                        store: js.label.clone(),
                        source,
                    })?;
            }
            let now = self.clock.now();
            self.states.update(&job.name, |s| {
                s.diverged = None;
                s.last_attempt =
                    Some(Attempt { at: now, rotation_id: None, outcome: AttemptOutcome::Ok, error: None });
            })?;
            tracing::info!(
                target: "rotavault::audit",
                event = "imported",
                job = %job.name,
                generation,
                "a credential was imported and verified"
            );
            Ok(generation)
        }
        .instrument(span)
        .await
    }

    /// Forgets that `job` is diverged, after a person has set things right.
    pub fn resolve_diverged(&self, job: &str) -> Result<bool, RotationError> {
        let _guard = self.locks.try_acquire(job)?;
        let mut was = false;
        self.states.update(job, |s| was = s.diverged.take().is_some())?;
        Ok(was)
    }

    /// This run's failed logins: `verify_attempts`, less what the lockout guard has already spent in the window.
    fn budget(&self, job: &Job) -> Result<LoginBudget, RotationError> {
        let since = self.clock.now()
            - chrono::Duration::from_std(self.settings.failed_login_window).unwrap_or_default();
        let recent =
            self.states.load(&job.name)?.failed_logins.iter().filter(|at| **at > since).count() as u32;
        let left = self.settings.verify_attempts.min(self.settings.max_failed_logins.saturating_sub(recent));
        Ok(LoginBudget { left, failures: 0, prior: recent })
    }

    /// Writes a failed login to the job's state before anything else happens, so that a crash cannot forget it.
    fn remember_failed_login(&self, job: &Job) {
        let now = self.clock.now();
        let window = chrono::Duration::from_std(self.settings.failed_login_window).unwrap_or_default();
        if let Err(e) = self.states.update(&job.name, |s| {
            s.failed_logins.retain(|at| *at > now - window);
            s.failed_logins.push(now);
        }) {
            tracing::error!(job = %job.name, error = %e, "could not record a failed login");
        }
    }

    fn forget_failed_logins(&self, job: &Job) {
        if let Err(e) = self.states.update(&job.name, |s| s.failed_logins.clear()) {
            tracing::error!(job = %job.name, error = %e, "could not clear the failed logins");
        }
    }

    fn refuse_diverged(&self, job: &Job) -> Result<(), RotationError> {
        if let Some(mark) = self.states.load(&job.name)?.diverged {
            return Err(RotationError::Diverged {
                job: job.name.clone(),
                since: mark.since,
                reason: mark.reason,
            });
        }
        Ok(())
    }

    async fn rotate_locked(&self, job: &Job, trigger: &Trigger) -> Result<Outcome, RotationError> {
        self.refuse_diverged(job)?;
        let mut budget = self.budget(job)?;

        // Plan: settle what an earlier run left, so that at most one rotation is ever in flight per job, and read
        // what is current now.
        let plan = async {
            let recovery = self
                .recover_locked(job, &mut budget, false)
                .instrument(tracing::info_span!("recovery"))
                .await?;
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
                match self.verify(job, &stored.value, &mut budget, 1, false).await {
                    Verdict::Accepted => {}
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
                    Verdict::Undecided(detail) => {
                        return Err(RotationError::Target {
                            step: Step::Plan,
                            source: TargetError::Transient {
                                target: job.target.kind(),
                                detail,
                                retry_after: None,
                            },
                        });
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
                .map_err(|source| RotationError::Target { step: Step::Generate, source })
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

        // Apply. Only an answer that says what happened is acted on; anything else goes to recovery.
        let applied = self.apply(job, &payload).instrument(tracing::info_span!("apply")).await;
        match applied {
            Ok(()) => {}
            Err(e @ TargetError::Rejected { .. }) => {
                self.discard_everywhere(job, &rotation_id).await?;
                return Err(RotationError::Refused(e));
            }
            Err(e @ TargetError::Unknown { .. }) => {
                tracing::warn!(error = %e, "the apply's outcome is unknown; recovery decides");
                let recovery = self
                    .recover_locked(job, &mut budget, true)
                    .instrument(tracing::info_span!("recovery", after_apply = true))
                    .await?;
                return match recovery {
                    Recovery::Promoted { rotation_id } => Ok(Outcome::Rotated { rotation_id, generation }),
                    Recovery::Discarded { .. } | Recovery::Clean => {
                        Err(RotationError::Target { step: Step::Apply, source: e })
                    }
                };
            }
            Err(source) => {
                // Transient past our patience, or invalid: the target said nothing changed.
                self.discard_everywhere(job, &rotation_id).await?;
                return Err(RotationError::Target { step: Step::Apply, source });
            }
        }

        let verdict = self
            .verify(job, &payload, &mut budget, self.settings.verify_attempts, true)
            .instrument(tracing::info_span!("verify"))
            .await;
        match verdict {
            Verdict::Accepted => {}
            // Applied but not accepted: perhaps not yet. Discarding could lose a secret the target is about to
            // take, so the value stays pending for recovery to settle.
            Verdict::Rejected => {
                return Err(RotationError::VerifyFailed { rotation_id, failures: budget.failures });
            }
            Verdict::Undecided(detail) => {
                return Err(RotationError::Unsettled { rotation_id, detail });
            }
        }

        self.promote_everywhere(job, &rotation_id, &payload, &metadata)
            .instrument(tracing::info_span!("promote"))
            .await?;

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

    async fn read_currents(&self, job: &Job) -> Result<Vec<Option<Stored>>, RotationError> {
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

    async fn discard_everywhere(&self, job: &Job, rotation_id: &RotationId) -> Result<(), RotationError> {
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
    async fn promote_one(
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

    async fn apply(&self, job: &Job, payload: &SecretValue) -> Result<(), TargetError> {
        let mut attempt = 1;
        loop {
            let result =
                match tokio::time::timeout(self.settings.call_timeout, job.target.apply(payload)).await {
                    Ok(result) => result,
                    Err(_) => Err(TargetError::Unknown {
                        target: job.target.kind(),
                        detail: format!("no answer within {:?}", self.settings.call_timeout),
                    }),
                };
            match result {
                Err(TargetError::Transient { retry_after, ref detail, .. })
                    if attempt < self.settings.backoff.attempts =>
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

    /// Verifies `payload` against the target, at most `max_failures` failed logins (and never past the budget).
    async fn verify(
        &self,
        job: &Job,
        payload: &SecretValue,
        budget: &mut LoginBudget,
        max_failures: u32,
        settle: bool,
    ) -> Verdict {
        if settle {
            tokio::time::sleep(self.settings.settle).await;
        }
        let mut failures = 0;
        let mut transient = 0;
        loop {
            if budget.left == 0 {
                return Verdict::Undecided(format!(
                    "the lockout guard allows no more failed logins now (at most {} per {}, {} per run)",
                    self.settings.max_failed_logins,
                    humantime::format_duration(self.settings.failed_login_window),
                    self.settings.verify_attempts
                ));
            }
            let result =
                match tokio::time::timeout(self.settings.call_timeout, job.target.verify(payload)).await {
                    Ok(result) => result,
                    Err(_) => Err(TargetError::Transient {
                        target: job.target.kind(),
                        detail: format!("no answer within {:?}", self.settings.call_timeout),
                        retry_after: None,
                    }),
                };
            match result {
                Ok(()) => {
                    if budget.prior > 0 || budget.failures > 0 {
                        self.forget_failed_logins(job);
                        budget.prior = 0;
                        budget.failures = 0;
                    }
                    return Verdict::Accepted;
                }
                Err(
                    TargetError::Unauthenticated { detail, .. }
                    | TargetError::Rejected { reason: detail, .. },
                ) => {
                    self.remember_failed_login(job);
                    failures += 1;
                    budget.left -= 1;
                    budget.failures += 1;
                    tracing::warn!(%detail, failures, "verify: not accepted");
                    if failures >= max_failures || budget.left == 0 {
                        return Verdict::Rejected;
                    }
                    let wait = self.settings.verify_backoff.saturating_mul(2u32.saturating_pow(failures - 1));
                    tokio::time::sleep(wait).await;
                }
                Err(TargetError::Transient { detail, retry_after, .. }) => {
                    transient += 1;
                    if transient >= self.settings.backoff.attempts {
                        return Verdict::Undecided(detail);
                    }
                    tokio::time::sleep(self.settings.backoff.delay(transient, retry_after)).await;
                }
                Err(e) => return Verdict::Undecided(e.to_string()),
            }
        }
    }

    async fn store_call<T, F, Fut>(&self, js: &JobStore, call: F) -> Result<T, StoreError>
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

    /// Writes the outcome to the job's state file; a diverged result marks the job.
    fn record(&self, job: &Job, result: Result<&Outcome, &RotationError>) -> Result<(), RotationError> {
        if matches!(
            result,
            Err(RotationError::Busy(_) | RotationError::State(_) | RotationError::ShutDown { .. })
        ) {
            return Ok(());
        }
        let now = self.clock.now();
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
            }
            Ok(Outcome::Completed { rotation_id }) => {
                state.last_attempt = Some(Attempt {
                    at: now,
                    rotation_id: Some(rotation_id.clone()),
                    outcome: AttemptOutcome::Ok,
                    error: None,
                });
            }
            Err(RotationError::Diverged { reason, since, .. }) => {
                if state.diverged.is_none() {
                    state.diverged = Some(DivergedMark { since: *since, reason: reason.clone() });
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
