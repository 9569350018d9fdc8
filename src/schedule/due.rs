//! When a job is next due, and why: the schedule's fires, each fire's moment in its window, and `max_age`, brought
//! together by [`next_due`].

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};

use super::Schedule;

/// How many fires [`next_due`] looks at one by one in each direction. Only a window far longer than the time between
/// fires (a 2-hour window on an every-second schedule) comes near it; the answer is then still a fire that is due,
/// though maybe not the latest or the first.
const SCAN_LIMIT: u32 = 10_000;

/// The next moment a job is due, and why. `at <= now` means "run now".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Due {
    pub at: DateTime<Utc>,
    pub reason: DueReason,
}

impl Due {
    /// Whether the job is to run at `now`.
    pub fn is_now(&self, now: DateTime<Utc>) -> bool {
        self.at <= now
    }
}

/// Why a job is due; see [`next_due`] for the rules. Displayed in logs and status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DueReason {
    /// There is no secret yet: create one now.
    NeverRotated,
    /// The moment for `fire` has passed and the secret predates `fire`: run now, once, for the latest such fire.
    MissedFire { fire: DateTime<Utc> },
    /// The rotation for `fire`, at its moment inside the window.
    Scheduled { fire: DateTime<Utc> },
    /// The secret reaches `max_age` at `age_limit_at`, before the schedule's next run (or there is no schedule).
    MaxAge { age_limit_at: DateTime<Utc> },
    /// Neither a schedule nor a `max_age`: once the secret exists the job is never due again, and `at` is
    /// `DateTime::<Utc>::MAX_UTC`. The config refuses such jobs; this only keeps the function total.
    Unscheduled,
}

impl fmt::Display for DueReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DueReason::NeverRotated => f.write_str("never rotated"),
            DueReason::MissedFire { fire } => write!(f, "missed the fire at {}", timestamp(*fire)),
            DueReason::Scheduled { fire } => write!(f, "the fire at {}", timestamp(*fire)),
            DueReason::MaxAge { age_limit_at } => {
                write!(f, "max_age reached at {}", timestamp(*age_limit_at))
            }
            DueReason::Unscheduled => f.write_str("no schedule and no max_age"),
        }
    }
}

