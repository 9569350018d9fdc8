//! The command line: one file per subcommand, and the exit codes they share.
//!
//! Command output goes to standard output, through [`output::Output`] so that a full or closed standard output is
//! never a panic; logs go to standard error, so a script can read one without the other.

mod check;
#[cfg(feature = "sandbox")]
mod demo;
mod import;
mod keygen;
pub mod output;
mod plan;
mod replicas;
mod report;
mod resolve;
mod rotate;
pub mod run;
#[cfg(feature = "sandbox")]
mod sandbox;
mod status;

use crate::config::{self, Config, ConfigError};
use crate::rotation::RotationError;
use crate::runtime::BuildError;
use crate::target::TargetError;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Exit codes, after sysexits.h where one fits, so that systemd and scripts can tell failures apart.
pub mod exit {
    pub const OK: u8 = 0;
    /// A rotation or command failed.
    pub const FAILURE: u8 = 1;
    /// A person must act: the job is diverged, or blocked (the target refused the credential rotavault must
    /// present, such as the Autotask admin's).
    pub const DIVERGED: u8 = 3;
    /// Wrong use of the command line (an unknown job).
    pub const USAGE: u8 = 64;
    /// Try again later: the job is busy, or a rotation is pending and a later run settles it.
    pub const TEMPFAIL: u8 = 75;
    /// The configuration is wrong (EX_CONFIG).
    pub const CONFIG: u8 = 78;
}

#[derive(Debug, Parser)]
#[command(
    name = "rotavault",
    version,
    about = "Creates and rotates API credentials and writes them straight into secret stores"
)]
pub struct Cli {
    /// The configuration file.
    #[arg(long, global = true, env = "ROTAVAULT_CONFIG", default_value = "/etc/rotavault/config.toml")]
    pub config: PathBuf,

