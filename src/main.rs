//! The `rotavault` binary: parse the command line, set up telemetry, dispatch, exit with the command's code.

use clap::Parser;
use rotavault::cli::{self, Cli, LogFormat};
use std::io::IsTerminal;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

/// Threads for blocking work: twice the daemon's eight workers, with room for the reads of start-up and status.
const MAX_BLOCKING_THREADS: usize = 16;

/// jemalloc, configured in `.cargo/config.toml`: an idle daemon gives back the memory of its start-up and of its
/// rotations (see Cargo.toml for why not glibc's allocator).
#[cfg(all(target_os = "linux", not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // Before anything can hold a secret: no core file, no reading of this process's memory by its peers.
    if let Err(e) = rotavault::hygiene::harden_process() {
        cli::output::warn(&e.to_string());
        return ExitCode::from(cli::exit::FAILURE);
    }
    let cli = Cli::parse();
    init_telemetry(cli.log_format, cli.default_log_level());
    // Blocking work (file store operations, job state files, fsync) is bounded by the scheduler's workers; the cap
    // makes the thread count a small constant whatever the number of jobs, where tokio's default is 512.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            cli::output::warn(&format!("cannot start the async runtime: {e}"));
            return ExitCode::from(cli::exit::FAILURE);
        }
    };
    match runtime.block_on(cli::dispatch(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // One line per error, each prefixed, so that several config errors read like one each.
            for line in e.to_string().lines() {
                cli::output::warn(line);
            }
            ExitCode::from(e.exit_code())
        }
    }
}

/// Logs go to standard error: JSON for journald and log shippers, text for a person at a terminal. The level
/// comes from `ROTAVAULT_LOG` (`RUST_LOG` syntax), else the command's default.
fn init_telemetry(format: LogFormat, default_level: &str) {
    let filter = EnvFilter::try_from_env("ROTAVAULT_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().with_current_span(true).with_span_list(true).init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}
