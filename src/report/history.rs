//! A job's history from the audit file: counts of rotations, failures and triggers within the window, and the
//! moments its secret was replaced, from which [`age_series`] draws the secret's age over time.
//!
//! The file is read once, line by line, whatever its size: only counts and the replacement times of the jobs
//! asked about are kept. A line that is not an event rotavault wrote (cut off by a crash, edited by hand) is counted
//! and skipped; an event type this version does not know (a newer rotavault's) is counted under its name.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::Path;

/// One job's events within the window.
#[derive(Clone, Debug, Default, Serialize)]
pub struct History {
    /// Whether the audit file was read; `false`: no history is recorded, and the counts mean nothing.
    pub recorded: bool,
    /// New values made current: `rotated` and `completed` events.
    pub rotations: u64,
    pub imports: u64,
    /// Rotations that did not make a value current: `failed`, `refused`, `verify_failed`, `diverged`, `blocked`,
    /// `promote_incomplete`.
    pub failures: u64,
    /// Every event by its short name (`rotated`, `age_warning`, and names this version does not know).
    pub events: BTreeMap<String, u64>,
    /// What started the rotations and failures: `manual`, `due: max_age reached`, ...
    pub triggers: BTreeMap<String, u64>,
    /// When the secret was replaced (rotated, completed, imported) within the window, in file order.
    #[serde(skip)]
    pub resets: Vec<DateTime<Utc>>,
    /// The last replacement before the window, which gives the age at its start.
    #[serde(skip)]
    pub reset_before: Option<DateTime<Utc>>,
}

/// The audit file, read for the jobs of a report.
#[derive(Debug, Default)]
pub struct AuditHistory {
    pub jobs: HashMap<String, History>,
    pub recorded: bool,
    pub lines: u64,
    pub malformed: u64,
    /// Why the file could not be read (not its absence: that is "not recorded").
    pub error: Option<String>,
}

/// The fields of a CloudEvents line the report needs; everything else is ignored.
#[derive(Deserialize)]
struct Line {
    #[serde(rename = "type")]
    kind: String,
    time: String,
    subject: Option<String>,
    data: Option<LineData>,
}

#[derive(Deserialize)]
struct LineData {
    job: Option<String>,
    trigger: Option<String>,
}

const FAILURES: [&str; 6] =
    ["failed", "refused", "verify_failed", "diverged", "blocked", "promote_incomplete"];

/// Reads the audit file at `path` for `jobs`, counting events from `start` on. A missing file (or none
/// configured) is history not recorded, not an error.
pub fn read_audit(path: Option<&Path>, jobs: &[&str], start: DateTime<Utc>) -> AuditHistory {
    let mut history = AuditHistory::default();
    let Some(path) = path else { return history };
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return history,
        Err(e) => {
            history.error = Some(format!("the audit file `{}` cannot be read: {e}", path.display()));
            return history;
        }
    };
    let recorded = History { recorded: true, ..History::default() };
    history.jobs = jobs.iter().map(|j| ((*j).to_owned(), recorded.clone())).collect();
    history.recorded = true;
    let mut reader = std::io::BufReader::new(file);
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        match reader.read_until(b'\n', &mut buffer) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                history.error =
                    Some(format!("the audit file `{}` could not be read to its end: {e}", path.display()));
                break;
            }
        }
        if buffer.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        history.lines += 1;
        if !history.add(&buffer, start) {
            history.malformed += 1;
        }
    }
    history
}

impl AuditHistory {
    /// Counts one line; `false` when it is not an event.
    fn add(&mut self, line: &[u8], start: DateTime<Utc>) -> bool {
        let Ok(line) = serde_json::from_slice::<Line>(line) else { return false };
        let Ok(time) = DateTime::parse_from_rfc3339(&line.time) else { return false };
        let time = time.with_timezone(&Utc);
        let Some(name) =
            line.kind.strip_prefix(crate::events::TYPE_PREFIX).and_then(|t| t.rsplit('.').next())
        else {
            return false;
        };
        let data = line.data.unwrap_or(LineData { job: None, trigger: None });
        let Some(job) = data.job.or(line.subject) else { return false };
        // Events of jobs not in the report (removed from the config, or not asked for) are well-formed: skipped.
        let Some(history) = self.jobs.get_mut(&job) else { return true };
        let reset = matches!(name, "rotated" | "completed" | "imported");
        if time < start {
            if reset {
                history.reset_before = history.reset_before.max(Some(time));
            }
            return true;
        }
        *history.events.entry(name.to_owned()).or_default() += 1;
        match name {
            "rotated" | "completed" => history.rotations += 1,
            "imported" => history.imports += 1,
            _ if FAILURES.contains(&name) => history.failures += 1,
            _ => {}
        }
        if reset {
            history.resets.push(time);
        }
        if let Some(trigger) = data.trigger {
            *history.triggers.entry(trigger_kind(&trigger)).or_default() += 1;
        }
        true
    }
}

/// A trigger without its moment (`due: the fire at 2026-...` → `due: the fire`), so that triggers group.
fn trigger_kind(trigger: &str) -> String {
    trigger.split(" at ").next().unwrap_or(trigger).trim().to_owned()
}

/// A point of the age chart: the secret's age at `at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct AgePoint {
    pub at: DateTime<Utc>,
    pub age_seconds: i64,
}

