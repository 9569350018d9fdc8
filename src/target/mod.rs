//! Targets: the systems whose credentials rotavault rotates.
//!
//! A target sees the **payload**, what the stores hold for its job (for Autotask a JSON document with user name
//! and secret; for `generated` the bare secret), never anything else of the engine. It builds the payload for a
//! new secret ([`Target::prepare`]), sets it at the target ([`Target::apply`]) and proves it works
//! ([`Target::verify`]).

pub mod autotask;
pub mod generated;

use crate::secret::{SecretPolicy, SecretValue};
use crate::store::RotationId;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// What a target knows of the rotation it takes part in.
#[derive(Clone, Debug)]
pub struct RotationInfo {
    pub job: String,
    pub rotation_id: RotationId,
    pub rotated_at: DateTime<Utc>,
}

/// How a target error is to be read by the engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// The target refused the new value (a password rule, the history); nothing changed there.
    #[error("{target}: refused: {reason}")]
    Rejected { target: &'static str, reason: String },
    /// The credential presented does not authenticate (a failed login: it counts toward lockout).
    #[error("{target}: not authenticated: {detail}")]
    Unauthenticated { target: &'static str, detail: String },
    /// Nothing happened; the same call may succeed later.
    #[error("{target}: temporarily unavailable: {detail}")]
    Transient { target: &'static str, detail: String, retry_after: Option<Duration> },
    /// The call may or may not have taken effect (a timeout, a connection cut after sending).
    #[error("{target}: outcome unknown: {detail}")]
    Unknown { target: &'static str, detail: String },
    /// A configuration or payload problem that retrying cannot fix.
    #[error("{target}: invalid: {detail}")]
    Invalid { target: &'static str, detail: String },
}

impl TargetError {
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Rejected { .. } => "rejected",
            Self::Unauthenticated { .. } => "unauthenticated",
            Self::Transient { .. } => "transient",
            Self::Unknown { .. } => "unknown",
            Self::Invalid { .. } => "invalid",
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }
}

/// What `status` shows of a target.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TargetDescription {
    pub kind: &'static str,
    /// The account rotated, or another short human description; never secret.
    pub detail: String,
}

#[async_trait]
pub trait Target: Send + Sync + std::fmt::Debug {
    /// The target's `KIND` constant: config kind, error field, tracing field.
    fn kind(&self) -> &'static str;

    /// The target's own rules for a secret; the engine combines them with the job's and the global policy.
    fn policy(&self) -> SecretPolicy;

    /// The payload to store for `secret`, given the payload stored now (a target that alternates between two
    /// accounts picks the other one).
    async fn prepare(
        &self,
        current: Option<&SecretValue>,
        secret: &SecretValue,
        info: &RotationInfo,
    ) -> Result<SecretValue, TargetError>;

    /// Sets the secret in `payload` at the target. `Unknown` when the outcome cannot be known.
    async fn apply(&self, payload: &SecretValue) -> Result<(), TargetError>;

    /// Authenticates with `payload`: `Ok` when the target accepts it, `Unauthenticated` when it refuses it.
    async fn verify(&self, payload: &SecretValue) -> Result<(), TargetError>;

    fn describe(&self) -> TargetDescription;
}
