//! What rotavault remembers about a job between runs: the last attempt, the last success, a diverged mark, and
//! the apply intent.
//!
//! The stores remain the truth for secrets and their age; this file only holds what they cannot: why the last
//! attempt failed, that a job is diverged and must not be touched until a person clears it, and whether an apply
//! was ever sent for the value pending now (the **apply intent**, written and synced before the request leaves,
//! so that recovery knows instead of inferring). One small JSON file per job under `<state_dir>/jobs/`, written
//! durably, never containing a secret.

use crate::shared::SharedState;
use crate::store::RotationId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The outcome of the last attempt, as `status` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttemptOutcome {
    Ok,
    /// A new value is staged and not yet promoted everywhere; the next run settles it.
    Pending,
    Failed,
    Diverged,
    /// A person must act before the job can go on (the target refused the credential rotavault must present).
    Blocked,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    #[serde(deserialize_with = "crate::rfc3339::deserialize")]
    pub at: DateTime<Utc>,
    pub rotation_id: Option<RotationId>,
    pub outcome: AttemptOutcome,
    /// The error, as its message (never a secret: errors carry none).
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Success {
    #[serde(deserialize_with = "crate::rfc3339::deserialize")]
    pub at: DateTime<Utc>,
    pub rotation_id: RotationId,
    pub generation: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DivergedMark {
    #[serde(deserialize_with = "crate::rfc3339::deserialize")]
    pub since: DateTime<Utc>,
    pub reason: String,
}

/// An apply about to be sent, or sent: rotation `rotation_id`'s value may have reached the target from `at` on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyIntent {
    pub rotation_id: RotationId,
    /// The account whose credential the apply changes, when the target has accounts.
    pub account: Option<String>,
    #[serde(deserialize_with = "crate::rfc3339::deserialize")]
    pub at: DateTime<Utc>,
    /// The target answered that the apply was done (its value is the likelier one when only one login is left).
    #[serde(default)]
    pub confirmed: bool,
}

/// The state file format that records apply intents. A file without it was written by a rotavault that did not,
/// so a value pending under it may have been sent without a record.
pub const FORMAT: u32 = 2;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobState {
    #[serde(default)]
    pub format: u32,
    pub last_attempt: Option<Attempt>,
    pub last_success: Option<Success>,
    pub diverged: Option<DivergedMark>,
    #[serde(default)]
    pub apply_intent: Option<ApplyIntent>,
    /// A reload hook of the latest rotation that failed (the rotation stands); cleared by one whose hooks all ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_failure: Option<HookFailure>,
    /// The last time the target accepted the job's stored current value: a drift heartbeat's verify, or the
    /// verify of a rotation, recovery or import that made a value current.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_verify: Option<Verified>,
    /// Stores whose current value differs from the job's other stores, as the last heartbeat found them (a person
    /// overwrote it); cleared when a heartbeat finds every store in step, or a rotation writes them all anew.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftMark>,
}

/// A verify the target accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
    #[serde(deserialize_with = "crate::rfc3339::deserialize")]
    pub at: DateTime<Utc>,
    /// What verified it: `heartbeat`, `rotation`, `recovery` or `import`.
    pub by: String,
}

/// Stores of a job whose current value differs from the value the target accepts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftMark {
    #[serde(deserialize_with = "crate::rfc3339::deserialize")]
    pub since: DateTime<Utc>,
    /// The configured names of the stores that differ.
    pub stores: Vec<String>,
}

/// A reload hook that failed after rotation `rotation_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookFailure {
    #[serde(deserialize_with = "crate::rfc3339::deserialize")]
    pub at: DateTime<Utc>,
    pub rotation_id: RotationId,
    /// Names the hook and what happened (never its output).
    pub error: String,
}

#[derive(Debug, thiserror::Error)]
#[error("job state `{path}`: {detail}")]
pub struct StateError {
    pub path: PathBuf,
    pub detail: String,
}

/// The job state files of one state directory.
#[derive(Clone, Debug)]
pub struct StateDir {
    root: PathBuf,
    /// Set with `[lease] kind = "kubernetes"`: the apply intent and the diverged mark are kept where every replica
    /// reads them, and that copy is the one that counts (see `crate::shared`).
    shared: Option<Arc<SharedState>>,
}

/// What of a job's state the next leader must know.
#[derive(Default, Serialize, Deserialize, PartialEq)]
struct SharedJob {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    apply_intent: Option<ApplyIntent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    diverged: Option<DivergedMark>,
}