    /// Log format on standard error: `auto` is JSON unless standard error is a terminal.
    #[arg(long, global = true, env = "ROTAVAULT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The log level when `ROTAVAULT_LOG` is unset: the demo prints its own story, so its logs stay quiet.
    pub fn default_log_level(&self) -> &'static str {
        match self.command {
            #[cfg(feature = "sandbox")]
            Command::Demo { .. } => "warn",
            _ => "info",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Auto,
    Json,
    Text,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: recover what is pending, then rotate every job on its schedule until SIGTERM.
    Run,
    /// Rotate one job now.
    Rotate {
        /// The job's name in the configuration.
        job: String,
    },
    /// Validate the configuration and every job's policy; with --connect, also prove every job's path works.
    Check {
        /// Also contact every target and store, changing nothing: zone, admin rights, accounts, store access.
        #[arg(long)]
        connect: bool,
    },
    /// Take an existing credential (read once from standard input, never argv), verify it, store it, rotate it.
    Import {
        /// The job's name in the configuration.
        job: String,
        /// Which of the job's users the credential belongs to, for a job with two alternating users.
        #[arg(long)]
        user: Option<String>,
        /// Keep the imported value in use instead of rotating it at once.
        #[arg(long)]
        no_rotate: bool,
    },
    /// Run the Autotask sandbox, a simulator of the parts of Autotask that rotavault touches.
    #[cfg(feature = "sandbox")]
    Sandbox {
        /// Where to listen, e.g. 127.0.0.1:8080.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// A TOML seed file: tenant settings, resources, faults.
        #[arg(long)]
        seed: Option<PathBuf>,
        /// Serve the /_sandbox/ inspection and fault-injection interface (for tests; off by default).
        #[arg(long)]
        inspect: bool,
    },
    /// A dry run: when and why each job (or JOB) is next due, what a rotation would write, the rules its secret
    /// would meet, what recovery would do with a pending value, and its stores' and target's checks. Changes nothing.
    Plan {
        /// Only this job.
        job: Option<String>,
    },
    /// Show each job's last rotation, age, next due time and state, without any secret.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Create a key file for a `file` store (an age X25519 identity, mode 0600).
    Keygen {
        /// Where to write the key; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
    },
    #[cfg(feature = "sandbox")]
    /// Show rotavault at work with no set-up: a fresh directory, a key, an encrypted file store and a fast schedule.
    Demo {
        /// Leave the daemon running after the demo's rotations, to explore with `status` and `rotate`.
        #[arg(long)]
        keep_running: bool,
        /// Use this directory instead of a fresh one under the temporary directory.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Rotations to see per job before the demo ends.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=20))]
        rotations: u64,
    },
    /// Whether each job (or JOB) holds [policy] and its own rules, with the evidence. Changes nothing.
    ///
    /// The checks: age against max_age, stores in step (same rotation and generation, previous value kept,
    /// rotavault's ownership), not diverged, blocked, pending or drifted, a schedule that keeps max_age, with a
    /// heartbeat a verify within two of its intervals, and secret rules as strong as [policy] asks; with the last
    /// rotation and verify, and the history from the audit file. Reads store metadata, job state and the audit file
    /// only; prints no secret.
    ///
    /// Exit status: 0 every job compliant; 1 a job is not compliant or cannot be judged (a store did not answer), or
    /// the report could not be written; 64 bad usage (an unknown job, a bad --since); 78 a bad configuration.
    Report {
        /// Only this job.
        job: Option<String>,
        /// `table` for a person, `json` or `csv` for tools, `markdown`, or `html`: one self-contained page with a
        /// chart of each secret's age.
        #[arg(long, value_enum, default_value_t = crate::report::Format::Table)]
        format: crate::report::Format,
        /// How far back the history from the audit file goes, as a duration such as 90d, 12h or 2w.
        #[arg(long, default_value = "90d")]
        since: String,
        /// Write the report to this file (created owner-only, replaced if it exists) instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Clear a job's diverged mark after a person has set its credential right.
    Resolve {
        /// The job's name in the configuration.
        job: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// Several config errors found together, one per line (missing files, for example).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Configs(Vec<ConfigError>),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Build(#[from] BuildError),
    #[error("{0}")]
    Rotation(#[from] RotationError),
    #[error("{0}")]
    Failed(String),
    /// Nothing is wrong that waiting cannot mend (another replica holds the lease; this one lost it).
    #[error("{0}")]
    TryLater(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) | Self::Configs(_) => exit::CONFIG,
            Self::Usage(_) => exit::USAGE,
            Self::Build(_) | Self::Failed(_) => exit::FAILURE,
            Self::Rotation(e) => rotation_exit_code(e),
            Self::TryLater(_) => exit::TEMPFAIL,
        }
    }
}

fn rotation_exit_code(e: &RotationError) -> u8 {
    match e {
        RotationError::Diverged { .. } | RotationError::Blocked { .. } => exit::DIVERGED,
        RotationError::Manual { .. } => exit::USAGE,
        RotationError::Busy(_)
        | RotationError::VerifyFailed { .. }
        | RotationError::Unsettled { .. }
        | RotationError::PromoteIncomplete { .. }
        | RotationError::ShutDown { .. }
        | RotationError::Fenced { .. }
        | RotationError::Target { source: TargetError::Transient { .. }, .. } => exit::TEMPFAIL,
        _ => exit::FAILURE,
    }
}

/// Runs the parsed command; the returned code is the process's exit code.
pub async fn dispatch(cli: Cli) -> Result<u8, CliError> {
    match cli.command {
        Command::Run => run::run(load(&cli.config)?).await,
        Command::Rotate { job } => rotate::rotate(load(&cli.config)?, &job).await,
        Command::Check { connect: false } => check::check(&cli.config),
        Command::Check { connect: true } => check::check_connect(load(&cli.config)?).await,
        Command::Import { job, user, no_rotate } => {
            import::import(load(&cli.config)?, &job, user, no_rotate).await
        }
        #[cfg(feature = "sandbox")]
        Command::Sandbox { listen, seed, inspect } => sandbox::sandbox(listen, seed, inspect).await,
        Command::Status { json } => {
            status::status(config::load_with(&cli.config, config::Jobs::Optional)?, json).await
        }
        Command::Plan { job } => plan::plan(load(&cli.config)?, job.as_deref()).await,
        Command::Keygen { out } => keygen::keygen(&out),
        Command::Report { job, format, since, output } => {
            let options =
                report::Options { job: job.as_deref(), format, since: &since, output: output.as_deref() };
            report::report(load(&cli.config)?, options).await
        }
        Command::Resolve { job } => resolve::resolve(load(&cli.config)?, &job).await,
        #[cfg(feature = "sandbox")]
        Command::Demo { keep_running, dir, rotations } => demo::demo(dir, rotations, keep_running).await,
    }
}

fn load(path: &std::path::Path) -> Result<Config, CliError> {
    Ok(config::load(path)?)
}

fn unknown_job(name: &str, known: &[&str]) -> CliError {
    CliError::Usage(format!(
        "there is no job `{name}` in the configuration; the jobs are: {}",
        if known.is_empty() { "(none)".to_owned() } else { known.join(", ") }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rotation::Step;

    #[test]
    fn a_target_that_was_not_reached_says_try_later_and_a_block_says_a_person_must_act() {
        let unavailable = RotationError::Target {
            step: Step::Apply,
            source: TargetError::Transient { target: "autotask", detail: "busy".into(), retry_after: None },
        };
        assert_eq!(rotation_exit_code(&unavailable), exit::TEMPFAIL);
        let blocked = RotationError::Blocked { step: Step::Plan, detail: "admin credential refused".into() };
        assert_eq!(rotation_exit_code(&blocked), exit::DIVERGED);
        let invalid = RotationError::Target {
            step: Step::Apply,
            source: TargetError::Invalid { target: "autotask", detail: "no such user".into() },
        };
        assert_eq!(rotation_exit_code(&invalid), exit::FAILURE);
    }
}
