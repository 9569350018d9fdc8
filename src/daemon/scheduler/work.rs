//! The work the scheduler hands its work tasks: recover, rotate, beat the heartbeat, or look again; each ends by
//! reading back what the job now holds, for its next plan.

use super::{Daemon, Did, Done, Work};
use crate::rotation::{RotationError, Trigger};
use crate::runtime::JobSummaries;
use std::sync::Arc;
use tracing::Instrument;

/// Does one piece of work and reads back what each job it touched now holds.
pub(super) async fn work_on(daemon: &Arc<Daemon>, work: Work) -> Vec<Done> {
    let runtime = &*daemon.runtime;
    match work {
        Work::Look(jobs) => {
            // Reads only: a store that hangs must not hold the daemon past SIGTERM.
            let read = async { tokio::join!(runtime.summaries(&jobs), runtime.job_states(&jobs)) };
            let (summaries, states) = tokio::select! {
                read = read => read,
                () = daemon.shutdown.cancelled() => return Vec::new(),
            };
            jobs.into_iter()
                .zip(summaries)
                .zip(states)
                .map(|((index, summaries), state)| Done { index, did: Did::Looked, state, summaries })
                .collect()
        }
        Work::Recover(index) => {
            let job = &runtime.jobs[index].job;
            let span = tracing::info_span!("job", job = %job.name);
            // Start-up recovery: a pending value left by a crash is settled before the job is scheduled.
            match runtime.engine.recover(job).instrument(span).await {
                Ok(recovery) => tracing::info!(job = %job.name, ?recovery, "start-up recovery"),
                Err(e) => log_failure(&job.name, &e),
            }
            read_back(daemon, index, Did::Recovered).await
        }
        Work::Heartbeat(index) => {
            let job = &runtime.jobs[index].job;
            // Claimed like a rotation, so that one started over HTTP and the heartbeat never overlap.
            if let Some(claim) = daemon.claim(index) {
                let span = tracing::info_span!("job", job = %job.name);
                let result = runtime.engine.heartbeat(job).instrument(span).await;
                if let Err(e) = &result {
                    log_failure(&job.name, e);
                }
                daemon.metrics.heartbeat(&job.name, &result);
                drop(claim);
            }
            read_back(daemon, index, Did::Heartbeat).await
        }
        Work::Rotate(index, reason) => {
            let job = &runtime.jobs[index].job;
            let did = match daemon.claim(index) {
                Some(claim) => {
                    let span = tracing::info_span!("job", job = %job.name);
                    let result = daemon.rotate(&claim, Trigger::Due(reason.trigger())).instrument(span).await;
                    drop(claim);
                    match result {
                        Ok(outcome) => {
                            tracing::info!(job = %job.name, ?outcome, "rotation done");
                            Did::Rotated(Ok(()))
                        }
                        Err(e) => {
                            log_failure(&job.name, &e);
                            Did::Rotated(Err(e))
                        }
                    }
                }
                None => Did::Skipped,
            };
            read_back(daemon, index, did).await
        }
    }
}

async fn read_back(daemon: &Daemon, index: usize, did: Did) -> Vec<Done> {
    let runtime = &*daemon.runtime;
    let one = [index];
    let read = async { tokio::join!(runtime.summaries(&one), runtime.job_states(&one)) };
    let (mut summaries, mut states) = tokio::select! {
        read = read => read,
        () = daemon.shutdown.cancelled() => return Vec::new(),
    };
    let summaries = summaries.pop().unwrap_or_else(|| JobSummaries(Vec::new()));
    let state = states.pop().unwrap_or_else(|| Err("the state was not read".into()));
    vec![Done { index, did, state, summaries }]
}

pub(in crate::daemon) fn log_failure(job: &str, e: &RotationError) {
    match e {
        RotationError::Diverged { .. } => {
            tracing::error!(job, error = %e, kind = e.metric_label(), "job diverged")
        }
        RotationError::Blocked { .. } => {
            tracing::error!(job, error = %e, kind = e.metric_label(), "job blocked until a person acts")
        }
        RotationError::Busy(_) => tracing::info!(job, error = %e, "skipped: busy"),
        // A clean stop before Apply (SIGTERM, a reload, a lost lease): nothing failed and nothing is left pending.
        RotationError::ShutDown { .. } => tracing::info!(job, error = %e, "stopped before apply"),
        _ => tracing::error!(job, error = %e, kind = e.metric_label(), "rotation failed"),
    }
}