impl StateDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into(), shared: None }
    }

    /// Keeps the apply intents and diverged marks in `shared` too, and reads them from there.
    pub fn with_shared(mut self, shared: Arc<SharedState>) -> Self {
        self.shared = Some(shared);
        self
    }

    /// Where the intents and marks are shared with other replicas, when they are.
    pub fn shared(&self) -> Option<&Arc<SharedState>> {
        self.shared.as_ref()
    }

    fn shared_key(job: &str) -> String {
        format!("jobs/{job}")
    }

    /// Puts the shared copy of `job`'s intent and mark into `state`: that copy is the truth when there is one.
    fn overlay(&self, job: &str, state: &mut JobState) -> Result<(), StateError> {
        let Some(shared) = &self.shared else { return Ok(()) };
        let key = Self::shared_key(job);
        let read: SharedJob = match shared.get(&key) {
            Some(value) => serde_json::from_value(value).map_err(|e| StateError {
                path: PathBuf::from(&key),
                detail: format!("the shared job state cannot be read ({e})"),
            })?,
            None => SharedJob::default(),
        };
        state.apply_intent = read.apply_intent;
        state.diverged = read.diverged;
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, job: &str) -> PathBuf {
        // Without `format!`: `status` and start-up build one for every job.
        let mut path = self.root.join("jobs").join(job).into_os_string();
        path.push(".json");
        path.into()
    }

    /// The job's state; a job never run has the default state (in the current format).
    pub fn load(&self, job: &str) -> Result<JobState, StateError> {
        let path = self.path(job);
        let read = crate::durable::read_small(&path);
        let mut state = Self::decode(path, read)?;
        self.overlay(job, &mut state)?;
        Ok(state)
    }

    /// The states of `jobs`, in order, as [`StateDir::load`] gives each; their directory is opened once.
    pub fn load_many(&self, jobs: &[String]) -> Vec<Result<JobState, StateError>> {
        let dir = crate::durable::Dir::open(&self.root.join("jobs")).ok();
        let load = |job: &String| {
            let path = self.path(job);
            let read = crate::durable::read_small_in(dir.as_ref(), &path);
            let mut state = Self::decode(path, read)?;
            self.overlay(job, &mut state)?;
            Ok(state)
        };
        jobs.iter().map(load).collect()
    }

    fn decode(path: PathBuf, read: std::io::Result<Vec<u8>>) -> Result<JobState, StateError> {
        match read {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StateError {
                path,
                detail: format!("not a rotavault job state file ({e}); move it away to start afresh"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(JobState { format: FORMAT, ..JobState::default() })
            }
            Err(e) => Err(StateError { path, detail: e.to_string() }),
        }
    }

    /// Replaces the job's state durably (see `durable`): a crash leaves the old state or the new one, never a
    /// torn file, and a state that was saved is on disk.
    pub fn save(&self, job: &str, state: &JobState) -> Result<(), StateError> {
        if let Some(shared) = &self.shared {
            let part =
                SharedJob { apply_intent: state.apply_intent.clone(), diverged: state.diverged.clone() };
            let key = Self::shared_key(job);
            let value = if part == SharedJob::default() {
                None
            } else {
                Some(
                    serde_json::to_value(&part)
                        .map_err(|e| StateError { path: PathBuf::from(&key), detail: e.to_string() })?,
                )
            };
            shared.set(&key, value);
        }
        let path = self.path(job);
        let body = serde_json::to_vec_pretty(state)
            .map_err(|e| StateError { path: path.clone(), detail: e.to_string() })?;
        crate::durable::write(&path, &body).map_err(|e| StateError { path, detail: e.to_string() })
    }

    /// Loads, changes and saves the job's state.
    pub fn update(&self, job: &str, change: impl FnOnce(&mut JobState)) -> Result<JobState, StateError> {
        let mut state = self.load(job)?;
        change(&mut state);
        state.format = FORMAT;
        self.save(job, &state)?;
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_state_loads_back_and_a_missing_one_is_default() {
        let dir = tempfile::tempdir().expect("tempdir");
        let states = StateDir::new(dir.path());
        assert_eq!(states.load("job").expect("load"), JobState { format: FORMAT, ..JobState::default() });
        let state = JobState {
            diverged: Some(DivergedMark { since: Utc::now(), reason: "changed outside".into() }),
            ..JobState::default()
        };
        states.save("job", &state).expect("save");
        assert_eq!(states.load("job").expect("load"), state);
    }

    #[test]
    fn a_corrupt_state_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let states = StateDir::new(dir.path());
        std::fs::create_dir_all(dir.path().join("jobs")).expect("mkdir");
        std::fs::write(dir.path().join("jobs/job.json"), "{not json").expect("write");
        let err = states.load("job").expect_err("corrupt");
        assert!(err.to_string().contains("jobs/job.json"), "{err}");
    }
}
