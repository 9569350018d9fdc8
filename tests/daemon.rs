//! The daemon's scheduling loop (`daemon::serve`) over simulated days, with tokio's paused clock: jobs rotate
//! exactly when their schedule and age policy say, a fire missed while the daemon was down runs once at start-up,
//! shutdown stops every job task, and a store that cannot say how old the secret is never starts a rotation.

mod support;

use chrono::{DateTime, TimeZone, Utc};
use rotavault::daemon::serve;
use rotavault::runtime::Runtime;
use rotavault::schedule::TokioClock;
use rotavault::secret::SecretValue;
use rotavault::store::memory::MemoryStore;
use rotavault::store::{Metadata, Store};
use std::sync::Arc;
use std::time::Duration;
use support::faulty_store::{Fault, FaultyStore, Op};
use support::scripted_target::ScriptedTarget;
use tokio_util::sync::CancellationToken;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 0, 30, 0).single().expect("date")
}

async fn runtime(dir: &std::path::Path, shutdown: &CancellationToken) -> Arc<Runtime> {
    let source = format!(
        r#"
state_dir = "{}"

[stores.mem]
kind = "memory"

[targets.shared]
kind = "generated"

[jobs.hourly]
target = "shared"
stores = [ {{ store = "mem", name = "hourly" }} ]
schedule = "0 * * * *"

[jobs.aged]
target = "shared"
stores = [ {{ store = "mem", name = "aged" }} ]
max_age = "6h"
"#,
        dir.join("state").display()
    );
    let config = rotavault::config::parse(&source, &dir.join("config.toml")).expect("valid config");
    let clock = Arc::new(TokioClock::starting_at(start()));
    Arc::new(Runtime::build(config, clock, shutdown.clone()).await.expect("runtime"))
}

async fn generation(runtime: &Runtime, job: &str) -> u64 {
    let js = &runtime.job(job).expect("job").job.stores[0];
    js.store.current(&js.secret).await.expect("read").map_or(0, |s| s.metadata.generation)
}

#[tokio::test(start_paused = true)]
async fn jobs_rotate_on_their_schedule_and_age_over_a_simulated_day() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shutdown = CancellationToken::new();
    let runtime = runtime(dir.path(), &shutdown).await;
    let daemon = tokio::spawn(serve(runtime.clone(), shutdown.clone()));

    // 00:30 to 23:30: both jobs get their first secret at start-up; `hourly` then rotates at 01:00 … 23:00
    // (23 fires), `aged` whenever its secret turns 6 hours old (06:30, 12:30, 18:30).
    tokio::time::sleep(Duration::from_secs(23 * 3600)).await;
    assert_eq!(generation(&runtime, "hourly").await, 1 + 23);
    assert_eq!(generation(&runtime, "aged").await, 1 + 3);

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(600), daemon).await.expect("stops").expect("no panic");
}

#[tokio::test(start_paused = true)]
async fn a_fire_missed_while_down_runs_once_at_start_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shutdown = CancellationToken::new();
    let runtime = runtime(dir.path(), &shutdown).await;
    // The secret is two days old: 48 hourly fires were missed while the daemon was down.
    let two_days_ago = start() - chrono::Duration::days(2);
    for name in ["hourly", "aged"] {
        let js = &runtime.job(name).expect("job").job.stores[0];
        js.store
            .write_current(
                &js.secret,
                &SecretValue::new("old-secret-from-before"),
                &Metadata::new(None, two_days_ago, 1),
            )
            .await
            .expect("seed");
    }
    let daemon = tokio::spawn(serve(runtime.clone(), shutdown.clone()));

    // Ten minutes in: one catch-up rotation each, not one per missed fire.
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(generation(&runtime, "hourly").await, 2);
    assert_eq!(generation(&runtime, "aged").await, 2);

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(600), daemon).await.expect("stops").expect("no panic");
}

