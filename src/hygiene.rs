//! Process hygiene, applied before anything else runs: the process holds secrets in memory, so it must never leave
//! them in a core file, and no other process of the same user may read its memory through `/proc/<pid>/mem` or
//! ptrace. Core dumps are switched off (RLIMIT_CORE 0, soft and hard, so nothing in the process can raise it again)
//! and the process is marked non-dumpable (`PR_SET_DUMPABLE` 0), which also makes its `/proc/<pid>/` files
//! root's. Both calls only ever lower what the process may do, so the kernel grants them to any user.

/// Why the process could not be hardened.
#[derive(Debug, thiserror::Error)]
pub enum HygieneError {
    #[error("cannot disable core dumps (setrlimit RLIMIT_CORE 0): {0}")]
    CoreLimit(std::io::Error),
    #[error("cannot mark the process non-dumpable (prctl PR_SET_DUMPABLE 0): {0}")]
    Dumpable(std::io::Error),
}

/// Disables core dumps and marks the process non-dumpable. Call it first in `main`, before any secret exists.
pub fn harden_process() -> Result<(), HygieneError> {
    use rustix::process::{Resource, Rlimit, setrlimit};
    setrlimit(Resource::Core, Rlimit { current: Some(0), maximum: Some(0) })
        .map_err(|e| HygieneError::CoreLimit(e.into()))?;
    set_not_dumpable()
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_not_dumpable() -> Result<(), HygieneError> {
    use rustix::process::{DumpableBehavior, set_dumpable_behavior};
    set_dumpable_behavior(DumpableBehavior::NotDumpable).map_err(|e| HygieneError::Dumpable(e.into()))
}

// Elsewhere the zero core limit is all there is; rotavault is built and run on Linux.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn set_not_dumpable() -> Result<(), HygieneError> {
    Ok(())
}
