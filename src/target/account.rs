//! What the `command` and `webhook` targets share: a job's **account** at a system rotavault is told how to reach,
//! not built for. [`AccountTarget`] is the one `Target` implementation of both; each kind only says how one call is
//! made and answered ([`Channel`]). The payload is the bare secret, the rules are the job's own (the target cannot
//! know the system's), and the lockout guard counts logins per `<kind>:<target>:<account>`, across jobs.

use super::{Target, TargetDescription, TargetError};
use crate::secret::{SecretPolicy, SecretValue};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

/// Which call is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Apply,
    Verify,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Self::Apply => "apply",
            Self::Verify => "verify",
        }
    }
}

/// Whose secret a job sets: the names the program or endpoint is told.
#[derive(Clone, Debug)]
pub struct Account {
    /// The target's name in the config.
    pub target: String,
    pub job: String,
    pub account: String,
}

/// How one kind makes a call and reads its answer.
#[async_trait]
pub trait Channel: Send + Sync + std::fmt::Debug {
    /// The kind's `KIND` constant.
    const KIND: &'static str;

    /// The longest one call may take, by the target's own setting.
    fn timeout(&self) -> Duration;

    /// Makes `action` for `account` with `secret`, within `timeout`.
    async fn call(
        &self,
        account: &Account,
        action: Action,
        secret: &SecretValue,
        timeout: Duration,
    ) -> Result<(), TargetError>;

    /// What `status` says after the account: how it is reached, never a secret.
    fn reached(&self) -> String;

    /// For `rotavault check --connect`: what can be proven without a call (a call would be a login, or a change).
    fn checks(&self) -> Vec<super::ConnectCheck> {
        Vec::new()
    }
}

/// One job's account at a `command` or `webhook` target.
#[derive(Debug)]
pub struct AccountTarget<C> {
    account: Account,
    channel: Arc<C>,
}

impl<C: Channel> AccountTarget<C> {
    pub fn new(target: &str, job: &str, account: &str, channel: Arc<C>) -> Self {
        let account = Account { target: target.to_owned(), job: job.to_owned(), account: account.to_owned() };
        Self { account, channel }
    }

    fn login(&self) -> String {
        super::login_account(C::KIND, &self.account.target, &self.account.account)
    }
}

#[async_trait]
impl<C: Channel> Target for AccountTarget<C> {
    fn kind(&self) -> &'static str {
        C::KIND
    }

    fn policy(&self) -> SecretPolicy {
        SecretPolicy::default()
    }

    #[tracing::instrument(skip_all, fields(kind = C::KIND, target_name = %self.account.target, account = %self.account.account))]
    async fn apply(&self, payload: &SecretValue, timeout: Duration) -> Result<(), TargetError> {
        // The target's own timeout, never past what the engine allows.
        let timeout = timeout.min(self.channel.timeout());
        self.channel.call(&self.account, Action::Apply, payload, timeout).await
    }

    #[tracing::instrument(skip_all, fields(kind = C::KIND, target_name = %self.account.target, account = %self.account.account))]
    async fn verify(&self, payload: &SecretValue) -> Result<(), TargetError> {
        self.channel.call(&self.account, Action::Verify, payload, self.channel.timeout()).await
    }

    fn login_account(&self, _payload: &SecretValue) -> Option<String> {
        Some(self.login())
    }

    fn accounts(&self) -> Vec<String> {
        vec![self.login()]
    }

    fn longest_apply(&self) -> Duration {
        self.channel.timeout()
    }

    async fn connect_checks(&self) -> Vec<super::ConnectCheck> {
        self.channel.checks()
    }

    fn describe(&self) -> TargetDescription {
        TargetDescription {
            kind: C::KIND,
            detail: format!("account `{}` {}", self.account.account, self.channel.reached()),
        }
    }
}

/// `request` as JSON in a zeroized buffer sized up front for `account` and `secret`: a `Vec` that grows leaves a copy
/// of the secret in the memory it frees.
pub(crate) fn json(
    request: &impl serde::Serialize,
    account: &Account,
    secret: &SecretValue,
) -> Result<Zeroizing<Vec<u8>>, String> {
    // Every character escaped at its longest (`\u00XX`), plus the keys.
    let strings = [&account.target, &account.job, &account.account].iter().map(|s| s.len()).sum::<usize>()
        + secret.expose().len();
    let mut buffer = Zeroizing::new(Vec::with_capacity(160 + 6 * strings));
    serde_json::to_writer(&mut *buffer, request)
        .map_err(|e| format!("the request cannot be written: {e}"))?;
    Ok(buffer)
}
