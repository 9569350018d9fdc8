//! `[jobs.NAME]`: one credential on one target, written to one or more stores, on a schedule, under a policy, as
//! [`JobConfig`].
//!
//! The rules that need more than one table live here: references to stores and targets, the rotation trigger,
//! the `[policy]` maximum age, and that no two references name the same secret in the same store (two jobs
//! rotating one secret would each invalidate the other's).

use super::document::Document;
use super::duration::{ConfigDuration, display};
use super::error::ConfigError;
use super::locate::KeyPath;
use super::policy::GlobalPolicy;
use super::schema::JobSchema;
use super::secret_rules;
use super::store::StoreConfig;
use super::target::TargetConfig;
use super::validate::nonzero;
use crate::schedule::Schedule;
use crate::secret::SecretPolicy;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
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
    pub doc: &'c Document<'c>,
    pub stores: &'c BTreeMap<String, StoreConfig>,
    pub targets: &'c BTreeMap<String, TargetConfig>,
    pub policy: &'c GlobalPolicy,
    /// Schedules are measured from here (a schedule's gaps can depend on the date: months, DST).
    pub now: DateTime<Utc>,
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
        if !ctx.stores.contains_key(&entry.store) {
            return Err(unknown_reference(doc, &entry_at.key("store"), "store", &entry.store, ctx.stores));
        }
        if entry.name.trim().is_empty() || entry.name.chars().any(char::is_control) {
            return Err(doc.error(
                &entry_at.key("name"),
                "not a secret name: expected the name of the secret in the store, such as \"webhooks/signing-key\"",
            ));
        }
        stores.push(JobStore { store: entry.store, name: entry.name, adopt: entry.adopt });
    }

    let schedule = schedule(doc, &at, &job)?;
    let max_age = nonzero(doc, &at.key("max_age"), job.max_age)?;
    if schedule.is_none() && max_age.is_none() {
        return Err(doc.error(
            &at,
            "the job never rotates: expected `schedule` (a cron expression), `max_age` (a duration such as \"30d\"), \
             or both",
        ));
    }
    check_max_age(ctx, &at, &job, schedule.as_ref(), max_age)?;

    let secret_policy =
        secret_rules::effective(doc, &at, &job.target, target, ctx.policy, job.secret.as_ref())?;

    Ok(JobConfig { name: name.to_owned(), target: job.target, stores, schedule, max_age, secret_policy })
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

fn schedule(doc: &Document<'_>, at: &KeyPath, job: &JobSchema) -> Result<Option<Schedule>, ConfigError> {
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
    match Schedule::new(cron, timezone, window) {
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

/// The `[policy]` maximum age holds when the job is guaranteed to rotate before it: through its own `max_age`,
/// or else through its schedule's longest gap between two fires (window included).
fn check_max_age(
    ctx: &Context<'_>,
    at: &KeyPath,
    job: &JobSchema,
    schedule: Option<&Schedule>,
    max_age: Option<Duration>,
) -> Result<(), ConfigError> {
    let Some(limit) = ctx.policy.max_age else {
        return Ok(());
    };
    if let Some(max_age) = max_age {
        if max_age > limit {
            return Err(ctx.doc.error(
                &at.key("max_age"),
                format!(
                    "{} is longer than [policy] max_age = {}: expected at most {}",
                    display(max_age),
                    display(limit),
                    display(limit)
                ),
            ));
        }
        return Ok(());
    }
    if let Some(schedule) = schedule {
        let longest = schedule.longest_interval(ctx.now);
        if longest > limit {
            let cron = job.schedule.as_deref().unwrap_or_default();
            let window = match job.window {
                Some(ConfigDuration(w)) if !w.is_zero() => format!(" and window {}", display(w)),
                _ => String::new(),
            };
            return Err(ctx.doc.error(
                &at.key("schedule"),
                format!(
                    "rotates at most every {} (schedule `{cron}`{window}), longer than [policy] max_age = {}: set a \
                     more frequent schedule or max_age <= {}",
                    display(longest),
                    display(limit),
                    display(limit)
                ),
            ));
        }
    }
    Ok(())
}

/// No two references, in one job or in two, name the same secret in the same store. Reported at the later one in
/// the file, naming the earlier.
pub(super) fn check_unique_secrets(
    doc: &Document<'_>,
    jobs: &BTreeMap<String, JobConfig>,
) -> Result<(), ConfigError> {
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
