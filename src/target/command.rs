//! `command`: a program the operator names applies the new secret and verifies one, for a system rotavault has no
//! target of its own for (a database user through `psql`, a service's own CLI).
//!
//! The protocol, the contract the program keeps (README "The command target" says it for its authors):
//!
//! - It is run from an argv, without a shell, with only `PATH`, `ROTAVAULT_JOB`, `ROTAVAULT_ACCOUNT` and
//!   `ROTAVAULT_ACTION` in its environment (`crate::program`).
//! - Its standard input is one JSON object, `{"version":1,"action":"apply"|"verify","target":..,"job":..,
//!   "account":..,"secret":..}`, then end of file. The secret is never in its argv or environment, where any user
//!   of the host could read it (`/proc/PID/cmdline`, `ps e`).
//! - Its exit code is its answer: 0 applied / accepted; 2 refused ([`exit::REFUSED`]), with the reason as the
//!   first line of its standard output or `{"reason":".."}`; 75 ([`exit::TEMPFAIL`], `EX_TEMPFAIL`) nothing was
//!   done or tried, try later. Anything else, a signal or the timeout is an unknown outcome: the program may have
//!   changed the secret before it failed, so recovery decides, after the apply horizon, by verifying.
//!
//! What it writes is read up to [`OUTPUT_CAP`] per stream and the rest dropped, so a runaway program cannot fill
//! rotavault's memory. Its standard error goes to the log at `warn`, line by line (the first hundred), redacted of
//! the secret first; its standard output is read only for a refusal's reason, redacted the same way.

use super::TargetError;
use super::account::{Account, AccountTarget, Action, Channel};
use crate::secret::SecretValue;
use crate::secret::redact::Redactor;
use async_trait::async_trait;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use zeroize::Zeroizing;

pub const KIND: &str = "command";

/// How long one run of the program may take when the config does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// What is kept of each of the program's output streams, in bytes; the rest is read and dropped.
pub const OUTPUT_CAP: usize = 64 * 1024;

/// The longest refusal reason kept, in characters.
const REASON_CHARS: usize = 200;

/// The longest line of the program's standard error logged, in characters.
const LOG_LINE_CHARS: usize = 500;

/// The most lines of the program's standard error logged for one run; a count says how many more there were.
const LOG_LINES: usize = 100;

/// The exit codes with a meaning of their own; any other is an unknown outcome.
pub mod exit {
    /// Applied, or accepted.
    pub const DONE: i32 = 0;
    /// Refused: nothing changed (apply), or the secret does not authenticate (verify).
    pub const REFUSED: i32 = 2;
    /// `EX_TEMPFAIL`: nothing was done or tried; the same run may succeed later.
    pub const TEMPFAIL: i32 = 75;
}

/// A `[targets.NAME]` of kind `command`, shared by its jobs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandSettings {
    /// Never empty: the program that applies, then its arguments.
    pub apply: Vec<String>,
    /// Never empty: the program that verifies, then its arguments.
    pub verify: Vec<String>,
    /// How long one run may take before it is killed.
    pub timeout: Duration,
}

/// One job's account at a `command` target.
pub type CommandTarget = AccountTarget<CommandSettings>;

/// How a run ended.
enum Ran {
    Exited {
        code: Option<i32>,
        /// `exit status: 1`, `signal: 9 (SIGKILL)`.
        status: String,
        stdout: Zeroizing<Vec<u8>>,
    },
    TimedOut(Duration),
}

/// The standard input of one run. The secret is borrowed, and the buffer it is written into zeroized.
#[derive(serde::Serialize)]
struct Input<'a> {
    version: u32,
    action: &'a str,
    target: &'a str,
    job: &'a str,
    account: &'a str,
    secret: &'a str,
}

impl CommandSettings {
    fn argv(&self, action: Action) -> &[String] {
        match action {
            Action::Apply => &self.apply,
            Action::Verify => &self.verify,
        }
    }

    fn program(&self, action: Action) -> &str {
        self.argv(action).first().map_or("", String::as_str)
    }

    fn input(
        &self,
        who: &Account,
        action: Action,
        secret: &SecretValue,
    ) -> Result<Zeroizing<Vec<u8>>, TargetError> {
        let input = Input {
            version: 1,
            action: action.name(),
            target: &who.target,
            job: &who.job,
            account: &who.account,
            secret: secret.expose(),
        };
        let mut buffer = super::account::json(&input, who, secret)
            .map_err(|detail| TargetError::Invalid { target: KIND, detail })?;
        buffer.push(b'\n');
        Ok(buffer)
    }

