//! How a job is planned from what its work read back: when it is next due and what to do then (rotate, look again,
//! or beat its drift heartbeat), manual jobs included; and the times those plans are made of (back-off, the look
//! grid, the heartbeat's jitter).

use super::{Done, JobPlan, Plan, Reason};
use crate::rotation::state::JobState;
use crate::runtime::Runtime;
use chrono::{DateTime, TimeDelta, Utc};
use std::time::Duration;

/// How long a job that failed waits before the next try, at most.
const MAX_RETRY: Duration = Duration::from_secs(3600);
const FIRST_RETRY: Duration = Duration::from_secs(30);
/// How often a diverged job's mark is looked at again, to notice `rotavault resolve`.
const DIVERGED_RECHECK: Duration = Duration::from_secs(300);
/// Looks are rounded up to a multiple of this many seconds.
const LOOK_GRID: i64 = 30;

/// When and what a job does next, from its state and what its stores hold.
pub(super) fn next_plan(
    runtime: &Runtime,
    index: usize,
    plan: &mut JobPlan,
    done: &Done,
    now: DateTime<Utc>,
) -> (DateTime<Utc>, Plan) {
    let scheduled = &runtime.jobs[index];
    let name = &scheduled.job.name;
    match &done.state {
        Ok(state) if state.diverged.is_some() => {
            runtime.warn_age(scheduled, state.last_success.as_ref().map(|s| s.at), None, now);
            tracing::error!(job = %name, "diverged: not rotated until `rotavault resolve {name}`");
            return (on_grid(now + delta(DIVERGED_RECHECK)), Plan::Look);
        }
        // An apply was sent and its value is not settled yet: nothing can be decided before the apply horizon
        // ends (the target may still carry it out), and the job must be settled as soon as it has, not at the
        // next schedule fire.
        Ok(JobState { apply_intent: Some(intent), .. }) => {
            let settles_at = runtime.engine.settles_at(&scheduled.job, intent);
            let at =
                if plan.failures > 0 { settles_at.max(now + retry_delay(plan.failures)) } else { settles_at };
            return (at, Plan::Rotate(Reason::Settle));
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(job = %name, error = %e, "job state unreadable"),
    }
    let labels = scheduled.job.stores.iter().map(|js| js.label.as_str());
    let rotated_at = match done.summaries.rotated_at(labels) {
        Ok(at) => {
            plan.unread = 0;
            at
        }
        // Not knowing the age is not "never rotated" and not "due": a rotation started on a guess would replace a
        // secret that may be a minute old, and could not even stage while the store fails. Look again later.
        Err((store, e)) => {
            plan.unread = plan.unread.saturating_add(1);
            let at = on_grid(now + retry_delay(plan.unread));
            tracing::warn!(job = %name, %store, error = %e, next = %at, "cannot read the secret's age; not rotating");
            return (at, Plan::Look);
        }
    };
    if scheduled.job.target.manual() {
        return manual_plan(runtime, index, plan, done, rotated_at, now);
    }
    let (due, held) = scheduled.next_due(rotated_at, now);
    if let Some(held) = &held {
        tracing::info!(job = %name, until = %held.until, window = %held.window, "due inside a blackout window: held until it ends");
    }
    // A rotation held past the warning's lead raises the age warning, as any rotation planned too late does.
    runtime.warn_age(scheduled, rotated_at, (plan.failures == 0).then_some(due.at), now);
    // Held past the secret's max_age: look again when the warning's lead begins, so that it is raised then and not
    // only once the window ends.
    if held.is_some()
        && let (Some(rotated_at), Some(max_age), Some(lead)) =
            (rotated_at, scheduled.max_age, scheduled.warn_before)
    {
        let expires = rotated_at + delta(max_age);
        let warn_from = expires - delta(lead);
        if due.at > expires && now < warn_from {
            return (warn_from, Plan::Look);
        }
    }
    let mut at = due.at;
    if plan.failures > 0 {
        // Still due (the secret did not change), but not at once: back off.
        at = at.max(now + retry_delay(plan.failures));
    }
    if rotated_at.is_some()
        && let Some(beat) = heartbeat_before(scheduled, plan, done, at, now)
    {
        return (beat, Plan::Heartbeat);
    }
    (at, Plan::Rotate(Reason::Due(due.reason)))
}

/// The job's next heartbeat, when it has one and it comes before `at`.
fn heartbeat_before(
    scheduled: &crate::runtime::ScheduledJob,
    plan: &mut JobPlan,
    done: &Done,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let every = scheduled.heartbeat?;
    let last = done.state.as_ref().ok().and_then(|s| s.last_verify.as_ref()).map(|v| v.at);
    let beat = *plan.heartbeat_at.get_or_insert_with(|| first_heartbeat(last, every, now));
    (beat < at).then_some(beat)
}

/// A manual job (`apply = "manual"`) is never rotated: it is told due from `warn_before` ahead of its `max_age` and
/// overdue once past it, and looked at then (hourly once overdue, or while it has no secret, to notice `rotavault
/// import`); its heartbeat runs as any job's.
fn manual_plan(
    runtime: &Runtime,
    index: usize,
    plan: &mut JobPlan,
    done: &Done,
    rotated_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> (DateTime<Utc>, Plan) {
    let scheduled = &runtime.jobs[index];
    let hourly = on_grid(now + TimeDelta::hours(1));
    let Some(rotated_at) = rotated_at else {
        tracing::warn!(job = %scheduled.job.name, "manual job without a secret: set one in the Autotask UI and pipe it to `rotavault import`");
        return (hourly, Plan::Look);
    };
    runtime.notice_manual(scheduled, rotated_at, now);
    let mut at = hourly;
    if let (Some(max_age), Some(lead)) = (scheduled.max_age, scheduled.warn_before) {
        let expires = rotated_at + delta(max_age);
        let warn_from = expires - delta(lead);
        at = [warn_from, expires].into_iter().find(|t| *t > now).unwrap_or(hourly);
    }
    match heartbeat_before(scheduled, plan, done, at, now) {
        Some(beat) => (beat, Plan::Heartbeat),
        None => (at, Plan::Look),
    }
}

/// `every`, up to a tenth earlier at random: jobs verified together drift apart, and none waits longer.
pub(super) fn jittered(every: Duration) -> Duration {
    every.mul_f64(1.0 - crate::retry::random_fraction() / 10.0)
}

/// The first heartbeat since start-up: one interval after the last verify, or, when that is past or unknown, at a
/// random point of the next interval, so that 10,000 jobs started together are not all verified at once.
fn first_heartbeat(last: Option<DateTime<Utc>>, every: Duration, now: DateTime<Utc>) -> DateTime<Utc> {
    match last.map(|at| at + delta(jittered(every))) {
        Some(at) if at > now => at,
        _ => now + delta(every.mul_f64(crate::retry::random_fraction())),
    }
}

pub(super) fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::hours(1))
}

