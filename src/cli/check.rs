//! `rotavault check`: validates the configuration and every job's policy, proves that every file it names is there
//! (identities, tokens, secret ids, CA certificates, integration codes: each reported at its key with its path),
//! and opens the local stores (so a missing or unreadable key or integration code file shows up now, not at the
//! first rotation). Contacts no target and no remote store. Config errors exit 78.

use super::output::{Output, outln};
use super::{CliError, exit};
use crate::config::{self, ConfigError, StoreConfig};
use crate::store::file::FileStore;
use std::path::Path;

pub fn check(path: &Path) -> Result<u8, CliError> {
    let config = config::load(path)?;
    // Every missing file at once: each is a separate fix, and a person should not have to run check once per file.
    let missing: Vec<ConfigError> = config.files.iter().filter_map(|f| f.check(&config.path).err()).collect();
    if !missing.is_empty() {
        return Err(CliError::Configs(missing));
    }
    let at = |key: String, message: String| {
        CliError::Config(ConfigError {
            file: config.path.clone(),
            line: None,
            column: None,
            key: Some(key),
            message,
        })
    };
    for (name, store) in &config.stores {
        if let StoreConfig::File { path, identity } = store {
            FileStore::open(path.clone(), identity.clone())
                .map_err(|e| at(format!("stores.{name}"), e.to_string()))?;
        }
    }
    for (name, job) in &config.jobs {
        if let Some(account) = &job.autotask {
            account
                .integration_code
                .read()
                .map_err(|message| at(format!("jobs.{name}.integration_code"), message))?;
        }
    }
    let mut out = Output::stdout_buffered();
    outln!(out, "{}: configuration valid", config.path.display());
    outln!(out, "  stores: {}", config.stores.keys().cloned().collect::<Vec<_>>().join(", "));
    for (name, job) in &config.jobs {
        let schedule = job.schedule.as_ref().map(|s| s.describe()).unwrap_or_else(|| "no schedule".into());
        let max_age =
            job.max_age.map(|d| format!(", max_age {}", humantime::format_duration(d))).unwrap_or_default();
        let stores: Vec<String> = job.stores.iter().map(|s| format!("{}:{}", s.store, s.name)).collect();
        outln!(out, "  job {name}: target {}, {schedule}{max_age}, stores {}", job.target, stores.join(", "));
        outln!(out, "    secret: {}", job.secret_policy);
    }
    Ok(out.reported(exit::OK))
}

/// `check --connect`: proves every job's path works end to end, changing nothing. Each target says what it checks
/// (for Autotask: the zone, the admin's rights on REST and SOAP, the API users); every store is probed for
/// access. Prints one line per check and what to do about each failure; exits 1 if any failed.
pub async fn check_connect(config: crate::config::Config) -> Result<u8, CliError> {
    use crate::runtime::Runtime;
    use crate::schedule::SystemClock;
    use std::sync::Arc;

    let runtime =
        Runtime::build(config, Arc::new(SystemClock), tokio_util::sync::CancellationToken::new()).await?;
    // Its logins count in the lockout guard every replica shares, which only the holder of the lease writes.
    let held = super::replicas::hold(&runtime, "check --connect", true).await?;
    let result = connect_rows(&runtime).await;
    if let Some(held) = held {
        held.release().await;
    }
    result
}

async fn connect_rows(runtime: &crate::runtime::Runtime) -> Result<u8, CliError> {
    use crate::target::ConnectCheck;
    let mut rows: Vec<(String, ConnectCheck)> = Vec::new();
    for (name, store) in &runtime.stores {
        let check = match crate::store::Store::check(store.as_ref()).await {
            Ok(()) => ConnectCheck {
                name: format!(
                    "store {name} ({}) reachable and writable",
                    crate::store::Store::backend(store.as_ref())
                ),
                ok: true,
                detail: "ok".into(),
                fix: None,
            },
            Err(e) => ConnectCheck {
                name: format!("store {name} reachable and writable"),
                ok: false,
                detail: e.to_string(),
                fix: Some(store_fix(&e)),
            },
        };
        rows.push(("-".into(), check));
    }
    for scheduled in &runtime.jobs {
        for check in scheduled.job.target.connect_checks().await {
            rows.push((scheduled.job.name.clone(), check));
        }
    }
    let failed = rows.iter().filter(|(_, c)| !c.ok).count();
    let mut out = Output::stdout();
    outln!(out, "{:<24} {:<6} CHECK", "JOB", "RESULT");
    for (job, check) in &rows {
        outln!(out, "{job:<24} {:<6} {}", if check.ok { "ok" } else { "FAILED" }, check.name);
        if !check.ok {
            outln!(out, "{:<31} {}", "", check.detail);
            if let Some(fix) = &check.fix {
                outln!(out, "{:<31} fix: {fix}", "");
            }
        }
    }
    outln!(out, "\n{} checks, {} failed", rows.len(), failed);
    Ok(out.reported(if failed == 0 { exit::OK } else { exit::FAILURE }))
}

fn store_fix(e: &crate::store::StoreError) -> String {
    use crate::store::StoreError;
    match e {
        StoreError::PermissionDenied { .. } => {
            "grant rotavault's identity read and write access to the store".into()
        }
        StoreError::Unauthenticated { .. } => "check the store's credentials for rotavault".into(),
        StoreError::Transient { .. } => {
            "the store is unreachable now: check the network and try again".into()
        }
        _ => "see the error above".into(),
    }
}
