//! What `status --json`, `GET /v1/jobs` and the metrics show of a job: its last rotation, age, next due time,
//! state and stores, read from store metadata, the job state file and the lockout guard. Values are read only to
//! learn their metadata; none is kept or shown.

use crate::lockout::LockoutGuard;
use crate::rotation::state::{AttemptOutcome, JobState};
use crate::runtime::{JobSummaries, Runtime, ScheduledJob};
use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct JobStatus {
    pub job: String,
    /// `ok`, `pending`, `failed`, `diverged`, `blocked` (a person must act), `drifted` (a store holds another value
    /// than the one the target accepts), or `never` (no secret yet).
    pub state: &'static str,
    pub target: String,
    pub last_rotation: Option<DateTime<Utc>>,
    /// When the target last accepted the stored value (a heartbeat, or a rotation's verify).
    pub last_verify: Option<DateTime<Utc>>,
    /// The stores whose current value differs from the one the target accepts, as the last heartbeat found them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<String>,
    pub age_seconds: Option<i64>,
    pub generation: Option<u64>,
    pub next_due: Option<DateTime<Utc>>,
    pub due_reason: Option<String>,
    /// `apply = "manual"`: a person sets the secret and rotavault never does; `next_due` is when the secret reaches
    /// its max_age.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub manual: bool,
    /// The blackout window that moved `next_due` to its end, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blackout: Option<String>,
    pub stores: Vec<StoreStatus>,
    pub last_error: Option<String>,
    /// What a person should do, when anything.
    pub action: Option<String>,
    /// The job's accounts that have consecutive failed (or unanswered) logins, as the lockout guard counts them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_logins: Vec<AccountLogins>,
    /// A reload hook of the latest rotation that failed (the rotation stands).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hook_failure: Option<crate::rotation::state::HookFailure>,
}

#[derive(Debug, Serialize)]
pub struct AccountLogins {
    pub account: String,
    pub consecutive: u32,
    pub max: u32,
}

#[derive(Debug, Serialize)]
pub struct StoreStatus {
    pub store: String,
    pub backend: &'static str,
    pub name: String,
    pub rotation_id: Option<String>,
    pub rotated_at: Option<DateTime<Utc>>,
    pub generation: Option<u64>,
    pub pending_rotation_id: Option<String>,
    pub error: Option<String>,
    /// The error's kind (`StoreError::metric_label`: `not_owned`, `transient`, ...), for what judges it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<&'static str>,
}

/// Every job's status, in `runtime.jobs` order: each store is read once for all jobs, not once per job.
pub async fn statuses(runtime: &Runtime, now: DateTime<Utc>) -> Vec<JobStatus> {
    let all: Vec<usize> = (0..runtime.jobs.len()).collect();
    statuses_of(runtime, &all, now).await
}

/// The statuses of the jobs at `jobs` (indices into `runtime.jobs`), in that order.
pub async fn statuses_of(runtime: &Runtime, jobs: &[usize], now: DateTime<Utc>) -> Vec<JobStatus> {
    // Both are reads of small files on the blocking pool, independent of each other: side by side, every core
    // is busy until both are done.
    let (summaries, states) = tokio::join!(runtime.summaries(jobs), runtime.job_states(jobs));
    let mut out = Vec::with_capacity(jobs.len());
    for ((&index, summaries), state) in jobs.iter().zip(&summaries).zip(states) {
        let scheduled = &runtime.jobs[index];
        let state = state.unwrap_or_else(|e| {
            tracing::warn!(job = %scheduled.job.name, error = %e, "unreadable job state");
            JobState::default()
        });
        out.push(job_status(scheduled, &state, summaries, now, runtime.engine.lockout()).await);
    }
    out
}

