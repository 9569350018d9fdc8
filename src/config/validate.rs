//! From the schema to a [`Config`]: every section in turn, each rule in the file that owns its section
//! (`policy.rs`, `rotation_settings.rs`, `store.rs`, `target.rs`, `job.rs`, `secret_rules.rs`), and here the
//! rules shared by several of them: names, paths and durations.
//!
//! The first broken rule ends validation: one precise error is more use than a page of follow-on errors.

use super::document::Document;
use super::duration::{ConfigDuration, display};
use super::error::ConfigError;
use super::locate::KeyPath;
use super::schema::{DocumentSchema, JobSchema};
use super::{
    Config, GlobalPolicy, JobConfig, Jobs, StoreConfig, TargetConfig, audit, blackout, files, http, job,
    lease, notify, policy, rotation_settings, store, target,
};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where job state and job locks live when the config does not say.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/rotavault";

/// The longest store, target or job name.
const NAME_MAX: usize = 64;

/// Where the jobs are: in the document itself, or in groups of sections of `source` (see `sections`).
pub(super) enum JobsIn<'s> {
    Document,
    Sections { source: &'s str, groups: &'s [Range<usize>] },
}

pub(super) fn build(
    doc: &Document<'_>,
    jobs_in: JobsIn<'_>,
    now: DateTime<Utc>,
    required: Jobs,
) -> Result<Config, ConfigError> {
    let schema: DocumentSchema = doc.deserialize_without("jobs")?;
    let root = KeyPath::root();
    // Relative paths are relative to the config file, not to whatever directory the daemon was started in.
    let base = doc.file().parent().unwrap_or(Path::new(""));

    let state_dir = match &schema.state_dir {
        Some(dir) => resolve_path(doc, &root.key("state_dir"), dir, base)?,
        None => PathBuf::from(DEFAULT_STATE_DIR),
    };
    let policy = policy::build(doc, schema.policy)?;

    let mut stores = BTreeMap::new();
    for (name, kind) in schema.stores {
        let at = root.key("stores").key(&name);
        check_name(doc, &at, &name, "store")?;
        let config = store::build(doc, &at, kind.kind, base)?;
        stores.insert(name, config);
    }
    let mut targets = BTreeMap::new();
    for (name, kind) in schema.targets {
        let at = root.key("targets").key(&name);
        check_name(doc, &at, &name, "target")?;
        let config = target::build(doc, &at, kind.kind, &stores)?;
        targets.insert(name, config);
    }
    let rotation = rotation_settings::build(doc, schema.rotation, &targets)?;
    let http = http::build(doc, schema.http, base)?;

    let shared = Shared { stores: &stores, targets: &targets, policy: &policy, now };
    let ReadJobs { jobs, files: job_files } = match jobs_in {
        // One job's part of the document at a time (see `Document::deserialize_without`).
        JobsIn::Document => {
            let (memos, mut read) = (job::Memos::default(), ReadJobs::default());
            doc.each_entry(&root.key("jobs"), |name, schema| read.add(doc, &shared, &memos, name, schema))?;
            read
        }
        JobsIn::Sections { source, groups } => read_groups_in_two(doc, source, groups, &shared)?,
    };
    if jobs.is_empty() && required == Jobs::Required {
        return Err(doc.no_jobs());
    }
    job::check_unique_secrets(doc, &jobs)?;
    job::link_admins(doc, &mut targets, &jobs)?;

    let audit = audit::build(doc, schema.audit, base)?;
    if policy.warn_before.is_some() && audit.warn_before.is_some() {
        return Err(doc.error(
            &root.key("audit").key("warn_before"),
            "`[audit] warn_before` is the older place of `[policy] warn_before`, which is set too: expected it in \
             [policy] only",
        ));
    }
    // A lead as long as a job's max_age would warn about every secret of it as soon as it is rotated.
    if let Some(warn) = policy.warn_before.or(audit.warn_before) {
        let place = if policy.warn_before.is_some() { "[policy]" } else { "[audit]" };
        if let Some((name, max)) =
            jobs.iter().find_map(|(name, job)| job.max_age.filter(|max| *max <= warn).map(|max| (name, max)))
        {
            return Err(doc.error(
                &root.key("jobs").key(name).key("max_age"),
                format!(
                    "{} is not longer than {place} warn_before ({}): every secret of the job would be warned about \
                     as soon as it is rotated; expected a longer max_age, or a shorter warn_before",
                    super::duration::display(max),
                    super::duration::display(warn)
                ),
            ));
        }
    }
    let lease = lease::build(doc, schema.lease, &stores)?;
    let blackouts = blackout::build(doc, &root.key("blackout"), schema.blackout)?;
    let mut sinks = BTreeMap::new();
    for (name, kind) in schema.notify {
        let at = root.key("notify").key(&name);
        check_name(doc, &at, &name, "notification sink")?;
        sinks.insert(name, notify::build(doc, &at, kind.kind, &jobs, base)?);
    }

    let mut placed = files::of_stores(doc, &stores);
    placed.extend(files::of_targets(doc, &targets));
    placed.extend(job_files);
    let mut files = files::in_file_order(placed);
    files.extend(notify::files(doc, &sinks));
    files.extend(http::files(doc, &http));
    Ok(Config {
        path: doc.file().to_owned(),
        state_dir,
        policy,
        rotation,
        http,
        stores,
        targets,
        jobs,
        audit,
        lease,
        blackouts,
        notify: sinks,
        files,
    })
}

