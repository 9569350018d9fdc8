//! What `/healthz` and `/readyz` answer from: the scheduler's heartbeat, how many jobs have finished start-up
//! recovery, and each store's last answer to `Store::check` (asked at start and every [`STORE_CHECK_EVERY`] by
//! the daemon, never per request, so a probe cannot hammer a store).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// How often the scheduler stamps its heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// A heartbeat older than this means the scheduler is stalled: six missed beats, so one slow tick is not an alarm.
pub const HEARTBEAT_STALE: Duration = Duration::from_secs(30);
/// How often every store is asked whether it answers.
pub const STORE_CHECK_EVERY: Duration = Duration::from_secs(60);

/// A store's last check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreCheck {
    NotYet,
    Ok,
    /// The store's error, which names a backend and a reason, never a value.
    Failed(String),
}

#[derive(Debug)]
pub struct Health {
    heartbeat: Mutex<Option<Instant>>,
    jobs: usize,
    recovered: AtomicUsize,
    stores: Mutex<BTreeMap<String, StoreCheck>>,
    /// A replica standing by runs no jobs, so it is ready without their start-up.
    standby: AtomicBool,
}

impl Health {
    pub fn new(jobs: usize, stores: impl IntoIterator<Item = String>) -> Self {
        Self {
            heartbeat: Mutex::new(None),
            jobs,
            recovered: AtomicUsize::new(0),
            stores: Mutex::new(stores.into_iter().map(|s| (s, StoreCheck::NotYet)).collect()),
            standby: AtomicBool::new(false),
        }
    }

    /// Whether this replica stands by (another holds the lease); from leading on, readiness waits for the jobs'
    /// start-up again.
    pub fn set_standby(&self, standby: bool) {
        self.standby.store(standby, Ordering::Relaxed);
    }

    pub fn standby(&self) -> bool {
        self.standby.load(Ordering::Relaxed)
    }

    pub fn beat(&self) {
        *self.heartbeat.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    /// When the scheduler last stamped its heartbeat (for `/healthz` and a watchdog).
    pub fn last_beat(&self) -> Option<Instant> {
        *self.heartbeat.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Err` says why the scheduler is not alive.
    pub fn alive(&self) -> Result<Duration, String> {
        match self.last_beat() {
            None => Err("the scheduler has not started".into()),
            Some(at) => {
                let age = at.elapsed();
                if age > HEARTBEAT_STALE {
                    Err(format!("the scheduler's last heartbeat was {}s ago", age.as_secs()))
                } else {
                    Ok(age)
                }
            }
        }
    }

    /// A job is scheduled: read, and recovered first if something was pending (settled, or failed and logged).
    pub fn recovered(&self) {
        self.recovered.fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_store(&self, store: &str, check: StoreCheck) {
        self.stores.lock().unwrap_or_else(|p| p.into_inner()).insert(store.to_owned(), check);
    }

    pub fn stores(&self) -> BTreeMap<String, StoreCheck> {
        self.stores.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Every reason the daemon is not ready; empty when it is.
    pub fn not_ready(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        let recovered = self.recovered.load(Ordering::Relaxed);
        if recovered < self.jobs && !self.standby() {
            reasons.push(format!("start-up has scheduled {recovered} of {} jobs", self.jobs));
        }
        for (store, check) in self.stores() {
            match check {
                StoreCheck::Ok => {}
                StoreCheck::NotYet => reasons.push(format!("store `{store}` has not been checked yet")),
                StoreCheck::Failed(e) => reasons.push(format!("store `{store}` failed its last check: {e}")),
            }
        }
        reasons
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_heartbeat_older_than_thirty_seconds_is_not_alive() {
        let health = Health::new(0, []);
        assert!(health.alive().is_err(), "no beat yet");
        health.beat();
        tokio::time::advance(HEARTBEAT_STALE).await;
        assert!(health.alive().is_ok());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(health.alive(), Err("the scheduler's last heartbeat was 31s ago".into()));
    }

    #[test]
    fn readiness_waits_for_every_jobs_recovery_and_every_stores_check() {
        let health = Health::new(2, ["mem".to_owned()]);
        health.recovered();
        health.set_store("mem", StoreCheck::Failed("denied".into()));
        assert_eq!(
            health.not_ready(),
            ["start-up has scheduled 1 of 2 jobs", "store `mem` failed its last check: denied"]
        );
        health.recovered();
        health.set_store("mem", StoreCheck::Ok);
        assert!(health.not_ready().is_empty());
    }
}
