//! Every login the engine makes: a verify of a value against the target, through the lockout guard.
//!
//! Two limits hold at once. The run's own: one engine call causes at most `verify_attempts` failed logins,
//! whatever path it takes ([`RunLogins`]). The account's: the [`LockoutGuard`](crate::lockout::LockoutGuard)
//! counts consecutive failed logins per account across every job and process, as the target does, and refuses a
//! login that could pass `max_failed_logins`. A verify also keeps logins in reserve for what must follow it: a
//! value left pending must still be settled later, which takes a login with the new value and, if that is
//! refused, one with the old. Without that reserve, a run that spent the account's allowance on a new value the
//! target had not taken yet would leave a pending value nobody may ever settle.

use super::Engine;
use super::job::Job;
use crate::lockout::Login;
use crate::secret::SecretValue;
use crate::target::TargetError;

/// Logins the guard must leave after this one.
pub(super) mod reserve {
    /// Nothing needs to follow (the old value, the last word).
    pub const NONE: u32 = 0;
    /// The old value must still be verifiable if this (new) one is refused.
    pub const CURRENT: u32 = 1;
    /// The new value and the old one must both be verifiable later, when the apply horizon has passed.
    pub const SETTLE: u32 = 2;
}

/// Failed logins left to one engine call.
#[derive(Debug)]
pub(super) struct RunLogins {
    pub left: u32,
    pub failures: u32,
}

/// How a verify ended.
#[derive(Debug)]
pub(super) enum Verdict {
    Accepted,
    /// The target refused the secret (failed logins counted).
    Rejected,
    /// The target could not be asked, or did not answer (unreachable, throttled past our patience, no answer, or
    /// no login allowed now).
    Undecided(String),
    /// No login is allowed as the account until a person acts: the lockout guard is at its cap with logins that
    /// have ended (refused, or cut off unanswered).
    Blocked(String),
}

impl Engine {
    pub(super) fn run_logins(&self) -> RunLogins {
        RunLogins { left: self.settings.verify_attempts, failures: 0 }
    }

    /// Verifies `payload` against the target: at most `max_failures` failed logins, never past the run's or the
    /// account's allowance, always leaving `reserve` logins of the account for what follows.
    pub(super) async fn verify(
        &self,
        job: &Job,
        payload: &SecretValue,
        run: &mut RunLogins,
        max_failures: u32,
        reserve: u32,
        settle: bool,
    ) -> Verdict {
        if settle {
            tokio::time::sleep(self.settings.settle).await;
        }
        let mut failures = 0;
        let mut refused = false;
        let mut transient = 0;
        // Stopped by a limit: a refusal already seen is the verdict; with none, nothing is known.
        let stopped =
            |refused: bool, why: String| if refused { Verdict::Rejected } else { Verdict::Undecided(why) };
        loop {
            if run.left == 0 {
                return stopped(
                    refused,
                    format!(
                        "this run has made its {} failed login(s) ([rotation] verify_attempts)",
                        self.settings.verify_attempts
                    ),
                );
            }
            let account = job.target.login_account(payload);
            let taken = match account.as_deref() {
                Some(account) => {
                    self.lockout.take(account, reserve, self.settings.call_timeout).await.map(Some)
                }
                None => Ok(None),
            };
            let login = match taken {
                Ok(login) => login,
                Err(e) if e.needs_a_person() && !refused => {
                    return Verdict::Blocked(format!(
                        "{e}. Logins cut off by a crash count as failed until an accepted one. Check the account at \
                         the target (unlock it if it is locked), then run `rotavault resolve {}`",
                        job.name
                    ));
                }
                Err(e) => return stopped(refused, e.to_string()),
            };
            let result =
                match tokio::time::timeout(self.settings.call_timeout, job.target.verify(payload)).await {
                    Ok(result) => result,
                    Err(_) => Err(TargetError::Unknown {
                        target: job.target.kind(),
                        detail: format!("no answer within {:?}", self.settings.call_timeout),
                    }),
                };
            match result {
                Ok(()) => {
                    settle_login(login, Login::accepted);
                    return Verdict::Accepted;
                }
                Err(
                    TargetError::Unauthenticated { detail, .. }
                    | TargetError::Rejected { reason: detail, .. },
                ) => {
                    settle_login(login, Login::refused);
                    refused = true;
                    failures += 1;
                    run.left -= 1;
                    run.failures += 1;
                    tracing::warn!(%detail, failures, "verify: not accepted");
                    if failures >= max_failures {
                        return Verdict::Rejected;
                    }
                    self.verify_pause(failures).await;
                }
                // Sent and unanswered: the target may have counted it, so it is counted and bounded like a
                // refusal, but proves nothing either way.
                Err(TargetError::Unknown { detail, .. }) => {
                    settle_login(login, Login::unknown);
                    failures += 1;
                    run.left -= 1;
                    run.failures += 1;
                    tracing::warn!(%detail, failures, "verify: no answer; counted as a failed login");
                    if failures >= max_failures {
                        return stopped(refused, detail);
                    }
                    self.verify_pause(failures).await;
                }
                Err(TargetError::Transient { detail, retry_after, .. }) => {
                    settle_login(login, Login::not_sent);
                    transient += 1;
                    if transient >= self.settings.backoff.attempts {
                        return Verdict::Undecided(detail);
                    }
                    tokio::time::sleep(self.settings.backoff.delay(transient, retry_after)).await;
                }
                Err(e) => {
                    settle_login(login, Login::not_sent);
                    return Verdict::Undecided(e.to_string());
                }
            }
        }
    }

    async fn verify_pause(&self, failures: u32) {
        let wait = self.settings.verify_backoff.saturating_mul(2u32.saturating_pow(failures - 1));
        tokio::time::sleep(wait).await;
    }
}

fn settle_login<'a>(login: Option<Login<'a>>, answer: impl FnOnce(Login<'a>)) {
    if let Some(login) = login {
        answer(login);
    }
}