/// What a person must do for a manual job whose secret is fine otherwise: nothing until `warn_before` ahead of its
/// max_age, then set a new one.
fn manual_action(
    scheduled: &ScheduledJob,
    rotated_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<String> {
    if !scheduled.job.target.manual() {
        return None;
    }
    let expires = manual_deadline(scheduled, rotated_at)?;
    let warn_from = expires - chrono::Duration::from_std(scheduled.warn_before?).ok()?;
    let when = if now >= expires {
        format!("manual rotation overdue since {expires}")
    } else if now >= warn_from {
        format!("manual rotation due by {expires}")
    } else {
        return None;
    };
    Some(format!(
        "{when}: set a new secret in the Autotask UI and pipe it to `rotavault import {}`",
        scheduled.job.name
    ))
}

/// When a manual job's secret reaches its max_age.
fn manual_deadline(scheduled: &ScheduledJob, rotated_at: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    Some(rotated_at? + chrono::Duration::from_std(scheduled.max_age?).ok()?)
}

/// One job's status from what its stores answered (`summaries`, in the order of its stores) and its state.
pub async fn job_status(
    scheduled: &ScheduledJob,
    state: &JobState,
    summaries: &JobSummaries,
    now: DateTime<Utc>,
    lockout: &LockoutGuard,
) -> JobStatus {
    let job = &scheduled.job;
    let mut failed_logins = Vec::new();
    for account in job.target.accounts() {
        match lockout.consecutive(&account) {
            Ok(0) => {}
            Ok(consecutive) => {
                failed_logins.push(AccountLogins { account, consecutive, max: lockout.max_failed() })
            }
            Err(e) => tracing::warn!(%account, error = %e, "the lockout guard's record cannot be read"),
        }
    }
    let blocked = job.target.blocked().await;
    let manual = job.target.manual();
    let mut stores = Vec::new();
    let mut any_pending = false;
    let mut any_missing = false;
    let mut oldest: Option<DateTime<Utc>> = None;
    let mut generation: Option<u64> = None;
    for (js, answer) in job.stores.iter().zip(&summaries.0) {
        let mut s = StoreStatus {
            store: js.label.clone(),
            backend: js.store.backend(),
            name: js.secret.name.clone(),
            rotation_id: None,
            rotated_at: None,
            generation: None,
            pending_rotation_id: None,
            error: None,
            error_kind: None,
        };
        match answer {
            Ok(summary) => {
                match &summary.current {
                    Some(m) => {
                        s.rotation_id = m.rotation_id.as_ref().map(|r| r.to_string());
                        s.rotated_at = Some(m.rotated_at);
                        s.generation = Some(m.generation);
                        oldest = Some(oldest.map_or(m.rotated_at, |o| o.min(m.rotated_at)));
                        generation = Some(generation.map_or(m.generation, |g| g.min(m.generation)));
                    }
                    None => any_missing = true,
                }
                if let Some(p) = &summary.pending {
                    any_pending = true;
                    s.pending_rotation_id = Some(p.rotation_id.to_string());
                }
            }
            Err(e) => {
                s.error = Some(e.to_string());
                s.error_kind = Some(e.metric_label());
            }
        }
        stores.push(s);
    }
    let rotated_at = if any_missing { None } else { oldest };
    let store_error = stores.iter().find_map(|s| s.error.clone());

    let (state_name, action) = if let Some(mark) = &state.diverged {
        (
            "diverged",
            Some(format!(
                "diverged since {}: {}. Set the credential right by hand, then run `rotavault resolve {}`",
                mark.since, mark.reason, job.name
            )),
        )
    } else if let Some(why) = blocked {
        ("blocked", Some(format!("blocked: {why}")))
    } else if matches!(state.last_attempt.as_ref().map(|a| a.outcome), Some(AttemptOutcome::Blocked)) {
        (
            "blocked",
            Some(format!(
                "blocked: see last_error; once a person has set it right, run `rotavault resolve {}`",
                job.name
            )),
        )
    } else if any_pending {
        let when = match &state.apply_intent {
            Some(intent) => format!(
                "its apply was sent at {}; the daemon settles it once the target can no longer be carrying it \
                 out (the apply horizon), or run `rotavault rotate` then",
                intent.at
            ),
            None => "the daemon settles it, or run `rotavault rotate`".into(),
        };
        ("pending", Some(format!("a rotation is waiting to be settled: {when}")))
    } else if store_error.is_some() {
        ("failed", Some("a store cannot be read; see its error".into()))
    } else if matches!(state.last_attempt.as_ref().map(|a| a.outcome), Some(AttemptOutcome::Failed)) {
        ("failed", Some("the last attempt failed; see last_error".into()))
    } else if let Some(drift) = &state.drift {
        (
            "drifted",
            Some(format!(
                "since {}, store(s) {} hold a current value other than the one the target accepts (overwritten by \
                 hand?): put the right value back, or run `rotavault rotate {}` to write every store anew",
                drift.since,
                drift.stores.join(", "),
                job.name
            )),
        )
    } else if rotated_at.is_none() && manual {
        (
            "never",
            Some(format!(
                "no secret yet: set one in the Autotask UI and pipe it to `rotavault import {}`",
                job.name
            )),
        )
    } else if rotated_at.is_none() {
        ("never", Some("no secret yet; the daemon rotates it at start-up, or run `rotavault rotate`".into()))
    } else {
        ("ok", manual_action(scheduled, rotated_at, now))
    };

    let (mut due, mut held) = scheduled.next_due(rotated_at, now);
    let mut due_reason = due.reason.to_string();
    if manual {
        // Due by the secret's age, and set by a person: no schedule, and no window holds a person.
        held = None;
        due.at = manual_deadline(scheduled, rotated_at).unwrap_or(now);
        due_reason = "manual: a person sets a new secret before it reaches max_age".into();
    }
    JobStatus {
        job: job.name.clone(),
        state: state_name,
        target: job.target.describe().detail,
        last_rotation: rotated_at,
        manual,
        last_verify: state.last_verify.as_ref().map(|v| v.at),
        drift: state.drift.as_ref().map(|d| d.stores.clone()).unwrap_or_default(),
        age_seconds: rotated_at.map(|at| (now - at).num_seconds()),
        generation,
        next_due: (state.diverged.is_none()).then_some(due.at),
        due_reason: (state.diverged.is_none()).then_some(due_reason),
        blackout: held
            .filter(|_| state.diverged.is_none())
            .map(|h| format!("held until {}: {}", h.until, h.window)),
        stores,
        last_error: store_error.or_else(|| state.last_attempt.as_ref().and_then(|a| a.error.clone())),
        action,
        failed_logins,
        hook_failure: state.hook_failure.clone(),
    }
}
