//! Which process may run the jobs (invariant 3 across machines).
//!
//! With `[lease] kind = "file"` (the default) there is nothing here: every engine entry point takes the job's lock
//! file in `state_dir` (`rotation::lock`), which excludes every other process on the host.
//!
//! With `[lease] kind = "kubernetes"` ([`kubernetes`], feature `kubernetes`) replicas on several machines share one
//! `coordination.k8s.io/v1` Lease: the replica that holds it leads and runs schedules and rotations; the others
//! stand by and take over once it has not been renewed for its duration. Every write of the Lease is a
//! compare-and-set on its `resourceVersion`, so two replicas never both believe a write made them the holder.
//! The leader writes what the next leader must know ([`crate::shared`]) into the Lease with every renewal, and
//! the engine waits for that write (the apply intent in it) before every Apply: a leader that can no longer
//! write the Lease sends no Apply.

#[cfg(feature = "kubernetes")]
pub mod kubernetes;

/// This process's identity as a holder: the host name (a pod's name) and a token of its own, so that a restarted
/// container, or `rotavault rotate` run beside the daemon in the same pod, is never taken for the holder.
pub fn identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "rotavault".into());
    let token = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}_{}", &token[..8])
}
