//! Jobs: references to stores and targets, the rotation trigger, schedules, and secrets used twice.

use super::*;

const TWO_STORES: &str = r#"[stores.local]
kind = "memory"

[stores.scratch]
kind = "memory"

[targets.shared]
kind = "generated"

[jobs.webhook]
target = "shared"
stores = [
  { store = "local", name = "webhooks/signing-key", adopt = true },
  { store = "locl", name = "webhooks/signing-key" },
]
max_age = "30d"
"#;

#[test]
fn an_unknown_store_is_reported_at_the_reference_with_the_defined_stores() {
    error(
        TWO_STORES,
        14,
        "jobs.webhook.stores[1].store",
        &["unknown store `locl`: expected one of the defined stores: `local`, `scratch`"],
    );
    let fixed = valid(&TWO_STORES.replace("\"locl\"", "\"scratch\""));
    let stores = &fixed.jobs["webhook"].stores;
    assert_eq!(stores.len(), 2);
    assert!(stores[0].adopt && !stores[1].adopt);
    assert_eq!((stores[1].store.as_str(), stores[1].name.as_str()), ("scratch", "webhooks/signing-key"));
}

#[test]
fn an_unknown_target_is_reported_with_the_defined_targets() {
    let source = MINIMAL.replace("target = \"shared\"", "target = \"autotask\"");
    error(
        &source,
        8,
        "jobs.webhook.target",
        &["unknown target `autotask`: expected one of the defined targets: `shared`"],
    );
    let source = MINIMAL.replace("[targets.shared]\nkind = \"generated\"\n", "");
    error(&source, 6, "jobs.webhook.target", &["no targets are defined", "[targets.shared]"]);
}

#[test]
fn a_job_needs_a_store() {
    let source =
        MINIMAL.replace("stores = [ { store = \"local\", name = \"webhooks/signing-key\" } ]", "stores = []");
    error(&source, 9, "jobs.webhook.stores", &["the job has no store: expected at least one"]);
    let source = MINIMAL.replace("stores = [ { store = \"local\", name = \"webhooks/signing-key\" } ]\n", "");
    error(&source, 7, "jobs.webhook.stores", &["the job has no store"]);
}

#[test]
fn a_secret_used_by_two_jobs_is_reported_at_the_later_one() {
    // `b-first` comes first in the file and `a-later` after it: the error is at the later one in the file, not in
    // name order.
    let source = r#"[stores.local]
kind = "memory"

[targets.shared]
kind = "generated"

[jobs.b-first]
target = "shared"
stores = [ { store = "local", name = "shared/key" } ]
max_age = "30d"

[jobs.a-later]
target = "shared"
stores = [ { store = "local", name = "other/key" }, { store = "local", name = "shared/key" } ]
max_age = "30d"
"#;
    error(
        source,
        14,
        "jobs.a-later.stores[1]",
        &[
            "store `local` secret `shared/key` is already used by job `b-first` (jobs.b-first.stores[0], line 9)",
            "exactly one job",
        ],
    );
}

#[test]
fn a_secret_listed_twice_in_one_job_is_reported() {
    let source = MINIMAL.replace(
        "stores = [ { store = \"local\", name = \"webhooks/signing-key\" } ]",
        "stores = [\n  { store = \"local\", name = \"k\" },\n  { store = \"local\", name = \"k\", adopt = true },\n]",
    );
    error(
        &source,
        11,
        "jobs.webhook.stores[1]",
        &["already used by this job (jobs.webhook.stores[0], line 10)"],
    );
}

#[test]
fn a_job_needs_a_schedule_or_a_max_age() {
    let source = MINIMAL.replace("max_age = \"30d\"\n", "");
    error(
        &source,
        7,
        "jobs.webhook",
        &["the job never rotates: expected `schedule` (a cron expression), `max_age`"],
    );
}

#[test]
fn a_schedule_error_is_reported_at_the_key_it_concerns() {
    let with = |lines: &str| MINIMAL.replace("max_age = \"30d\"\n", lines);
    let err = error(&with("schedule = \"0 3 * *\"\n"), 10, "jobs.webhook.schedule", &["0 3 * *"]);
    assert_eq!(err.column, Some(12), "at the value");
    assert!(
        err.to_string().starts_with("/etc/rotavault/config.toml:10:12: jobs.webhook.schedule: "),
        "{err}"
    );
    error(
        &with("schedule = \"0 3 * * SUN\"\ntimezone = \"Mars/Olympus_Mons\"\n"),
        11,
        "jobs.webhook.timezone",
        &[],
    );
    error(
        &with("window = \"2h\"\nmax_age = \"30d\"\n"),
        10,
        "jobs.webhook.window",
        &["applies to a schedule and the job has none"],
    );
    error(
        &with("timezone = \"UTC\"\nmax_age = \"30d\"\n"),
        10,
        "jobs.webhook.timezone",
        &["applies to a schedule"],
    );
}

#[test]
fn a_schedule_alone_is_a_trigger() {
    let source = MINIMAL.replace(
        "max_age = \"30d\"\n",
        "schedule = \"0 0 3 * * SUN\"\ntimezone = \"Europe/Amsterdam\"\nwindow = \"2h\"\n",
    );
    let job = &valid(&source).jobs["webhook"];
    assert!(job.schedule.is_some());
    assert_eq!(job.max_age, None);
}

#[test]
fn a_job_on_a_target_that_keeps_its_credential_needs_a_durable_store() {
    let memory_only = r#"[stores.mem]
kind = "memory"

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
stores = [ { store = "mem", name = "autotask/backup" } ]
max_age = "30d"
"#;
    error(
        memory_only,
        17,
        "jobs.backup.stores",
        &[
            "every store of this job is `memory`, which forgets the secret when the process ends",
            "target `autotask` (kind `autotask`)",
            "expected at least one durable store",
        ],
    );
    // One durable store beside the memory one is enough.
    let with_file = memory_only.replace(
        "stores = [ { store = \"mem\", name = \"autotask/backup\" } ]",
        "stores = [ { store = \"mem\", name = \"autotask/backup\" }, { store = \"local\", name = \"autotask/backup\" } ]",
    );
    assert_eq!(valid(&with_file).jobs["backup"].stores.len(), 2);
    // A generated secret exists nowhere else, so a memory-only job on `generated` loses nothing real.
    assert_eq!(valid(MINIMAL).jobs["webhook"].stores[0].store, "local");
}