    /// Runs the program for `action`, its output's standard error logged.
    async fn run(
        &self,
        who: &Account,
        action: Action,
        secret: &SecretValue,
        timeout: Duration,
        redactor: &Redactor,
    ) -> Result<Ran, TargetError> {
        let Some((program, args)) = self.argv(action).split_first() else {
            return Err(TargetError::Invalid {
                target: KIND,
                detail: format!("the {} argv is empty", action.name()),
            });
        };
        let input = self.input(who, action, secret)?;
        let env = [
            ("ROTAVAULT_JOB", who.job.as_str()),
            ("ROTAVAULT_ACCOUNT", who.account.as_str()),
            ("ROTAVAULT_ACTION", action.name()),
        ];
        let mut child = crate::program::command(program, args, &env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            // Nothing was run, so nothing changed.
            .map_err(|e| TargetError::Invalid {
                target: KIND,
                detail: format!(
                    "`{program}` cannot be started: {e}: expected an executable, as an absolute path or a name on \
                     PATH"
                ),
            })?;
        let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let talk = async {
            let write = async {
                // A program that exits without reading all of it makes this fail (a broken pipe), or not, as the
                // race goes: its exit code is its answer either way.
                if let Some(mut stdin) = stdin
                    && stdin.write_all(&input).await.is_ok()
                {
                    let _ = stdin.shutdown().await;
                }
            };
            let ((), stdout, stderr) = tokio::join!(write, read_capped(stdout), read_capped(stderr));
            (stdout, stderr, child.wait().await)
        };
        match tokio::time::timeout(timeout, talk).await {
            Ok((stdout, stderr, status)) => {
                self.log_stderr(who, action, &stderr, redactor);
                let status = status.map_err(|e| TargetError::Unknown {
                    target: KIND,
                    detail: format!("`{program}` could not be waited for: {e}"),
                })?;
                Ok(Ran::Exited { code: status.code(), status: status.to_string(), stdout })
            }
            Err(_) => {
                crate::program::kill(&mut child, program).await;
                Ok(Ran::TimedOut(timeout))
            }
        }
    }

    fn log_stderr(&self, who: &Account, action: Action, stderr: &[u8], redactor: &Redactor) {
        if stderr.is_empty() {
            return;
        }
        // Redacted whole before it is cut into lines, so that no cut can split a secret the redactor then misses.
        let raw = Zeroizing::new(String::from_utf8_lossy(stderr).into_owned());
        let text = redactor.redact(&raw);
        let flat = Redactor::none();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.len() > LOG_LINES {
            tracing::warn!(
                target_name = %who.target,
                action = action.name(),
                more = lines.len() - LOG_LINES,
                "the target's program wrote more to standard error than is logged"
            );
        }
        for line in lines.into_iter().take(LOG_LINES) {
            tracing::warn!(
                target_name = %who.target,
                job = %who.job,
                action = action.name(),
                program = %self.program(action),
                line = %flat.excerpt(line, LOG_LINE_CHARS),
                "the target's program wrote to standard error"
            );
        }
    }
}

/// Reads `stream` to its end, keeping the first [`OUTPUT_CAP`] bytes; a read error ends it.
async fn read_capped(stream: Option<impl AsyncRead + Unpin>) -> Zeroizing<Vec<u8>> {
    let mut kept = Zeroizing::new(Vec::with_capacity(OUTPUT_CAP));
    let Some(mut stream) = stream else { return kept };
    let mut chunk = Zeroizing::new([0u8; 8192]);
    loop {
        match stream.read(&mut chunk[..]).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = OUTPUT_CAP - kept.len();
                kept.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
    }
}

#[async_trait]
impl Channel for CommandSettings {
    const KIND: &'static str = KIND;

    fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs `action` and reads its answer: `Ok` for 0, refused for 2, `Transient` for 75, `Unknown` otherwise.
    async fn call(
        &self,
        who: &Account,
        action: Action,
        secret: &SecretValue,
        timeout: Duration,
    ) -> Result<(), TargetError> {
        let redactor = Redactor::new(&[secret]);
        let program = self.program(action);
        let unknown = |detail: String| TargetError::Unknown { target: KIND, detail };
        match self.run(who, action, secret, timeout, &redactor).await? {
            Ran::TimedOut(after) => Err(unknown(format!(
                "`{program}` was still running after {}; it was killed",
                humantime::format_duration(after)
            ))),
            Ran::Exited { code: Some(exit::DONE), .. } => Ok(()),
            Ran::Exited { code: Some(exit::REFUSED), stdout, .. } => {
                let reason = super::reason(&redactor, &stdout, REASON_CHARS);
                Err(match action {
                    Action::Apply => TargetError::Rejected { target: KIND, reason },
                    Action::Verify => TargetError::Unauthenticated { target: KIND, detail: reason },
                })
            }
            Ran::Exited { code: Some(exit::TEMPFAIL), .. } => Err(TargetError::Transient {
                target: KIND,
                detail: format!("`{program}` exited 75: nothing was done, try later"),
                retry_after: None,
            }),
            Ran::Exited { status, .. } => Err(unknown(format!(
                "`{program}` ended with {status} (its standard error is in the log): expected exit 0, 2 or 75"
            ))),
        }
    }

    fn reached(&self) -> String {
        format!("through `{}`", self.program(Action::Apply))
    }

    /// Each program is an executable file, found as the run would find it (a name through `PATH`).
    fn checks(&self) -> Vec<super::ConnectCheck> {
        [Action::Apply, Action::Verify]
            .into_iter()
            .map(|action| {
                let program = self.program(action);
                let found = executable(program);
                let fix = found.is_err().then(|| {
                    "give an absolute path to an executable file, or a name on rotavault's PATH".to_owned()
                });
                super::ConnectCheck {
                    name: format!("{} program `{program}`", action.name()),
                    ok: found.is_ok(),
                    detail: found.unwrap_or_else(|why| why),
                    fix,
                }
            })
            .collect()
    }
}

/// Where `program` is, if it is an executable file: the path itself when it names a directory, else the first
/// match on `PATH`, as `execvp` looks.
fn executable(program: &str) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let runs = |path: &std::path::Path| {
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        return if runs(std::path::Path::new(program)) {
            Ok(format!("{program} is an executable file"))
        } else {
            Err(format!("{program} is not an executable file"))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| runs(candidate))
        .map(|found| format!("found at {}", found.display()))
        .ok_or_else(|| format!("`{program}` is not on PATH"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::Target;
    use std::sync::Arc;

    const SECRET: &str = "Kq7#vR2!mZp9@Lw4";

    fn target(apply: &str, verify: &str, timeout: Duration) -> CommandTarget {
        let sh = |script: &str| vec!["/bin/sh".to_owned(), "-c".to_owned(), script.to_owned()];
        let settings = CommandSettings { apply: sh(apply), verify: sh(verify), timeout };
        CommandTarget::new("db", "app-db", "app_user", Arc::new(settings))
    }

    fn secret() -> SecretValue {
        SecretValue::new(SECRET.to_owned())
    }

    async fn apply(script: &str) -> Result<(), TargetError> {
        target(script, "exit 0", Duration::from_secs(20)).apply(&secret(), Duration::from_secs(60)).await
    }

    #[tokio::test]
    async fn the_secret_reaches_the_program_on_standard_input_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path();
        let script =
            format!("cat > '{0}/stdin'; env > '{0}/env'; cat /proc/$$/cmdline > '{0}/argv'", out.display());
        apply(&script).await.expect("applied");
        let stdin: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("stdin")).expect("stdin")).expect("JSON");
        assert_eq!(
            stdin,
            serde_json::json!({"version": 1, "action": "apply", "target": "db", "job": "app-db",
                               "account": "app_user", "secret": SECRET})
        );
        let env = std::fs::read_to_string(out.join("env")).expect("env");
        assert!(
            env.contains("ROTAVAULT_ACCOUNT=app_user\n") && env.contains("ROTAVAULT_ACTION=apply\n"),
            "{env}"
        );
        for file in ["env", "argv"] {
            let text = std::fs::read_to_string(out.join(file)).expect(file);
            assert!(!text.contains(SECRET), "the secret is in the program's {file}");
        }
    }

    #[tokio::test]
    async fn each_exit_code_of_apply_is_the_outcome_the_protocol_names() {
        assert_eq!(apply("cat >/dev/null; exit 0").await, Ok(()));
        for (script, label) in [
            ("exit 2", "rejected"),
            ("exit 75", "transient"),
            ("exit 1", "unknown"),
            ("exit 3", "unknown"),
            ("kill -9 $$", "unknown"),
        ] {
            let err = apply(script).await.expect_err(script);
            assert_eq!(err.metric_label(), label, "{script}: {err}");
        }
    }

