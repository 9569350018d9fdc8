//! SIGHUP: read the configuration again and, when it is valid, run its jobs instead of the running ones.
//!
//! The new configuration is loaded, validated and built (stores opened, targets made) while the old jobs keep
//! running; any error there is logged with the config error (file:line:col and key) and the running configuration
//! is kept, so a typo never stops rotations. Only a runtime that built whole replaces the old one: the old job
//! tasks are stopped at their next safe point (asleep, or planning), a rotation in flight runs to its end (the
//! engine keeps the process's own shutdown, not the reload's), and then the new jobs start with their own
//! start-up recovery. systemd hears `RELOADING=1` at the signal and `READY=1` once the new (or kept) configuration
//! runs.

use super::systemd::{Notifier, Startup};
use crate::config::{self, ConfigError};
use crate::runtime::{BuildError, Runtime};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use tokio::signal::unix::Signal;
use tokio_util::sync::CancellationToken;

/// Why a reload was refused; the running configuration stays.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("the new configuration is invalid: {0}")]
    Config(#[from] ConfigError),
    #[error("the new configuration cannot be started: {0}")]
    Build(#[from] BuildError),
}

/// Loads, validates and builds the configuration at `path`, with `current`'s clock; its engine stops on
/// `shutdown` (the process's, so that a later reload lets its rotations finish).
pub async fn reload(
    path: &Path,
    current: &Runtime,
    shutdown: CancellationToken,
) -> Result<Runtime, ReloadError> {
    let config = config::load(path)?;
    Ok(Runtime::build_reloaded(config, current, shutdown).await?)
}

/// Runs `runtime`'s jobs through `serve` until `shutdown`, replacing them by a reloaded configuration at every
/// `hangup` signal that brings a valid one. `serve(runtime, stop, startup)` must return once `stop` is cancelled
/// and call `startup.recovered()` as each job ends its start-up recovery; an error it returns (a generation that
/// could not start, such as an HTTP port taken) ends the process with it, for the service manager to restart.
pub async fn serve_reloading<S, F, E>(
    mut runtime: Arc<Runtime>,
    shutdown: CancellationToken,
    notifier: Notifier,
    mut hangup: Signal,
    serve: S,
) -> Result<(), String>
where
    S: Fn(Arc<Runtime>, CancellationToken, Arc<Startup>) -> F,
    F: Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let ended = |result: Result<Result<(), E>, tokio::task::JoinError>| match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("the scheduler stopped unexpectedly: {e}")),
    };
    let path = runtime.config.path.clone();
    loop {
        let generation = shutdown.child_token();
        let startup = Startup::new(notifier.clone(), runtime.jobs.len());
        let mut serving = tokio::spawn(serve(runtime.clone(), generation.clone(), startup));
        let next = loop {
            tokio::select! {
                result = &mut serving => return ended(result),
                signal = hangup.recv() => if signal.is_none() {
                    // No more SIGHUPs can come: serve on without reloading.
                    return ended(serving.await);
                },
            }
            tracing::info!(config = %path.display(), "SIGHUP: reloading the configuration");
            // SIGHUP is also logrotate's signal: the audit file is opened again under its name.
            if let Some(audit) = &runtime.audit {
                audit.reopen();
            }
            notifier.reloading();
            notifier.status("reloading the configuration");
            match reload(&path, &runtime, shutdown.clone()).await {
                Ok(next) => break next,
                Err(e) => {
                    tracing::error!(error = %e, "reload refused: the running configuration stays");
                    notifier.status(&format!(
                        "reload refused (see the log); running {} job(s) of the previous configuration",
                        runtime.jobs.len()
                    ));
                    notifier.ready();
                }
            }
        };
        notifier.status("reloading: waiting for rotations in flight to finish");
        generation.cancel();
        ended(serving.await)?;
        if shutdown.is_cancelled() {
            return Ok(());
        }
        tracing::info!(jobs = next.jobs.len(), "configuration reloaded");
        runtime = Arc::new(next);
    }
}
