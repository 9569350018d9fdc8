//! `[policy]` and `[rotation]`: the maximum age held against every job's schedule, and the secret rules combined
//! from the target, `[policy]` and the job.

use super::*;
use crate::secret::{CharClass, PositionRule};
use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);

/// A config with `[policy]` `policy` and the job's trigger and rules `job` (both written as TOML lines).
fn with(policy: &str, job: &str) -> String {
    format!(
        "[policy]\n{policy}\n[stores.local]\nkind = \"memory\"\n[targets.shared]\nkind = \"generated\"\n\
         [jobs.webhook]\ntarget = \"shared\"\nstores = [ {{ store = \"local\", name = \"k\" }} ]\n{job}"
    )
}

#[test]
fn a_schedule_that_cannot_keep_the_secret_young_enough_is_refused() {
    // Line 10 is the job's first line after `stores`; with a one-line [policy].
    let err =
        error(&with("max_age = \"7d\"", "schedule = \"0 0 1 * *\"\n"), 10, "jobs.webhook.schedule", &[]);
    assert_eq!(
        err.message,
        "rotates at most every 31d (schedule `0 0 1 * *`), longer than [policy] max_age = 7d: set a more frequent \
         schedule or max_age <= 7d"
    );
    // The window counts: weekly plus up to 2 days late is 9 days.
    error(
        &with("max_age = \"8d\"", "schedule = \"0 3 * * SUN\"\nwindow = \"2d\"\n"),
        10,
        "jobs.webhook.schedule",
        &["rotates at most every 9d (schedule `0 3 * * SUN` and window 2d)"],
    );
    valid(&with("max_age = \"8d\"", "schedule = \"0 3 * * SUN\"\nwindow = \"1d\"\n"));
}

#[test]
fn a_leap_day_schedule_is_refused_even_in_years_without_a_leap_day_near() {
    // Measured from 5 January 2026: the next 29 February is in 2028, beyond the two years looked at, but the gap
    // the date falls in runs from 2024 to 2028.
    error(
        &with("max_age = \"730d\"", "schedule = \"0 0 29 2 *\"\n"),
        10,
        "jobs.webhook.schedule",
        &["rotates at most every 1461d (schedule `0 0 29 2 *`), longer than [policy] max_age = 730d"],
    );
}

#[test]
fn a_verdict_shared_by_a_thousand_jobs_never_covers_a_job_with_another_window() {
    let mut source = with("max_age = \"8d\"", "schedule = \"0 3 * * SUN\"\nwindow = \"1d\"\n");
    for i in 0..1_000 {
        source.push_str(&format!(
            "[jobs.j{i}]\ntarget = \"shared\"\nstores = [ {{ store = \"local\", name = \"k{i}\" }} ]\n\
             schedule = \"0 3 * * SUN\"\nwindow = \"1d\"\n"
        ));
    }
    assert_eq!(valid(&source).jobs.len(), 1_001);
    // The last job alone is refused when its window makes it too slow, although its schedule is shared.
    source.push_str(
        "[jobs.late]\ntarget = \"shared\"\nstores = [ { store = \"local\", name = \"late\" } ]\n\
         schedule = \"0 3 * * SUN\"\nwindow = \"2d\"\n",
    );
    let err = load(&source).expect_err("the late job is refused");
    assert_eq!(err.key.as_deref(), Some("jobs.late.schedule"), "{err:?}");
}

#[test]
fn a_job_max_age_within_the_policy_covers_a_slow_schedule() {
    let config = valid(&with("max_age = \"7d\"", "schedule = \"0 0 1 * *\"\nmax_age = \"7d\"\n"));
    assert_eq!(config.policy.max_age, Some(7 * DAY));
    assert_eq!(config.jobs["webhook"].max_age, Some(7 * DAY));
}

#[test]
fn a_job_max_age_above_the_policy_is_refused() {
    error(
        &with("max_age = \"7d\"", "schedule = \"0 3 * * *\"\nmax_age = \"30d\"\n"),
        11,
        "jobs.webhook.max_age",
        &["30d is longer than [policy] max_age = 7d: expected at most 7d"],
    );
}

#[test]
fn the_policy_min_length_raises_the_default_length_and_forbidden_characters_add_up() {
    let config = valid(&with(
        "min_length = 40\nforbidden = \"\\\"'` \"",
        "max_age = \"1d\"\n[jobs.webhook.secret]\nforbidden = \"#\"\n",
    ));
    let policy = &config.jobs["webhook"].secret_policy;
    assert_eq!(policy.length, 40);
    assert_eq!(policy.min_length, 40);
    assert_eq!(policy.forbidden, ['"', '\'', '`', ' ', '#'].into_iter().collect());
    assert_eq!(config.policy.forbidden, ['"', '\'', '`', ' '].into_iter().collect());

    let config = valid(&with("min_length = 24", "max_age = \"1d\"\n"));
    assert_eq!(config.jobs["webhook"].secret_policy.length, 32, "the larger of 32 and min_length");
}

#[test]
fn an_explicit_length_below_the_policy_is_refused_not_raised() {
    error(
        &with("min_length = 24", "max_age = \"1d\"\n[jobs.webhook.secret]\nlength = 20\n"),
        12,
        "jobs.webhook.secret.length",
        &[
            "20 is outside the lengths allowed by target `shared` and [policy] min_length: expected 24 to 4096",
        ],
    );
}

