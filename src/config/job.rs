//! `[jobs.NAME]`: one credential on one target, written to one or more stores, on a schedule, under a policy, as
//! [`JobConfig`].
//!
//! The rules that need more than one table live here: references to stores and targets, the rotation trigger,
//! the `[policy]` maximum age (in `max_age.rs`), and that no two references name the same secret in the same store (two jobs
//! rotating one secret would each invalidate the other's).

use super::document::Document;
use super::duration::ConfigDuration;
use super::error::ConfigError;
use super::hooks::{self, HookConfig};
use super::locate::KeyPath;
use super::max_age::{self, Verdicts};
use super::policy::{GlobalPolicy, MAX_AGE_LIMIT};
use super::schema::JobSchema;
use super::schema::{ApplySchema, FormatSchema};
use super::secret_rules;
use super::store::{self, StoreConfig};
use super::target::TargetConfig;
use super::validate::{nonzero, resolve_path};
use crate::schedule::Schedule;
use crate::secret::SecretPolicy;
use crate::target::autotask::PayloadFormat;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// A configured job.
#[derive(Clone, Debug)]
pub struct JobConfig {
    pub name: String,
    /// The name of a key of [`Config::targets`](super::Config::targets).
    pub target: String,
    /// Never empty; no (store, name) pair appears twice in the whole config.
    pub stores: Vec<JobStore>,
    pub schedule: Option<Schedule>,
    /// Rotate when the secret reaches this age. At least one of `schedule` and `max_age` is set.
    pub max_age: Option<Duration>,
    /// The effective rules for the job's secrets: the target's rules, `[policy]` and the job's own, combined and
    /// proven satisfiable.
    pub secret_policy: SecretPolicy,
    /// The API user(s) of an Autotask job; `None` for other targets.
    pub autotask: Option<AutotaskAccount>,
    /// The account at the target whose secret a `command` or `webhook` job rotates; `None` for other targets.
    pub account: Option<String>,
    /// Run in order once a new secret is current in every store.
    pub after_rotation: Vec<HookConfig>,
    /// The job's own blackout windows (the global ones are in `Config::blackouts`).
    pub blackouts: Vec<crate::schedule::Blackout>,
    /// How often its stored value is verified between rotations: its own `heartbeat`, else `[policy] heartbeat`;
    /// `None`: never.
    pub heartbeat: Option<Duration>,
}

/// Which Autotask API user(s) a job rotates, and what it stores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AutotaskAccount {
    /// One user, or two to alternate between (zero downtime).
    pub users: Vec<String>,
    /// The job's API tracking identifier.
    pub integration_code: FileRef,
    pub format: PayloadFormat,
    /// rotavault never sets this job's secret: a person does, in the Autotask UI, and pipes it to `rotavault
    /// import` (the job's `apply`, else its target's).
    pub manual: bool,
}

/// A value kept out of the config: a file, or a systemd credential (`$CREDENTIALS_DIRECTORY/<name>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileRef {
    File(PathBuf),
    Credential(String),
}

impl FileRef {
    /// The file's text, trimmed; errors name the file and say what is expected.
    pub fn read(&self) -> Result<String, String> {
        let path = match self {
            Self::File(path) => path.clone(),
            Self::Credential(name) => match std::env::var_os("CREDENTIALS_DIRECTORY") {
                Some(dir) => PathBuf::from(dir).join(name),
                None => {
                    return Err(format!(
                        "the systemd credential `{name}` is needed but CREDENTIALS_DIRECTORY is not set: run under                          systemd with LoadCredential={name}:PATH, or use a `*_file` key"
                    ));
                }
            },
        };
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        let text = text.trim();
        if text.is_empty() {
            return Err(format!("`{}` is empty: expected the value on one line", path.display()));
        }
        Ok(text.to_owned())
    }
}

/// One store a job writes its secret to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobStore {
    /// The name of a key of [`Config::stores`](super::Config::stores).
    pub store: String,
    /// The secret's name in that store.
    pub name: String,
    /// Whether rotavault may take over an existing secret it did not write.
    pub adopt: bool,
}

