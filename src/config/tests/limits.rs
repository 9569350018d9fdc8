//! Upper bounds: every duration has one, named in the error and stated in `config/example.toml`; and
//! `[rotation] call_timeout` must hold the longest apply a target's own limits allow.

use super::*;
use std::time::Duration;

const EXAMPLE: &str = include_str!("../../../config/example.toml");

/// Every duration key, with a line that sets it just past its bound and the bound as the example states it.
const BOUNDS: &[(&str, &str, &str)] = &[
    ("policy.max_age", "[policy]\nmax_age = \"731d\"\n", "730d"),
    ("rotation.settle", "[rotation]\nsettle = \"2M\"\n", "10m"),
    ("rotation.verify_backoff", "[rotation]\nverify_backoff = \"5m 1s\"\n", "5m"),
    ("rotation.call_timeout", "[rotation]\ncall_timeout = \"61m\"\n", "1h"),
    ("rotation.apply_horizon", "[rotation]\napply_horizon = \"25h\"\n", "1d"),
    ("rotation.propagation_grace", "[rotation]\npropagation_grace = \"25h\"\n", "1d"),
    ("rotation.failed_login_window", "[rotation]\nfailed_login_window = \"8d\"\n", "7d"),
    ("audit.warn_before", "[audit]\nwarn_before = \"91d\"\n", "90d"),
    ("policy.warn_before", "[policy]\nwarn_before = \"91d\"\n", "90d"),
];

#[test]
fn every_duration_has_an_upper_bound_that_the_error_names_and_the_example_states() {
    for (key, section, bound) in BOUNDS {
        let source = format!("{section}{MINIMAL}");
        error(&source, 2, key, &[&format!("is too long: expected at most {bound} (")]);
        let name = key.rsplit('.').next().unwrap_or(key);
        assert!(
            EXAMPLE.lines().any(|l| l.contains(&format!("most \"{bound}\""))),
            "config/example.toml does not state the bound of `{name}` ({bound})"
        );
    }
    // Two months of settle, the value the issue found accepted, is named in the error as it reads back.
    let err = load(&format!("[rotation]\nsettle = \"2M\"\n{MINIMAL}")).expect_err("too long");
    assert!(err.message.starts_with("60d 21h"), "{err}");

    let job = MINIMAL.replace("max_age = \"30d\"", "max_age = \"2y\"");
    error(&job, 10, "jobs.webhook.max_age", &["expected at most 730d"]);
    let target = format!("{MINIMAL}\n[targets.autotask]\nkind = \"autotask\"\ntimeout = \"301s\"\n");
    let target = target.replace(
        "kind = \"autotask\"\n",
        "kind = \"autotask\"\nadmin = { store = \"local\", name = \"a\" }\n",
    );
    error(&target, 15, "targets.autotask.timeout", &["expected at most 5m"]);
    assert!(EXAMPLE.contains("Not zero; at most \"5m\". Default \"30s\"."));

    // At the bound itself is accepted.
    let at_bound = format!("[rotation]\nsettle = \"10m\"\napply_horizon = \"1d\"\n{MINIMAL}");
    assert_eq!(valid(&at_bound).rotation.settle, Duration::from_secs(600));
}

const AUTOTASK: &str = r#"[rotation]
call_timeout = "3m"

[stores.local]
kind = "file"
path = "secrets.age"
identity_file = "store.key"

[targets.autotask]
kind = "autotask"
admin = { store = "local", name = "autotask/admin" }

[jobs.backup]
target = "autotask"
users = ["backup-api@example.com"]
integration_code_file = "backup.code"
stores = [ { store = "local", name = "autotask/backup" } ]
max_age = "30d"
"#;

#[test]
fn a_call_timeout_that_cannot_hold_an_apply_is_refused_naming_both_keys_and_the_numbers() {
    // 30s a call by default: 3 attempts and 2 back-offs of up to 10s make 1m 50s; a query and an update 3m 40s.
    error(
        AUTOTASK,
        2,
        "rotation.call_timeout",
        &[
            "3m cannot hold an apply of target `autotask`",
            "targets.autotask.timeout = 30s",
            "one call to Autotask may take up to 1m 50s",
            "up to 3m 40s",
            "expected rotation.call_timeout = \"3m 40s\" or more",
        ],
    );
    let shorter = AUTOTASK.replace("kind = \"autotask\"\n", "kind = \"autotask\"\ntimeout = \"20s\"\n");
    assert_eq!(valid(&shorter).rotation.call_timeout, Duration::from_secs(180), "2 × (60s + 20s) fits");
    let longer = AUTOTASK.replace("\"3m\"", "\"3m 40s\"");
    assert_eq!(valid(&longer).rotation.call_timeout, Duration::from_secs(220));
}

#[test]
fn an_unset_call_timeout_is_raised_to_hold_the_longest_apply() {
    let unset = AUTOTASK.replace("[rotation]\ncall_timeout = \"3m\"\n", "");
    assert_eq!(valid(&unset).rotation.call_timeout, Duration::from_secs(220));
    let slow = unset.replace("kind = \"autotask\"\n", "kind = \"autotask\"\ntimeout = \"5m\"\n");
    assert_eq!(valid(&slow).rotation.call_timeout, Duration::from_secs(2 * (3 * 300 + 2 * 10)));
    // A config without a target that sends requests keeps the engine's default.
    assert_eq!(valid(MINIMAL).rotation.call_timeout, crate::config::RotationSettings::default().call_timeout);
}

#[test]
fn the_tenant_settings_say_how_long_a_call_and_an_apply_can_take() {
    let settings = crate::target::autotask::TenantSettings {
        timeout: Duration::from_secs(5),
        max_backoff: Duration::from_secs(2),
        ..Default::default()
    };
    assert_eq!(settings.longest_call(), Duration::from_secs(3 * 5 + 2 * 2));
    assert_eq!(settings.longest_apply(), Duration::from_secs(2 * 19));
}

#[test]
fn a_config_without_jobs_is_refused_where_a_job_would_go() {
    let no_jobs = "[stores.local]\nkind = \"memory\"\n\n[targets.shared]\nkind = \"generated\"\n";
    let err = error(no_jobs, 6, "jobs", &["no job is defined", "expected at least one [jobs.NAME] table"]);
    assert_eq!(err.column, Some(1));
    // An empty `[jobs]` table is pointed at.
    error(&format!("[jobs]\n\n{no_jobs}"), 1, "jobs", &["no job is defined"]);
    // `status` reads such a config.
    assert!(valid_without_jobs(no_jobs).jobs.is_empty());
}