/// The secret's age from `start` to `now`: zero at each replacement, growing linearly between them; a drop is two
/// points at the same moment. `rotated_at` (what the stores say) stands in for a replacement the audit file lacks
/// (no file, or events lost), so that the chart never contradicts the age shown beside it. Before the first
/// replacement known the age is unknown and nothing is drawn.
pub fn age_series(
    history: &History,
    rotated_at: Option<DateTime<Utc>>,
    start: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<AgePoint> {
    let mut resets: Vec<DateTime<Utc>> = history.resets.iter().copied().chain(history.reset_before).collect();
    // The event comes after the value's rotated-at (stage, then promote): an event at or after it is its record.
    if let Some(at) = rotated_at
        && !resets.iter().any(|r| *r >= at)
    {
        resets.push(at);
    }
    resets.sort_unstable();
    resets.dedup();
    let age =
        |at: DateTime<Utc>, from: DateTime<Utc>| AgePoint { at, age_seconds: (at - from).num_seconds() };
    let mut last = resets.iter().copied().filter(|r| *r <= start).max();
    let mut points = Vec::new();
    if let Some(from) = last {
        points.push(age(start, from));
    }
    for &reset in resets.iter().filter(|r| **r > start && **r <= now) {
        if let Some(from) = last {
            points.push(age(reset, from));
        }
        points.push(AgePoint { at: reset, age_seconds: 0 });
        last = Some(reset);
    }
    if let Some(from) = last {
        points.push(age(now, from));
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn day(n: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().expect("date") + chrono::Duration::days(n)
    }

    fn line(kind: &str, at: DateTime<Utc>, job: &str, trigger: Option<&str>) -> String {
        let mut data = serde_json::json!({ "job": job });
        if let Some(t) = trigger {
            data["trigger"] = t.into();
        }
        serde_json::json!({
            "specversion": "1.0", "id": "x", "source": "rotavault://h/c.toml",
            "type": format!("io.rotavault.{kind}"), "time": at.to_rfc3339(), "subject": job, "data": data,
        })
        .to_string()
    }

    #[test]
    fn the_age_resets_at_each_replacement_and_grows_between_them() {
        let history = History {
            recorded: true,
            resets: vec![day(10), day(40)],
            reset_before: Some(day(-5)),
            ..History::default()
        };
        let points: Vec<(i64, i64)> = age_series(&history, Some(day(40)), day(0), day(90))
            .iter()
            .map(|p| ((p.at - day(0)).num_days(), p.age_seconds / 86_400))
            .collect();
        assert_eq!(points, [(0, 5), (10, 15), (10, 0), (40, 30), (40, 0), (90, 50)]);
    }

    #[test]
    fn without_history_the_age_comes_from_the_stores_rotated_at() {
        let points = age_series(&History::default(), Some(day(30)), day(0), day(90));
        let days: Vec<(i64, i64)> =
            points.iter().map(|p| ((p.at - day(0)).num_days(), p.age_seconds / 86_400)).collect();
        assert_eq!(days, [(30, 0), (90, 60)], "nothing is drawn before the age is known");
        let old = age_series(&History::default(), Some(day(-100)), day(0), day(90));
        assert_eq!(old.first().map(|p| p.age_seconds / 86_400), Some(100), "a secret older than the window");
        assert!(age_series(&History::default(), None, day(0), day(90)).is_empty(), "no secret, no line");
    }

    #[test]
    fn the_audit_file_is_counted_per_job_within_the_window_and_a_bad_line_is_counted_not_fatal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let lines = [
            line("rotation.rotated", day(-10), "api", Some("manual")),
            line("rotation.rotated", day(5), "api", Some("due: max_age reached at 2026-01-06T00:00:00Z")),
            line("rotation.failed", day(6), "api", Some("manual")),
            "{\"type\": \"io.rotavault.rotation.rot".to_owned(),
            line("job.imported", day(7), "admin", None),
            line("rotation.drifted", day(8), "api", None),
            line("rotation.rotated", day(9), "gone", Some("manual")),
            "not json at all".to_owned(),
        ];
        std::fs::write(&path, lines.join("\n") + "\n\n").expect("write");
        let read = read_audit(Some(&path), &["api", "admin"], day(0));
        assert!(read.recorded);
        assert_eq!((read.lines, read.malformed), (8, 2));
        let api = &read.jobs["api"];
        assert_eq!((api.rotations, api.failures, api.imports), (1, 1, 0));
        assert_eq!(api.triggers.get("due: max_age reached"), Some(&1));
        assert_eq!(api.triggers.get("manual"), Some(&1), "the rotation before the window is not counted");
        assert_eq!(
            api.events.get("drifted"),
            Some(&1),
            "an event type this version does not know is counted"
        );
        assert_eq!(api.reset_before, Some(day(-10)));
        assert_eq!(api.resets, [day(5)]);
        assert_eq!(read.jobs["admin"].imports, 1);
    }

    #[test]
    fn a_missing_audit_file_or_none_configured_is_history_not_recorded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = read_audit(Some(&dir.path().join("nope.jsonl")), &["api"], day(0));
        assert!(!missing.recorded && missing.error.is_none());
        assert!(!read_audit(None, &["api"], day(0)).recorded);
    }
}
