//! `[policy] max_age` held against each job: through the job's own `max_age`, or else through its schedule, whose
//! longest interval between fires (window included) must not exceed the limit.
//!
//! A config may hold thousands of jobs and most share a handful of schedules, so each distinct schedule is
//! measured once ([`Verdicts`]), and measuring asks only whether every interval fits
//! ([`Schedule::longest_interval_over`]), which is a few croner calls, not a walk through two years of fires.

use super::duration::{ConfigDuration, display};
use super::error::ConfigError;
use super::job::Context;
use super::locate::KeyPath;
use super::schema::JobSchema;
use crate::schedule::Schedule;
use chrono::{DateTime, Utc};
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

/// The verdict on each distinct (schedule, limit) measured so far: `None` when every interval fits, else the
/// longest one. Each thread that reads jobs keeps its own (see `validate`), hence the `RefCell`.
#[derive(Debug, Default)]
pub(super) struct Verdicts(RefCell<HashMap<(Schedule, Duration), Option<Duration>>>);

impl Verdicts {
    /// The longest interval of `schedule` from `now` when it is longer than `limit`, measured once per distinct
    /// schedule and limit.
    pub fn longest_interval_over(
        &self,
        schedule: &Schedule,
        now: DateTime<Utc>,
        limit: Duration,
    ) -> Option<Duration> {
        let key = (schedule.clone(), limit);
        if let Some(verdict) = self.0.borrow().get(&key) {
            return *verdict;
        }
        let verdict = schedule.longest_interval_over(now, limit);
        self.0.borrow_mut().insert(key, verdict);
        verdict
    }

    /// How many distinct (schedule, limit) pairs were measured.
    #[cfg(test)]
    pub fn measured(&self) -> usize {
        self.0.borrow().len()
    }
}

/// The `[policy]` maximum age holds when the job is guaranteed to rotate before it: through its own `max_age`,
/// or else through its schedule's longest gap between two fires (window included).
pub(super) fn check(
    ctx: &Context<'_>,
    at: &KeyPath,
    job: &JobSchema,
    schedule: Option<&Schedule>,
    max_age: Option<Duration>,
) -> Result<(), ConfigError> {
    let Some(limit) = ctx.policy.max_age else {
        return Ok(());
    };
    if let Some(max_age) = max_age {
        if max_age > limit {
            return Err(ctx.doc.error(
                &at.key("max_age"),
                format!(
                    "{} is longer than [policy] max_age = {}: expected at most {}",
                    display(max_age),
                    display(limit),
                    display(limit)
                ),
            ));
        }
        return Ok(());
    }
    if let Some(schedule) = schedule
        && let Some(longest) = ctx.memos.max_age_verdicts.longest_interval_over(schedule, ctx.now, limit)
    {
        let cron = job.schedule.as_deref().unwrap_or_default();
        let window = match job.window {
            Some(ConfigDuration(w)) if !w.is_zero() => format!(" and window {}", display(w)),
            _ => String::new(),
        };
        return Err(ctx.doc.error(
            &at.key("schedule"),
            format!(
                "rotates at most every {} (schedule `{cron}`{window}), longer than [policy] max_age = {}: set a \
                 more frequent schedule or max_age <= {}",
                display(longest),
                display(limit),
                display(limit)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(cron: &str, zone: Option<&str>, window: Option<Duration>) -> Schedule {
        Schedule::new(cron, zone, window).expect("valid")
    }

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn jobs_sharing_a_schedule_measure_it_once() {
        let verdicts = Verdicts::default();
        let now = Utc::now();
        // Spacing is normalised, so this is the same schedule as `0 3 * * SUN` written plainly.
        for _ in 0..1_000 {
            let weekly = schedule("0 3  * * SUN", Some("Europe/Amsterdam"), Some(Duration::from_secs(7200)));
            assert_eq!(verdicts.longest_interval_over(&weekly, now, 90 * DAY), None);
        }
        assert_eq!(verdicts.measured(), 1);
        // A different zone, window, expression or limit is another schedule, with its own verdict.
        let monthly = schedule("0 0 1 * *", None, None);
        assert_eq!(verdicts.longest_interval_over(&monthly, now, 7 * DAY), Some(31 * DAY));
        assert_eq!(verdicts.longest_interval_over(&monthly, now, 31 * DAY), None);
        let utc = schedule("0 3 * * SUN", None, Some(Duration::from_secs(7200)));
        let no_window = schedule("0 3 * * SUN", Some("Europe/Amsterdam"), None);
        assert_eq!(verdicts.longest_interval_over(&utc, now, 90 * DAY), None);
        assert_eq!(verdicts.longest_interval_over(&no_window, now, 90 * DAY), None);
        assert_eq!(verdicts.measured(), 5);
    }
}
