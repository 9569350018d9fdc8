//! Bounded retries with exponential back-off and jitter, and a timeout on every call.
//!
//! Every store operation is idempotent by contract (a repeated stage, promote, discard or write of the same value
//! is a no-op), so a call that timed out or failed transiently is safe to send again. Target calls are not:
//! the engine retries only what a target said did not happen (`Transient`).

use std::future::Future;
use std::time::Duration;

const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// How often and how patiently to retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub attempts: u32,
    pub first: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { attempts: 5, first: Duration::from_millis(200), max: Duration::from_secs(30) }
    }
}

impl Backoff {
    /// The wait before retry number `n` (1-based): exponential, capped, with "equal jitter" (half fixed, half
    /// random) so that replicas retrying together spread out without ever retrying at once.
    pub fn delay(&self, n: u32, hint: Option<Duration>) -> Duration {
        let exp = self.first.saturating_mul(2u32.saturating_pow(n.saturating_sub(1)));
        let base = exp.min(self.max);
        let half = base / 2;
        let wait = half + half.mul_f64(random_fraction());
        // A server's Retry-After is a floor, never shortened by jitter; an absurd one is capped so that one
        // rotation cannot stall for hours.
        hint.map_or(wait, |h| wait.max(h.min(MAX_RETRY_AFTER)))
    }
}

/// A uniform fraction in [0, 1): jitter, never anything secret.
pub(crate) fn random_fraction() -> f64 {
    let mut buf = [0u8; 8];
    match getrandom::fill(&mut buf) {
        Ok(()) => (u64::from_le_bytes(buf) >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.5,
    }
}

/// What a retried call needs to know about its error.
pub trait Retryable {
    fn retry_hint(&self) -> Option<Option<Duration>>;
}

impl Retryable for crate::store::StoreError {
    fn retry_hint(&self) -> Option<Option<Duration>> {
        self.is_retryable().then(|| self.retry_after())
    }
}

/// Runs `call` with a timeout, retrying transient failures per `backoff`. `on_timeout` makes the error a timeout
/// becomes (for stores a `Transient`, so it is retried too).
pub async fn retry<T, E, F, Fut>(
    backoff: Backoff,
    timeout: Duration,
    on_timeout: impl Fn() -> E,
    mut call: F,
) -> Result<T, E>
where
    E: Retryable + std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempt = 1;
    loop {
        let result = match tokio::time::timeout(timeout, call()).await {
            Ok(result) => result,
            Err(_) => Err(on_timeout()),
        };
        match result {
            Ok(value) => return Ok(value),
            Err(e) => match e.retry_hint() {
                Some(hint) if attempt < backoff.attempts => {
                    let wait = backoff.delay(attempt, hint);
                    tracing::warn!(error = %e, attempt, wait_ms = wait.as_millis() as u64, "retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                _ => return Err(e),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn transient() -> StoreError {
        StoreError::Transient { backend: "test", detail: "busy".into(), retry_after: None }
    }

    #[test]
    fn delays_grow_and_stay_within_bounds() {
        let b = Backoff { attempts: 10, first: Duration::from_secs(1), max: Duration::from_secs(8) };
        for n in 1..=10 {
            let d = b.delay(n, None);
            let base = Duration::from_secs(1 << (n - 1).min(3));
            assert!(d >= base / 2 && d <= base, "retry {n}: {d:?} not in [{:?}, {base:?}]", base / 2);
        }
        assert!(b.delay(1, Some(Duration::from_secs(5))) >= Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_retried_up_to_the_limit() {
        let calls = AtomicU32::new(0);
        let b = Backoff { attempts: 3, ..Backoff::default() };
        let result: Result<(), _> = retry(b, Duration::from_secs(5), transient, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(transient())
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_call_times_out_and_permanent_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let b = Backoff { attempts: 2, ..Backoff::default() };
        let result: Result<(), StoreError> = retry(b, Duration::from_secs(1), transient, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<()>().await;
            Ok(())
        })
        .await;
        assert_eq!(result, Err(transient()));
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        let calls = AtomicU32::new(0);
        let result: Result<(), StoreError> = retry(b, Duration::from_secs(1), transient, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(StoreError::PermissionDenied { backend: "test", detail: "no".into() })
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
