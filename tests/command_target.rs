//! The `command` target through the same engine, recovery and lockout guard as every target, against a small
//! "system" (a Python program that keeps an account's password in a file and behaves as a file `mode` says), then
//! through the real binary, and last against a real system: an OpenBao `userpass` user whose password the `bao`
//! CLI sets and a login proves.
//!
//! Real processes run here, so time is real: what must pass the apply horizon is shown to an engine whose clock
//! starts an hour later (a restarted rotavault), not waited for.

mod support;

use rotavault::rotation::{Job, Recovery, RotationError};
use rotavault::secret::SecretValue;
use rotavault::store::{SecretRef, Store};
use rotavault::target::command::{CommandSettings, CommandTarget};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use support::binary::{Rotavault, text};
use support::engine_rig::{EngineRig, current, pending};

/// The system behind the target: it keeps the account's password in `DIR/password`, logs each call to `DIR/calls`,
/// and applies, refuses, fails or hangs as `DIR/mode` says.
const SYSTEM: &str = r#"
import json, os, sys, time
state = sys.argv[1]
request = json.load(sys.stdin)
path = lambda name: os.path.join(state, name)
mode = open(path("mode")).read().strip() if os.path.exists(path("mode")) else "ok"
with open(path("calls"), "a") as calls:
    calls.write(request["action"] + "\n")
secret = request["secret"]
if mode == "echo":
    sys.stderr.write("%s: got %s for %s\n" % (request["action"], secret, request["account"]))
    print("the secret was %s" % secret)
if request["action"] == "apply":
    if mode == "refuse":
        print("the password was used before")
        sys.exit(2)
    if mode == "busy":
        sys.exit(75)
    if mode == "fail-before":
        sys.exit(1)
    if mode == "hang":
        time.sleep(60)
    if mode != "pretend":
        with open(path("password.new"), "w") as f:
            f.write(secret)
        os.replace(path("password.new"), path("password"))
    sys.exit(1 if mode == "fail-after" else 0)
current = open(path("password")).read() if os.path.exists(path("password")) else None
if current != secret:
    print("wrong password")
    sys.exit(2)
sys.exit(0)
"#;

