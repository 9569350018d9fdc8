//! One test per reason a job is not compliant, each from a compliant job changed in one place.

use super::*;
use crate::report::Outcome;
use crate::rotation::state::{DivergedMark, DriftMark, Verified};
use crate::status::StoreStatus;
use chrono::{DateTime, TimeZone, Utc};
use std::collections::BTreeSet;

const DAY: i64 = 86_400;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 6, 0, 0, 0).single().expect("date")
}

fn store(name: &str, generation: u64, rotation: &str) -> StoreStatus {
    StoreStatus {
        store: name.into(),
        backend: "file",
        name: format!("autotask/{name}"),
        rotation_id: Some(rotation.into()),
        rotated_at: Some(now() - chrono::Duration::days(10)),
        generation: Some(generation),
        pending_rotation_id: None,
        error: None,
        error_kind: None,
    }
}

/// A job rotated 10 days ago into two stores, at generation 3, next due in 10 days, with a 30-day max_age.
fn status() -> JobStatus {
    JobStatus {
        job: "api".into(),
        state: "ok",
        target: "autotask".into(),
        last_rotation: Some(now() - chrono::Duration::days(10)),
        manual: false,
        last_verify: Some(now() - chrono::Duration::hours(1)),
        drift: Vec::new(),
        age_seconds: Some(10 * DAY),
        generation: Some(3),
        next_due: Some(now() + chrono::Duration::days(10)),
        due_reason: Some("max_age".into()),
        blackout: None,
        stores: vec![store("local", 3, "r3"), store("vault", 3, "r3")],
        last_error: None,
        action: None,
        failed_logins: Vec::new(),
        hook_failure: None,
    }
}

fn policy() -> GlobalPolicy {
    GlobalPolicy {
        max_age: Some(Duration::from_secs(30 * DAY as u64)),
        min_length: Some(16),
        forbidden: BTreeSet::from(['"']),
        warn_before: None,
        min_strength_bits: Some(80),
        ..GlobalPolicy::default()
    }
}

fn secret() -> SecretPolicy {
    SecretPolicy { length: 24, forbidden: BTreeSet::from(['"']), ..SecretPolicy::default() }
}

struct Case {
    heartbeat: Option<Duration>,
    status: JobStatus,
    state: JobState,
    previous: Vec<PreviousSlot>,
    policy: GlobalPolicy,
    secret: SecretPolicy,
}

impl Case {
    fn compliant() -> Self {
        let state = JobState {
            last_verify: Some(Verified { at: now() - chrono::Duration::hours(1), by: "heartbeat".into() }),
            ..JobState::default()
        };
        let present = PreviousSlot::Present { generation: 2 };
        Self {
            heartbeat: Some(Duration::from_secs(DAY as u64)),
            status: status(),
            state,
            previous: vec![present.clone(), present],
            policy: policy(),
            secret: secret(),
        }
    }

    fn report(&self) -> JobReport {
        let inputs = Inputs {
            status: &self.status,
            state: Ok(&self.state),
            previous: &self.previous,
            max_age: self.policy.max_age,
            policy: &self.policy,
            secret: &self.secret,
            heartbeat: self.heartbeat,
            now: now(),
        };
        assess(&inputs, History::default(), Vec::new())
    }

    /// The verdict, and the names of the checks that did not pass.
    fn failed(&self) -> (Verdict, Vec<&'static str>) {
        let report = self.report();
        let names = report.checks.iter().filter(|c| c.outcome != Outcome::Pass).map(|c| c.name).collect();
        (report.verdict, names)
    }
}

#[test]
fn a_job_that_meets_every_rule_is_compliant_with_no_reason() {
    let report = Case::compliant().report();
    assert_eq!(report.verdict, Verdict::Compliant, "{:?}", report.reasons);
    assert!(report.reasons.is_empty());
    assert_eq!(report.evidence.last_verify_by.as_deref(), Some("heartbeat"));
}

#[test]
fn a_secret_older_than_max_age_is_non_compliant_and_its_schedule_too() {
    let mut case = Case::compliant();
    case.status.age_seconds = Some(31 * DAY);
    case.status.last_rotation = Some(now() - chrono::Duration::days(31));
    case.status.next_due = Some(now());
    assert_eq!(case.failed(), (Verdict::NonCompliant, vec!["max_age", "schedule_keeps_max_age"]));
    assert!(case.report().reasons[0].contains("over max_age 30d"), "{:?}", case.report().reasons);
}

#[test]
fn a_schedule_that_comes_after_max_age_is_non_compliant() {
    let mut case = Case::compliant();
    case.status.next_due = Some(now() + chrono::Duration::days(25));
    assert_eq!(case.failed(), (Verdict::NonCompliant, vec!["schedule_keeps_max_age"]));
}

#[test]
fn stores_at_different_generations_are_not_in_step() {
    let mut case = Case::compliant();
    case.status.stores[1] = store("vault", 2, "r2");
    assert_eq!(case.failed(), (Verdict::NonCompliant, vec!["stores_in_step"]));
}

#[test]
fn a_store_without_a_previous_value_after_two_rotations_is_non_compliant() {
    let mut case = Case::compliant();
    case.previous[1] = PreviousSlot::Absent;
    assert_eq!(case.failed(), (Verdict::NonCompliant, vec!["previous_present"]));
    case.status.generation = Some(1);
    assert_eq!(case.failed().0, Verdict::Compliant, "a first value has no previous one");
}

