//! `rotavault check`: validates the configuration and every job's policy, and opens the local stores (so a
//! missing or unreadable key file shows up now, not at the first rotation). Contacts no target and no remote
//! store. Config errors exit 78.

use super::{CliError, exit};
use crate::config::{self, StoreConfig};
use crate::store::file::FileStore;
use std::path::Path;

pub fn check(path: &Path) -> Result<u8, CliError> {
    let config = config::load(path)?;
    for (name, store) in &config.stores {
        if let StoreConfig::File { path, identity } = store {
            FileStore::open(path.clone(), identity.clone()).map_err(|e| {
                CliError::Config(config::ConfigError {
                    file: config.path.clone(),
                    line: None,
                    column: None,
                    key: Some(format!("stores.{name}")),
                    message: e.to_string(),
                })
            })?;
        }
    }
    println!("{}: configuration valid", config.path.display());
    println!("  stores: {}", config.stores.keys().cloned().collect::<Vec<_>>().join(", "));
    for (name, job) in &config.jobs {
        let schedule = job.schedule.as_ref().map(|s| s.describe()).unwrap_or_else(|| "no schedule".into());
        let max_age =
            job.max_age.map(|d| format!(", max_age {}", humantime::format_duration(d))).unwrap_or_default();
        let stores: Vec<String> = job.stores.iter().map(|s| format!("{}:{}", s.store, s.name)).collect();
        println!("  job {name}: target {}, {schedule}{max_age}, stores {}", job.target, stores.join(", "));
        println!("    secret: {}", job.secret_policy);
    }
    Ok(exit::OK)
}
