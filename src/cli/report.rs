//! `rotavault report [JOB] [--format F] [--since 90d] [--output FILE]`: each job's verdict against `[policy]` and
//! its own rules, with the evidence, for a security team (see `crate::report`). Read-only: no login, no store
//! write, no lease taken; it reads store metadata (`status`'s batch read, and one `previous` read per store of a
//! job rotated at least twice), the job state files and the audit file, and prints no secret.
//!
//! Exit 0 when every job is compliant, 1 when one is not or cannot be judged, 64 for bad usage, 78 for a bad config.

use super::output::{Output, outln};
use super::{CliError, exit, unknown_job};
use crate::config::Config;
use crate::report::{self, Format, Inputs, PreviousSlot, Report};
use crate::runtime::Runtime;
use crate::schedule::{Clock, SystemClock};
use crate::status::JobStatus;
use crate::store::StoreError;
use futures_util::StreamExt;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The longest `--since`: more than the audit file of any deployment holds, and a typo of unit lands above it.
const LONGEST_WINDOW: Duration = Duration::from_secs(3_650 * 86_400);

/// How many `previous` reads run at once: as many as the stores' own batch reads.
const PREVIOUS_CONCURRENCY: usize = 8;

pub struct Options<'a> {
    pub job: Option<&'a str>,
    pub format: Format,
    pub since: &'a str,
    pub output: Option<&'a Path>,
}

pub async fn report(config: Config, options: Options<'_>) -> Result<u8, CliError> {
    // Checked before anything is opened: a typo should cost nothing and say what is expected.
    let window = since(options.since)?;
    let runtime = Runtime::build(config, Arc::new(SystemClock), CancellationToken::new()).await?;
    let indices: Vec<usize> = match options.job {
        Some(name) => vec![
            runtime
                .jobs
                .iter()
                .position(|j| j.job.name == name)
                .ok_or_else(|| unknown_job(name, &runtime.job_names()))?,
        ],
        None => (0..runtime.jobs.len()).collect(),
    };
    // With replicas, the diverged marks and apply intents that count are the Lease's: read, never taken.
    super::replicas::follow(&runtime).await?;
    let now = SystemClock.now();
    let start = now - window;
    let (statuses, states) =
        tokio::join!(crate::status::statuses_of(&runtime, &indices, now), runtime.job_states(&indices));
    let previous = previous_slots(&runtime, &indices, &statuses).await;

    let names: Vec<String> = statuses.iter().map(|s| s.job.clone()).collect();
    let audit_path = runtime.config.audit.path.clone();
    let mut audit = tokio::task::spawn_blocking(move || {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        report::read_audit(audit_path.as_deref(), &names, start)
    })
    .await
    .map_err(|e| CliError::Failed(format!("reading the audit file stopped: {e}")))?;

    let policy = &runtime.config.policy;
    let mut jobs = Vec::with_capacity(indices.len());
    for (((&index, status), state), previous) in indices.iter().zip(&statuses).zip(&states).zip(&previous) {
        let scheduled = &runtime.jobs[index];
        let max_age = match (scheduled.max_age, policy.max_age) {
            (Some(own), Some(global)) => Some(own.min(global)),
            (own, global) => own.or(global),
        };
        let history = audit.jobs.remove(&status.job).unwrap_or_default();
        let series = report::age_series(&history, status.last_rotation, start, now);
        let inputs = Inputs {
            status,
            state: state.as_ref().map_err(String::as_str),
            previous,
            max_age,
            policy,
            secret: &scheduled.job.policy,
            heartbeat: scheduled.heartbeat,
            now,
        };
        jobs.push(report::assess(&inputs, history, series));
    }

    let mut warnings = Vec::new();
    let shown_path = runtime.config.audit.path.as_ref().map(|p| p.display().to_string());
    if audit.malformed > 0 {
        warnings.push(format!(
            "{} line(s) of the audit file `{}` are not rotavault events and were skipped: the counts may be low",
            audit.malformed,
            shown_path.as_deref().unwrap_or_default()
        ));
    }
    warnings.extend(audit.error.clone());
    let report = Report {
        generated_at: now,
        since: options.since.to_owned(),
        window_start: start,
        policy: report::PolicyEvidence::of(policy),
        audit: report::AuditEvidence {
            path: shown_path,
            recorded: audit.recorded,
            lines: audit.lines,
            malformed_lines: audit.malformed,
            error: audit.error,
        },
        summary: report::Summary::of(&jobs),
        jobs,
        warnings,
    };
    let code = if report.all_compliant() { exit::OK } else { exit::FAILURE };
    let text = report::render(&report, options.format).map_err(|e| CliError::Failed(e.to_string()))?;
    match options.output {
        Some(path) => {
            write_file(path, &text)?;
            Ok(code)
        }
        None => {
            let mut out = Output::stdout_buffered();
            outln!(out, "{}", text.trim_end_matches('\n'));
            Ok(out.reported(code))
        }
    }
}

