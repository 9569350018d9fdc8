//! The long-running process (`rotavault run`): the scheduler ([`scheduler`]) and whatever serves beside it, tied
//! together by one shutdown token and one task tracker, so that a SIGTERM stops them all and [`run`] returns only
//! when every task has ended.

mod scheduler;

pub use scheduler::serve;

use crate::runtime::Runtime;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Runs the daemon until `shutdown`; returns once every task has stopped.
pub async fn run(runtime: Arc<Runtime>, shutdown: CancellationToken) {
    serve(runtime, shutdown).await;
}
