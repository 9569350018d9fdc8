//! The Kubernetes lease of `[lease] kind = "kubernetes"`, for the commands: `run` stands by for it and leads
//! while it holds it, and hands it over when asked; `rotate` takes it for its one engine call or says who holds it
//! (exit 75); `import`, `resolve` and `check --connect` (which logs in), run by a person while the daemon leads,
//! ask the leader to hand it over; `status` reads what the leader shares. Without that lease (or without the `kubernetes` feature) every function here does nothing.

use super::CliError;
use crate::runtime::Runtime;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What a one-shot command holds while it works: the lease task, renewing until [`Held::release`].
pub struct Held {
    task: JoinHandle<()>,
    done: CancellationToken,
}

impl Held {
    /// Writes what the command changed (the shared state) into the Lease and gives the Lease up.
    pub async fn release(self) {
        self.done.cancel();
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "the lease task failed; a standby takes the lease once it expires");
        }
    }
}

#[cfg(feature = "kubernetes")]
mod kubernetes {
    use super::{CliError, Held};
    use crate::config::LeaseConfig;
    use crate::lease::kubernetes::{Attempt, Ended, KubeLease};
    use crate::runtime::Runtime;
    use std::time::Duration;
    use tokio::task::JoinHandle;
    use tokio_util::sync::CancellationToken;

    /// How long `import` and `resolve` wait for a leader to finish its rotations and hand the lease over.
    const HANDOVER_WAIT: Duration = Duration::from_secs(300);

    async fn connect(runtime: &Runtime) -> Result<Option<KubeLease>, CliError> {
        let LeaseConfig::Kubernetes(settings) = &runtime.config.lease else { return Ok(None) };
        let Some(shared) = runtime.shared.clone() else {
            return Err(CliError::Failed("the Kubernetes lease has no shared state to keep".into()));
        };
        KubeLease::connect(settings.clone(), shared)
            .await
            .map(Some)
            .map_err(|e| CliError::Failed(e.to_string()))
    }

    /// `run`: stands by for the lease, then leads until `done` (every task of the daemon has ended, and the lease
    /// is released) or until the lease is lost (then `shutdown` is cancelled, and the task ends with why).
    pub async fn stand_by(
        runtime: &mut Runtime,
        shutdown: &CancellationToken,
        done: &CancellationToken,
    ) -> Result<Option<JoinHandle<Option<String>>>, CliError> {
        let Some(lease) = connect(runtime).await? else { return Ok(None) };
        let leading = CancellationToken::new();
        runtime.leading = Some(leading.clone());
        let (shutdown, done) = (shutdown.clone(), done.clone());
        Ok(Some(tokio::spawn(async move {
            if !lease.acquire(&shutdown).await.unwrap_or(false) {
                return None;
            }
            leading.cancel();
            // Asked to hand over (a person runs `import` or `resolve`): stop as on SIGTERM; the Lease is released
            // once every rotation in flight has ended, and the process is started again as a standby.
            let handover = CancellationToken::new();
            let asked = handover.clone();
            let stopping = shutdown.clone();
            tokio::spawn(async move {
                asked.cancelled().await;
                stopping.cancel();
            });
            match lease.keep(&done, &handover).await {
                Ended::Stopped if handover.is_cancelled() => {
                    Some("handed the lease over on request".to_owned())
                }
                Ended::Stopped => None,
                Ended::Lost(reason) => {
                    // Rotations not yet at Apply stop there; one past it runs to its end (the engine's shutdown).
                    shutdown.cancel();
                    Some(reason)
                }
            }
        })))
    }

    /// `status`: the holder's shared state, read once.
    pub async fn follow(runtime: &Runtime) -> Result<(), CliError> {
        let Some(lease) = connect(runtime).await? else { return Ok(()) };
        lease.read_shared().await.map_err(|e| CliError::Failed(e.to_string()))
    }

    /// A one-shot command: takes the lease (its holder gone), or, with `handover`, asks a live holder to hand it
    /// over; else says who holds it.
    pub async fn hold(runtime: &Runtime, command: &str, handover: bool) -> Result<Option<Held>, CliError> {
        let Some(lease) = connect(runtime).await? else { return Ok(None) };
        let attempt = if handover {
            lease.take_by_handover(HANDOVER_WAIT).await
        } else {
            lease.take_unless_held().await
        };
        match attempt.map_err(|e| CliError::TryLater(e.to_string()))? {
            Attempt::Leading => {}
            Attempt::HeldBy(holder) if handover => {
                return Err(CliError::TryLater(format!(
                    "the lease {} is held by {holder}, which did not hand it over within {}: it may be finishing \
                     long rotations; try again later",
                    lease.describe(),
                    humantime::format_duration(HANDOVER_WAIT)
                )));
            }
            Attempt::HeldBy(holder) => {
                return Err(CliError::TryLater(format!(
                    "the lease {} is held by {holder}, which runs the jobs: `{command}` runs only where no replica \
                     leads; ask the leader instead (POST /v1/jobs/JOB/rotate), or try again later",
                    lease.describe()
                )));
            }
        }
        let done = CancellationToken::new();
        let stop = done.clone();
        let task = tokio::spawn(async move {
            if let Ended::Lost(reason) = lease.keep(&stop, &CancellationToken::new()).await {
                tracing::error!(%reason, "lost the lease while the command ran");
            }
        });
        Ok(Some(Held { task, done }))
    }
}

/// `run`: see the `kubernetes` module; `None` without a Kubernetes lease.
pub async fn stand_by(
    runtime: &mut Runtime,
    shutdown: &CancellationToken,
    done: &CancellationToken,
) -> Result<Option<JoinHandle<Option<String>>>, CliError> {
    #[cfg(feature = "kubernetes")]
    return kubernetes::stand_by(runtime, shutdown, done).await;
    #[cfg(not(feature = "kubernetes"))]
    {
        let _ = (runtime, shutdown, done);
        Ok(None)
    }
}

/// `status` with a Kubernetes lease: the apply intents and diverged marks the leader shares, read from the Lease
/// (the state directory's copy is not the one that counts then).
pub async fn follow(runtime: &Runtime) -> Result<(), CliError> {
    #[cfg(feature = "kubernetes")]
    return kubernetes::follow(runtime).await;
    #[cfg(not(feature = "kubernetes"))]
    {
        let _ = runtime;
        Ok(())
    }
}

/// A one-shot command's hold on the lease; `None` without a Kubernetes lease. With `handover`, a leader is asked
/// to hand the lease over (it finishes what it runs, releases the lease and is started again as a standby).
pub async fn hold(runtime: &Runtime, command: &str, handover: bool) -> Result<Option<Held>, CliError> {
    #[cfg(feature = "kubernetes")]
    return kubernetes::hold(runtime, command, handover).await;
    #[cfg(not(feature = "kubernetes"))]
    {
        let _ = (runtime, command, handover);
        Ok(None)
    }
}