fn since(text: &str) -> Result<chrono::Duration, CliError> {
    let usage = |why: String| CliError::Usage(format!("--since {why}"));
    let window = crate::config::parse_duration(text).map_err(usage)?;
    if window.is_zero() || window > LONGEST_WINDOW {
        return Err(usage(format!(
            "`{text}` is not a usable window: expected more than 0s and at most {}",
            crate::config::display_duration(LONGEST_WINDOW)
        )));
    }
    chrono::Duration::from_std(window).map_err(|e| usage(format!("`{text}`: {e}")))
}

/// Each store's previous slot, for the jobs whose secret has had at least two values: one read per store per job,
/// a few at a time. The value a read returns is dropped (and zeroed) where it is read; only its generation is kept.
async fn previous_slots(
    runtime: &Runtime,
    indices: &[usize],
    statuses: &[JobStatus],
) -> Vec<Vec<PreviousSlot>> {
    let mut reads = Vec::new();
    let mut slots: Vec<Vec<PreviousSlot>> = Vec::with_capacity(indices.len());
    for (at, (&index, status)) in indices.iter().zip(statuses).enumerate() {
        let job = &runtime.jobs[index].job;
        slots.push(vec![PreviousSlot::NotRead; job.stores.len()]);
        if status.generation.unwrap_or(0) < 2 {
            continue;
        }
        for (k, (js, store_status)) in job.stores.iter().zip(&status.stores).enumerate() {
            if store_status.error.is_none() {
                reads.push((at, k, js.store.clone(), js.secret.clone()));
            }
        }
    }
    // A store that hangs must not hold the report: each read gets the engine's call timeout.
    let limit = runtime.engine.settings().call_timeout;
    let answers: Vec<(usize, usize, PreviousSlot)> = futures_util::stream::iter(reads)
        .map(|(at, k, store, secret)| async move {
            let slot = match tokio::time::timeout(limit, store.previous(&secret)).await {
                Ok(Ok(Some(stored))) => PreviousSlot::Present { generation: stored.metadata.generation },
                Ok(Ok(None)) => PreviousSlot::Absent,
                Ok(Err(e @ StoreError::NotOwned { .. })) => PreviousSlot::NotOwned { error: e.to_string() },
                Ok(Err(e)) => PreviousSlot::Unreadable { error: e.to_string() },
                Err(_) => PreviousSlot::Unreadable { error: format!("no answer within {limit:?}") },
            };
            (at, k, slot)
        })
        .buffer_unordered(PREVIOUS_CONCURRENCY)
        .collect()
        .await;
    for (at, k, slot) in answers {
        slots[at][k] = slot;
    }
    slots
}

/// The report into `path`, owner-only: it holds no secret, but maps which credentials exist and where.
fn write_file(path: &Path, text: &str) -> Result<(), CliError> {
    use std::os::unix::fs::OpenOptionsExt;
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()).and_then(|()| file.sync_all()));
    written
        .map_err(|e| CliError::Failed(format!("the report cannot be written to `{}`: {e}", path.display())))
}
