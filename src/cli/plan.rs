//! `rotavault plan [JOB]`: a dry run. For each job: when and why it is next due (and the blackout window that holds
//! it), which stores and slots a rotation would write, the rules the new secret would meet and the strength they
//! guarantee, what recovery would do with a value pending now, and the checks of its stores and its target. It
//! reads and probes; it changes nothing in any store or target (the stores' `check` and the targets' connect
//! checks are the ones `check --connect` makes). Exit 1 when a check failed.

use super::output::{Output, outln};
use super::{CliError, exit, unknown_job};
use crate::config::Config;
use crate::runtime::{Runtime, ScheduledJob};
use crate::schedule::{Clock, SystemClock};
use crate::status::JobStatus;
use crate::store::Store;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub async fn plan(config: Config, job: Option<&str>) -> Result<u8, CliError> {
    let runtime = Runtime::build(config, Arc::new(SystemClock), CancellationToken::new()).await?;
    let chosen: Vec<&ScheduledJob> = match job {
        Some(name) => vec![runtime.job(name).ok_or_else(|| unknown_job(name, &runtime.job_names()))?],
        None => runtime.jobs.iter().collect(),
    };
    // The target checks log in, which with replicas only the lease's holder may do.
    let held = super::replicas::hold(&runtime, "plan", true).await?;
    let result = report(&runtime, &chosen).await;
    if let Some(held) = held {
        held.release().await;
    }
    result
}

async fn report(runtime: &Runtime, chosen: &[&ScheduledJob]) -> Result<u8, CliError> {
    let now = SystemClock.now();
    let statuses: BTreeMap<String, JobStatus> =
        crate::status::statuses(runtime, now).await.into_iter().map(|s| (s.job.clone(), s)).collect();
    // Each store is probed once, whatever the number of its jobs.
    let mut store_checks: BTreeMap<String, Result<(), String>> = BTreeMap::new();
    for scheduled in chosen {
        for js in &scheduled.job.stores {
            if !store_checks.contains_key(&js.label)
                && let Some(store) = runtime.stores.get(&js.label)
            {
                let checked = Store::check(store.as_ref()).await.map_err(|e| e.to_string());
                store_checks.insert(js.label.clone(), checked);
            }
        }
    }
    let mut out = Output::stdout();
    let mut failed = 0;
    for scheduled in chosen {
        let job = &scheduled.job;
        let status = statuses.get(&job.name);
        outln!(out, "job {} ({})", job.name, job.target.describe().detail);
        outln!(out, "  next due    {}", due_line(status, now));
        if job.target.manual() {
            outln!(
                out,
                "  manual      apply = \"manual\": rotavault sets no secret; a person sets one in the Autotask UI and \
                 pipes it to `rotavault import {}`",
                job.name
            );
        }
        let slots = if job.target.manual() {
            "as current, at import (the current value kept as previous)"
        } else {
            "as pending, then current (the current value kept as previous)"
        };
        for (i, js) in job.stores.iter().enumerate() {
            let label = if i == 0 { "  writes" } else { "" };
            outln!(out, "{label:<14}{}: {} `{}` {slots}", js.label, js.store.backend(), js.secret.name);
        }
        let bits = job.policy.strength_bits();
        let min = runtime.config.policy.min_strength_bits;
        outln!(
            out,
            "  new secret  {}; at least {bits} bits{}",
            job.policy,
            min.map(|m| format!(" ([policy] min_strength_bits {m})")).unwrap_or_default()
        );
        outln!(out, "  pending     {}", pending_line(runtime, scheduled, status));
        outln!(out, "  heartbeat   {}", heartbeat_line(scheduled, status));
        let mut checks: Vec<(bool, String, Option<String>)> = Vec::new();
        for js in &job.stores {
            if let Some(checked) = store_checks.get(&js.label) {
                let what = format!("store {} reachable and writable", js.label);
                checks.push((checked.is_ok(), what, checked.as_ref().err().cloned()));
            }
        }
        for check in job.target.connect_checks().await {
            checks.push((check.ok, check.name, (!check.ok).then_some(check.detail)));
        }
        for (i, (ok, name, detail)) in checks.iter().enumerate() {
            let label = if i == 0 { "  checks" } else { "" };
            outln!(out, "{label:<14}{:<7}{name}", if *ok { "ok" } else { "FAILED" });
            if let Some(detail) = detail {
                outln!(out, "{:<21}{detail}", "");
            }
            failed += usize::from(!ok);
        }
        outln!(out, "");
    }
    outln!(out, "nothing was changed; {failed} check(s) failed");
    Ok(out.reported(if failed == 0 { exit::OK } else { exit::FAILURE }))
}

fn due_line(status: Option<&JobStatus>, now: DateTime<Utc>) -> String {
    let Some(status) = status else { return "unknown".into() };
    if status.state == "diverged" {
        return "never while diverged: `rotavault resolve` first".into();
    }
    let when = match status.next_due {
        Some(at) if at <= now => "now".to_owned(),
        Some(at) => at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        None => "never".to_owned(),
    };
    let why = status.due_reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
    let held = status.blackout.as_deref().map(|b| format!("; {b}")).unwrap_or_default();
    format!("{when}{why}{held}")
}

/// How often the stored value is verified between rotations, and when it last was.
fn heartbeat_line(scheduled: &ScheduledJob, status: Option<&JobStatus>) -> String {
    let last = match status.and_then(|s| s.last_verify) {
        Some(at) => format!("last accepted verify {}", at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        None => "no accepted verify recorded yet".into(),
    };
    match scheduled.heartbeat {
        Some(every) => format!("every {} (one login each); {last}", humantime::format_duration(every)),
        None => format!("off ([policy] heartbeat or the job's heartbeat turns it on); {last}"),
    }
}

/// What recovery would do with the value pending now, from the stores' summaries and the job's state.
fn pending_line(runtime: &Runtime, scheduled: &ScheduledJob, status: Option<&JobStatus>) -> String {
    let pending: Vec<&str> = status
        .map(|s| {
            s.stores
                .iter()
                .filter(|st| st.pending_rotation_id.is_some())
                .map(|st| st.store.as_str())
                .collect()
        })
        .unwrap_or_default();
    if pending.is_empty() {
        return "nothing: a rotation starts with the current value verified".into();
    }
    let stores = pending.join(", ");
    match runtime.engine.states().load(&scheduled.job.name) {
        Ok(state) => match state.apply_intent {
            Some(intent) => format!(
                "rotation {} in {stores}; its apply was sent at {}: recovery verifies it first and, if the target \
                 does not take it yet, keeps it until {}",
                intent.rotation_id,
                intent.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                runtime
                    .engine
                    .settles_at(&scheduled.job, &intent)
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            None => {
                format!("a value in {stores} whose apply was never sent: recovery discards it, with no login")
            }
        },
        Err(e) => format!("a value in {stores}; the job's state cannot be read ({e})"),
    }
}
