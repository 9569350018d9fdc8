//! The scheduler: one task and one timer for every job.
//!
//! At start-up every store is read once for all jobs ([`Runtime::summaries`]) and every job state once. A job
//! whose stores hold a pending value (or could not say, or whose state records a sent apply) goes through
//! start-up recovery first; every other job is planned at once. A job's plan is a due time and what to do then
//! (rotate, for a reason; or look again), kept in one priority queue. The task sleeps until the earliest due time
//! (the clock wakes it at most once a minute to notice a wall-clock jump, whatever the number of jobs), hands what
//! is due to at most [`WORKERS`] work tasks at a time, and plans each job again when its work ends, from what the
//! work read back. So an idle job costs a heap entry and a few counters, and no wake-up of its own; 10,000 jobs
//! due at once are rotated eight at a time, not all at once.
//!
//! The age comes from the stores; when it cannot be read, the job is looked at again later, and never rotated on
//! a guess. A failed rotation is retried with a growing back-off; the job stays due, so nothing is forgotten. A
//! diverged job is looked at every few minutes, to notice `rotavault resolve`. Looks are rounded up to a
//! [`LOOK_GRID`], so that many jobs looking again share one wake-up and one batch read.
//!
//! The shutdown token stops scheduling; a rotation in flight stops cleanly before Apply or runs to its end after
//! it (see `Engine::with_shutdown`). systemd's `READY=1` is sent when every job has been planned.

use super::Daemon;
use super::health::HEARTBEAT_EVERY;
use crate::rotation::state::JobState;
use crate::rotation::{RotationError, Trigger};
use crate::runtime::{JobSummaries, Runtime};
use crate::schedule::DueReason;
use chrono::{DateTime, TimeDelta, Utc};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::Instrument;

/// How many jobs start-up reads at once (four chunks of a store's batch read).
const START_SLICE: usize = 1024;
/// How many work tasks (rotations, recoveries, batch reads) run at once.
const WORKERS: usize = 8;
/// How long a job that failed waits before the next try, at most.
const MAX_RETRY: Duration = Duration::from_secs(3600);
const FIRST_RETRY: Duration = Duration::from_secs(30);
/// How long a job another process is rotating is left alone before it is planned again.
const BUSY_RETRY: Duration = Duration::from_secs(2);
/// How often a diverged job's mark is looked at again, to notice `rotavault resolve`.
const DIVERGED_RECHECK: Duration = Duration::from_secs(300);
/// Looks are rounded up to a multiple of this many seconds.
const LOOK_GRID: i64 = 30;

/// Spawns the heartbeat and the scheduler on the daemon's tracker.
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
    let replans = daemon.replans.lock().unwrap_or_else(|p| p.into_inner()).take();
    let Some(replans) = replans else {
        tracing::error!("the scheduler was started twice; the second is not run");
        return;
    };
    let daemon = daemon.clone();
    daemon.tracker.clone().spawn(async move {
        // A standby runs no job until its replica holds the lease.
        if let Some(leading) = daemon.runtime.leading.clone()
            && !leading.is_cancelled()
        {
            daemon.health.set_standby(true);
            daemon.startup.standing_by();
            tokio::select! {
                () = leading.cancelled() => {}
                () = daemon.shutdown.cancelled() => return,
            }
            daemon.health.set_standby(false);
        }
        Scheduler::new(daemon, replans).run().await
    });
}

/// What a job does when it is due.
#[derive(Clone, Debug)]
enum Plan {
    /// Rotate, for this reason.
    Rotate(Reason),
    /// Read the job's state and stores again, then plan it: it is diverged, its age could not be read, or
    /// another process was rotating it.
    Look,
    /// Verify the stored value and compare the stores (the drift heartbeat).
    Heartbeat,
}

#[derive(Clone, Debug)]
enum Reason {
    Due(DueReason),
    /// An apply was sent and its value is not settled yet: settle it once its apply horizon has passed.
    Settle,
}

impl Reason {
    fn trigger(&self) -> String {
        match self {
            Reason::Due(reason) => reason.to_string(),
            Reason::Settle => "settle the value whose apply was sent: its apply horizon has passed".into(),
        }
    }
}

/// What the scheduler keeps of one job.
#[derive(Default)]
struct JobPlan {
    /// Bumped at every new plan: a heap entry with an older epoch is stale and skipped.
    epoch: u32,
    next: Option<Plan>,
    /// Work for the job is queued or running: it is planned again when that ends, not before.
    busy: bool,
    /// A rotation started elsewhere ended while work was running: look again once it ends.
    look_after: bool,
    /// Planned at least once (start-up is over for it).
    started: bool,
    /// Failed rotations in a row, for the back-off.
    failures: u32,
    /// Evaluations in a row that could not read the secret's age.
    unread: u32,
    /// When the next heartbeat is due, once worked out: kept across plans, so that a look does not move it.
    heartbeat_at: Option<DateTime<Utc>>,
}

