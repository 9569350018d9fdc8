//! Autotask's two request limits: the tenant-wide hourly threshold (a rolling 60-minute window of authenticated
//! requests) and the thread limit (requests in flight per integration code and endpoint). Time is
//! `tokio::time::Instant`, so a test with paused time can move the window.

use super::Sandbox;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use tokio::time::Instant;

const WINDOW: Duration = Duration::from_secs(60 * 60);

/// How a request over the thread limit is answered (Autotask is seen doing both).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ThreadLimitResponse {
    /// `429` with `Retry-After: 1`.
    #[default]
    #[serde(rename = "429")]
    Status429,
    /// `500` with `{"errors":["Itgenatr005: Thread Threshold Exceeded — …"]}`.
    #[serde(rename = "itgenatr005")]
    Itgenatr005,
}

#[derive(Debug)]
pub(crate) struct Limits {
    pub(crate) hourly_limit: u64,
    pub(crate) thread_limit: u32,
    pub(crate) response: ThreadLimitResponse,
    counted: VecDeque<Instant>,
    in_flight: HashMap<(String, String), u32>,
}

impl Limits {
    pub(crate) fn new(hourly_limit: u64, thread_limit: u32, response: ThreadLimitResponse) -> Limits {
        Limits { hourly_limit, thread_limit, response, counted: VecDeque::new(), in_flight: HashMap::new() }
    }

    /// Authenticated requests in the 60 minutes up to `now`.
    pub(crate) fn hourly_count(&mut self, now: Instant) -> u64 {
        while self.counted.front().is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW) {
            self.counted.pop_front();
        }
        self.counted.len() as u64
    }

    pub(crate) fn hourly_exceeded(&mut self, now: Instant) -> bool {
        self.hourly_count(now) >= self.hourly_limit
    }

    pub(crate) fn count_request(&mut self, now: Instant) {
        self.counted.push_back(now);
    }

    fn try_enter(&mut self, key: &(String, String)) -> bool {
        let n = self.in_flight.entry(key.clone()).or_insert(0);
        if *n >= self.thread_limit {
            return false;
        }
        *n += 1;
        true
    }

    fn leave(&mut self, key: &(String, String)) {
        if let Some(n) = self.in_flight.get_mut(key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.in_flight.remove(key);
            }
        }
    }
}

/// One request's place under the thread limit, given back when the request ends in any way (answered, failed,
/// or its connection dropped), because it is released on drop.
#[derive(Debug)]
pub(crate) struct Slot {
    sandbox: Sandbox,
    key: (String, String),
}

impl Slot {
    /// Takes a slot for (integration code, endpoint) if fewer than the limit are in flight. The caller must not
    /// hold the state lock.
    pub(crate) fn enter(sandbox: &Sandbox, code: &str, endpoint: &str) -> Option<Slot> {
        let key = (code.to_string(), endpoint.to_ascii_lowercase());
        let entered = sandbox.state().limits.try_enter(&key);
        entered.then(|| Slot { sandbox: sandbox.clone(), key })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.sandbox.state().limits.leave(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::{Limits, ThreadLimitResponse};
    use std::time::Duration;
    use tokio::time::{Instant, advance};

    #[tokio::test(start_paused = true)]
    async fn the_hourly_window_rolls_with_tokio_time() {
        let mut limits = Limits::new(2, 3, ThreadLimitResponse::Status429);
        limits.count_request(Instant::now());
        advance(Duration::from_secs(30 * 60)).await;
        limits.count_request(Instant::now());
        assert!(limits.hourly_exceeded(Instant::now()));
        advance(Duration::from_secs(30 * 60)).await;
        assert_eq!(limits.hourly_count(Instant::now()), 1, "the first request has left the window");
        assert!(!limits.hourly_exceeded(Instant::now()));
    }

    #[test]
    fn thread_slots_are_counted_per_key() {
        let mut limits = Limits::new(10, 2, ThreadLimitResponse::Status429);
        let a = ("code".to_string(), "resources".to_string());
        let b = ("code".to_string(), "thresholdinformation".to_string());
        assert!(limits.try_enter(&a) && limits.try_enter(&a));
        assert!(!limits.try_enter(&a));
        assert!(limits.try_enter(&b));
        limits.leave(&a);
        assert!(limits.try_enter(&a));
    }
}
