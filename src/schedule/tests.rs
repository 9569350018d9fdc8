//! Tests of `Schedule`: parsing and its messages, fires in UTC and across changes of clocks, longest intervals.

use super::*;

fn utc(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).expect("test timestamp").with_timezone(&Utc)
}

fn hours(n: u64) -> Duration {
    Duration::from_secs(n * 3600)
}

fn error(cron: &str, timezone: Option<&str>) -> String {
    Schedule::new(cron, timezone, None).expect_err("the schedule should be refused").to_string()
}

#[test]
fn five_fields_fire_at_minute_and_hour_in_utc() {
    let schedule = Schedule::new("0 3 * * SUN", None, None).expect("valid");
    // 2024-01-01 is a Monday.
    let fire = schedule.next_fire_after(utc("2024-01-01T00:00:00Z"));
    assert_eq!(fire, Some(utc("2024-01-07T03:00:00Z")));
    // Strictly after: a fire is not after itself, nor after a moment inside its second.
    assert_eq!(schedule.next_fire_after(utc("2024-01-07T03:00:00Z")), Some(utc("2024-01-14T03:00:00Z")));
    assert_eq!(schedule.next_fire_after(utc("2024-01-07T03:00:00.5Z")), Some(utc("2024-01-14T03:00:00Z")));
    assert_eq!(schedule.next_fire_after(utc("2024-01-07T02:59:59.5Z")), Some(utc("2024-01-07T03:00:00Z")));
    // At or before: a fire is at or before itself.
    assert_eq!(
        schedule.last_fire_at_or_before(utc("2024-01-07T03:00:00Z")),
        Some(utc("2024-01-07T03:00:00Z"))
    );
    assert_eq!(
        schedule.last_fire_at_or_before(utc("2024-01-07T02:59:59Z")),
        Some(utc("2023-12-31T03:00:00Z"))
    );
}

#[test]
fn six_fields_put_seconds_first() {
    let schedule = Schedule::new("30 0 3 * * *", None, None).expect("valid");
    assert_eq!(schedule.next_fire_after(utc("2024-01-01T00:00:00Z")), Some(utc("2024-01-01T03:00:30Z")));
    let every_ten_seconds = Schedule::new("*/10 * * * * *", None, None).expect("valid");
    assert_eq!(
        every_ten_seconds.next_fire_after(utc("2024-01-01T00:00:01Z")),
        Some(utc("2024-01-01T00:00:10Z"))
    );
}

#[test]
fn days_and_months_can_be_named_in_any_case() {
    let schedule = Schedule::new("0 9 * jan,JUL Mon-Fri", None, None).expect("valid");
    // Friday 5 January → Monday 8 January.
    assert_eq!(schedule.next_fire_after(utc("2024-01-05T12:00:00Z")), Some(utc("2024-01-08T09:00:00Z")));
    // End of January → Monday 1 July.
    assert_eq!(schedule.next_fire_after(utc("2024-01-31T12:00:00Z")), Some(utc("2024-07-01T09:00:00Z")));
}

#[test]
fn a_wrong_number_of_fields_says_what_is_expected() {
    assert_eq!(
        error("0 3 * *", None),
        "`0 3 * *` is not a cron expression: expected 5 fields (minute hour day-of-month month day-of-week) \
         or 6 with seconds first"
    );
    for cron in ["", "   ", "@weekly", "0 0 3 * * SUN 2024"] {
        let message = error(cron, None);
        assert!(
            message.contains("expected 5 fields") && message.contains(&format!("`{}`", cron.trim())),
            "{cron:?}: {message}"
        );
    }
}

#[test]
fn a_bad_value_names_its_field_and_what_that_field_accepts() {
    assert_eq!(
        error("0 25 * * *", None),
        "`0 25 * * *` is not a cron expression: the hour field `25` is not valid: expected 0-23, as a single value, \
         `*`, a list `a,b`, a range `a-b` or a step `*/n` or `a-b/n`"
    );
    for (cron, field, value, expected) in [
        ("61 * * * *", "minute", "61", "0-59"),
        ("0 0 32 * *", "day-of-month", "32", "1-31"),
        ("0 0 * 13 *", "month", "13", "1-12 or JAN-DEC"),
        ("0 0 * * 8", "day-of-week", "8", "0-7 (0 and 7 are Sunday) or SUN-SAT"),
        ("0 3 * * SUNDAY", "day-of-week", "SUNDAY", "SUN-SAT"),
        ("0 0 5-2/x * *", "day-of-month", "5-2/x", "1-31"),
        ("60 0 3 * * *", "second", "60", "0-59"),
        ("x 0 3 * * *", "second", "x", "0-59"),
        // croner alone would read these names as numbers anywhere: `0 MON * * *` as "at 01:00".
        ("0 MON * * *", "hour", "MON", "0-23"),
        ("0 0 * * JAN", "day-of-week", "JAN", "SUN-SAT"),
        ("0 0 * SUN *", "month", "SUN", "JAN-DEC"),
    ] {
        let message = error(cron, None);
        assert!(
            message.starts_with(&format!(
                "`{cron}` is not a cron expression: the {field} field `{value}` is not valid: expected"
            )) && message.contains(expected),
            "{cron}: {message}"
        );
    }
}

