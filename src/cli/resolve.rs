//! `rotavault resolve JOB`: a person says the job's credential is set right again (the stores and the target
//! agree, the account is unlocked): clears a diverged mark, starts the lockout guard's count of the job's accounts
//! afresh, and forgets a refusal of the tenant's admin credential.

use super::output::{Output, outln};
use super::{CliError, exit, unknown_job};
use crate::config::Config;
use crate::runtime::Runtime;
use crate::schedule::SystemClock;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub async fn resolve(config: Config, name: &str) -> Result<u8, CliError> {
    let runtime = Runtime::build(config, Arc::new(SystemClock), CancellationToken::new()).await?;
    let Some(scheduled) = runtime.job(name) else {
        return Err(unknown_job(name, &runtime.job_names()));
    };
    let held = super::replicas::hold(&runtime, "resolve", true).await?;
    let mut out = Output::stdout();
    let resolved = runtime.engine.resolve(&scheduled.job).await;
    if let Some(held) = held {
        held.release().await;
    }
    runtime.flush_notifications().await;
    if resolved? {
        outln!(
            out,
            "{name}: the diverged mark is cleared; the next run settles any pending value against the target first"
        );
    } else {
        outln!(out, "{name} was not diverged; its accounts' failed-login counts start afresh");
    }
    Ok(out.acted(exit::OK))
}
