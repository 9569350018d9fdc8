//! The daemon's scheduling loop (`cli::run::serve`) over simulated days, with tokio's paused clock: jobs rotate
//! exactly when their schedule and age policy say, a fire missed while the daemon was down runs once at start-up,
//! and shutdown stops every job task.

use chrono::{DateTime, TimeZone, Utc};
use rotavault::cli::run::serve;
use rotavault::runtime::Runtime;
use rotavault::schedule::TokioClock;
use rotavault::secret::SecretValue;
use rotavault::store::Metadata;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 0, 30, 0).single().expect("date")
}

async fn runtime(dir: &std::path::Path, shutdown: &CancellationToken) -> Arc<Runtime> {
    let source = format!(
        r#"
state_dir = "{}"

[stores.mem]
kind = "memory"

[targets.shared]
kind = "generated"

[jobs.hourly]
target = "shared"
stores = [ {{ store = "mem", name = "hourly" }} ]
schedule = "0 * * * *"

[jobs.aged]
target = "shared"
stores = [ {{ store = "mem", name = "aged" }} ]
max_age = "6h"
"#,
        dir.join("state").display()
    );
    let config = rotavault::config::parse(&source, &dir.join("config.toml")).expect("valid config");
    let clock = Arc::new(TokioClock::starting_at(start()));
    Arc::new(Runtime::build(config, clock, shutdown.clone()).await.expect("runtime"))
}

async fn generation(runtime: &Runtime, job: &str) -> u64 {
    let js = &runtime.job(job).expect("job").job.stores[0];
    js.store.current(&js.secret).await.expect("read").map_or(0, |s| s.metadata.generation)
}

#[tokio::test(start_paused = true)]
async fn jobs_rotate_on_their_schedule_and_age_over_a_simulated_day() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shutdown = CancellationToken::new();
    let runtime = runtime(dir.path(), &shutdown).await;
    let daemon = tokio::spawn(serve(runtime.clone(), shutdown.clone()));

    // 00:30 to 23:30: both jobs get their first secret at start-up; `hourly` then rotates at 01:00 … 23:00
    // (23 fires), `aged` whenever its secret turns 6 hours old (06:30, 12:30, 18:30).
    tokio::time::sleep(Duration::from_secs(23 * 3600)).await;
    assert_eq!(generation(&runtime, "hourly").await, 1 + 23);
    assert_eq!(generation(&runtime, "aged").await, 1 + 3);

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(600), daemon).await.expect("stops").expect("no panic");
}

#[tokio::test(start_paused = true)]
async fn a_fire_missed_while_down_runs_once_at_start_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shutdown = CancellationToken::new();
    let runtime = runtime(dir.path(), &shutdown).await;
    // The secret is two days old: 48 hourly fires were missed while the daemon was down.
    let two_days_ago = start() - chrono::Duration::days(2);
    for name in ["hourly", "aged"] {
        let js = &runtime.job(name).expect("job").job.stores[0];
        js.store
            .write_current(
                &js.secret,
                &SecretValue::new("old-secret-from-before"),
                &Metadata::new(None, two_days_ago, 1),
            )
            .await
            .expect("seed");
    }
    let daemon = tokio::spawn(serve(runtime.clone(), shutdown.clone()));

    // Ten minutes in: one catch-up rotation each, not one per missed fire.
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(generation(&runtime, "hourly").await, 2);
    assert_eq!(generation(&runtime, "aged").await, 2);

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(600), daemon).await.expect("stops").expect("no panic");
}
