//! The lockout guard: consecutive failed logins per account, counted the way the target counts them.
//!
//! Autotask locks an API user after N consecutive failed logins and resets the count only when that same user
//! logs in successfully; time alone resets nothing. Every process that logs in as an account adds to the one
//! count: the daemon, each `rotavault rotate`, `import` and `check --connect`, and every job whose apply presents
//! the tenant's admin credential. So the guard keeps one record per account (not per job, not per run) in
//! `<state_dir>/accounts/`, changed under a file lock, so that every process on the host sees the same count.
//!
//! It works write-ahead. A login is recorded as *in flight* before it is sent, and its answer settles that
//! record: accepted clears the account's count, refused adds a failure, "nothing was sent" removes it. A login
//! whose answer never came (a timeout, a cut connection, the process killed mid-call) stays counted as a failure
//! until an accepted login of the account clears it, because the target may well have counted it. When the record
//! cannot be written, no login is made.
//!
//! The guard also remembers a credential a target refused (the Autotask admin's), by where it is stored and which
//! version of it that was, so that no process presents that same credential again: each try would be one more
//! failed login on an account every job of the tenant depends on.

use crate::schedule::Clock;
use crate::shared::SharedState;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An in-flight record older than this belongs to a login that has certainly ended one way or another: no HTTP
/// call rotavault makes lives this long. It still counts as failed; it only stops being "possibly in flight".
const IN_FLIGHT_LIFETIME: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockoutError {
    #[error(
        "the lockout guard allows no login as `{account}` now: {consecutive} consecutive failed or unanswered \
         login(s) since its last accepted one, at most {max} allowed{}",
        if *reserve > 0 { format!(", {reserve} kept for settling a pending value") } else { String::new() }
    )]
    AtCap { account: String, consecutive: u32, in_flight: u32, max: u32, reserve: u32 },
    #[error("the lockout guard's record `{path}` cannot be used ({detail}); no login is made without it")]
    Io { path: PathBuf, detail: String },
    /// Replicas: the login's record could not be written where the next leader reads it, so it was not sent.
    #[error("no login as `{account}` was made: {reason}")]
    Unpublished { account: String, reason: crate::shared::Unpublished },
}

impl LockoutError {
    /// Whether the cap itself was reached by logins that have ended (refused, or cut off unanswered), not by
    /// logins still in flight that may yet be accepted nor by a reserve: waiting cannot help then, only a person
    /// can.
    pub fn needs_a_person(&self) -> bool {
        match self {
            Self::AtCap { consecutive, in_flight, max, .. } => consecutive.saturating_sub(*in_flight) >= *max,
            Self::Io { .. } | Self::Unpublished { .. } => false,
        }
    }
}

/// A credential a target refused, and which version of it (the store's metadata, never anything of the value).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub version: String,
    pub at: DateTime<Utc>,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct InFlight {
    id: String,
    pid: u32,
    /// This process's token: a restarted container reuses pids (often 1), so the pid alone cannot tell this
    /// process from the one before it.
    #[serde(default)]
    process: String,
    at: DateTime<Utc>,
}

/// One token per process, for [`InFlight::process`].
fn process_token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| uuid::Uuid::new_v4().simple().to_string())
}

/// Whether the process that recorded `f` may still be waiting for its answer. `shared`: the records are shared by
/// replicas on other hosts, where a pid says nothing; a login recorded by another process there was sent by a
/// leader that is gone (only the lease's holder logs in), so it is not waiting any more.
fn may_be_in_flight(f: &InFlight, now: DateTime<Utc>, shared: bool) -> bool {
    let young = (now - f.at).to_std().unwrap_or_default() < IN_FLIGHT_LIFETIME;
    let owner_alive = if f.process == process_token() {
        true
    } else {
        !shared && f.pid != std::process::id() && process_alive(f.pid)
    };
    young && owner_alive
}

/// One account's (or one credential's) record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    #[serde(default)]
    failed: Vec<DateTime<Utc>>,
    #[serde(default)]
    in_flight: Vec<InFlight>,
    #[serde(default)]
    refused: Option<Refusal>,
}

#[derive(Clone, Copy)]
enum Kind {
    Account,
    Credential,
}

