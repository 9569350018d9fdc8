//! The scheduler: one task per job.
//!
//! A heartbeat task stamps [`super::health::Health`] every few seconds while the runtime schedules tasks. At
//! start-up every job's pending value, if any, is settled (recovery). Then each job gets a task that sleeps
//! until the job is next due (schedule, age, or a fire missed while the daemon was down) and rotates it. The age
//! comes from the stores; when it cannot be read, the task waits and reads again, and never rotates on a guess. A failed
//! rotation is retried with a growing back-off; the job stays due, so nothing is forgotten. A diverged job is
//! left alone until `rotavault resolve`.
//!
//! The shutdown token stops scheduling; a rotation in flight stops cleanly before Apply or runs to its end after
//! it (see `Engine::with_shutdown`).

use super::Daemon;
use super::health::HEARTBEAT_EVERY;
use crate::rotation::state::JobState;
use crate::rotation::{RotationError, Trigger};
use crate::runtime::{Runtime, ScheduledJob};
use crate::schedule::next_due;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// How long a job that failed waits before the next try, at most.
const MAX_RETRY: Duration = Duration::from_secs(3600);
const FIRST_RETRY: Duration = Duration::from_secs(30);
/// How long a job another process is rotating is left alone before it is planned again.
const BUSY_RETRY: Duration = Duration::from_secs(2);
/// How often a diverged job's mark is looked at again, to notice `rotavault resolve`.
const DIVERGED_RECHECK: Duration = Duration::from_secs(300);

/// Spawns the heartbeat and one loop per job on the daemon's tracker.
pub(super) fn spawn(daemon: &Arc<Daemon>) {
    let beat = daemon.clone();
    daemon.tracker.spawn(async move {
        loop {
            beat.health.beat();
            tokio::select! {
                () = tokio::time::sleep(HEARTBEAT_EVERY) => {}
                () = beat.shutdown.cancelled() => return,
            }
        }
    });
    for index in 0..daemon.runtime.jobs.len() {
        let daemon = daemon.clone();
        let span = tracing::info_span!("job", job = %daemon.runtime.jobs[index].job.name);
        daemon.tracker.clone().spawn(async move { job_loop(&daemon, index).await }.instrument(span));
    }
}

async fn job_loop(daemon: &Arc<Daemon>, index: usize) {
    let runtime = &*daemon.runtime;
    let shutdown = &daemon.shutdown;
    let scheduled = &runtime.jobs[index];
    let job = &scheduled.job;
    let clock = runtime.engine.clock().clone();

    // Start-up recovery: a pending value left by a crash is settled before anything is scheduled.
    match runtime.engine.recover(job).await {
        Ok(recovery) => tracing::info!(job = %job.name, ?recovery, "start-up recovery"),
        Err(e) => log_failure(&job.name, &e),
    }
    daemon.health.recovered();
    daemon.startup.recovered(); // systemd: READY=1 after the last job's recovery

    let mut failures: u32 = 0;
    let mut unread: u32 = 0;
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        let now = clock.now();
        // Reading the secret's age calls every store, with timeouts and retries: a store that hangs must not hold
        // the daemon past SIGTERM.
        let next = tokio::select! {
            next = next_run(runtime, scheduled, failures, &mut unread, now) => next,
            () = shutdown.cancelled() => return,
        };
        let (at, reason) = match next {
            Next::Rotate { at, reason } => (at, Some(reason)),
            Next::Look { at } => (at, None),
        };
        if let Some(reason) = &reason
            && at > now
        {
            tracing::info!(job = %job.name, next = %at, %reason, "next rotation");
        }
        tokio::select! {
            () = clock.sleep_until(at) => {}
            // A rotation started over HTTP changed the age: plan again from it.
            () = daemon.jobs[index].wake.notified() => continue,
            () = shutdown.cancelled() => return,
        }
        let Some(reason) = reason else { continue };
        let result = match daemon.claim(index) {
            Some(claim) => daemon.rotate(&claim, Trigger::Due(reason)).await,
            // A rotation started over HTTP is running; it wakes this loop when it ends.
            None => {
                tokio::select! {
                    () = daemon.jobs[index].wake.notified() => {}
                    () = shutdown.cancelled() => return,
                }
                continue;
            }
        };
        match result {
            Ok(outcome) => {
                failures = 0;
                tracing::info!(job = %job.name, ?outcome, "rotation done");
            }
            Err(RotationError::ShutDown { .. }) => return,
            // Another process holds the job: it is doing the work, and the plan after it reads what it wrote.
            Err(e @ RotationError::Busy(_)) => {
                log_failure(&job.name, &e);
                let resume = clock.now() + chrono::Duration::from_std(BUSY_RETRY).unwrap_or_default();
                tokio::select! {
                    () = clock.sleep_until(resume) => {}
                    () = shutdown.cancelled() => return,
                }
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                log_failure(&job.name, &e);
            }
        }
    }
}

