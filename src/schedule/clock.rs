//! The wall clock, injected: [`SystemClock`] in production, [`TokioClock`] in tests, where it follows tokio's paused
//! clock so that days of schedule pass in milliseconds and no test sleeps for real.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

/// The longest [`SystemClock`] sleeps before it looks at the wall clock again.
const SYSTEM_CLOCK_CHUNK: Duration = Duration::from_secs(60);

/// The wall clock, injectable.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current wall-clock time.
    fn now(&self) -> DateTime<Utc>;

    /// Sleeps until `now()` has reached `deadline`; returns at once if it already has.
    fn sleep_until(&self, deadline: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// The system's wall clock.
///
/// Schedules are in wall-clock time but timers run on the monotonic clock, and the two drift apart when the wall
/// clock is stepped (NTP, an operator) or the machine is suspended (the monotonic clock may stop while the wall clock
/// goes on). So [`SystemClock::sleep_until`] sleeps at most a minute at a time and compares with the wall clock again:
/// a rotation is at most a minute late after a jump, never hours. Under tokio's paused time its sleeps return at once
/// while the wall clock stands still, so tests use [`TokioClock`] instead.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            while let Some(chunk) = system_clock_chunk(self.now(), deadline) {
                tokio::time::sleep(chunk).await;
            }
        })
    }
}

/// A wall clock that moves with tokio's clock: `now()` is the start time plus the tokio time elapsed since the clock
/// was made. Under `tokio::time::pause()` (or `#[tokio::test(start_paused = true)]`) it stands still until time is
/// advanced, by `tokio::time::advance` or by tokio's auto-advance when every task waits on a timer.
#[derive(Clone, Copy, Debug)]
pub struct TokioClock {
    start: DateTime<Utc>,
    origin: tokio::time::Instant,
}

impl TokioClock {
    /// A clock that reads `start` now.
    pub fn starting_at(start: DateTime<Utc>) -> TokioClock {
        TokioClock { start, origin: tokio::time::Instant::now() }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        TimeDelta::from_std(self.origin.elapsed())
            .ok()
            .and_then(|elapsed| self.start.checked_add_signed(elapsed))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            // tokio's timer rounds up to the next millisecond, so one sleep is normally enough; the loop only makes
            // "now() >= deadline on return" hold by construction.
            while let Some(left) = time_left(self.now(), deadline) {
                tokio::time::sleep(left).await;
            }
        })
    }
}

/// How long [`SystemClock`] sleeps before it looks at the wall clock again, or `None` once `deadline` is reached.
fn system_clock_chunk(now: DateTime<Utc>, deadline: DateTime<Utc>) -> Option<Duration> {
    time_left(now, deadline).map(|left| left.min(SYSTEM_CLOCK_CHUNK))
}

