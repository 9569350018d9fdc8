//! The rotation engine against a scripted target and two fault-injecting stores, with paused time.
//!
//! Each test names the protocol rule it proves. Time is tokio's paused clock, so settle delays, back-offs and
//! timeouts take no real time.

mod support;

#[path = "engine/events.rs"]
mod events;
#[path = "engine/heartbeat.rs"]
mod heartbeat;

use chrono::{TimeZone, Utc};
use rotavault::lockout::LockoutGuard;
use rotavault::retry::Backoff;
use rotavault::rotation::state::{ApplyIntent, AttemptOutcome, StateDir};
use rotavault::rotation::{Engine, Job, JobStore, Outcome, Recovery, RotationError, Settings, Step, Trigger};
use rotavault::schedule::TokioClock;
use rotavault::secret::SecretValue;
use rotavault::shared::SharedState;
use rotavault::store::memory::MemoryStore;
use rotavault::store::{Metadata, RotationId, SecretRef};
use std::sync::Arc;
use std::time::Duration;
use support::faulty_store::{Fault, FaultyStore, INTERLOPER, Op};
use support::recording_sink::RecordingSink;
use support::scripted_target::{ApplyFault, ScriptedTarget, VerifyFault};

const JOB: &str = "api-user";

struct Rig {
    engine: Engine,
    target: Arc<ScriptedTarget>,
    a: Arc<FaultyStore>,
    b: Arc<FaultyStore>,
    job: Job,
    states: StateDir,
    events: Arc<RecordingSink>,
    _dir: tempfile::TempDir,
}

fn settings() -> Settings {
    Settings {
        settle: Duration::from_secs(2),
        verify_attempts: 3,
        verify_backoff: Duration::from_secs(5),
        call_timeout: Duration::from_secs(30),
        apply_horizon: None,
        max_failed_logins: 3,
        failed_login_window: None,
        backoff: Backoff { attempts: 3, first: Duration::from_millis(100), max: Duration::from_secs(5) },
    }
}

/// The apply horizon the rig's engine works out (the scripted target names no apply time of its own).
const HORIZON: Duration = Duration::from_secs(5 * 60);

fn rig() -> Rig {
    rig_with(settings())
}

fn rig_with(settings: Settings) -> Rig {
    let dir = tempfile::tempdir().expect("tempdir");
    let states = StateDir::new(dir.path());
    let clock =
        Arc::new(TokioClock::starting_at(Utc.with_ymd_and_hms(2026, 6, 1, 3, 0, 0).single().expect("date")));
    let events = Arc::new(RecordingSink::new());
    let engine = Engine::new(settings, clock, states.clone(), true).with_events(events.clone());
    let target = Arc::new(ScriptedTarget::new());
    let a = Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())));
    let b = Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())));
    let job = Job {
        name: JOB.into(),
        target: target.clone(),
        stores: vec![
            JobStore { label: "a".into(), store: a.clone(), secret: SecretRef::new("api/user", JOB) },
            JobStore { label: "b".into(), store: b.clone(), secret: SecretRef::new("api-user", JOB) },
        ],
        policy: target_policy(),
    };
    Rig { engine, target, a, b, job, states, events, _dir: dir }
}

fn target_policy() -> rotavault::secret::SecretPolicy {
    use rotavault::target::Target;
    ScriptedTarget::new().policy()
}

/// Every slot of every store of the job, to compare before and after.
async fn snapshot(rig: &Rig) -> Vec<String> {
    let mut out = Vec::new();
    for js in &rig.job.stores {
        let current = js.store.current(&js.secret).await.expect("current");
        let pending = js.store.pending(&js.secret).await.expect("pending");
        let previous = js.store.previous(&js.secret).await.expect("previous");
        out.push(format!(
            "{}: current={:?}/{:?} pending={:?}/{:?} previous={:?}",
            js.label,
            current.as_ref().map(|s| s.value.expose().to_owned()),
            current.as_ref().map(|s| s.metadata.clone()),
            pending.as_ref().map(|p| p.value.expose().to_owned()),
            pending.as_ref().map(|p| p.rotation_id.clone()),
            previous.as_ref().map(|s| s.value.expose().to_owned()),
        ));
    }
    out
}

impl Rig {
    async fn current(&self, i: usize) -> Option<String> {
        let js = &self.job.stores[i];
        js.store.current(&js.secret).await.expect("current").map(|s| s.value.expose().to_owned())
    }

    async fn pending(&self, i: usize) -> Option<String> {
        let js = &self.job.stores[i];
        js.store.pending(&js.secret).await.expect("pending").map(|p| p.value.expose().to_owned())
    }

    async fn previous(&self, i: usize) -> Option<String> {
        let js = &self.job.stores[i];
        js.store.previous(&js.secret).await.expect("previous").map(|s| s.value.expose().to_owned())
    }