/// What every job is checked against.
pub(super) struct Context<'c> {
    /// The document the job was read from: the whole file, or the job's own section (see `sections`).
    pub doc: &'c Document<'c>,
    pub stores: &'c BTreeMap<String, StoreConfig>,
    pub targets: &'c BTreeMap<String, TargetConfig>,
    pub policy: &'c GlobalPolicy,
    /// Schedules are measured from here (a schedule's gaps can depend on the date: months, DST).
    pub now: DateTime<Utc>,
    pub memos: &'c Memos,
}

/// What jobs share and is worked out once for all of them.
#[derive(Default)]
pub(super) struct Memos {
    /// What each distinct schedule was found to be against `[policy] max_age`, so that jobs sharing a schedule
    /// measure it once.
    pub max_age_verdicts: Verdicts,
    /// Every distinct schedule parsed once and shared by the jobs that name it.
    pub schedules: Schedules,
    /// The effective secret policy of each target for jobs with no `secret` rules of their own.
    pub policies: std::cell::RefCell<BTreeMap<String, SecretPolicy>>,
}

/// Schedules by (expression, time zone, window): 10,000 jobs on a few schedules hold a few parsed expressions,
/// not 10,000.
#[derive(Default)]
pub(super) struct Schedules(std::cell::RefCell<std::collections::HashMap<ScheduleKey, Schedule>>);

/// A schedule as written: expression, time zone, window.
type ScheduleKey = (String, Option<String>, Option<Duration>);

impl Schedules {
    fn get(
        &self,
        cron: &str,
        timezone: Option<&str>,
        window: Option<Duration>,
    ) -> Result<Schedule, crate::schedule::ScheduleError> {
        let key = (cron.to_owned(), timezone.map(str::to_owned), window);
        if let Some(schedule) = self.0.borrow().get(&key) {
            return Ok(schedule.clone());
        }
        let schedule = Schedule::new(cron, timezone, window)?;
        self.0.borrow_mut().insert(key, schedule.clone());
        Ok(schedule)
    }
}

pub(super) fn build(ctx: &Context<'_>, name: &str, mut job: JobSchema) -> Result<JobConfig, ConfigError> {
    let doc = ctx.doc;
    let at = KeyPath::root().key("jobs").key(name);

    let Some(target) = ctx.targets.get(&job.target) else {
        return Err(unknown_reference(doc, &at.key("target"), "target", &job.target, ctx.targets));
    };
    if job.stores.is_empty() {
        return Err(doc.error(
            &at.key("stores"),
            "the job has no store: expected at least one, as in stores = [ { store = \"local\", name = \"...\" } ]",
        ));
    }
    let mut stores = Vec::with_capacity(job.stores.len());
    for (i, entry) in std::mem::take(&mut job.stores).into_iter().enumerate() {
        let entry_at = at.key("stores").index(i);
        let Some(store) = ctx.stores.get(&entry.store) else {
            return Err(unknown_reference(doc, &entry_at.key("store"), "store", &entry.store, ctx.stores));
        };
        store::secret_name(doc, &entry_at.key("name"), &entry.name, store)?;
        stores.push(JobStore { store: entry.store, name: entry.name, adopt: entry.adopt });
    }
    // A target that keeps the credential it is given (every kind but `generated`) would be left holding a
    // password that only this process knew, once the process ends.
    if !matches!(target, TargetConfig::Generated)
        && !stores.iter().any(|s| ctx.stores.get(&s.store).is_some_and(StoreConfig::is_durable))
    {
        return Err(doc.error(
            &at.key("stores"),
            format!(
                "every store of this job is `memory`, which forgets the secret when the process ends, and target \
                 `{}` (kind `{}`) keeps the credential rotavault sets: expected at least one durable store (`file`, \
                 `aws_secrets_manager`, `azure_key_vault` or `hashicorp_vault`)",
                job.target,
                target.kind()
            ),
        ));
    }

    let schedule = schedule(doc, &ctx.memos.schedules, &at, &job)?;
    let max_age = nonzero(doc, &at.key("max_age"), job.max_age, MAX_AGE_LIMIT)?;
    if schedule.is_none() && max_age.is_none() {
        return Err(doc.error(
            &at,
            "the job never rotates: expected `schedule` (a cron expression), `max_age` (a duration such as \"30d\"), \
             or both",
        ));
    }
    max_age::check(ctx, &at, &job, schedule.as_ref(), max_age)?;

    let secret_policy = match &job.secret {
        // The same for every job on the target without rules of its own: combined and proven once.
        None => {
            let known = ctx.memos.policies.borrow().get(&job.target).cloned();
            match known {
                Some(policy) => policy,
                None => {
                    let policy = secret_rules::effective(doc, &at, &job.target, target, ctx.policy, None)?;
                    ctx.memos.policies.borrow_mut().insert(job.target.clone(), policy.clone());
                    policy
                }
            }
        }
        Some(rules) => secret_rules::effective(doc, &at, &job.target, target, ctx.policy, Some(rules))?,
    };
    let autotask = autotask_account(ctx, &at, target, &mut job)?;
    let account = account(doc, &at, target, &job)?;
    let base = doc.file().parent().unwrap_or(std::path::Path::new(""));
    let after_rotation =
        hooks::build(doc, &at.key("after_rotation"), base, std::mem::take(&mut job.after_rotation))?;
    let blackouts = super::blackout::build(doc, &at.key("blackout"), std::mem::take(&mut job.blackout))?;
    let heartbeat =
        super::policy::heartbeat(doc, &at.key("heartbeat"), job.heartbeat)?.unwrap_or(ctx.policy.heartbeat);

    Ok(JobConfig {
        name: name.to_owned(),
        target: job.target,
        stores,
        schedule,
        max_age,
        secret_policy,
        autotask,
        account,
        after_rotation,
        blackouts,
        heartbeat,
    })
}

