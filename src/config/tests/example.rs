//! `config/example.toml` documents every key; it must stay a config that loads.

use super::*;
use crate::config::{StoreConfig, TargetConfig};
use crate::store::file::IdentitySource;
use std::time::Duration;

const EXAMPLE: &str = include_str!("../../../config/example.toml");

#[test]
fn the_example_config_loads() {
    let config = valid(EXAMPLE);
    assert_eq!(config.state_dir, Path::new("/var/lib/rotavault"));
    assert_eq!(config.policy.max_age, Some(Duration::from_secs(90 * 86_400)));
    assert_eq!(config.policy.min_length, Some(24));
    assert_eq!(config.rotation.verify_attempts, 3);
    assert_eq!(config.rotation.apply_horizon, None, "commented out: worked out from the target");
    assert_eq!(config.rotation.failed_login_window, None, "Autotask resets only on an accepted login");
    match &config.stores["local"] {
        StoreConfig::File { path, identity } => {
            assert_eq!(path, Path::new("/var/lib/rotavault/secrets"));
            assert!(
                matches!(identity, IdentitySource::File(p) if p == Path::new("/etc/rotavault/store.key")),
                "{identity:?}"
            );
        }
        other => panic!("expected a file store, got {other:?}"),
    }
    assert!(matches!(config.targets["shared"], TargetConfig::Generated));
    let job = &config.jobs["webhook-signing"];
    assert!(job.schedule.is_some());
    assert_eq!(job.secret_policy.length, 48);
}

#[test]
fn the_example_config_loads_through_load() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
    let config = crate::config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.path, path);
}

/// Every key the schema knows appears in the example, so that it stays the reference for operators.
#[test]
fn the_example_config_shows_every_key() {
    for key in [
        "state_dir",
        "[policy]",
        "max_age",
        "min_length",
        "forbidden",
        "[rotation]",
        "settle",
        "verify_attempts",
        "verify_backoff",
        "call_timeout",
        "apply_horizon",
        "max_failed_logins",
        "failed_login_window",
        "kind",
        "path",
        "identity_file",
        "identity_credential",
        "target",
        "stores",
        "adopt",
        "schedule",
        "timezone",
        "window",
        "length",
        "alphabet",
        "require",
        "min_groups",
        "positions",
        "[audit]",
        "warn_before",
        "after_rotation",
        "argv",
        "timeout",
    ] {
        assert!(EXAMPLE.contains(key), "config/example.toml does not show `{key}`");
    }
}

#[test]
fn the_example_config_shows_every_kind_of_notification_sink() {
    use crate::config::NotifyChannelConfig;
    let config = valid(EXAMPLE);
    assert!(matches!(config.notify["ops-slack"].channel, NotifyChannelConfig::Slack { .. }));
    assert!(matches!(config.notify["audit-hook"].channel, NotifyChannelConfig::Webhook { .. }));
    assert!(matches!(config.notify["ops-mail"].channel, NotifyChannelConfig::Email(_)));
    assert!(EXAMPLE.contains("kind = \"teams\""));
}