#[test]
fn a_date_that_never_exists_is_refused() {
    assert_eq!(
        error("0 0 30 2 *", None),
        "`0 0 30 2 *` never fires: no date matches its day-of-month and month fields; expected a day that exists \
         in the month, such as `0 0 28 2 *` rather than `0 0 30 2 *`"
    );
    // A leap day exists, every four years.
    let leap_day = Schedule::new("0 0 29 2 *", None, None).expect("valid");
    assert_eq!(leap_day.next_fire_after(utc("2024-03-01T00:00:00Z")), Some(utc("2028-02-29T00:00:00Z")));
}

#[test]
fn an_unknown_time_zone_says_what_is_expected() {
    assert_eq!(
        error("0 3 * * SUN", Some("Europe/Amstredam")),
        "`Europe/Amstredam` is not a time zone: expected an IANA name such as `Europe/Amsterdam` or `UTC`"
    );
    assert!(error("0 3 * * SUN", Some("CEST+1")).contains("is not a time zone"));
}

#[test]
fn a_window_of_more_than_a_year_is_refused() {
    let message =
        Schedule::new("0 3 * * SUN", None, Some(hours(24 * 400))).expect_err("too long").to_string();
    assert_eq!(
        message,
        "a window of 400 days is too long: expected at most 366 days, and less than the time between fires"
    );
}

#[test]
fn describe_shows_expression_zone_and_window() {
    let amsterdam = Schedule::new("0 3 * * SUN", Some("Europe/Amsterdam"), Some(hours(2))).expect("valid");
    assert_eq!(amsterdam.describe(), "0 3 * * SUN (Europe/Amsterdam), window 2h");
    assert_eq!(amsterdam.to_string(), amsterdam.describe());
    // Whitespace is normalised; no zone is UTC; a zero window is no window.
    let utc = Schedule::new("  */10   * * * *\t", None, Some(Duration::ZERO)).expect("valid");
    assert_eq!(utc.describe(), "*/10 * * * * (UTC)");
    assert_eq!(utc.window(), None);
}

#[test]
fn a_weekly_fire_follows_amsterdam_clock_changes() {
    // 03:00 on Sundays in Amsterdam: 02:00 UTC in winter (CET), 01:00 UTC in summer (CEST). The clocks go forward
    // at 02:00 on 31 March 2024 and back at 03:00 on 27 October 2024: both Sundays, so 03:00 itself is an hour
    // after each change.
    let schedule = Schedule::new("0 3 * * SUN", Some("Europe/Amsterdam"), None).expect("valid");
    let fires_after = |from: &str| {
        let mut fires = vec![];
        let mut t = utc(from);
        for _ in 0..3 {
            t = schedule.next_fire_after(t).expect("fires");
            fires.push(t);
        }
        fires
    };
    assert_eq!(
        fires_after("2024-03-20T00:00:00Z"),
        [utc("2024-03-24T02:00:00Z"), utc("2024-03-31T01:00:00Z"), utc("2024-04-07T01:00:00Z")]
    );
    assert_eq!(
        fires_after("2024-10-15T00:00:00Z"),
        [utc("2024-10-20T01:00:00Z"), utc("2024-10-27T02:00:00Z"), utc("2024-11-03T02:00:00Z")]
    );
}

#[test]
fn a_fixed_time_in_a_gap_fires_after_it_and_in_an_overlap_fires_once() {
    let schedule = Schedule::new("30 2 * * *", Some("Europe/Amsterdam"), None).expect("valid");
    // 02:30 does not exist on 31 March 2024: the fire is the first instant after the gap, 03:00 CEST.
    assert_eq!(schedule.next_fire_after(utc("2024-03-30T12:00:00Z")), Some(utc("2024-03-31T01:00:00Z")));
    // 02:30 happens twice on 27 October 2024 (00:30 and 01:30 UTC): the fire is the first, only.
    assert_eq!(schedule.next_fire_after(utc("2024-10-26T12:00:00Z")), Some(utc("2024-10-27T00:30:00Z")));
    assert_eq!(schedule.next_fire_after(utc("2024-10-27T00:30:00Z")), Some(utc("2024-10-28T01:30:00Z")));
}