fn python() -> String {
    std::env::var("ROTAVAULT_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// A system in a directory of its own.
struct System {
    dir: tempfile::TempDir,
}

impl System {
    fn new() -> System {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("system.py"), SYSTEM).expect("the program");
        System { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn argv(&self) -> Vec<String> {
        let script = self.path().join("system.py");
        vec![python(), script.display().to_string(), self.path().display().to_string()]
    }

    fn settings(&self, timeout: Duration) -> CommandSettings {
        CommandSettings { apply: self.argv(), verify: self.argv(), timeout }
    }

    fn set_mode(&self, mode: &str) {
        std::fs::write(self.path().join("mode"), mode).expect("mode");
    }

    fn set_password(&self, password: &str) {
        std::fs::write(self.path().join("password"), password).expect("password");
    }

    fn password(&self) -> Option<String> {
        std::fs::read_to_string(self.path().join("password")).ok()
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.path().join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// The engine rig and the system behind the target.
struct Rig {
    base: EngineRig,
    system: System,
}

impl std::ops::Deref for Rig {
    type Target = EngineRig;

    fn deref(&self) -> &EngineRig {
        &self.base
    }
}

impl Rig {
    fn new() -> Rig {
        Rig { base: EngineRig::new(2), system: System::new() }
    }

    fn job(&self, name: &str, timeout: Duration) -> Job {
        let settings = Arc::new(self.system.settings(timeout));
        self.job_on(name, Arc::new(CommandTarget::new("db", name, "app_user", settings)))
    }

    /// The job's secret as it stands: `old` current, the account at the system holding it.
    async fn holding(&self, job: &Job, old: &str) {
        self.system.set_password(old);
        self.engine.import(job, &SecretValue::new(old)).await.expect("imported");
    }
}

const OLD: &str = "old-password-7Hq2xZ";
const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_command_target_applies_and_verifies_a_new_secret_through_the_engine() {
    let rig = Rig::new();
    let job = rig.job("app-db", TIMEOUT);
    rig.holding(&job, OLD).await;
    std::fs::remove_file(rig.system.path().join("calls")).expect("calls");
    rig.engine.rotate(&job, rotavault::rotation::Trigger::Manual).await.expect("rotated");
    let new = current(&job).await.expect("a current value");
    assert_ne!(new, OLD);
    assert_eq!(rig.system.password().as_deref(), Some(new.as_str()), "the system holds the stored value");
    assert_eq!(pending(&job).await, None);
    assert_eq!(rig.system.calls(), ["verify", "apply", "verify"], "the old value is proven first");
}

#[tokio::test]
async fn a_refused_apply_changes_nothing_current_and_leaves_nothing_pending() {
    let rig = Rig::new();
    let job = rig.job("app-db", TIMEOUT);
    rig.holding(&job, OLD).await;
    rig.system.set_mode("refuse");
    let err = rig.engine.rotate(&job, rotavault::rotation::Trigger::Manual).await.expect_err("refused");
    assert!(matches!(err, RotationError::Refused(_)), "{err:?}");
    assert!(err.to_string().contains("the password was used before"), "{err}");
    assert_eq!(current(&job).await.as_deref(), Some(OLD));
    assert_eq!(pending(&job).await, None);
    assert_eq!(rig.system.password().as_deref(), Some(OLD));
}

#[tokio::test]
async fn an_apply_that_changed_the_password_then_failed_is_found_applied_by_recovery() {
    let rig = Rig::new();
    let job = rig.job("app-db", TIMEOUT);
    rig.holding(&job, OLD).await;
    rig.system.set_mode("fail-after");
    rig.engine.rotate(&job, rotavault::rotation::Trigger::Manual).await.expect("settled by recovery");
    let new = current(&job).await.expect("a current value");
    assert_ne!(new, OLD);
    assert_eq!(rig.system.password().as_deref(), Some(new.as_str()));
}

/// The unknown outcomes of a program that changed nothing: an exit code without a meaning, and the timeout.
#[tokio::test]
async fn an_unknown_apply_that_changed_nothing_stays_pending_until_recovery_past_the_horizon_discards_it() {
    for (mode, timeout) in [("fail-before", TIMEOUT), ("hang", Duration::from_secs(3))] {
        let rig = Rig::new();
        let job = rig.job("app-db", timeout);
        rig.holding(&job, OLD).await;
        rig.system.set_mode(mode);
        let err = rig.engine.rotate(&job, rotavault::rotation::Trigger::Manual).await.expect_err(mode);
        assert!(matches!(err, RotationError::Unsettled { .. }), "{mode}: {err}");
        assert_eq!(current(&job).await.as_deref(), Some(OLD), "{mode}");
        let kept =
            pending(&job).await.expect("the new value is kept pending: the program may have applied it");
        assert_ne!(kept, OLD);

        rig.system.set_mode("ok");
        let recovery = rig.an_hour_later().recover(&job).await.expect("recovery");
        assert!(matches!(recovery, Recovery::Discarded { .. }), "{mode}: {recovery:?}");
        assert_eq!(current(&job).await.as_deref(), Some(OLD), "{mode}");
        assert_eq!(pending(&job).await, None, "{mode}");
    }
}

#[tokio::test]
async fn a_busy_program_is_retried_and_then_changes_nothing() {
    let rig = Rig::new();
    let job = rig.job("app-db", TIMEOUT);
    rig.holding(&job, OLD).await;
    rig.system.set_mode("busy");
    let err = rig.engine.rotate(&job, rotavault::rotation::Trigger::Manual).await.expect_err("busy");
    assert!(err.to_string().contains("temporarily unavailable"), "{err}");
    assert_eq!(
        rig.system.calls().iter().filter(|c| *c == "apply").count(),
        2,
        "retried per [rotation] backoff"
    );
    assert_eq!(current(&job).await.as_deref(), Some(OLD));
    assert_eq!(pending(&job).await, None, "nothing was done, so nothing is kept");
}

#[tokio::test]
async fn refused_logins_count_toward_the_lockout_guard_per_account_across_jobs() {
    let rig = Rig::new();
    let (a, b) = (rig.job("app-db", TIMEOUT), rig.job("app-db-replica", TIMEOUT));
    assert_eq!(a.target.login_account(&SecretValue::new(OLD)).as_deref(), Some("command:db:app_user"));
    // The program says it applied but did not: every verify of the new value is refused.
    rig.system.set_mode("pretend");
    rig.engine.rotate(&a, rotavault::rotation::Trigger::Manual).await.expect_err("not accepted");
    let after_a = rig.engine.lockout().consecutive("command:db:app_user").expect("guard");
    assert_eq!(after_a, 3, "one failed login per refused verify");
    rig.engine.rotate(&b, rotavault::rotation::Trigger::Manual).await.expect_err("not accepted");
    let after_b = rig.engine.lockout().consecutive("command:db:app_user").expect("guard");
    assert_eq!(after_b, 6, "the second job's logins count on the same account");
}

/// A config and a file store for the binary, with a job on a `command` target.
fn binary_setup(dir: &Path, apply: &[String], verify: &[String], secret_rules: &str) -> Rotavault {
    let quote = |argv: &[String]| argv.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", ");
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"state_dir = "state"

[stores.local]
kind = "file"
path = "secrets.age"
identity_file = "store.key"

[targets.db]
kind = "command"
apply = [{apply}]
verify = [{verify}]
timeout = "20s"

[http]
listen = "127.0.0.1:0"

[jobs.app-db]
target = "db"
account = "app_user"
stores = [ {{ store = "local", name = "db/app_user" }} ]
max_age = "30d"
{secret_rules}
"#,
            apply = quote(apply),
            verify = quote(verify),
        ),
    )
    .expect("config");
    let rotavault = Rotavault::new(dir, config);
    let out = rotavault.cli(&["keygen", "--out", "store.key"], None);
    assert!(out.status.success(), "keygen: {}", text(&out));
    rotavault
}

fn file_store(dir: &Path) -> (rotavault::store::file::FileStore, tokio::runtime::Runtime) {
    use rotavault::store::file::{FileStore, IdentitySource};
    let store =
        FileStore::open(dir.join("secrets.age"), IdentitySource::File(dir.join("store.key"))).expect("store");
    (store, tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime"))
}

/// The current value of `name` in the file store of the config in `dir`.
fn stored(dir: &Path, name: &str) -> Option<String> {
    let (store, rt) = file_store(dir);
    let current = rt.block_on(store.current(&SecretRef::new(name, "app-db"))).expect("read");
    current.map(|s| s.value.expose().to_owned())
}

/// The pending value of `name` in the file store of the config in `dir`.
fn pending_stored(dir: &Path, name: &str) -> Option<String> {
    let (store, rt) = file_store(dir);
    let pending = rt.block_on(store.pending(&SecretRef::new(name, "app-db"))).expect("read");
    pending.map(|p| p.value.expose().to_owned())
}

#[test]
fn the_binary_rotates_through_a_command_target_and_never_prints_what_the_program_echoes() {
    let system = System::new();
    system.set_mode("echo");
    let dir = tempfile::tempdir().expect("tempdir");
    let rotavault = binary_setup(dir.path(), &system.argv(), &system.argv(), "");
    system.set_password(OLD);
    let out = rotavault.cli(&["import", "app-db", "--no-rotate"], Some(&format!("{OLD}\n")));
    assert!(out.status.success(), "import: {}", text(&out));
    let out = rotavault.cli(&["rotate", "app-db"], None);
    let printed = text(&out);
    assert!(out.status.success(), "rotate: {printed}");
    let new = stored(dir.path(), "db/app_user").expect("a current value");
    assert_ne!(new, OLD);
    assert_eq!(system.password().as_deref(), Some(new.as_str()));
    assert!(
        printed.contains("the target's program wrote to standard error"),
        "its words are logged: {printed}"
    );
    assert!(printed.contains("[redacted] for app_user"), "redacted, not dropped: {printed}");
    for secret in [new.as_str(), OLD] {
        assert!(!printed.contains(secret), "a secret was printed: {printed}");
    }
}

#[test]
fn a_config_with_a_command_target_names_what_is_missing_at_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let argv = vec!["/bin/true".to_owned()];
    let rotavault = binary_setup(dir.path(), &argv, &[], "");
    let out = rotavault.cli(&["check"], None);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    assert!(text(&out).contains("verify"), "{}", text(&out));
}

// --- OpenBao ---------------------------------------------------------------------------------------------

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("OpenBao is not running: {name} is unset; run the tests through scripts/test")
    })
}

