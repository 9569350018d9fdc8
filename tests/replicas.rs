//! Replicas: two real `rotavault run` processes, each with its own state directory, sharing one Kubernetes Lease
//! (the fake Lease API of `tests/support/lease_api.rs`, reached through a kubeconfig), two shared stores (AWS
//! Secrets Manager on moto, OpenBao's KV v2) and the Autotask sandbox. The API user's job rotates every second.
//!
//! The leader is killed with SIGKILL at random moments, and a fresh process is started in its place as a standby;
//! after every kill, before the standby may take over (the Lease's duration has not passed), the state is frozen
//! and checked: the password the sandbox holds is in every store as current or pending (no loss), and no account
//! had more consecutive failed logins than the lockout guard's cap, across both processes and every kill (the
//! guard's counts live in the Lease, not on one replica's disk). The standby must take over within the Lease's
//! duration plus one retry and one schedule tick. From the sandbox's request log: no SOAP request overlaps
//! another in time (two rotations of the job at once would). At the end, with both stopped, a one-shot `rotate`
//! takes the Lease, and every store's current value is the one the sandbox accepts.
//!
//! Violations are counted, not panicked on, and the test fails at the end if there were any. 10 failovers by
//! default, 50 with `ROTAVAULT_TEST_FULL=1`; `ROTAVAULT_TEST_SEED=N` replays the moments of an earlier run. Needs
//! moto and OpenBao (`ROTAVAULT_TEST_AWS_ENDPOINT`, `ROTAVAULT_TEST_VAULT_ADDR`; it fails saying so when unset).

#![cfg(all(feature = "sandbox", feature = "aws", feature = "vault", feature = "kubernetes"))]

#[path = "kill/daemon.rs"]
#[allow(dead_code)]
mod daemon;
mod support;

use daemon::{Daemon, message_is, text};
use rotavault::runtime::Runtime;
use rotavault::sandbox::{Api, Call, Fault, FaultAction, Sandbox};
use rotavault::schedule::SystemClock;
use rotavault::store::SecretRef;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::lease_api::LeaseApi;
use tokio_util::sync::CancellationToken;

const BIN: &str = env!("CARGO_BIN_EXE_rotavault");
const ADMIN: &str = "admin@replicas.example";
const ADMIN_PASSWORD: &str = "Ad#min-replica-Passw0rd";
const API_USER: &str = "api@replicas.example";
const API_PASSWORD: &str = "Api#replica-initial-1";
const CODE: &str = "REPLICA-TEST-CODE";
// The sandbox locks an account after 5 failed logins in a row (its default); rotavault's guard stops at `GUARD`.
const GUARD: u32 = 3;
const DURATION: Duration = Duration::from_secs(2);
const RETRY: Duration = Duration::from_millis(300);
/// One schedule tick: the job is due every second.
const TICK: Duration = Duration::from_secs(1);

fn full() -> bool {
    std::env::var("ROTAVAULT_TEST_FULL").is_ok_and(|v| v == "1")
}

fn env(name: &str, what: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{what} is not running: {name} is unset; run the tests through scripts/test")
    })
}

/// xorshift64*: the random moments, replayable from the printed seed.
struct Moments(u64);

impl Moments {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % below.max(1)
    }
}

struct World {
    rt: tokio::runtime::Runtime,
    api: LeaseApi,
    sandbox: Sandbox,
    _shutdown: CancellationToken,
    dir: tempfile::TempDir,
    violations: Vec<String>,
    logs: Vec<String>,
    /// Every password seen at the target or in a store, for the search of everything printed and shared.
    secrets: std::collections::BTreeSet<String>,
}