/// The Autotask keys of a job: required for an Autotask target, refused for any other.
fn autotask_account(
    ctx: &Context<'_>,
    at: &KeyPath,
    target: &TargetConfig,
    job: &mut JobSchema,
) -> Result<Option<AutotaskAccount>, ConfigError> {
    let doc = ctx.doc;
    if !matches!(target, TargetConfig::Autotask(_)) {
        for (key, set) in [
            ("users", job.users.is_some()),
            ("integration_code_file", job.integration_code_file.is_some()),
            ("integration_code_credential", job.integration_code_credential.is_some()),
            ("format", job.format.is_some()),
            ("apply", job.apply.is_some()),
        ] {
            if set {
                return Err(doc.error(
                    &at.key(key),
                    format!(
                        "`{key}` applies to Autotask jobs and target `{}` is of kind `{}`: expected no `{key}`",
                        job.target,
                        target.kind()
                    ),
                ));
            }
        }
        return Ok(None);
    }
    let users = job.users.take().unwrap_or_default();
    if users.is_empty() || users.len() > 2 {
        return Err(doc.error(
            &at.key("users"),
            format!(
                "{} user names: expected the API user's name, or two to alternate between, as in users = [\"api-user@example.com\"]",
                users.len()
            ),
        ));
    }
    for (i, user) in users.iter().enumerate() {
        if user.trim().is_empty() || user.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(doc.error(
                &at.key("users").index(i),
                "not a user name: expected an Autotask API user name such as \"api-user@example.com\"",
            ));
        }
    }
    if users.len() == 2 && users[0] == users[1] {
        return Err(
            doc.error(&at.key("users").index(1), "the same user twice: expected two different API users")
        );
    }
    let base = doc.file().parent().unwrap_or(std::path::Path::new(""));
    let integration_code = match (job.integration_code_file.take(), job.integration_code_credential.take()) {
        (Some(file), None) => {
            FileRef::File(resolve_path(doc, &at.key("integration_code_file"), &file, base)?)
        }
        (None, Some(name)) => FileRef::Credential(name),
        (Some(_), Some(_)) => {
            return Err(doc.error(
                &at.key("integration_code_credential"),
                "both `integration_code_file` and `integration_code_credential` are set: expected exactly one",
            ));
        }
        (None, None) => {
            return Err(doc.error(
                at,
                "the job has no integration code: expected `integration_code_file` (a file holding the API \
                 tracking identifier) or `integration_code_credential` (a systemd credential name)",
            ));
        }
    };
    let format = match job.format {
        None | Some(FormatSchema::Json) => PayloadFormat::Json,
        Some(FormatSchema::Secret) => PayloadFormat::Secret,
    };
    if format == PayloadFormat::Secret && users.len() == 2 {
        return Err(doc.error(
            &at.key("format"),
            "a bare secret cannot say which of the two users it belongs to: expected format = \"json\" for \
             alternating users",
        ));
    }
    let TargetConfig::Autotask(autotask) = target else { return Ok(None) };
    let manual = match job.apply {
        Some(apply) => apply == ApplySchema::Manual,
        None => autotask.manual,
    };
    if !manual && autotask.admin.is_none() {
        return Err(doc.error(
            &at.key("apply"),
            format!(
                "target `{}` has no `admin`, so rotavault cannot set this job's secret: expected apply = \"manual\" \
                 (a person sets it in the Autotask UI), or an `admin` on the target",
                job.target
            ),
        ));
    }
    if manual {
        if job.schedule.is_some() {
            return Err(doc.error(
                &at.key("schedule"),
                "a manual job is due by the age of its secret, which a person replaces: expected `max_age` and no \
                 `schedule`",
            ));
        }
        if job.max_age.is_none() {
            return Err(doc.error(
                at,
                "a manual job needs `max_age`: it says when a person must set a new secret (\"manual rotation \
                 due\" comes `warn_before` ahead)",
            ));
        }
    }
    Ok(Some(AutotaskAccount { users, integration_code, format, manual }))
}