impl Kind {
    fn dir(self) -> &'static str {
        match self {
            Self::Account => "accounts",
            Self::Credential => "credentials",
        }
    }
}

/// What the answer to a login said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    Accepted,
    Refused,
    NotSent,
    Unknown,
}

pub struct LockoutGuard {
    /// `None` keeps the records in memory (tests, dry runs): one process only.
    root: Option<PathBuf>,
    max_failed: u32,
    reset_after: Option<Duration>,
    clock: Arc<dyn Clock>,
    memory: Mutex<HashMap<String, Record>>,
    /// Set with `[lease] kind = "kubernetes"`: the records live in the state every replica reads, not in files.
    shared: Option<Arc<SharedState>>,
}

impl std::fmt::Debug for LockoutGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockoutGuard")
            .field("root", &self.root)
            .field("max_failed", &self.max_failed)
            .field("reset_after", &self.reset_after)
            .finish_non_exhaustive()
    }
}

impl LockoutGuard {
    /// A guard whose records live under `state_dir` (shared by every process using it). `max_failed` is the most
    /// consecutive failed logins it lets an account reach; `reset_after`, when set, forgets failures older than
    /// that (for targets whose lockout resets with time; Autotask's does not).
    pub fn new(
        state_dir: &Path,
        max_failed: u32,
        reset_after: Option<Duration>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            root: Some(state_dir.to_path_buf()),
            max_failed,
            reset_after,
            clock,
            memory: Mutex::default(),
            shared: None,
        }
    }

    /// Keeps the records in `shared` (what every replica reads) instead of files on this host.
    pub fn with_shared(mut self, shared: Arc<SharedState>) -> Self {
        self.shared = Some(shared);
        self
    }

    /// A guard for one process that writes nothing to disk.
    pub fn in_memory(max_failed: u32, clock: Arc<dyn Clock>) -> Self {
        Self { root: None, max_failed, reset_after: None, clock, memory: Mutex::default(), shared: None }
    }

    pub fn max_failed(&self) -> u32 {
        self.max_failed
    }

    /// Consecutive failed (or unanswered) logins of `account` that count now.
    pub fn consecutive(&self, account: &str) -> Result<u32, LockoutError> {
        let now = self.clock.now();
        self.with_record(Kind::Account, account, false, |r| Ok(self.count(r, now)))
    }

    /// Takes a login as `account`, recorded as in flight before the caller sends it (logins that are sent go
    /// through [`LockoutGuard::take`], which also waits for the record to be shared). Refused when the login could
    /// bring the account past the cap with `reserve` logins still kept for what must come after (settling a
    /// pending value needs two: the new value and the old).
    pub fn begin(&self, account: &str, reserve: u32) -> Result<Login<'_>, LockoutError> {
        let now = self.clock.now();
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.with_record(Kind::Account, account, true, |r| {
            let consecutive = self.count(r, now);
            if consecutive + 1 + reserve > self.max_failed {
                return Err(LockoutError::AtCap {
                    account: account.to_owned(),
                    consecutive,
                    in_flight: u32::try_from(
                        r.in_flight
                            .iter()
                            .filter(|f| may_be_in_flight(f, now, self.shared.is_some()))
                            .count(),
                    )
                    .unwrap_or(u32::MAX),
                    max: self.max_failed,
                    reserve,
                });
            }
            r.in_flight.push(InFlight {
                id: id.clone(),
                pid: std::process::id(),
                process: process_token().to_owned(),
                at: now,
            });
            Ok(())
        })?;
        Ok(Login { guard: self, account: account.to_owned(), id, settled: false })
    }

    /// [`LockoutGuard::begin`], and then, when the records are shared by replicas, waits until the login's record
    /// is written where the next leader reads it (at most `within`): a leader that dies while its login is in
    /// flight leaves it counted. Every login that is sent is taken here.
    pub async fn take(
        &self,
        account: &str,
        reserve: u32,
        within: Duration,
    ) -> Result<Login<'_>, LockoutError> {
        let login = self.begin(account, reserve)?;
        if let Some(shared) = &self.shared
            && let Err(reason) = shared.published(within).await
        {
            login.not_sent();
            return Err(LockoutError::Unpublished { account: account.to_owned(), reason });
        }
        Ok(login)
    }

    /// Starts `account`'s count afresh: a person has checked the account at the target (`rotavault resolve`), or
    /// stored a new credential for it.
    pub fn reset(&self, account: &str) -> Result<(), LockoutError> {
        let now = self.clock.now();
        self.with_record(Kind::Account, account, true, |r| {
            r.failed.clear();
            r.in_flight
                .retain(|f| f.process == process_token() && may_be_in_flight(f, now, self.shared.is_some()));
            Ok(())
        })
    }

    /// The refusal recorded for the credential stored at `location`, if any.
    pub fn refusal(&self, location: &str) -> Result<Option<Refusal>, LockoutError> {
        self.with_record(Kind::Credential, location, false, |r| Ok(r.refused.clone()))
    }

    /// Records that the target refused `version` of the credential stored at `location`.
    pub fn refuse(&self, location: &str, version: &str, reason: &str) -> Result<(), LockoutError> {
        let at = self.clock.now();
        self.with_record(Kind::Credential, location, true, |r| {
            r.refused = Some(Refusal { version: version.to_owned(), at, reason: reason.to_owned() });
            Ok(())
        })
    }

    /// Forgets a refusal once the credential at `location` works again.
    pub fn clear_refusal(&self, location: &str) -> Result<(), LockoutError> {
        self.with_record(Kind::Credential, location, true, |r| {
            r.refused = None;
            Ok(())
        })
    }

    fn count(&self, record: &Record, now: DateTime<Utc>) -> u32 {
        let counts = |at: &DateTime<Utc>| {
            self.reset_after.is_none_or(|reset| (now - *at).to_std().unwrap_or_default() < reset)
        };
        let failed = record.failed.iter().filter(|at| counts(at)).count();
        let in_flight = record.in_flight.iter().filter(|f| counts(&f.at)).count();
        u32::try_from(failed + in_flight).unwrap_or(u32::MAX)
    }

    fn settle(&self, account: &str, id: &str, answer: Answer) {
        let now = self.clock.now();
        let result = self.with_record(Kind::Account, account, true, |r| {
            r.in_flight.retain(|f| f.id != id);
            match answer {
                Answer::Accepted => {
                    r.failed.clear();
                    // Logins still in flight elsewhere may yet be refused after this one; those whose process died
                    // or that ended long ago were counted by the target before this accepted login reset it.
                    r.in_flight.retain(|f| may_be_in_flight(f, now, self.shared.is_some()));
                }
                Answer::Refused | Answer::Unknown => r.failed.push(now),
                Answer::NotSent => {}
            }
            Ok(())
        });
        if let Err(e) = result {
            // The in-flight record stays, so the login keeps counting as failed: the safe side.
            tracing::error!(account, error = %e, "could not record a login's answer; it counts as failed");
        }
    }

    /// Runs `change` on the record of `key` under the record's lock; `write` saves it afterwards.
    fn with_record<T>(
        &self,
        kind: Kind,
        key: &str,
        write: bool,
        change: impl FnOnce(&mut Record) -> Result<T, LockoutError>,
    ) -> Result<T, LockoutError> {
        if let Some(shared) = &self.shared {
            let key = format!("{}/{key}", kind.dir());
            return shared.update(&key, |value| {
                let mut record = match value.as_ref() {
                    Some(stored) => serde_json::from_value(stored.clone()).map_err(|e| LockoutError::Io {
                        path: PathBuf::from(&key),
                        detail: format!(
                            "the shared record is not a lockout guard record ({e}); check the account in the \
                             target, then run `rotavault resolve`"
                        ),
                    })?,
                    None => Record::default(),
                };
                let out = change(&mut record)?;
                if write {
                    // Only what still counts is kept: every replica reads the shared state at every renewal.
                    *value = if record == Record::default() {
                        None
                    } else {
                        Some(serde_json::to_value(&record).map_err(|e| LockoutError::Io {
                            path: PathBuf::from(&key),
                            detail: e.to_string(),
                        })?)
                    };
                }
                Ok(out)
            });
        }
        let Some(root) = &self.root else {
            let mut memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
            let record = memory.entry(format!("{}/{key}", kind.dir())).or_default();
            return change(record);
        };
        let dir = root.join(kind.dir());
        let path = dir.join(format!("{}.json", file_name(key)));
        let io = |e: std::io::Error| LockoutError::Io { path: path.clone(), detail: e.to_string() };
        // A read of an account never recorded creates nothing (`status` over many jobs stays read-only).
        if !write && !path.exists() {
            return change(&mut Record::default());
        }
        std::fs::create_dir_all(&dir).map_err(io)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!("{}.lock", file_name(key))))
            .map_err(io)?;
        // Held only for a read and a small write: every process on the host sees one count.
        lock.lock().map_err(io)?;
        let mut record = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| LockoutError::Io {
                path: path.clone(),
                detail: format!(
                    "not a lockout guard record ({e}); check the account in the target, then remove the file"
                ),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Record::default(),
            Err(e) => return Err(io(e)),
        };
        let out = change(&mut record)?;
        if write {
            let body = serde_json::to_vec_pretty(&record).map_err(|e| io(std::io::Error::other(e)))?;
            crate::durable::write(&path, &body).map_err(io)?;
        }
        Ok(out)
    }
}

