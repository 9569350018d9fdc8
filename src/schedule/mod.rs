//! Schedules: when each job rotates, and the clock the daemon waits on.
//!
//! A [`Schedule`] is a cron expression (5 fields, or 6 with seconds first) read in UTC or an IANA time zone, with an
//! optional window: the rotation for a fire happens at a moment inside `[fire, fire + window)`, chosen per job so that
//! jobs sharing a schedule do not all call their target (and its shared API budget) in the same second.
//! [`next_due`] turns a schedule, a job's `max_age` and its secret's `rotated_at` into the next moment the job is
//! due, and why. It is a pure function: `rotated_at` comes from store metadata and the window's moment is derived
//! from the job name and the fire, so the daemon keeps no scheduling state of its own, and a restart, a second
//! replica, or a re-evaluation after every rotation all reach the same answer. The [`Clock`] is injected: production
//! waits on the wall clock ([`SystemClock`]); tests drive days of schedule in paused tokio time ([`TokioClock`]).
//! `interval.rs` says how old a secret can get under a schedule alone ([`Schedule::longest_interval`]) and, cheaply,
//! whether that stays within a limit ([`Schedule::longest_interval_over`]), for the `[policy] max_age` check.
//!
//! Time zones: croner walks the wall clock of the schedule's zone and every result here is an instant in UTC, so
//! `0 3 * * SUN` in `Europe/Amsterdam` fires at 02:00 UTC in winter and 01:00 UTC in summer. Across a change of
//! clocks croner decides, and we keep its rules: a fixed time that does not exist (02:30 on the night clocks go
//! forward) fires at the first instant after the gap (03:00 summer time); a fixed time that happens twice (02:30 on
//! the night clocks go back) fires once, the first time; an interval or wildcard expression (`*/10 * * * *`) fires
//! at each wall-clock time that exists, including both passes through a repeated hour.

mod blackout;
mod clock;
mod cron;
mod due;
mod gaps;
mod interval;

#[cfg(test)]
mod tests;

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, TimeZone, Utc};
use chrono_tz::Tz;

pub use blackout::{Blackout, Held, hold};
pub use clock::{Clock, SystemClock, TokioClock};
pub use due::{Due, DueReason, next_due};

/// The longest window accepted: longer is surely a mistake, and bounding it keeps the date arithmetic in range.
const MAX_WINDOW: Duration = Duration::from_secs(366 * 24 * 60 * 60);

/// Why a schedule could not be built. Each message says what is wrong and what is expected.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScheduleError {
    /// The expression does not have 5 or 6 fields.
    #[error(
        "`{expression}` is not a cron expression: expected 5 fields (minute hour day-of-month month day-of-week) \
         or 6 with seconds first"
    )]
    FieldCount { expression: String, found: usize },
    /// One field holds something that field does not accept.
    #[error(
        "`{expression}` is not a cron expression: the {field} field `{value}` is not valid: expected {expected}, \
         as a single value, `*`, a list `a,b`, a range `a-b` or a step `*/n` or `a-b/n`"
    )]
    InvalidField { expression: String, field: &'static str, value: String, expected: &'static str },
    /// croner refused the expression as a whole (every field alone is valid).
    #[error("`{expression}` is not a cron expression: {reason}")]
    Refused { expression: String, reason: String },
    /// The expression is valid but names no date that exists, such as 30 February.
    #[error(
        "`{expression}` never fires: no date matches its day-of-month and month fields; expected a day that exists \
         in the month, such as `0 0 28 2 *` rather than `0 0 30 2 *`"
    )]
    NeverFires { expression: String },
    /// The time zone is not in the IANA database that chrono-tz carries.
    #[error("`{name}` is not a time zone: expected an IANA name such as `Europe/Amsterdam` or `UTC`")]
    UnknownTimeZone { name: String },
    /// The window is longer than 366 days.
    #[error(
        "a window of {days} days is too long: expected at most 366 days, and less than the time between fires"
    )]
    WindowTooLong { days: u64 },
}

/// A validated schedule: cron expression, time zone and window. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// The expression as given, whitespace normalised: what [`Schedule::describe`] shows.
    expression: String,
    /// Shared by clones: a parsed expression is a few kilobytes (croner keeps a byte per possible year), and every
    /// job of a config with the same schedule shares one (see `config::job::Schedules`).
    cron: std::sync::Arc<croner::Cron>,
    /// Pairs of consecutive fires met lately, shared by clones: thousands of jobs on one schedule ask about the
    /// same few fires, and croner's search is tens of microseconds.
    gaps: std::sync::Arc<gaps::Gaps>,
    zone: Tz,
    /// `None` when no window was given, or a zero one: then each rotation happens at its fire.
    window: Option<Duration>,
}