/// The longest account name, in characters: a name, not a document.
const ACCOUNT_CHARS: usize = 256;

/// The `account` of a job: required for a `command` or `webhook` target, which are told whose secret to set,
/// refused for any other.
fn account(
    doc: &Document<'_>,
    at: &KeyPath,
    target: &TargetConfig,
    job: &JobSchema,
) -> Result<Option<String>, ConfigError> {
    let needed = matches!(target, TargetConfig::Command(_) | TargetConfig::Webhook(_));
    match (&job.account, needed) {
        (None, false) => Ok(None),
        (Some(_), false) => Err(doc.error(
            &at.key("account"),
            format!(
                "`account` applies to `command` and `webhook` jobs and target `{}` is of kind `{}`: expected no \
                 `account`",
                job.target,
                target.kind()
            ),
        )),
        (None, true) => Err(doc.error(
            at,
            format!(
                "the job names no account: target `{}` is of kind `{}`, which is told whose secret to set: \
                 expected `account`, as in account = \"app_user\"",
                job.target,
                target.kind()
            ),
        )),
        (Some(account), true) => {
            if account.trim().is_empty()
                || account.chars().any(char::is_control)
                || account.chars().count() > ACCOUNT_CHARS
            {
                return Err(doc.error(
                    &at.key("account"),
                    format!(
                        "not an account name: expected 1 to {ACCOUNT_CHARS} characters without control \
                         characters, as in account = \"app_user\""
                    ),
                ));
            }
            Ok(Some(account.clone()))
        }
    }
}

/// Each Autotask target's admin credential, when a job of this config rotates it (self-rotation), is linked to
/// that job, which must store the JSON payload the target reads.
pub(super) fn link_admins(
    doc: &Document<'_>,
    targets: &mut BTreeMap<String, TargetConfig>,
    jobs: &BTreeMap<String, JobConfig>,
) -> Result<(), ConfigError> {
    for (target_name, target) in targets.iter_mut() {
        let TargetConfig::Autotask(autotask) = target else { continue };
        let Some(admin) = autotask.admin.as_mut() else { continue };
        for (job_name, job) in jobs {
            let Some(i) = job.stores.iter().position(|s| s.store == admin.store && s.name == admin.name)
            else {
                continue;
            };
            let json = job.autotask.as_ref().is_some_and(|a| a.format == PayloadFormat::Json);
            if !json {
                return Err(doc.error(
                    &KeyPath::root().key("jobs").key(job_name).key("stores").index(i),
                    format!(
                        "this secret is the admin credential of target `{target_name}`, which needs the JSON \
                         payload (username, secret, integration_code): expected an Autotask job with format = \"json\""
                    ),
                ));
            }
            admin.job = Some(job_name.clone());
        }
    }
    Ok(())
}

