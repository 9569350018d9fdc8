//! `rotavault demo`: rotavault's main job on the embedded defaults, with no set-up and no tenant.
//!
//! It makes a fresh directory with a new key and an encrypted file store, starts the Autotask sandbox seeded with
//! an admin API user and three API users (two of them an alternating pair), imports the admin credential once as
//! a person would, and runs the real daemon (`daemon::serve`) on a fast schedule with the embedded
//! `config/demo.toml`. It prints each rotation as the stores record it; after enough rotations per job it stops
//! the daemon the way SIGTERM does, prints the status table and proves, through the sandbox, that every stored
//! current credential authenticates and every credential it replaced does not. `--keep-running` leaves the
//! daemon and the sandbox up to explore.

use super::output::{Output, outln};
use super::status::{JobStatus, print_table};
use super::{CliError, exit, run};
use crate::config;
use crate::runtime::Runtime;
use crate::sandbox::{Sandbox, Seed};
use crate::schedule::{Clock, SystemClock};
use crate::secret::SecretValue;
use crate::store::RotationId;
use crate::target::RotationInfo;
use crate::target::autotask::autotask_policy;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const DEMO_CONFIG: &str = include_str!("../../config/demo.toml");
const ADMIN: &str = "rotavault-admin@demo.example";
const API_USERS: [&str; 3] =
    ["backup-api@demo.example", "reporting-a@demo.example", "reporting-b@demo.example"];
const INTEGRATION_CODE: &str = "DEMO-INTEGRATION-CODE";
/// Long enough for the slowest demo job to rotate several times, short enough to notice a hang.
const DEMO_LIMIT: Duration = Duration::from_secs(120);

pub async fn demo(dir: Option<PathBuf>, rotations: u64, keep_running: bool) -> Result<u8, CliError> {
    let dir = match dir {
        Some(dir) => dir,
        None => fresh_dir()?,
    };
    let shutdown = CancellationToken::new();
    // The sandbox outlives the daemon: a rotation in flight at shutdown runs to its end against it.
    let sandbox_shutdown = CancellationToken::new();
    let _stop_sandbox = sandbox_shutdown.clone().drop_guard();
    let sandbox = start_sandbox(&sandbox_shutdown).await?;
    let config_path = prepare(&dir, &sandbox)?;
    let config = config::load(&config_path)?;
    let runtime = Arc::new(Runtime::build(config, Arc::new(SystemClock), shutdown.clone()).await?);

    let mut out = Output::stdout();
    outln!(out, "rotavault demo in {}", dir.display());
    outln!(out, "  key:     {}", dir.join("store.key").display());
    outln!(out, "  store:   {} (one age-encrypted file per secret)", dir.join("secrets").display());
    outln!(out, "  config:  {}", config_path.display());
    outln!(out, "  sandbox: {} (a simulated Autotask tenant)", sandbox.zone_lookup_url());
    outln!(out);

    import_admin(&runtime, &sandbox).await?;
    outln!(out, "imported the admin API user's credential once, as a person would; rotavault now owns it\n");

    let daemon = tokio::spawn(run::serve(runtime.clone(), shutdown.clone()));
    let watched = watch(&mut out, &runtime, rotations, keep_running, &shutdown).await;
    shutdown.cancel();
    let _ = daemon.await;
    let mut history = watched?;
    // A rotation that was in flight at shutdown ran to its end: its value belongs in the history too.
    for scheduled in &runtime.jobs {
        let js = &scheduled.job.stores[0];
        if let Ok(Some(current)) = js.store.current(&js.secret).await {
            let seen = history.entry(scheduled.job.name.clone()).or_default();
            if seen.last() != Some(&current.value) {
                seen.push(current.value);
            }
        }
    }

    let now = SystemClock.now();
    let table: Vec<JobStatus> = crate::status::statuses(&runtime, now).await;
    outln!(out);
    print_table(&mut out, &table, now);
    outln!(out);
    prove(&mut out, &runtime, &sandbox, &history).await?;
    outln!(out, "\nthe directory stays for a look: rotavault --config {} status", config_path.display());
    Ok(out.acted(exit::OK))
}

