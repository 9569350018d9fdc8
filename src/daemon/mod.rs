//! The long-running process (`rotavault run`): the scheduler ([`scheduler`]), the store checks, and the HTTP
//! server ([`http`]: health, metrics, the job API), tied together by one shutdown token and one task tracker, so
//! that a SIGTERM stops them all and [`Started::wait`] returns only when every task, a rotation started over
//! HTTP included, has ended.

pub mod health;
mod http;
pub mod metrics;
pub mod reload;
mod scheduler;
pub mod systemd;

use crate::rotation::{Outcome, RotationError, Trigger};
use crate::runtime::Runtime;
use crate::secret::SecretValue;
use health::{Health, STORE_CHECK_EVERY, StoreCheck};
use metrics::Metrics;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use systemd::{Notifier, Startup};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How often the daemon looks for Autotask zones to refresh.
const ZONE_REFRESH_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Runs only the scheduler, with no HTTP server, until `shutdown`; returns once every job task has stopped.
pub async fn serve(runtime: Arc<Runtime>, shutdown: CancellationToken) {
    let startup = Startup::new(Notifier::default(), runtime.jobs.len());
    let daemon = Arc::new(Daemon::new(runtime, None, shutdown, startup));
    daemon.spawn_scheduler();
    daemon.wait().await;
}

/// Runs the daemon as the config says until `shutdown`; returns once every task has stopped.
pub async fn run(runtime: Arc<Runtime>, shutdown: CancellationToken) -> Result<(), DaemonError> {
    let startup = Startup::new(Notifier::default(), runtime.jobs.len());
    run_telling(runtime, shutdown, startup).await
}

/// [`run`], telling `startup` as each job ends its start-up recovery (systemd's `READY=1` waits for the last):
/// one serving generation of [`reload::serve_reloading`].
pub async fn run_telling(
    runtime: Arc<Runtime>,
    shutdown: CancellationToken,
    startup: Arc<Startup>,
) -> Result<(), DaemonError> {
    let notifier = runtime.notifier.clone();
    start_telling(runtime, shutdown, startup).await?.wait().await;
    // What the sinks still hold is delivered, within a deadline: a stop (or a reload) loses no notice it can send.
    let left = notifier.flush(crate::notify::FLUSH_DEADLINE).await;
    if left > 0 {
        tracing::warn!(left, "notifications not delivered before the stop's deadline");
    }
    Ok(())
}

/// Starts everything (binding the HTTP listener first, so a busy port fails the start) and returns at once.
pub async fn start(runtime: Arc<Runtime>, shutdown: CancellationToken) -> Result<Started, DaemonError> {
    let startup = Startup::new(Notifier::default(), runtime.jobs.len());
    start_telling(runtime, shutdown, startup).await
}

async fn start_telling(
    runtime: Arc<Runtime>,
    shutdown: CancellationToken,
    startup: Arc<Startup>,
) -> Result<Started, DaemonError> {
    let token = match &runtime.config.http.token_file {
        Some(path) => Some(read_token(path)?),
        None => None,
    };
    let listener = match runtime.config.http.listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| DaemonError(format!("cannot listen on {addr} ([http] listen): {e}")))?,
        ),
        None => None,
    };
    let daemon = Arc::new(Daemon::new(runtime, token, shutdown, startup));
    let http = match listener {
        Some(listener) => Some(http::spawn(daemon.clone(), listener)?),
        None => None,
    };
    daemon.spawn_scheduler();
    Ok(Started { daemon, http })
}

/// A started daemon.
pub struct Started {
    daemon: Arc<Daemon>,
    http: Option<SocketAddr>,
}

impl Started {
    /// Where the HTTP server listens, when it does.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http
    }

    pub fn health(&self) -> &Health {
        &self.daemon.health
    }

    /// Waits until every task has ended (after `shutdown`).
    pub async fn wait(self) {
        self.daemon.wait().await;
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DaemonError(pub String);

/// The rotate-now token: the file's text without its trailing newline.
fn read_token(path: &std::path::Path) -> Result<SecretValue, DaemonError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| DaemonError(format!("[http] token_file {}: cannot read it: {e}", path.display())))?;
    let token = SecretValue::new(text.trim_end_matches(['\r', '\n']));
    if token.len() < 16 {
        return Err(DaemonError(format!(
            "[http] token_file {}: the token has {} characters: expected at least 16 (for example 32 random \
             bytes, base64)",
            path.display(),
            token.len()
        )));
    }
    Ok(token)
}