fn unknown_reference<T>(
    doc: &Document<'_>,
    at: &KeyPath,
    what: &str,
    name: &str,
    defined: &BTreeMap<String, T>,
) -> ConfigError {
    let message = if defined.is_empty() {
        format!("unknown {what} `{name}`: no {what}s are defined; expected a [{what}s.{name}] table")
    } else {
        let names: Vec<String> = defined.keys().map(|n| format!("`{n}`")).collect();
        format!("unknown {what} `{name}`: expected one of the defined {what}s: {}", names.join(", "))
    };
    doc.error(at, message)
}

fn schedule(
    doc: &Document<'_>,
    schedules: &Schedules,
    at: &KeyPath,
    job: &JobSchema,
) -> Result<Option<Schedule>, ConfigError> {
    let timezone = job.timezone.as_deref();
    let window = job.window.map(|ConfigDuration(d)| d);
    let Some(cron) = job.schedule.as_deref() else {
        for (key, set) in [("timezone", timezone.is_some()), ("window", window.is_some())] {
            if set {
                return Err(doc.error(
                    &at.key(key),
                    format!(
                        "`{key}` applies to a schedule and the job has none: expected `schedule` as well, or \
                         no `{key}`"
                    ),
                ));
            }
        }
        return Ok(None);
    };
    match schedules.get(cron, timezone, window) {
        Ok(schedule) => Ok(Some(schedule)),
        Err(err) => {
            // The error says what is wrong but not which key holds it: find out by leaving the optional parts out.
            let key = if Schedule::new(cron, None, None).is_err() {
                "schedule"
            } else if timezone.is_some() && Schedule::new(cron, timezone, None).is_err() {
                "timezone"
            } else {
                "window"
            };
            Err(doc.error(&at.key(key), err.to_string()))
        }
    }
}

/// No two references, in one job or in two, name the same secret in the same store. Reported at the later one in
/// the file, naming the earlier.
pub(super) fn check_unique_secrets(
    doc: &Document<'_>,
    jobs: &BTreeMap<String, JobConfig>,
) -> Result<(), ConfigError> {
    // Almost always every secret is named once: prove that cheaply, and locate keys in the file only to report.
    let mut names = std::collections::HashSet::new();
    if jobs.values().flat_map(|job| &job.stores).all(|entry| names.insert((&entry.store, &entry.name))) {
        return Ok(());
    }
    let mut references: Vec<(usize, KeyPath, &str, &JobStore)> = Vec::new();
    for (name, job) in jobs {
        for (i, entry) in job.stores.iter().enumerate() {
            let at = KeyPath::root().key("jobs").key(name).key("stores").index(i);
            references.push((doc.offset(&at), at, name, entry));
        }
    }
    references.sort_by_key(|(offset, ..)| *offset);
    let mut seen: BTreeMap<(&str, &str), (&KeyPath, &str)> = BTreeMap::new();
    for (_, at, job, entry) in &references {
        let pair = (entry.store.as_str(), entry.name.as_str());
        if let Some((first_at, first_job)) = seen.get(&pair) {
            let owner = if first_job == job { "this job".to_owned() } else { format!("job `{first_job}`") };
            let line = doc.line(first_at).map(|l| format!(", line {l}")).unwrap_or_default();
            return Err(doc.error(
                at,
                format!(
                    "store `{}` secret `{}` is already used by {owner} ({first_at}{line}): expected each secret in a \
                     store to belong to exactly one job",
                    entry.store, entry.name
                ),
            ));
        }
        seen.insert(pair, (at, job));
    }
    Ok(())
}
