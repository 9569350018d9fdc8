//! A job as the engine runs it, why it runs, and what a run achieved.

use crate::secret::SecretPolicy;
use crate::store::{RotationId, SecretRef, Store};
use crate::target::Target;
use std::fmt;
use std::sync::Arc;

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
    pub(super) fn backends(&self) -> String {
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
    /// Not a rotation: the drift heartbeat verified the stored value (its refusal is recorded like a rotation's).
    Heartbeat,
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Due(reason) => write!(f, "due: {reason}"),
            Self::Manual => f.write_str("manual"),
            Self::Heartbeat => f.write_str("heartbeat"),
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