/// The time from `now` to `deadline`, or `None` once `deadline` is reached.
fn time_left(now: DateTime<Utc>, deadline: DateTime<Utc>) -> Option<Duration> {
    (deadline - now).to_std().ok().filter(|left| !left.is_zero())
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    use super::*;
    use crate::schedule::{DueReason, Schedule, next_due};

    fn utc(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339).expect("test timestamp").with_timezone(&Utc)
    }

    /// Polls `sleep` once: `true` if it finished without waiting.
    fn finishes_at_once(mut sleep: Pin<Box<dyn Future<Output = ()> + Send + '_>>) -> bool {
        sleep.as_mut().poll(&mut Context::from_waker(Waker::noop())) == Poll::Ready(())
    }

    #[tokio::test(start_paused = true)]
    async fn sleeping_until_a_past_deadline_returns_at_once() {
        let system = SystemClock;
        assert!(finishes_at_once(system.sleep_until(system.now() - TimeDelta::hours(1))));
        let tokio_clock = TokioClock::starting_at(utc("2024-01-01T00:00:00Z"));
        assert!(finishes_at_once(tokio_clock.sleep_until(utc("2023-12-31T23:59:59Z"))));
        assert!(finishes_at_once(tokio_clock.sleep_until(tokio_clock.now())));
        // A deadline ahead does wait: the checks above are not vacuous.
        assert!(!finishes_at_once(tokio_clock.sleep_until(utc("2024-01-01T00:00:01Z"))));
    }

    #[test]
    fn the_system_clock_sleeps_at_most_a_minute_before_looking_again() {
        let now = utc("2024-01-01T00:00:00Z");
        assert_eq!(system_clock_chunk(now, now + TimeDelta::days(3)), Some(SYSTEM_CLOCK_CHUNK));
        assert_eq!(system_clock_chunk(now, now + TimeDelta::seconds(5)), Some(Duration::from_secs(5)));
        assert_eq!(system_clock_chunk(now, now), None);
        assert_eq!(system_clock_chunk(now, now - TimeDelta::seconds(5)), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_tokio_clock_moves_with_paused_time_and_wakes_at_the_deadline() {
        let start = utc("2024-01-01T00:00:00Z");
        let clock = TokioClock::starting_at(start);
        assert_eq!(clock.now(), start);
        tokio::time::advance(Duration::from_secs(90 * 60)).await;
        assert_eq!(clock.now(), start + TimeDelta::minutes(90));

        let deadline = start + TimeDelta::days(3) + TimeDelta::milliseconds(123);
        let before = tokio::time::Instant::now();
        clock.sleep_until(deadline).await;
        assert_eq!(clock.now(), deadline);
        assert_eq!(before.elapsed(), (deadline - start - TimeDelta::minutes(90)).to_std().expect("ahead"));
    }

    /// The daemon's loop in miniature, for two days of paused time: evaluate, sleep until due, rotate, repeat.
    #[tokio::test(start_paused = true)]
    async fn two_simulated_days_rotate_once_per_fire_inside_each_window() {
        // Across the night Amsterdam's clocks go forward (31 March 2024, 01:00 UTC): an every-ten-minutes schedule
        // keeps firing every ten minutes of real time.
        let start = utc("2024-03-30T12:00:00Z");
        let end = start + TimeDelta::days(2);
        let clock: &dyn Clock = &TokioClock::starting_at(start);
        let window = TimeDelta::minutes(5);
        let schedule =
            Schedule::new("*/10 * * * *", Some("Europe/Amsterdam"), window.to_std().ok()).expect("valid");
        // Longer than the worst case between rotations (10 minutes + the window), so it never decides.
        let max_age = Duration::from_secs(16 * 60);
        // The secret was made just before `start`, so the fire at `start` is owed.
        let mut rotated_at = start - TimeDelta::minutes(1);
        let mut rotations = vec![];
        let mut offsets = std::collections::BTreeSet::new();
        let real_start = std::time::Instant::now();
        loop {
            let due = next_due("optimize365", Some(&schedule), Some(max_age), Some(rotated_at), clock.now());
            if due.at >= end {
                break;
            }
            clock.sleep_until(due.at).await;
            let now = clock.now();
            assert_eq!(now, due.at, "woke at the moment it was due");
            let DueReason::Scheduled { fire } = due.reason else {
                panic!("at {now}: {due}");
            };
            assert!(fire <= now && now < fire + window, "rotated at {now}, outside the window of {fire}");
            assert!(now - rotated_at <= TimeDelta::minutes(15), "{now}: the secret got too old");
            rotations.push(fire);
            offsets.insert(now - fire);
            rotated_at = now;
        }
        // Every fire in [start, end), exactly once and in order: 2 days × 24 hours × 6.
        let expected: Vec<_> = (0..2 * 24 * 6).map(|n| start + TimeDelta::minutes(10 * n)).collect();
        assert_eq!(rotations.len(), 288);
        assert_eq!(rotations, expected);
        assert!(clock.now() < end);
        assert!(offsets.len() > 250, "the window spreads the moments: {} distinct", offsets.len());
        assert!(real_start.elapsed() < Duration::from_secs(30), "paused time, not real time");
    }
}
