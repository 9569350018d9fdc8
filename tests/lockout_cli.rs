//! The admin lockout and the late commit, through the real binary against an in-process sandbox.
//!
//! An admin whose password a person changed behind rotavault's back must never be locked by rotavault: however
//! many `rotate` runs, daemon restarts and `check --connect` runs follow, the sandbox's consecutive failed logins
//! for it stay within the lockout guard's cap, every job of the tenant shows `blocked` with what to do, and once a
//! person imports the working credential the jobs rotate again; whichever job meets the refusal first (the admin
//! job's own check included), no other presents that credential again. An update that the sandbox commits after the
//! client gave up (a server that finishes anyway) loses nothing: the value stays pending until the late commit
//! shows, for an API user and for the admin rotating itself (even through a moment when neither admin password
//! works, which blocks nothing), by `rotate` and by the daemon when the apply horizon ends. Nothing any command
//! prints holds a secret.

mod support;

use rotavault::sandbox::{Call, Fault, FaultAction, Sandbox};
use rotavault::store::file::{FileStore, IdentitySource};
use rotavault::store::{SecretRef, Store};
use std::process::Output;
use std::time::{Duration, Instant};
use support::binary::{Rotavault, message_is, text};
use support::tenant::{Accounts, start_sandbox};
use tokio_util::sync::CancellationToken;

const CODE: &str = "LOCKOUT-CLI-CODE";
const ADMIN: &str = "admin@lockout.example";
const ADMIN_PASSWORD: &str = "Ad#min-lockout-Passw0rd";
const USER: &str = "api@lockout.example";
const USER_PASSWORD: &str = "Api#lockout-initial-1";
/// What a person set in the Autotask UI for the admin.
const CHANGED_PASSWORD: &str = "Set-by-a-p3rson-in-the-UI!";
/// rotavault's lockout guard: `[rotation] max_failed_logins`, 3 by default.
const GUARD: u32 = 3;
/// The late commit: longer than the tenant's `timeout` (5 s), shorter than the apply horizon (10 s).
const LATE: Duration = Duration::from_secs(8);
/// `[rotation] apply_horizon` in the late-commit configs.
const HORIZON: Duration = Duration::from_secs(10);
/// How long a late-committed password takes to work, where a test sets it: long enough that neither password
/// works for a while within the horizon.
const PROPAGATION: Duration = Duration::from_secs(4);

/// A sandbox tenant, a file store and a config of two jobs (the admin and an API user) around it.
struct Tenant {
    rt: tokio::runtime::Runtime,
    sandbox: Sandbox,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
    rotavault: Rotavault,
    file: FileStore,
    /// Everything every command printed, for the secret search.
    printed: String,
    /// Every password either account has had, for the secret search.
    secrets: Vec<String>,
}

