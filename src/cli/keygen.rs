//! `rotavault keygen --out PATH`: a new identity for a `file` store, written with mode 0600.

use super::{CliError, exit};
use std::path::Path;

pub fn keygen(out: &Path) -> Result<u8, CliError> {
    let public = crate::store::file::keygen(out).map_err(|e| CliError::Failed(e.to_string()))?;
    println!("wrote {}; public key: {public}", out.display());
    Ok(exit::OK)
}