/// `next_due` walks fires both ways; a year of clock changes must not make the two directions disagree.
#[test]
fn fires_agree_forwards_and_backwards_across_a_year_of_clock_changes() {
    for (cron, zone, fires_in_2024) in [
        ("30 2 * * *", "Europe/Amsterdam", 366),
        ("0 3 * * SUN", "Europe/Amsterdam", 52),
        ("*/30 * * * *", "Europe/Amsterdam", 366 * 48),
        ("15 1 * * *", "America/New_York", 366),
    ] {
        let schedule = Schedule::new(cron, Some(zone), None).expect("valid");
        let end = utc("2025-01-01T00:00:00Z");
        let mut previous =
            schedule.last_fire_at_or_before(utc("2023-12-31T23:59:59Z")).expect("fired before");
        let mut count = 0;
        while let Some(fire) = schedule.next_fire_after(previous).filter(|fire| *fire < end) {
            assert!(fire > previous, "{cron} {zone}: {fire} after {previous}");
            assert_eq!(schedule.last_fire_at_or_before(fire), Some(fire), "{cron} {zone}");
            assert_eq!(schedule.fire_before(fire), Some(previous), "{cron} {zone}: before {fire}");
            let between = previous + (fire - previous) / 2;
            assert_eq!(schedule.next_fire_after(between), Some(fire), "{cron} {zone}");
            assert_eq!(schedule.last_fire_at_or_before(between), Some(previous), "{cron} {zone}");
            previous = fire;
            count += 1;
        }
        assert_eq!(count, fires_in_2024, "{cron} {zone}");
    }
}

#[test]
fn longest_interval_of_a_weekly_schedule_is_a_week_plus_the_window() {
    let weekly = Schedule::new("0 3 * * SUN", None, Some(hours(2))).expect("valid");
    assert_eq!(weekly.longest_interval(utc("2024-01-01T00:00:00Z")), hours(7 * 24 + 2));
    // In real time, the week the clocks go back lasts an hour longer.
    let amsterdam = Schedule::new("0 3 * * SUN", Some("Europe/Amsterdam"), None).expect("valid");
    assert_eq!(amsterdam.longest_interval(utc("2024-01-01T00:00:00Z")), hours(7 * 24 + 1));
}

#[test]
fn longest_interval_of_a_monthly_schedule_is_31_days() {
    let monthly = Schedule::new("0 0 1 * *", None, None).expect("valid");
    // From mid-February, so the answer cannot come from the first gap alone.
    assert_eq!(monthly.longest_interval(utc("2024-02-15T00:00:00Z")), hours(31 * 24));
}

#[test]
fn longest_interval_finds_the_gap_after_many_dense_fires() {
    // Every minute in January: 44,640 fires, then eleven months without one. The gap from 31 January 2024 23:59
    // to 1 January 2025 (2024 is a leap year) lies beyond the fires measured one by one.
    let january = Schedule::new("* * * 1 *", None, None).expect("valid");
    assert_eq!(
        january.longest_interval(utc("2024-01-01T00:00:00Z")),
        hours(335 * 24) + Duration::from_secs(60)
    );
    let every_ten_minutes = Schedule::new("*/10 * * * *", None, None).expect("valid");
    assert_eq!(every_ten_minutes.longest_interval(utc("2024-01-01T00:00:00Z")), Duration::from_secs(600));
}

#[test]
fn a_leap_day_schedule_is_four_years_between_fires_whatever_the_date() {
    let leap_day = Schedule::new("0 0 29 2 *", None, None).expect("valid");
    let four_years = hours((3 * 365 + 366) * 24);
    // From a date whose two years hold no 29 February, the gap it falls in still counts.
    for from in ["2024-01-01T00:00:00Z", "2026-01-05T12:00:00Z", "2027-06-01T00:00:00Z"] {
        assert_eq!(leap_day.longest_interval(utc(from)), four_years, "from {from}");
        assert_eq!(
            leap_day.longest_interval_over(utc(from), hours(730 * 24)),
            Some(four_years),
            "from {from}"
        );
    }
}

