//! `rotavault demo`: rotavault's main job on the embedded defaults, with no set-up.
//!
//! It makes a fresh directory with a new key, an encrypted file store and the embedded `config/demo.toml`, runs
//! the real daemon (`run::serve`) on a fast schedule, prints each rotation as the stores record it, and after
//! enough rotations per job stops the daemon the way SIGTERM does, prints the status table and checks that every
//! job's current value verifies and differs from every value it replaced. `--keep-running` leaves the daemon up.

use super::status::{JobStatus, job_status, print_table};
use super::{CliError, exit, run};
use crate::config;
use crate::rotation::state::JobState;
use crate::runtime::Runtime;
use crate::schedule::{Clock, SystemClock};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const DEMO_CONFIG: &str = include_str!("../../config/demo.toml");
/// Long enough for the slowest demo job to rotate several times, short enough to notice a hang.
const DEMO_LIMIT: Duration = Duration::from_secs(90);

pub async fn demo(dir: Option<PathBuf>, rotations: u64, keep_running: bool) -> Result<u8, CliError> {
    let dir = match dir {
        Some(dir) => dir,
        None => fresh_dir()?,
    };
    let config_path = prepare(&dir)?;
    let config = config::load(&config_path)?;
    let shutdown = CancellationToken::new();
    let runtime = Arc::new(Runtime::build(config, Arc::new(SystemClock), shutdown.clone())?);

    println!("rotavault demo in {}", dir.display());
    println!("  key:    {}", dir.join("store.key").display());
    println!("  store:  {} (age-encrypted)", dir.join("secrets.age").display());
    println!("  config: {}", config_path.display());
    println!();

    let daemon = tokio::spawn(run::serve(runtime.clone(), shutdown.clone()));
    let watched = watch(&runtime, rotations, keep_running, &shutdown).await;
    shutdown.cancel();
    let _ = daemon.await;
    watched?;

    let now = SystemClock.now();
    let mut table: Vec<JobStatus> = Vec::new();
    for scheduled in &runtime.jobs {
        let state = runtime.engine.states().load(&scheduled.job.name).unwrap_or_else(|_| JobState::default());
        table.push(job_status(scheduled, &state, now).await);
    }
    println!();
    print_table(&table, now);
    println!();
    prove(&runtime).await?;
    println!("\nexplore: rotavault --config {} status", config_path.display());
    Ok(exit::OK)
}

fn fresh_dir() -> Result<PathBuf, CliError> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let dir = std::env::temp_dir().join(format!("rotavault-demo-{}", &id[..8]));
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::Failed(format!("cannot create {}: {e}", dir.display())))?;
    Ok(dir)
}

/// A key and the demo config in `dir`; both are left there so that the demo can be explored afterwards.
fn prepare(dir: &Path) -> Result<PathBuf, CliError> {
    let key = dir.join("store.key");
    if !key.exists() {
        crate::store::file::keygen(&key).map_err(|e| CliError::Failed(e.to_string()))?;
    }
    let config_path = dir.join("config.toml");
    std::fs::write(&config_path, DEMO_CONFIG)
        .map_err(|e| CliError::Failed(format!("cannot write {}: {e}", config_path.display())))?;
    Ok(config_path)
}

/// Prints every new generation the stores record, until each job has `rotations` new ones (or, with
/// `keep_running`, until SIGINT/SIGTERM).
async fn watch(
    runtime: &Runtime,
    rotations: u64,
    keep_running: bool,
    shutdown: &CancellationToken,
) -> Result<(), CliError> {
    let started = tokio::time::Instant::now();
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    let mut first: BTreeMap<String, u64> = BTreeMap::new();
    let mut announced = false;
    if keep_running {
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            stop.cancel();
        });
    }
    loop {
        for scheduled in &runtime.jobs {
            let js = &scheduled.job.stores[0];
            let Ok(Some(current)) = js.store.current(&js.secret).await else { continue };
            let m = &current.metadata;
            let name = &scheduled.job.name;
            if seen.get(name) != Some(&m.generation) {
                let id = m.rotation_id.as_ref().map(|r| r.to_string()).unwrap_or_default();
                println!(
                    "{}  {:<18} generation {:>3}  rotation {id}  ({} stores)",
                    m.rotated_at.format("%H:%M:%S"),
                    name,
                    m.generation,
                    scheduled.job.stores.len()
                );
                seen.insert(name.clone(), m.generation);
                first.entry(name.clone()).or_insert(m.generation.saturating_sub(1));
            }
        }
        let done = runtime.jobs.iter().all(|j| {
            let name = &j.job.name;
            seen.get(name).zip(first.get(name)).is_some_and(|(now, from)| now - from >= rotations)
        });
        if done && !keep_running {
            return Ok(());
        }
        if done && !announced {
            announced = true;
            println!("\nthe daemon keeps running; in another terminal:");
            let config = runtime.config.path.display();
            println!("  rotavault --config {config} status");
            println!("  rotavault --config {config} rotate {}", runtime.jobs[0].job.name);
            println!("Ctrl-C stops it.\n");
        }
        if shutdown.is_cancelled() {
            return Ok(());
        }
        if !keep_running && started.elapsed() > DEMO_LIMIT {
            return Err(CliError::Failed(format!(
                "the demo did not see {rotations} rotations per job within {}s; the log above says why",
                DEMO_LIMIT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every job's current value verifies at its target, and differs from the value it replaced.
async fn prove(runtime: &Runtime) -> Result<(), CliError> {
    let mut failures = Vec::new();
    for scheduled in &runtime.jobs {
        let job = &scheduled.job;
        for js in &job.stores {
            let current = js.store.current(&js.secret).await.ok().flatten();
            let previous = js.store.previous(&js.secret).await.ok().flatten();
            let Some(current) = current else {
                failures.push(format!("{}: no current value in `{}`", job.name, js.label));
                continue;
            };
            if job.target.verify(&current.value).await.is_err() {
                failures.push(format!("{}: the current value in `{}` does not verify", job.name, js.label));
            }
            if previous.as_ref().is_some_and(|p| p.value == current.value) {
                failures.push(format!("{}: the current value equals the one it replaced", job.name));
            }
            if let Err(e) = job.policy.check(&current.value) {
                failures.push(format!("{}: {e}", job.name));
            }
        }
    }
    if failures.is_empty() {
        println!(
            "proof: every job's current value verifies at its target, meets its policy, and replaced a different one"
        );
        Ok(())
    } else {
        Err(CliError::Failed(format!("the demo's proof failed:\n  {}", failures.join("\n  "))))
    }
}
