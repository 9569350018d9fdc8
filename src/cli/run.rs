//! `rotavault run`: builds the runtime, turns SIGTERM and SIGINT into the shutdown token, and hands over to the
//! daemon ([`crate::daemon`]), which exits 0 once every rotation in flight has ended. SIGHUP reloads the
//! configuration (`daemon::reload`); under systemd the process says when it is ready, stopping or reloading
//! (`daemon::systemd`).

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
    let runtime = Arc::new(Runtime::build(config, Arc::new(SystemClock), shutdown.clone()).await?);
    spawn_signal_handler(shutdown.clone())?;
    // systemd: STOPPING=1 on shutdown, WATCHDOG=1 while the runtime runs.
    tokio::spawn(notifier.clone().stopping_on(shutdown.clone()));
    tokio::spawn(notifier.clone().keep_watchdog(shutdown.clone()));
    serve_reloading(runtime, shutdown, notifier, hangup, crate::daemon::run_telling)
        .await
        .map_err(CliError::Failed)?;
    Ok(exit::OK)
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