#[test]
fn a_secret_that_is_no_longer_rotavaults_fails_ownership() {
    let mut case = Case::compliant();
    case.previous[0] =
        PreviousSlot::NotOwned { error: "file: `autotask/local` is not managed by rotavault".into() };
    assert_eq!(case.failed(), (Verdict::NonCompliant, vec!["previous_present", "ownership"]));
    let mut case = Case::compliant();
    case.status.stores[0].error = Some("aws: `x` is not managed by rotavault for job `api`".into());
    case.status.stores[0].error_kind = Some("not_owned");
    let (verdict, failed) = case.failed();
    assert_eq!(verdict, Verdict::NonCompliant);
    assert!(failed.contains(&"ownership"), "{failed:?}");
}

#[test]
fn a_store_that_does_not_answer_makes_the_verdict_unknown() {
    let mut case = Case::compliant();
    case.status.stores[1].error = Some("vault: temporarily unavailable: connection refused".into());
    case.status.stores[1].error_kind = Some("transient");
    case.status.age_seconds = None;
    case.status.last_rotation = None;
    case.previous[1] = PreviousSlot::NotRead;
    let (verdict, failed) = case.failed();
    assert_eq!(verdict, Verdict::Unknown, "{failed:?}");
    assert!(failed.contains(&"max_age") && failed.contains(&"stores_in_step"), "{failed:?}");
}

#[test]
fn a_diverged_job_is_non_compliant_and_no_rotation_keeps_its_max_age() {
    let mut case = Case::compliant();
    case.state.diverged =
        Some(DivergedMark { since: now(), reason: "the target refused the stored value".into() });
    case.status.state = "diverged";
    case.status.next_due = None;
    assert_eq!(case.failed(), (Verdict::NonCompliant, vec!["not_diverged", "schedule_keeps_max_age"]));
}

#[test]
fn a_blocked_job_is_non_compliant() {
    let mut case = Case::compliant();
    case.status.state = "blocked";
    case.status.action = Some("blocked: admin credential refused".into());
    assert_eq!(case.failed(), (Verdict::NonCompliant, vec!["not_blocked"]));
}

#[test]
fn a_pending_value_is_unsettled_and_non_compliant() {
    let mut case = Case::compliant();
    case.status.stores[0].pending_rotation_id = Some("r4".into());
    assert_eq!(case.failed(), (Verdict::NonCompliant, vec!["settled"]));
}

#[test]
fn a_drift_mark_is_non_compliant() {
    let mut case = Case::compliant();
    case.state.drift = Some(DriftMark { since: now(), stores: vec!["vault".into()] });
    assert_eq!(case.failed(), (Verdict::NonCompliant, vec!["no_drift"]));
}

#[test]
fn secret_rules_shorter_than_min_length_or_allowing_a_forbidden_character_are_non_compliant() {
    let mut case = Case::compliant();
    case.secret.length = 12;
    case.secret.min_length = 12;
    assert!(case.failed().1.contains(&"secret_rules"), "{:?}", case.failed());
    let mut case = Case::compliant();
    case.secret.forbidden.clear();
    assert_eq!(case.failed(), (Verdict::NonCompliant, vec!["secret_rules"]));
}

#[test]
fn rules_weaker_than_min_strength_bits_are_non_compliant() {
    let mut case = Case::compliant();
    case.policy.min_strength_bits = Some(case.secret.strength_bits() + 1);
    assert_eq!(case.failed(), (Verdict::NonCompliant, vec!["strength"]));
}

#[test]
fn an_unreadable_job_state_makes_the_verdict_unknown() {
    let case = Case::compliant();
    let inputs = Inputs {
        status: &case.status,
        state: Err("permission denied"),
        previous: &case.previous,
        max_age: case.policy.max_age,
        policy: &case.policy,
        secret: &case.secret,
        heartbeat: case.heartbeat,
        now: now(),
    };
    let report = assess(&inputs, History::default(), Vec::new());
    assert_eq!(report.verdict, Verdict::Unknown);
    let unknown: Vec<&str> =
        report.checks.iter().filter(|c| c.outcome == Outcome::Unknown).map(|c| c.name).collect();
    assert_eq!(unknown, ["not_diverged", "no_drift", "schedule_keeps_max_age", "recently_verified"]);
    assert!(
        report.reasons[0].ends_with("the job's state cannot be read: permission denied"),
        "{:?}",
        report.reasons
    );
}

#[test]
fn with_a_heartbeat_a_verify_older_than_two_intervals_or_none_is_non_compliant() {
    let mut case = Case::compliant();
    case.state.last_verify = Some(Verified { at: now() - chrono::Duration::days(3), by: "heartbeat".into() });
    assert_eq!(case.failed(), (Verdict::NonCompliant, vec!["recently_verified"]));
    case.state.last_verify = None;
    assert_eq!(case.failed(), (Verdict::NonCompliant, vec!["recently_verified"]));
    case.heartbeat = None;
    assert_eq!(case.failed().0, Verdict::Compliant, "without a heartbeat the last verify is evidence only");
}