/// A piece of work handed to a work task.
enum Work {
    Recover(usize),
    Rotate(usize, Reason),
    Look(Vec<usize>),
    Heartbeat(usize),
}

/// What a work task did to a job, and what it read back.
struct Done {
    index: usize,
    did: Did,
    state: Result<JobState, String>,
    summaries: JobSummaries,
}

enum Did {
    Recovered,
    Rotated(Result<(), RotationError>),
    /// A rotation started over HTTP holds the job; it asks for a new plan when it ends.
    Skipped,
    Looked,
    /// A heartbeat ran (or found the job held by a rotation over HTTP).
    Heartbeat,
}

struct Scheduler {
    daemon: Arc<Daemon>,
    plans: Vec<JobPlan>,
    heap: BinaryHeap<Reverse<(DateTime<Utc>, u32, u32)>>,
    queue: VecDeque<Work>,
    running: usize,
    done_tx: mpsc::UnboundedSender<Vec<Done>>,
    done_rx: mpsc::UnboundedReceiver<Vec<Done>>,
    replans: mpsc::UnboundedReceiver<usize>,
    /// Jobs not planned yet (start-up).
    unplanned: usize,
}

impl Scheduler {
    fn new(daemon: Arc<Daemon>, replans: mpsc::UnboundedReceiver<usize>) -> Self {
        let jobs = daemon.runtime.jobs.len();
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Self {
            daemon,
            plans: (0..jobs).map(|_| JobPlan::default()).collect(),
            heap: BinaryHeap::with_capacity(jobs),
            queue: VecDeque::new(),
            running: 0,
            done_tx,
            done_rx,
            replans,
            unplanned: jobs,
        }
    }

