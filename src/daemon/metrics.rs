//! `/metrics`: Prometheus text through the official `prometheus-client`. Counters the daemon keeps (rotations by
//! job and outcome, their duration by target) live here; everything else is read when scraped: job state, age,
//! max age and next due time from [`crate::status::statuses`] (a few figures per job, cached for
//! [`STATUS_TTL`]), store calls from the `Instrumented` wrappers, failed logins from the lockout guard, target
//! requests and the hourly budget from each Autotask tenant, notification deliveries from each sink's counters.
//!
//! Every label value is a name from the config (job, store, account, target, sink), a call name, an endpoint, an
//! HTTP status or an error kind: never a value, and never more series than the config and those fixed sets allow.

use crate::rotation::{Heartbeat, RotationError};
use crate::runtime::Runtime;
use crate::status::JobStatus;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How long a scrape reuses the job statuses of the one before, so a tight scrape interval does not turn into a
/// read of every store per scrape.
pub const STATUS_TTL: Duration = Duration::from_secs(30);

/// The content type of what [`Metrics::render`] writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every state `status` can give a job, so `rotavault_job_state` has a 0 or 1 series for each.
const STATES: [&str; 7] = ["ok", "pending", "failed", "diverged", "blocked", "drifted", "never"];

type Labels = Vec<(&'static str, String)>;

/// Adds more metrics to each scrape: for what other parts of the daemon count (notification deliveries).
pub type Collector = Box<dyn Fn(&mut Registry) + Send + Sync>;

pub struct Metrics {
    rotations: Family<Labels, Counter>,
    heartbeats: Family<Labels, Counter>,
    duration: Family<Labels, Histogram, fn() -> Histogram>,
    collectors: Mutex<Vec<Collector>>,
    /// The figures of the last status read, one per job in `runtime.jobs` order: a few numbers each, so that
    /// holding them between scrapes costs little at 10,000 jobs.
    statuses: Mutex<Option<(Instant, Arc<Vec<JobFigures>>)>>,
    /// Moves on with every rotation, so a status read while one ran is not cached past its end.
    epoch: AtomicU64,
}

/// What the metrics show of a job's status.
pub struct JobFigures {
    state: &'static str,
    hook_failed: bool,
    last_rotation: Option<i64>,
    last_verify: Option<i64>,
    next_due: Option<i64>,
}

impl From<JobStatus> for JobFigures {
    fn from(status: JobStatus) -> Self {
        Self {
            state: status.state,
            hook_failed: status.hook_failure.is_some(),
            last_rotation: status.last_rotation.map(|at| at.timestamp()),
            last_verify: status.last_verify.map(|at| at.timestamp()),
            next_due: status.next_due.map(|at| at.timestamp()),
        }
    }
}

fn duration_histogram() -> Histogram {
    // 0.25 s to about 17 min: a rotation is seconds, one that waits on a slow target or back-off is minutes.
    Histogram::new(exponential_buckets(0.25, 2.0, 13))
}

impl Metrics {
    pub fn new(runtime: &Runtime) -> Self {
        let rotations = Family::<Labels, Counter>::default();
        // Present from the start, so a rate() over a job that has not rotated yet is 0, not absent.
        for scheduled in &runtime.jobs {
            let _ =
                rotations.get_or_create(&vec![("job", scheduled.job.name.clone()), ("outcome", "ok".into())]);
        }
        Self {
            rotations,
            heartbeats: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            collectors: Mutex::new(Vec::new()),
            statuses: Mutex::new(None),
            epoch: AtomicU64::new(0),
        }
    }

    /// Counts one rotation of `job`: `ok`, or the error's kind.
    /// The duration goes into one histogram per target, not per job: thirteen buckets for each of 10,000 jobs
    /// would be memory here and series in Prometheus for little more than the target's figure says.
    pub fn rotation(&self, job: &str, target: &str, error: Option<&RotationError>, took: Duration) {
        let outcome = error.map_or("ok", RotationError::metric_label);
        self.rotations.get_or_create(&vec![("job", job.to_owned()), ("outcome", outcome.into())]).inc();
        self.duration.get_or_create(&vec![("target", target.to_owned())]).observe(took.as_secs_f64());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        *self.statuses.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Counts one heartbeat of `job`: `ok`, `drift` (a store differs), `skipped`, or the error's kind.
    pub fn heartbeat(&self, job: &str, result: &Result<Heartbeat, RotationError>) {
        let outcome = match result {
            Ok(Heartbeat::Verified { drift }) if drift.is_empty() => "ok",
            Ok(Heartbeat::Verified { .. }) => "drift",
            Ok(Heartbeat::Skipped(_)) => "skipped",
            Err(e) => e.metric_label(),
        };
        self.heartbeats.get_or_create(&vec![("job", job.to_owned()), ("outcome", outcome.into())]).inc();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        *self.statuses.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    pub fn add_collector(&self, collector: Collector) {
        self.collectors.lock().unwrap_or_else(|p| p.into_inner()).push(collector);
    }

    /// The exposition text of everything, as of now.
    pub async fn render(&self, runtime: &Runtime) -> String {
        let mut registry = Registry::with_prefix("rotavault");
        registry.register(
            "build",
            "The running rotavault",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION").to_owned())]),
        );
        registry.register(
            "rotations",
            "Rotations by job and outcome (ok, or the error's kind)",
            self.rotations.clone(),
        );
        registry.register(
            "heartbeats",
            "Drift heartbeats by job and outcome (ok, drift, skipped, or the error's kind)",
            self.heartbeats.clone(),
        );
        registry.register_with_unit(
            "rotation_duration",
            "How long each rotation took, by target",
            prometheus_client::registry::Unit::Seconds,
            self.duration.clone(),
        );
        let leading: Gauge = Gauge::default();
        leading.set(i64::from(runtime.leading.as_ref().is_none_or(|l| l.is_cancelled())));
        registry.register(
            "leading",
            "1 when this process runs the jobs (it holds the Kubernetes Lease, or there is none); 0 on a standby",
            leading,
        );
        self.register_jobs(&mut registry, runtime).await;
        register_stores(&mut registry, runtime);
        register_logins(&mut registry, runtime);
        register_targets(&mut registry, runtime);
        register_notifications(&mut registry, runtime);
        for collector in self.collectors.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            collector(&mut registry);
        }
        let mut text = String::new();
        if let Err(e) = encode(&mut text, &registry) {
            tracing::error!(error = %e, "metrics cannot be encoded");
        }
        text
    }

    async fn register_jobs(&self, registry: &mut Registry, runtime: &Runtime) {
        let cached = match &*self.statuses.lock().unwrap_or_else(|p| p.into_inner()) {
            Some((at, statuses)) if at.elapsed() < STATUS_TTL => Some(statuses.clone()),
            _ => None,
        };
        let statuses = match cached {
            Some(statuses) => statuses,
            None => self.read_statuses(runtime).await,
        };
        let now = runtime.engine.clock().now();
        let state = Family::<Labels, Gauge>::default();
        let last_success = Family::<Labels, Gauge>::default();
        let age = Family::<Labels, Gauge>::default();
        let max_age = Family::<Labels, Gauge>::default();
        let next_due = Family::<Labels, Gauge>::default();
        let last_verify = Family::<Labels, Gauge>::default();
        let hook_failed = Family::<Labels, Gauge>::default();
        for (scheduled, figures) in runtime.jobs.iter().zip(statuses.iter()) {
            let name = &scheduled.job.name;
            let job = || vec![("job", name.clone())];
            hook_failed.get_or_create(&job()).set(i64::from(figures.hook_failed));
            for state_name in STATES {
                let gauge = state.get_or_create(&vec![("job", name.clone()), ("state", state_name.into())]);
                gauge.set(i64::from(figures.state == state_name));
            }
            if let Some(at) = figures.last_rotation {
                last_success.get_or_create(&job()).set(at);
                // Now, not the cached status's time: the age grows between refreshes.
                age.get_or_create(&job()).set((now.timestamp() - at).max(0));
            }
            if let Some(at) = figures.next_due {
                next_due.get_or_create(&job()).set(at);
            }
            if let Some(at) = figures.last_verify {
                last_verify.get_or_create(&job()).set(at);
            }
        }
        for scheduled in &runtime.jobs {
            if let Some(limit) = scheduled.max_age {
                let seconds = i64::try_from(limit.as_secs()).unwrap_or(i64::MAX);
                max_age.get_or_create(&vec![("job", scheduled.job.name.clone())]).set(seconds);
            }
        }
        registry.register(
            "job_state",
            "1 for the job's state (as `status` shows it), 0 for the others",
            state,
        );
        registry.register(
            "hook_failed",
            "1 while a reload hook of the job's latest rotation has failed (the rotation stands), else 0",
            hook_failed,
        );
        registry.register_with_unit(
            "last_rotation_timestamp",
            "When the job's current secret was rotated (the oldest among its stores), Unix time",
            prometheus_client::registry::Unit::Seconds,
            last_success,
        );
        registry.register_with_unit(
            "secret_age",
            "Age of the job's current secret",
            prometheus_client::registry::Unit::Seconds,
            age,
        );
        registry.register_with_unit(
            "secret_max_age",
            "The job's max_age",
            prometheus_client::registry::Unit::Seconds,
            max_age,
        );
        registry.register_with_unit(
            "last_verify_timestamp",
            "When the target last accepted the job's stored value (a heartbeat, or a rotation's verify), Unix time",
            prometheus_client::registry::Unit::Seconds,
            last_verify,
        );
        registry.register_with_unit(
            "next_due_timestamp",
            "When the job is next due, Unix time (absent while it is diverged)",
            prometheus_client::registry::Unit::Seconds,
            next_due,
        );
    }

    /// Every job's status, read afresh (and cached unless a rotation ended meanwhile).
    async fn read_statuses(&self, runtime: &Runtime) -> Arc<Vec<JobFigures>> {
        let epoch = self.epoch.load(Ordering::Acquire);
        let now = runtime.engine.clock().now();
        let all = crate::status::statuses(runtime, now).await;
        let all = Arc::new(all.into_iter().map(JobFigures::from).collect::<Vec<_>>());
        let mut cache = self.statuses.lock().unwrap_or_else(|p| p.into_inner());
        if self.epoch.load(Ordering::Acquire) == epoch {
            *cache = Some((Instant::now(), all.clone()));
        }
        all
    }
}

fn register_stores(registry: &mut Registry, runtime: &Runtime) {
    let calls = Family::<Labels, Counter>::default();
    for (name, store) in &runtime.stores {
        for ((call, status), count) in store.counts() {
            let labels =
                vec![("store", name.clone()), ("call", call.to_owned()), ("status", status.to_owned())];
            calls.get_or_create(&labels).inc_by(count);
        }
    }
    registry.register(
        "store_calls",
        "Store calls by store, call and status (ok, or the error's kind)",
        calls,
    );
}

fn register_logins(registry: &mut Registry, runtime: &Runtime) {
    let lockout = runtime.engine.lockout();
    let accounts: BTreeSet<String> = runtime.jobs.iter().flat_map(|j| j.job.target.accounts()).collect();
    let failed = Family::<Labels, Gauge>::default();
    for account in accounts {
        match lockout.consecutive(&account) {
            Ok(n) => {
                failed.get_or_create(&vec![("account", account)]).set(i64::from(n));
            }
            Err(e) => tracing::warn!(%account, error = %e, "the lockout guard's record cannot be read"),
        }
    }
    registry.register(
        "failed_logins",
        "Consecutive failed or unanswered logins per account, as the lockout guard counts them",
        failed,
    );
    let max: Gauge = Gauge::default();
    max.set(i64::from(lockout.max_failed()));
    registry.register("failed_logins_max", "The lockout guard's max_failed_logins", max);
}

fn register_targets(registry: &mut Registry, runtime: &Runtime) {
    let requests = Family::<Labels, Counter>::default();
    let used = Family::<Labels, Gauge>::default();
    let budget = Family::<Labels, Gauge>::default();
    for (name, tenant) in &runtime.tenants {
        for ((endpoint, status), count) in tenant.request_counts() {
            let labels =
                vec![("target", name.clone()), ("endpoint", endpoint.to_owned()), ("status", status)];
            requests.get_or_create(&labels).inc_by(count);
        }
        let (spent, limit) = tenant.budget_used();
        used.get_or_create(&vec![("target", name.clone())]).set(i64::from(spent));
        budget.get_or_create(&vec![("target", name.clone())]).set(i64::from(limit));
    }
    registry.register(
        "target_requests",
        "Requests to a target by endpoint and status (the HTTP status, or not_sent, lost, over_budget, guard, broken)",
        requests,
    );
    registry.register(
        "autotask_budget_used",
        "Authenticated requests to the Autotask tenant in the last hour, counted against hourly_budget",
        used,
    );
    registry.register("autotask_budget", "The Autotask target's hourly_budget", budget);
}

fn register_notifications(registry: &mut Registry, runtime: &Runtime) {
    let sent = Family::<Labels, Counter>::default();
    for (sink, kind, stats) in runtime.notifier.stats() {
        for (result, count) in
            [("delivered", stats.deliveries()), ("failed", stats.failures()), ("dropped", stats.dropped())]
        {
            let labels =
                vec![("sink", sink.to_owned()), ("kind", kind.to_owned()), ("result", result.to_owned())];
            sent.get_or_create(&labels).inc_by(count);
        }
    }
    registry.register(
        "notifications",
        "Events per notification sink by result: delivered, failed (after every attempt) or dropped (queue full)",
        sent,
    );
}
