//! `rotavault sandbox`: the Autotask simulator on its own, for trying rotavault without a tenant and for tests
//! that drive the real binary.

use super::{CliError, exit};
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

pub async fn sandbox(listen: SocketAddr, seed: Option<PathBuf>, inspect: bool) -> Result<u8, CliError> {
    let shutdown = CancellationToken::new();
    super::run::spawn_signal_handler(shutdown.clone())?;
    crate::sandbox::serve_cli(listen, seed, inspect, shutdown)
        .await
        .map_err(|e| CliError::Failed(e.to_string()))?;
    Ok(exit::OK)
}