/// One job on a store that fails as told, its secret written a minute before the daemon starts, due at 6 hours.
async fn faulty_rig(dir: &std::path::Path, shutdown: &CancellationToken) -> (Arc<Runtime>, Arc<FaultyStore>) {
    let source = format!(
        r#"
state_dir = "{}"

[stores.mem]
kind = "memory"

[targets.shared]
kind = "generated"

[jobs.aged]
target = "shared"
stores = [ {{ store = "mem", name = "aged" }} ]
max_age = "6h"
"#,
        dir.join("state").display()
    );
    let config = rotavault::config::parse(&source, &dir.join("config.toml")).expect("valid config");
    let faulty = Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())));
    let ready = [("mem".to_owned(), faulty.clone() as Arc<dyn Store>)].into_iter().collect();
    let clock = Arc::new(TokioClock::starting_at(start()));
    let runtime = Runtime::build_with_stores(config, clock, shutdown.clone(), ready).await.expect("runtime");
    let js = &runtime.job("aged").expect("job").job.stores[0];
    let minute_ago = start() - chrono::Duration::minutes(1);
    js.store
        .write_current(
            &js.secret,
            &SecretValue::new("fresh-secret-from-a-minute-ago"),
            &Metadata::new(None, minute_ago, 1),
        )
        .await
        .expect("seed");
    (Arc::new(runtime), faulty)
}

/// [`faulty_rig`]'s job on a scripted target that accepts the seeded secret, for tests that play the target.
async fn scripted_rig(dir: &std::path::Path, shutdown: &CancellationToken) -> (Runtime, Arc<ScriptedTarget>) {
    let (runtime, _) = faulty_rig(dir, shutdown).await;
    let mut runtime = Arc::into_inner(runtime).expect("one owner");
    let target = Arc::new(ScriptedTarget::new());
    target.set_behind_the_back("fresh-secret-from-a-minute-ago");
    runtime.jobs[0].job.target = target.clone();
    (runtime, target)
}

#[tokio::test(start_paused = true)]
async fn a_store_read_error_while_working_out_when_a_job_is_due_never_starts_a_rotation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shutdown = CancellationToken::new();
    let (runtime, faulty) = faulty_rig(dir.path(), &shutdown).await;
    // Refused reads (not retried), then a transient run longer than one evaluation's retries.
    faulty.inject(Op::Current, Fault::Fail(FaultyStore::permanent("denied for now")), 3);
    faulty.inject(Op::Current, Fault::Fail(FaultyStore::transient("throttled")), 12);
    let daemon = tokio::spawn(serve(runtime.clone(), shutdown.clone()));

    // An hour in, the store answers again; the secret is an hour old and due at 6 hours: nothing was rotated, and
    // no rotation was even started (the engine records every one it starts).
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(faulty.calls(Op::Current) > 15, "the age was read again after each failure");
    assert_eq!(faulty.calls(Op::Stage), 0);
    assert_eq!(generation(&runtime, "aged").await, 1);
    let state = runtime.engine.states().load("aged").expect("state");
    assert!(state.last_attempt.is_none(), "a rotation was started: {:?}", state.last_attempt);

    // The age policy still holds once the store answers.
    tokio::time::sleep(Duration::from_secs(5 * 3600 + 600)).await;
    assert_eq!(generation(&runtime, "aged").await, 2, "rotated when the secret turned 6 hours old");

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(600), daemon).await.expect("stops").expect("no panic");
}

#[tokio::test(start_paused = true)]
async fn a_store_that_hangs_while_the_age_is_read_times_out_and_gives_way_to_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shutdown = CancellationToken::new();
    let (runtime, faulty) = faulty_rig(dir.path(), &shutdown).await;
    faulty.inject(Op::Current, Fault::Hang, 10_000);
    let daemon = tokio::spawn(serve(runtime.clone(), shutdown.clone()));

    // Each read is cut off at the call timeout and retried; none of them makes the job due.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let reads = faulty.calls(Op::Current);
    let timeout = runtime.engine.settings().call_timeout;
    assert!(reads >= 10, "reads were cut off at {timeout:?} and tried again: {reads}");
    assert_eq!(faulty.calls(Op::Stage), 0);
    assert!(runtime.engine.states().load("aged").expect("state").last_attempt.is_none());

    // SIGTERM while a read hangs: the daemon stops at once, not after the read.
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(1), daemon).await.expect("stops at once").expect("no panic");
}

