//! `command` and `webhook` targets and the `account` of their jobs.

use super::*;
use crate::config::TargetConfig;
use std::time::Duration;

const TARGETS: &str = r#"[stores.local]
kind = "file"
path = "/var/lib/rotavault/secrets.age"
identity_file = "/etc/rotavault/store.key"

[targets.db]
kind = "command"
apply = ["/usr/local/bin/pg-password", "apply"]
verify = ["/usr/local/bin/pg-password", "verify"]

[targets.vendor]
kind = "webhook"
url_file = "vendor.url"
key_file = "/etc/rotavault/vendor.key"
timeout = "20s"

[jobs.app-db]
target = "db"
account = "app_user"
stores = [ { store = "local", name = "db/app_user" } ]
max_age = "30d"

[jobs.vendor-api]
target = "vendor"
account = "integration@example.com"
stores = [ { store = "local", name = "vendor/api" } ]
max_age = "30d"
"#;

#[test]
fn command_and_webhook_targets_load_with_their_defaults_and_their_jobs_accounts() {
    let config = valid(TARGETS);
    let TargetConfig::Command(db) = &config.targets["db"] else { panic!("a command target") };
    assert_eq!(db.apply, ["/usr/local/bin/pg-password", "apply"]);
    assert_eq!(db.verify, ["/usr/local/bin/pg-password", "verify"]);
    assert_eq!(db.timeout, crate::target::command::DEFAULT_TIMEOUT);
    let TargetConfig::Webhook(vendor) = &config.targets["vendor"] else { panic!("a webhook target") };
    assert_eq!(vendor.url_file, Path::new("/etc/rotavault/vendor.url"), "relative to the config");
    assert_eq!(vendor.timeout, Duration::from_secs(20));
    assert_eq!(config.jobs["app-db"].account.as_deref(), Some("app_user"));
    assert_eq!(config.jobs["vendor-api"].account.as_deref(), Some("integration@example.com"));
    assert!(config.files.iter().any(|f| f.key == "targets.vendor.key_file"), "checked by `rotavault check`");
}

#[test]
fn a_command_or_webhook_job_without_an_account_is_refused_saying_what_is_expected() {
    let source = TARGETS.replace("account = \"app_user\"\n", "");
    error(&source, 17, "jobs.app-db", &["names no account", "kind `command`", "account = \"app_user\""]);
}

#[test]
fn an_account_on_a_job_of_another_kind_is_refused_at_its_key() {
    let source = format!("{MINIMAL}account = \"app_user\"\n");
    error(&source, 11, "jobs.webhook.account", &["`account` applies to `command` and `webhook` jobs"]);
}

#[test]
fn an_account_with_a_control_character_is_refused() {
    let source = TARGETS.replace("account = \"app_user\"", "account = \"app\\nuser\"");
    error(&source, 19, "jobs.app-db.account", &["not an account name"]);
}

#[test]
fn a_command_target_needs_a_program_for_apply_and_for_verify() {
    let source = TARGETS.replace("verify = [\"/usr/local/bin/pg-password\", \"verify\"]", "verify = []");
    error(&source, 9, "targets.db.verify", &["names no program"]);
    let source = TARGETS.replace("apply = [\"/usr/local/bin/pg-password\", \"apply\"]\n", "");
    let err = load(&source).expect_err("apply is required");
    assert!(err.to_string().contains("apply"), "{err}");
}

#[test]
fn a_target_timeout_past_its_bound_is_refused() {
    let source = TARGETS.replace("timeout = \"20s\"", "timeout = \"2h\"");
    error(&source, 15, "targets.vendor.timeout", &["10m"]);
}

#[test]
fn an_unset_call_timeout_is_raised_to_hold_a_long_program_timeout() {
    let source = TARGETS.replace(
        "verify = [\"/usr/local/bin/pg-password\", \"verify\"]",
        "verify = [\"v\"]\ntimeout = \"5m\"",
    );
    let config = valid(&source);
    assert_eq!(config.rotation.call_timeout, Duration::from_secs(300));
}

#[test]
fn the_example_config_shows_a_command_and_a_webhook_target_with_every_key_and_bound() {
    const EXAMPLE: &str = include_str!("../../../config/example.toml");
    let config = valid(EXAMPLE);
    assert!(matches!(config.targets["db"], TargetConfig::Command(_)));
    assert!(matches!(config.targets["vendor"], TargetConfig::Webhook(_)));
    assert_eq!(config.jobs["app-db"].account.as_deref(), Some("app_user"));
    for key in [
        "account = ",
        "apply = [",
        "verify = [",
        "url_file = ",
        "key_file = ",
        "at most \"10m\". Default \"30s\"",
    ] {
        assert!(EXAMPLE.contains(key), "config/example.toml does not show `{key}`");
    }
}
