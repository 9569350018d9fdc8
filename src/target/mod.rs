//! Targets: the systems whose credentials rotavault rotates.
//!
//! A target sees the **payload**, what the stores hold for its job (for Autotask a JSON document with user name
//! and secret; for `generated` the bare secret), never anything else of the engine. It builds the payload for a
//! new secret ([`Target::prepare`]), sets it at the target ([`Target::apply`]) and proves it works
//! ([`Target::verify`]).
//!
//! The kinds: `autotask` (Autotask PSA API users), `generated` (no external system), `command` (a program the
//! operator names applies and verifies, the secret on its standard input) and `webhook` (an HTTPS endpoint,
//! called signed, applies and verifies). Every kind keeps the same contract, written on [`Target`] and
//! [`TargetError`]: nothing is sent before `apply` is called; `Transient` means nothing happened, `Unknown` that
//! the change may have taken effect (recovery settles it by verifying after the apply horizon); every verify is a
//! login the lockout guard counts per [`Target::login_account`].

pub mod account;
pub mod autotask;
pub mod command;
pub mod generated;
pub mod webhook;

use crate::secret::redact::Redactor;
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
    /// Nothing can be done at the target until a person acts: the credential rotavault must present (the Autotask
    /// admin's) was refused, and presenting it again would only bring its account closer to a lockout.
    #[error("{target}: blocked: {detail}")]
    Blocked { target: &'static str, detail: String },
}

impl TargetError {
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Rejected { .. } => "rejected",
            Self::Unauthenticated { .. } => "unauthenticated",
            Self::Transient { .. } => "transient",
            Self::Unknown { .. } => "unknown",
            Self::Invalid { .. } => "invalid",
            Self::Blocked { .. } => "blocked",
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

/// One check of `rotavault check --connect`: what was proven, or what failed and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ConnectCheck {
    pub name: String,
    pub ok: bool,
    pub detail: String,
    pub fix: Option<String>,
}

#[async_trait]
pub trait Target: Send + Sync + std::fmt::Debug {
    /// The target's `KIND` constant: config kind, error field, tracing field.
    fn kind(&self) -> &'static str;

    /// The target's own rules for a secret; the engine combines them with the job's and the global policy.
    fn policy(&self) -> SecretPolicy;

    /// The payload to store for `secret`, given the payload stored now (a target that alternates between two
    /// accounts picks the other one). By default the bare secret.
    async fn prepare(
        &self,
        _current: Option<&SecretValue>,
        secret: &SecretValue,
        _info: &RotationInfo,
    ) -> Result<SecretValue, TargetError> {
        Ok(secret.clone())
    }

    /// Sets the secret in `payload` at the target. Waits that send nothing (a gate shared with other jobs, a
    /// credential being rotated) are the target's own, bounded by it, and end `Transient`: nothing was sent. From
    /// the moment it sends the change, it answers within `timeout` or returns `Unknown`.
    async fn apply(&self, payload: &SecretValue, timeout: std::time::Duration) -> Result<(), TargetError>;

    /// Authenticates with `payload`: `Ok` when the target accepts it, `Unauthenticated` when it refuses it,
    /// `Unknown` when it was sent and no complete answer came (the target may have counted it as a login),
    /// `Transient` only when nothing was sent or the target refused for load before looking at the credential.
    async fn verify(&self, payload: &SecretValue) -> Result<(), TargetError>;

    /// The account a login with `payload` presents, as the lockout guard keys it (`kind:user`); `None` for a
    /// target that has no logins to count.
    fn login_account(&self, _payload: &SecretValue) -> Option<String> {
        None
    }

    /// Whether a person sets the secret at the target and rotavault never does (`apply = "manual"`): the job is
    /// never rotated; its secret comes in through `rotavault import`, and it is verified, stored and reminded of.
    fn manual(&self) -> bool {
        false
    }

    /// Every account the job logs in as, for `status`.
    fn accounts(&self) -> Vec<String> {
        Vec::new()
    }

    /// The longest an apply's requests may take once the first is sent, by the target's own timeouts and
    /// attempts: the engine's apply horizon is worked out from it.
    fn longest_apply(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }

    /// Why the job cannot go on until a person acts, when that is so (`status`).
    async fn blocked(&self) -> Option<String> {
        None
    }

    /// A person says the target's accounts are fine again (`rotavault resolve`): forget what blocks them.
    async fn resolve(&self) -> Result<(), TargetError> {
        Ok(())
    }

    fn describe(&self) -> TargetDescription;

    /// Which account `payload` belongs to, for a target that alternates between accounts; `None` when the job has
    /// one account. Recovery uses it to know which stored value proves that an apply did not happen.
    fn account_of(&self, _payload: &SecretValue) -> Option<String> {
        None
    }

    /// The payload for a credential a person supplies (`rotavault import`); `user` picks one of the job's
    /// accounts where it has several.
    async fn import_payload(
        &self,
        user: Option<&str>,
        secret: &SecretValue,
        _info: &RotationInfo,
    ) -> Result<SecretValue, TargetError> {
        match user {
            None => Ok(secret.clone()),
            Some(_) => Err(TargetError::Invalid {
                target: self.kind(),
                detail: "this target has no user accounts: expected no --user".into(),
            }),
        }
    }

    /// Proves, without changing anything, that the target can be reached and the job's account rotated.
    async fn connect_checks(&self) -> Vec<ConnectCheck> {
        Vec::new()
    }
}

/// The lockout guard's key for `account` at the target named `target` of `kind`: a job's logins count with every
/// other job's, in any process, that presents the same account.
pub(crate) fn login_account(kind: &str, target: &str, account: &str) -> String {
    format!("{kind}:{target}:{account}")
}

/// A refusal's reason from what the refusing side wrote: `{"reason": ".."}`, else its first non-blank line;
/// redacted, then cut to `max_chars`.
pub(crate) fn reason(redactor: &Redactor, written: &[u8], max_chars: usize) -> String {
    let text = zeroize::Zeroizing::new(String::from_utf8_lossy(written).into_owned());
    let from_json = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("reason").and_then(|r| r.as_str()).map(str::to_owned))
        .map(zeroize::Zeroizing::new);
    let reason = match &from_json {
        Some(reason) => reason.as_str(),
        None => text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or(""),
    };
    if reason.is_empty() {
        return "no reason given".to_owned();
    }
    redactor.excerpt(reason, max_chars)
}
