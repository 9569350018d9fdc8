//! `generated`: no external system. The secret is generated to the job's policy and stored, for secrets that
//! consumers share only through a store (webhook signing keys, shared tokens).
//!
//! Apply has nothing to change and verify accepts whatever a store holds, so recovery always rolls a pending
//! value forward: the stores are the only place the secret exists.

use super::{Target, TargetDescription, TargetError};
use crate::secret::{SecretPolicy, SecretValue};
use async_trait::async_trait;

pub const KIND: &str = "generated";

#[derive(Debug, Default)]
pub struct GeneratedTarget {
    policy: SecretPolicy,
}

impl GeneratedTarget {
    pub fn new(policy: SecretPolicy) -> Self {
        Self { policy }
    }
}

#[async_trait]
impl Target for GeneratedTarget {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn policy(&self) -> SecretPolicy {
        self.policy.clone()
    }

    async fn apply(&self, _payload: &SecretValue, _timeout: std::time::Duration) -> Result<(), TargetError> {
        Ok(())
    }

    async fn verify(&self, payload: &SecretValue) -> Result<(), TargetError> {
        if payload.is_empty() {
            return Err(TargetError::Unauthenticated {
                target: KIND,
                detail: "the stored value is empty".into(),
            });
        }
        Ok(())
    }

    fn describe(&self) -> TargetDescription {
        TargetDescription { kind: KIND, detail: format!("generated secret, {}", self.policy) }
    }
}
