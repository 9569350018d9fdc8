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

mod plan;
mod work;

use super::Daemon;
use super::health::HEARTBEAT_EVERY;
use crate::rotation::RotationError;
use crate::rotation::state::JobState;
use crate::runtime::JobSummaries;
use crate::schedule::DueReason;
use chrono::{DateTime, Utc};
use plan::{delta, jittered, next_plan};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
pub(super) use work::log_failure;
use work::work_on;

/// How many jobs start-up reads at once (four chunks of a store's batch read).
const START_SLICE: usize = 1024;
/// How many work tasks (rotations, recoveries, batch reads) run at once.
const WORKERS: usize = 8;
/// How long a job another process is rotating is left alone before it is planned again.
const BUSY_RETRY: Duration = Duration::from_secs(2);

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
