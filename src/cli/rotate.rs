//! `rotavault rotate JOB`: one rotation now, with recovery first, exactly as the daemon would run it.

use super::output::{Output, outln};
use super::{CliError, exit, unknown_job};
use crate::config::Config;
use crate::rotation::{Outcome, Trigger};
use crate::runtime::Runtime;
use crate::schedule::SystemClock;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub async fn rotate(config: Config, name: &str) -> Result<u8, CliError> {
    let runtime = Runtime::build(config, Arc::new(SystemClock), CancellationToken::new()).await?;
    let Some(scheduled) = runtime.job(name) else {
        return Err(unknown_job(name, &runtime.job_names()));
    };
    let held = super::replicas::hold(&runtime, "rotate", false).await?;
    let result = runtime.engine.rotate(&scheduled.job, Trigger::Manual).await;
    if let Some(held) = held {
        held.release().await;
    }
    runtime.flush_notifications().await;
    let outcome = result?;
    let mut out = Output::stdout();
    match outcome {
        Outcome::Rotated { rotation_id, generation } => {
            outln!(out, "rotated {name}: rotation {rotation_id}, generation {generation}");
        }
        Outcome::Completed { rotation_id } => {
            outln!(
                out,
                "completed the interrupted rotation {rotation_id} of {name}; run again for a fresh secret"
            );
        }
    }
    Ok(out.acted(exit::OK))
}