/// The schedules the cheap check must agree with the measurement on: DST zones, months of every length, dense
/// fires with one gap, the leap day, windows, weekends, seconds.
const COMPARED: &[(&str, Option<&str>, Option<u64>)] = &[
    ("0 3 * * SUN", Some("Europe/Amsterdam"), Some(2)),
    ("0 3 * * SUN", None, None),
    ("0 0 1 * *", None, None),
    ("0 0 31 * *", None, None),
    ("0 12 1 */3 *", Some("America/New_York"), Some(24)),
    ("* 0-22 * * *", None, None),
    ("* * * 1 *", None, None),
    ("*/10 * * * *", Some("America/New_York"), None),
    ("0 0 29 2 *", None, None),
    ("0 3 * * *", None, Some(12)),
    ("0 3 * * SUN", Some("Europe/Amsterdam"), Some(6 * 24)),
    ("30 2 * * *", Some("Europe/Amsterdam"), None),
    ("30 1 * * *", Some("Australia/Lord_Howe"), None),
    ("0 9 * * MON-FRI", Some("Europe/London"), Some(1)),
    ("0 0 12 * * SAT,SUN", None, None),
];

#[test]
fn the_cheap_check_agrees_with_the_measured_longest_interval() {
    let limits =
        [1, 2, 6, 13, 24, 25, 48, 72, 73, 7 * 24, 7 * 24 + 1, 8 * 24, 9 * 24, 31 * 24, 62 * 24, 92 * 24];
    let limits = limits.into_iter().map(hours).chain([hours(366 * 24), hours(730 * 24)]);
    let limits: Vec<Duration> = limits.collect();
    for &(cron, zone, window) in COMPARED {
        let schedule = Schedule::new(cron, zone, window.map(hours)).expect("valid");
        for from in ["2024-01-01T00:00:00Z", "2025-03-30T00:30:00Z", "2026-12-05T13:00:00Z"] {
            let from = utc(from);
            let longest = schedule.longest_interval(from);
            let context = format!("{cron} {zone:?} window {window:?}h from {from}: longest {longest:?}");
            // Exactly at the longest interval it fits; a second less, half, or any shorter limit does not.
            assert_eq!(schedule.longest_interval_over(from, longest), None, "{context}");
            let second_less = longest - Duration::from_secs(1);
            assert_eq!(schedule.longest_interval_over(from, second_less), Some(longest), "{context}");
            assert_eq!(schedule.longest_interval_over(from, longest / 2), Some(longest), "{context}");
            for &limit in &limits {
                let expected = (longest > limit).then_some(longest);
                assert_eq!(
                    schedule.longest_interval_over(from, limit),
                    expected,
                    "{context}, limit {limit:?}"
                );
            }
        }
    }
}

#[test]
fn remembered_fires_answer_exactly_what_croner_answers_across_changes_of_clocks() {
    let schedules = [
        ("0 3 * * *", "Europe/Amsterdam"),
        ("30 2 * * *", "Europe/Amsterdam"),
        ("*/10 1-3 * * *", "America/New_York"),
        ("0 1-3 * * SUN", "Europe/London"),
        ("15 0 1 * *", "UTC"),
    ];
    // Four days around each change of clocks in 2024, every 47 minutes: the memo is asked about gaps it has
    // learnt (hits) and gaps it has not (misses) alike.
    let periods =
        [("2024-03-29T00:00:00Z", "2024-04-02T00:00:00Z"), ("2024-10-25T00:00:00Z", "2024-10-29T00:00:00Z")];
    for (cron, zone) in schedules {
        let memo = Schedule::new(cron, Some(zone), None).expect("valid");
        let mut hits = 0;
        for (from, to) in periods {
            let (mut t, end) = (utc(from), utc(to));
            while t < end {
                hits += usize::from(memo.gaps.around(t.trunc_subsecs(0)).is_some());
                assert_eq!(
                    memo.next_fire_after(t),
                    memo.find_next_after(t),
                    "{cron} ({zone}) next after {t}"
                );
                assert_eq!(
                    memo.last_fire_at_or_before(t),
                    memo.find_last_at_or_before(t),
                    "{cron} ({zone}) last at or before {t}"
                );
                if let Some(fire) = memo.find_next_after(t) {
                    assert_eq!(
                        memo.fire_before(fire),
                        memo.find_before(fire),
                        "{cron} ({zone}) before {fire}"
                    );
                }
                t += chrono::TimeDelta::minutes(47) + chrono::TimeDelta::milliseconds(250);
            }
        }
        assert!(hits > 0, "{cron} ({zone}): the memo never answered");
    }
}