/// `t` rounded up to the next multiple of [`LOOK_GRID`] seconds.
fn on_grid(t: DateTime<Utc>) -> DateTime<Utc> {
    let up = t.timestamp().div_euclid(LOOK_GRID) * LOOK_GRID + LOOK_GRID;
    DateTime::from_timestamp(up, 0).unwrap_or(t)
}

fn retry_delay(failures: u32) -> TimeDelta {
    let d = FIRST_RETRY.saturating_mul(2u32.saturating_pow(failures.saturating_sub(1))).min(MAX_RETRY);
    delta(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heartbeat_comes_at_most_one_interval_after_the_last_verify_and_never_in_the_past() {
        let now = Utc::now();
        let every = Duration::from_secs(3600);
        for _ in 0..200 {
            let recent = now - TimeDelta::minutes(10);
            let at = first_heartbeat(Some(recent), every, now);
            assert!(at > recent + TimeDelta::minutes(53) && at <= recent + TimeDelta::hours(1), "{at}");
            // Unknown or long past (the daemon was down): spread over the next interval, not all at once.
            for last in [None, Some(now - TimeDelta::days(3))] {
                let at = first_heartbeat(last, every, now);
                assert!(at >= now && at <= now + TimeDelta::hours(1), "{at}");
            }
        }
        let spread: std::collections::BTreeSet<_> =
            (0..50).map(|_| first_heartbeat(None, every, now).timestamp() / 60).collect();
        assert!(spread.len() > 10, "jobs started together are spread: {spread:?}");
    }
}
