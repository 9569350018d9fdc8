//! The gate every authenticated REST and SOAP call passes, in docs/autotask-wire.md's order: the header check
//! (unknown user, bad integration code), then the limits (hourly threshold, thread slot) and injected faults,
//! then the login itself (locked, wrong secret, not API-only). Only a request that passes the login counts
//! toward the hourly threshold. The front ends turn a `Refusal` into their own wire shapes.

use super::Sandbox;
use super::faults::{Call, FaultAction};
use super::limits::{Slot, ThreadLimitResponse};
use super::seed::SecurityLevel;
use super::tenant::Login;
use axum::http::HeaderMap;
use base64::Engine;
use std::fmt;
use std::time::Duration;
use tokio::time::Instant;

/// What a request presents. `Debug` never shows the secret.
pub(crate) struct Credentials {
    pub(crate) user: Option<String>,
    pub(crate) code: Option<String>,
    secret: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("code", &self.code)
            .finish_non_exhaustive()
    }
}

/// A header's value as UTF-8 (not only visible ASCII, so a password set over SOAP with any character still
/// reaches the comparison intact).
fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| std::str::from_utf8(v.as_bytes()).ok()).map(str::to_string)
}

impl Credentials {
    /// REST: the `ApiIntegrationCode`, `UserName` and `Secret` headers (`HeaderMap` ignores the case of names).
    pub(crate) fn from_rest_headers(headers: &HeaderMap) -> Credentials {
        Credentials {
            user: header(headers, "username"),
            code: header(headers, "apiintegrationcode"),
            secret: header(headers, "secret"),
        }
    }

    /// SOAP: HTTP Basic user and password, and the integration code from the SOAP header. `None` when there is
    /// no usable `Authorization: Basic` header.
    pub(crate) fn from_basic(headers: &HeaderMap, code: Option<String>) -> Option<Credentials> {
        let value = header(headers, "authorization")?;
        let (scheme, encoded) = value.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        // The user name cannot contain ':' (RFC 7617); the password may.
        let (user, secret) = decoded.split_once(':')?;
        Some(Credentials { user: Some(user.to_string()), code, secret: Some(secret.to_string()) })
    }
}

/// Why a request does not reach its call.
#[derive(Debug)]
pub(crate) enum Refusal {
    UnknownUser,
    BadIntegrationCode,
    Hourly {
        limit: u64,
    },
    Threads {
        limit: u32,
        response: ThreadLimitResponse,
    },
    /// A `fail` fault.
    Fail {
        status: u16,
        body: String,
    },
    /// A `throttle` fault.
    Throttle {
        limit: u32,
    },
    /// An `itgenatr005` fault.
    Itgenatr005 {
        limit: u32,
    },
    /// A `hang` fault: never answer, keeping the thread slot (if any) taken meanwhile.
    Hang(Option<Slot>),
    Locked,
    WrongSecret,
    NotApiOnly,
}

/// A request that passed the gate. It keeps its thread slot until it is dropped.
#[derive(Debug)]
pub(crate) struct Admitted {
    pub(crate) user: String,
    pub(crate) level: SecurityLevel,
    /// An `apply_then_drop` fault: do the call, then never answer.
    pub(crate) then_drop: bool,
    /// A `commit_late` fault: do the call this long after arrival, whether or not the client waits for it.
    pub(crate) commit_after: Option<Duration>,
    _slot: Slot,
}

/// What the faults on a call say: go on (perhaps to drop the answer afterwards), hang, or answer otherwise.
pub(crate) enum FaultStep {
    Go { then_drop: bool, commit_after: Option<Duration> },
    Hang,
    Refuse(Refusal),
}

/// Applies the first fault on `call`, if any. A delay is waited out here.
pub(crate) async fn fault_step(sandbox: &Sandbox, call: Call) -> FaultStep {
    let (action, limit) = {
        let mut state = sandbox.state();
        (state.faults.take(call), state.limits.thread_limit)
    };
    let go = FaultStep::Go { then_drop: false, commit_after: None };
    let Some(action) = action else { return go };
    tracing::debug!(call = call.name(), ?action, "sandbox: fault fires");
    match action {
        FaultAction::Fail { status, body } => FaultStep::Refuse(Refusal::Fail { status, body }),
        FaultAction::Hang => FaultStep::Hang,
        FaultAction::Delay(d) => {
            // Cut short by shutdown: the answer no longer matters then.
            tokio::select! {
                () = tokio::time::sleep(d) => {}
                () = sandbox.until_shutdown() => {}
            }
            go
        }
        FaultAction::ApplyThenDrop => FaultStep::Go { then_drop: true, commit_after: None },
        FaultAction::CommitLate(d) => FaultStep::Go { then_drop: false, commit_after: Some(d) },
        FaultAction::Throttle => FaultStep::Refuse(Refusal::Throttle { limit }),
        FaultAction::Itgenatr005 => FaultStep::Refuse(Refusal::Itgenatr005 { limit }),
    }
}

/// Runs an authenticated request through the gate. `endpoint` keys the thread limit with the integration code.
pub(crate) async fn admit(
    sandbox: &Sandbox,
    call: Call,
    endpoint: &str,
    credentials: &Credentials,
) -> Result<Admitted, Refusal> {
    let user = credentials.user.as_deref().unwrap_or_default();
    let code = credentials.code.as_deref().unwrap_or_default();
    {
        let mut state = sandbox.state();
        if state.tenant.find(user).is_none() {
            return Err(Refusal::UnknownUser);
        }
        if !state.tenant.code_is_valid(code) {
            return Err(Refusal::BadIntegrationCode);
        }
        if state.limits.hourly_exceeded(Instant::now()) {
            return Err(Refusal::Hourly { limit: state.limits.hourly_limit });
        }
    }
    let Some(slot) = Slot::enter(sandbox, code, endpoint) else {
        let state = sandbox.state();
        return Err(Refusal::Threads { limit: state.limits.thread_limit, response: state.limits.response });
    };
    let (then_drop, commit_after) = match fault_step(sandbox, call).await {
        FaultStep::Go { then_drop, commit_after } => (then_drop, commit_after),
        FaultStep::Hang => return Err(Refusal::Hang(Some(slot))),
        FaultStep::Refuse(refusal) => return Err(refusal),
    };
    let now = Instant::now();
    // Declared after `slot`, so on every return below the lock is released before the slot is (its `Drop`
    // takes the same lock).
    let mut state = sandbox.state();
    let secret = credentials.secret.as_deref().unwrap_or_default();
    match state.tenant.login(user, secret, now) {
        None => Err(Refusal::UnknownUser),
        Some(Login::Locked) => Err(Refusal::Locked),
        Some(Login::WrongSecret) => Err(Refusal::WrongSecret),
        Some(Login::NotApiOnly) => Err(Refusal::NotApiOnly),
        Some(Login::Ok) => {
            state.limits.count_request(now);
            let level = state.tenant.find(user).map(|a| a.level).unwrap_or_default();
            drop(state);
            Ok(Admitted { user: user.to_string(), level, then_drop, commit_after, _slot: slot })
        }
    }
}
