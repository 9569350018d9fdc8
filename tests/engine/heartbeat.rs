//! The drift heartbeat: between rotations it proves the stored value still works, names a store that holds
//! another one, and after one refusal makes no login until a person acts.

use super::*;
use rotavault::events::EventKind;
use rotavault::rotation::Heartbeat;

/// A rig whose job has been rotated once, with the events of that rotation cleared.
async fn rotated() -> Rig {
    let rig = rig();
    rig.rotate().await.expect("the first rotation");
    rig.events.clear();
    rig
}

#[tokio::test(start_paused = true)]
async fn a_heartbeat_verifies_the_stored_value_with_one_login_and_records_when() {
    let rig = rotated().await;
    let logins = rig.target.logins();
    let before = snapshot(&rig).await;
    let found = rig.engine.heartbeat(&rig.job).await.expect("heartbeat");
    assert_eq!(found, Heartbeat::Verified { drift: vec![] });
    assert_eq!(rig.target.logins(), logins + 1, "one login");
    assert_eq!(rig.target.applies(), 1, "nothing applied: only the rotation's");
    assert_eq!(snapshot(&rig).await, before, "no store written");
    let state = rig.states.load(JOB).expect("state");
    let verified = state.last_verify.expect("the verify is recorded");
    assert_eq!((verified.at, verified.by.as_str()), (rig.engine.clock().now(), "heartbeat"));
    assert!(rig.events.kinds().is_empty(), "an accepted heartbeat decides nothing: {:?}", rig.events.kinds());
}

#[tokio::test(start_paused = true)]
async fn a_credential_changed_behind_rotavaults_back_is_diverged_at_the_heartbeat_and_no_login_follows() {
    let rig = rotated().await;
    rig.target.set_behind_the_back("Changed-by-a-person-1!");
    let err = rig.engine.heartbeat(&rig.job).await.expect_err("refused");
    assert!(matches!(err, RotationError::Diverged { .. }), "{err}");
    assert!(err.to_string().contains("heartbeat"), "says what found it: {err}");
    assert_eq!(rig.target.failed_logins(), 1, "one failed login, no more");
    let state = rig.states.load(JOB).expect("state");
    assert!(state.diverged.is_some(), "the job is marked diverged");
    assert_eq!(rig.events.kinds(), vec![EventKind::Diverged]);
    assert_eq!(rig.events.events()[0].data.trigger.as_deref(), Some("heartbeat"));

    let logins = rig.target.logins();
    for _ in 0..3 {
        let found = rig.engine.heartbeat(&rig.job).await.expect("skipped");
        assert!(matches!(found, Heartbeat::Skipped(ref why) if why.contains("resolve")), "{found:?}");
    }
    assert_eq!(rig.target.logins(), logins, "no heartbeat logs in until a person acts");
    assert_eq!(rig.events.kinds(), vec![EventKind::Diverged], "and raises nothing more");
}

#[tokio::test(start_paused = true)]
async fn an_account_with_a_failed_login_gets_no_heartbeat_until_a_login_is_accepted() {
    let rig = rotated().await;
    // A failed login of the account, from any job or process, as the lockout guard counts it.
    let guard = rig.engine.lockout();
    let login = guard.take("scripted:account", 0, Duration::from_secs(1)).await.expect("a login");
    login.refused();
    let logins = rig.target.logins();
    let found = rig.engine.heartbeat(&rig.job).await.expect("skipped");
    assert!(matches!(found, Heartbeat::Skipped(ref why) if why.contains("failed login")), "{found:?}");
    assert_eq!(rig.target.logins(), logins, "no login");
    guard.reset("scripted:account").expect("a person resolves");
    assert_eq!(
        rig.engine.heartbeat(&rig.job).await.expect("heartbeat"),
        Heartbeat::Verified { drift: vec![] }
    );
}

#[tokio::test(start_paused = true)]
async fn a_store_overwritten_by_hand_is_named_once_and_a_rotation_puts_it_back_in_step() {
    let rig = rotated().await;
    let good = rig.current(0).await.expect("a current value");
    let meta = Metadata::new(None, rig.engine.clock().now(), 7);
    let js = &rig.job.stores[1];
    js.store
        .write_current(&js.secret, &SecretValue::new("Pasted-by-hand-9!"), &meta)
        .await
        .expect("overwrite");

    let found = rig.engine.heartbeat(&rig.job).await.expect("heartbeat");
    assert_eq!(found, Heartbeat::Verified { drift: vec!["b".into()] }, "the store that differs is named");
    assert_eq!(rig.target.accepted().as_deref(), Some(good.as_str()));
    assert_eq!(
        rig.target.failed_logins(),
        0,
        "the value most stores hold, or the first store's, is verified"
    );
    let drift = rig.states.load(JOB).expect("state").drift.expect("the drift is recorded");
    assert_eq!(drift.stores, ["b"]);
    let events = rig.events.events();
    assert_eq!(rig.events.kinds(), vec![EventKind::Drifted]);
    assert!(events[0].data.detail.as_deref().is_some_and(|d| d.contains("b")), "{:?}", events[0]);
    assert_eq!(rig.current(1).await.as_deref(), Some("Pasted-by-hand-9!"), "the heartbeat writes no store");

    rig.events.clear();
    rig.engine.heartbeat(&rig.job).await.expect("heartbeat");
    assert!(rig.events.kinds().is_empty(), "the same drift is not raised twice");
    assert_eq!(rig.states.load(JOB).expect("state").drift.map(|d| d.since), Some(drift.since));

    rig.rotate().await.expect("a rotation");
    let state = rig.states.load(JOB).expect("state");
    assert!(state.drift.is_none(), "a rotation writes every store anew");
    assert_eq!(rig.current(0).await, rig.current(1).await);
    assert_eq!(rig.previous(1).await.as_deref(), Some("Pasted-by-hand-9!"), "the hand-made value is kept");
}

#[tokio::test(start_paused = true)]
async fn a_pending_value_is_left_to_recovery_and_not_verified_by_a_heartbeat() {
    let rig = rotated().await;
    rig.stage_by_hand("Staged-then-died-1!", true).await;
    let logins = rig.target.logins();
    let found = rig.engine.heartbeat(&rig.job).await.expect("skipped");
    assert!(matches!(found, Heartbeat::Skipped(ref why) if why.contains("pending")), "{found:?}");
    assert_eq!(rig.target.logins(), logins);
}
