//! `rotavault status [--json]`: for each job, its last rotation, age, next due time and state, read from store
//! metadata and the job state file. It reads values only to learn their metadata and prints none.

use super::output::{Output, outln};
use super::{CliError, exit};
use crate::config::Config;
use crate::runtime::Runtime;
use crate::schedule::{Clock, SystemClock};
pub use crate::status::JobStatus;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub async fn status(config: Config, json: bool) -> Result<u8, CliError> {
    let mut out = Output::stdout_buffered();
    if config.jobs.is_empty() {
        // Shown rather than refused: a person asking what rotavault does should hear "nothing", and why.
        if json {
            outln!(out, "[]");
            super::output::warn(&format!("{}: no job is defined", config.path.display()));
        } else {
            outln!(
                out,
                "{}: no job is defined; `rotavault check` and `rotavault run` refuse this config until one is",
                config.path.display()
            );
        }
        return Ok(out.reported(exit::OK));
    }
    let runtime = Runtime::build(config, Arc::new(SystemClock), CancellationToken::new()).await?;
    super::replicas::follow(&runtime).await?;
    let now = SystemClock.now();
    let all = crate::status::statuses(&runtime, now).await;
    if json {
        let text = serde_json::to_string_pretty(&all).map_err(|e| CliError::Failed(e.to_string()))?;
        outln!(out, "{text}");
    } else {
        print_table(&mut out, &all, now);
    }
    Ok(out.reported(exit::OK))
}

pub(super) fn print_table<W: std::io::Write>(out: &mut Output<W>, all: &[JobStatus], now: DateTime<Utc>) {
    outln!(
        out,
        "{:<24} {:<9} {:<21} {:>10} {:<21} {:<21}",
        "JOB",
        "STATE",
        "LAST ROTATION",
        "AGE",
        "NEXT DUE",
        "LAST VERIFY"
    );
    for s in all {
        let last = s.last_rotation.map(short).unwrap_or_else(|| "-".into());
        let age = s.age_seconds.map(|a| human(a.max(0))).unwrap_or_else(|| "-".into());
        let next = match s.next_due {
            Some(at) if at <= now => "now".to_owned(),
            Some(at) => short(at),
            None => "-".into(),
        };
        let verified = s.last_verify.map(short).unwrap_or_else(|| "-".into());
        outln!(out, "{:<24} {:<9} {:<21} {:>10} {:<21} {:<21}", s.job, s.state, last, age, next, verified);
    }
    for s in all {
        if let Some(error) = &s.last_error {
            outln!(out, "\n{}: {error}", s.job);
        }
        if let Some(action) = &s.action {
            outln!(out, "{}: {action}", s.job);
        }
        if let Some(blackout) = &s.blackout {
            outln!(out, "{}: next rotation {blackout}", s.job);
        }
        if let Some(hook) = &s.hook_failure {
            outln!(
                out,
                "{}: after rotation {}, a reload hook failed: {}",
                s.job,
                hook.rotation_id,
                hook.error
            );
        }
        for a in &s.failed_logins {
            outln!(
                out,
                "{}: account {} has {} consecutive failed or unanswered login(s) (rotavault stops at {})",
                s.job,
                a.account,
                a.consecutive,
                a.max
            );
        }
    }
}

fn short(at: DateTime<Utc>) -> String {
    // Digits pushed by hand: through `format!`, the two times of each row were two thirds of the table's cost at
    // 1,000 jobs.
    use chrono::{Datelike, Timelike};
    let (d, t) = (at.date_naive(), at.time());
    let mut text = String::with_capacity(20);
    push_digits(&mut text, d.year().unsigned_abs(), 4);
    for (separator, value) in
        [('-', d.month()), ('-', d.day()), (' ', t.hour()), (':', t.minute()), (':', t.second())]
    {
        text.push(separator);
        push_digits(&mut text, value, 2);
    }
    text.push('Z');
    text
}

/// `value` in decimal, zero-padded to `width` digits (more when it needs them).
fn push_digits(text: &mut String, value: u32, width: u32) {
    let digits = value.checked_ilog10().unwrap_or(0) + 1;
    for _ in digits..width {
        text.push('0');
    }
    for place in (0..digits).rev() {
        text.push(char::from(b'0' + (value / 10u32.pow(place) % 10) as u8));
    }
}

fn human(seconds: i64) -> String {
    let s = seconds as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86400, s % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_the_table_are_utc_to_the_second_with_a_z() {
        let at =
            DateTime::parse_from_rfc3339("2026-03-04T05:06:07.891+02:00").expect("time").with_timezone(&Utc);
        assert_eq!(short(at), "2026-03-04 03:06:07Z");
        let late = DateTime::parse_from_rfc3339("2999-12-31T23:59:59Z").expect("time").with_timezone(&Utc);
        assert_eq!(short(late), "2999-12-31 23:59:59Z");
        let early = DateTime::parse_from_rfc3339("0012-01-02T00:00:00Z").expect("time").with_timezone(&Utc);
        assert_eq!(short(early), "0012-01-02 00:00:00Z");
        assert_eq!(human(59), "59s");
        assert_eq!(human(3 * 86400 + 7200 + 5), "3d2h");
    }
}
