//! Tests of the config module, by rule: each asserts the exact line, key and wording a person would see.
//!
//! Configs are written inline so that the line numbers asserted can be counted by eye.

mod apart;
mod audit_hooks;
mod autotask;
mod blackout;
mod command_webhook;
mod example;
mod files;
mod jobs;
mod lease;
mod limits;
mod notify;
mod policy;
mod stores;
mod syntax;

use super::{Config, ConfigError, Jobs, parse_at};
use chrono::{DateTime, TimeZone, Utc};
use std::path::Path;

const FILE: &str = "/etc/rotavault/config.toml";

/// A fixed moment, so that schedule measurements do not depend on the day the tests run.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 12, 0, 0).single().expect("a valid date")
}

fn load(source: &str) -> Result<Config, ConfigError> {
    parse_at(source, Path::new(FILE), now(), Jobs::Required)
}

fn valid(source: &str) -> Config {
    load(source).unwrap_or_else(|e| panic!("expected a valid config, got: {e}"))
}

/// A config that is valid but for having no job: for tests of the other sections.
fn valid_without_jobs(source: &str) -> Config {
    parse_at(source, Path::new(FILE), now(), Jobs::Optional)
        .unwrap_or_else(|e| panic!("expected a valid config without jobs, got: {e}"))
}

/// The error `source` gives, checked to be at `line` and `key` and to say every one of `says`.
#[track_caller]
fn error(source: &str, line: usize, key: &str, says: &[&str]) -> ConfigError {
    let err = load(source).expect_err("expected a config error");
    assert_eq!(err.file, Path::new(FILE), "{err}");
    assert_eq!(err.line, Some(line), "{err}");
    assert_eq!(err.key.as_deref(), Some(key), "{err}");
    for part in says {
        assert!(err.message.contains(part), "`{part}` missing from: {err}");
    }
    err
}

/// The smallest valid config: one store, one target, one job. Tests append to it or replace parts of it.
const MINIMAL: &str = r#"[stores.local]
kind = "memory"

[targets.shared]
kind = "generated"

[jobs.webhook]
target = "shared"
stores = [ { store = "local", name = "webhooks/signing-key" } ]
max_age = "30d"
"#;

#[test]
fn the_minimal_config_loads_with_every_default() {
    let config = valid(MINIMAL);
    assert_eq!(config.path, Path::new(FILE));
    assert_eq!(config.state_dir, Path::new("/var/lib/rotavault"));
    assert_eq!(config.rotation, super::RotationSettings::default());
    assert_eq!(config.policy, super::GlobalPolicy::default());
    let job = &config.jobs["webhook"];
    assert_eq!(job.name, "webhook");
    assert_eq!(job.target, "shared");
    assert!(job.schedule.is_none());
    assert_eq!(job.max_age, Some(std::time::Duration::from_secs(30 * 86_400)));
    assert_eq!(job.secret_policy.length, 32);
    assert!(!job.stores[0].adopt);
}
