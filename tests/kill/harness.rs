//! The kill tests' world: an in-process Autotask sandbox, a file store and AWS Secrets Manager on moto, a config
//! for `rotavault run`, and the invariant checks, made on the stores and the sandbox directly (as a consumer would
//! read them), never through rotavault.
//!
//! The config's `apply_horizon` is short (`HORIZON`), longer than the slowest update any phase uses, so that a
//! value whose apply was sent can be settled a second later instead of minutes later; every recovery check first
//! waits for the horizon of an apply the job's state says was sent, because before it the protocol must keep the
//! value pending.

use super::daemon::{Daemon, message_is, tail, text};
use aws_sdk_secretsmanager::Client;
use rotavault::sandbox::{Call, Fault, FaultAction, Sandbox, Seed};
use rotavault::store::file::{FileStore, IdentitySource};
use rotavault::store::{SecretRef, Store};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const BIN: &str = env!("CARGO_BIN_EXE_rotavault");
pub const ADMIN: &str = "admin@kill.example";
const ADMIN_PASSWORD: &str = "Ad#min-kill-Passw0rd";
pub const API_USER: &str = "api@kill.example";
const API_PASSWORD: &str = "Api#kill-initial-1";
const CODE: &str = "KILL-TEST-CODE";
const LOCKOUT: u32 = 5;
/// rotavault's lockout guard: `[rotation] max_failed_logins`, 3 by default.
pub const GUARD: u32 = 3;
const API_FILE_NAME: &str = "autotask/api";
const ADMIN_FILE_NAME: &str = "autotask/admin";
/// `[rotation] apply_horizon` of the harness: longer than any update the phases make (at most `LATE`).
pub const HORIZON: Duration = Duration::from_secs(1);
/// The slow SOAP update of the late-commit phase: it lands this long after it arrived, client or not.
pub const LATE: Duration = Duration::from_millis(400);
/// The update that widens the step windows of the other phases; a client that leaves cancels it.
const SLOW_UPDATE: Duration = Duration::from_millis(150);

/// The job whose rotations a phase kills: its schedule fires every second, the other job's never.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    /// An API user, `api`, into the file store and AWS.
    Api,
    /// The admin API user rotating itself, `admin`, into the file store (where the target reads it from).
    Admin,
}

impl Subject {
    pub fn user(self) -> &'static str {
        match self {
            Subject::Api => API_USER,
            Subject::Admin => ADMIN,
        }
    }

    pub fn job(self) -> &'static str {
        match self {
            Subject::Api => "api",
            Subject::Admin => "admin",
        }
    }
}

/// What SOAP `update` does in a phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Update {
    /// `Delay(SLOW_UPDATE)`: done late, or not at all when the client leaves first.
    Slow,
    /// `CommitLate(LATE)`: done late whether or not the client is still there.
    CommitsLate,
}

pub struct Harness {
    rt: tokio::runtime::Runtime,
    pub sandbox: Sandbox,
    shutdown: CancellationToken,
    dir: tempfile::TempDir,
    config: PathBuf,
    bin: PathBuf,
    secret_name: String,
    aws: Client,
    file: FileStore,
    pub subject: Subject,
    pub kills: u32,
    pub violations: Vec<String>,
    /// The most consecutive failed logins already reported as a violation, per user (a high-water mark is
    /// reported once).
    reported_failed: [u32; 2],
    /// How often a person had to act: the lockout guard at its cap with logins that kills cut off (they count as
    /// failed until an accepted one), so the job waited, blocked, for `rotavault resolve`.
    pub person_acted: u32,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

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

type Slots = Result<(Option<String>, Option<String>), String>;

impl Harness {
    pub fn new(subject: Subject, update: Update) -> Harness {
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
        let every_second = "schedule = \"* * * * * *\"\n";
        let (admin_schedule, api_schedule) = match subject {
            Subject::Api => ("", every_second),
            Subject::Admin => (every_second, ""),
        };
        let horizon = humantime::format_duration(HORIZON);
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
apply_horizon = "{horizon}"

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
admin = {{ store = "local", name = "{ADMIN_FILE_NAME}" }}

[jobs.admin]
target = "autotask"
users = ["{ADMIN}"]
integration_code_file = "code"
stores = [ {{ store = "local", name = "{ADMIN_FILE_NAME}" }} ]
{admin_schedule}max_age = "30d"

[jobs.api]
target = "autotask"
users = ["{API_USER}"]
integration_code_file = "code"
stores = [ {{ store = "local", name = "{API_FILE_NAME}" }}, {{ store = "aws", name = "{secret_name}" }} ]
{api_schedule}max_age = "30d"
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
            subject,
            kills: 0,
            violations: Vec::new(),
            reported_failed: [0; 2],
            person_acted: 0,
        };
        for (job, password) in [("admin", ADMIN_PASSWORD), ("api", API_PASSWORD)] {
            let out = h.cli(&["import", job, "--no-rotate"], Some(&format!("{password}\n")));
            assert!(out.status.success(), "import {job}: {}", text(&out));
        }
        let action = match update {
            // Widen the windows between steps so that a kill can land inside them.
            Update::Slow => FaultAction::Delay(SLOW_UPDATE),
            Update::CommitsLate => FaultAction::CommitLate(LATE),
        };
        h.sandbox.add_fault(Fault::always(Call::SoapUpdate, action));
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
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        crate::support::binary::run_bounded(self.command(args), stdin, Duration::from_secs(60))
    }