#[tokio::test(start_paused = true)]
async fn a_value_whose_apply_was_sent_is_settled_when_the_apply_horizon_ends_even_in_a_blackout_window() {
    use rotavault::rotation::state::ApplyIntent;
    use rotavault::store::RotationId;
    let dir = tempfile::tempdir().expect("tempdir");
    let shutdown = CancellationToken::new();
    // A target that still takes the old value: the apply of the new one was sent just before a crash, and the
    // server carries it out a minute later.
    let (mut runtime, target) = scripted_rig(dir.path(), &shutdown).await;
    // A change freeze over the whole test: settling a sent value is never held by it.
    let day = |d: &str| d.parse::<chrono::NaiveDate>().expect("date");
    let freeze = rotavault::schedule::Blackout::days(day("2026-05-31"), day("2026-06-30"), None);
    runtime.jobs[0].blackouts = Some(Arc::from([freeze]));
    let job = runtime.jobs[0].job.clone();
    let id = RotationId::new();
    let js = &job.stores[0];
    js.store
        .stage(
            &js.secret,
            &SecretValue::new("sent-before-the-crash"),
            &id,
            &Metadata::new(Some(id.clone()), start(), 2),
        )
        .await
        .expect("stage");
    let intent = ApplyIntent { rotation_id: id.clone(), account: None, at: start(), confirmed: false };
    runtime.engine.states().update("aged", |s| s.apply_intent = Some(intent)).expect("intent");
    let horizon = runtime.engine.apply_horizon(&job);
    let runtime = Arc::new(runtime);
    let daemon = tokio::spawn(serve(runtime.clone(), shutdown.clone()));

    tokio::time::sleep(Duration::from_secs(60)).await;
    target.set_behind_the_back("sent-before-the-crash");
    // Before the horizon ends the value stays pending: the start-up recovery could not settle it.
    tokio::time::sleep(horizon - Duration::from_secs(90)).await;
    assert!(
        js.store.pending(&js.secret).await.expect("pending").is_some(),
        "kept pending within the horizon"
    );
    // Soon after it ends, settled: current everywhere, days before the job is next due (6 hours).
    tokio::time::sleep(Duration::from_secs(90)).await;
    let current = js.store.current(&js.secret).await.expect("current").expect("a value");
    assert!(current.value.expose() == "sent-before-the-crash", "the late apply's value is current");
    assert_eq!(current.metadata.rotation_id, Some(id));
    assert!(js.store.pending(&js.secret).await.expect("pending").is_none());
    assert_eq!(target.applies(), 0, "settled, not rotated again");
    assert!(target.most_consecutive_failed() <= 3);

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(600), daemon).await.expect("stops").expect("no panic");
}

#[tokio::test(start_paused = true)]
async fn a_rotation_past_apply_when_the_daemon_is_told_to_stop_runs_to_its_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shutdown = CancellationToken::new();
    let (runtime, target) = scripted_rig(dir.path(), &shutdown).await;
    // SIGTERM arrives as the apply request leaves, when the secret turns 6 hours old.
    let stop = shutdown.clone();
    target.before_apply(move || stop.cancel());
    let runtime = Arc::new(runtime);
    let daemon = tokio::spawn(serve(runtime.clone(), shutdown.clone()));

    tokio::time::timeout(Duration::from_secs(7 * 3600), daemon).await.expect("stops").expect("no panic");
    assert_eq!(target.applies(), 1);
    // Not left pending: the target has the new value, so every store must have it as current.
    let js = &runtime.jobs[0].job.stores[0];
    assert!(js.store.pending(&js.secret).await.expect("pending").is_none(), "left pending at the stop");
    let current = js.store.current(&js.secret).await.expect("current").expect("a value");
    assert_eq!(current.metadata.generation, 2);
    assert_eq!(target.accepted().as_deref(), Some(current.value.expose()));
}