/// What every job is checked against, but for the memos, which each thread reading jobs keeps its own of.
struct Shared<'c> {
    stores: &'c BTreeMap<String, StoreConfig>,
    targets: &'c BTreeMap<String, TargetConfig>,
    policy: &'c GlobalPolicy,
    now: DateTime<Utc>,
}

/// Jobs as read, and the files they name with their place in the config.
#[derive(Default)]
struct ReadJobs {
    jobs: BTreeMap<String, JobConfig>,
    files: Vec<files::Placed>,
}

impl ReadJobs {
    fn add(
        &mut self,
        doc: &Document<'_>,
        shared: &Shared<'_>,
        memos: &job::Memos,
        name: &str,
        schema: &dyn Fn() -> Result<JobSchema, ConfigError>,
    ) -> Result<(), ConfigError> {
        check_name(doc, &KeyPath::root().key("jobs").key(name), name, "job")?;
        let context = job::Context {
            doc,
            stores: shared.stores,
            targets: shared.targets,
            policy: shared.policy,
            now: shared.now,
            memos,
        };
        let config = job::build(&context, name, schema()?)?;
        self.files.extend(files::of_job(doc, name, &config));
        self.insert(name.to_owned(), config)
    }

    fn insert(&mut self, name: String, config: JobConfig) -> Result<(), ConfigError> {
        // Only sections read apart can name a job twice: the one-document read refuses that as TOML.
        match self.jobs.insert(name, config) {
            None => Ok(()),
            Some(_) => Err(not_apart()),
        }
    }

    /// `other`'s jobs moved in one by one; the map they leave frees each of its nodes once emptied, so that the
    /// jobs are not held twice (10,000 jobs' configs are several megabytes).
    fn merge(&mut self, other: ReadJobs) -> Result<(), ConfigError> {
        self.files.extend(other.files);
        for (name, config) in other.jobs {
            self.insert(name, config)?;
        }
        Ok(())
    }
}

/// The jobs of `groups`, a group of sections at a time, parsed, read and dropped before the next: the peak is a
/// group's tree.
fn read_groups(
    rest: &Document<'_>,
    source: &str,
    groups: &[Range<usize>],
    shared: &Shared<'_>,
) -> Result<ReadJobs, ConfigError> {
    let (memos, mut read) = (job::Memos::default(), ReadJobs::default());
    let jobs_at = KeyPath::root().key("jobs");
    for group in groups {
        let part = Document::parse_part(rest, source, group.clone()).ok_or_else(not_apart)?;
        part.each_entry(&jobs_at, |name, schema| read.add(&part, shared, &memos, name, schema))?;
    }
    Ok(read)
}