    pub fn start_daemon(&self) -> Daemon {
        Daemon::spawn(self.command(&["--log-format", "json", "run"]))
    }

    pub fn violation(&mut self, what: String) {
        eprintln!("VIOLATION: {what}");
        self.dump_state();
        self.violations.push(what);
    }

    /// (current, pending) payloads of `job`'s secret `name` in the file store.
    fn file_slots(&self, name: &str, job: &str) -> Slots {
        let secret = SecretRef::new(name, job);
        self.rt.block_on(async {
            let current = self.file.current(&secret).await.map_err(|e| format!("file current: {e}"))?;
            let pending = self.file.pending(&secret).await.map_err(|e| format!("file pending: {e}"))?;
            Ok((current.map(|s| s.value.expose().to_owned()), pending.map(|p| p.value.expose().to_owned())))
        })
    }

    /// (current, pending) of the AWS secret, read by stage with the plain SDK as a consumer would.
    fn aws_slots(&self) -> Slots {
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

    /// Every store of `subject`'s job, by name, with its slots.
    fn slots_of(&self, subject: Subject) -> Vec<(&'static str, Slots)> {
        match subject {
            Subject::Api => {
                vec![("file", self.file_slots(API_FILE_NAME, "api")), ("aws", self.aws_slots())]
            }
            Subject::Admin => vec![("file", self.file_slots(ADMIN_FILE_NAME, "admin"))],
        }
    }

    /// Invariant 1 (no loss) for the phase's job and the lockout guard, on the frozen state of a dead process
    /// (and, in the late-commit phase, after every update that arrived has landed).
    ///
    /// Returns where each store held the target's password, e.g. `file=current+pending aws=pending`: the proof
    /// of where in the rotation the kill landed.
    pub fn frozen_check(&mut self, when: &str) -> String {
        let subject = self.subject;
        let target = self.sandbox.password_of(subject.user()).expect("the user exists");
        let mut shape = Vec::new();
        for (store, slots) in self.slots_of(subject) {
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
                            "{when}: no loss broken: the {store} store holds the {} job's password at the target \
                             neither as current nor as pending (current: {}, pending: {})",
                            subject.job(),
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

    /// The sandbox counts consecutive failed logins as Autotask does, and keeps the most each account ever
    /// reached; rotavault's guard allows at most `GUARD` in a row per account, across every job, process, kill
    /// and restart. Both users: the admin logs in for every apply.
    pub fn lockout_check(&mut self, when: &str) {
        for (i, user) in [API_USER, ADMIN].into_iter().enumerate() {
            let most = self.sandbox.most_failed_logins(user);
            if self.sandbox.is_locked(user) {
                self.violation(format!("{when}: {user} is locked out ({most} failed logins in a row)"));
                self.sandbox.unlock(user);
            } else if most > GUARD && most > self.reported_failed[i] {
                self.violation(format!(
                    "{when}: {user} reached {most} failed logins in a row, more than the lockout guard's {GUARD}"
                ));
            }
            self.reported_failed[i] = self.reported_failed[i].max(most);
        }
    }

    /// When the apply horizon of the apply `job`'s state says was sent ends, if one was sent and not settled.
    fn horizon_end(&self, job: &str) -> Option<chrono::DateTime<chrono::Utc>> {
        let path = self.dir.path().join("state").join("jobs").join(format!("{job}.json"));
        let text = std::fs::read_to_string(path).ok()?;
        let state: serde_json::Value = serde_json::from_str(&text).expect("the job state is JSON");
        let at = state["apply_intent"]["at"].as_str()?;
        let at: chrono::DateTime<chrono::Utc> = at.parse().expect("the apply intent's time");
        Some(at + chrono::Duration::from_std(HORIZON).expect("horizon"))
    }

    /// Waits until the horizon of any apply `job` sent has passed: before it, the protocol keeps a value the
    /// target does not accept yet pending (the target may still carry the apply out), so settling it is not yet
    /// possible, by design. This waits for a known moment, not for something to happen.
    pub fn wait_out_horizon(&self, job: &str) {
        if let Some(end) = self.horizon_end(job) {
            // A little past it: the daemon's clock and this one are the same clock, but a check at the very
            // instant could go either way.
            let wait = (end - chrono::Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(100);
            std::thread::sleep(wait);
        }
    }

    /// After a kill in the late-commit phase: waits until every update the dead daemon sent has landed, so that
    /// the state is frozen. `sent` counts the updates its log says it started to send; one cut off before it
    /// left never arrives, which a short bounded wait tells.
    pub fn wait_for_late_commits(&mut self, when: &str, received_before: u64, sent: u64) {
        let expected = received_before + sent;
        let arrived = self.rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(1), self.sandbox.until_late_commits_received(expected))
                .await
                .is_ok()
        });
        if !arrived {
            eprintln!("{when}: the last update the daemon started never arrived (killed before it left)");
        }
        let received = self.sandbox.late_commits_received();
        let landed = self.rt.block_on(async {
            tokio::time::timeout(LATE + Duration::from_secs(10), self.sandbox.until_late_commits(received))
                .await
                .is_ok()
        });
        if !landed {
            self.violation(format!("{when}: {received} late updates arrived, and not all of them landed"));
        }
    }

    /// What a person does when `status` says a job is blocked by the lockout guard: look at the account at the
    /// target (here: the sandbox says it is not locked, or that is a violation) and run `rotavault resolve`.
    /// Returns whether anything was blocked. Only the guard's block is taken this way; any other is left to fail.
    fn act_as_a_person_if_blocked(&mut self, when: &str) -> bool {
        let out = self.cli(&["status", "--json"], None);
        let status = serde_json::from_slice::<serde_json::Value>(&out.stdout).ok();
        let blocked: Vec<String> = status
            .as_ref()
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .filter(|j| {
                j["state"] == "blocked"
                    && j["last_error"].as_str().is_some_and(|e| e.contains("lockout guard"))
            })
            .filter_map(|j| j["job"].as_str().map(str::to_owned))
            .collect();
        for job in &blocked {
            let user = if job == "admin" { ADMIN } else { API_USER };
            if self.sandbox.is_locked(user) {
                self.violation(format!("{when}: {user} is locked out while rotavault waits for a person"));
                self.sandbox.unlock(user);
            }
            let out = self.cli(&["resolve", job], None);
            if !out.status.success() {
                self.violation(format!("{when}: `resolve {job}` failed: {}", tail(&text(&out))));
            }
            self.person_acted += 1;
            eprintln!("{when}: {job} was blocked by the lockout guard; resolved as a person would");
        }
        !blocked.is_empty()
    }

    /// Recovery through `rotavault rotate` of the phase's job, once the horizon allows it, then the full check.
    pub fn recover_and_check(&mut self, when: &str) {
        let job = self.subject.job();
        self.wait_out_horizon(job);
        let mut out = self.cli(&["rotate", job], None);
        if out.status.code() == Some(3) && self.act_as_a_person_if_blocked(when) {
            out = self.cli(&["rotate", job], None);
        }
        if !out.status.success() {
            self.violation(format!("{when}: `rotate {job}` after the kill failed: {}", tail(&text(&out))));
        }
        self.full_check(when);
    }

    /// Recovery through the daemon's start-up: let it complete a rotation, stop it with SIGTERM, then the same
    /// checks as [`Harness::recover_and_check`]. The daemon itself settles a sent apply when its horizon ends.
    pub fn recover_by_daemon_and_check(&mut self, when: &str) {
        let mut daemon = self.start_daemon();
        let mut log = Vec::new();
        let done_or_blocked =
            |l: &str| message_is(l, "rotation complete") || message_is(l, "job blocked until a person acts");
        let mut seen = daemon.wait_for(Duration::from_secs(20), &mut log, &mut |l| done_or_blocked(l));
        if seen && log.iter().any(|l| message_is(l, "job blocked until a person acts")) {
            // The daemon cannot resolve a block itself: a person does, and the daemon goes on.
            daemon.sigterm();
            self.act_as_a_person_if_blocked(when);
            daemon = self.start_daemon();
            log.clear();
            seen = daemon
                .wait_for(Duration::from_secs(20), &mut log, &mut |l| message_is(l, "rotation complete"));
        }
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

    /// After recovery, for both jobs: every store's current value authenticates, nothing is pending, the stores
    /// agree, `status` says `ok`; and the lockout check.
    pub fn full_check(&mut self, when: &str) {
        for subject in [Subject::Api, Subject::Admin] {
            let user = subject.user();
            let mut currents = Vec::new();
            for (store, slots) in self.slots_of(subject) {
                match slots {
                    Ok((current, pending)) => {
                        let secret = current.as_deref().and_then(secret_of);
                        if !secret.as_deref().is_some_and(|s| self.sandbox.authenticates(user, s)) {
                            self.violation(format!(
                                "{when}: after recovery the {store} store's current value of the {} job does \
                                 not authenticate",
                                subject.job()
                            ));
                        }
                        if pending.is_some() {
                            self.violation(format!(
                                "{when}: after recovery the {store} store still has a pending value of the {} job",
                                subject.job()
                            ));
                        }
                        currents.push(current);
                    }
                    Err(e) => self.violation(format!("{when}: a store cannot be read: {e}")),
                }
            }
            if currents.windows(2).any(|w| w[0] != w[1]) {
                self.violation(format!(
                    "{when}: after recovery the stores of the {} job hold different currents",
                    subject.job()
                ));
            }
        }
        let out = self.cli(&["status", "--json"], None);
        let status = serde_json::from_slice::<serde_json::Value>(&out.stdout).ok();
        for job in ["api", "admin"] {
            let state = status.as_ref().and_then(|v| {
                v.as_array()?
                    .iter()
                    .find(|j| j["job"] == job)
                    .map(|j| j["state"].as_str().unwrap_or("?").to_owned())
            });
            if state.as_deref() != Some("ok") {
                self.violation(format!(
                    "{when}: status says the {job} job is {state:?}, not ok: {}",
                    tail(&text(&out))
                ));
            }
        }
        self.lockout_check(when);
    }

    pub fn kill(&mut self, daemon: &mut Daemon) {
        daemon.sigkill();
        self.kills += 1;
    }

    pub fn report(&self) {
        println!("kills: {}, violations: {}", self.kills, self.violations.len());
        eprintln!("kills: {}, violations: {}", self.kills, self.violations.len());
        eprintln!(
            "most consecutive failed logins at the sandbox: {API_USER} {}, {ADMIN} {} (guard {GUARD})",
            self.sandbox.most_failed_logins(API_USER),
            self.sandbox.most_failed_logins(ADMIN)
        );
        eprintln!(
            "a person had to act (the lockout guard at its cap with logins cut off by kills): {} time(s)",
            self.person_acted
        );
        for v in &self.violations {
            eprintln!("  {v}");
        }
    }

    /// The daemon's state files (job states with their apply intents, the lockout guard's accounts, refused
    /// credentials), printed with each violation: none of them holds a secret.
    fn dump_state(&self) {
        for sub in ["jobs", "accounts", "credentials"] {
            let Ok(entries) = std::fs::read_dir(self.dir.path().join("state").join(sub)) else { continue };
            for entry in entries.flatten() {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                eprintln!("state/{sub}/{}: {}", entry.file_name().to_string_lossy(), text.trim());
            }
        }
    }
}