fn fresh_dir() -> Result<PathBuf, CliError> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let dir = std::env::temp_dir().join(format!("rotavault-demo-{}", &id[..8]));
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::Failed(format!("cannot create {}: {e}", dir.display())))?;
    Ok(dir)
}

/// Every account starts with a random password that only the sandbox's seed ever holds: the admin's is imported
/// once, and the others are replaced by their first rotation without anyone reading them.
async fn start_sandbox(shutdown: &CancellationToken) -> Result<Sandbox, CliError> {
    let policy = autotask_policy();
    let mut seed = format!(
        "lockout_threshold = 5\nstrong_passwords = true\nintegration_codes = [\"{INTEGRATION_CODE}\"]\n"
    );
    let accounts = std::iter::once((ADMIN, "api_admin")).chain(API_USERS.iter().map(|u| (*u, "api_user")));
    for (i, (user, level)) in accounts.enumerate() {
        let password = policy.generate().map_err(|e| CliError::Failed(e.to_string()))?;
        let password = toml_string(password.expose());
        seed.push_str(&format!(
            "\n[[resources]]\nid = {}\nuser_name = \"{user}\"\npassword = {password}\nsecurity_level = \"{level}\"\n",
            29_682_880 + i
        ));
    }
    let seed =
        Seed::from_toml(&seed).map_err(|e| CliError::Failed(format!("the demo's sandbox seed: {e}")))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| CliError::Failed(format!("cannot listen on 127.0.0.1: {e}")))?;
    Sandbox::start(listener, seed, false, shutdown.clone())
        .await
        .map_err(|e| CliError::Failed(format!("the sandbox did not start: {e}")))
}

/// A TOML basic string holding `text` (a password may hold `"` and `\`).
fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The key, the integration code and the config in `dir`; all stay there so that the demo can be explored.
fn prepare(dir: &Path, sandbox: &Sandbox) -> Result<PathBuf, CliError> {
    let fail =
        |what: &Path, e: std::io::Error| CliError::Failed(format!("cannot write {}: {e}", what.display()));
    let key = dir.join("store.key");
    if !key.exists() {
        crate::store::file::keygen(&key).map_err(|e| CliError::Failed(e.to_string()))?;
    }
    let code = dir.join("integration.code");
    std::fs::write(&code, INTEGRATION_CODE).map_err(|e| fail(&code, e))?;
    let config_path = dir.join("config.toml");
    let config = DEMO_CONFIG.replace("{{ZONE_LOOKUP_URL}}", &sandbox.zone_lookup_url());
    std::fs::write(&config_path, config).map_err(|e| fail(&config_path, e))?;
    Ok(config_path)
}

/// What `printf %s "$SECRET" | rotavault import autotask-admin` does, with the seed's admin password.
async fn import_admin(runtime: &Runtime, sandbox: &Sandbox) -> Result<(), CliError> {
    let job = &runtime.job("autotask-admin").ok_or_else(|| CliError::Failed("no admin job".into()))?.job;
    let password =
        sandbox.password_of(ADMIN).ok_or_else(|| CliError::Failed("no admin in the sandbox".into()))?;
    let secret = SecretValue::new(password);
    let info =
        RotationInfo { job: job.name.clone(), rotation_id: RotationId::new(), rotated_at: SystemClock.now() };
    let payload = job
        .target
        .import_payload(Some(ADMIN), &secret, &info)
        .await
        .map_err(|e| CliError::Failed(format!("import: {e}")))?;
    runtime.engine.import(job, &payload).await?;
    Ok(())
}

/// Every value each job's first store held, oldest first, as the watcher saw them.
type History = BTreeMap<String, Vec<SecretValue>>;