/// The jobs of `groups`, the second half read on a thread of its own: parsing and checking jobs is most of what
/// loading a large config costs, and the groups do not depend on each other. On any error, one of them (the
/// caller then reads the file as one document, which reports them all in order).
fn read_groups_in_two(
    rest: &Document<'_>,
    source: &str,
    groups: &[Range<usize>],
    shared: &Shared<'_>,
) -> Result<ReadJobs, ConfigError> {
    if groups.len() < 2 {
        return read_groups(rest, source, groups, shared);
    }
    let (first, second) = groups.split_at(groups.len() / 2);
    std::thread::scope(|scope| {
        // No thread to be had (a `TasksMax` reached, say) is no error: the second half is then read here too.
        let other = std::thread::Builder::new()
            .name("config".into())
            .spawn_scoped(scope, || read_groups(rest, source, second, shared));
        let mut read = read_groups(rest, source, first, shared)?;
        let second_read = match other {
            // A panic on the other thread is a panic here too, as it would be with one thread.
            Ok(other) => other.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?,
            Err(_) => read_groups(rest, source, second, shared)?,
        };
        read.merge(second_read)?;
        Ok(read)
    })
}

/// A group of sections that does not parse, or a job read twice: never shown, the caller then reads the file as
/// one document, which reports whatever is wrong.
fn not_apart() -> ConfigError {
    ConfigError::file(Path::new(""), "a job's section does not stand on its own")
}

/// Store, target and job names end up in file names, lock names, tags and metric labels, so they are kept to
/// characters all of those take.
fn check_name(doc: &Document<'_>, at: &KeyPath, name: &str, what: &str) -> Result<(), ConfigError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    let problem = if name.is_empty() || name.chars().count() > NAME_MAX {
        Some(format!("has {} characters", name.chars().count()))
    } else if !name.chars().all(allowed) {
        Some("has a character other than A-Z, a-z, 0-9, `_`, `.` and `-`".to_owned())
    } else if name == "." || name == ".." {
        // Both are valid by the characters alone, and both name a directory, not a file.
        Some("names a directory".to_owned())
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(doc.error_at_key(
            at,
            format!(
                "the {what} name {problem}: expected 1 to {NAME_MAX} characters of A-Z, a-z, 0-9, `_`, `.` and `-` \
                 (names become file names and tags)"
            ),
        )),
    }
}

/// `text` as a path, relative ones taken relative to `base`, the config file's directory.
pub(super) fn resolve_path(
    doc: &Document<'_>,
    at: &KeyPath,
    text: &str,
    base: &Path,
) -> Result<PathBuf, ConfigError> {
    if text.is_empty() || text.contains('\0') {
        return Err(doc.error(
            at,
            "not a path: expected an absolute path or one relative to the config file's directory",
        ));
    }
    let path = Path::new(text);
    Ok(if path.is_absolute() { path.to_owned() } else { base.join(path) })
}

/// A duration where zero makes no sense (an age, a timeout, a back-off), at most `max`.
pub(super) fn nonzero(
    doc: &Document<'_>,
    at: &KeyPath,
    duration: Option<ConfigDuration>,
    max: Limit,
) -> Result<Option<Duration>, ConfigError> {
    match duration {
        Some(ConfigDuration(d)) if d.is_zero() => Err(doc.error(
            at,
            "a zero duration makes no sense here: expected a duration longer than 0s, such as \"30s\" or \"90d\"",
        )),
        other => at_most(doc, at, other, max),
    }
}

/// The longest a duration may be, and why: every duration has one, so that a slip of the unit (`"2M"`, two
/// months, for `"2m"`) is an error and not a daemon that waits for weeks.
#[derive(Clone, Copy, Debug)]
pub(super) struct Limit {
    pub max: Duration,
    pub why: &'static str,
}

/// A duration, zero included, at most `limit.max`.
pub(super) fn at_most(
    doc: &Document<'_>,
    at: &KeyPath,
    duration: Option<ConfigDuration>,
    limit: Limit,
) -> Result<Option<Duration>, ConfigError> {
    match duration {
        Some(ConfigDuration(d)) if d > limit.max => Err(doc.error(
            at,
            format!("{} is too long: expected at most {} ({})", display(d), display(limit.max), limit.why),
        )),
        other => Ok(other.map(|ConfigDuration(d)| d)),
    }
}

/// The characters of a string such as `forbidden = "\"'` "`, as a set.
pub(super) fn char_set(text: &str) -> BTreeSet<char> {
    text.chars().collect()
}
