//! `ScriptedTarget`: a simulated account whose behaviour each test scripts step by step.
//!
//! The account accepts one secret at a time, like a real API user: `apply` replaces it, `verify` logs in and
//! counts failed logins the way Autotask does (consecutive, reset only by an accepted login, never by time). Faults
//! are queued per call; an empty queue behaves correctly. Like a real server, it can finish an apply after its
//! caller has given up (`CommitLate`).

use async_trait::async_trait;
use rotavault::secret::{SecretPolicy, SecretValue};
use rotavault::target::{RotationInfo, Target, TargetDescription, TargetError};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

pub const KIND: &str = "scripted";

/// What the next `apply` does instead of working.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyFault {
    /// The target rejects the value; nothing changes.
    Refuse,
    /// The target is unavailable; nothing changes.
    Transient,
    /// The target is unavailable for this long (its `retry_after`); nothing changes.
    TransientFor(Duration),
    /// The call never answers within the timeout it is given; nothing changes.
    Hang,
    /// The answer is lost, and the server carries out the change this long after it arrived anyway.
    CommitLate(Duration),
    /// The change happens, then the answer is lost.
    ApplyThenLoseAnswer,
    /// The answer is lost and the change did not happen.
    LoseAnswerWithoutApplying,
    /// Says done, but the change did not happen (a broken target: verify must catch it).
    ClaimDoneWithoutApplying,
}

/// What the next `verify` does instead of working.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyFault {
    Transient,
    Hang,
    /// Refuses even the right secret (a propagation delay).
    RejectRegardless,
}

#[derive(Debug, Default)]
struct Account {
    accepted: Option<String>,
    applies: u32,
    logins: u32,
    failed_logins: u32,
    consecutive_failed: u32,
    most_consecutive_failed: u32,
    apply_faults: VecDeque<ApplyFault>,
    verify_faults: VecDeque<VerifyFault>,
}

/// Runs when an apply is about to send, to look at what the engine has written by then.
#[derive(Clone, Default)]
struct Hook(Option<std::sync::Arc<dyn Fn() + Send + Sync>>);

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Hook(set)" } else { "Hook(none)" })
    }
}

#[derive(Debug, Default)]
pub struct ScriptedTarget {
    account: std::sync::Arc<Mutex<Account>>,
    before_apply: Mutex<Hook>,
}

impl ScriptedTarget {
    pub fn new() -> Self {
        Self::default()
    }

    fn account(&self) -> std::sync::MutexGuard<'_, Account> {
        self.account.lock().expect("account lock")
    }

    /// The secret the account accepts now, as seen from inside the target.
    pub fn accepted(&self) -> Option<String> {
        self.account().accepted.clone()
    }

    /// Someone changes the credential outside rotavault.
    pub fn set_behind_the_back(&self, secret: &str) {
        self.account().accepted = Some(secret.to_owned());
    }

    /// `hook` runs at the moment an apply would send its request.
    pub fn before_apply(&self, hook: impl Fn() + Send + Sync + 'static) {
        *self.before_apply.lock().expect("hook lock") = Hook(Some(std::sync::Arc::new(hook)));
    }

    pub fn queue_apply(&self, fault: ApplyFault) {
        self.account().apply_faults.push_back(fault);
    }

    pub fn queue_verify(&self, fault: VerifyFault, times: usize) {
        let mut account = self.account();
        for _ in 0..times {
            account.verify_faults.push_back(fault.clone());
        }
    }

    pub fn applies(&self) -> u32 {
        self.account().applies
    }

    pub fn failed_logins(&self) -> u32 {
        self.account().failed_logins
    }

    pub fn logins(&self) -> u32 {
        self.account().logins
    }

    /// Consecutive failed logins now, as the target's lockout counts them.
    pub fn consecutive_failed(&self) -> u32 {
        self.account().consecutive_failed
    }

    /// The most consecutive failed logins the account ever reached.
    pub fn most_consecutive_failed(&self) -> u32 {
        self.account().most_consecutive_failed
    }
}