    async fn run(mut self) {
        let daemon = self.daemon.clone();
        let runtime = &*daemon.runtime;
        let all: Vec<usize> = (0..runtime.jobs.len()).collect();
        // A slice of the jobs at a time: what was read of one is planned and dropped before the next is read, so
        // start-up's peak memory does not grow with the number of jobs.
        for slice in all.chunks(START_SLICE) {
            let read = async { tokio::join!(runtime.summaries(slice), runtime.job_states(slice)) };
            let (summaries, states) = tokio::select! {
                read = read => read,
                () = daemon.shutdown.cancelled() => return,
            };
            let now = runtime.engine.clock().now();
            for ((&index, summaries), state) in slice.iter().zip(summaries).zip(states) {
                let unsettled = match &state {
                    Ok(state) => state.apply_intent.is_some(),
                    Err(_) => true,
                };
                if unsettled || summaries.may_be_pending() {
                    self.plans[index].busy = true;
                    self.queue.push_back(Work::Recover(index));
                } else {
                    self.plan(Done { index, did: Did::Looked, state, summaries }, now, false);
                }
            }
        }
        loop {
            self.dispatch();
            let clock = runtime.engine.clock().clone();
            let earliest = self.heap.peek().map(|Reverse((at, _, _))| *at);
            let sleep = async {
                match earliest {
                    Some(at) => clock.sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = daemon.shutdown.cancelled() => return,
                Some(done) = self.done_rx.recv() => {
                    self.running -= 1;
                    let now = runtime.engine.clock().now();
                    for done in done {
                        self.plan(done, now, true);
                    }
                }
                Some(index) = self.replans.recv() => self.look_soon(index),
                () = sleep => {}
            }
        }
    }

    /// Queues what is due and starts work while fewer than [`WORKERS`] run.
    fn dispatch(&mut self) {
        let now = self.daemon.runtime.engine.clock().now();
        let mut looks = Vec::new();
        while let Some(&Reverse((at, index, epoch))) = self.heap.peek() {
            if at > now {
                break;
            }
            self.heap.pop();
            let plan = &mut self.plans[index as usize];
            if plan.epoch != epoch || plan.busy {
                continue;
            }
            match plan.next.take() {
                Some(Plan::Rotate(reason)) => {
                    plan.busy = true;
                    self.queue.push_back(Work::Rotate(index as usize, reason));
                }
                Some(Plan::Look) => {
                    plan.busy = true;
                    looks.push(index as usize);
                }
                Some(Plan::Heartbeat) => {
                    plan.busy = true;
                    self.queue.push_back(Work::Heartbeat(index as usize));
                }
                None => {}
            }
        }
        if !looks.is_empty() {
            self.queue.push_back(Work::Look(looks));
        }
        while self.running < WORKERS
            && let Some(work) = self.queue.pop_front()
        {
            self.running += 1;
            let (daemon, done) = (self.daemon.clone(), self.done_tx.clone());
            // Not cut off at shutdown: a rotation stops at its own safe point (the engine watches the token), and
            // one past Apply runs to its end.
            self.daemon.tracker.spawn(async move {
                let result = work_on(&daemon, work).await;
                // The scheduler has gone only if the daemon is stopping.
                let _ = done.send(result);
            });
        }
    }

    /// A rotation this scheduler did not start has ended: read the job again now.
    fn look_soon(&mut self, index: usize) {
        let Some(plan) = self.plans.get_mut(index) else { return };
        if plan.busy {
            plan.look_after = true;
            return;
        }
        plan.epoch = plan.epoch.wrapping_add(1);
        plan.next = Some(Plan::Look);
        let now = self.daemon.runtime.engine.clock().now();
        self.heap.push(Reverse((now, index as u32, plan.epoch)));
    }

    /// Plans a job from what its work did and read back. `log` says the plan is worth an info line (after work,
    /// not for each of 10,000 jobs at start-up).
    fn plan(&mut self, done: Done, now: DateTime<Utc>, log: bool) {
        let daemon = &*self.daemon;
        let runtime = &*daemon.runtime;
        let index = done.index;
        let name = &runtime.jobs[index].job.name;
        let plan = &mut self.plans[index];
        plan.busy = false;
        match &done.did {
            Did::Rotated(Ok(())) => plan.failures = 0,
            Did::Rotated(Err(RotationError::ShutDown { .. })) => return,
            Did::Rotated(Err(RotationError::Busy(_))) => {}
            Did::Rotated(Err(_)) => plan.failures = plan.failures.saturating_add(1),
            Did::Recovered | Did::Skipped | Did::Looked | Did::Heartbeat => {}
        }
        // A value was just verified (or a heartbeat tried): the next heartbeat is one interval on.
        if matches!(done.did, Did::Heartbeat | Did::Rotated(Ok(())))
            && let Some(every) = runtime.jobs[index].heartbeat
        {
            plan.heartbeat_at = Some(now + delta(jittered(every)));
        }
        let (at, next) = if std::mem::take(&mut plan.look_after) {
            (now, Plan::Look)
        } else if let Did::Rotated(Err(RotationError::Busy(_))) = &done.did {
            // Another process holds the job: it is doing the work, and the plan after it reads what it wrote.
            (now + delta(BUSY_RETRY), Plan::Look)
        } else {
            next_plan(runtime, index, plan, &done, now)
        };
        if let Plan::Rotate(reason) = &next
            && at > now
        {
            if log {
                tracing::info!(job = %name, next = %at, reason = %reason.trigger(), "next rotation");
            } else {
                tracing::debug!(job = %name, next = %at, reason = %reason.trigger(), "next rotation");
            }
        }
        plan.epoch = plan.epoch.wrapping_add(1);
        plan.next = Some(next);
        self.heap.push(Reverse((at, index as u32, plan.epoch)));
        if !std::mem::replace(&mut plan.started, true) {
            daemon.health.recovered();
            daemon.startup.recovered(); // systemd: READY=1 once the last job is planned
            self.unplanned -= 1;
            if self.unplanned == 0 {
                let first =
                    self.heap.peek().map(|Reverse((at, i, _))| (*at, &runtime.jobs[*i as usize].job.name));
                match first {
                    Some((at, job)) => {
                        tracing::info!(jobs = runtime.jobs.len(), next = %at, next_job = %job, "every job is scheduled")
                    }
                    None => tracing::info!(jobs = 0, "every job is scheduled"),
                }
            }
        }
    }
}

/// When and what a job does next, from its state and what its stores hold.
fn next_plan(
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
        && let (Some(rotated_at), Some(max_age)) = (rotated_at, scheduled.max_age)
    {
        let lead = runtime.config.warn_before(max_age);
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
fn jittered(every: Duration) -> Duration {
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

/// Does one piece of work and reads back what each job it touched now holds.
async fn work_on(daemon: &Arc<Daemon>, work: Work) -> Vec<Done> {
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

fn delta(d: Duration) -> TimeDelta {
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

pub(super) fn log_failure(job: &str, e: &RotationError) {
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
