//! `rotavault resolve JOB`: clears a diverged mark once a person has made the stores and the target agree
//! again (for example by writing the working credential as current).

use super::output::{Output, outln};
use super::{CliError, exit, unknown_job};
use crate::config::Config;
use crate::rotation::state::StateDir;
use crate::rotation::{Engine, Settings};
use crate::schedule::SystemClock;
use std::sync::Arc;

pub fn resolve(config: Config, name: &str) -> Result<u8, CliError> {
    if !config.jobs.contains_key(name) {
        let known: Vec<&str> = config.jobs.keys().map(String::as_str).collect();
        return Err(unknown_job(name, &known));
    }
    let engine =
        Engine::new(Settings::default(), Arc::new(SystemClock), StateDir::new(&config.state_dir), true);
    let mut out = Output::stdout();
    if engine.resolve_diverged(name)? {
        outln!(
            out,
            "{name}: the diverged mark is cleared; the next run settles any pending value against the target first"
        );
    } else {
        outln!(out, "{name} was not diverged; nothing changed");
    }
    Ok(out.acted(exit::OK))
}
