//! `rotavault import JOB`: takes an existing credential once, from standard input, into rotavault's care.
//!
//! The credential is read without echo from a terminal, or from a pipe; never from argv (visible to every user
//! in `ps`) and never from a file left behind. It is verified at the target, written as current in every store
//! of the job, and then, unless `--no-rotate`, rotated at once, so that the value a person saw stops working.

use super::output::{Output, outln};
use super::{CliError, exit, unknown_job};
use crate::config::Config;
use crate::rotation::{Outcome, Trigger};
use crate::runtime::Runtime;
use crate::schedule::{Clock, SystemClock};
use crate::secret::SecretValue;
use crate::store::RotationId;
use crate::target::RotationInfo;
use std::io::{IsTerminal, Read};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

pub async fn import(
    config: Config,
    name: &str,
    user: Option<String>,
    no_rotate: bool,
) -> Result<u8, CliError> {
    let runtime = Runtime::build(config, Arc::new(SystemClock), CancellationToken::new()).await?;
    let held = super::replicas::hold(&runtime, "import", true).await?;
    let result = import_into(&runtime, name, user, no_rotate).await;
    if let Some(held) = held {
        held.release().await;
    }
    runtime.flush_notifications().await;
    result
}

async fn import_into(
    runtime: &Runtime,
    name: &str,
    user: Option<String>,
    no_rotate: bool,
) -> Result<u8, CliError> {
    let Some(scheduled) = runtime.job(name) else {
        return Err(unknown_job(name, &runtime.job_names()));
    };
    let job = &scheduled.job;
    let secret = read_secret(name)?;
    let info =
        RotationInfo { job: name.to_owned(), rotation_id: RotationId::new(), rotated_at: SystemClock.now() };
    let payload = job
        .target
        .import_payload(user.as_deref(), &secret, &info)
        .await
        .map_err(|e| CliError::Failed(format!("import: {e}")))?;
    drop(secret);

    let generation = runtime.engine.import(job, &payload).await?;
    drop(payload);
    let mut out = Output::stdout();
    outln!(
        out,
        "imported {name}: the target accepts it; written as current (generation {generation}) to {}",
        job.stores.iter().map(|s| format!("`{}`", s.label)).collect::<Vec<_>>().join(", ")
    );
    if no_rotate {
        outln!(out, "not rotated (--no-rotate): the imported value stays in use until the next rotation");
        return Ok(out.acted(exit::OK));
    }
    if job.target.manual() {
        outln!(
            out,
            "not rotated (apply = \"manual\"): this value stays in use until a person sets the next one; \
             `rotavault status {name}` says when that is due"
        );
        return Ok(out.acted(exit::OK));
    }
    match runtime.engine.rotate(job, Trigger::Manual).await {
        Ok(Outcome::Rotated { rotation_id, generation }) => outln!(
            out,
            "rotated {name}: rotation {rotation_id}, generation {generation}; the imported value no longer works"
        ),
        Ok(Outcome::Completed { rotation_id }) => outln!(out, "completed rotation {rotation_id} of {name}"),
        // Standard output is written line by line, so the import's line is out already.
        Err(e) => return Err(e.into()),
    }
    Ok(out.acted(exit::OK))
}

/// The secret from standard input: a prompt without echo on a terminal, else everything piped in, less one
/// trailing line break.
fn read_secret(job: &str) -> Result<SecretValue, CliError> {
    let text = if std::io::stdin().is_terminal() {
        Zeroizing::new(
            rpassword::prompt_password(format!("credential for {job} (not echoed): ")).map_err(|e| {
                CliError::Failed(format!("cannot read the credential from the terminal: {e}"))
            })?,
        )
    } else {
        let mut text = Zeroizing::new(String::new());
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| CliError::Failed(format!("cannot read the credential from standard input: {e}")))?;
        text
    };
    let trimmed = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
    if trimmed.is_empty() {
        return Err(CliError::Usage(
            "no credential on standard input: pipe it in (printf %s \"$SECRET\" | rotavault import JOB) or type it \
             at the prompt"
                .into(),
        ));
    }
    Ok(SecretValue::new(trimmed))
}
