//! TOML syntax errors and schema errors (unknown key, missing key, wrong type, unknown value), located by the
//! spans `toml` reports; and durations.

use super::*;
use std::time::Duration;

#[test]
fn an_unknown_key_is_reported_at_its_line_with_the_accepted_keys() {
    let source = r#"[policy]
max_age = "90d"

[stores.local]
kind = "file"
path = "/var/lib/rotavault/secrets.age"
pathh = "/var/lib/rotavault/other.age"
identity_file = "/etc/rotavault/store.key"
"#;
    let err = error(
        source,
        7,
        "stores.local.pathh",
        &[
            "unknown key `pathh` (did you mean `path`?)",
            "expected one of `kind`, `path`, `identity_file`, `identity_credential`",
        ],
    );
    assert_eq!(err.column, Some(1));
    assert!(
        err.to_string().starts_with("/etc/rotavault/config.toml:7:1: stores.local.pathh: unknown key"),
        "{err}"
    );
}

#[test]
fn an_unknown_table_is_reported_with_the_top_level_keys() {
    error(
        "state_dir = \"/srv/rotavault\"\n[polcy]\nmax_age = \"7d\"\n",
        2,
        "polcy",
        &["did you mean `policy`?", "`state_dir`", "`jobs`"],
    );
}

#[test]
fn an_unknown_key_in_an_inline_table_names_the_array_element() {
    let source = MINIMAL.replace("name = \"webhooks/signing-key\"", "nmae = \"webhooks/signing-key\"");
    error(&source, 9, "jobs.webhook.stores[0].nmae", &["did you mean `name`?", "`store`, `name`, `adopt`"]);
}

