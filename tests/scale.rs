//! The daemon with hundreds of jobs, in paused time: start-up reads each store once for all jobs and recovers only
//! what is pending, idle jobs share one timer (no wake-up per job), and store calls run with bounded concurrency
//! however many jobs are due at once. Timing and memory at 10,000 jobs are measured by `scripts/bench`, not here.

mod support;

use chrono::{DateTime, TimeZone, Utc};
use rotavault::daemon;
use rotavault::runtime::Runtime;
use rotavault::schedule::{Clock, TokioClock};
use rotavault::secret::SecretValue;
use rotavault::store::memory::MemoryStore;
use rotavault::store::{Metadata, RotationId, Store};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use support::slow_store::SlowStore;
use tokio_util::sync::CancellationToken;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 0, 30, 0).single().expect("date")
}

/// The wall clock as production has it (a sleep looks at the clock again at least once a minute, to notice a
/// jump) on tokio's paused time, counting every time a sleeper wakes.
#[derive(Debug)]
struct CountingClock {
    inner: TokioClock,
    wakes: AtomicUsize,
}

impl Clock for CountingClock {
    fn now(&self) -> DateTime<Utc> {
        self.inner.now()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            while let Ok(left) = (deadline - self.now()).to_std() {
                if left.is_zero() {
                    break;
                }
                tokio::time::sleep(left.min(Duration::from_secs(60))).await;
                self.wakes.fetch_add(1, Ordering::SeqCst);
            }
        })
    }
}

fn config(dir: &std::path::Path, jobs: usize) -> rotavault::config::Config {
    let mut source = format!(
        "state_dir = \"{}\"\n\n[http]\nlisten = \"\"\n\n[stores.mem]\nkind = \"memory\"\n\n[targets.shared]\nkind = \"generated\"\n",
        dir.join("state").display()
    );
    for n in 0..jobs {
        source.push_str(&format!(
            "\n[jobs.job-{n}]\ntarget = \"shared\"\nstores = [ {{ store = \"mem\", name = \"secret-{n}\" }} ]\nmax_age = \"30d\"\n"
        ));
    }
    rotavault::config::parse(&source, &dir.join("config.toml")).expect("valid config")
}

async fn build(
    config: rotavault::config::Config,
    clock: Arc<dyn Clock>,
    store: Arc<dyn Store>,
    shutdown: &CancellationToken,
) -> Arc<Runtime> {
    let ready = [("mem".to_owned(), store)].into_iter().collect();
    Arc::new(Runtime::build_with_stores(config, clock, shutdown.clone(), ready).await.expect("runtime"))
}

/// Gives every job a current secret rotated at `at`.
async fn seed(runtime: &Runtime, at: DateTime<Utc>) {
    for scheduled in &runtime.jobs {
        let js = &scheduled.job.stores[0];
        let value = SecretValue::new(format!("seeded-{}", scheduled.job.name));
        js.store.write_current(&js.secret, &value, &Metadata::new(None, at, 1)).await.expect("seed");
    }
}

async fn wait_ready(started: &daemon::Started) {
    for _ in 0..600 {
        if started.health().not_ready().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not ready after a minute: {:?}", started.health().not_ready());
}

#[tokio::test(start_paused = true)]
async fn start_up_reads_each_store_once_for_all_jobs_and_recovers_only_the_job_with_a_pending_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shutdown = CancellationToken::new();
    let clock = Arc::new(TokioClock::starting_at(start()));
    let runtime = build(config(dir.path(), 600), clock, Arc::new(MemoryStore::new()), &shutdown).await;
    seed(&runtime, start() - chrono::Duration::minutes(1)).await;
    // One job's run stopped after Stage: a pending value no apply was ever sent for.
    let js = &runtime.job("job-7").expect("job").job.stores[0];
    let id = RotationId::new();
    let staged = Metadata::new(Some(id.clone()), start(), 2);
    js.store.stage(&js.secret, &SecretValue::new("staged-then-crashed"), &id, &staged).await.expect("stage");
    let before = runtime.stores["mem"].counts();

    let started = daemon::start(runtime.clone(), shutdown.clone()).await.expect("starts");
    wait_ready(&started).await;
    let calls = |call: &str| {
        let after = runtime.stores["mem"].counts();
        let count = |counts: &rotavault::store::instrumented::CallCounts| {
            counts.iter().filter(|((c, _), _)| *c == call).map(|(_, n)| n).sum::<u64>()
        };
        count(&after) - count(&before)
    };
    // 600 secrets in chunks of 256: three batch reads, and one more for the job read back after its recovery.
    assert_eq!(calls("summaries"), 3 + 1);
    assert_eq!(calls("current"), 0, "no job read its store on its own");
    assert_eq!(calls("pending"), 1, "only the job with a pending value was recovered");
    assert_eq!(calls("discard"), 1);
    assert!(js.store.pending(&js.secret).await.expect("pending").is_none(), "the unsent value was discarded");

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(600), started.wait()).await.expect("stops");
}

