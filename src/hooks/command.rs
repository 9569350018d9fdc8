//! The `command` hook: a program run with an argv (no shell, so nothing in a job or store name is ever
//! interpreted), a timeout, and an environment that holds only `PATH` and what names the rotation (see
//! `crate::program`). Standard output is discarded (it would mix into `rotavault rotate --json`), standard error
//! goes to rotavault's own, so a failing hook's words reach the journal; rotavault never copies them into an
//! event.

use super::{HookContext, HookError};
use std::process::Stdio;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandHook {
    /// Never empty: the program, then its arguments.
    pub argv: Vec<String>,
    pub timeout: Duration,
}

impl CommandHook {
    pub fn program(&self) -> &str {
        self.argv.first().map_or("", String::as_str)
    }

    pub(super) async fn run(&self, context: &HookContext) -> Result<(), HookError> {
        let hook = super::Hook::Command(self.clone()).describe();
        let Some((program, args)) = self.argv.split_first() else {
            return Err(HookError::Spawn { hook, detail: "the argv is empty".into() });
        };
        let stores = stores(context);
        let env = [
            ("ROTAVAULT_JOB", context.job.as_str()),
            ("ROTAVAULT_ROTATION_ID", context.rotation_id.as_str()),
            ("ROTAVAULT_STORES", stores.as_str()),
        ];
        let mut child = crate::program::command(program, args, &env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| HookError::Spawn { hook: hook.clone(), detail: e.to_string() })?;
        match tokio::time::timeout(self.timeout, child.wait()).await {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(HookError::Exited { hook, status: status.to_string() }),
            Ok(Err(e)) => Err(HookError::Spawn { hook, detail: e.to_string() }),
            Err(_) => {
                crate::program::kill(&mut child, &hook).await;
                Err(HookError::TimedOut { hook, timeout: self.timeout })
            }
        }
    }
}

/// `store:secret-name` for each of the job's stores, comma-separated.
fn stores(context: &HookContext) -> String {
    context.stores.iter().map(|s| format!("{}:{}", s.store, s.name)).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hooks::{Hook, run};

    fn context() -> HookContext {
        HookContext {
            job: "backup".into(),
            rotation_id: "r-42".into(),
            stores: vec![store("vault", "apps/backup"), store("local", "backup")],
        }
    }

    fn store(store: &str, name: &str) -> crate::events::EventStore {
        crate::events::EventStore {
            store: store.into(),
            backend: "memory",
            name: name.into(),
            version: Some("r-42".into()),
        }
    }

    fn command(argv: &[&str], timeout: Duration) -> Hook {
        Hook::Command(CommandHook { argv: argv.iter().map(|s| (*s).to_owned()).collect(), timeout })
    }

    #[tokio::test]
    async fn a_command_hook_gets_the_job_rotation_and_stores_and_nothing_else_of_the_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("env");
        let script = format!("env > '{}'", out.display());
        let hook = command(&["/bin/sh", "-c", &script], Duration::from_secs(20));
        run(&hook, &context()).await.expect("the hook runs");
        let env = std::fs::read_to_string(&out).expect("the hook wrote its environment");
        assert!(env.contains("ROTAVAULT_JOB=backup\n"), "{env}");
        assert!(env.contains("ROTAVAULT_ROTATION_ID=r-42\n"), "{env}");
        assert!(env.contains("ROTAVAULT_STORES=vault:apps/backup,local:backup\n"), "{env}");
        let names: Vec<&str> = env.lines().filter_map(|l| l.split_once('=').map(|(k, _)| k)).collect();
        let allowed =
            ["PATH", "ROTAVAULT_JOB", "ROTAVAULT_ROTATION_ID", "ROTAVAULT_STORES", "PWD", "SHLVL", "_"];
        // The shell adds PWD, SHLVL and `_` itself; anything else would have come from rotavault's environment.
        assert!(names.iter().all(|n| allowed.contains(n)), "only what names the rotation: {names:?}");
    }

    #[tokio::test]
    async fn a_command_that_exits_non_zero_is_an_error_naming_the_program_and_status() {
        let err =
            run(&command(&["/bin/false"], Duration::from_secs(20)), &context()).await.expect_err("fails");
        assert!(matches!(err, HookError::Exited { .. }), "{err:?}");
        assert_eq!(err.to_string(), "command `/bin/false`: exited with exit status: 1");
    }

    #[tokio::test]
    async fn a_command_that_does_not_exist_is_an_error_not_a_panic() {
        let hook = command(&["/nonexistent/reload-app"], Duration::from_secs(20));
        let err = run(&hook, &context()).await.expect_err("not found");
        assert!(matches!(err, HookError::Spawn { .. }), "{err:?}");
        assert!(err.to_string().starts_with("command `/nonexistent/reload-app`: cannot be started"), "{err}");
    }

    #[tokio::test]
    async fn a_command_past_its_timeout_is_killed_and_reported() {
        let hook = command(&["/bin/sleep", "30"], Duration::from_millis(200));
        let started = std::time::Instant::now();
        let err = run(&hook, &context()).await.expect_err("times out");
        assert!(matches!(err, HookError::TimedOut { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(10), "not waited for to the end");
        assert_eq!(err.to_string(), "command `/bin/sleep`: still running after 200ms; it was killed");
    }

    #[tokio::test]
    async fn what_a_hook_started_is_killed_with_it_at_the_timeout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pidfile = dir.path().join("child.pid");
        let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let hook = command(&["/bin/sh", "-c", &script], Duration::from_millis(500));
        let err = run(&hook, &context()).await.expect_err("times out");
        assert!(matches!(err, HookError::TimedOut { .. }), "{err:?}");
        let pid = std::fs::read_to_string(&pidfile).expect("the hook started its child");
        let stat = std::path::Path::new("/proc").join(pid.trim()).join("stat");
        // Gone, or dead and waiting to be reaped by init (state Z): not running on past the timeout.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let state = std::fs::read_to_string(&stat).ok();
            let running = state.as_deref().is_some_and(|s| {
                s.rsplit_once(") ").and_then(|(_, rest)| rest.split(' ').next()).is_some_and(|st| st != "Z")
            });
            if !running {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the hook's child outlived its timeout: {state:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