/// Sets a `userpass` user's password with the `bao` CLI, the password on its standard input (`password=-`), never
/// in an argv; verifies by logging in as the user. The address and token come from a file, since rotavault gives
/// the program no environment of its own.
const BAO_PROGRAM: &str = r#"
import json, os, subprocess, sys
settings = json.load(open(sys.argv[1]))
request = json.load(sys.stdin)
env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "VAULT_ADDR": settings["addr"], "BAO_ADDR": settings["addr"],
       "HOME": settings["home"]}
user = request["account"]
if request["action"] == "apply":
    if len(request["secret"]) > settings.get("max_length", 1000):
        print("the password is longer than the policy allows")
        sys.exit(2)
    env["VAULT_ADDR"] = env["BAO_ADDR"] = settings.get("apply_addr", settings["addr"])
    env["VAULT_TOKEN"] = env["BAO_TOKEN"] = settings["token"]
    run = subprocess.run([settings["bao"], "write", "auth/%s/users/%s/password" % (settings["mount"], user), "password=-"],
                         input=request["secret"], text=True, env=env, capture_output=True)
    if run.returncode != 0:
        sys.stderr.write(run.stderr)
        sys.exit(1)
    sys.exit(0)
run = subprocess.run([settings["bao"], "login", "-no-store", "-method=userpass", "-path=" + settings["mount"],
                      "username=" + user, "password=-"],
                     input=request["secret"], text=True, env=env, capture_output=True)