impl Schedule {
    /// Builds a schedule from a cron expression, an IANA time zone (`None` is UTC) and an optional window.
    ///
    /// `cron` has 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first. Days and months may
    /// be named (`SUN`, `MON-FRI`, `JAN,JUL`), in their own fields only. As in Vixie cron, when both day-of-month and
    /// day-of-week are restricted a day matching either fires. The rotation for a fire happens at a moment inside
    /// `[fire, fire + window)`: see [`next_due`].
    pub fn new(
        cron: &str,
        timezone: Option<&str>,
        window: Option<Duration>,
    ) -> Result<Schedule, ScheduleError> {
        let (parsed, expression) = cron::parse(cron)?;
        let zone = match timezone {
            None => Tz::UTC,
            Some(name) => {
                name.parse::<Tz>().map_err(|_| ScheduleError::UnknownTimeZone { name: name.to_owned() })?
            }
        };
        if let Some(window) = window
            && window > MAX_WINDOW
        {
            return Err(ScheduleError::WindowTooLong { days: window.as_secs().div_ceil(24 * 60 * 60) });
        }
        let schedule = Schedule {
            expression,
            cron: std::sync::Arc::new(parsed),
            gaps: Default::default(),
            zone,
            window: window.filter(|window| !window.is_zero()),
        };
        // Without a year field an expression that fires once fires again at the latest 400 years on (the Gregorian
        // calendar repeats, weekdays included, every 400 years), so one fire after any date proves it is alive.
        let reference = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single();
        if reference.and_then(|reference| schedule.next_fire_after(reference)).is_none() {
            return Err(ScheduleError::NeverFires { expression: schedule.expression });
        }
        Ok(schedule)
    }

    /// The first fire strictly after `t`, or `None` if croner finds none (not for a schedule that [`Schedule::new`]
    /// accepted, short of croner's year 5000 limit).
    pub fn next_fire_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let x = whole_second(t);
        if let Some((_, b)) = self.gaps.around(x) {
            return Some(b);
        }
        let b = self.find_next_after(t)?;
        if let Some(a) = self.find_before(b) {
            self.learn(a, b);
        }
        Some(b)
    }

    /// The latest fire at or before `t`, or `None` if there is none.
    pub fn last_fire_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if let Some((a, _)) = self.gaps.around(whole_second(t)) {
            return Some(a);
        }
        let a = self.find_last_at_or_before(t)?;
        if let Some(b) = self.find_next_after(a) {
            self.learn(a, b);
        }
        Some(a)
    }

    /// The latest fire strictly before `fire`, where `fire` is itself a fire.
    fn fire_before(&self, fire: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if let Some(a) = self.gaps.ending_at(whole_second(fire)) {
            return Some(a);
        }
        let a = self.find_before(fire)?;
        self.learn(a, whole_second(fire));
        Some(a)
    }

    /// Remembers that `b` follows `a` with no fire between, once croner agrees both ways (so that a quirk of a
    /// change of clocks can never make the memo answer what croner would not).
    fn learn(&self, a: DateTime<Utc>, b: DateTime<Utc>) {
        if self.find_next_after(a) == Some(b) && self.find_before(b) == Some(a) {
            self.gaps.remember(a, b);
        }
    }

    /// croner's answer to [`Schedule::next_fire_after`], not remembered: for walks over years of fires, which
    /// would only churn the memo.
    fn find_next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Fires fall on whole seconds and croner searches whole seconds: searching after `t` rounded down finds the
        // first fire at or past the next whole second, which is the first one strictly after `t`.
        let start = whole_second(t).with_timezone(&self.zone);
        let fire = self.cron.find_next_occurrence(&start, false).ok()?;
        Some(fire.with_timezone(&Utc))
    }

    fn find_last_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let start = whole_second(t).with_timezone(&self.zone);
        let fire = self.cron.find_previous_occurrence(&start, true).ok()?;
        Some(fire.with_timezone(&Utc))
    }

    fn find_before(&self, fire: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let start = whole_second(fire).with_timezone(&self.zone);
        let fire = self.cron.find_previous_occurrence(&start, false).ok()?;
        Some(fire.with_timezone(&Utc))
    }

    /// The time zone its expression is read in (and a job's blackout windows).
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The window given to [`Schedule::new`], or `None` if none or a zero one was given.
    pub fn window(&self) -> Option<Duration> {
        self.window
    }

    /// One line for logs and status, e.g. `0 3 * * SUN (Europe/Amsterdam), window 2h`.
    pub fn describe(&self) -> String {
        let mut line = format!("{} ({})", self.expression, self.zone.name());
        if let Some(window) = self.window {
            line.push_str(&format!(", window {}", humantime::format_duration(window)));
        }
        line
    }
}

/// Two schedules are equal when they are written the same: the same expression (whitespace normalised), zone and
/// window. Equal schedules fire at the same moments, so what is measured of one holds for the other (the config
/// check measures each distinct schedule once).
impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.expression == other.expression && self.zone == other.zone && self.window == other.window
    }
}

impl Eq for Schedule {}

impl std::hash::Hash for Schedule {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.expression.hash(state);
        self.zone.name().hash(state);
        self.window.hash(state);
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// `t` rounded down to a whole second.
fn whole_second(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(0)
}
