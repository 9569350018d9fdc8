//! Autotask targets and jobs: the admin reference, the tenant settings, users, integration code and format.

use super::*;

const AUTOTASK: &str = r#"[stores.aws]
kind = "aws_secrets_manager"

[targets.autotask]
kind = "autotask"
admin = { store = "aws", name = "autotask/admin" }

[jobs.backup]
target = "autotask"
users = ["backup-api@example.com"]
integration_code_file = "/etc/rotavault/backup.code"
stores = [ { store = "aws", name = "autotask/backup" } ]
max_age = "30d"
"#;

#[test]
fn an_autotask_job_loads_with_defaults() {
    let config = valid(AUTOTASK);
    let crate::config::TargetConfig::Autotask(target) = &config.targets["autotask"] else {
        panic!("an autotask target")
    };
    assert_eq!(target.zone_lookup_url, crate::config::AUTOTASK_ZONE_LOOKUP);
    assert_eq!((target.threads, target.hourly_budget), (1, 1000));
    assert_eq!(target.admin.as_ref().and_then(|a| a.job.as_deref()), None, "no job rotates the admin here");
    let account = config.jobs["backup"].autotask.as_ref().expect("an account");
    assert_eq!(account.users, ["backup-api@example.com"]);
    assert_eq!(account.format, crate::target::autotask::PayloadFormat::Json);
    assert_eq!(account.integration_code, crate::config::FileRef::File("/etc/rotavault/backup.code".into()));
    // The target's rules hold for the job: at most 64 characters, a special character in positions 2-6.
    let policy = &config.jobs["backup"].secret_policy;
    assert_eq!(policy.max_length, 64);
    assert!(!policy.positions.is_empty());
}

#[test]
fn a_job_rotating_the_admin_credential_is_linked_as_its_owner() {
    let source = format!(
        "{AUTOTASK}\n[jobs.admin]\ntarget = \"autotask\"\nusers = [\"admin@example.com\"]\n\
         integration_code_file = \"/etc/rotavault/admin.code\"\nstores = [ {{ store = \"aws\", name = \"autotask/admin\" }} ]\nmax_age = \"30d\"\n"
    );
    let config = valid(&source);
    let crate::config::TargetConfig::Autotask(target) = &config.targets["autotask"] else {
        panic!("autotask")
    };
    assert_eq!(target.admin.as_ref().and_then(|a| a.job.as_deref()), Some("admin"));

    let bare = source.replace("max_age = \"30d\"\n", "max_age = \"30d\"\nformat = \"secret\"\n");
    error(&bare, 20, "jobs.admin.stores[0]", &["admin credential of target `autotask`", "format = \"json\""]);
}

#[test]
fn the_admin_store_must_exist() {
    error(
        &AUTOTASK
            .replace("{ store = \"aws\", name = \"autotask/admin\" }", "{ store = \"vault\", name = \"a\" }"),
        6,
        "targets.autotask.admin.store",
        &["unknown store `vault`", "`aws`"],
    );
}

#[test]
fn an_autotask_job_needs_users_and_an_integration_code() {
    error(
        &AUTOTASK.replace("users = [\"backup-api@example.com\"]\n", ""),
        8,
        "jobs.backup.users",
        &["0 user names"],
    );
    error(
        &AUTOTASK.replace("[\"backup-api@example.com\"]", "[\"a@x\", \"b@x\", \"c@x\"]"),
        10,
        "jobs.backup.users",
        &["3 user names", "two to alternate"],
    );
    error(
        &AUTOTASK.replace("[\"backup-api@example.com\"]", "[\"a@x\", \"a@x\"]"),
        10,
        "jobs.backup.users[1]",
        &["the same user twice"],
    );
    error(
        &AUTOTASK.replace("integration_code_file = \"/etc/rotavault/backup.code\"\n", ""),
        8,
        "jobs.backup",
        &["no integration code", "integration_code_file"],
    );
}

#[test]
fn a_bare_secret_cannot_serve_two_users() {
    let source = AUTOTASK
        .replace("[\"backup-api@example.com\"]", "[\"a@x\", \"b@x\"]")
        .replace("max_age = \"30d\"", "max_age = \"30d\"\nformat = \"secret\"");
    error(&source, 14, "jobs.backup.format", &["format = \"json\" for alternating users"]);
}