if run.returncode == 0:
    sys.exit(0)
if "invalid username or password" in run.stderr or "invalid credentials" in run.stderr:
    print("invalid username or password")
    sys.exit(2)
sys.stderr.write(run.stderr)
sys.exit(1)
"#;

/// The OpenBao dev server of scripts/test, a `userpass` mount of this test's own and one user on it.
struct Bao {
    addr: String,
    token: String,
    bin: String,
    mount: String,
    client: reqwest::Client,
}

impl Bao {
    async fn new() -> Bao {
        let bao = Bao {
            addr: env("ROTAVAULT_TEST_VAULT_ADDR"),
            token: env("ROTAVAULT_TEST_VAULT_TOKEN"),
            bin: env("ROTAVAULT_TEST_BAO"),
            mount: format!("userpass-{}", uuid::Uuid::new_v4().simple()),
            client: reqwest::Client::new(),
        };
        let enable = bao
            .client
            .post(format!("{}/v1/sys/auth/{}", bao.addr, bao.mount))
            .header("x-vault-token", &bao.token)
            .json(&serde_json::json!({ "type": "userpass" }))
            .send()
            .await
            .expect("OpenBao answers");
        assert!(enable.status().is_success(), "enable userpass: {}", enable.status());
        bao
    }

    async fn create_user(&self, user: &str, password: &str) {
        let created = self
            .client
            .post(format!("{}/v1/auth/{}/users/{user}", self.addr, self.mount))
            .header("x-vault-token", &self.token)
            .json(&serde_json::json!({ "password": password }))
            .send()
            .await
            .expect("OpenBao answers");
        assert!(created.status().is_success(), "create user: {}", created.status());
    }