#[async_trait]
impl Target for ScriptedTarget {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn policy(&self) -> SecretPolicy {
        SecretPolicy { length: 24, ..SecretPolicy::default() }
    }

    async fn prepare(
        &self,
        _current: Option<&SecretValue>,
        secret: &SecretValue,
        _info: &RotationInfo,
    ) -> Result<SecretValue, TargetError> {
        Ok(secret.clone())
    }

    async fn apply(&self, payload: &SecretValue, timeout: Duration) -> Result<(), TargetError> {
        let hook = self.before_apply.lock().expect("hook lock").clone();
        if let Some(hook) = hook.0 {
            hook();
        }
        let fault = self.account().apply_faults.pop_front();
        match fault {
            None => {
                let mut account = self.account();
                account.accepted = Some(payload.expose().to_owned());
                account.applies += 1;
                Ok(())
            }
            Some(ApplyFault::Refuse) => {
                Err(TargetError::Rejected { target: KIND, reason: "the password was used before".into() })
            }
            Some(ApplyFault::Transient) => Err(TargetError::Transient {
                target: KIND,
                detail: "503".into(),
                retry_after: Some(Duration::from_secs(1)),
            }),
            Some(ApplyFault::TransientFor(wait)) => Err(TargetError::Transient {
                target: KIND,
                detail: "busy for a while".into(),
                retry_after: Some(wait),
            }),
            Some(ApplyFault::Hang) => {
                tokio::time::sleep(timeout).await;
                Err(TargetError::Unknown { target: KIND, detail: format!("no answer within {timeout:?}") })
            }
            Some(ApplyFault::CommitLate(after)) => {
                let account = self.account.clone();
                let value = payload.expose().to_owned();
                tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    let mut account = account.lock().expect("account lock");
                    account.accepted = Some(value);
                    account.applies += 1;
                });
                tokio::time::sleep(timeout.min(after)).await;
                Err(TargetError::Unknown { target: KIND, detail: format!("no answer within {timeout:?}") })
            }
            Some(ApplyFault::ApplyThenLoseAnswer) => {
                let mut account = self.account();
                account.accepted = Some(payload.expose().to_owned());
                account.applies += 1;
                Err(TargetError::Unknown { target: KIND, detail: "connection reset after sending".into() })
            }
            Some(ApplyFault::LoseAnswerWithoutApplying) => {
                Err(TargetError::Unknown { target: KIND, detail: "connection reset".into() })
            }
            Some(ApplyFault::ClaimDoneWithoutApplying) => Ok(()),
        }
    }

    async fn verify(&self, payload: &SecretValue) -> Result<(), TargetError> {
        let fault = self.account().verify_faults.pop_front();
        match fault {
            Some(VerifyFault::Transient) => {
                return Err(TargetError::Transient { target: KIND, detail: "503".into(), retry_after: None });
            }
            Some(VerifyFault::Hang) => std::future::pending::<()>().await,
            Some(VerifyFault::RejectRegardless) | None => {}
        }
        let mut account = self.account();
        account.logins += 1;
        let right = account.accepted.as_deref() == Some(payload.expose());
        if right && fault.is_none() {
            account.consecutive_failed = 0;
            Ok(())
        } else {
            account.failed_logins += 1;
            account.consecutive_failed += 1;
            account.most_consecutive_failed = account.most_consecutive_failed.max(account.consecutive_failed);
            Err(TargetError::Unauthenticated { target: KIND, detail: "401".into() })
        }
    }

    fn login_account(&self, _payload: &SecretValue) -> Option<String> {
        Some(format!("{KIND}:account"))
    }

    fn accounts(&self) -> Vec<String> {
        vec![format!("{KIND}:account")]
    }

    fn describe(&self) -> TargetDescription {
        TargetDescription { kind: KIND, detail: "scripted test account".into() }
    }
}
