//! Age warnings: a secret within `warn_before` of its job's `max_age` that nothing will rotate before then (the
//! job is diverged, blocked or failing, or its schedule comes too late) gets one `age_warning` event per secret
//! version.
//!
//! A manual job (`apply = "manual"`: a person sets its secret) gets instead a `manual_rotation_due` from
//! `warn_before` ahead of its `max_age`, then a `manual_rotation_overdue` once it is past ([`manual_notice`]).
//!
//! [`warning`] and [`manual_notice`] decide, purely; [`AgeWarnings`] remembers which version was warned about, so
//! that the daemon's loop, which evaluates a job again and again, raises each once. The memory is the process's own: a restarted
//! daemon warns once more, which is the safer way to be wrong.

use super::{Event, EventData, EventKind};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// The warning for `job`, whose secret was rotated at `rotated_at`, if it is due one at `now`. `rotates_by`: when
/// the next rotation is planned, `None` when none is expected to succeed (diverged, blocked, failing).
pub fn warning(
    job: &str,
    rotated_at: DateTime<Utc>,
    max_age: Duration,
    warn_before: Duration,
    rotates_by: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<Event> {
    let (warn_from, expires) = window(rotated_at, max_age, warn_before)?;
    if now < warn_from || rotates_by.is_some_and(|at| at <= expires) {
        return None;
    }
    let ts = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let when = if now < expires { "reaches" } else { "reached" };
    let detail = format!(
        "the secret rotated at {} {when} its max_age ({}) at {}, and no rotation is expected before then",
        ts(rotated_at),
        humantime::format_duration(max_age),
        ts(expires)
    );
    let data = EventData { job: job.to_owned(), detail: Some(detail), ..EventData::default() };
    Some(Event::new(EventKind::AgeWarning, now, data))
}

/// When the warning's lead begins and when the secret reaches `max_age`.
fn window(
    rotated_at: DateTime<Utc>,
    max_age: Duration,
    warn_before: Duration,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let expires = rotated_at + chrono::Duration::from_std(max_age).ok()?;
    Some((expires - chrono::Duration::from_std(warn_before).ok()?, expires))
}

/// The notice for a manual job whose secret was set at `rotated_at`, if it is due one at `now`: due from
/// `warn_before` ahead of `max_age`, overdue once past it.
pub fn manual_notice(
    job: &str,
    rotated_at: DateTime<Utc>,
    max_age: Duration,
    warn_before: Duration,
    now: DateTime<Utc>,
) -> Option<Event> {
    let (warn_from, expires) = window(rotated_at, max_age, warn_before)?;
    if now < warn_from {
        return None;
    }
    let ts = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (kind, when) = if now < expires {
        (EventKind::ManualRotationDue, "reaches")
    } else {
        (EventKind::ManualRotationOverdue, "reached")
    };
    let detail = format!(
        "the secret set at {} {when} its max_age ({}) at {}: set a new one in the Autotask UI and pipe it to \
         `rotavault import {job}`",
        ts(rotated_at),
        humantime::format_duration(max_age),
        ts(expires)
    );
    let data = EventData { job: job.to_owned(), detail: Some(detail), ..EventData::default() };
    Some(Event::new(kind, now, data))
}

/// The secret versions (by their rotated-at) already warned about, per job, and the kind of the last notice.
#[derive(Debug, Default)]
pub struct AgeWarnings {
    warned: Mutex<HashMap<String, (DateTime<Utc>, EventKind)>>,
}

impl AgeWarnings {
    /// [`warning`], raised once per version of `job`'s secret.
    pub fn check(
        &self,
        job: &str,
        rotated_at: DateTime<Utc>,
        max_age: Duration,
        warn_before: Duration,
        rotates_by: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<Event> {
        let event = warning(job, rotated_at, max_age, warn_before, rotates_by, now)?;
        self.once(job, rotated_at, event)
    }

    /// [`manual_notice`], each kind raised once per version of `job`'s secret.
    pub fn check_manual(
        &self,
        job: &str,
        rotated_at: DateTime<Utc>,
        max_age: Duration,
        warn_before: Duration,
        now: DateTime<Utc>,
    ) -> Option<Event> {
        let event = manual_notice(job, rotated_at, max_age, warn_before, now)?;
        self.once(job, rotated_at, event)
    }

    fn once(&self, job: &str, rotated_at: DateTime<Utc>, event: Event) -> Option<Event> {
        let mut warned = self.warned.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if warned.get(job) == Some(&(rotated_at, event.kind)) {
            return None;
        }
        warned.insert(job.to_owned(), (rotated_at, event.kind));
        Some(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const DAY: Duration = Duration::from_secs(86_400);

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, day, 12, 0, 0).single().expect("date")
    }

    #[test]
    fn a_secret_within_warn_before_of_max_age_that_is_not_being_rotated_is_warned_about() {
        let event = warning("backup", at(1), 10 * DAY, 3 * DAY, None, at(8)).expect("a warning");
        assert_eq!(event.kind, EventKind::AgeWarning);
        assert_eq!(event.data.job, "backup");
        let detail = event.data.detail.expect("detail");
        assert!(detail.contains("reaches its max_age (10days) at 2026-06-11T12:00:00Z"), "{detail}");
    }

    #[test]
    fn no_warning_before_warn_before_or_when_a_rotation_is_planned_in_time() {
        assert!(warning("backup", at(1), 10 * DAY, 3 * DAY, None, at(7)).is_none(), "too early");
        assert!(
            warning("backup", at(1), 10 * DAY, 3 * DAY, Some(at(11)), at(9)).is_none(),
            "rotates by max_age"
        );
        assert!(
            warning("backup", at(1), 10 * DAY, 3 * DAY, Some(at(12)), at(9)).is_some(),
            "rotates too late"
        );
        let past = warning("backup", at(1), 10 * DAY, 3 * DAY, None, at(20)).expect("past max_age");
        assert!(past.data.detail.expect("detail").contains("reached its max_age"));
    }

    #[test]
    fn each_secret_version_is_warned_about_once() {
        let warnings = AgeWarnings::default();
        assert!(warnings.check("backup", at(1), 10 * DAY, 3 * DAY, None, at(8)).is_some());
        assert!(
            warnings.check("backup", at(1), 10 * DAY, 3 * DAY, None, at(9)).is_none(),
            "not on every loop"
        );
        assert!(warnings.check("other", at(1), 10 * DAY, 3 * DAY, None, at(9)).is_some(), "per job");
        assert!(warnings.check("backup", at(12), 10 * DAY, 3 * DAY, None, at(20)).is_some(), "a new version");
    }

    #[test]
    fn a_manual_job_is_told_due_then_overdue_once_each_per_secret_version() {
        assert!(manual_notice("m", at(1), 10 * DAY, 3 * DAY, at(7)).is_none(), "too early");
        let warnings = AgeWarnings::default();
        let due = warnings.check_manual("m", at(1), 10 * DAY, 3 * DAY, at(8)).expect("due");
        assert_eq!(due.kind, EventKind::ManualRotationDue);
        assert!(due.data.detail.expect("detail").contains("rotavault import m"));
        assert!(warnings.check_manual("m", at(1), 10 * DAY, 3 * DAY, at(9)).is_none(), "once");
        let overdue = warnings.check_manual("m", at(1), 10 * DAY, 3 * DAY, at(11)).expect("overdue");
        assert_eq!(overdue.kind, EventKind::ManualRotationOverdue);
        assert!(warnings.check_manual("m", at(1), 10 * DAY, 3 * DAY, at(15)).is_none(), "once");
        assert!(
            warnings.check_manual("m", at(12), 10 * DAY, 3 * DAY, at(13)).is_none(),
            "a new secret: nothing yet"
        );
    }
}
