//! Kill tests: the real `rotavault run` daemon, rotating an Autotask sandbox API user into two stores (the
//! encrypted `file` store and AWS Secrets Manager on a real moto server), is killed with SIGKILL at each step
//! boundary of a rotation (after the first and the second Stage, right after Apply, after Verify, between the two
//! Promotes) and at uniformly random moments, then restarted; after every kill, with the process dead and the
//! state frozen, the design's invariants are checked: the password the target has is held by every store as
//! current or pending (no loss), the API user is never locked out, and after recovery every store's current value
//! authenticates, nothing is left pending, both stores agree and `status` says `ok`. Violations are counted, not
//! panicked on, and the test fails at the end if there were any.
//!
//! Needs moto: `ROTAVAULT_TEST_AWS_ENDPOINT` (the test fails with a clear message when it is unset). The
//! randomized run kills 25 times by default (CI) and 200 times with `ROTAVAULT_TEST_FULL=1`;
//! `ROTAVAULT_TEST_SEED=N` replays the random moments of an earlier run (the seed is printed).

use aws_sdk_secretsmanager::Client;
use rotavault::sandbox::{Call, Fault, FaultAction, Sandbox, Seed};
use rotavault::store::file::{FileStore, IdentitySource};
use rotavault::store::{SecretRef, Store};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const BIN: &str = env!("CARGO_BIN_EXE_rotavault");
const ADMIN: &str = "admin@kill.example";
const ADMIN_PASSWORD: &str = "Ad#min-kill-Passw0rd";
const API_USER: &str = "api@kill.example";
const API_PASSWORD: &str = "Api#kill-initial-1";
const CODE: &str = "KILL-TEST-CODE";
const LOCKOUT: u32 = 5;
/// rotavault's lockout guard: `[rotation] max_failed_logins`, 3 by default.
const GUARD: u32 = 3;
const FILE_NAME: &str = "autotask/api";

fn moto_endpoint() -> String {
    std::env::var("ROTAVAULT_TEST_AWS_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "moto is not running: ROTAVAULT_TEST_AWS_ENDPOINT is unset; run the tests through scripts/test"
        )
    })
}

/// The `secret` field of a stored JSON payload.
fn secret_of(payload: &str) -> Option<String> {
    let doc: serde_json::Value = serde_json::from_str(payload).ok()?;
    doc["secret"].as_str().map(str::to_owned)
}

/// A running `rotavault run`, killed by its PID when dropped; its stderr lines arrive on `lines`.
struct Daemon {
    child: Child,
    lines: mpsc::Receiver<String>,
    dead: bool,
}

impl Daemon {
    fn sigkill(&mut self) {
        if !self.dead {
            let _ = Command::new("kill").args(["-KILL", &self.child.id().to_string()]).status();
            let _ = self.child.wait();
            self.dead = true;
        }
    }

    /// SIGTERM, then wait (bounded) for a clean exit; SIGKILL if it does not come.
    fn sigterm(&mut self) -> Option<i32> {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.dead = true;
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.sigkill();
        None
    }