    async fn rotate(&self) -> Result<Outcome, RotationError> {
        self.engine.rotate(&self.job, Trigger::Manual).await
    }

    /// What a process that died right after Stage leaves behind; with `sent`, right after it sent the apply.
    async fn stage_by_hand(&self, value: &str, sent: bool) -> RotationId {
        let id = RotationId::new();
        let now = self.engine.clock().now();
        let meta = Metadata::new(Some(id.clone()), now, 2);
        for js in &self.job.stores {
            js.store.stage(&js.secret, &SecretValue::new(value), &id, &meta).await.expect("stage");
        }
        if sent {
            let intent = ApplyIntent { rotation_id: id.clone(), account: None, at: now, confirmed: false };
            self.states.update(JOB, |s| s.apply_intent = Some(intent)).expect("intent");
        }
        id
    }

    /// The lockout guard's count for the scripted account.
    fn guard_count(&self) -> u32 {
        self.engine.lockout().consecutive("scripted:account").expect("guard")
    }

    fn outcome(&self) -> AttemptOutcome {
        self.states.load(JOB).expect("state").last_attempt.expect("an attempt").outcome
    }
}

#[tokio::test(start_paused = true)]
async fn a_rotation_makes_the_accepted_secret_current_in_every_store() {
    let rig = rig();
    let first = rig.rotate().await.expect("first rotation");
    assert!(matches!(first, Outcome::Rotated { generation: 1, .. }), "{first:?}");
    let one = rig.target.accepted().expect("the target has a secret");
    assert_eq!(rig.current(0).await.as_deref(), Some(one.as_str()));
    assert_eq!(rig.current(1).await.as_deref(), Some(one.as_str()));

    let second = rig.rotate().await.expect("second rotation");
    assert!(matches!(second, Outcome::Rotated { generation: 2, .. }), "{second:?}");
    let two = rig.target.accepted().expect("the target has a secret");
    assert_ne!(one, two);
    for i in 0..2 {
        assert_eq!(rig.current(i).await.as_deref(), Some(two.as_str()));
        assert_eq!(rig.previous(i).await.as_deref(), Some(one.as_str()));
        assert_eq!(rig.pending(i).await, None);
    }
    assert_eq!(rig.target.failed_logins(), 0);
    assert_eq!(rig.outcome(), AttemptOutcome::Ok);
}

#[tokio::test(start_paused = true)]
async fn a_stage_failure_in_the_second_store_leaves_the_target_untouched_and_nothing_pending() {
    let rig = rig();
    rig.rotate().await.expect("first rotation");
    let before = rig.target.accepted();
    rig.b.inject(Op::Stage, Fault::Fail(FaultyStore::permanent("no write access")), 1);

    let err = rig.rotate().await.expect_err("stage fails");
    assert!(
        matches!(err, RotationError::Store { step: Step::Stage, ref store, .. } if store == "b"),
        "{err:?}"
    );
    assert_eq!(rig.target.applies(), 1, "apply never ran for the failed rotation");
    assert_eq!(rig.target.accepted(), before);
    assert_eq!(rig.pending(0).await, None);
    assert_eq!(rig.pending(1).await, None);
    assert_eq!(rig.current(0).await, before);
    assert_eq!(rig.outcome(), AttemptOutcome::Failed);
}

#[tokio::test(start_paused = true)]
async fn a_stage_that_happened_but_lost_its_answer_is_discarded_too() {
    let rig = rig();
    rig.b.inject(Op::Stage, Fault::DoThenFail(FaultyStore::permanent("answer lost")), 1);
    rig.rotate().await.expect_err("stage fails");
    assert_eq!(rig.pending(1).await, None, "the stage that did happen was discarded");
    assert_eq!(rig.target.applies(), 0);
}

#[tokio::test(start_paused = true)]
async fn transient_store_errors_are_retried_within_the_run() {
    let rig = rig();
    rig.a.inject(Op::Stage, Fault::Fail(FaultyStore::transient("throttled")), 2);
    rig.b.inject(Op::Promote, Fault::Hang, 1);
    rig.rotate().await.expect("the rotation succeeds after retries");
    assert_eq!(rig.a.calls(Op::Stage), 3);
    assert_eq!(rig.current(1).await, rig.target.accepted());
}

