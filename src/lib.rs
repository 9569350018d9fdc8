//! rotavault creates and rotates API credentials on a schedule and writes them straight into secret stores, so
//! that no person ever sees or copies the secret.
//!
//! The map (ARCHITECTURE.md says more):
//!
//! - [`secret`]: `SecretValue`, the only type that holds a secret, and generation from a `SecretPolicy`.
//! - [`store`]: the `Store` contract (current / pending / previous), its backends and its conformance suite.
//! - [`target`]: the `Target` trait and the targets whose credentials are rotated.
//! - [`rotation`]: the engine: the rotation protocol, recovery with the apply intent, the per-job lock and the job
//!   state.
//! - [`events`]: audit events (CloudEvents 1.0) and the `EventSink` they go to.
//! - [`lockout`]: the lockout guard: consecutive failed logins per account, shared by every job and process.
//! - [`lease`]: which process may run the jobs: the per-job lock files on one host, or a Kubernetes Lease shared
//!   by replicas (feature `kubernetes`), and the fence the engine passes before every Apply.
//! - [`shared`]: what the next leader must know (apply intents, login counts, diverged marks), kept where every
//!   replica reads it.
//! - [`retry`]: bounded back-off with jitter, and a timeout on every call.
//! - `durable`: files that survive a crash whole.
//! - [`schedule`]: cron schedules, windows, `max_age`, and the injectable clock.
//! - [`config`]: the TOML configuration and its validation.
//! - [`runtime`]: builds stores, targets, the engine and its jobs from a validated config.
//! - [`daemon`]: the long-running process: the scheduler, the HTTP server (health, metrics, job API), systemd
//!   notifications and the watchdog, SIGHUP reload, with one shutdown for all it runs.
//! - `program`: a program run from an argv without a shell (reload hooks, the `command` target).
//! - [`hygiene`]: no core dumps, not dumpable: applied first in `main`.
//! - [`status`]: what `status --json` and the job API show of a job.
//! - [`report`]: `rotavault report`: each job's verdict against `[policy]` with its evidence and history, read-only.
//! - [`cli`]: one file per subcommand; `main.rs` only parses and dispatches.
//! - `sandbox` (feature `sandbox`): the Autotask simulator (REST and SOAP) that tests, the demo and trials run.

pub mod cli;
pub mod config;
pub mod daemon;
mod durable;
pub mod events;
pub mod hooks;
pub mod hygiene;
pub mod lease;
pub mod lockout;
pub mod notify;
mod program;
pub mod report;
pub mod retry;
mod rfc3339;
pub mod rotation;
pub mod runtime;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod schedule;
pub mod secret;
pub mod shared;
pub mod status;
pub mod store;
pub mod target;