impl World {
    fn new() -> World {
        let aws = env("ROTAVAULT_TEST_AWS_ENDPOINT", "moto");
        let bao = env("ROTAVAULT_TEST_VAULT_ADDR", "OpenBao");
        let token = env("ROTAVAULT_TEST_VAULT_TOKEN", "OpenBao");
        let rt =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
        let shutdown = CancellationToken::new();
        let accounts = support::tenant::Accounts {
            code: CODE,
            admin: ADMIN,
            admin_password: ADMIN_PASSWORD,
            user: API_USER,
            user_password: API_PASSWORD,
        };
        let (api, sandbox) = rt.block_on(async {
            (LeaseApi::start().await, support::tenant::start_sandbox(&accounts, &shutdown).await)
        });
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("code"), CODE).expect("code");
        std::fs::write(dir.path().join("bao-token"), &token).expect("token");
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (aws_name, bao_name) =
            (format!("rotavault-replicas/{}", &id[..12]), format!("replicas/{}", &id[..12]));
        let base = dir.path().display().to_string();
        for replica in ["a", "b"] {
            std::fs::create_dir_all(dir.path().join(replica)).expect("replica dir");
            std::fs::write(
                dir.path().join(replica).join("config.toml"),
                format!(
                    r#"state_dir = "state"

[http]
listen = "127.0.0.1:0"

[lease]
kind = "kubernetes"
name = "rotavault"
duration = "2s"
renew_deadline = "1200ms"
retry_period = "300ms"

[rotation]
settle = "50ms"
verify_backoff = "100ms"
apply_horizon = "1s"
max_failed_logins = {GUARD}

[stores.aws]
kind = "aws_secrets_manager"
region = "us-east-1"
endpoint_url = "{aws}"

[stores.bao]
kind = "hashicorp_vault"
address = "{bao}"
auth = "token"
token_file = "{base}/bao-token"

[targets.autotask]
kind = "autotask"
zone_lookup_url = "{zone}"
admin = {{ store = "aws", name = "{aws_name}-admin" }}

[jobs.admin]
target = "autotask"
users = ["{ADMIN}"]
integration_code_file = "{base}/code"
stores = [ {{ store = "aws", name = "{aws_name}-admin" }} ]
max_age = "30d"

[jobs.api]
target = "autotask"
users = ["{API_USER}"]
integration_code_file = "{base}/code"
stores = [ {{ store = "aws", name = "{aws_name}" }}, {{ store = "bao", name = "{bao_name}" }} ]
schedule = "* * * * * *"
max_age = "30d"
"#,
                    zone = sandbox.zone_lookup_url(),
                ),
            )
            .expect("config");
        }
        let mut world = World {
            rt,
            api,
            sandbox,
            _shutdown: shutdown,
            dir,
            violations: Vec::new(),
            logs: Vec::new(),
            secrets: [ADMIN_PASSWORD, API_PASSWORD].map(str::to_owned).into(),
        };
        for (job, password) in [("admin", ADMIN_PASSWORD), ("api", API_PASSWORD)] {
            let out = world.cli("a", &["import", job, "--no-rotate"], Some(&format!("{password}\n")));
            assert!(out.status.success(), "import {job}: {}", text(&out));
        }
        // Widen the window between the steps of a rotation, so that kills land inside them.
        world
            .sandbox
            .add_fault(Fault::always(Call::SoapUpdate, FaultAction::Delay(Duration::from_millis(150))));
        world.frozen_check("after the imports");
        assert!(world.violations.is_empty(), "the starting state is already wrong: {:?}", world.violations);
        world
    }

    fn config(&self, replica: &str) -> PathBuf {
        self.dir.path().join(replica).join("config.toml")
    }

    fn command(&self, replica: &str, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .current_dir(self.dir.path().join(replica))
            .arg("--config")
            .arg(self.config(replica))
            .args(args)
            .env("KUBECONFIG", &self.api.kubeconfig)
            .env("AWS_ACCESS_KEY_ID", "t")
            .env("AWS_SECRET_ACCESS_KEY", "t")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        command
    }

    fn cli(&self, replica: &str, args: &[&str], stdin: Option<&str>) -> Output {
        support::binary::run_bounded(self.command(replica, args), stdin, Duration::from_secs(60))
    }

    fn start(&self, replica: &str) -> Daemon {
        Daemon::spawn(self.command(replica, &["--log-format", "json", "run"]))
    }

    fn violation(&mut self, what: String) {
        eprintln!("VIOLATION: {what}");
        self.violations.push(what);
    }

    /// (current, pending) secrets of every store of `job`, read through the stores' own backends.
    fn slots(&self, job: &str) -> Vec<(String, Slots)> {
        let config = rotavault::config::load(&self.config("a")).expect("config");
        self.rt.block_on(async {
            let runtime = Runtime::build(config, Arc::new(SystemClock), CancellationToken::new())
                .await
                .expect("runtime");
            let scheduled = runtime.job(job).expect("job");
            let mut out = Vec::new();
            for js in &scheduled.job.stores {
                let secret: &SecretRef = &js.secret;
                let read = async {
                    let current = js.store.current(secret).await.map_err(|e| e.to_string())?;
                    let pending = js.store.pending(secret).await.map_err(|e| e.to_string())?;
                    Ok((
                        current.and_then(|s| secret_of(s.value.expose())),
                        pending.and_then(|p| secret_of(p.value.expose())),
                    ))
                };
                out.push((js.label.clone(), read.await));
            }
            out
        })
    }

    /// No loss for both jobs, and the lockout cap, on state no process changes now. Returns whether something
    /// was pending (the kill landed inside a rotation).
    fn frozen_check(&mut self, when: &str) -> bool {
        let mut inside = false;
        for (job, user) in [("api", API_USER), ("admin", ADMIN)] {
            let target = self.sandbox.password_of(user).expect("the user exists");
            self.secrets.insert(target.clone());
            for (store, slots) in self.slots(job) {
                match slots {
                    Err(e) => self.violation(format!("{when}: {job}: store {store} cannot be read: {e}")),
                    Ok((current, pending)) => {
                        inside |= pending.is_some();
                        self.secrets.extend(current.iter().chain(&pending).cloned());
                        let held = [current, pending].iter().any(|s| s.as_deref() == Some(target.as_str()));
                        if !held {
                            self.violation(format!(
                                "{when}: no loss broken: store {store} holds the {job} job's password at the target \
                                 neither as current nor as pending"
                            ));
                        }
                    }
                }
            }
            let most = self.sandbox.most_failed_logins(user);
            if most > GUARD {
                self.violation(format!(
                    "{when}: {user} had {most} failed logins in a row; the guard allows {GUARD}"
                ));
            }
        }
        inside
    }

    /// Which of `daemons` says it leads, within `limit`; every line read is kept.
    fn leader(&mut self, daemons: &[&Daemon], limit: Duration) -> Option<(usize, Instant)> {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            for (i, daemon) in daemons.iter().enumerate() {
                let mut hit = |line: &str| message_is(line, "leading: this replica runs the jobs");
                if daemon.wait_for(Duration::from_millis(20), &mut self.logs, &mut hit) {
                    return Some((i, Instant::now()));
                }
            }
        }
        None
    }

    /// No secret in anything the replicas printed (every line read) or shared (every write of the Lease).
    fn secret_search(&mut self) {
        let lease: Vec<String> = self.api.writes().iter().map(|w| w.object.to_string()).collect();
        let found: Vec<String> = self
            .secrets
            .iter()
            .filter(|secret| self.logs.iter().chain(&lease).any(|text| text.contains(secret.as_str())))
            .map(|secret| format!("a secret of {} characters was printed or shared", secret.len()))
            .collect();
        assert!(self.logs.len() > 10 && lease.len() > 10, "too little output to search");
        for what in found {
            self.violation(what);
        }
    }

    /// No SOAP request overlapped another in time: each rotation's query and update come one after the other.
    fn overlap_check(&mut self) {
        let mut soap: Vec<_> =
            self.sandbox.request_log().into_iter().filter(|r| r.api == Api::Soap).collect();
        soap.sort_by_key(|r| r.arrived);
        let updates = soap.iter().filter(|r| r.call == Some(Call::SoapUpdate)).count();
        assert!(updates > 0, "no rotation reached the target: the test proves nothing");
        for pair in soap.windows(2) {
            if pair[1].arrived < pair[0].at {
                let what = format!(
                    "two SOAP requests at once ({:?} from {} to {}, {:?} from {}): two rotations of one job overlapped",
                    pair[0].call, pair[0].arrived, pair[0].at, pair[1].call, pair[1].arrived
                );
                self.violation(what);
            }
        }
    }
}