    #[tokio::test]
    async fn each_exit_code_of_verify_is_the_outcome_the_protocol_names() {
        for (script, label) in [
            ("exit 0", None),
            ("exit 2", Some("unauthenticated")),
            ("exit 75", Some("transient")),
            ("exit 9", Some("unknown")),
        ] {
            let result = target("exit 0", script, Duration::from_secs(20)).verify(&secret()).await;
            assert_eq!(result.err().map(|e| e.metric_label()), label, "{script}");
        }
    }

    #[tokio::test]
    async fn a_refusal_gives_its_reason_redacted_from_a_line_or_from_json() {
        let err = apply("echo 'the password was used before'; echo more; exit 2").await.expect_err("refused");
        assert_eq!(
            err,
            TargetError::Rejected { target: KIND, reason: "the password was used before".into() }
        );
        let script = format!("printf '{{\"reason\": \"%s is too weak\"}}' '{SECRET}'; exit 2");
        let err = apply(&script).await.expect_err("refused");
        assert_eq!(err, TargetError::Rejected { target: KIND, reason: "[redacted] is too weak".into() });
        let err = apply("exit 2").await.expect_err("refused");
        assert_eq!(err, TargetError::Rejected { target: KIND, reason: "no reason given".into() });
    }

    #[tokio::test]
    async fn a_program_past_its_timeout_is_killed_with_what_it_started_and_the_outcome_is_unknown() {
        let target = target("sleep 30 & wait", "exit 0", Duration::from_millis(300));
        let started = std::time::Instant::now();
        let err = target.apply(&secret(), Duration::from_secs(60)).await.expect_err("times out");
        assert!(matches!(err, TargetError::Unknown { .. }), "{err:?}");
        assert!(err.to_string().contains("still running after 300ms"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10), "not waited for to the end");
    }

    #[tokio::test]
    async fn the_engine_timeout_shortens_the_targets_own() {
        let target = target("sleep 30", "exit 0", Duration::from_secs(60));
        let err = target.apply(&secret(), Duration::from_millis(200)).await.expect_err("times out");
        assert!(err.to_string().contains("still running after 200ms"), "{err}");
    }

    #[tokio::test]
    async fn output_past_the_cap_is_read_and_dropped_and_a_reason_is_cut() {
        let err = apply("head -c 1000000 /dev/zero | tr '\\0' 'x'; exit 2").await.expect_err("refused");
        let TargetError::Rejected { reason, .. } = err else { panic!("{err:?}") };
        assert!(reason.chars().count() <= REASON_CHARS + 1, "{}", reason.len());
    }

    #[tokio::test]
    async fn a_program_that_cannot_be_started_is_invalid_and_nothing_was_sent() {
        let settings = CommandSettings {
            apply: vec!["/nonexistent/set-password".into()],
            verify: vec!["/nonexistent/check-password".into()],
            timeout: Duration::from_secs(5),
        };
        let target = CommandTarget::new("db", "app-db", "app_user", Arc::new(settings));
        let err = target.apply(&secret(), Duration::from_secs(5)).await.expect_err("not found");
        assert!(matches!(err, TargetError::Invalid { .. }), "{err:?}");
        assert!(err.to_string().contains("`/nonexistent/set-password` cannot be started"), "{err}");
    }

    #[tokio::test]
    async fn check_connect_finds_each_program_as_the_run_would_without_running_it() {
        let settings = CommandSettings {
            apply: vec!["sh".into(), "-c".into(), "exit 9".into()],
            verify: vec!["/nonexistent/check-password".into()],
            timeout: DEFAULT_TIMEOUT,
        };
        let target = CommandTarget::new("db", "app-db", "app_user", Arc::new(settings));
        let checks = target.connect_checks().await;
        assert_eq!(checks.len(), 2);
        assert!(checks[0].ok && checks[0].detail.starts_with("found at /"), "{checks:?}");
        assert!(!checks[1].ok && checks[1].fix.is_some(), "{checks:?}");
        assert_eq!(checks[1].detail, "/nonexistent/check-password is not an executable file");
    }

    #[test]
    fn the_lockout_guard_counts_logins_per_target_and_account() {
        let target = target("exit 0", "exit 0", DEFAULT_TIMEOUT);
        assert_eq!(target.login_account(&secret()).as_deref(), Some("command:db:app_user"));
        assert_eq!(target.accounts(), vec!["command:db:app_user".to_owned()]);
        assert_eq!(target.longest_apply(), DEFAULT_TIMEOUT);
    }
}