#[tokio::test(start_paused = true)]
async fn an_apply_that_happened_but_lost_its_answer_is_promoted_by_recovery() {
    let rig = rig();
    rig.rotate().await.expect("first rotation");
    rig.target.queue_apply(ApplyFault::ApplyThenLoseAnswer);
    let outcome = rig.rotate().await.expect("recovery completes it");
    assert!(matches!(outcome, Outcome::Rotated { generation: 2, .. }), "{outcome:?}");
    let accepted = rig.target.accepted();
    assert_eq!(rig.current(0).await, accepted);
    assert_eq!(rig.current(1).await, accepted);
    assert_eq!(rig.pending(0).await, None);
    assert_eq!(rig.target.failed_logins(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_apply_that_did_not_happen_and_lost_its_answer_is_kept_until_the_horizon_then_discarded() {
    let rig = rig();
    rig.rotate().await.expect("first rotation");
    let before = rig.target.accepted();
    rig.target.queue_apply(ApplyFault::LoseAnswerWithoutApplying);
    let err = rig.rotate().await.expect_err("not settled yet");
    assert!(matches!(err, RotationError::Unsettled { .. }), "{err:?}");
    assert!(err.to_string().contains("apply horizon"), "{err}");
    assert!(rig.pending(0).await.is_some() && rig.pending(1).await.is_some(), "never discarded before");
    assert_eq!(rig.current(0).await, before);

    // Within the horizon another run makes no login: the logins left are kept for settling it.
    let logins = rig.target.logins();
    rig.rotate().await.expect_err("still within the horizon");
    assert_eq!(rig.target.logins(), logins);

    tokio::time::advance(HORIZON).await;
    let outcome = rig.rotate().await.expect("settled, then a fresh rotation");
    assert!(matches!(outcome, Outcome::Rotated { .. }), "{outcome:?}");
    assert_eq!(rig.current(0).await, rig.target.accepted());
    assert_eq!(rig.current(1).await, rig.target.accepted());
    assert!(rig.target.most_consecutive_failed() <= 3, "within the lockout cap");
    assert_eq!(rig.guard_count(), 0, "the accepted login cleared the count");
}

#[tokio::test(start_paused = true)]
async fn a_hanging_apply_times_out_and_recovery_settles_it_after_the_horizon() {
    let rig = rig();
    rig.rotate().await.expect("first rotation");
    let before = rig.target.accepted();
    rig.target.queue_apply(ApplyFault::Hang);
    let err = rig.rotate().await.expect_err("timed out, not settled");
    assert!(matches!(err, RotationError::Unsettled { .. }), "{err:?}");
    assert_eq!(rig.current(0).await, before);
    assert!(rig.pending(0).await.is_some());
    tokio::time::advance(HORIZON).await;
    rig.rotate().await.expect("settled and rotated");
    assert_eq!(rig.pending(0).await, None);
    assert_eq!(rig.current(0).await, rig.target.accepted());
}

#[tokio::test(start_paused = true)]
async fn an_apply_the_target_carries_out_after_its_caller_gave_up_loses_nothing() {
    let rig = rig();
    rig.rotate().await.expect("first rotation");
    // The server takes 45 s; the engine's call timeout is 30 s.
    rig.target.queue_apply(ApplyFault::CommitLate(Duration::from_secs(45)));
    let err = rig.rotate().await.expect_err("the answer was lost");
    assert!(matches!(err, RotationError::Unsettled { .. }), "{err:?}");
    let pending = rig.pending(0).await.expect("kept pending");

    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(rig.target.accepted().as_deref() == Some(pending.as_str()), "the late commit landed");
    // Whenever recovery now looks, every store still holds what the target accepts.
    assert_eq!(rig.pending(1).await.as_deref(), Some(pending.as_str()));

    tokio::time::advance(HORIZON).await;
    let outcome = rig.rotate().await.expect("completed");
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    for i in 0..2 {
        assert_eq!(rig.current(i).await.as_deref(), Some(pending.as_str()));
        assert_eq!(rig.pending(i).await, None);
    }
}

#[tokio::test(start_paused = true)]
async fn a_pending_value_the_target_has_is_promoted_at_start_up() {
    let rig = rig();
    rig.rotate().await.expect("first rotation");
    // The process died after Apply: the target has the new value, the stores hold it as pending.
    let id = rig.stage_by_hand("applied-before-the-crash", true).await;
    rig.target.set_behind_the_back("applied-before-the-crash");

    let restarted = Engine::new(settings(), rig.engine.clock().clone(), rig.states.clone(), true);
    let recovery = restarted.recover(&rig.job).await.expect("recovery");
    assert_eq!(recovery, Recovery::Promoted { rotation_id: id });
    for i in 0..2 {
        assert_eq!(rig.current(i).await.as_deref(), Some("applied-before-the-crash"));
        assert_eq!(rig.pending(i).await, None);
    }
}

#[tokio::test(start_paused = true)]
async fn a_pending_value_no_apply_was_sent_for_is_discarded_at_start_up_without_a_login() {
    let rig = rig();
    rig.rotate().await.expect("first rotation");
    let before = rig.target.accepted();
    // The process died between Stage and Apply: no apply intent.
    let id = rig.stage_by_hand("never-applied", false).await;
    let logins = rig.target.logins();

    let restarted = Engine::new(settings(), rig.engine.clock().clone(), rig.states.clone(), true);
    let recovery = restarted.recover(&rig.job).await.expect("recovery");
    assert!(
        matches!(recovery, Recovery::Discarded { ref rotation_id, .. } if *rotation_id == id),
        "{recovery:?}"
    );
    for i in 0..2 {
        assert_eq!(rig.current(i).await, before);
        assert_eq!(rig.pending(i).await, None);
    }
    assert_eq!(rig.target.logins(), logins, "no login was needed");
}

#[tokio::test(start_paused = true)]
async fn a_pending_value_left_by_a_rotavault_that_recorded_no_intents_is_treated_as_sent() {
    let rig = rig();
    rig.rotate().await.expect("first rotation");
    // An older state file: no format, no intent. Its pending value may have reached the target.
    let path = rig.states.root().join("jobs").join(format!("{JOB}.json"));
    std::fs::write(&path, r#"{"last_attempt":null,"last_success":null,"diverged":null}"#).expect("old state");
    rig.stage_by_hand("applied-by-an-older-rotavault", false).await;
    rig.target.set_behind_the_back("applied-by-an-older-rotavault");
    let recovery = rig.engine.recover(&rig.job).await.expect("recovery");
    assert!(matches!(recovery, Recovery::Promoted { .. }), "{recovery:?}");
    assert_eq!(rig.current(0).await.as_deref(), Some("applied-by-an-older-rotavault"));
}

#[tokio::test(start_paused = true)]
async fn a_failed_verify_keeps_the_value_pending_and_leaves_logins_for_settling_it() {
    let rig = rig();
    rig.rotate().await.expect("first rotation");
    let before = rig.target.accepted();
    rig.target.queue_apply(ApplyFault::ClaimDoneWithoutApplying);
    let err = rig.rotate().await.expect_err("verify fails");
    // Of the account's 3, two are kept: one for the new value and one for the old, after the horizon.
    assert!(matches!(err, RotationError::VerifyFailed { failures: 1, .. }), "{err:?}");
    assert_eq!(rig.target.failed_logins(), 1);
    assert!(rig.pending(0).await.is_some() && rig.pending(1).await.is_some(), "kept pending");
    assert_eq!(rig.current(0).await, before, "current never moves to an unverified value");
    assert_eq!(rig.outcome(), AttemptOutcome::Pending);

    // Within the horizon a run tries no login at all.
    let err = rig.rotate().await.expect_err("guarded");
    assert!(matches!(err, RotationError::Unsettled { .. }), "{err:?}");
    assert!(err.to_string().contains("lockout guard"), "{err}");
    assert_eq!(rig.target.failed_logins(), 1);

    // Past it, the next run settles it: the pending value is refused, the current one works, so it is
    // discarded, and a fresh rotation follows.
    tokio::time::advance(HORIZON).await;
    let outcome = rig.rotate().await.expect("next run");
    assert!(matches!(outcome, Outcome::Rotated { .. }), "{outcome:?}");
    assert_eq!(rig.current(0).await, rig.target.accepted());
    assert_eq!(rig.target.failed_logins(), 2);
    assert_eq!(rig.target.most_consecutive_failed(), 2);
}

#[tokio::test(start_paused = true)]
async fn past_the_horizon_with_one_login_left_the_old_value_settles_an_apply_that_never_landed() {
    let rig = rig();
    rig.rotate().await.expect("first rotation");
    let before = rig.target.accepted();
    rig.target.queue_apply(ApplyFault::LoseAnswerWithoutApplying);
    rig.rotate().await.expect_err("not settled yet");
    assert_eq!(rig.guard_count(), 1, "the verify after the lost answer");
    // A login cut off by a kill (it counts until an accepted login clears it): one is left of the 3.
    rig.engine.lockout().begin("scripted:account", 0).expect("a login").unknown();
    assert_eq!(rig.guard_count(), 2);

    tokio::time::advance(HORIZON).await;
    let recovery = rig.engine.recover(&rig.job).await.expect("settled, not left unsettled for good");
    assert!(matches!(recovery, Recovery::Discarded { .. }), "{recovery:?}");
    assert_eq!(rig.pending(0).await, None);
    assert_eq!(rig.current(0).await, before);
    assert_eq!(rig.guard_count(), 0, "the accepted login of the old value cleared the count");
}

#[tokio::test(start_paused = true)]
async fn past_the_horizon_with_one_login_left_a_confirmed_apply_spends_it_on_the_new_value() {
    let rig = rig();
    rig.rotate().await.expect("first rotation");
    // The target answered the apply, then two logins were cut off by crashes before any answer.
    rig.stage_by_hand("applied-and-confirmed", true).await;
    rig.states.update(JOB, |s| s.apply_intent.as_mut().expect("intent").confirmed = true).expect("confirm");
    rig.target.set_behind_the_back("applied-and-confirmed");
    for _ in 0..2 {
        rig.engine.lockout().begin("scripted:account", 0).expect("a login").unknown();
    }
    let pending = rig.pending(0).await.expect("pending");

    tokio::time::advance(HORIZON).await;
    let recovery = rig.engine.recover(&rig.job).await.expect("settled with the last login");
    assert!(matches!(recovery, Recovery::Promoted { .. }), "{recovery:?}");
    assert_eq!(rig.current(0).await.as_deref(), Some(pending.as_str()));
    assert_eq!(rig.guard_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_account_at_the_cap_blocks_the_job_until_a_person_resolves_it() {
    let rig = rig();
    rig.rotate().await.expect("first rotation");
    for _ in 0..3 {
        rig.engine.lockout().begin("scripted:account", 0).expect("a login").unknown();
    }
    let logins = rig.target.logins();
    let err = rig.rotate().await.expect_err("blocked");
    assert!(matches!(err, RotationError::Blocked { .. }), "{err:?}");
    assert!(err.needs_a_person());
    assert!(err.to_string().contains("rotavault resolve api-user"), "says what to do: {err}");
    assert_eq!(rig.target.logins(), logins, "no login at all");
    assert_eq!(rig.outcome(), AttemptOutcome::Blocked);

    rig.engine.resolve(&rig.job).await.expect("a person resolves it");
    rig.rotate().await.expect("rotates again");
}

#[tokio::test(start_paused = true)]
async fn a_verify_without_an_answer_counts_as_a_failed_login_and_is_bounded() {
    let rig = rig();
    rig.target.queue_verify(VerifyFault::Hang, 10);
    let err = rig.rotate().await.expect_err("unsettled");
    assert!(matches!(err, RotationError::Unsettled { .. }), "{err:?}");
    // The target may have counted each: so does the guard, up to the cap less the login kept for settling the
    // value later (a first rotation has no old value to try).
    assert_eq!(rig.guard_count(), 2);
    assert!(rig.pending(0).await.is_some(), "kept pending until the target answers");
}

#[tokio::test(start_paused = true)]
async fn a_verify_that_never_reached_the_target_counts_no_failed_login() {
    let rig = rig();
    rig.target.queue_verify(VerifyFault::Transient, 2);
    rig.rotate().await.expect("accepted once the target answers");
    assert_eq!(rig.guard_count(), 0);
    assert_eq!(rig.target.failed_logins(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_slow_to_propagate_secret_is_accepted_after_retries_when_the_cap_allows() {
    let rig = rig_with(Settings { max_failed_logins: 5, ..settings() });
    rig.target.queue_verify(VerifyFault::RejectRegardless, 2);
    rig.rotate().await.expect("accepted at the third try");
    assert_eq!(rig.target.failed_logins(), 2);
    assert_eq!(rig.current(0).await, rig.target.accepted());
    assert_eq!(rig.guard_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_promote_failing_in_one_store_is_completed_by_the_next_run() {
    let rig = rig();
    rig.b.inject(Op::Promote, Fault::Fail(FaultyStore::permanent("denied")), 1);
    let err = rig.rotate().await.expect_err("promote incomplete");
    assert!(
        matches!(err, RotationError::PromoteIncomplete { ref stores, .. } if stores.len() == 1),
        "{err:?}"
    );
    let accepted = rig.target.accepted();
    assert_eq!(rig.current(0).await, accepted);
    assert_eq!(rig.pending(1).await, accepted, "the value waits in b's pending slot");
    assert_eq!(rig.outcome(), AttemptOutcome::Pending);

    let outcome = rig.rotate().await.expect("rolled forward");
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    assert_eq!(rig.current(1).await, accepted);
    assert_eq!(rig.pending(1).await, None);
    assert_eq!(rig.target.applies(), 1, "no new apply: the interrupted rotation was completed");
}

#[tokio::test(start_paused = true)]
async fn a_refused_value_is_discarded_everywhere() {
    let rig = rig();
    rig.rotate().await.expect("first rotation");
    let before = rig.target.accepted();
    rig.target.queue_apply(ApplyFault::Refuse);
    let err = rig.rotate().await.expect_err("refused");
    assert!(matches!(err, RotationError::Refused(_)), "{err:?}");
    assert_eq!(rig.pending(0).await, None);
    assert_eq!(rig.pending(1).await, None);
    assert_eq!(rig.current(0).await, before);
}

#[tokio::test(start_paused = true)]
async fn an_unavailable_target_is_retried_before_apply_gives_up() {
    let rig = rig();
    rig.target.queue_apply(ApplyFault::Transient);
    rig.rotate().await.expect("the second apply works");
    assert_eq!(rig.current(0).await, rig.target.accepted());
}

#[tokio::test(start_paused = true)]
async fn a_target_busy_for_longer_than_the_retries_ends_the_run_with_nothing_sent_or_pending() {
    let rig = rig();
    rig.rotate().await.expect("first rotation");
    let before = rig.target.accepted();
    rig.target.queue_apply(ApplyFault::TransientFor(Duration::from_secs(60)));
    rig.target.queue_apply(ApplyFault::TransientFor(Duration::from_secs(60)));
    let err = rig.rotate().await.expect_err("try later");
    assert!(matches!(err, RotationError::Target { step: Step::Apply, .. }), "{err:?}");
    assert_eq!(rig.target.applies(), 1, "no apply reached the target");
    assert_eq!(rig.pending(0).await, None, "nothing sent, nothing kept");
    assert_eq!(rig.current(0).await, before);
    // One call, not a retry that would hold the job's lock through another long wait: the second answer queued is
    // still there for the next run.
    rig.rotate().await.expect_err("the next run gets the second answer");
    rig.rotate().await.expect("then the target is back");
}

#[tokio::test(start_paused = true)]
async fn a_diverged_job_is_reported_and_its_stores_left_exactly_as_they_were() {
    let rig = rig();
    rig.rotate().await.expect("first rotation");
    rig.target.queue_apply(ApplyFault::ClaimDoneWithoutApplying);
    rig.rotate().await.expect_err("verify fails, value pending");
    rig.target.set_behind_the_back("changed-by-a-person");

    // Within the apply horizon rotavault waits rather than declaring divergence.
    let err = rig.rotate().await.expect_err("not yet diverged");
    assert!(matches!(err, RotationError::Unsettled { .. }), "{err:?}");

    tokio::time::advance(HORIZON).await;
    let before = snapshot(&rig).await;
    let logins = rig.target.logins();
    let err = rig.rotate().await.expect_err("diverged");
    assert!(matches!(err, RotationError::Diverged { .. }), "{err:?}");
    assert!(err.to_string().contains("rotavault resolve"), "says what to do: {err}");
    assert!(err.to_string().contains("later than the apply horizon"), "says a late apply is possible: {err}");
    assert_eq!(snapshot(&rig).await, before, "stores untouched");
    assert_eq!(rig.outcome(), AttemptOutcome::Diverged);
    assert!(rig.states.load(JOB).expect("state").diverged.is_some());
    assert_eq!(rig.target.most_consecutive_failed(), 3, "never past the cap");

    // Marked: later runs do not try again, not even a login.
    let logins_after = rig.target.logins();
    let err = rig.rotate().await.expect_err("still diverged");
    assert!(matches!(err, RotationError::Diverged { .. }), "{err:?}");
    let err = rig.engine.recover(&rig.job).await.expect_err("recovery refuses too");
    assert!(matches!(err, RotationError::Diverged { .. }), "{err:?}");
    assert_eq!(rig.target.logins(), logins_after);
    assert!(logins_after > logins);
    assert_eq!(snapshot(&rig).await, before);

    // Clearing the mark alone does not reset the account's count: a restarted engine still makes no login.
    assert!(rig.engine.resolve_diverged(JOB).expect("resolve"));
    let restarted = Engine::new(settings(), rig.engine.clock().clone(), rig.states.clone(), true);
    restarted.rotate(&rig.job, Trigger::Manual).await.expect_err("the guard is at its cap");
    assert_eq!(rig.target.logins(), logins_after, "not one more login");

    // A person's `resolve` starts the count afresh.
    rig.target.set_behind_the_back(&rig.pending(0).await.expect("pending"));
    assert!(!rig.engine.resolve(&rig.job).await.expect("resolve"), "the mark was already gone");
    assert_eq!(rig.guard_count(), 0);
    let outcome = restarted.rotate(&rig.job, Trigger::Manual).await.expect("settled");
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
}

#[tokio::test(start_paused = true)]
async fn one_rotation_per_job_at_a_time() {
    let rig = rig();
    let (one, two) = tokio::join!(rig.rotate(), rig.rotate());
    let busy = [&one, &two].iter().filter(|r| matches!(r, Err(RotationError::Busy(_)))).count();
    let done = [&one, &two].iter().filter(|r| matches!(r, Ok(Outcome::Rotated { .. }))).count();
    assert_eq!((busy, done), (1, 1), "{one:?} {two:?}");
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_before_apply_stops_cleanly_with_nothing_pending() {
    let mut rig = rig();
    let shutdown = tokio_util::sync::CancellationToken::new();
    rig.engine = Engine::new(settings(), rig.engine.clock().clone(), rig.states.clone(), true)
        .with_shutdown(shutdown.clone());
    // Stage in b is slow (two transient failures), and the shutdown comes while it retries.
    rig.b.inject(Op::Stage, Fault::Fail(FaultyStore::transient("slow")), 2);
    let cancel = async {
        tokio::time::sleep(Duration::from_millis(60)).await;
        shutdown.cancel();
    };
    let (result, ()) = tokio::join!(rig.rotate(), cancel);
    let err = result.expect_err("stopped");
    assert!(matches!(err, RotationError::ShutDown { step: Step::Stage }), "{err:?}");
    assert_eq!(rig.target.applies(), 0);
    assert_eq!(rig.pending(0).await, None);
    assert_eq!(rig.pending(1).await, None);
}

#[tokio::test(start_paused = true)]
async fn consecutive_failed_logins_never_pass_the_cap_across_restarts_and_hours() {
    let rig = rig();
    rig.rotate().await.expect("first rotation");
    rig.target.queue_apply(ApplyFault::ClaimDoneWithoutApplying);
    rig.rotate().await.expect_err("verify fails");
    rig.target.set_behind_the_back("changed-by-a-person");
    // Hours pass between runs, each a new process: time resets nothing, as at Autotask.
    for _ in 0..6 {
        tokio::time::advance(Duration::from_secs(3 * 3600)).await;
        let restarted = Engine::new(settings(), rig.engine.clock().clone(), rig.states.clone(), true);
        let _ = restarted.recover(&rig.job).await;
        let _ = restarted.rotate(&rig.job, Trigger::Manual).await;
        let _ = restarted.resolve_diverged(JOB);
    }
    assert_eq!(rig.target.most_consecutive_failed(), 3, "the cap, and never more");
    assert_eq!(rig.target.consecutive_failed(), 3);
}

#[tokio::test(start_paused = true)]
async fn the_apply_intent_is_on_disk_before_the_apply_sends_and_gone_once_settled() {
    let rig = rig();
    rig.rotate().await.expect("first rotation");
    let states = rig.states.clone();
    let seen = Arc::new(std::sync::Mutex::new(None));
    let record = seen.clone();
    rig.target.before_apply(move || {
        // Another process's view: the state file as it is on disk at the moment the request would leave.
        let intent = StateDir::new(states.root()).load(JOB).expect("state").apply_intent;
        *record.lock().expect("record") = intent;
    });
    let outcome = rig.rotate().await.expect("second rotation");
    let Outcome::Rotated { rotation_id, .. } = outcome else { panic!("{outcome:?}") };
    let intent = seen.lock().expect("record").clone().expect("an intent was on disk when the apply sent");
    assert_eq!(intent.rotation_id, rotation_id);
    assert_eq!(intent.account.as_deref(), Some("scripted:account"));
    assert_eq!(rig.states.load(JOB).expect("state").apply_intent, None, "forgotten once current everywhere");
}

#[tokio::test(start_paused = true)]
async fn the_engine_refuses_a_job_with_no_stores() {
    let mut rig = rig();
    rig.job.stores.clear();
    let err = rig.rotate().await.expect_err("no stores");
    assert!(matches!(err, RotationError::NoStores { .. }), "{err:?}");
    assert_eq!(rig.target.applies(), 0);
    assert_eq!(rig.target.logins(), 0);
}

#[tokio::test(start_paused = true)]
async fn recovery_promotes_a_pending_value_only_where_it_is_the_one_the_target_accepted() {
    let rig = rig();
    rig.rotate().await.expect("first rotation");
    // Store b's pending slot holds another value under the same rotation id (edited by hand, say).
    let id = RotationId::new();
    let now = rig.engine.clock().now();
    let meta = Metadata::new(Some(id.clone()), now, 2);
    let (a, b) = (&rig.job.stores[0], &rig.job.stores[1]);
    a.store.stage(&a.secret, &SecretValue::new("the-value-sent"), &id, &meta).await.expect("stage a");
    b.store.stage(&b.secret, &SecretValue::new("some-other-value"), &id, &meta).await.expect("stage b");
    let intent = ApplyIntent { rotation_id: id.clone(), account: None, at: now, confirmed: false };
    rig.states.update(JOB, |s| s.apply_intent = Some(intent)).expect("intent");
    rig.target.set_behind_the_back("the-value-sent");

    let recovery = rig.engine.recover(&rig.job).await.expect("recovery");
    assert_eq!(recovery, Recovery::Promoted { rotation_id: id });
    for i in 0..2 {
        assert_eq!(rig.current(i).await.as_deref(), Some("the-value-sent"), "store {i}");
        assert_eq!(rig.pending(i).await, None, "store {i}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_credential_changed_outside_rotavault_is_diverged_before_anything_is_written() {
    let rig = rig();
    rig.rotate().await.expect("first rotation");
    rig.target.set_behind_the_back("set-by-a-person-in-the-ui");
    let before = snapshot(&rig).await;
    let err = rig.rotate().await.expect_err("diverged");
    assert!(matches!(err, RotationError::Diverged { .. }), "{err:?}");
    assert!(err.to_string().contains("changed outside rotavault"), "{err}");
    assert_eq!(snapshot(&rig).await, before, "nothing staged, nothing written");
    assert_eq!(rig.target.applies(), 1, "the target was not touched");
    assert_eq!(rig.target.failed_logins(), 1, "one login told it");
    assert_eq!(rig.outcome(), AttemptOutcome::Diverged);
}

/// A replica that staged after this rotation's Stage and before its Apply (two leaders for a moment, or a store
/// whose stages raced) is never applied over: the fence reads pending again in every store.
#[tokio::test(start_paused = true)]
async fn a_rotation_overtaken_in_a_store_before_apply_sends_nothing_and_leaves_the_other_rotation_alone() {
    let rig = rig();
    rig.target.set_behind_the_back("Initial-secret-1!");
    rig.b.overtake_next_stage();
    let err = rig.rotate().await.expect_err("fenced");
    assert!(matches!(err, RotationError::Fenced { .. }), "{err}");
    assert!(err.to_string().contains("store `b` no longer holds this rotation's value as pending"), "{err}");
    assert_eq!(rig.target.applies(), 0, "nothing was sent to the target");
    assert_eq!(rig.pending(0).await, None, "this rotation's value is discarded where it was staged");
    assert_eq!(rig.pending(1).await.as_deref(), Some(INTERLOPER), "the other rotation's value is left alone");
    assert_eq!(
        rig.states.load(JOB).expect("state").apply_intent,
        None,
        "no intent outlives an apply never sent"
    );
}

/// Replicas: the apply intent is written where the next leader reads it before the apply is sent, and a replica
/// that cannot write it (its lease lost) sends nothing.
#[tokio::test(start_paused = true)]
async fn the_apply_intent_is_shared_before_the_apply_and_a_replica_that_cannot_share_it_sends_nothing() {
    let shared = Arc::new(SharedState::new());
    let mut rig = rig();
    rig.states = rig.states.clone().with_shared(shared.clone());
    let clock = rig.engine.clock().clone();
    let lockout =
        Arc::new(LockoutGuard::new(rig._dir.path(), 3, None, clock.clone()).with_shared(shared.clone()));
    rig.engine = Engine::new(settings(), clock, rig.states.clone(), true).with_lockout(lockout);
    // The publisher: writes every change, as the lease does with every renewal.
    let publisher = shared.clone();
    let published = tokio::spawn(async move {
        loop {
            publisher.changed().await;
            let (_, changes) = publisher.snapshot();
            publisher.mark_published(changes);
        }
    });
    let seen = Arc::new(std::sync::Mutex::new(None));
    let (at_apply, watched) = (seen.clone(), shared.clone());
    rig.target.before_apply(move || {
        *at_apply.lock().expect("seen") = watched.get(&format!("jobs/{JOB}"));
    });
    rig.target.set_behind_the_back("Initial-secret-1!");
    assert!(matches!(rig.rotate().await.expect("rotated"), Outcome::Rotated { .. }));
    let at_apply = seen.lock().expect("seen").clone().expect("the job's shared state at apply");
    assert!(at_apply["apply_intent"]["rotation_id"].is_string(), "{at_apply}");
    assert_eq!(shared.get(&format!("jobs/{JOB}")), None, "settled: nothing left to share");
    published.abort();

    // The lease is lost just as the next intent is written: no apply is sent, and nothing stays pending.
    let publisher = shared.clone();
    let published = tokio::spawn(async move {
        loop {
            publisher.changed().await;
            if publisher.get(&format!("jobs/{JOB}")).is_some_and(|j| j["apply_intent"].is_object()) {
                publisher.mark_lost();
                return;
            }
            let (_, changes) = publisher.snapshot();
            publisher.mark_published(changes);
        }
    });
    let applies = rig.target.applies();
    let err = rig.rotate().await.expect_err("fenced");
    assert!(matches!(err, RotationError::Fenced { .. }), "{err}");
    assert!(err.to_string().contains("no longer holds the lease"), "{err}");
    assert_eq!(rig.target.applies(), applies, "nothing was sent");
    assert_eq!((rig.pending(0).await, rig.pending(1).await), (None, None));
    published.await.expect("publisher");
    // And with the lease lost, not even a login is made.
    let logins = rig.target.logins();
    let err = rig.rotate().await.expect_err("no lease");
    assert!(err.to_string().contains("no longer holds the lease"), "{err}");
    assert_eq!(rig.target.logins(), logins);
}