impl fmt::Display for Due {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason {
            DueReason::Unscheduled => write!(f, "never due: {}", self.reason),
            _ => write!(f, "due {}: {}", timestamp(self.at), self.reason),
        }
    }
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// When `job` is next due, and why.
///
/// Pure: every input is explicit and nothing is remembered between calls, so evaluating it again (after each
/// rotation, after a restart, on another replica) gives the same answer. `rotated_at` is the secret's rotated-at
/// from store metadata, `None` if there is no secret yet. A result that is due now has `at == now`.
///
/// The rules, in the order they apply:
///
/// 1. No secret yet (`rotated_at` is `None`): due now, [`DueReason::NeverRotated`]. Nothing else means anything
///    until a secret exists.
/// 2. The secret has reached its age limit (`rotated_at + max_age <= now`): due now, [`DueReason::MaxAge`]. Policy
///    comes before the schedule: an over-age secret is what the security team audits, so the reason says so even
///    when a fire was missed as well.
/// 3. A fire is *owed* while the secret predates it (`rotated_at < fire`). Any rotation at or after a fire settles
///    it, whoever ran it: the schedule, `rotate JOB`, an import. The rotation for a fire happens at its *moment*,
///    `fire + jitter(job, fire)` with the jitter in `[0, window)`, derived from the job name and the fire by a small
///    fixed hash (FNV-1a, then a mixing step). Not random, so that evaluating again or restarting the daemon does
///    not move the moment; not std's `DefaultHasher`, whose output may change between Rust releases and would move
///    every job's moment on an upgrade.
/// 4. An owed fire whose moment is at or before `now` was *missed* (the daemon was down, or busy): due now,
///    [`DueReason::MissedFire`] naming the latest such fire. It runs once: that rotation settles every older fire
///    too, so the fires missed during a long outage are not replayed one by one. (A loop that sleeps until a
///    [`DueReason::Scheduled`] moment should run it under that reason; evaluating again after waking would name the
///    same fire as missed.)
/// 5. Otherwise the job is due at the earliest moment, still ahead, of an owed fire: [`DueReason::Scheduled`].
///    With a window this can be a fire already past: at 03:30 with a 2-hour window the 03:00 fire may be due at
///    04:10. If the age limit comes first, the job is due then instead, [`DueReason::MaxAge`].
/// 6. Without a schedule the job is due at its age limit; with neither schedule nor `max_age`, never
///    ([`DueReason::Unscheduled`]).
///
/// A `rotated_at` ahead of `now` (another replica's clock runs ahead) is taken as it is: no fire before it is owed.
pub fn next_due(
    job: &str,
    schedule: Option<&Schedule>,
    max_age: Option<Duration>,
    rotated_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Due {
    let Some(rotated_at) = rotated_at else {
        return Due { at: now, reason: DueReason::NeverRotated };
    };
    let age_limit_at = max_age.map(|max_age| {
        TimeDelta::from_std(max_age)
            .ok()
            .and_then(|max_age| rotated_at.checked_add_signed(max_age))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    });
    if let Some(age_limit_at) = age_limit_at
        && age_limit_at <= now
    {
        return Due { at: now, reason: DueReason::MaxAge { age_limit_at } };
    }
    let by_age_limit = |age_limit_at| Due { at: age_limit_at, reason: DueReason::MaxAge { age_limit_at } };
    match schedule.and_then(|schedule| next_run(schedule, job, rotated_at, now)) {
        Some(Run::Missed { fire }) => Due { at: now, reason: DueReason::MissedFire { fire } },
        Some(Run::Ahead { fire, at }) => match age_limit_at {
            Some(age_limit_at) if age_limit_at < at => by_age_limit(age_limit_at),
            _ => Due { at, reason: DueReason::Scheduled { fire } },
        },
        None => match age_limit_at {
            Some(age_limit_at) => by_age_limit(age_limit_at),
            None => Due { at: DateTime::<Utc>::MAX_UTC, reason: DueReason::Unscheduled },
        },
    }
}

/// The schedule's part of [`next_due`]: the missed fire to run now, or the owed fire that runs next.
enum Run {
    Missed { fire: DateTime<Utc> },
    Ahead { fire: DateTime<Utc>, at: DateTime<Utc> },
}

fn next_run(schedule: &Schedule, job: &str, rotated_at: DateTime<Utc>, now: DateTime<Utc>) -> Option<Run> {
    let window = schedule.window().and_then(|window| TimeDelta::from_std(window).ok()).unwrap_or_default();
    let moment = |fire: DateTime<Utc>| fire + jitter(job, fire, window);

    // Missed: walk back from the latest fire at or before now. The first owed fire whose moment has passed is the one
    // to run; the walk stops at the first settled fire, since every older fire is settled too. A fire no later than
    // `now - window` always has its moment behind it, so the walk only steps over fires inside the last window (whose
    // moments may still be ahead) and ends there at the latest; past SCAN_LIMIT it jumps straight to that point.
    let mut cursor = schedule.last_fire_at_or_before(now);
    let mut scanned = 0;
    while let Some(fire) = cursor {
        if fire <= rotated_at {
            break;
        }
        if moment(fire) <= now {
            return Some(Run::Missed { fire });
        }
        scanned += 1;
        cursor = if scanned < SCAN_LIMIT {
            schedule.fire_before(fire)
        } else {
            schedule.last_fire_at_or_before(now - window)
        };
    }

    // Ahead: every owed fire left has its moment after now, and none is older than `now - window`. The first one is
    // normally the one, but the window can make a later fire's moment come first when the window is longer than the
    // time between fires, so keep looking while a fire could still beat the best moment (a moment is never before
    // its fire).
    let mut cursor = schedule.next_fire_after(rotated_at.max(now - window));
    let mut best: Option<(DateTime<Utc>, DateTime<Utc>)> = None;
    let mut scanned = 0;
    while let Some(fire) = cursor {
        if best.is_some_and(|(_, best_at)| fire >= best_at) || scanned >= SCAN_LIMIT {
            break;
        }
        let at = moment(fire);
        if at > now && best.is_none_or(|(_, best_at)| at < best_at) {
            best = Some((fire, at));
        }
        scanned += 1;
        cursor = schedule.next_fire_after(fire);
    }
    best.map(|(fire, at)| Run::Ahead { fire, at })
}

/// Where in its window the rotation for `fire` happens: an offset in `[0, window)`, in whole milliseconds.
///
/// Stable by design: the same job and fire give the same offset in every process, on every machine, in every
/// version. Changing the hash moves every job's moment on upgrade, and the `jitter_is_stable` test pins it.
fn jitter(job: &str, fire: DateTime<Utc>, window: TimeDelta) -> TimeDelta {
    let Ok(window_ms @ 1..) = u64::try_from(window.num_milliseconds()) else {
        return TimeDelta::zero();
    };
    // 0xff never occurs in UTF-8, so it separates the name from the time: ("a", t) and ("a\u{1}", t') cannot collide
    // by shifting bytes from one into the other.
    let mut hash = FNV_OFFSET_BASIS;
    for byte in job.bytes().chain([0xff]).chain(fire.timestamp().to_be_bytes()) {
        hash = (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME);
    }
    let offset = mix(hash) % window_ms;
    TimeDelta::milliseconds(i64::try_from(offset).unwrap_or_default())
}

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// MurmurHash3's 64-bit finaliser. FNV-1a's low bits depend only on the low bits of its input, and fires of one
/// schedule differ in a few middle bits of their timestamps; mixing spreads every input bit over the whole word
/// before the remainder by the window keeps only the low ones.
fn mix(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339).expect("test timestamp").with_timezone(&Utc)
    }

    fn hours(n: u64) -> Duration {
        Duration::from_secs(n * 3600)
    }

    fn days(n: u64) -> Duration {
        hours(n * 24)
    }

    /// Sundays at 03:00 UTC; 2024-01-01 is a Monday, so the fires are 7, 14, 21 January 2024 …
    fn weekly(window: Option<Duration>) -> Schedule {
        Schedule::new("0 3 * * SUN", None, window).expect("valid")
    }

    #[test]
    fn never_rotated_is_due_now_whatever_the_schedule() {
        let now = utc("2024-01-02T00:00:00Z");
        let due = next_due("job", Some(&weekly(None)), Some(days(30)), None, now);
        assert_eq!(due, Due { at: now, reason: DueReason::NeverRotated });
        assert!(due.is_now(now));
    }

    #[test]
    fn without_a_window_the_next_fire_is_due_at_the_fire() {
        let due = next_due(
            "job",
            Some(&weekly(None)),
            None,
            Some(utc("2024-01-01T00:00:00Z")),
            utc("2024-01-02T00:00:00Z"),
        );
        let fire = utc("2024-01-07T03:00:00Z");
        assert_eq!(due, Due { at: fire, reason: DueReason::Scheduled { fire } });
        assert!(!due.is_now(utc("2024-01-02T00:00:00Z")));
    }

    #[test]
    fn inside_a_window_the_moment_is_stable_and_inside_it() {
        let schedule = weekly(Some(hours(2)));
        let fire = utc("2024-01-07T03:00:00Z");
        let rotated_at = Some(utc("2024-01-01T00:00:00Z"));
        let mut moments = vec![];
        for job in ["optimize365", "backup", "reports", "billing", "crm"] {
            let due = next_due(job, Some(&schedule), None, rotated_at, utc("2024-01-02T00:00:00Z"));
            assert_eq!(due.reason, DueReason::Scheduled { fire }, "{job}");
            assert!(due.at >= fire && due.at < fire + TimeDelta::hours(2), "{job}: {}", due.at);
            // Same input, same moment; and a later evaluation (after a restart, say, or once the fire has passed
            // but its moment has not) still finds the same moment.
            assert_eq!(next_due(job, Some(&schedule), None, rotated_at, utc("2024-01-02T00:00:00Z")), due);
            let later = fire + (due.at - fire) / 2;
            assert_eq!(next_due(job, Some(&schedule), None, rotated_at, later), due, "{job}");
            moments.push(due.at);
        }
        moments.sort();
        moments.dedup();
        assert_eq!(moments.len(), 5, "jobs share a schedule but not a moment");
    }

    /// The moment for a fire must not change between versions: every running job would move. If this fails, the
    /// hash changed; put it back. (306,880 ms was also computed by a separate FNV-1a + fmix64 in Python.)
    #[test]
    fn jitter_is_stable() {
        let fire = utc("2024-01-07T03:00:00Z");
        assert_eq!(jitter("optimize365", fire, TimeDelta::hours(2)), TimeDelta::milliseconds(306_880));
        assert_eq!(jitter("optimize365", fire, TimeDelta::zero()), TimeDelta::zero());
        assert_eq!(jitter("optimize365", fire, TimeDelta::microseconds(999)), TimeDelta::zero());
    }

    #[test]
    fn fires_missed_while_down_run_once_now_then_the_next_future_fire() {
        let schedule = weekly(None);
        // Rotated on 1 January; down over the fires of 7 and 14 January; back on 20 January.
        let now = utc("2024-01-20T12:00:00Z");
        let due = next_due("job", Some(&schedule), None, Some(utc("2024-01-01T00:00:00Z")), now);
        assert_eq!(due, Due { at: now, reason: DueReason::MissedFire { fire: utc("2024-01-14T03:00:00Z") } });
        // Rotated now: the 7 January fire is not replayed; the next is the future one.
        let rotated_at = now + TimeDelta::seconds(5);
        let after = rotated_at + TimeDelta::seconds(1);
        let fire = utc("2024-01-21T03:00:00Z");
        assert_eq!(
            next_due("job", Some(&schedule), None, Some(rotated_at), after),
            Due { at: fire, reason: DueReason::Scheduled { fire } }
        );
    }

    #[test]
    fn a_rotation_after_a_fire_settles_it_even_before_its_moment() {
        let schedule = weekly(Some(hours(2)));
        let fire = utc("2024-01-07T03:00:00Z");
        // `rotate JOB` at 03:00:01, before this fire's moment: the secret is newer than the fire, so the fire is
        // not run again; the next one is.
        let rotated_at = fire + TimeDelta::seconds(1);
        let due = next_due("job", Some(&schedule), None, Some(rotated_at), rotated_at);
        assert_eq!(due.reason, DueReason::Scheduled { fire: utc("2024-01-14T03:00:00Z") });
    }

    #[test]
    fn a_missed_fire_is_found_behind_a_fire_still_in_its_window() {
        // Down over the 7 January fire; back at 14 January 03:00:00, the start of that fire's window, before its
        // moment. The 7 January fire is missed and runs now; that rotation also settles the 14 January fire.
        let schedule = weekly(Some(hours(2)));
        let now = utc("2024-01-14T03:00:00Z");
        let due = next_due("job", Some(&schedule), None, Some(utc("2024-01-01T00:00:00Z")), now);
        assert_eq!(due.reason, DueReason::MissedFire { fire: utc("2024-01-07T03:00:00Z") });
        assert_eq!(due.at, now);
    }

    #[test]
    fn max_age_earlier_than_the_schedule_is_due_at_the_age_limit() {
        let monthly = Schedule::new("0 0 1 * *", None, None).expect("valid");
        let rotated_at = utc("2024-01-02T00:00:00Z");
        let age_limit_at = utc("2024-01-09T00:00:00Z");
        assert_eq!(
            next_due("job", Some(&monthly), Some(days(7)), Some(rotated_at), utc("2024-01-03T00:00:00Z")),
            Due { at: age_limit_at, reason: DueReason::MaxAge { age_limit_at } }
        );
        // A max_age later than the next fire changes nothing.
        let fire = utc("2024-02-01T00:00:00Z");
        assert_eq!(
            next_due("job", Some(&monthly), Some(days(60)), Some(rotated_at), utc("2024-01-03T00:00:00Z")),
            Due { at: fire, reason: DueReason::Scheduled { fire } }
        );
    }

    #[test]
    fn max_age_already_past_is_due_now_even_with_a_missed_fire() {
        let rotated_at = utc("2024-01-01T00:00:00Z");
        let now = utc("2024-02-01T00:00:00Z");
        let age_limit_at = utc("2024-01-31T00:00:00Z");
        let expected = Due { at: now, reason: DueReason::MaxAge { age_limit_at } };
        assert_eq!(next_due("job", Some(&weekly(None)), Some(days(30)), Some(rotated_at), now), expected);
        assert_eq!(next_due("job", None, Some(days(30)), Some(rotated_at), now), expected);
        // Reaching the limit exactly is reaching it.
        assert_eq!(next_due("job", None, Some(days(30)), Some(rotated_at), age_limit_at).at, age_limit_at);
    }

    #[test]
    fn without_a_schedule_max_age_alone_decides_and_without_either_never() {
        let rotated_at = utc("2024-01-01T00:00:00Z");
        let now = utc("2024-01-02T00:00:00Z");
        let age_limit_at = utc("2024-01-31T00:00:00Z");
        assert_eq!(
            next_due("job", None, Some(days(30)), Some(rotated_at), now),
            Due { at: age_limit_at, reason: DueReason::MaxAge { age_limit_at } }
        );
        let never = next_due("job", None, None, Some(rotated_at), now);
        assert_eq!(never, Due { at: DateTime::<Utc>::MAX_UTC, reason: DueReason::Unscheduled });
        assert_eq!(never.to_string(), "never due: no schedule and no max_age");
        // A max_age too large for the calendar is no limit at all, not a panic.
        assert_eq!(
            next_due("job", None, Some(Duration::MAX), Some(rotated_at), now).at,
            DateTime::<Utc>::MAX_UTC
        );
    }

    #[test]
    fn reasons_display_for_logs() {
        let fire = utc("2024-01-07T03:00:00Z");
        let due = Due { at: utc("2024-01-07T03:41:07.250Z"), reason: DueReason::Scheduled { fire } };
        assert_eq!(due.to_string(), "due 2024-01-07T03:41:07.250Z: the fire at 2024-01-07T03:00:00Z");
        assert_eq!(DueReason::NeverRotated.to_string(), "never rotated");
        assert_eq!(DueReason::MissedFire { fire }.to_string(), "missed the fire at 2024-01-07T03:00:00Z");
        assert_eq!(
            DueReason::MaxAge { age_limit_at: fire }.to_string(),
            "max_age reached at 2024-01-07T03:00:00Z"
        );
    }

    /// The rules of `next_due` read literally, by listing every fire: the reference the scans must agree with.
    /// `reach` must exceed the window plus the longest time between fires.
    fn by_the_rules(
        schedule: &Schedule,
        job: &str,
        rotated_at: DateTime<Utc>,
        now: DateTime<Utc>,
        reach: TimeDelta,
    ) -> Due {
        let window = TimeDelta::from_std(schedule.window().unwrap_or_default()).expect("window");
        let mut owed = vec![];
        let mut cursor = schedule.next_fire_after(rotated_at);
        while let Some(fire) = cursor.filter(|fire| *fire <= now + reach) {
            owed.push((fire, fire + jitter(job, fire, window)));
            cursor = schedule.next_fire_after(fire);
        }
        if let Some((fire, _)) = owed.iter().filter(|(_, at)| *at <= now).max() {
            return Due { at: now, reason: DueReason::MissedFire { fire: *fire } };
        }
        let (fire, at) =
            owed.iter().filter(|(_, at)| *at > now).min_by_key(|(_, at)| *at).expect("a fire ahead");
        Due { at: *at, reason: DueReason::Scheduled { fire: *fire } }
    }

    #[test]
    fn next_due_agrees_with_the_rules_read_literally() {
        let schedules = [
            // A window shorter than the time between fires, across the clocks going back.
            (
                Schedule::new("0 3 * * SUN", Some("Europe/Amsterdam"), Some(hours(2))).expect("valid"),
                TimeDelta::days(8),
            ),
            // Windows longer than the time between fires: moments of neighbouring fires interleave.
            (
                Schedule::new("*/10 * * * *", None, Some(Duration::from_secs(25 * 60))).expect("valid"),
                TimeDelta::hours(1),
            ),
            (Schedule::new("0 */4 * * *", None, Some(hours(6))).expect("valid"), TimeDelta::hours(11)),
        ];
        let base = utc("2024-10-26T22:00:00Z");
        for (schedule, reach) in &schedules {
            for job in ["a", "b"] {
                for step in 0..120 {
                    let now = base + TimeDelta::minutes(7 * step);
                    for back in [0, 1, 13, 26, 60, 300, 1500] {
                        let rotated_at = now - TimeDelta::minutes(back);
                        assert_eq!(
                            next_due(job, Some(schedule), None, Some(rotated_at), now),
                            by_the_rules(schedule, job, rotated_at, now, *reach),
                            "{schedule} {job} rotated_at {rotated_at} now {now}"
                        );
                    }
                }
            }
        }
    }
}