/// A scheduled rotation due inside a blackout window starts when the window ends, never inside it; a rotation held
/// past its secret's max_age raises the age warning when the warning's lead begins.
#[tokio::test(start_paused = true)]
async fn a_rotation_due_in_a_blackout_window_waits_for_its_end_and_a_held_max_age_is_warned_about() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shutdown = CancellationToken::new();
    let audit = dir.path().join("audit.jsonl");
    let source = format!(
        r#"
state_dir = "{state}"

[audit]
path = "{audit}"

[[blackout]]
cron = "0 9 * * *"
duration = "8h"
reason = "office hours"

[stores.mem]
kind = "memory"

[targets.shared]
kind = "generated"

[jobs.hourly]
target = "shared"
stores = [ {{ store = "mem", name = "hourly" }} ]
schedule = "0 * * * *"

[jobs.aged]
target = "shared"
stores = [ {{ store = "mem", name = "aged" }} ]
max_age = "10h"
blackout = [ {{ cron = "0 5 * * *", duration = "20h" }} ]
"#,
        state = dir.path().join("state").display(),
        audit = audit.display(),
    );
    let config = rotavault::config::parse(&source, &dir.path().join("config.toml")).expect("valid config");
    let clock = Arc::new(TokioClock::starting_at(start()));
    let runtime = Arc::new(Runtime::build(config, clock, shutdown.clone()).await.expect("runtime"));
    let daemon = tokio::spawn(serve(runtime.clone(), shutdown.clone()));

    // 00:30: both get their first secret at start-up (a job never rotated is not held: it has no secret yet).
    tokio::time::sleep(Duration::from_secs(8 * 3600 + 35 * 60)).await; // 09:05
    let at_nine = generation(&runtime, "hourly").await;
    tokio::time::sleep(Duration::from_secs(7 * 3600 + 50 * 60)).await; // 16:55
    assert_eq!(generation(&runtime, "hourly").await, at_nine, "no rotation inside the window");
    tokio::time::sleep(Duration::from_secs(35 * 60)).await; // 17:30
    assert_eq!(generation(&runtime, "hourly").await, at_nine + 1, "the held fire runs once when it ends");

    // `aged`'s own window runs 05:00 to 01:00: its first secret waits for 01:00 (the window opened the day
    // before). Max_age 10h makes it due at 11:00, inside the next window, so it is held to 01:00 the next day,
    // past its max_age: the warning comes at 10:00, when its lead (a tenth of max_age, 1h) begins.
    assert_eq!(generation(&runtime, "aged").await, 1, "held since 11:00");
    let events = std::fs::read_to_string(&audit).expect("audit file");
    let warning =
        events.lines().find(|l| l.contains("age_warning") && l.contains("\"aged\"")).expect("a warning");
    assert!(warning.contains(r#""time":"2026-06-01T10:00:00"#), "{warning}");
    tokio::time::sleep(Duration::from_secs(7 * 3600)).await; // 00:30 the next day
    assert_eq!(generation(&runtime, "aged").await, 1, "still inside its window");
    tokio::time::sleep(Duration::from_secs(3600)).await; // 01:30
    assert_eq!(generation(&runtime, "aged").await, 2, "rotated once its window ended");

    let status = rotavault::status::statuses(&runtime, runtime.engine.clock().now()).await;
    let of = |job: &str| status.iter().find(|s| s.job == job).expect("job");
    let held = of("aged").blackout.clone().expect("status shows the window that holds it");
    assert!(held.starts_with("held until 2026-06-03 01:00:00 UTC: `0 5 * * *` for 20h"), "{held}");
    assert_eq!(of("hourly").blackout, None, "its next fire, 02:00, is outside every window");

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(600), daemon).await.expect("stops").expect("no panic");
}
