//! `rotavault report`: whether each job holds `[policy]` and its own rules, with the evidence, for a security team
//! to file. The model lives here; `verdict.rs` decides each check, `history.rs` reads the audit file and draws the
//! age series, `render.rs` writes table, CSV and Markdown, `html.rs` one self-contained HTML page.
//!
//! A report is built only from what is already recorded: `status::statuses` (one batch read per store), the job
//! state files, one `previous` metadata read per store of a job rotated at least twice, and the audit file read
//! once. It logs in nowhere and writes nothing, and no type here holds a secret: the one value a `previous` read
//! returns is dropped where it is read (see `cli::report`).

mod history;
mod html;
mod render;
mod verdict;

pub use history::{AgePoint, AuditHistory, History, age_series, read_audit};
pub use render::{Format, render};
pub use verdict::{Inputs, PreviousSlot, assess};

use crate::config::GlobalPolicy;
use crate::rotation::state::DriftMark;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// The whole report, as `--format json` prints it.
#[derive(Debug, Serialize)]
pub struct Report {
    pub generated_at: DateTime<Utc>,
    /// The history window as given (`90d`), and where it starts.
    pub since: String,
    pub window_start: DateTime<Utc>,
    pub policy: PolicyEvidence,
    pub audit: AuditEvidence,
    pub summary: Summary,
    pub jobs: Vec<JobReport>,
    /// What made the evidence incomplete without failing the report (malformed audit lines, unreadable files).
    pub warnings: Vec<String>,
}

impl Report {
    /// Whether every job is compliant; `unknown` is not.
    pub fn all_compliant(&self) -> bool {
        self.jobs.iter().all(|j| j.verdict == Verdict::Compliant)
    }
}

/// `[policy]` as the report holds jobs to it.
#[derive(Debug, Serialize)]
pub struct PolicyEvidence {
    pub max_age: Option<String>,
    pub max_age_seconds: Option<u64>,
    pub min_length: Option<usize>,
    /// The forbidden characters, in order.
    pub forbidden: String,
    pub min_strength_bits: Option<u32>,
}

impl PolicyEvidence {
    pub fn of(policy: &GlobalPolicy) -> Self {
        Self {
            max_age: policy.max_age.map(crate::config::display_duration),
            max_age_seconds: policy.max_age.map(|d| d.as_secs()),
            min_length: policy.min_length,
            forbidden: policy.forbidden.iter().collect(),
            min_strength_bits: policy.min_strength_bits,
        }
    }
}

/// What the audit file gave.
#[derive(Debug, Default, Serialize)]
pub struct AuditEvidence {
    /// `[audit] path`; `None`: events are not recorded in a file, so there is no history.
    pub path: Option<String>,
    /// Whether history was read; when not, the charts show only what the stores say.
    pub recorded: bool,
    pub lines: u64,
    /// Lines that are not an event rotavault wrote (cut off, edited): counted, skipped.
    pub malformed_lines: u64,
    pub error: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub jobs: usize,
    pub compliant: usize,
    pub non_compliant: usize,
    pub unknown: usize,
}

impl Summary {
    pub fn of(jobs: &[JobReport]) -> Self {
        let count = |v: Verdict| jobs.iter().filter(|j| j.verdict == v).count();
        Self {
            jobs: jobs.len(),
            compliant: count(Verdict::Compliant),
            non_compliant: count(Verdict::NonCompliant),
            unknown: count(Verdict::Unknown),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Compliant,
    /// A check failed: each one is named in `reasons`.
    NonCompliant,
    /// No check failed, and some could not be made (a store did not answer): not compliant for the exit code.
    Unknown,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Self::Compliant => "compliant",
            Self::NonCompliant => "non_compliant",
            Self::Unknown => "unknown",
        }
    }

    /// A failed check outweighs one that could not be made: what failed is known.
    pub fn of(checks: &[Check]) -> Self {
        if checks.iter().any(|c| c.outcome == Outcome::Fail) {
            Self::NonCompliant
        } else if checks.iter().any(|c| c.outcome == Outcome::Unknown) {
            Self::Unknown
        } else {
            Self::Compliant
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
    Unknown,
}

/// One rule held against one job, and what was found.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    /// Stable, for scripts: `max_age`, `stores_in_step`, `previous_present`, `ownership`, `not_diverged`,
    /// `not_blocked`, `settled`, `no_drift`, `schedule_keeps_max_age`, `recently_verified`, `secret_rules`,
    /// `strength`.
    pub name: &'static str,
    pub outcome: Outcome,
    pub detail: String,
}

/// One job's verdict and everything it rests on.
#[derive(Debug, Serialize)]
pub struct JobReport {
    pub job: String,
    pub target: String,
    pub verdict: Verdict,
    /// Each check that failed or could not be made, as `name: detail`.
    pub reasons: Vec<String>,
    pub checks: Vec<Check>,
    pub evidence: Evidence,
    pub history: History,
    /// The secret's age over the window, for the HTML chart.
    #[serde(skip)]
    pub age_series: Vec<AgePoint>,
}

/// The facts behind a job's checks, never a secret.
#[derive(Debug, Serialize)]
pub struct Evidence {
    /// As `status` names it: `ok`, `pending`, `failed`, `diverged`, `blocked`, `drifted`, `never`.
    pub state: &'static str,
    /// `rotavault` (it sets the secret), or `manual` (`apply = "manual"`: a person does, and imports it).
    pub apply: &'static str,
    /// The `max_age` the job is held to: its own or `[policy]`'s, the shorter.
    pub max_age: Option<String>,
    pub max_age_seconds: Option<u64>,
    pub age_seconds: Option<i64>,
    /// When the value current now was made (the oldest current among the stores).
    pub last_rotation: Option<DateTime<Utc>>,
    /// The last rotation the job's state recorded as successful.
    pub last_success: Option<DateTime<Utc>>,
    /// The last time the target accepted the stored current value.
    pub last_verify: Option<DateTime<Utc>>,
    /// What verified it (`heartbeat`, `rotation`, ...).
    pub last_verify_by: Option<String>,
    pub next_due: Option<DateTime<Utc>>,
    pub generation: Option<u64>,
    pub stores: Vec<StoreEvidence>,
    pub diverged: Option<String>,
    pub drift: Option<DriftMark>,
    pub last_error: Option<String>,
    /// The rules generated secrets meet, in words.
    pub secret_rules: String,
    /// The lower bound of a generated secret's strength.
    pub strength_bits: u32,
    pub min_strength_bits: Option<u32>,
}

/// One store of a job: its current slot's metadata, pending, and previous slot.
#[derive(Debug, Serialize)]
pub struct StoreEvidence {
    pub store: String,
    pub backend: &'static str,
    pub name: String,
    pub rotation_id: Option<String>,
    pub generation: Option<u64>,
    pub rotated_at: Option<DateTime<Utc>>,
    pub pending_rotation_id: Option<String>,
    pub previous: PreviousSlot,
    pub error: Option<String>,
}

/// `at` in the one shape every format prints: RFC 3339 UTC to the second.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A number of seconds the way people read ages: `3d 4h`, `5h 2m`, `40s`.
pub fn human_age(seconds: i64) -> String {
    let s = seconds.max(0) as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}
