//! `rotavault run`: builds the runtime, turns SIGTERM and SIGINT into the shutdown token, and hands over to the
//! daemon ([`crate::daemon`]), which exits 0 once every rotation in flight has ended. SIGHUP reloads the
//! configuration (`daemon::reload`); under systemd the process says when it is ready, stopping or reloading
//! (`daemon::systemd`). With `[lease] kind = "kubernetes"` it stands by until this replica holds the Lease
//! (`cli::replicas`), and exits 75 when it stops leading before it was asked to stop (lost, or handed over), for
//! the orchestrator to start it again as a standby.

use super::{CliError, exit};
use crate::config::Config;
use crate::daemon::reload::serve_reloading;
use crate::daemon::systemd::Notifier;
use crate::runtime::Runtime;
use crate::schedule::SystemClock;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Kept here for the callers that knew the loop as `cli::run::serve`.
pub use crate::daemon::serve;

pub async fn run(config: Config) -> Result<u8, CliError> {
    let shutdown = CancellationToken::new();
    let notifier = Notifier::from_env();
    // Taken before any job runs: SIGHUP's default action kills the process.
    let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|e| CliError::Failed(format!("SIGHUP handler: {e}")))?;
    let mut runtime = Runtime::build(config, Arc::new(SystemClock), shutdown.clone()).await?;
    // Kept renewed until every task of the daemon has ended, then released: a standby takes over only once no
    // rotation of this process can still be running.
    let done = CancellationToken::new();
    let leader = super::replicas::stand_by(&mut runtime, &shutdown, &done).await?;
    let runtime = Arc::new(runtime);
    spawn_signal_handler(shutdown.clone())?;
    // systemd: STOPPING=1 on shutdown, WATCHDOG=1 while the runtime runs.
    let stopping = tokio::spawn(notifier.clone().stopping_on(shutdown.clone()));
    tokio::spawn(notifier.clone().keep_watchdog(shutdown.clone()));
    let served =
        serve_reloading(runtime, shutdown.clone(), notifier, hangup, crate::daemon::run_telling).await;
    // The process ends with this function: a STOPPING=1 still queued behind the last tasks would be lost with it
    // (seen on a loaded machine), so it is awaited.
    shutdown.cancel();
    let _ = stopping.await;
    done.cancel();
    let lost = match leader {
        Some(leader) => leader.await.unwrap_or_else(|e| Some(format!("the lease task failed: {e}"))),
        None => None,
    };
    served.map_err(CliError::Failed)?;
    match lost {
        // The orchestrator starts the process again, as a standby.
        Some(reason) => Err(CliError::TryLater(format!("stopped leading: {reason}"))),
        None => Ok(exit::OK),
    }
}

pub(super) fn spawn_signal_handler(shutdown: CancellationToken) -> Result<(), CliError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term =
        signal(SignalKind::terminate()).map_err(|e| CliError::Failed(format!("SIGTERM handler: {e}")))?;
    let mut int =
        signal(SignalKind::interrupt()).map_err(|e| CliError::Failed(format!("SIGINT handler: {e}")))?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: finishing rotations in flight, then stopping"),
            _ = int.recv() => tracing::info!("SIGINT: finishing rotations in flight, then stopping"),
        }
        shutdown.cancel();
    });
    Ok(())
}
