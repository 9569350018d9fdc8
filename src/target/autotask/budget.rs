//! The hourly request budget: how many authenticated requests rotavault may send to one tenant in any 60 minutes.
//!
//! Autotask allows a tenant 10,000 requests per rolling hour, shared by every integration on it, and slows or
//! refuses them all as the count nears the limit. rotavault needs a handful per rotation, so its own budget (1,000
//! by default) only bites when something loops; it then refuses with the time until the oldest request leaves the
//! window, rather than eat into what the tenant's other integrations need. Zone lookups are not counted: they
//! carry no credential and Autotask does not count them.

use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

const WINDOW: Duration = Duration::from_secs(3600);

#[derive(Debug)]
pub(super) struct Budget {
    limit: u32,
    sent: VecDeque<Instant>,
}

impl Budget {
    pub fn new(limit: u32) -> Self {
        Self { limit, sent: VecDeque::new() }
    }

    /// Counts one request at `now`, or says how long until one may be sent.
    pub fn spend(&mut self, now: Instant) -> Result<(), Duration> {
        self.forget_before(now);
        if self.sent.len() >= self.limit as usize {
            let oldest = self.sent.front().copied().unwrap_or(now);
            return Err(WINDOW.saturating_sub(now.duration_since(oldest)).max(Duration::from_secs(1)));
        }
        self.sent.push_back(now);
        Ok(())
    }

    /// How many requests were counted in the hour before `now`.
    pub fn used(&mut self, now: Instant) -> u32 {
        self.forget_before(now);
        u32::try_from(self.sent.len()).unwrap_or(u32::MAX)
    }

    fn forget_before(&mut self, now: Instant) {
        while self.sent.front().is_some_and(|&t| now.duration_since(t) >= WINDOW) {
            self.sent.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_refuses_when_spent_and_refills_as_the_window_moves() {
        let start = Instant::now();
        let mut budget = Budget::new(3);
        for i in 0..3 {
            budget.spend(start + Duration::from_secs(i * 60)).unwrap();
        }
        let wait = budget.spend(start + Duration::from_secs(600)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(3000), "until the first request is an hour old");
        budget.spend(start + WINDOW).expect("the first request has left the window");
        assert!(budget.spend(start + WINDOW).is_err());
    }

    #[test]
    fn the_budget_used_is_what_the_last_hour_spent() {
        let start = Instant::now();
        let mut budget = Budget::new(10);
        assert_eq!(budget.used(start), 0);
        budget.spend(start).unwrap();
        budget.spend(start + Duration::from_secs(1800)).unwrap();
        assert_eq!(budget.used(start + Duration::from_secs(1800)), 2);
        assert_eq!(budget.used(start + WINDOW), 1, "the first request has left the window");
        assert_eq!(budget.used(start + WINDOW * 2), 0);
    }
}