#[tokio::test(start_paused = true)]
async fn idle_jobs_share_one_timer_that_wakes_at_most_once_a_minute() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shutdown = CancellationToken::new();
    let clock =
        Arc::new(CountingClock { inner: TokioClock::starting_at(start()), wakes: AtomicUsize::new(0) });
    let runtime =
        build(config(dir.path(), 500), clock.clone(), Arc::new(MemoryStore::new()), &shutdown).await;
    seed(&runtime, start()).await;
    let started = daemon::start(runtime.clone(), shutdown.clone()).await.expect("starts");
    wait_ready(&started).await;

    // An idle hour: every secret is 30 days from its max_age. One timer, woken once a minute to look at the wall
    // clock, not once a minute per job (500 jobs would wake 30,000 times).
    let before = clock.wakes.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let wakes = clock.wakes.load(Ordering::SeqCst) - before;
    assert!((55..=61).contains(&wakes), "{wakes} wake-ups in an idle hour");
    let state = runtime.engine.states().load("job-0").expect("state");
    assert!(state.last_attempt.is_none(), "nothing rotated while idle");

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(600), started.wait()).await.expect("stops");
}

#[tokio::test(start_paused = true)]
async fn three_hundred_jobs_due_at_once_rotate_with_a_bounded_number_of_store_calls_in_flight() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shutdown = CancellationToken::new();
    let clock = Arc::new(TokioClock::starting_at(start()));
    let slow = Arc::new(SlowStore::new(Arc::new(MemoryStore::new()), Duration::from_millis(20)));
    let runtime = build(config(dir.path(), 300), clock, slow.clone(), &shutdown).await;

    // No job has a secret yet: all 300 are due at start-up.
    let started = daemon::start(runtime.clone(), shutdown.clone()).await.expect("starts");
    tokio::time::sleep(Duration::from_secs(600)).await;
    for scheduled in &runtime.jobs {
        let js = &scheduled.job.stores[0];
        let current = js.store.current(&js.secret).await.expect("read");
        assert_eq!(current.map(|c| c.metadata.generation), Some(1), "{}", scheduled.job.name);
    }
    // Eight rotations at a time, each one store call at a time; the start-up read, four chunks of eight reads.
    // Not 300 at once.
    let most = slow.most_in_flight();
    assert!(most <= 32, "{most} store calls were in flight at once");
    assert!(slow.calls() >= 300 * 2, "every job staged and promoted: {} calls", slow.calls());

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(600), started.wait()).await.expect("stops");
}

/// The memory goal rests on the binary's allocator configuration (`.cargo/config.toml`): one arena, and freed pages
/// given back by jemalloc's background thread. A build without it still works, and quietly keeps its peaks.
#[cfg(all(target_os = "linux", not(target_env = "musl")))]
#[test]
fn the_binary_allocates_from_one_jemalloc_arena_whose_freed_pages_go_back_to_the_system() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_rotavault"))
        .arg("--version")
        // jemalloc prints its options, among its statistics, when the process exits.
        .env("_RJEM_MALLOC_CONF", "stats_print:true")
        .output()
        .expect("run rotavault --version");
    assert!(output.status.success(), "rotavault --version failed: {output:?}");
    let stats = String::from_utf8_lossy(&output.stderr);
    for option in [
        "opt.narenas: 1\n",
        "opt.background_thread: true",
        "opt.dirty_decay_ms: 1000",
        "opt.muzzy_decay_ms: 0",
        "opt.tcache_max: 1024\n",
    ] {
        assert!(
            stats.contains(option),
            "jemalloc's options lack `{}`; its statistics:\n{stats}",
            option.trim()
        );
    }
}