impl Drop for Tenant {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Tenant {
    /// `rotation` and `tenant` are extra lines for the `[rotation]` and `[targets.autotask]` tables; `schedule`
    /// is the schedule line of both jobs (or empty).
    fn new(rotation: &str, tenant: &str, schedule: &str) -> Tenant {
        let rt =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
        let shutdown = CancellationToken::new();
        let accounts = Accounts {
            code: CODE,
            admin: ADMIN,
            admin_password: ADMIN_PASSWORD,
            user: USER,
            user_password: USER_PASSWORD,
        };
        let sandbox = rt.block_on(start_sandbox(&accounts, &shutdown));
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("code"), CODE).expect("code");
        let key = dir.path().join("store.key");
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                r#"state_dir = "state"

# Port 0: daemons of parallel tests never meet on the default port.
[http]
listen = "127.0.0.1:0"

[rotation]
settle = "50ms"
verify_backoff = "100ms"
{rotation}

[stores.local]
kind = "file"
path = "secrets.age"
identity_file = "store.key"

[targets.autotask]
kind = "autotask"
zone_lookup_url = "{zone}"
admin = {{ store = "local", name = "autotask/admin" }}
{tenant}

[jobs.admin]
target = "autotask"
users = ["{ADMIN}"]
integration_code_file = "code"
stores = [ {{ store = "local", name = "autotask/admin" }} ]
max_age = "30d"
{schedule}

[jobs.api]
target = "autotask"
users = ["{USER}"]
integration_code_file = "code"
stores = [ {{ store = "local", name = "autotask/api" }} ]
max_age = "30d"
{schedule}
"#,
                zone = sandbox.zone_lookup_url(),
            ),
        )
        .expect("config");
        let rotavault = Rotavault::new(dir.path(), config);
        let out = rotavault.cli(&["keygen", "--out", "store.key"], None);
        assert!(out.status.success(), "keygen: {}", text(&out));
        let file = FileStore::open(dir.path().join("secrets.age"), IdentitySource::File(key)).expect("store");
        let mut tenant = Tenant {
            rt,
            sandbox,
            shutdown,
            _dir: dir,
            rotavault,
            file,
            printed: String::new(),
            secrets: vec![ADMIN_PASSWORD.into(), USER_PASSWORD.into(), CHANGED_PASSWORD.into()],
        };
        for (job, password) in [("admin", ADMIN_PASSWORD), ("api", USER_PASSWORD)] {
            let out = tenant.cli(&["import", job, "--no-rotate"], Some(&format!("{password}\n")));
            assert!(out.status.success(), "import {job}: {}", text(&out));
        }
        tenant
    }

    /// Runs a command, keeping what it printed for the secret search and every password the sandbox now has.
    fn cli(&mut self, args: &[&str], stdin: Option<&str>) -> Output {
        let out = self.rotavault.cli(args, stdin);
        self.printed.push_str(&text(&out));
        self.note_passwords();
        out
    }

    fn note_passwords(&mut self) {
        for user in [ADMIN, USER] {
            if let Some(password) = self.sandbox.password_of(user)
                && !self.secrets.contains(&password)
            {
                self.secrets.push(password);
            }
        }
    }

    /// The job's `status --json` entry.
    fn status_of(&mut self, job: &str) -> serde_json::Value {
        let out = self.cli(&["status", "--json"], None);
        assert!(out.status.success(), "status: {}", text(&out));
        let all: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
        all.as_array().expect("a list of jobs").iter().find(|j| j["job"] == job).expect("the job").clone()
    }

    /// The `secret` in the (current, pending) payloads of `name` in the file store.
    fn slots(&self, name: &str, job: &str) -> (Option<String>, Option<String>) {
        let secret = SecretRef::new(name, job);
        self.rt.block_on(async {
            let current = self.file.current(&secret).await.expect("file store current");
            let pending = self.file.pending(&secret).await.expect("file store pending");
            (current.map(|c| secret_of(c.value.expose())), pending.map(|p| secret_of(p.value.expose())))
        })
    }

    /// No loss: the password the sandbox has for `user` is in the job's store, as current or pending.
    fn assert_held(&self, user: &str, name: &str, job: &str, when: &str) {
        let target = self.sandbox.password_of(user).expect("the user exists");
        let (current, pending) = self.slots(name, job);
        assert!(
            current.as_deref() == Some(&target) || pending.as_deref() == Some(&target),
            "{when}: the store holds the {job} password the sandbox has neither as current nor as pending"
        );
    }

    /// Settled: the store's current authenticates at the sandbox and nothing is pending.
    fn assert_settled(&self, user: &str, name: &str, job: &str, when: &str) {
        let (current, pending) = self.slots(name, job);
        let current = current.unwrap_or_else(|| panic!("{when}: the {job} store has no current value"));
        assert!(
            self.sandbox.authenticates(user, &current),
            "{when}: the {job} current does not authenticate"
        );
        assert!(pending.is_none(), "{when}: the {job} store still holds a pending value");
    }

    /// The sandbox's consecutive failed logins of each account never go above the guard's cap.
    fn assert_within_guard(&self, when: &str) -> u32 {
        let mut most = 0;
        for user in [ADMIN, USER] {
            let failed = self.sandbox.failed_logins(user);
            assert!(
                failed <= GUARD && !self.sandbox.is_locked(user),
                "{when}: {user} has {failed} consecutive failed logins, more than the guard's {GUARD}"
            );
            most = most.max(failed);
        }
        most
    }

    /// The job's apply intent time, from its state file, if it has one.
    fn intent_at(&self, job: &str) -> Option<chrono::DateTime<chrono::Utc>> {
        let path = self.rotavault.dir.join("state/jobs").join(format!("{job}.json"));
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).expect("job state")).expect("state JSON");
        state["apply_intent"]["at"].as_str().map(|at| at.parse().expect("an RFC 3339 time"))
    }

    /// Blocks until `n` late commits have landed (bounded, so a commit that never comes fails the test).
    fn until_late_commits(&self, n: u64) {
        let landed = self.rt.block_on(async {
            tokio::time::timeout(LATE * 3, self.sandbox.until_late_commits(n)).await.is_ok()
        });
        assert!(landed, "the late commit never landed");
    }

    /// Nothing printed holds any password either account has had.
    fn assert_no_secret_printed(&mut self) {
        self.note_passwords();
        assert!(!self.printed.is_empty());
        for secret in &self.secrets {
            assert!(!self.printed.contains(secret.as_str()), "a password was printed");
        }
    }
}