/// Prints every new generation the stores record, until each job has `rotations` new ones (or, with
/// `keep_running`, until SIGINT/SIGTERM).
async fn watch(
    out: &mut Output,
    runtime: &Runtime,
    rotations: u64,
    keep_running: bool,
    shutdown: &CancellationToken,
) -> Result<History, CliError> {
    let started = tokio::time::Instant::now();
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    let mut first: BTreeMap<String, u64> = BTreeMap::new();
    let mut history = History::new();
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
            if seen.get(name) == Some(&m.generation) {
                continue;
            }
            let who = user_of(&current.value).map(|u| format!("  user {u}")).unwrap_or_default();
            let how =
                m.rotation_id.as_ref().map_or_else(|| "imported".to_owned(), |r| format!("rotation {r}"));
            outln!(
                out,
                "{}  {:<16} generation {:>3}  {how}{who}",
                m.rotated_at.format("%H:%M:%S"),
                name,
                m.generation
            );
            seen.insert(name.clone(), m.generation);
            first.entry(name.clone()).or_insert(m.generation.saturating_sub(1));
            history.entry(name.clone()).or_default().push(current.value);
        }
        let done = runtime.jobs.iter().all(|j| {
            let name = &j.job.name;
            seen.get(name).zip(first.get(name)).is_some_and(|(now, from)| now - from >= rotations)
        });
        if done && !keep_running {
            return Ok(history);
        }
        if done && !announced {
            announced = true;
            let config = runtime.config.path.display();
            outln!(out, "\nthe daemon and the sandbox keep running; in another terminal:");
            outln!(out, "  rotavault --config {config} status");
            outln!(out, "  rotavault --config {config} rotate backup-vendor");
            outln!(out, "Ctrl-C stops them.\n");
        }
        if shutdown.is_cancelled() {
            return Ok(history);
        }
        if !keep_running && started.elapsed() > DEMO_LIMIT {
            return Err(CliError::Failed(format!(
                "the demo did not see {rotations} rotations per job within {}s; the log above says why",
                DEMO_LIMIT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The user name in an Autotask payload; `None` for a bare secret.
fn user_of(payload: &SecretValue) -> Option<String> {
    let doc: serde_json::Value = serde_json::from_str(payload.expose()).ok()?;
    doc.get("username")?.as_str().map(str::to_owned)
}

fn secret_of(payload: &SecretValue) -> Option<SecretValue> {
    let doc: serde_json::Value = serde_json::from_str(payload.expose()).ok()?;
    doc.get("secret")?.as_str().map(SecretValue::new)
}

/// Through the sandbox: the latest credential of every user authenticates, every one it replaced does not, and
/// no account was ever locked or left with failed logins. For the generated job, the value verifies and changed.
async fn prove(
    out: &mut Output,
    runtime: &Runtime,
    sandbox: &Sandbox,
    history: &History,
) -> Result<(), CliError> {
    let mut failures = Vec::new();
    let mut proven = 0;
    for scheduled in &runtime.jobs {
        let job = &scheduled.job;
        let seen = history.get(&job.name).map(Vec::as_slice).unwrap_or_default();
        // Newest first: the first value met for each user is its current one.
        let mut latest_seen: BTreeMap<String, bool> = BTreeMap::new();
        for payload in seen.iter().rev() {
            match (user_of(payload), secret_of(payload)) {
                (Some(user), Some(secret)) => {
                    let is_latest = !latest_seen.contains_key(&user);
                    latest_seen.insert(user.clone(), true);
                    let works = sandbox.authenticates(&user, secret.expose());
                    if works != is_latest {
                        failures.push(format!(
                            "{}: a {} credential of {user} {}",
                            job.name,
                            if is_latest { "current" } else { "replaced" },
                            if works { "still authenticates" } else { "does not authenticate" }
                        ));
                    }
                    proven += 1;
                }
                _ => {
                    if job.target.verify(payload).await.is_err() {
                        failures.push(format!("{}: a stored value does not verify", job.name));
                    }
                }
            }
        }
        for window in seen.windows(2) {
            if window[0] == window[1] {
                failures.push(format!("{}: a rotation kept the same value", job.name));
            }
        }
    }
    for user in std::iter::once(ADMIN).chain(API_USERS) {
        if sandbox.is_locked(user) || sandbox.failed_logins(user) > 0 {
            failures.push(format!(
                "{user}: {} failed logins, locked: {}",
                sandbox.failed_logins(user),
                sandbox.is_locked(user)
            ));
        }
    }
    if failures.is_empty() {
        outln!(
            out,
            "proof, through the sandbox: of {proven} Autotask credentials the stores held, every current one \
             authenticates and every replaced one does not; no account has a failed login; every rotation made a \
             new value"
        );
        Ok(())
    } else {
        Err(CliError::Failed(format!("the demo's proof failed:\n  {}", failures.join("\n  "))))
    }
}