/// What every task of the daemon shares.
pub(crate) struct Daemon {
    runtime: Arc<Runtime>,
    health: Health,
    metrics: Metrics,
    /// Whether each job (in `runtime.jobs` order) is rotating in this process, so the scheduler and rotate-now
    /// never run one job twice at once.
    running: Vec<AtomicBool>,
    /// Tells the scheduler to plan a job again: a rotation it did not start (rotate-now) has ended.
    replan: tokio::sync::mpsc::UnboundedSender<usize>,
    /// The other end, taken by the scheduler when it starts.
    replans: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<usize>>>,
    token: Option<SecretValue>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    /// Told as each job ends its start-up recovery (systemd's `READY=1`).
    startup: Arc<Startup>,
}

/// Held while a job rotates in this process; released on drop.
pub(crate) struct Claim {
    daemon: Arc<Daemon>,
    index: usize,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.daemon.running[self.index].store(false, Ordering::Release);
    }
}

impl Daemon {
    fn new(
        runtime: Arc<Runtime>,
        token: Option<SecretValue>,
        shutdown: CancellationToken,
        startup: Arc<Startup>,
    ) -> Self {
        let health = Health::new(runtime.jobs.len(), runtime.stores.keys().cloned());
        let running = runtime.jobs.iter().map(|_| AtomicBool::new(false)).collect();
        let (replan, replans) = tokio::sync::mpsc::unbounded_channel();
        Self {
            metrics: Metrics::new(&runtime),
            runtime,
            health,
            running,
            replan,
            replans: std::sync::Mutex::new(Some(replans)),
            token,
            tracker: TaskTracker::new(),
            shutdown,
            startup,
        }
    }

    fn spawn_scheduler(self: &Arc<Self>) {
        tracing::info!(jobs = self.runtime.jobs.len(), config = %self.runtime.config.path.display(), "rotavault starting");
        scheduler::spawn(self);
        let daemon = self.clone();
        self.tracker.spawn(async move { daemon.check_stores().await });
        if !self.runtime.tenants.is_empty() {
            let daemon = self.clone();
            self.tracker.spawn(async move {
                // Only the replica that runs the jobs looks zones up.
                if let Some(leading) = &daemon.runtime.leading {
                    tokio::select! {
                        () = leading.cancelled() => {}
                        () = daemon.shutdown.cancelled() => return,
                    }
                }
                daemon.refresh_zones().await
            });
        }
    }

    async fn wait(&self) {
        self.tracker.close();
        self.tracker.wait().await;
        tracing::info!("rotavault stopped");
    }

    fn index(&self, job: &str) -> Option<usize> {
        self.runtime.jobs.iter().position(|j| j.job.name == job)
    }

    /// Claims job `index` for a rotation in this process; `None` when one is running.
    fn claim(self: &Arc<Self>, index: usize) -> Option<Claim> {
        self.running[index]
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
            .then(|| Claim { daemon: self.clone(), index })
    }

    /// Rotates a claimed job through the engine, and counts it.
    async fn rotate(&self, claim: &Claim, trigger: Trigger) -> Result<Outcome, RotationError> {
        let scheduled = &self.runtime.jobs[claim.index];
        let job = &scheduled.job;
        let started = tokio::time::Instant::now();
        let result = self.runtime.engine.rotate(job, trigger).await;
        self.metrics.rotation(&job.name, &scheduled.target, result.as_ref().err(), started.elapsed());
        result
    }

    /// Looks up again, every [`ZONE_REFRESH_EVERY`], the Autotask zones that are half their lifetime old, so that
    /// no rotation has to.
    async fn refresh_zones(&self) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(ZONE_REFRESH_EVERY) => {}
                () = self.shutdown.cancelled() => return,
            }
            for tenant in self.runtime.tenants.values() {
                tokio::select! {
                    _ = tenant.refresh_zones() => {}
                    () = self.shutdown.cancelled() => return,
                }
            }
        }
    }

    /// Asks every store whether it answers, at start and every [`STORE_CHECK_EVERY`], for `/readyz`.
    async fn check_stores(&self) {
        loop {
            for (name, store) in &self.runtime.stores {
                let timeout = self.runtime.engine.settings().call_timeout;
                let check =
                    match tokio::time::timeout(timeout, crate::store::Store::check(store.as_ref())).await {
                        Ok(Ok(())) => StoreCheck::Ok,
                        Ok(Err(e)) => StoreCheck::Failed(e.to_string()),
                        Err(_) => StoreCheck::Failed(format!(
                            "no answer within {}",
                            humantime::format_duration(timeout)
                        )),
                    };
                if let StoreCheck::Failed(e) = &check {
                    tracing::warn!(store = %name, error = %e, "store check failed");
                }
                self.health.set_store(name, check);
            }
            tokio::select! {
                () = tokio::time::sleep(STORE_CHECK_EVERY) => {}
                () = self.shutdown.cancelled() => return,
            }
        }
    }
}
