//! How old a secret can get under a schedule alone: the longest interval between two consecutive fires, window
//! included, over the two years around now, and the cheap question the `[policy] max_age` check actually asks:
//! "is every interval at most this long?".
//!
//! The two answers are kept apart because they cost very differently. Measuring the longest interval has to visit
//! fires (every one of a weekly schedule's 105, the first 10,000 of a dense one); that is about a millisecond and a
//! half per job, a second and a half for a config of a thousand jobs. Proving that no interval exceeds a limit can
//! jump instead: from a fire, the last fire within the limit of it is found by one croner call, and every gap
//! jumped over is shorter than the limit by construction. A gap longer than the limit is the only thing that stops
//! a jump, so the walk takes about two calls per limit's length of horizon (16 jumps for 90 days over two years),
//! and only a schedule that fails the check pays for the exact measurement its error message needs.
//!
//! Both look at every gap that ends after `from` and starts within the horizon, including the gap that `from`
//! falls in: a schedule that fires every four years (`0 0 29 2 *`) is four years between fires whatever the date.

use super::Schedule;
use chrono::{DateTime, TimeDelta, Utc};
use std::time::Duration;

/// How far ahead the intervals are measured: two years and a day, so that every month, both changes of clocks and
/// a leap day can be seen, whatever day it starts on.
const HORIZON: TimeDelta = TimeDelta::days(731);

/// How many consecutive fires [`Schedule::longest_interval`] measures one by one before it starts jumping ahead.
const DENSE_FIRES: u32 = 10_000;

/// The shortest jump [`Schedule::longest_interval_over`] takes. Below it the jump walk would visit nearly every fire
/// of a dense schedule, so a limit this short (minus the window) is measured the slow, bounded way instead.
const SHORTEST_JUMP: TimeDelta = TimeDelta::hours(1);

impl Schedule {
    /// The longest time between two consecutive fires around the two years after `from`, plus the window: the oldest
    /// a secret can get under this schedule alone (rotated at the very start of one window, next at the very end of
    /// the next). Counted from the last fire at or before `from`, so the gap `from` falls in is measured too.
    ///
    /// The interval is measured in real time, so a weekly fire in a zone with summer time has a longest interval of
    /// 7 days and 1 hour (the week the clocks go back). `Duration::MAX` if the schedule stops firing.
    ///
    /// This visits fires; to compare with a limit, [`Schedule::longest_interval_over`] is far cheaper.
    pub fn longest_interval(&self, from: DateTime<Utc>) -> Duration {
        let horizon = from + HORIZON;
        let Some(mut fire) = self.first_fire_measured(from) else {
            return Duration::MAX;
        };
        let mut longest = TimeDelta::zero();
        let mut measured = 0;
        while fire < horizon {
            // A dense schedule (every minute in January, say) has too many fires to visit one by one. After the
            // first DENSE_FIRES, jump to the last fire within `step`: every gap jumped over is at most `step` long,
            // so only a gap longer than `step` can still change the answer, and that one stops the jump and is
            // measured below. `step` is at least an hour because gaps shorter than an hour repeat hour after hour,
            // and the dense part has already seen them.
            if measured >= DENSE_FIRES {
                let step = longest.max(SHORTEST_JUMP);
                if let Some(reach) = self.find_last_at_or_before(fire + step)
                    && reach > fire
                {
                    fire = reach;
                    continue;
                }
            }
            let Some(next) = self.find_next_after(fire) else {
                return Duration::MAX;
            };
            longest = longest.max(next - fire);
            measured += 1;
            fire = next;
        }
        with_window(longest, self.window)
    }

    /// `None` when every interval [`Schedule::longest_interval`] measures is at most `limit`; otherwise the longest
    /// one, for the message that says so. Always the same verdict as comparing `longest_interval(from)` with
    /// `limit`, in about `2 × two years / limit` croner calls when the schedule passes.
    pub fn longest_interval_over(&self, from: DateTime<Utc>, limit: Duration) -> Option<Duration> {
        let exceeded = || {
            let longest = self.longest_interval(from);
            (longest > limit).then_some(longest)
        };
        // Fires fall on whole seconds, so a gap fits in `limit - window` exactly when it fits in its whole seconds.
        let room = limit.saturating_sub(self.window.unwrap_or_default());
        let Ok(room) = TimeDelta::from_std(Duration::from_secs(room.as_secs())) else {
            return exceeded();
        };
        if room < SHORTEST_JUMP {
            return exceeded();
        }
        let horizon = from + HORIZON;
        let Some(mut fire) = self.first_fire_measured(from) else {
            return exceeded();
        };
        while fire < horizon {
            // Every gap between `fire` and the last fire within `room` of it fits. If that last fire is `fire`
            // itself, the next one is more than `room` away: that gap does not fit.
            let reach = fire.checked_add_signed(room).and_then(|t| self.find_last_at_or_before(t));
            match reach {
                Some(reach) if reach > fire => fire = reach,
                _ => return exceeded(),
            }
        }
        None
    }

    /// Where measuring starts: the last fire at or before `from` (so the gap `from` falls in counts), or the first
    /// fire after it when there is none before.
    fn first_fire_measured(&self, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.find_last_at_or_before(from).or_else(|| self.find_next_after(from))
    }
}

/// `gap` plus the window, saturating at `Duration::MAX`.
fn with_window(gap: TimeDelta, window: Option<Duration>) -> Duration {
    gap.to_std().unwrap_or(Duration::MAX).saturating_add(window.unwrap_or_default())
}