    /// Waits (at most `timeout`) for a line matching `hit`; every line read is appended to `log`.
    fn wait_for(&self, timeout: Duration, log: &mut Vec<String>, hit: &mut dyn FnMut(&str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let matched = hit(&line);
                    log.push(line);
                    if matched {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.sigkill();
    }
}

struct Harness {
    rt: tokio::runtime::Runtime,
    sandbox: Sandbox,
    shutdown: CancellationToken,
    dir: tempfile::TempDir,
    config: PathBuf,
    bin: PathBuf,
    secret_name: String,
    aws: Client,
    file: FileStore,
    kills: u32,
    violations: Vec<String>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Harness {
    fn new() -> Harness {
        let endpoint = moto_endpoint();
        let rt =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
        let shutdown = CancellationToken::new();
        let seed = Seed::from_toml(&format!(
            r#"integration_codes = ["{CODE}"]
lockout_threshold = {LOCKOUT}

[[resources]]
id = 1
user_name = "{ADMIN}"
password = "{ADMIN_PASSWORD}"
security_level = "api_admin"

[[resources]]
id = 2
user_name = "{API_USER}"
password = "{API_PASSWORD}"
security_level = "api_user"
"#
        ))
        .expect("seed");
        let sandbox = rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            Sandbox::start(listener, seed, false, shutdown.clone()).await.expect("sandbox")
        });
        let dir = tempfile::tempdir().expect("tempdir");
        // The binary is run where cargo built it: a copy made here could still be open for writing in a child
        // that another test forked at that moment, and exec would then fail with "text file busy".
        let bin = std::path::PathBuf::from(BIN);
        std::fs::write(dir.path().join("code"), CODE).expect("code");
        let key = dir.path().join("store.key");
        let out = Command::new(&bin).args(["keygen", "--out"]).arg(&key).output().expect("keygen");
        assert!(out.status.success(), "keygen: {}", text(&out));
        let id = uuid::Uuid::new_v4().simple().to_string();
        let secret_name = format!("rotavault-kill/{}", &id[..12]);
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                r#"state_dir = "state"

[rotation]
settle = "50ms"
verify_backoff = "100ms"

[stores.local]
kind = "file"
path = "secrets.age"
identity_file = "store.key"

[stores.aws]
kind = "aws_secrets_manager"
region = "us-east-1"
endpoint_url = "{endpoint}"

[targets.autotask]
kind = "autotask"
zone_lookup_url = "{zone}"
admin = {{ store = "local", name = "autotask/admin" }}

[jobs.admin]
target = "autotask"
users = ["{ADMIN}"]
integration_code_file = "code"
stores = [ {{ store = "local", name = "autotask/admin" }} ]
max_age = "30d"

[jobs.api]
target = "autotask"
users = ["{API_USER}"]
integration_code_file = "code"
stores = [ {{ store = "local", name = "{FILE_NAME}" }}, {{ store = "aws", name = "{secret_name}" }} ]
schedule = "* * * * * *"
max_age = "30d"
"#,
                zone = sandbox.zone_lookup_url(),
            ),
        )
        .expect("config");
        let credentials = aws_sdk_secretsmanager::config::Credentials::new("t", "t", None, None, "tests");
        let aws = Client::from_conf(
            aws_sdk_secretsmanager::Config::builder()
                .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
                .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
                .endpoint_url(&endpoint)
                .credentials_provider(credentials)
                .build(),
        );
        let file =
            FileStore::open(dir.path().join("secrets.age"), IdentitySource::File(key)).expect("file store");
        let mut h = Harness {
            rt,
            sandbox,
            shutdown,
            dir,
            config,
            bin,
            secret_name,
            aws,
            file,
            kills: 0,
            violations: Vec::new(),
        };
        for (job, password) in [("admin", ADMIN_PASSWORD), ("api", API_PASSWORD)] {
            let out = h.cli(&["import", job, "--no-rotate"], Some(&format!("{password}\n")));
            assert!(out.status.success(), "import {job}: {}", text(&out));
        }
        // Widen the windows between steps so that a kill can land inside them.
        h.sandbox.add_fault(Fault::always(Call::SoapUpdate, FaultAction::Delay(Duration::from_millis(150))));
        h.sandbox.add_fault(Fault::always(
            Call::ThresholdInformation,
            FaultAction::Delay(Duration::from_millis(60)),
        ));
        h.full_check("after the imports");
        assert!(h.violations.is_empty(), "the starting state is already wrong: {:?}", h.violations);
        h
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bin);
        command
            .current_dir(self.dir.path())
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env("ROTAVAULT_LOG", "rotavault=trace")
            .env("AWS_ACCESS_KEY_ID", "t")
            .env("AWS_SECRET_ACCESS_KEY", "t")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        command
    }

    /// Runs a one-shot command to its end (bounded: killed after 60 s).
    fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = self
            .command(args)
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("rotavault runs");
        if let Some(input) = stdin {
            child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
        }
        let pid = child.id();
        let (tx, rx) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let out = child.wait_with_output();
            let _ = tx.send(());
            out
        });
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
        waiter.join().expect("waiter").expect("rotavault exits")
    }

    fn start_daemon(&self) -> Daemon {
        let mut child = self
            .command(&["--log-format", "json", "run"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the daemon starts");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Daemon { child, lines, dead: false }
    }

    fn violation(&mut self, what: String) {
        eprintln!("VIOLATION: {what}");
        self.violations.push(what);
    }

    /// (current, pending) payloads of the `api` job in the file store.
    fn file_slots(&self) -> Result<(Option<String>, Option<String>), String> {
        let secret = SecretRef::new(FILE_NAME, "api");
        self.rt.block_on(async {
            let current = self.file.current(&secret).await.map_err(|e| format!("file current: {e}"))?;
            let pending = self.file.pending(&secret).await.map_err(|e| format!("file pending: {e}"))?;
            Ok((current.map(|s| s.value.expose().to_owned()), pending.map(|p| p.value.expose().to_owned())))
        })
    }

    /// (current, pending) of the AWS secret, read by stage with the plain SDK as a consumer would.
    fn aws_slots(&self) -> Result<(Option<String>, Option<String>), String> {
        self.rt.block_on(async {
            let mut out = [None, None];
            for (slot, stage) in out.iter_mut().zip(["AWSCURRENT", "AWSPENDING"]) {
                match self
                    .aws
                    .get_secret_value()
                    .secret_id(&self.secret_name)
                    .version_stage(stage)
                    .send()
                    .await
                {
                    Ok(v) => *slot = v.secret_string().map(str::to_owned),
                    Err(e) => {
                        let text = format!("{:?}", e.into_service_error());
                        if !text.contains("ResourceNotFound") {
                            return Err(format!("AWS {stage}: {text}"));
                        }
                    }
                }
            }
            let [current, pending] = out;
            Ok((current, pending))
        })
    }

    /// Invariants 1 (no loss) and the lockout guard, on the frozen state of a dead process.
    ///
    /// Returns where each store held the target's password, e.g. `file=current+pending aws=pending`: the proof
    /// of where in the rotation the kill landed.
    fn frozen_check(&mut self, when: &str) -> String {
        let target = self.sandbox.password_of(API_USER).expect("the API user exists");
        let mut shape = Vec::new();
        for (store, slots) in [("file", self.file_slots()), ("aws", self.aws_slots())] {
            match slots {
                Err(e) => self.violation(format!("{when}: the {store} store cannot be read: {e}")),
                Ok((current, pending)) => {
                    let is_target = |slot: &Option<String>| {
                        slot.as_deref().and_then(secret_of).as_deref() == Some(target.as_str())
                    };
                    let held = is_target(&current) || is_target(&pending);
                    let slot_names: Vec<&str> = [("current", &current), ("pending", &pending)]
                        .into_iter()
                        .filter_map(|(name, slot)| is_target(slot).then_some(name))
                        .collect();
                    let other_pending = pending.is_some() && !is_target(&pending);
                    shape.push(format!(
                        "{store}={}{}",
                        if slot_names.is_empty() { "-".to_owned() } else { slot_names.join("+") },
                        if other_pending { "(+new pending)" } else { "" }
                    ));
                    if !held {
                        self.violation(format!(
                            "{when}: no loss broken: the {store} store holds the target's password neither as \
                             current nor as pending (current: {}, pending: {})",
                            current.is_some(),
                            pending.is_some()
                        ));
                    }
                }
            }
        }
        self.lockout_check(when);
        shape.join(" ")
    }

    fn lockout_check(&mut self, when: &str) {
        let failed = self.sandbox.failed_logins(API_USER);
        if self.sandbox.is_locked(API_USER) || failed >= LOCKOUT {
            self.violation(format!("{when}: the API user is locked out ({failed} failed logins)"));
            self.sandbox.unlock(API_USER);
        } else if failed > GUARD {
            // The sandbox counts consecutive failed logins, as Autotask does; rotavault's guard allows at most
            // GUARD per window, across kills and restarts, and an accepted login clears both counts.
            self.violation(format!(
                "{when}: {failed} failed logins in a row, more than the lockout guard's {GUARD}"
            ));
        }
    }

    /// Recovery through `rotavault rotate api`, then: every current authenticates, nothing pending, both stores
    /// identical, status `ok`.
    fn recover_and_check(&mut self, when: &str) {
        let out = self.cli(&["rotate", "api"], None);
        if !out.status.success() {
            self.violation(format!("{when}: `rotate api` after the kill failed: {}", tail(&text(&out))));
        }
        self.full_check(when);
    }

    /// Recovery through the daemon's start-up: let it complete a rotation, stop it with SIGTERM, then the same
    /// checks as [`Harness::recover_and_check`].
    fn recover_by_daemon_and_check(&mut self, when: &str) {
        let mut daemon = self.start_daemon();
        let mut log = Vec::new();
        let seen =
            daemon.wait_for(Duration::from_secs(20), &mut log, &mut |l| message_is(l, "rotation complete"));
        let code = daemon.sigterm();
        if !seen {
            self.violation(format!(
                "{when}: the restarted daemon completed no rotation: {}",
                tail(&log.join("\n"))
            ));
        }
        if code != Some(0) {
            self.violation(format!("{when}: the restarted daemon did not stop cleanly on SIGTERM: {code:?}"));
        }
        self.full_check(when);
    }

    fn full_check(&mut self, when: &str) {
        let file = self.file_slots();
        let aws = self.aws_slots();
        match (file, aws) {
            (Ok(file), Ok(aws)) => {
                for (store, (current, pending)) in [("file", &file), ("aws", &aws)] {
                    let secret = current.as_deref().and_then(secret_of);
                    if !secret.as_deref().is_some_and(|s| self.sandbox.authenticates(API_USER, s)) {
                        self.violation(format!(
                            "{when}: after recovery the {store} store's current value does not authenticate"
                        ));
                    }
                    if pending.is_some() {
                        self.violation(format!(
                            "{when}: after recovery the {store} store still has a pending value"
                        ));
                    }
                }
                if file.0 != aws.0 {
                    self.violation(format!(
                        "{when}: after recovery the file and AWS stores hold different currents"
                    ));
                }
            }
            (file, aws) => {
                for e in [file.err(), aws.err()].into_iter().flatten() {
                    self.violation(format!("{when}: a store cannot be read: {e}"));
                }
            }
        }
        let out = self.cli(&["status", "--json"], None);
        let state = serde_json::from_slice::<serde_json::Value>(&out.stdout).ok().and_then(|v| {
            v.as_array()?
                .iter()
                .find(|j| j["job"] == "api")
                .map(|j| j["state"].as_str().unwrap_or("?").to_owned())
        });
        if state.as_deref() != Some("ok") {
            self.violation(format!(
                "{when}: status says the api job is {state:?}, not ok: {}",
                tail(&text(&out))
            ));
        }
        self.lockout_check(when);
    }

    fn kill(&mut self, daemon: &mut Daemon) {
        daemon.sigkill();
        self.kills += 1;
    }

    fn report(&self) {
        println!("kills: {}, violations: {}", self.kills, self.violations.len());
        eprintln!("kills: {}, violations: {}", self.kills, self.violations.len());
        for v in &self.violations {
            eprintln!("  {v}");
        }
    }
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

fn message_is(line: &str, message: &str) -> bool {
    line.contains(&format!("\"message\":\"{message}\""))
}

/// Where in a rotation the daemon is killed.
#[derive(Clone, Copy, Debug)]
enum Boundary {
    AfterFirstStage,
    AfterSecondStage,
    AfterApply,
    AfterVerify,
    BetweenPromotes,
}

/// A matcher for the line after which `boundary` is reached, counting from "rotation starts".
fn boundary_matcher(boundary: Boundary) -> impl FnMut(&str) -> bool {
    let mut started = false;
    let mut stages = 0;
    let mut applied = false;
    move |line: &str| {
        if message_is(line, "rotation starts") {
            started = true;
            return false;
        }
        if !started {
            return false;
        }
        if message_is(line, "stage answered") {
            stages += 1;
        }
        if message_is(line, "Autotask accepted the new password") {
            applied = true;
        }
        match boundary {
            Boundary::AfterFirstStage => stages == 1 && message_is(line, "stage answered"),
            Boundary::AfterSecondStage => stages == 2 && message_is(line, "stage answered"),
            Boundary::AfterApply => message_is(line, "Autotask accepted the new password"),
            // The verify span's authenticated call has answered 200: verify is over, promote is next.
            Boundary::AfterVerify => {
                applied
                    && message_is(line, "answered")
                    && line.contains("\"name\":\"verify\"")
                    && line.contains("\"status\":200")
            }
            Boundary::BetweenPromotes => message_is(line, "promote answered"),
        }
    }
}

#[test]
fn sigkill_at_every_step_boundary_loses_nothing() {
    let mut h = Harness::new();
    let started = Instant::now();
    let boundaries = [
        Boundary::AfterFirstStage,
        Boundary::AfterSecondStage,
        Boundary::AfterApply,
        Boundary::AfterVerify,
        Boundary::BetweenPromotes,
    ];
    for round in 0..2 {
        for boundary in boundaries {
            let when = format!("round {round}, killed {boundary:?}");
            let mut daemon = h.start_daemon();
            let mut log = Vec::new();
            let mut hit = boundary_matcher(boundary);
            let seen = daemon.wait_for(Duration::from_secs(20), &mut log, &mut hit);
            h.kill(&mut daemon);
            assert!(seen, "{when}: the boundary's line never came; the daemon printed:\n{}", log.join("\n"));
            let shape = h.frozen_check(&when);
            eprintln!("{when}: the target's password was held as {shape}");
            if round == 0 {
                h.recover_and_check(&when);
            } else {
                h.recover_by_daemon_and_check(&when);
            }
        }
    }
    // A clean stop after all of it: the daemon recovers at start-up and stops at a safe boundary on SIGTERM.
    let mut daemon = h.start_daemon();
    let mut log = Vec::new();
    let seen =
        daemon.wait_for(Duration::from_secs(20), &mut log, &mut |l| message_is(l, "rotation complete"));
    let code = daemon.sigterm();
    assert!(seen, "no rotation completed after the kills:\n{}", log.join("\n"));
    assert_eq!(code, Some(0), "the daemon did not stop cleanly on SIGTERM");
    h.full_check("after a clean stop");
    h.report();
    eprintln!("step-boundary kills took {:?}", started.elapsed());
    assert!(h.violations.is_empty(), "{} invariant violations (see above)", h.violations.len());
}

/// The lines that mark a rotation's progress, for telling where a random kill landed.
const STEP_LINES: [&str; 6] = [
    "rotation starts",
    "stage answered",
    "Autotask accepted the new password",
    "promote answered",
    "rotation complete",
    "a pending value was found; asking the target",
];

/// xorshift64*: enough for kill moments, and replayable from the printed seed.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed =
            std::env::var("ROTAVAULT_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
                let mut bytes = [0u8; 8];
                getrandom::fill(&mut bytes).expect("OS randomness");
                u64::from_le_bytes(bytes)
            });
        eprintln!("ROTAVAULT_TEST_SEED={seed}");
        Rng(seed.max(1))
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

#[test]
fn sigkill_at_random_moments_loses_nothing() {
    let full = std::env::var("ROTAVAULT_TEST_FULL").is_ok_and(|v| v == "1");
    let rounds = if full { 200 } else { 25 };
    let mut h = Harness::new();
    let mut rng = Rng::new();
    let started = Instant::now();
    let (mut rotations_started, mut completed) = (0, 0);
    let mut landed = std::collections::BTreeMap::new();
    for round in 1..=rounds {
        let delay = Duration::from_millis(rng.below(1501));
        let mut daemon = h.start_daemon();
        let mut log = Vec::new();
        // Read (and so drain) the daemon's lines until the moment comes.
        daemon.wait_for(delay, &mut log, &mut |_| false);
        h.kill(&mut daemon);
        rotations_started += log.iter().filter(|l| message_is(l, "rotation starts")).count();
        completed += log.iter().filter(|l| message_is(l, "rotation complete")).count();
        let when = format!("random kill {round} at {delay:?}");
        let shape = h.frozen_check(&when);
        // The last step of a rotation the daemon reported before it died.
        let last = log
            .iter()
            .rev()
            .find_map(|l| STEP_LINES.iter().find(|m| message_is(l, m)).map(|m| (*m).to_owned()))
            .unwrap_or_else(|| "(no rotation yet)".to_owned());
        *landed.entry(format!("{last:<40} {shape}")).or_insert(0u32) += 1;
        if round % 10 == 0 || round == rounds {
            h.recover_and_check(&when);
        }
    }
    eprintln!(
        "random kills: {rounds} in {:?}; rotations started {rotations_started}, completed {completed}",
        started.elapsed()
    );
    eprintln!("where the kills landed (last step line seen, where the target's password was held):");
    for (place, n) in &landed {
        eprintln!("  {n:>4}  {place}");
    }
    h.report();
    assert!(rotations_started > 0, "no rotation ever started: the kills tested nothing");
    assert!(h.violations.is_empty(), "{} invariant violations (see above)", h.violations.len());
}
