//! Blackout windows: times in which no scheduled rotation starts (a weekly quiet period, a change freeze).
//!
//! A window is either recurring, a cron expression whose every fire opens it for a `duration`, or a range of whole
//! days (`from` to `to`, both included), and is read in the job's time zone. [`hold`] moves a due time that falls
//! inside one to the moment it ends; windows that overlap or follow each other without a gap are crossed one after
//! the other. Only the due time of a rotation moves: settling a pending value is never held (a value whose apply
//! was sent must be settled, whatever the calendar says).

use super::{ScheduleError, cron, whole_second};
use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use std::sync::Arc;
use std::time::Duration;

/// One blackout window.
#[derive(Clone, Debug)]
pub struct Blackout {
    kind: Kind,
    /// Why, as the config says; shown in `status`.
    reason: Option<String>,
}

#[derive(Clone, Debug)]
enum Kind {
    Recurring { expression: String, cron: Arc<croner::Cron>, duration: Duration },
    Days { from: NaiveDate, to: NaiveDate },
}

/// A due time moved by a window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    /// When the (last) window that held it ends.
    pub until: DateTime<Utc>,
    /// The window, described for people.
    pub window: String,
}

/// How many windows one due time may cross: more, chained without a gap, is a calendar with no room to rotate.
const MAX_CHAIN: usize = 64;

impl Blackout {
    /// A window opened at each fire of `expression` (5 or 6 fields, as a schedule's) for `duration`.
    pub fn recurring(
        expression: &str,
        duration: Duration,
        reason: Option<String>,
    ) -> Result<Self, ScheduleError> {
        let (parsed, expression) = cron::parse(expression)?;
        Ok(Self { kind: Kind::Recurring { expression, cron: Arc::new(parsed), duration }, reason })
    }

    /// The whole days from `from` to `to`, both included.
    pub fn days(from: NaiveDate, to: NaiveDate, reason: Option<String>) -> Self {
        Self { kind: Kind::Days { from, to }, reason }
    }

    /// The window, described for people.
    pub fn describe(&self) -> String {
        let what = match &self.kind {
            Kind::Recurring { expression, duration, .. } => {
                format!("`{expression}` for {}", humantime::format_duration(*duration))
            }
            Kind::Days { from, to } => format!("{from} to {to}"),
        };
        match &self.reason {
            Some(reason) => format!("{what} ({reason})"),
            None => what,
        }
    }

    /// When this window ends, if `t` is inside it (read in `zone`).
    fn end_if_inside(&self, zone: Tz, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.kind {
            Kind::Recurring { cron, duration, .. } => {
                let start = whole_second(t).with_timezone(&zone);
                let fire = cron.find_previous_occurrence(&start, true).ok()?.with_timezone(&Utc);
                let end = fire.checked_add_signed(TimeDelta::from_std(*duration).ok()?)?;
                (t < end).then_some(end)
            }
            Kind::Days { from, to } => {
                let day = t.with_timezone(&zone).date_naive();
                if day < *from || day > *to {
                    return None;
                }
                let next = to.succ_opt()?.and_hms_opt(0, 0, 0)?;
                // The first moment of the day after `to` in `zone` (a day that starts in a gap starts after it).
                let end = zone
                    .from_local_datetime(&next)
                    .earliest()
                    .or_else(|| zone.from_local_datetime(&(next + TimeDelta::hours(1))).earliest())?;
                Some(end.with_timezone(&Utc))
            }
        }
    }
}

/// Where `due` moves because of `windows` (read in `zone`): `None` when it is inside none of them.
pub fn hold(windows: &[Blackout], zone: Tz, due: DateTime<Utc>) -> Option<Held> {
    let mut held: Option<Held> = None;
    let mut t = due;
    for _ in 0..MAX_CHAIN {
        let Some((end, window)) = windows
            .iter()
            .filter_map(|w| w.end_if_inside(zone, t).map(|end| (end, w)))
            .max_by_key(|(end, _)| *end)
        else {
            return held;
        };
        t = end;
        held = Some(Held { until: end, window: window.describe() });
    }
    held
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc)
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    #[test]
    fn a_due_time_inside_a_weekly_window_moves_to_its_end_in_the_jobs_time_zone() {
        // Friday 18:00 Amsterdam for 62 hours: to Monday 08:00 Amsterdam (07:00 UTC in winter).
        let weekend =
            Blackout::recurring("0 18 * * FRI", Duration::from_secs(62 * 3600), None).expect("cron");
        let zone: Tz = "Europe/Amsterdam".parse().expect("zone");
        let saturday = at("2026-12-05T12:00:00Z");
        let held = hold(std::slice::from_ref(&weekend), zone, saturday).expect("held");
        assert_eq!(held.until, at("2026-12-07T07:00:00Z"));
        assert!(held.window.contains("0 18 * * FRI"), "{}", held.window);
        assert_eq!(
            hold(std::slice::from_ref(&weekend), zone, at("2026-12-07T07:00:00Z")),
            None,
            "the end is outside"
        );
        assert_eq!(hold(&[weekend], zone, at("2026-12-04T16:59:59Z")), None, "before it opens");
    }

    #[test]
    fn a_change_freeze_holds_whole_days_and_windows_that_meet_are_crossed_together() {
        let zone: Tz = "America/New_York".parse().expect("zone");
        let freeze = Blackout::days(day("2026-12-20"), day("2027-01-03"), Some("year-end freeze".into()));
        let held = hold(std::slice::from_ref(&freeze), zone, at("2026-12-20T05:00:00Z")).expect("held");
        assert_eq!(held.until, at("2027-01-04T05:00:00Z"), "midnight after the last day, New York time");
        assert!(held.window.contains("year-end freeze"));
        assert_eq!(
            hold(std::slice::from_ref(&freeze), zone, at("2026-12-20T04:59:59Z")),
            None,
            "the day before"
        );
        // A daily window from 23:00 for 3 hours, chained with the freeze's end: both crossed.
        let nightly = Blackout::recurring("0 23 * * *", Duration::from_secs(3 * 3600), None).expect("cron");
        let held = hold(&[freeze, nightly], zone, at("2027-01-03T12:00:00Z")).expect("held");
        assert_eq!(
            held.until,
            at("2027-01-04T07:00:00Z"),
            "the freeze ends inside the nightly window of the 3rd"
        );
    }
}