    /// Whether `password` logs in as `user`, asked over HTTP, not through the program under test.
    async fn logs_in(&self, user: &str, password: &str) -> bool {
        let login = self
            .client
            .post(format!("{}/v1/auth/{}/login/{user}", self.addr, self.mount))
            .json(&serde_json::json!({ "password": password }))
            .send()
            .await
            .expect("OpenBao answers");
        login.status().is_success()
    }
}

#[test]
fn the_binary_rotates_an_openbao_userpass_password_through_the_bao_cli() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let bao = rt.block_on(Bao::new());
    let user = "app_user";
    let initial = format!("initial-{}", uuid::Uuid::new_v4().simple());
    rt.block_on(bao.create_user(user, &initial));
    let logs_in = |password: &str| rt.block_on(bao.logs_in(user, password));
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    std::fs::create_dir(&home).expect("home");
    let program = dir.path().join("bao-password.py");
    std::fs::write(&program, BAO_PROGRAM).expect("program");
    let settings_file = dir.path().join("bao.json");
    let write_settings = |apply_addr: &str, max_length: usize| {
        let settings = serde_json::json!({
            "addr": bao.addr, "apply_addr": apply_addr, "token": bao.token, "bao": bao.bin, "mount": bao.mount,
            "home": home.display().to_string(), "max_length": max_length,
        });
        std::fs::write(&settings_file, settings.to_string()).expect("settings");
    };
    write_settings(&bao.addr, 1000);
    let argv = vec![python(), program.display().to_string(), settings_file.display().to_string()];
    let rotavault = binary_setup(dir.path(), &argv, &argv, "[jobs.app-db.secret]\nlength = 32\n");
    let mut printed = String::new();
    let mut cli = |args: &[&str], stdin: Option<&str>| {
        let out = rotavault.cli(args, stdin);
        printed.push_str(&text(&out));
        out
    };

    let out = cli(&["import", "app-db", "--no-rotate"], Some(&format!("{initial}\n")));
    assert!(out.status.success(), "import: {}", text(&out));

    // Applied and verified: the new password logs in as the user, the old one no longer does.
    let out = cli(&["rotate", "app-db"], None);
    assert!(out.status.success(), "rotate: {}", text(&out));
    let first = stored(dir.path(), "db/app_user").expect("a current value");
    assert_ne!(first, initial);
    assert!(logs_in(&first), "the stored password logs in to OpenBao");
    assert!(!logs_in(&initial), "the old password no longer does");

    // Refused: the program says no before calling bao; nothing changes anywhere.
    write_settings(&bao.addr, 8);
    let out = cli(&["rotate", "app-db"], None);
    assert!(!out.status.success(), "refused: {}", text(&out));
    assert!(text(&out).contains("the password is longer than the policy allows"), "{}", text(&out));
    assert_eq!(stored(dir.path(), "db/app_user").as_deref(), Some(first.as_str()));
    assert!(logs_in(&first), "the account is unchanged");

    // Unknown: the apply's bao cannot reach the server (a port nothing listens on), so the program exits 1 having
    // changed nothing; the new value stays pending, and the old one stays current and logs in.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let closed_addr = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    write_settings(&closed_addr, 1000);
    let out = cli(&["rotate", "app-db"], None);
    assert!(!out.status.success(), "unknown: {}", text(&out));
    assert!(text(&out).contains("stays pending"), "{}", text(&out));
    assert_eq!(stored(dir.path(), "db/app_user").as_deref(), Some(first.as_str()));
    let pending = pending_stored(dir.path(), "db/app_user").expect("the new value is kept pending");
    assert!(logs_in(&first), "the account is unchanged");
    assert!(!logs_in(&pending));

    for secret in [&initial, &first, &pending] {
        assert!(!printed.contains(secret.as_ref() as &str), "a secret was printed: {printed}");
    }
}