/// What a job's loop does next.
enum Next {
    /// Rotate at `at`, for `reason`.
    Rotate { at: DateTime<Utc>, reason: String },
    /// Nothing before `at`, then evaluate again: the job is diverged, or its secret's age could not be read.
    Look { at: DateTime<Utc> },
}

/// When and why the job runs next. `unread` counts the evaluations in a row that could not read the secret's age.
async fn next_run(
    runtime: &Runtime,
    scheduled: &ScheduledJob,
    failures: u32,
    unread: &mut u32,
    now: DateTime<Utc>,
) -> Next {
    let name = &scheduled.job.name;
    match runtime.engine.states().load(name) {
        Ok(state) if state.diverged.is_some() => {
            runtime.warn_age(scheduled, state.last_success.map(|s| s.at), None, now);
            tracing::error!(job = %name, "diverged: not rotated until `rotavault resolve {name}`");
            return Next::Look { at: now + chrono::Duration::from_std(DIVERGED_RECHECK).unwrap_or_default() };
        }
        // An apply was sent and its value is not settled yet: nothing can be decided before the apply horizon
        // ends (the target may still carry it out), and the job must be settled as soon as it has, not at the
        // next schedule fire.
        Ok(JobState { apply_intent: Some(intent), .. }) => {
            let settles_at = runtime.engine.settles_at(&scheduled.job, &intent);
            let at = if failures > 0 { settles_at.max(now + retry_delay(failures)) } else { settles_at };
            let reason = "settle the value whose apply was sent: its apply horizon has passed".into();
            return Next::Rotate { at, reason };
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(job = %name, error = %e, "job state unreadable"),
    }
    let settings = runtime.engine.settings();
    let rotated_at = match scheduled.rotated_at(settings.backoff, settings.call_timeout).await {
        Ok(at) => {
            *unread = 0;
            at
        }
        // Not knowing the age is not "never rotated" and not "due": a rotation started on a guess would replace a
        // secret that may be a minute old, and could not even stage while the store fails. Look again later.
        Err((store, e)) => {
            *unread = unread.saturating_add(1);
            let at = now + retry_delay(*unread);
            tracing::warn!(job = %name, %store, error = %e, next = %at, "cannot read the secret's age; not rotating");
            return Next::Look { at };
        }
    };
    let due = next_due(name, scheduled.schedule.as_ref(), scheduled.max_age, rotated_at, now);
    runtime.warn_age(scheduled, rotated_at, (failures == 0).then_some(due.at), now);
    let mut at = due.at;
    if failures > 0 {
        // Still due (the secret did not change), but not at once: back off.
        at = at.max(now + retry_delay(failures));
    }
    Next::Rotate { at, reason: due.reason.to_string() }
}

fn retry_delay(failures: u32) -> chrono::Duration {
    let d = FIRST_RETRY.saturating_mul(2u32.saturating_pow(failures.saturating_sub(1))).min(MAX_RETRY);
    chrono::Duration::from_std(d).unwrap_or_else(|_| chrono::Duration::hours(1))
}

pub(super) fn log_failure(job: &str, e: &RotationError) {
    match e {
        RotationError::Diverged { .. } => {
            tracing::error!(job, error = %e, kind = e.metric_label(), "job diverged")
        }
        RotationError::Blocked { .. } => {
            tracing::error!(job, error = %e, kind = e.metric_label(), "job blocked until a person acts")
        }
        RotationError::Busy(_) => tracing::info!(job, error = %e, "skipped: busy"),
        _ => tracing::error!(job, error = %e, kind = e.metric_label(), "rotation failed"),
    }
}
