//! `[audit]` and a job's `after_rotation` hooks.

use super::*;
use crate::config::HookConfig as Hook;
use crate::hooks::CommandHook;
use std::time::Duration;

#[test]
fn audit_defaults_to_the_log_only_and_the_age_warning_to_a_tenth_of_max_age() {
    let config = valid(MINIMAL);
    assert_eq!(config.audit.path, None);
    assert_eq!(config.warn_before(Duration::from_secs(30 * 86_400)), Duration::from_secs(3 * 86_400));
    assert_eq!(config.warn_before(Duration::from_secs(90 * 86_400)), Duration::from_secs(9 * 86_400));
    // The older place is still read.
    let config = valid(&format!("[audit]\npath = \"audit.jsonl\"\nwarn_before = \"5d\"\n{MINIMAL}"));
    assert_eq!(
        config.audit.path.as_deref(),
        Some(Path::new("/etc/rotavault/audit.jsonl")),
        "relative to the file"
    );
    assert_eq!(config.warn_before(Duration::from_secs(30 * 86_400)), Duration::from_secs(5 * 86_400));
    let config = valid(&format!("[policy]\nwarn_before = \"2d\"\n{MINIMAL}"));
    assert_eq!(config.warn_before(Duration::from_secs(30 * 86_400)), Duration::from_secs(2 * 86_400));
}

#[test]
fn warn_before_is_set_in_one_place_and_shorter_than_max_age() {
    let both = format!("[policy]\nwarn_before = \"2d\"\n\n[audit]\nwarn_before = \"3d\"\n{MINIMAL}");
    error(&both, 5, "audit.warn_before", &["older place of `[policy] warn_before`"]);
    let long = format!("[policy]\nmax_age = \"30d\"\nwarn_before = \"30d\"\n{MINIMAL}");
    error(&long, 3, "policy.warn_before", &["not shorter than `max_age`"]);
    let job = format!("[policy]\nwarn_before = \"30d\"\n{MINIMAL}");
    error(&job, 12, "jobs.webhook.max_age", &["30d is not longer than [policy] warn_before (30d)"]);
}

#[test]
fn an_unknown_audit_key_and_a_zero_warn_before_are_refused_by_name() {
    error(&format!("[audit]\npaht = \"a\"\n{MINIMAL}"), 2, "audit.paht", &["unknown"]);
    error(&format!("[audit]\nwarn_before = \"0s\"\n{MINIMAL}"), 2, "audit.warn_before", &["zero duration"]);
}

#[test]
fn a_command_hook_reads_its_argv_and_timeout_with_a_default() {
    let source = format!(
        "{MINIMAL}after_rotation = [\n  {{ kind = \"command\", argv = [\"systemctl\", \"reload\", \"app\"] }},\n  \
         {{ kind = \"command\", argv = [\"/bin/true\"], timeout = \"2m\" }},\n]\n"
    );
    let config = valid(&source);
    assert_eq!(
        config.jobs["webhook"].after_rotation,
        [
            Hook::Command(CommandHook {
                argv: vec!["systemctl".into(), "reload".into(), "app".into()],
                timeout: Duration::from_secs(30)
            }),
            Hook::Command(CommandHook { argv: vec!["/bin/true".into()], timeout: Duration::from_secs(120) }),
        ]
    );
    assert!(valid(MINIMAL).jobs["webhook"].after_rotation.is_empty());
}

#[test]
fn a_command_hook_without_a_program_or_with_an_unbounded_timeout_is_refused_by_name() {
    let hook = |h: &str| format!("{MINIMAL}after_rotation = [ {h} ]\n");
    error(
        &hook("{ kind = \"command\", argv = [] }"),
        11,
        "jobs.webhook.after_rotation[0].argv",
        &["names no program"],
    );
    error(&hook("{ kind = \"command\" }"), 11, "jobs.webhook.after_rotation[0]", &["needs `argv`"]);
    error(
        &hook("{ kind = \"command\", argv = [\"x\"], timeout = \"11m\" }"),
        11,
        "jobs.webhook.after_rotation[0].timeout",
        &["expected at most 10m"],
    );
    error(
        &hook("{ kind = \"command\", argv = [\"x\"], shell = true }"),
        11,
        "jobs.webhook.after_rotation[0].shell",
        &["unknown"],
    );
    error(
        &hook("{ kind = \"script\", argv = [\"x\"] }"),
        11,
        "jobs.webhook.after_rotation[0].kind",
        &["command"],
    );
}

#[test]
fn a_webhook_hook_names_its_url_and_key_files_and_check_lists_them() {
    let source = format!(
        "{MINIMAL}after_rotation = [ {{ kind = \"webhook\", url_file = \"app.url\", key_file = \"/k/app.key\" }} ]\n"
    );
    let config = valid(&source);
    let Hook::Webhook(webhook) = &config.jobs["webhook"].after_rotation[0] else { panic!("a webhook hook") };
    assert_eq!(webhook.url_file, Path::new("/etc/rotavault/app.url"), "relative to the file");
    assert_eq!(webhook.key_file, Path::new("/k/app.key"));
    let keys: Vec<&str> = config.files.iter().map(|f| f.key.as_str()).collect();
    assert!(keys.contains(&"jobs.webhook.after_rotation[0].url_file"), "{keys:?}");
    assert!(keys.contains(&"jobs.webhook.after_rotation[0].key_file"), "{keys:?}");
}

#[test]
fn a_key_of_the_other_kind_or_an_inline_url_is_refused_by_name() {
    let hook = |h: &str| format!("{MINIMAL}after_rotation = [ {h} ]\n");
    error(
        &hook("{ kind = \"webhook\", url_file = \"u\", key_file = \"k\", argv = [\"x\"] }"),
        11,
        "jobs.webhook.after_rotation[0].argv",
        &["not a key of a webhook hook"],
    );
    error(
        &hook("{ kind = \"command\", argv = [\"x\"], url_file = \"u\" }"),
        11,
        "jobs.webhook.after_rotation[0].url_file",
        &["not a key of a command hook"],
    );
    let text = error(
        &hook("{ kind = \"webhook\", url = \"https://h.example/s3cr3t\", key_file = \"k\" }"),
        11,
        "jobs.webhook.after_rotation[0].url",
        &["unknown"],
    )
    .to_string();
    assert!(!text.contains("s3cr3t"), "{text}");
}
