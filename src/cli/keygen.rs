//! `rotavault keygen --out PATH`: a new identity for a `file` store, written with mode 0600.

use super::output::{Output, outln};
use super::{CliError, exit};
use std::path::Path;

pub fn keygen(out: &Path) -> Result<u8, CliError> {
    let public = crate::store::file::keygen(out).map_err(|e| CliError::Failed(e.to_string()))?;
    let mut report = Output::stdout();
    outln!(report, "wrote {}; public key: {public}", out.display());
    Ok(report.acted(exit::OK))
}
