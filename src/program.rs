//! A program run from an argv, as reload hooks (`hooks::command`) and the `command` target run theirs: no shell
//! (nothing in a job, account or store name is ever interpreted), an environment that holds only `PATH` and what
//! the caller names, and its own process group, killed whole when it overstays its timeout.
//!
//! The inherited environment is cleared because rotavault's own may carry what a program has no business with (a
//! cloud credential, `CREDENTIALS_DIRECTORY`); `PATH` stays so that `systemctl`, `psql` or `bao` resolve as they
//! would in a shell.

use tokio::process::{Child, Command};

/// `PATH` for a program when rotavault was started without one.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `program` with `args`, its environment cleared but for `PATH` and `env`, in a process group of its own and
/// killed when dropped. Standard streams are the caller's to set.
pub(crate) fn command(program: &str, args: &[String], env: &[(&str, &str)]) -> Command {
    let path = std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .env("PATH", path)
        .envs(env.iter().copied())
        // Its own process group, so that a timeout reaches what the program started too (`sh -c`'s children).
        .process_group(0)
        .kill_on_drop(true);
    command
}

/// Kills `child` past its timeout: the whole group first (what it started), then the program itself, killed and
/// reaped, so that nothing it started outlives the timeout. `what` names it in the warnings.
pub(crate) async fn kill(child: &mut Child, what: &str) {
    let group = child.id().and_then(|id| i32::try_from(id).ok()).and_then(rustix::process::Pid::from_raw);
    if let Some(group) = group
        && let Err(e) = rustix::process::kill_process_group(group, rustix::process::Signal::KILL)
    {
        tracing::warn!(program = %what, error = %e, "could not kill the program's group after its timeout");
    }
    if let Err(e) = child.kill().await {
        tracing::warn!(program = %what, error = %e, "could not kill the program after its timeout");
    }
}