/// A store's (current, pending) secrets, or why they could not be read.
type Slots = Result<(Option<String>, Option<String>), String>;

/// The `secret` field of a stored JSON payload.
fn secret_of(payload: &str) -> Option<String> {
    let doc: serde_json::Value = serde_json::from_str(payload).ok()?;
    doc["secret"].as_str().map(str::to_owned)
}

#[test]
fn the_leader_killed_at_random_moments_is_replaced_by_the_standby_and_no_invariant_breaks() {
    let failovers = if full() { 50 } else { 10 };
    let seed = std::env::var("ROTAVAULT_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        u64::from(std::process::id()) << 20 | u64::from(chrono::Utc::now().timestamp_subsec_micros())
    });
    eprintln!("ROTAVAULT_TEST_SEED={seed}");
    let mut moments = Moments(seed | 1);
    let mut world = World::new();
    let mut daemons = [Some(world.start("a")), Some(world.start("b"))];
    let replicas = ["a", "b"];
    let Some((mut leader, _)) = world
        .leader(&[daemons[0].as_ref().expect("a"), daemons[1].as_ref().expect("b")], Duration::from_secs(30))
    else {
        panic!("no replica took the lease within 30 s; logs:\n{}", world.logs.join("\n"));
    };
    let mut slowest = Duration::ZERO;
    let mut inside = 0;
    for kill in 0..failovers {
        // Let it rotate for a while: most kills land inside a rotation.
        std::thread::sleep(Duration::from_millis(300 + moments.next(2200)));
        let killed_at = Instant::now();
        let killed = daemons[leader].as_mut().expect("leader");
        killed.sigkill();
        // What was on its way to the sandbox has arrived; the standby cannot take over before the duration.
        std::thread::sleep(Duration::from_millis(250));
        if world.frozen_check(&format!("kill {kill}")) {
            inside += 1;
        }
        killed.drain(&mut world.logs);
        let standby = 1 - leader;
        daemons[leader] = Some(world.start(replicas[leader]));
        let Some((_, took_over)) =
            world.leader(&[daemons[standby].as_ref().expect("standby")], Duration::from_secs(20))
        else {
            world.violation(format!("kill {kill}: the standby did not take over within 20 s"));
            break;
        };
        let waited = took_over - killed_at;
        slowest = slowest.max(waited);
        let bound = DURATION + RETRY + TICK;
        if waited > bound + Duration::from_millis(500) {
            world.violation(format!(
                "kill {kill}: the standby took over after {waited:?}, more than {bound:?}"
            ));
        }
        leader = standby;
    }
    for daemon in daemons.iter_mut().flatten() {
        let code = daemon.sigterm();
        if code != Some(0) {
            world.violation(format!("a replica stopped with {code:?} on SIGTERM"));
        }
    }
    world.overlap_check();
    world.secret_search();
    // Both stopped (the leader released the Lease): a one-shot rotate takes it, settles what is left and rotates.
    std::thread::sleep(Duration::from_secs(1));
    let out = world.cli("b", &["rotate", "api"], None);
    if !out.status.success() {
        world.violation(format!("the final rotate failed: {}", text(&out)));
    }
    for (job, user) in [("api", API_USER), ("admin", ADMIN)] {
        let target = world.sandbox.password_of(user).expect("user");
        for (store, slots) in world.slots(job) {
            match slots {
                Ok((Some(current), None)) if current == target => {}
                other => world.violation(format!(
                    "at the end: {job}: store {store} does not hold the target's password as current with nothing \
                     pending ({:?})",
                    other.map(|(c, p)| (c.is_some(), p.is_some()))
                )),
            }
        }
    }
    let rotations = world.logs.iter().filter(|l| message_is(l, "rotation complete")).count();
    let updates = world.sandbox.request_log().iter().filter(|r| r.call == Some(Call::SoapUpdate)).count();
    eprintln!(
        "{failovers} failovers ({inside} inside a rotation), slowest takeover {slowest:?}; the killed leaders \
         completed {rotations} rotations; {updates} SOAP updates; {} lease writes",
        world.api.writes().len()
    );
    if inside == 0 {
        world.violation("no kill landed inside a rotation: the test proved little".into());
    }
    assert!(
        world.violations.is_empty(),
        "{} violation(s) (seed {seed}):\n{}",
        world.violations.len(),
        world.violations.join("\n")
    );
}