fn secret_of(payload: &str) -> String {
    let doc: serde_json::Value = serde_json::from_str(payload).expect("a JSON payload");
    doc["secret"].as_str().expect("a secret").to_owned()
}

/// Sleeps (for real: it is the target's clock the scenario waits on) until `at` has passed.
fn sleep_past(at: chrono::DateTime<chrono::Utc>) {
    let left = (at - chrono::Utc::now()).to_std().unwrap_or_default();
    std::thread::sleep(left + Duration::from_millis(200));
}

#[test]
fn an_admin_changed_behind_rotavaults_back_is_never_locked_by_rotate_runs_restarts_or_checks() {
    // Both jobs due every second, so that every daemon start tries them.
    let mut t = Tenant::new("", "", r#"schedule = "* * * * * *""#);
    t.sandbox.set_password_behind_the_back(ADMIN, CHANGED_PASSWORD);

    for run in 0..6 {
        let job = if run % 2 == 0 { "api" } else { "admin" };
        let out = t.cli(&["rotate", job], None);
        let printed = text(&out);
        assert_eq!(out.status.code(), Some(3), "rotate {job} (run {run}) exits 3: {printed}");
        let message = printed.lines().filter(|l| l.starts_with("rotavault:")).collect::<Vec<_>>().join("\n");
        assert!(message.contains("until a person acts"), "run {run}: says a person must act: {printed}");
        t.assert_within_guard(&format!("after rotate {job} (run {run})"));
    }
    let after_rotates = t.sandbox.failed_logins(ADMIN);
    assert!(after_rotates >= 1, "the changed admin password was never presented: the test tested nothing");

    for restart in 0..6 {
        let mut daemon = t.rotavault.start_daemon();
        // Let it try: each job's first due run ends blocked.
        let tried = daemon.wait_until(Duration::from_secs(20), &mut |log| {
            log.iter().filter(|l| message_is(l, "job blocked until a person acts")).count() >= 2
        });
        let code = daemon.sigterm();
        t.printed.push_str(&daemon.text());
        assert!(tried, "restart {restart}: the daemon did not try both jobs:\n{}", daemon.text());
        assert_eq!(code, Some(0), "restart {restart}: the daemon stops cleanly on SIGTERM");
        t.assert_within_guard(&format!("after daemon restart {restart}"));
    }

    let out = t.cli(&["check", "--connect"], None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("not tried"),
        "check --connect presents the refused admin again: {}",
        text(&out)
    );
    t.assert_within_guard("after check --connect");
    assert_eq!(t.sandbox.failed_logins(ADMIN), after_rotates, "nothing presented the refused admin again");

    for job in ["admin", "api"] {
        let status = t.status_of(job);
        assert_eq!(status["state"], "blocked", "{status}");
        let action = status["action"].as_str().unwrap_or_default();
        assert!(
            action.contains("admin credential refused") && action.contains("rotavault import"),
            "{status}"
        );
        assert!(!action.contains("  "), "the action reads as one sentence, not a broken line: {action:?}");
    }
    let admin = t.status_of("admin");
    let logins = admin["failed_logins"].as_array().expect("the admin's failed logins are shown");
    let account =
        logins.iter().find(|a| a["account"] == format!("autotask:{ADMIN}")).expect("the admin account");
    let consecutive = account["consecutive"].as_u64().expect("a count");
    assert!((1..=u64::from(GUARD)).contains(&consecutive), "{account}");
    assert_eq!(account["max"], GUARD);
    assert_eq!(consecutive, u64::from(after_rotates), "the guard counts what Autotask counted: {account}");

    let out = t.cli(&["status"], None);
    let table = text(&out);
    assert!(out.status.success(), "{table}");
    for job in ["admin", "api"] {
        assert!(
            table.lines().any(|l| l.starts_with(job) && l.contains("blocked")),
            "the table shows {job} blocked: {table}"
        );
    }
    assert!(table.contains("rotavault import"), "the table says what to do: {table}");
    assert!(table.contains(&format!("account autotask:{ADMIN} has {consecutive} consecutive")), "{table}");
    // Every line of that table, failed logins too, is a report line: a full standard output is no panic.
    let out = t.rotavault.cli_to_full_stdout(&["status"]);
    t.printed.push_str(&text(&out));
    assert_eq!(out.status.code(), Some(1), "a lost report fails without panicking: {}", text(&out));

    // A person brings in the admin's working credential; it is rotated at once, and every job goes on.
    let out = t.cli(&["import", "admin"], Some(&format!("{CHANGED_PASSWORD}\n")));
    assert!(out.status.success(), "import admin: {}", text(&out));
    assert_eq!(t.sandbox.failed_logins(ADMIN), 0, "the accepted login cleared Autotask's count");
    let out = t.cli(&["rotate", "api"], None);
    assert!(out.status.success(), "rotate api after the import: {}", text(&out));
    t.assert_settled(ADMIN, "autotask/admin", "admin", "after the import");
    t.assert_settled(USER, "autotask/api", "api", "after the import");
    for job in ["admin", "api"] {
        let status = t.status_of(job);
        assert_eq!(status["state"], "ok", "{status}");
        assert!(status.get("failed_logins").is_none(), "no failed logins left: {status}");
    }
    let out = t.cli(&["check", "--connect"], None);
    assert!(out.status.success(), "every check passes again: {}", text(&out));
    t.assert_no_secret_printed();
}

/// The late-commit tenant: `timeout = "5s"`, a 10 s apply horizon, the next SOAP update committed 8 s late.
fn late_commit_tenant(schedule: &str) -> Tenant {
    let t = Tenant::new(r#"apply_horizon = "10s""#, r#"timeout = "5s""#, schedule);
    t.sandbox.add_fault(Fault::times(Call::SoapUpdate, FaultAction::CommitLate(LATE), 1));
    t
}

#[test]
fn an_api_users_update_committed_after_the_client_gave_up_stays_pending_and_is_completed() {
    let mut t = late_commit_tenant("");
    let started = Instant::now();
    let out = t.cli(&["rotate", "api"], None);
    assert_eq!(out.status.code(), Some(75), "pending, try later: {}", text(&out));
    assert!(started.elapsed() < LATE, "the client gave up before the commit: the scenario holds");
    let intent = t.intent_at("api").expect("the apply was recorded before it was sent");
    t.assert_held(USER, "autotask/api", "api", "after the timed-out apply");
    assert!(t.slots("autotask/api", "api").1.is_some(), "the new value stays pending");
    t.assert_within_guard("after the timed-out apply");

    // Before the commit lands, within the horizon: the old value still works, and that proves nothing.
    let out = t.cli(&["rotate", "api"], None);
    assert_eq!(out.status.code(), Some(75), "unsettled, not discarded: {}", text(&out));
    assert!(t.slots("autotask/api", "api").1.is_some(), "the new value is still pending");
    t.assert_held(USER, "autotask/api", "api", "after a run within the horizon");
    assert_eq!(t.status_of("api")["state"], "pending");
    t.assert_within_guard("after a run within the horizon");

    t.until_late_commits(1);
    t.assert_held(USER, "autotask/api", "api", "once the late commit landed");
    sleep_past(intent + chrono::Duration::from_std(HORIZON).expect("horizon"));
    let out = t.cli(&["rotate", "api"], None);
    assert!(out.status.success(), "the run after the horizon completes it: {}", text(&out));
    assert!(text(&out).contains("completed the interrupted rotation"), "{}", text(&out));
    t.assert_settled(USER, "autotask/api", "api", "after the horizon");
    t.assert_within_guard("after the horizon");
    assert_eq!(t.status_of("api")["state"], "ok");
    t.assert_no_secret_printed();
}

#[test]
fn the_admin_rotating_itself_with_a_late_commit_goes_on_with_its_new_password() {
    let mut t = late_commit_tenant("");
    let out = t.cli(&["rotate", "admin"], None);
    assert_eq!(out.status.code(), Some(75), "pending, try later: {}", text(&out));
    t.assert_held(ADMIN, "autotask/admin", "admin", "after the timed-out apply");
    assert!(t.slots("autotask/admin", "admin").1.is_some(), "the new admin value stays pending");
    t.assert_within_guard("after the timed-out apply");

    t.until_late_commits(1);
    t.assert_held(ADMIN, "autotask/admin", "admin", "once the late commit landed");
    // Meanwhile no job of the tenant is blocked or diverged, and nothing presented the old admin password.
    assert_eq!(t.status_of("admin")["state"], "pending");
    assert_eq!(t.status_of("api")["state"], "ok");
    assert_eq!(t.sandbox.failed_logins(ADMIN), 0, "the old admin password was not presented");

    let intent = t.intent_at("admin").expect("the admin's apply was recorded");
    sleep_past(intent + chrono::Duration::from_std(HORIZON).expect("horizon"));
    let out = t.cli(&["rotate", "admin"], None);
    assert!(out.status.success(), "the admin's run after the horizon completes it: {}", text(&out));
    t.assert_settled(ADMIN, "autotask/admin", "admin", "after the horizon");
    let out = t.cli(&["rotate", "api"], None);
    assert!(out.status.success(), "the API job rotates with the new admin password: {}", text(&out));
    t.assert_settled(USER, "autotask/api", "api", "after the horizon");
    t.assert_within_guard("after the horizon");
    assert_eq!(t.sandbox.failed_logins(ADMIN), 0, "the last admin login was accepted");
    for job in ["admin", "api"] {
        assert_eq!(t.status_of(job)["state"], "ok", "no job of the tenant is blocked or diverged");
    }
    t.assert_no_secret_printed();
}

#[test]
fn the_daemon_settles_a_late_commit_when_the_apply_horizon_ends_not_at_the_next_fire() {
    // Never due by schedule or age while the test runs.
    let mut t = late_commit_tenant(r#"schedule = "0 0 1 1 *""#);
    let out = t.cli(&["rotate", "api"], None);
    assert_eq!(out.status.code(), Some(75), "pending, try later: {}", text(&out));
    let intent = t.intent_at("api").expect("the apply was recorded before it was sent");

    let mut daemon = t.rotavault.start_daemon();
    let done = |l: &String| message_is(l, "rotation done") && l.contains("Completed");
    let settled = daemon.wait_until(HORIZON * 3, &mut |log| log.iter().any(done));
    // Read while the daemon still runs: it settled the job on its own.
    let state = t.slots("autotask/api", "api");
    let code = daemon.sigterm();
    t.printed.push_str(&daemon.text());
    assert!(settled, "the daemon did not settle the job:\n{}", daemon.text());
    assert_eq!(code, Some(0));
    let line = daemon.log.iter().find(|l| done(l)).expect("the line");
    let line: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
    let settled_at: chrono::DateTime<chrono::Utc> =
        line["timestamp"].as_str().expect("a timestamp").parse().expect("RFC 3339");
    let horizon_end = intent + chrono::Duration::from_std(HORIZON).expect("horizon");
    assert!(settled_at >= horizon_end, "settled at {settled_at}, before the horizon ended at {horizon_end}");
    assert!(
        settled_at < horizon_end + chrono::Duration::seconds(10),
        "settled at {settled_at}, not when the horizon ended at {horizon_end}"
    );
    assert!(state.1.is_none(), "nothing pending once the daemon settled it");
    assert_eq!(t.sandbox.late_commits(), 1, "the late commit had landed");
    t.assert_settled(USER, "autotask/api", "api", "after the daemon settled it");
    t.assert_within_guard("after the daemon settled it");
    assert!(
        !daemon.log.iter().any(|l| message_is(l, "rotation complete")),
        "the daemon completed the pending rotation and started no new one"
    );
    assert_eq!(t.status_of("api")["state"], "ok");
    t.assert_no_secret_printed();
}

#[test]
fn the_admin_jobs_own_refused_login_blocks_the_tenant_and_is_not_presented_again() {
    let mut t = Tenant::new("", "", "");
    t.sandbox.set_password_behind_the_back(ADMIN, CHANGED_PASSWORD);

    // The admin job's own check of its current value is the first to meet the change.
    let out = t.cli(&["rotate", "admin"], None);
    assert_eq!(out.status.code(), Some(3), "a person must act: {}", text(&out));
    assert_eq!(t.sandbox.failed_logins(ADMIN), 1);
    for job in ["api", "admin", "api"] {
        let out = t.cli(&["rotate", job], None);
        assert_eq!(out.status.code(), Some(3), "rotate {job}: {}", text(&out));
        assert!(text(&out).contains("admin credential refused"), "rotate {job}: {}", text(&out));
    }
    assert_eq!(t.sandbox.failed_logins(ADMIN), 1, "no job presented the refused admin credential again");
    for job in ["admin", "api"] {
        let status = t.status_of(job);
        assert_eq!(status["state"], "blocked", "{status}");
        assert!(status["action"].as_str().unwrap_or_default().contains("rotavault import"), "{status}");
    }

    let out = t.cli(&["import", "admin"], Some(&format!("{CHANGED_PASSWORD}\n")));
    assert!(out.status.success(), "import admin: {}", text(&out));
    let out = t.cli(&["rotate", "api"], None);
    assert!(out.status.success(), "rotate api after the import: {}", text(&out));
    for job in ["admin", "api"] {
        assert_eq!(t.status_of(job)["state"], "ok");
    }
    t.assert_no_secret_printed();
}

#[test]
fn an_admin_password_that_dies_while_its_own_rotation_settles_does_not_block_the_tenant() {
    let mut t = late_commit_tenant("");
    // The late-committed password takes a while to work, and the old one stops at once: for a moment neither
    // works, which is the admin's own rotation landing, not a person changing the credential.
    t.sandbox.set_propagation_delay(PROPAGATION);
    let out = t.cli(&["rotate", "admin"], None);
    assert_eq!(out.status.code(), Some(75), "pending, try later: {}", text(&out));
    t.until_late_commits(1);

    let out = t.cli(&["rotate", "admin"], None);
    assert_eq!(
        out.status.code(),
        Some(75),
        "neither works yet, within the horizon: unsettled: {}",
        text(&out)
    );
    t.assert_held(ADMIN, "autotask/admin", "admin", "while neither password works");
    t.assert_within_guard("while neither password works");
    for job in ["admin", "api"] {
        assert_ne!(
            t.status_of(job)["state"],
            "blocked",
            "{job}: the admin's own rotation blocked the tenant"
        );
    }

    // Once the new password works (the commit plus its propagation, past the horizon), the admin settles.
    let intent = t.intent_at("admin").expect("the admin's apply was recorded");
    sleep_past(intent + chrono::Duration::from_std(LATE + PROPAGATION).expect("duration"));
    let out = t.cli(&["rotate", "admin"], None);
    assert!(out.status.success(), "the run once the new password works completes it: {}", text(&out));
    t.assert_settled(ADMIN, "autotask/admin", "admin", "once the new password works");
    t.sandbox.set_propagation_delay(Duration::ZERO);
    let out = t.cli(&["rotate", "api"], None);
    assert!(out.status.success(), "the API job rotates with the new admin password: {}", text(&out));
    t.assert_within_guard("once the new password works");
    t.assert_no_secret_printed();
}