#[test]
fn autotask_keys_on_another_target_are_refused() {
    let source = format!("{MINIMAL}users = [\"x@y\"]\n");
    error(&source, 11, "jobs.webhook.users", &["applies to Autotask jobs", "`generated`"]);
}

#[test]
fn tenant_settings_are_range_checked() {
    let with =
        |line: &str| AUTOTASK.replace("kind = \"autotask\"\n", &format!("kind = \"autotask\"\n{line}\n"));
    error(&with("threads = 4"), 6, "targets.autotask.threads", &["1 to 3"]);
    error(&with("hourly_budget = 20000"), 6, "targets.autotask.hourly_budget", &["1 to 10000"]);
    error(&with("zone_lookup_url = \"ftp://x\""), 6, "targets.autotask.zone_lookup_url", &["not a URL"]);
    error(
        &with("zone_lookup_url = \"http://webservices2.autotask.net/atservicesrest/\""),
        6,
        "targets.autotask.zone_lookup_url",
        &["http://webservices2.autotask.net/atservicesrest/", "plain http", "expected https", "loopback"],
    );
    valid(&with("zone_lookup_url = \"http://localhost:9/atservicesrest/\""));
    let config = valid(&with("zone_lookup_url = \"http://127.0.0.1:9/atservicesrest\""));
    let crate::config::TargetConfig::Autotask(target) = &config.targets["autotask"] else {
        panic!("autotask")
    };
    assert_eq!(target.zone_lookup_url, "http://127.0.0.1:9/atservicesrest/", "a trailing slash is added");
}

#[test]
fn the_admin_secret_name_follows_the_rules_of_its_store() {
    let empty = AUTOTASK.replace("name = \"autotask/admin\"", "name = \"\"");
    error(&empty, 6, "targets.autotask.admin.name", &["not a secret name"]);
    let blank = AUTOTASK.replace("name = \"autotask/admin\"", "name = \"  \"");
    error(&blank, 6, "targets.autotask.admin.name", &["not a secret name"]);
    // The store's own rules apply, as for a job's secret: AWS takes no spaces.
    let spaced = AUTOTASK.replace("name = \"autotask/admin\"", "name = \"autotask admin\"");
    error(&spaced, 6, "targets.autotask.admin.name", &["not an AWS Secrets Manager secret name"]);
}

#[test]
fn a_manual_target_needs_no_admin_and_its_jobs_are_manual_unless_they_say_soap() {
    let manual =
        AUTOTASK.replace("admin = { store = \"aws\", name = \"autotask/admin\" }", "apply = \"manual\"");
    let config = valid(&manual);
    let crate::config::TargetConfig::Autotask(target) = &config.targets["autotask"] else {
        panic!("autotask")
    };
    assert!(target.manual && target.admin.is_none());
    assert!(config.jobs["backup"].autotask.as_ref().expect("account").manual);

    // A job that would be set through SOAP needs the admin the target does not have.
    let soap = manual.replace("max_age = \"30d\"\n", "max_age = \"30d\"\napply = \"soap\"\n");
    error(&soap, 14, "jobs.backup.apply", &["has no `admin`", "apply = \"manual\""]);
    // Without `apply` and without `admin`, the target says what it is missing.
    let bare = AUTOTASK.replace("admin = { store = \"aws\", name = \"autotask/admin\" }\n", "");
    error(&bare, 4, "targets.autotask", &["missing `admin`", "apply = \"manual\""]);

    // One job manual on a target that sets the others' secrets.
    let one = AUTOTASK.replace("max_age = \"30d\"\n", "max_age = \"30d\"\napply = \"manual\"\n");
    assert!(valid(&one).jobs["backup"].autotask.as_ref().expect("account").manual);
}

#[test]
fn a_manual_job_is_due_by_its_max_age_alone() {
    let manual = AUTOTASK
        .replace("max_age = \"30d\"\n", "apply = \"manual\"\nschedule = \"0 4 * * *\"\nmax_age = \"30d\"\n");
    error(&manual, 14, "jobs.backup.schedule", &["expected `max_age` and no `schedule`"]);
    let no_age = AUTOTASK.replace("max_age = \"30d\"\n", "apply = \"manual\"\nschedule = \"0 4 * * *\"\n");
    error(&no_age, 14, "jobs.backup.schedule", &["no `schedule`"]);
}
