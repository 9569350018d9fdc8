//! The per-job lock: invariant 3, one rotation per job at a time.
//!
//! Two layers, both taken without waiting: a mutex per job inside the process (the daemon's scheduler and a
//! manual rotation), and an advisory lock on `<state_dir>/locks/<job>.lock` across processes on one machine
//! (`rotavault run` and `rotavault rotate`, or two daemons on one config). The OS releases the file lock when the
//! process dies, so a crash never leaves a job locked. A file lock does not reach across machines: replicas share
//! a Kubernetes Lease (`crate::lease`), and the engine's fence before Apply holds across them.

use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LockError {
    #[error("job `{job}` is being rotated by this process already")]
    BusyHere { job: String },
    #[error("job `{job}` is being rotated by another process{}", holder.as_ref().map(|p| format!(" (pid {p})")).unwrap_or_default())]
    BusyElsewhere { job: String, holder: Option<String> },
    #[error("cannot take the lock file `{path}`: {detail}")]
    Io { path: PathBuf, detail: String },
}

#[derive(Debug, Default)]
pub struct JobLocks {
    dir: Option<PathBuf>,
    held: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Held for the whole rotation; dropping it releases both layers.
#[derive(Debug)]
pub struct JobGuard {
    _local: tokio::sync::OwnedMutexGuard<()>,
    _file: Option<File>,
}

impl JobLocks {
    /// `dir` is where lock files live; `None` keeps the lock inside the process (tests, dry runs).
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir, held: Mutex::default() }
    }

    pub fn try_acquire(&self, job: &str) -> Result<JobGuard, LockError> {
        let mutex = {
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            held.entry(job.to_owned()).or_default().clone()
        };
        let local = mutex.try_lock_owned().map_err(|_| LockError::BusyHere { job: job.to_owned() })?;
        let file = match &self.dir {
            Some(dir) => Some(self.lock_file(dir, job)?),
            None => None,
        };
        Ok(JobGuard { _local: local, _file: file })
    }

    fn lock_file(&self, dir: &std::path::Path, job: &str) -> Result<File, LockError> {
        let path = dir.join(format!("{job}.lock"));
        let io = |e: std::io::Error| LockError::Io { path: path.clone(), detail: e.to_string() };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = Some(holder.trim().to_owned()).filter(|h| !h.is_empty());
                return Err(LockError::BusyElsewhere { job: job.to_owned(), holder });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        // The pid is only a hint for the message above; the lock itself is the flock.
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_is_locked_once_and_released_on_drop() {
        let locks = JobLocks::new(None);
        let guard = locks.try_acquire("a").expect("first");
        assert_eq!(locks.try_acquire("a").expect_err("second"), LockError::BusyHere { job: "a".into() });
        assert!(locks.try_acquire("b").is_ok(), "another job is independent");
        drop(guard);
        assert!(locks.try_acquire("a").is_ok());
    }

    #[test]
    fn the_file_lock_excludes_another_lock_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        let one = JobLocks::new(Some(dir.path().to_path_buf()));
        let two = JobLocks::new(Some(dir.path().to_path_buf()));
        let guard = one.try_acquire("job").expect("first");
        let err = two.try_acquire("job").expect_err("second table");
        assert!(matches!(err, LockError::BusyElsewhere { holder: Some(_), .. }), "{err:?}");
        drop(guard);
        assert!(two.try_acquire("job").is_ok());
    }
}
