//! The Kubernetes lease (`[lease] kind = "kubernetes"`), through the real kube client against the fake Lease API
//! of `tests/support/lease_api.rs`: who leads, when a standby takes over, what a leader that cannot renew does,
//! and what the next leader learns of the shared state. Real time with short durations: the client's requests
//! are real HTTP, and every wait ends on a condition, bounded.

mod support;

use rotavault::config::KubernetesLease;
use rotavault::lease::kubernetes::{Attempt, Ended, KubeLease};
use rotavault::shared::{SharedState, Unpublished};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::lease_api::LeaseApi;
use tokio_util::sync::CancellationToken;

const NAME: &str = "rotavault-test";

fn settings() -> KubernetesLease {
    KubernetesLease {
        name: NAME.into(),
        namespace: None,
        duration: Duration::from_secs(2),
        renew_deadline: Duration::from_millis(1200),
        retry_period: Duration::from_millis(250),
    }
}

fn replica(api: &LeaseApi) -> (Arc<KubeLease>, Arc<SharedState>) {
    let shared = Arc::new(SharedState::new());
    (Arc::new(KubeLease::with_client(api.client(), settings(), shared.clone())), shared)
}

/// Runs `lease.keep` until `stop`, on a task of its own.
fn keep(lease: &Arc<KubeLease>) -> (CancellationToken, tokio::task::JoinHandle<Ended>) {
    let stop = CancellationToken::new();
    let (lease, token) = (lease.clone(), stop.clone());
    (stop, tokio::spawn(async move { lease.keep(&token, &CancellationToken::new()).await }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_replica_creates_the_lease_and_the_second_stands_by() {
    let api = LeaseApi::start().await;
    let (one, _) = replica(&api);
    let (two, _) = replica(&api);
    assert_eq!(one.try_acquire().await.expect("first"), Attempt::Leading);
    assert_eq!(api.holder(NAME).as_deref(), Some(one.identity()));
    let object = api.object(NAME).expect("created");
    assert_eq!(object["spec"]["leaseDurationSeconds"], json!(2));
    assert!(object["spec"]["renewTime"].is_string() && object["spec"]["acquireTime"].is_string(), "{object}");
    assert_eq!(two.try_acquire().await.expect("second"), Attempt::HeldBy(one.identity().to_owned()));
    assert_eq!(api.holder(NAME).as_deref(), Some(one.identity()), "a standby writes nothing");
    assert_ne!(one.identity(), two.identity(), "two processes on one host are two holders");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_only_once_the_holder_has_not_renewed_for_the_lease_duration() {
    let api = LeaseApi::start().await;
    let (one, _) = replica(&api);
    let (two, _) = replica(&api);
    assert_eq!(one.try_acquire().await.expect("first"), Attempt::Leading);
    let (stop_one, kept) = keep(&one);
    // While the leader renews, the standby never takes it, however long it tries.
    let standing = Instant::now();
    while standing.elapsed() < settings().duration * 2 {
        assert!(matches!(two.try_acquire().await.expect("standby"), Attempt::HeldBy(_)));
        tokio::time::sleep(settings().retry_period).await;
    }
    // The leader dies without a word (no release): its renewals stop.
    kept.abort();
    drop(stop_one);
    let died = Instant::now();
    let stop_two = CancellationToken::new();
    assert!(two.acquire(&stop_two).await.expect("acquire"), "the standby leads");
    let waited = died.elapsed();
    assert!(waited >= settings().duration - settings().retry_period, "took over after {waited:?}: too soon");
    assert!(
        waited <= settings().duration * 2 + settings().retry_period,
        "took over after {waited:?}: too late"
    );
    let object = api.object(NAME).expect("lease");
    assert_eq!(object["spec"]["holderIdentity"], json!(two.identity()));
    assert_eq!(object["spec"]["leaseTransitions"], json!(1), "one change of holder");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_lease_is_taken_at_once_with_what_the_leader_shared() {
    let api = LeaseApi::start().await;
    let (one, shared_one) = replica(&api);
    let (two, shared_two) = replica(&api);
    assert_eq!(one.try_acquire().await.expect("first"), Attempt::Leading);
    let (stop, kept) = keep(&one);
    shared_one.set("jobs/app", Some(json!({"apply_intent": {"rotation_id": "r1"}})));
    shared_one.published(Duration::from_secs(5)).await.expect("the change is written into the lease");
    assert_eq!(api.shared(NAME)["jobs/app"]["apply_intent"]["rotation_id"], json!("r1"));
    // The standby follows the leader's marks.
    assert!(matches!(two.try_acquire().await.expect("standby"), Attempt::HeldBy(_)));
    assert_eq!(shared_two.get("jobs/app"), shared_one.get("jobs/app"));

    stop.cancel();
    assert_eq!(kept.await.expect("keep"), Ended::Stopped);
    assert_eq!(api.holder(NAME), None, "released");
    let taken = Instant::now();
    assert_eq!(two.try_acquire().await.expect("take"), Attempt::Leading, "no need to wait out the duration");
    assert!(taken.elapsed() < settings().duration);
    assert_eq!(shared_two.get("jobs/app"), Some(json!({"apply_intent": {"rotation_id": "r1"}})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_lease_was_taken_stops_and_no_write_of_its_own_is_waited_for() {
    let api = LeaseApi::start().await;
    let (one, shared) = replica(&api);
    assert_eq!(one.try_acquire().await.expect("first"), Attempt::Leading);
    let (_stop, kept) = keep(&one);
    // Another holder wrote the Lease (its own compare-and-set won): the leader's next write gets 409.
    api.touch(NAME, |o| o["spec"]["holderIdentity"] = json!("other-replica_1234"));
    shared.set("jobs/app", Some(json!({"diverged": {"reason": "x"}})));
    let ended = tokio::time::timeout(Duration::from_secs(5), kept).await.expect("keep ends").expect("keep");
    assert!(matches!(&ended, Ended::Lost(reason) if reason.contains("other-replica_1234")), "{ended:?}");
    assert_eq!(shared.published(Duration::from_secs(5)).await, Err(Unpublished::Lost));
    assert_eq!(api.holder(NAME).as_deref(), Some("other-replica_1234"), "the leader wrote nothing over it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_cannot_renew_within_its_deadline_stops_leading() {
    let api = LeaseApi::start().await;
    let (one, shared) = replica(&api);
    assert_eq!(one.try_acquire().await.expect("first"), Attempt::Leading);
    let (_stop, kept) = keep(&one);
    api.set_down(true);
    let down = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(10), kept).await.expect("keep ends").expect("keep");
    assert!(matches!(ended, Ended::Lost(_)), "{ended:?}");
    let after = down.elapsed();
    assert!(after >= settings().renew_deadline - settings().retry_period * 2, "gave up after {after:?}");
    assert!(after < settings().duration, "gave up after {after:?}: a standby could have taken over by then");
    shared.set("jobs/app", Some(json!(1)));
    assert_eq!(shared.published(Duration::from_secs(1)).await, Err(Unpublished::Lost));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_annotation_written_by_someone_else_does_not_cost_the_leader_its_lease() {
    let api = LeaseApi::start().await;
    let (one, shared) = replica(&api);
    assert_eq!(one.try_acquire().await.expect("first"), Attempt::Leading);
    let (stop, kept) = keep(&one);
    api.touch(NAME, |o| o["metadata"]["labels"] = json!({"team": "ops"}));
    shared.set("accounts/autotask:u", Some(json!({"failed": []})));
    shared.published(Duration::from_secs(5)).await.expect("written after a second read");
    assert_eq!(api.holder(NAME).as_deref(), Some(one.identity()));
    stop.cancel();
    assert_eq!(kept.await.expect("keep"), Ended::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_shot_command_is_told_at_once_that_a_live_leader_holds_the_lease() {
    let api = LeaseApi::start().await;
    let (one, _) = replica(&api);
    let (command, _) = replica(&api);
    assert_eq!(one.try_acquire().await.expect("first"), Attempt::Leading);
    let (_stop, _kept) = keep(&one);
    let asked = Instant::now();
    let attempt = command.take_unless_held().await.expect("answer");
    assert_eq!(attempt, Attempt::HeldBy(one.identity().to_owned()));
    assert!(
        asked.elapsed() < settings().duration,
        "answered after {:?}: once the leader renewed",
        asked.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_shot_command_takes_the_lease_of_a_leader_that_died() {
    let api = LeaseApi::start().await;
    let (one, _) = replica(&api);
    let (command, _) = replica(&api);
    assert_eq!(one.try_acquire().await.expect("first"), Attempt::Leading);
    drop(one); // never renewed again
    assert_eq!(command.take_unless_held().await.expect("answer"), Attempt::Leading);
    assert_eq!(api.holder(NAME).as_deref(), Some(command.identity()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_deleted_under_its_leader_is_created_again() {
    let api = LeaseApi::start().await;
    let (one, _) = replica(&api);
    assert_eq!(one.try_acquire().await.expect("first"), Attempt::Leading);
    api.delete(NAME);
    assert!(matches!(one.try_acquire().await.expect("again"), Attempt::Leading));
    assert_eq!(api.holder(NAME).as_deref(), Some(one.identity()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_asks_the_leader_to_hand_over_and_a_standby_leaves_the_released_lease_to_it() {
    let api = LeaseApi::start().await;
    let (leader, shared) = replica(&api);
    let (standby, _) = replica(&api);
    let (command, _) = replica(&api);
    assert_eq!(leader.try_acquire().await.expect("first"), Attempt::Leading);
    let (stop, handover) = (CancellationToken::new(), CancellationToken::new());
    let kept = {
        let (leader, stop, handover) = (leader.clone(), stop.clone(), handover.clone());
        tokio::spawn(async move { leader.keep(&stop, &handover).await })
    };
    let asking = {
        let command = command.clone();
        tokio::spawn(async move { command.take_by_handover(Duration::from_secs(20)).await })
    };
    tokio::time::timeout(Duration::from_secs(5), handover.cancelled()).await.expect("the leader is asked");
    // The leader goes on renewing while it finishes what runs, and what it shares still reaches the Lease.
    shared.set("jobs/app", Some(json!({"diverged": {"reason": "r"}})));
    shared.published(Duration::from_secs(5)).await.expect("still leading");
    assert_eq!(api.holder(NAME).as_deref(), Some(leader.identity()));
    stop.cancel();
    assert_eq!(kept.await.expect("keep"), Ended::Stopped);
    // Released, and marked for the command: a standby leaves it.
    let attempt = standby.try_acquire().await.expect("standby");
    assert!(matches!(&attempt, Attempt::HeldBy(h) if h.contains(command.identity())), "{attempt:?}");
    let taken = tokio::time::timeout(Duration::from_secs(10), asking).await.expect("taken").expect("task");
    assert_eq!(taken.expect("handover"), Attempt::Leading);
    let object = api.object(NAME).expect("lease");
    assert_eq!(object["spec"]["holderIdentity"], json!(command.identity()));
    assert!(
        object["metadata"]["annotations"].get("rotavault.io/handover-to").is_none(),
        "the request is done"
    );
    assert_eq!(
        api.shared(NAME)["jobs/app"]["diverged"]["reason"],
        json!("r"),
        "what the leader shared is kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handover_request_nobody_answers_is_withdrawn() {
    let api = LeaseApi::start().await;
    let (leader, _) = replica(&api);
    let (command, _) = replica(&api);
    assert_eq!(leader.try_acquire().await.expect("first"), Attempt::Leading);
    // A leader that renews but never finishes (its stop never comes).
    let (_stop, _kept) = keep(&leader);
    let attempt = command.take_by_handover(Duration::from_secs(2)).await.expect("answer");
    assert_eq!(attempt, Attempt::HeldBy(leader.identity().to_owned()));
    let object = api.object(NAME).expect("lease");
    assert!(
        object["metadata"]["annotations"].get("rotavault.io/handover-to").is_none(),
        "withdrawn: {object}"
    );
}
