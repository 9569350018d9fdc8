//! The protocol's steps, and every way an engine call can end without success.

use super::lock::LockError;
use super::state::{AttemptOutcome, StateError};
use crate::secret::PolicyError;
use crate::store::{RotationId, StoreError};
use crate::target::TargetError;
use std::fmt;

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
    /// The target cannot be used until a person acts (the credential rotavault must present was refused).
    #[error("{step}: blocked until a person acts: {detail}")]
    Blocked { step: Step, detail: String },
    #[error("job `{job}` has no store: the engine never changes a credential it cannot keep")]
    NoStores { job: String },
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
         login(s); it stays pending and recovery settles it"
    )]
    VerifyFailed { rotation_id: RotationId, failures: u32 },
    #[error("recovery: rotation {rotation_id} cannot be settled yet: {detail}; it stays pending")]
    Unsettled { rotation_id: RotationId, detail: String },
    #[error(
        "promote: rotation {rotation_id} is accepted by the target but not yet current in {}; the next run completes it",
        stores.iter().map(|(s, e)| format!("`{s}` ({e})")).collect::<Vec<_>>().join(", ")
    )]
    PromoteIncomplete { rotation_id: RotationId, stores: Vec<(String, StoreError)> },
    /// The fence before Apply did not hold: another rotation's value is pending in a store, or this replica could
    /// not prove its lease. Nothing was sent to the target.
    #[error("apply: not sent, and rotation {rotation_id}'s value was discarded: {detail}")]
    Fenced { rotation_id: RotationId, detail: String },
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{step}: stopped by shutdown before the target was changed; nothing is left pending")]
    ShutDown { step: Step },
    #[error("import: the target does not accept the credential given, so nothing was written: {0}")]
    ImportRejected(String),
    /// The job's secret is set by a person (`apply = "manual"`); rotavault never rotates it.
    #[error(
        "job `{job}` is manual (apply = \"manual\"): rotavault never sets its secret; set a new one in the Autotask UI \
         and pipe it to `rotavault import {job}`"
    )]
    Manual { job: String },
}

impl RotationError {
    /// What `status` shows for a job after this error.
    pub(super) fn outcome(&self) -> AttemptOutcome {
        match self {
            Self::Diverged { .. } => AttemptOutcome::Diverged,
            Self::Blocked { .. } => AttemptOutcome::Blocked,
            Self::VerifyFailed { .. } | Self::Unsettled { .. } | Self::PromoteIncomplete { .. } => {
                AttemptOutcome::Pending
            }
            _ => AttemptOutcome::Failed,
        }
    }

    pub(super) fn rotation_id(&self) -> Option<RotationId> {
        match self {
            Self::VerifyFailed { rotation_id, .. }
            | Self::Unsettled { rotation_id, .. }
            | Self::PromoteIncomplete { rotation_id, .. } => Some(rotation_id.clone()),
            _ => None,
        }
    }

    /// Whether a person must act before this job can go on (diverged, or blocked).
    pub fn needs_a_person(&self) -> bool {
        matches!(self, Self::Diverged { .. } | Self::Blocked { .. })
    }

    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Busy(_) => "busy",
            Self::Diverged { .. } => "diverged",
            Self::Blocked { .. } => "blocked",
            Self::NoStores { .. } => "no_stores",
            Self::Store { .. } => "store",
            Self::Policy(_) => "policy",
            Self::Refused(_) => "refused",
            Self::Target { .. } => "target",
            Self::VerifyFailed { .. } => "verify_failed",
            Self::Unsettled { .. } => "unsettled",
            Self::PromoteIncomplete { .. } => "promote_incomplete",
            Self::Fenced { .. } => "fenced",
            Self::State(_) => "state",
            Self::ShutDown { .. } => "shutdown",
            Self::ImportRejected(_) => "import_rejected",
            Self::Manual { .. } => "manual",
        }
    }

    /// A target error at `step`, kept apart when it means a person must act.
    pub(super) fn target(step: Step, source: TargetError) -> Self {
        match source {
            TargetError::Blocked { detail, .. } => Self::Blocked { step, detail },
            source => Self::Target { step, source },
        }
    }
}