/// A person runs `resolve` while the daemons run: the leader is asked to hand the Lease over, finishes what it
/// runs, releases it and exits 75 (to be started again as a standby); the command runs on the Lease and releases
/// it, and a replica leads again.
#[test]
fn a_person_resolves_a_job_while_replicas_run_through_a_handover_of_the_lease() {
    let mut world = World::new();
    let mut daemons = [world.start("a"), world.start("b")];
    let Some((leader, _)) = world.leader(&[&daemons[0], &daemons[1]], Duration::from_secs(30)) else {
        panic!("no replica took the lease within 30 s; logs:\n{}", world.logs.join("\n"));
    };
    std::thread::sleep(Duration::from_millis(500));
    // `rotate` does not ask for the Lease: a live leader holds it, so it is busy.
    let out = world.cli("a", &["rotate", "api"], None);
    assert_eq!(out.status.code(), Some(75), "rotate while a replica leads: {}", text(&out));
    assert!(text(&out).contains("POST /v1/jobs/JOB/rotate"), "{}", text(&out));
    let out = world.cli("a", &["resolve", "api"], None);
    assert!(out.status.success(), "resolve: {}", text(&out));
    let stopped = (0..600).find_map(|_| {
        std::thread::sleep(Duration::from_millis(50));
        daemons[leader].child.try_wait().expect("try_wait")
    });
    daemons[leader].dead = true;
    assert_eq!(stopped.and_then(|s| s.code()), Some(75), "the leader that handed the lease over exits 75");
    let standby = 1 - leader;
    assert!(
        world.leader(&[&daemons[standby]], Duration::from_secs(20)).is_some(),
        "the standby leads once the command has released the lease"
    );
    daemons[standby].sigterm();
    world.frozen_check("after the handover");
    assert!(world.violations.is_empty(), "{}", world.violations.join("\n"));
}

