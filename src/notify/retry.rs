//! Delivery with retries: each attempt has a timeout, a failure that may pass is retried after a back-off
//! (`crate::retry::Backoff`, honouring a receiver's `Retry-After`), a bounded number of times, and the wait ends
//! at once when the process is told to stop.

use super::error::DeliveryError;
use crate::retry::Backoff;
use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How hard to try one delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attempts {
    pub backoff: Backoff,
    /// For each attempt.
    pub timeout: Duration,
}

impl Default for Attempts {
    fn default() -> Self {
        Self {
            backoff: Backoff { attempts: 5, first: Duration::from_secs(1), max: Duration::from_secs(60) },
            timeout: Duration::from_secs(15),
        }
    }
}

/// Why a delivery did not happen.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The last error, after every attempt allowed (or the first that retrying cannot help).
    #[error("{error} (after {attempts} attempt(s))")]
    Final { error: DeliveryError, attempts: u32 },
    /// The process stopped it before it was delivered.
    #[error("stopped before it was delivered")]
    Aborted,
}

pub(crate) async fn with_retry<F, Fut>(
    attempts: Attempts,
    stop: &CancellationToken,
    mut attempt: F,
) -> Result<(), Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), DeliveryError>>,
{
    let mut n = 1;
    loop {
        let result = tokio::select! {
            biased;
            () = stop.cancelled() => return Err(Failure::Aborted),
            result = tokio::time::timeout(attempts.timeout, attempt()) => {
                result.unwrap_or(Err(DeliveryError::Timeout(attempts.timeout)))
            }
        };
        let error = match result {
            Ok(()) => return Ok(()),
            Err(error) => error,
        };
        if !error.is_retryable() || n >= attempts.backoff.attempts {
            return Err(Failure::Final { error, attempts: n });
        }
        let wait = attempts.backoff.delay(n, error.retry_after());
        tracing::debug!(attempt = n, error = %error, wait = ?wait, "notification delivery failed, retrying");
        tokio::select! {
            biased;
            () = stop.cancelled() => return Err(Failure::Aborted),
            () = tokio::time::sleep(wait) => {}
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn attempts(n: u32) -> Attempts {
        Attempts {
            backoff: Backoff { attempts: n, first: Duration::from_secs(1), max: Duration::from_secs(10) },
            timeout: Duration::from_secs(5),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_that_may_pass_is_retried_a_bounded_number_of_times() {
        let calls = AtomicU32::new(0);
        let result = with_retry(attempts(3), &CancellationToken::new(), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(DeliveryError::Status { status: 503, retry_after: None })
        })
        .await;
        assert!(matches!(result, Err(Failure::Final { attempts: 3, .. })), "{result:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_is_not_retried_and_a_late_success_succeeds() {
        let calls = AtomicU32::new(0);
        let result = with_retry(attempts(5), &CancellationToken::new(), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(DeliveryError::Status { status: 404, retry_after: None })
        })
        .await;
        assert!(matches!(result, Err(Failure::Final { attempts: 1, .. })), "{result:?}");

        let calls = AtomicU32::new(0);
        let result = with_retry(attempts(5), &CancellationToken::new(), || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(DeliveryError::Timeout(Duration::ZERO))
            } else {
                Ok(())
            }
        })
        .await;
        assert!(result.is_ok());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_ends_the_wait_between_attempts() {
        let stop = CancellationToken::new();
        let result = with_retry(attempts(5), &stop, || {
            stop.cancel();
            async { Err(DeliveryError::Status { status: 500, retry_after: Some(Duration::from_secs(300)) }) }
        })
        .await;
        assert!(matches!(result, Err(Failure::Aborted)), "{result:?}");
    }
}