/// One login in flight. Settle it with what the answer said; dropped unsettled (the call was cancelled or
/// panicked), it counts as a failed login, as an unanswered login must.
#[must_use = "a login must be settled with its answer"]
pub struct Login<'a> {
    guard: &'a LockoutGuard,
    account: String,
    id: String,
    settled: bool,
}

impl Login<'_> {
    /// The target accepted the credential: the account's count starts again from zero.
    pub fn accepted(self) {
        self.finish(Answer::Accepted);
    }

    /// The target refused the credential: one more failed login.
    pub fn refused(self) {
        self.finish(Answer::Refused);
    }

    /// Nothing reached the target (connect error, throttled before authentication): nothing to count.
    pub fn not_sent(self) {
        self.finish(Answer::NotSent);
    }

    /// Sent, and no complete answer came: it counts as failed until an accepted login clears it.
    pub fn unknown(self) {
        self.finish(Answer::Unknown);
    }

    fn finish(mut self, answer: Answer) {
        self.settled = true;
        self.guard.settle(&self.account, &self.id, answer);
    }
}

impl Drop for Login<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.guard.settle(&self.account, &self.id, Answer::Unknown);
        }
    }
}

/// A file name for any key: what is not plainly safe is written as `%XX`.
fn file_name(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b'_' | b'@') && !out.is_empty() {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn process_alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    // Where there is no /proc, assume alive: the record then only ages out.
    !proc.is_dir() || proc.join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::TokioClock;

    fn clock() -> Arc<dyn Clock> {
        Arc::new(TokioClock::starting_at(Utc::now()))
    }

    fn guard(dir: &Path) -> LockoutGuard {
        LockoutGuard::new(dir, 3, None, clock())
    }

    #[tokio::test(start_paused = true)]
    async fn failures_count_across_guards_on_one_state_directory_until_an_accepted_login() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (one, two) = (guard(dir.path()), guard(dir.path()));
        one.begin("autotask:a@x", 0).expect("first").refused();
        two.begin("autotask:a@x", 0).expect("second").refused();
        assert_eq!(one.consecutive("autotask:a@x").expect("count"), 2);
        assert_eq!(two.consecutive("autotask:b@x").expect("count"), 0, "another account is independent");
        two.begin("autotask:a@x", 0).expect("third").refused();
        let err = one.begin("autotask:a@x", 0).err().expect("a fourth would pass the cap");
        assert!(matches!(err, LockoutError::AtCap { consecutive: 3, max: 3, .. }), "{err}");
        // Time alone resets nothing, as at Autotask.
        tokio::time::advance(Duration::from_secs(30 * 24 * 3600)).await;
        assert!(one.begin("autotask:a@x", 0).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn an_accepted_login_resets_the_count() {
        let dir = tempfile::tempdir().expect("tempdir");
        let g = LockoutGuard::new(dir.path(), 3, None, clock());
        g.begin("k", 0).expect("one").refused();
        g.begin("k", 0).expect("two").refused();
        g.begin("k", 0).expect("three").accepted();
        assert_eq!(g.consecutive("k").expect("count"), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_login_without_an_answer_counts_as_failed_and_one_never_sent_does_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let g = guard(dir.path());
        g.begin("k", 0).expect("lost").unknown();
        g.begin("k", 0).expect("not sent").not_sent();
        assert_eq!(g.consecutive("k").expect("count"), 1);
        {
            let _dropped = g.begin("k", 0).expect("cancelled");
        }
        assert_eq!(g.consecutive("k").expect("count"), 2, "a cancelled login counts");
    }

    #[tokio::test(start_paused = true)]
    async fn a_login_in_flight_counts_for_every_other_process_before_its_answer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let g = guard(dir.path());
        let in_flight = g.begin("k", 0).expect("in flight");
        // Another process (here: another guard) sees it, as a crash right now would leave it.
        assert_eq!(guard(dir.path()).consecutive("k").expect("count"), 1);
        in_flight.accepted();
        assert_eq!(g.consecutive("k").expect("count"), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_reserve_keeps_logins_for_what_must_follow() {
        let g = LockoutGuard::in_memory(3, clock());
        g.begin("k", 0).expect("one").refused();
        assert!(g.begin("k", 2).is_err(), "1 failed + this one + 2 kept would pass 3");
        g.begin("k", 1).expect("1 + 1 + 1 fits").refused();
        g.begin("k", 0).expect("the last one").refused();
        assert!(g.begin("k", 0).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn an_opt_in_reset_interval_forgets_old_failures() {
        let dir = tempfile::tempdir().expect("tempdir");
        let g = LockoutGuard::new(dir.path(), 2, Some(Duration::from_secs(3600)), clock());
        g.begin("k", 0).expect("one").refused();
        g.begin("k", 0).expect("two").refused();
        assert!(g.begin("k", 0).is_err());
        tokio::time::advance(Duration::from_secs(3601)).await;
        assert_eq!(g.consecutive("k").expect("count"), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_credential_is_remembered_by_version_across_guards() {
        let dir = tempfile::tempdir().expect("tempdir");
        guard(dir.path()).refuse("admin:local/autotask/admin", "g3", "HTTP 401").expect("refuse");
        let seen = guard(dir.path()).refusal("admin:local/autotask/admin").expect("read");
        assert_eq!(seen.map(|r| r.version), Some("g3".into()));
        guard(dir.path()).clear_refusal("admin:local/autotask/admin").expect("clear");
        assert_eq!(guard(dir.path()).refusal("admin:local/autotask/admin").expect("read"), None);
    }

    #[test]
    fn a_corrupt_record_refuses_the_login_and_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let g = LockoutGuard::new(dir.path(), 3, None, Arc::new(crate::schedule::SystemClock));
        std::fs::create_dir_all(dir.path().join("accounts")).expect("mkdir");
        std::fs::write(dir.path().join("accounts").join(format!("{}.json", file_name("k"))), "{")
            .expect("write");
        let err = g.begin("k", 0).err().expect("no login without a record");
        assert!(err.to_string().contains("accounts/k.json"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_login_left_in_flight_by_a_dead_process_counts_until_an_accepted_login_clears_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let g = guard(dir.path());
        // What a process killed mid-login leaves: an in-flight record of another process, with this pid (as a
        // restarted container's pid 1 would be).
        let now = g.clock.now();
        let stale = InFlight { id: "x".into(), pid: std::process::id(), process: "gone".into(), at: now };
        g.with_record(Kind::Account, "k", true, |r| {
            r.in_flight.push(stale);
            Ok(())
        })
        .expect("seed");
        assert_eq!(g.consecutive("k").expect("count"), 1, "an unanswered login counts as failed");
        g.begin("k", 0).expect("login").accepted();
        assert_eq!(g.consecutive("k").expect("count"), 0, "the earlier process is not this one");
    }

    #[test]
    fn reading_an_account_never_recorded_creates_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let g = LockoutGuard::new(dir.path(), 3, None, Arc::new(crate::schedule::SystemClock));
        assert_eq!(g.consecutive("autotask:never@x").expect("count"), 0);
        assert!(!dir.path().join("accounts").exists());
    }

    #[test]
    fn account_keys_become_safe_file_names() {
        assert_eq!(file_name("autotask:API@x.example"), "autotask%3AAPI@x.example");
        assert_eq!(file_name("../etc"), "%2E.%2Fetc");
    }
}
