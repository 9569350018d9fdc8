//! An engine for targets that run real programs or call a real server (the `command` and `webhook` tests): real
//! time, since a paused clock would fire every timeout while a child process or a socket is waited on; one memory
//! store; and, for what must wait for the apply horizon, the engine a restarted rotavault would be, its clock an
//! hour later.

use chrono::{TimeZone, Utc};
use rotavault::retry::Backoff;
use rotavault::rotation::state::StateDir;
use rotavault::rotation::{Engine, Job, JobStore, Settings};
use rotavault::schedule::TokioClock;
use rotavault::secret::SecretPolicy;
use rotavault::store::SecretRef;
use rotavault::store::memory::MemoryStore;
use rotavault::target::Target;
use std::sync::Arc;
use std::time::Duration;

pub struct EngineRig {
    pub engine: Engine,
    pub states: StateDir,
    pub store: Arc<MemoryStore>,
    settings: Settings,
    _dir: tempfile::TempDir,
}

fn start() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 3, 0, 0).single().expect("date")
}

impl EngineRig {
    /// No settle delay, three verifies, a lockout cap of 10; an apply that did not happen is sent `attempts` times.
    pub fn new(attempts: u32) -> EngineRig {
        let settings = Settings {
            settle: Duration::ZERO,
            verify_attempts: 3,
            verify_backoff: Duration::from_millis(10),
            call_timeout: Duration::from_secs(10),
            apply_horizon: None,
            max_failed_logins: 10,
            failed_login_window: None,
            backoff: Backoff { attempts, first: Duration::from_millis(10), max: Duration::from_secs(5) },
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let states = StateDir::new(dir.path());
        let clock = Arc::new(TokioClock::starting_at(start()));
        let engine = Engine::new(settings.clone(), clock, states.clone(), true);
        EngineRig { engine, states, store: Arc::new(MemoryStore::new()), settings, _dir: dir }
    }

    /// A job `name` on `target`, its secret in the rig's store.
    pub fn job_on(&self, name: &str, target: Arc<dyn Target>) -> Job {
        let secret = SecretRef::new(format!("{}/{name}", target.kind()), name);
        Job {
            name: name.into(),
            target,
            stores: vec![JobStore { label: "memory".into(), store: self.store.clone(), secret }],
            policy: SecretPolicy::default(),
        }
    }

    /// An engine over the same state whose clock reads an hour later: past any apply horizon.
    pub fn an_hour_later(&self) -> Engine {
        let clock = Arc::new(TokioClock::starting_at(start() + chrono::Duration::hours(1)));
        Engine::new(self.settings.clone(), clock, self.states.clone(), true)
    }
}

/// The job's current value.
pub async fn current(job: &Job) -> Option<String> {
    let js = &job.stores[0];
    js.store.current(&js.secret).await.expect("current").map(|s| s.value.expose().to_owned())
}

/// The job's pending value.
pub async fn pending(job: &Job) -> Option<String> {
    let js = &job.stores[0];
    js.store.pending(&js.secret).await.expect("pending").map(|p| p.value.expose().to_owned())
}