/// `status` on any replica shows what the leader shares: a diverged mark that lives only in the Lease.
#[test]
fn status_shows_the_diverged_mark_the_leader_shared() {
    let world = World::new();
    world.api.touch("rotavault", |lease| {
        let shared = serde_json::json!({
            "jobs/api": {"diverged": {"since": "2026-12-01T00:00:00Z", "reason": "both values refused"}}
        });
        lease["metadata"]["annotations"]["rotavault.io/shared"] = serde_json::json!(shared.to_string());
    });
    let out = world.cli("b", &["status", "--json"], None);
    assert!(out.status.success(), "status: {}", text(&out));
    let jobs: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let api = jobs.as_array().expect("array").iter().find(|j| j["job"] == "api").expect("api job");
    assert_eq!(api["state"], "diverged", "{api}");
    let admin = jobs.as_array().expect("array").iter().find(|j| j["job"] == "admin").expect("admin job");
    assert_eq!(admin["state"], "ok", "{admin}");
}

/// SIGHUP: a reload keeps the process's shared state (the lease goes on writing it) and refuses a changed
/// `[lease]`, which only a restart can take.
#[test]
fn a_reload_keeps_the_shared_state_and_refuses_a_changed_lease() {
    let world = World::new();
    let path = world.config("a");
    let config = rotavault::config::load(&path).expect("config");
    world.rt.block_on(async {
        let runtime =
            Runtime::build(config, Arc::new(SystemClock), CancellationToken::new()).await.expect("runtime");
        let next = rotavault::daemon::reload::reload(&path, &runtime, CancellationToken::new())
            .await
            .expect("the same config reloads");
        let (now, then) = (runtime.shared.as_ref().expect("shared"), next.shared.as_ref().expect("shared"));
        assert!(Arc::ptr_eq(now, then), "the reloaded runtime keeps the shared state");
        let text = std::fs::read_to_string(&path).expect("read");
        std::fs::write(&path, text.replace("duration = \"2s\"", "duration = \"3s\"")).expect("write");
        let err = rotavault::daemon::reload::reload(&path, &runtime, CancellationToken::new())
            .await
            .expect_err("a changed lease");
        assert!(err.to_string().contains("[lease] changed"), "{err}");
    });
}