#[test]
fn an_inline_secret_gets_a_hint_and_is_never_repeated() {
    let source = r#"[stores.vault]
kind = "file"
path = "secrets.age"
identity_file = "store.key"
password = "hunter2-very-secret"
"#;
    let err = error(
        source,
        5,
        "stores.vault.password",
        &["unknown key `password`", "never written inline", "`*_file`", "systemd credential", "a store"],
    );
    assert!(!err.to_string().contains("hunter2"), "{err}");

    let source = format!("{MINIMAL}client_secret = \"hunter2-very-secret\"\n");
    let err = error(&source, 11, "jobs.webhook.client_secret", &["never written inline"]);
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn a_secret_written_where_the_secret_rules_go_is_never_repeated() {
    let source = format!("{MINIMAL}secret = \"hunter2-very-secret\"\n");
    let err = error(
        &source,
        11,
        "jobs.webhook.secret",
        &["expected a table, found a string", "never written inline"],
    );
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn a_key_like_name_that_is_a_reference_gets_no_inline_secret_hint() {
    let source = format!("{MINIMAL}token_file = \"/etc/rotavault/token\"\n");
    let err = error(&source, 11, "jobs.webhook.token_file", &["unknown key `token_file`"]);
    assert!(!err.message.contains("inline"), "{err}");
}

#[test]
fn a_toml_syntax_error_names_line_column_and_key() {
    let source = "[stores.local]\nkind = \"file\"\npath = /var/lib/rotavault/secrets.age\n";
    let err = error(source, 3, "stores.local.path", &["invalid TOML", "quoted"]);
    assert_eq!(err.column, Some(8));
}

#[test]
fn a_syntax_error_outside_any_key_names_none() {
    let err = load("[stores.local\nkind = \"memory\"\n").expect_err("unclosed header");
    assert_eq!((err.line, err.column, err.key.as_deref()), (Some(1), Some(14), None), "{err}");
    assert_eq!(
        err.to_string(),
        "/etc/rotavault/config.toml:1:14: invalid TOML: unclosed table, expected `]`"
    );
}

#[test]
fn a_duplicate_key_names_the_key() {
    let source = "[stores.local]\nkind = \"memory\"\nkind = \"file\"\n";
    error(source, 3, "stores.local.kind", &["invalid TOML", "duplicate key"]);
}

#[test]
fn a_wrong_type_says_what_is_expected() {
    let source = "[rotation]\nsettle = \"1s\"\nverify_attempts = \"3\"\n";
    error(source, 3, "rotation.verify_attempts", &["expected a whole number (0 or more), found a string"]);
}

#[test]
fn a_missing_key_is_reported_at_its_table() {
    let source = MINIMAL.replace("target = \"shared\"\n", "");
    error(&source, 7, "jobs.webhook", &["missing key `target`"]);
}

#[test]
fn an_unknown_kind_lists_the_kinds() {
    let source = MINIMAL.replace("kind = \"memory\"", "kind = \"s3\"");
    error(&source, 2, "stores.local.kind", &["unknown value `s3`: expected one of `file`, `memory`"]);
    let source = MINIMAL.replace("kind = \"generated\"", "kind = \"http\"");
    error(
        &source,
        5,
        "targets.shared.kind",
        &["unknown value `http`: expected one of `generated`, `autotask`, `command`, `webhook`"],
    );
}

#[test]
fn a_kind_without_settings_accepts_no_other_key() {
    let source = MINIMAL.replace("kind = \"memory\"", "kind = \"memory\"\npath = \"x\"");
    error(&source, 3, "stores.local.path", &["unknown key `path`", "expected `kind`"]);
}

#[test]
fn an_unknown_character_class_lists_the_classes() {
    let source = format!("{MINIMAL}[jobs.webhook.secret]\nrequire = [\"upper\", \"uppercase\"]\n");
    error(
        &source,
        12,
        "jobs.webhook.secret.require[1]",
        &["unknown value `uppercase`", "`upper`, `lower`, `digit`, `special`"],
    );
}

#[test]
fn durations_take_a_unit() {
    let source = r#"[rotation]
settle = "0s"
verify_backoff = "1m 30s"
call_timeout = "50m"
apply_horizon = "12h 30m"
"#;
    let rotation = valid_without_jobs(source).rotation;
    assert_eq!(rotation.settle, Duration::ZERO, "no settle time is allowed");
    assert_eq!(rotation.verify_backoff, Duration::from_secs(90));
    assert_eq!(rotation.call_timeout, Duration::from_secs(3_000));
    assert_eq!(rotation.apply_horizon, Some(Duration::from_secs(12 * 3_600 + 1_800)));
    let older = valid_without_jobs("[rotation]\npropagation_grace = \"20m\"\n").rotation;
    assert_eq!(older.apply_horizon, Some(Duration::from_secs(1_200)), "the older name is still read");

    error(
        "[policy]\nmax_age = 30\n",
        2,
        "policy.max_age",
        &["expected a duration with a unit, such as \"90d\"", "found integer `30`"],
    );
    error(
        "[policy]\nmax_age = \"30 days and a bit\"\n",
        2,
        "policy.max_age",
        &["`30 days and a bit` is not a duration", "expected a duration with a unit"],
    );
}

#[test]
fn a_zero_duration_is_refused_where_it_makes_no_sense() {
    error("[rotation]\ncall_timeout = \"0s\"\n", 2, "rotation.call_timeout", &["longer than 0s"]);
    error("[rotation]\nverify_backoff = \"0ms\"\n", 2, "rotation.verify_backoff", &["longer than 0s"]);
    error("[policy]\nmax_age = \"0d\"\n", 2, "policy.max_age", &["longer than 0s"]);
    let source = MINIMAL.replace("max_age = \"30d\"", "max_age = \"0s\"");
    error(&source, 10, "jobs.webhook.max_age", &["longer than 0s"]);
}

#[test]
fn a_missing_file_is_a_config_error_naming_it() {
    let err = crate::config::load(Path::new("/nonexistent/rotavault.toml")).expect_err("no such file");
    assert_eq!(err.file, Path::new("/nonexistent/rotavault.toml"));
    assert_eq!(err.line, None);
    assert!(err.message.contains("cannot read"), "{err}");
    assert_eq!(crate::config::EXIT_CONFIG, 78);
}

#[test]
fn a_file_that_is_not_utf8_is_reported_at_its_first_bad_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.toml");
    // "café" in Latin-1 on line 3, after a two-byte UTF-8 character that counts as one column.
    let mut bytes = b"[policy]\nmax_age = \"90d\"\n# \xC3\xA9 caf".to_vec();
    bytes.extend_from_slice(b"\xE9\n");
    std::fs::write(&path, &bytes).expect("write");
    let err = crate::config::load(&path).expect_err("not UTF-8");
    assert_eq!((err.line, err.column), (Some(3), Some(8)), "{err}");
    assert!(err.message.contains("byte 0xE9 is not UTF-8: expected a UTF-8 text file"), "{err}");
    assert_eq!(err.file, path);
}
