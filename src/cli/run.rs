//! `rotavault run`: the daemon.
//!
//! At start-up every job's pending value, if any, is settled (recovery). Then each job gets a task that sleeps
//! until the job is next due (schedule, age, or a fire missed while the daemon was down) and rotates it. A failed
//! rotation is retried with a growing back-off; the job stays due, so nothing is forgotten. A diverged job is
//! left alone until `rotavault resolve`.
//!
//! SIGTERM or SIGINT stops scheduling; a rotation in flight stops cleanly before Apply or runs to its end after
//! it (see `Engine::with_shutdown`), then the process exits 0.

use super::{CliError, exit};
use crate::config::Config;
use crate::rotation::{RotationError, Trigger};
use crate::runtime::{Runtime, ScheduledJob};
use crate::schedule::{SystemClock, next_due};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// How long a job that failed waits before the next try, at most.
const MAX_RETRY: Duration = Duration::from_secs(3600);
const FIRST_RETRY: Duration = Duration::from_secs(30);
/// How long a job another process is rotating is left alone before it is planned again.
const BUSY_RETRY: Duration = Duration::from_secs(2);
/// How often a diverged job's mark is looked at again, to notice `rotavault resolve`.
const DIVERGED_RECHECK: Duration = Duration::from_secs(300);

pub async fn run(config: Config) -> Result<u8, CliError> {
    let shutdown = CancellationToken::new();
    let runtime = Arc::new(Runtime::build(config, Arc::new(SystemClock), shutdown.clone()).await?);
    spawn_signal_handler(shutdown.clone())?;
    serve(runtime, shutdown).await;
    Ok(exit::OK)
}

/// Runs every job until `shutdown`; returns once every job task has stopped.
pub async fn serve(runtime: Arc<Runtime>, shutdown: CancellationToken) {
    tracing::info!(jobs = runtime.jobs.len(), config = %runtime.config.path.display(), "rotavault starting");
    let tracker = TaskTracker::new();
    for index in 0..runtime.jobs.len() {
        let runtime = runtime.clone();
        let shutdown = shutdown.clone();
        let span = tracing::info_span!("job", job = %runtime.jobs[index].job.name);
        tracker
            .spawn(async move { job_loop(&runtime, &runtime.jobs[index], shutdown).await }.instrument(span));
    }
    tracker.close();
    tracker.wait().await;
    tracing::info!("rotavault stopped");
}

pub(super) fn spawn_signal_handler(shutdown: CancellationToken) -> Result<(), CliError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term =
        signal(SignalKind::terminate()).map_err(|e| CliError::Failed(format!("SIGTERM handler: {e}")))?;
    let mut int =
        signal(SignalKind::interrupt()).map_err(|e| CliError::Failed(format!("SIGINT handler: {e}")))?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: finishing rotations in flight, then stopping"),
            _ = int.recv() => tracing::info!("SIGINT: finishing rotations in flight, then stopping"),
        }
        shutdown.cancel();
    });
    Ok(())
}

async fn job_loop(runtime: &Runtime, scheduled: &ScheduledJob, shutdown: CancellationToken) {
    let job = &scheduled.job;
    let clock = runtime.engine.clock().clone();

    // Start-up recovery: a pending value left by a crash is settled before anything is scheduled.
    match runtime.engine.recover(job).await {
        Ok(recovery) => tracing::info!(job = %job.name, ?recovery, "start-up recovery"),
        Err(e) => log_failure(&job.name, &e),
    }

    let mut failures: u32 = 0;
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        let now = clock.now();
        let (at, reason) = match next_run(runtime, scheduled, failures, now).await {
            Some(next) => next,
            None => (now + DIVERGED_RECHECK, String::new()),
        };
        if at > now {
            tracing::info!(job = %job.name, next = %at, %reason, "next rotation");
        }
        tokio::select! {
            () = clock.sleep_until(at) => {}
            () = shutdown.cancelled() => return,
        }
        if reason.is_empty() {
            continue;
        }
        match runtime.engine.rotate(job, Trigger::Due(reason)).await {
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

/// When and why the job runs next; `None` while it is diverged.
async fn next_run(
    runtime: &Runtime,
    scheduled: &ScheduledJob,
    failures: u32,
    now: DateTime<Utc>,
) -> Option<(DateTime<Utc>, String)> {
    let name = &scheduled.job.name;
    match runtime.engine.states().load(name) {
        Ok(state) if state.diverged.is_some() => {
            tracing::error!(job = %name, "diverged: not rotated until `rotavault resolve {name}`");
            return None;
        }
        // An apply was sent and its value is not settled yet: nothing can be decided before the apply horizon
        // ends (the target may still carry it out), and the job must be settled as soon as it has, not at the
        // next schedule fire.
        Ok(state) if state.apply_intent.is_some() => {
            let settles_at = runtime.engine.settles_at(&scheduled.job).ok().flatten().unwrap_or(now);
            let at = if failures > 0 { settles_at.max(now + retry_delay(failures)) } else { settles_at };
            return Some((at, "settle the value whose apply was sent: its apply horizon has passed".into()));
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(job = %name, error = %e, "job state unreadable"),
    }
    let rotated_at = match scheduled.rotated_at().await {
        Ok(at) => at,
        Err((store, e)) => {
            tracing::error!(job = %name, %store, error = %e, "cannot read the secret's age");
            let wait = retry_delay(failures.max(1));
            return Some((now + wait, "retry after a store error".into()));
        }
    };
    let due = next_due(name, scheduled.schedule.as_ref(), scheduled.max_age, rotated_at, now);
    let mut at = due.at;
    if failures > 0 {
        // Still due (the secret did not change), but not at once: back off.
        at = at.max(now + retry_delay(failures));
    }
    Some((at, due.reason.to_string()))
}

fn retry_delay(failures: u32) -> chrono::Duration {
    let d = FIRST_RETRY.saturating_mul(2u32.saturating_pow(failures.saturating_sub(1))).min(MAX_RETRY);
    chrono::Duration::from_std(d).unwrap_or_else(|_| chrono::Duration::hours(1))
}

fn log_failure(job: &str, e: &RotationError) {
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
