//! A config is read a job section at a time when it can be (`sections`), and the result must be exactly what
//! reading it as one document gives: the same config, the same file positions, the same errors.

use super::*;
use crate::config::{parse_apart, parse_whole};

const EXAMPLE: &str = include_str!("../../../config/example.toml");

fn apart(source: &str) -> Option<Config> {
    parse_apart(source, Path::new(FILE), now(), Jobs::Required)
}

fn whole(source: &str) -> Result<Config, ConfigError> {
    parse_whole(source, Path::new(FILE), now(), Jobs::Required)
}

/// Jobs between other sections, a job with a sub-table and an array of tables, and an Autotask job whose
/// integration code file must be placed at its own line.
const MIXED: &str = r#"state_dir = "/var/lib/rotavault"

[stores.local]
kind = "memory"

[stores.vault]
kind = "file"
path = "/var/lib/rotavault/secrets"
identity_file = "/etc/rotavault/store.key"

[targets.shared]
kind = "generated"

[jobs.first]
target = "shared"
stores = [ { store = "local", name = "first" } ]
max_age = "30d"

[jobs.first.secret]
length = 40

[targets.autotask]
kind = "autotask"
admin = { store = "vault", name = "autotask/admin" }

[jobs.autotask-api]
target = "autotask"
users = ["api@example.com"]
integration_code_file = "/etc/rotavault/autotask.code"
stores = [ { store = "vault", name = "autotask/api" } ]
schedule = "0 3 * * 1"

[[jobs.autotask-api.after_rotation]]
kind = "webhook"
url_file = "/etc/rotavault/hook.url"
key_file = "/etc/rotavault/hook.key"

[jobs.last]
target = "shared"
stores = [ { store = "local", name = "last" } ]
schedule = "0 4 * * *"
"#;

#[test]
fn a_config_of_plain_job_sections_is_read_apart_into_what_the_whole_read_gives() {
    for (what, source) in [("MINIMAL", MINIMAL), ("the example", EXAMPLE), ("MIXED", MIXED)] {
        let whole = whole(source).unwrap_or_else(|e| panic!("{what}: {e}"));
        let apart = apart(source).unwrap_or_else(|| panic!("{what} was not read apart"));
        assert_eq!(format!("{apart:?}"), format!("{whole:?}"), "{what}");
    }
}

#[test]
fn files_a_job_names_keep_their_line_when_the_job_is_read_apart() {
    let config = apart(MIXED).expect("read apart");
    let line_of = |needle: &str| MIXED.lines().position(|l| l.contains(needle)).map(|i| i + 1);
    let placed: Vec<(&str, Option<usize>)> = config.files.iter().map(|f| (f.key.as_str(), f.line)).collect();
    assert_eq!(
        placed,
        [
            ("stores.vault.identity_file", line_of("store.key")),
            ("jobs.autotask-api.integration_code_file", line_of("autotask.code")),
            ("jobs.autotask-api.after_rotation[0].url_file", line_of("hook.url")),
            ("jobs.autotask-api.after_rotation[0].key_file", line_of("hook.key")),
        ]
    );
}

#[test]
fn a_config_that_cannot_be_read_apart_is_read_whole_with_the_same_result() {
    let cases = [
        // A job in two runs of lines.
        format!("{MINIMAL}\n[stores.other]\nkind = \"memory\"\n\n[jobs.webhook.secret]\nlength = 40\n"),
        // The same table twice, in one run and in two.
        format!("{MINIMAL}\n[jobs.webhook]\nmax_age = \"20d\"\n"),
        format!("{MINIMAL}\n[stores.other]\nkind = \"memory\"\n\n[jobs.webhook]\nmax_age = \"20d\"\n"),
        // Jobs outside `[jobs.NAME]` sections: in the `[jobs]` table, and under a quoted name.
        format!(
            "{MINIMAL}\n[jobs]\nother = {{ target = \"shared\", stores = [ {{ store = \"local\", name = \"o\" }} ], \
             max_age = \"30d\" }}\n"
        ),
        format!("{MINIMAL}\n[jobs.\"quoted\"]\ntarget = \"shared\"\nstores = []\n"),
        // A line that looks like a header inside a multi-line string, before and within a job.
        format!("[stores.note]\nkind = \"memory\"\nnote = \"\"\"\n[jobs.fake]\n\"\"\"\n\n{MINIMAL}"),
        format!("{MINIMAL}note = \"\"\"\n[stores.fake]\n\"\"\"\n"),
        // A broken job among good ones, and a duplicate secret across two jobs read apart.
        format!("{MINIMAL}\n[jobs.broken]\ntarget = \"nowhere\"\n"),
        format!(
            "{MINIMAL}\n[jobs.twin]\ntarget = \"shared\"\nstores = [ {{ store = \"local\", name = \
             \"webhooks/signing-key\" }} ]\nmax_age = \"30d\"\n"
        ),
    ];
    for source in &cases {
        let read = load(source);
        assert_eq!(format!("{read:?}"), format!("{:?}", whole(source)), "{source}");
    }
    // The first five are valid TOML in one piece but not apart, or invalid: none is accepted apart.
    for source in &cases {
        assert!(apart(source).is_none() || whole(source).is_ok(), "accepted apart, refused whole: {source}");
    }
}

#[test]
fn many_jobs_are_read_in_groups_with_the_same_result() {
    // More jobs than one group holds, with a store between two runs of them, and a job with a sub-table at a
    // group's edge.
    let mut source = String::from(MINIMAL);
    for i in 0..150 {
        if i == 70 {
            source.push_str("\n[stores.middle]\nkind = \"memory\"\n");
        }
        source.push_str(&format!(
            "\n[jobs.j{i:03}]\ntarget = \"shared\"\nstores = [ {{ store = \"local\", name = \"s/{i}\" }} ]\n\
             max_age = \"{}d\"\n",
            10 + i % 7
        ));
        if i == 63 {
            source.push_str("\n[jobs.j063.secret]\nlength = 41\n");
        }
    }
    let whole = whole(&source).unwrap_or_else(|e| panic!("{e}"));
    let apart = apart(&source).expect("read apart");
    assert_eq!(apart.jobs.len(), 151);
    assert_eq!(apart.jobs["j063"].secret_policy.length, 41);
    assert_eq!(format!("{apart:?}"), format!("{whole:?}"));
}