#[test]
fn the_job_rules_are_taken_as_written() {
    let job = r#"max_age = "1d"
[jobs.webhook.secret]
length = 48
alphabet = "abcXYZ123-_"
require = ["upper", "special"]
min_groups = 2
positions = [ { class = "special", from = 2, to = 6 } ]
"#;
    let policy = valid(&with("", job)).jobs["webhook"].secret_policy.clone();
    assert_eq!(policy.length, 48);
    assert_eq!(policy.alphabet, Some("abcXYZ123-_".chars().collect()));
    assert_eq!(policy.require, [CharClass::Upper, CharClass::Special].into_iter().collect());
    assert_eq!(policy.min_groups, 2);
    assert_eq!(policy.positions, vec![PositionRule { class: CharClass::Special, from: 2, to: 6 }]);
}

#[test]
fn rules_that_cannot_all_be_met_are_refused_with_the_reason() {
    error(
        &with(
            "forbidden = \"0123456789\"",
            "max_age = \"1d\"\n[jobs.webhook.secret]\nrequire = [\"digit\"]\n",
        ),
        11,
        "jobs.webhook.secret",
        &["the secret policy cannot be met: a digit is required but none is allowed", "target `shared`"],
    );
    // Without a [jobs.NAME.secret] table, the job is where the combination fails: here [policy] forbids every
    // character of the default alphabet.
    let everything: String =
        ('!'..='~').map(|c| if c == '"' || c == '\\' { format!("\\{c}") } else { c.to_string() }).collect();
    error(
        &with(&format!("forbidden = \"{everything}\""), "max_age = \"1d\"\n"),
        7,
        "jobs.webhook",
        &["the secret policy cannot be met: no character is allowed"],
    );
}

#[test]
fn single_secret_rules_are_reported_at_their_key() {
    error(
        &with(
            "",
            "max_age = \"1d\"\n[jobs.webhook.secret]\npositions = [ { class = \"special\", from = 0, to = 3 } ]\n",
        ),
        12,
        "jobs.webhook.secret.positions[0]",
        &["positions 0 to 3 are not a range: expected 1 <= from <= to"],
    );
    error(
        &with("", "max_age = \"1d\"\n[jobs.webhook.secret]\nmin_groups = 4\n"),
        12,
        "jobs.webhook.secret.min_groups",
        &["expected 0 to 3"],
    );
    error(
        &with("", "max_age = \"1d\"\n[jobs.webhook.secret]\nalphabet = \"ab\\tc\"\n"),
        12,
        "jobs.webhook.secret.alphabet",
        &["control character"],
    );
}

#[test]
fn the_policy_min_length_must_be_usable() {
    error(&with("min_length = 0", "max_age = \"1d\"\n"), 2, "policy.min_length", &["expected 1 to 4096"]);
}

#[test]
fn verify_attempts_are_limited_to_protect_the_lockout_counter() {
    for n in [0, 11] {
        error(
            &format!("[rotation]\nverify_attempts = {n}\n"),
            2,
            "rotation.verify_attempts",
            &["out of range: expected 1 to 10", "lockout"],
        );
    }
    assert_eq!(valid_without_jobs("[rotation]\nverify_attempts = 10\n").rotation.verify_attempts, 10);
}

#[test]
fn min_strength_bits_refuses_a_job_whose_secret_rules_cannot_give_it() {
    let strong = format!("[policy]\nmin_strength_bits = 128\n{MINIMAL}");
    valid(&strong);
    let weak = strong
        .replace("[jobs.webhook]\n", "[jobs.webhook]\nsecret = { length = 12, alphabet = \"0123456789\" }\n");
    let err = load(&weak).expect_err("39 bits");
    assert_eq!(err.key.as_deref(), Some("jobs.webhook.secret"), "{err}");
    assert!(err.message.contains("the secret rules give 39 bits"), "{err}");
    assert!(err.message.contains("expected at least 128 ([policy] min_strength_bits)"), "{err}");
    error(
        &format!("[policy]\nmin_strength_bits = 0\n{MINIMAL}"),
        2,
        "policy.min_strength_bits",
        &["expected 1 to 4096"],
    );
}

#[test]
fn the_heartbeat_is_off_by_default_set_by_policy_and_overridden_or_turned_off_per_job() {
    let config = valid(&with("", "max_age = \"30d\"\n"));
    assert_eq!(config.jobs["webhook"].heartbeat, None, "off unless asked for");
    let config = valid(&with("heartbeat = \"12h\"", "max_age = \"30d\"\n"));
    assert_eq!(config.policy.heartbeat, Some(Duration::from_secs(12 * 3600)));
    assert_eq!(config.jobs["webhook"].heartbeat, Some(Duration::from_secs(12 * 3600)), "the policy's");
    let config = valid(&with("heartbeat = \"12h\"", "max_age = \"30d\"\nheartbeat = \"1h\"\n"));
    assert_eq!(config.jobs["webhook"].heartbeat, Some(Duration::from_secs(3600)), "the job's own");
    let config = valid(&with("heartbeat = \"12h\"", "max_age = \"30d\"\nheartbeat = \"0s\"\n"));
    assert_eq!(config.jobs["webhook"].heartbeat, None, "\"0s\" turns it off for the job");
    let config = valid(&with("heartbeat = \"0s\"", "max_age = \"30d\"\n"));
    assert_eq!(config.policy.heartbeat, None);
}

#[test]
fn a_heartbeat_longer_than_a_season_is_refused_naming_the_limit() {
    error(
        &with("heartbeat = \"100d\"", "max_age = \"30d\"\n"),
        2,
        "policy.heartbeat",
        &["too long", "90d", "\"0s\" turns"],
    );
    error(&with("", "max_age = \"30d\"\nheartbeat = \"1y\"\n"), 11, "jobs.webhook.heartbeat", &["too long"]);
}
