//! The real `rotavault` binary, end to end: keygen, check, rotate, status, resolve and the daemon, with a file
//! store and the `generated` target; exit codes; and the proof that no secret ever reaches the output.

use rotavault::store::file::{FileStore, IdentitySource};
use rotavault::store::{SecretRef, Store};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_rotavault");

struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("store.key");
        let out = Command::new(BIN).args(["keygen", "--out"]).arg(&key).output().expect("keygen runs");
        assert!(out.status.success(), "keygen: {}", String::from_utf8_lossy(&out.stderr));
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            r#"
state_dir = "state"

[policy]
max_age = "30d"
min_length = 24

[stores.local]
kind = "file"
path = "secrets.age"
identity_file = "store.key"

[targets.shared]
kind = "generated"

# Port 0: daemons of parallel tests never meet on the default port.
[http]
listen = "127.0.0.1:0"

[jobs.webhook]
target = "shared"
stores = [ { store = "local", name = "webhooks/signing-key" } ]
schedule = "0 3 * * *"

[jobs.token]
target = "shared"
stores = [ { store = "local", name = "tokens/reporting" } ]
max_age = "7d"
[jobs.token.secret]
length = 40
require = ["upper", "lower", "digit"]

[audit]
path = "audit.jsonl"
"#,
        )
        .expect("write config");
        Self { dir, config }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config")
            .arg(&self.config)
            .args(args)
            .env("ROTAVAULT_LOG", "trace")
            .env_remove("ROTAVAULT_CONFIG")
            .env_remove("ROTAVAULT_LOG_FORMAT")
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("rotavault runs")
    }

    fn store(&self) -> FileStore {
        FileStore::open(
            self.dir.path().join("secrets.age"),
            IdentitySource::File(self.dir.path().join("store.key")),
        )
        .expect("open the file store")
    }
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

async fn current(store: &FileStore, name: &str, job: &str) -> Option<String> {
    store.current(&SecretRef::new(name, job)).await.expect("read").map(|s| s.value.expose().to_owned())
}

#[tokio::test]
async fn no_secret_appears_in_anything_a_full_rotation_prints() {
    let setup = Setup::new();
    let store = setup.store();
    let mut secrets: Vec<String> = Vec::new();
    let mut output = String::new();

    for round in 0..3 {
        for (job, name) in [("webhook", "webhooks/signing-key"), ("token", "tokens/reporting")] {
            let format = if round % 2 == 0 { "json" } else { "text" };
            let out = setup.run(&["--log-format", format, "rotate", job]);
            assert!(out.status.success(), "rotate {job}: {}", text(&out));
            output.push_str(&text(&out));
            secrets.push(current(&store, name, job).await.expect("a current value"));
        }
    }
    for args in [&["status"][..], &["status", "--json"], &["check"], &["plan"]] {
        let out = setup.run(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        output.push_str(&text(&out));
    }
    // The report reads every store's previous slot too (a value, dropped unseen): every form of it is searched.
    for format in ["table", "json", "csv", "markdown", "html"] {
        let out = setup.run(&["report", "--format", format]);
        assert!(matches!(out.status.code(), Some(0 | 1)), "report --format {format}: {}", text(&out));
        output.push_str(&text(&out));
    }

    // The daemon too: a third job without a secret is rotated at start-up; then SIGTERM.
    let daemon_config = std::fs::read_to_string(&setup.config).expect("config")
        + "\n[jobs.fresh]\ntarget = \"shared\"\nstores = [ { store = \"local\", name = \"fresh\" } ]\nmax_age = \"1d\"\n";
    std::fs::write(&setup.config, daemon_config).expect("config");
    let (daemon_output, code) = run_daemon_until(&setup, "rotation complete");
    assert_eq!(code, Some(0), "the daemon exits 0 on SIGTERM: {daemon_output}");
    output.push_str(&daemon_output);
    secrets.push(current(&store, "fresh", "fresh").await.expect("fresh was rotated"));

    // The audit file: one CloudEvents line per rotation, searched with everything else.
    let audit = std::fs::read_to_string(setup.dir.path().join("audit.jsonl")).expect("the audit file");
    let rotated = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("one JSON object a line"))
        .filter(|e| e["type"] == "io.rotavault.rotation.rotated")
        .count();
    assert_eq!(rotated, 7, "every rotation is in the audit file:\n{audit}");
    output.push_str(&audit);

    assert!(output.contains("\"level\":\"TRACE\"") || output.contains("TRACE"), "logs ran at TRACE");
    assert!(output.contains("rotation complete"), "the rotations were logged");
    assert_eq!(secrets.len(), 7);
    let distinct: std::collections::BTreeSet<_> = secrets.iter().collect();
    assert_eq!(distinct.len(), 7, "every rotation made a new secret");
    for secret in &secrets {
        assert!(secret.len() >= 24);
        assert!(!output.contains(secret.as_str()), "a secret appeared in the output");
        // Nor any long piece of one (a log that cut or escaped a value would still leak it).
        let piece = &secret[..12];
        assert!(!output.contains(piece), "a piece of a secret appeared in the output");
    }
}

/// One plain HTTP/1.1 GET on loopback, answered whole (status line, headers and body) as text.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("the daemon's HTTP server answers");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").expect("request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    answer
}

/// Starts `rotavault run`, waits (boundedly) for a line containing `marker` on stderr, fetches what its HTTP
/// server shows (`/metrics`, `/v1/jobs`), sends SIGTERM by PID, and returns everything it printed and served and
/// its exit code.
fn run_daemon_until(setup: &Setup, marker: &str) -> (String, Option<i32>) {
    let mut child = setup
        .command(&["--log-format", "json", "run"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("daemon starts");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    let (addr_tx, addr_rx) = mpsc::channel();
    let marker_owned = marker.to_owned();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains(&marker_owned) {
                let _ = tx.send(());
            }
            if line.contains("HTTP server listening")
                && let Ok(value) = serde_json::from_str::<serde_json::Value>(&line)
                && let Some(addr) = value["fields"]["addr"].as_str()
            {
                let _ = addr_tx.send(addr.to_owned());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let seen = rx.recv_timeout(Duration::from_secs(60)).is_ok();
    let addr =
        addr_rx.recv_timeout(Duration::from_secs(10)).expect("the daemon logs where its HTTP server listens");
    let mut served = String::new();
    for path in ["/metrics", "/v1/jobs", "/healthz", "/readyz"] {
        let answer = http_get(&addr, path);
        let ok = answer.starts_with("HTTP/1.1 200");
        // Readiness may still wait for a store check; the other answers are there at once.
        assert!(ok || path == "/readyz", "GET {path}: {answer}");
        served.push_str(&answer);
    }
    assert!(served.contains("rotavault_rotations_total"), "the metrics were served: {served}");
    let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill runs");
    assert!(kill.success());
    let status = child.wait().expect("daemon exits");
    let mut all = reader.join().expect("reader");
    let mut stdout = String::new();
    if let Some(mut out) = child.stdout.take() {
        use std::io::Read;
        let _ = out.read_to_string(&mut stdout);
    }
    all.push_str(&stdout);
    all.push_str(&served);
    assert!(seen, "the daemon never printed `{marker}`: {all}");
    (all, status.code())
}

#[test]
fn status_json_reports_each_job_without_secrets() {
    let setup = Setup::new();
    let out = setup.run(&["rotate", "webhook"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = setup.run(&["status", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --json prints JSON");
    let jobs = status.as_array().expect("a list of jobs");
    let webhook = jobs.iter().find(|j| j["job"] == "webhook").expect("webhook");
    assert_eq!(webhook["state"], "ok");
    assert_eq!(webhook["generation"], 1);
    assert!(webhook["next_due"].is_string());
    let token = jobs.iter().find(|j| j["job"] == "token").expect("token");
    assert_eq!(token["state"], "never");
}

#[test]
fn config_errors_exit_78_and_name_file_line_and_key() {
    let setup = Setup::new();
    let source = std::fs::read_to_string(&setup.config).expect("config");
    std::fs::write(&setup.config, source.replace("path = \"secrets.age\"", "pathh = \"secrets.age\""))
        .expect("write");
    for args in [&["check"][..], &["rotate", "webhook"], &["status"], &["run"]] {
        let out = setup.run(args);
        assert_eq!(out.status.code(), Some(78), "{args:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("config.toml:10"), "names the file and line: {err}");
        assert!(err.contains("pathh"), "names the key: {err}");
    }
}

#[test]
fn a_missing_config_file_exits_78_and_says_where_it_looked() {
    let out = Command::new(BIN)
        .args(["--config", "/nonexistent/rotavault.toml", "check"])
        .env_remove("ROTAVAULT_CONFIG")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/rotavault.toml"));
}

#[test]
fn an_unknown_job_exits_64_and_lists_the_jobs() {
    let setup = Setup::new();
    let out = setup.run(&["rotate", "nope"]);
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nope") && err.contains("token") && err.contains("webhook"), "{err}");
}

#[test]
fn keygen_refuses_to_overwrite_and_writes_0600() {
    use std::os::unix::fs::PermissionsExt;
    let setup = Setup::new();
    let key = setup.dir.path().join("store.key");
    let mode = std::fs::metadata(&key).expect("key").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let before = std::fs::read(&key).expect("key");
    let out = Command::new(BIN).args(["keygen", "--out"]).arg(&key).output().expect("runs");
    assert!(!out.status.success());
    assert_eq!(std::fs::read(&key).expect("key"), before, "the key is untouched");
}

#[test]
fn check_reports_each_job_and_a_bad_key_file_as_a_config_error() {
    let setup = Setup::new();
    let out = setup.run(&["check"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("job webhook") && stdout.contains("job token"), "{stdout}");

    std::fs::write(setup.dir.path().join("store.key"), "not a key").expect("write");
    let out = setup.run(&["check"]);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("store.key"), "{}", text(&out));
}

#[test]
fn resolve_clears_a_diverged_mark() {
    let setup = Setup::new();
    let state = setup.dir.path().join("state/jobs");
    std::fs::create_dir_all(&state).expect("mkdir");
    std::fs::write(
        state.join("webhook.json"),
        r#"{"last_attempt":null,"last_success":null,"diverged":{"since":"2026-01-01T00:00:00Z","reason":"changed outside"}}"#,
    )
    .expect("write");
    let out = setup.run(&["rotate", "webhook"]);
    assert_eq!(out.status.code(), Some(3), "a diverged job exits 3: {}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rotavault resolve webhook"));
    let out = setup.run(&["status"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("diverged"), "{}", text(&out));

    let out = setup.run(&["resolve", "webhook"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = setup.run(&["rotate", "webhook"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn the_example_config_passes_check_apart_from_its_key_file() {
    // The shipped example names /etc paths; `check` must fail on the missing key only, never on syntax.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
    let out = Command::new(BIN).arg("--config").arg(&example).arg("check").output().expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() || err.contains("store.key") || err.contains("identity"),
        "the example config is valid: {}{err}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
#[cfg(feature = "sandbox")]
fn the_demo_rotates_every_job_and_proves_the_result_through_the_sandbox() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(BIN)
        .args(["demo", "--rotations", "3", "--dir"])
        .arg(dir.path())
        .env_remove("ROTAVAULT_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("demo runs");
    let printed = text(&out);
    assert!(out.status.success(), "{printed}");
    assert!(printed.contains("proof, through the sandbox"), "{printed}");
    assert!(printed.contains("every replaced one does not"), "{printed}");
    for job in ["autotask-admin", "backup-vendor", "reporting", "webhook-signing"] {
        assert!(printed.contains(&format!("{job:<16} generation")), "{job} rotated: {printed}");
    }
    // What the demo printed holds no secret it stored.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let store =
        FileStore::open(dir.path().join("secrets"), IdentitySource::File(dir.path().join("store.key")))
            .expect("open");
    for (job, name) in [
        ("autotask-admin", "autotask/admin"),
        ("backup-vendor", "autotask/backup-vendor"),
        ("reporting", "autotask/reporting"),
        ("webhook-signing", "webhooks/signing-key"),
    ] {
        let current = rt.block_on(current(&store, name, job)).expect("current");
        let secret = serde_json::from_str::<serde_json::Value>(&current)
            .ok()
            .and_then(|v| v["secret"].as_str().map(str::to_owned))
            .unwrap_or(current);
        assert!(!printed.contains(&secret[..12]), "a secret of {job} was printed");
    }
}

#[test]
fn a_systemd_credential_supplies_the_store_key() {
    let setup = Setup::new();
    let creds = setup.dir.path().join("credentials");
    std::fs::create_dir(&creds).expect("mkdir");
    let out = Command::new(BIN)
        .args(["keygen", "--out"])
        .arg(creds.join("rotavault-store-key"))
        .output()
        .expect("keygen");
    assert!(out.status.success());
    let source = std::fs::read_to_string(&setup.config).expect("config");
    let source = source
        .replace("path = \"secrets.age\"", "path = \"cred-secrets.age\"")
        .replace("identity_file = \"store.key\"", "identity_credential = \"rotavault-store-key\"");
    std::fs::write(&setup.config, source).expect("write");

    let out =
        setup.command(&["rotate", "webhook"]).env("CREDENTIALS_DIRECTORY", &creds).output().expect("runs");
    assert!(out.status.success(), "{}", text(&out));
    let store = FileStore::open(
        setup.dir.path().join("cred-secrets.age"),
        IdentitySource::File(creds.join("rotavault-store-key")),
    )
    .expect("open");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    assert!(rt.block_on(current(&store, "webhooks/signing-key", "webhook")).is_some());

    let out =
        setup.command(&["rotate", "webhook"]).env_remove("CREDENTIALS_DIRECTORY").output().expect("runs");
    assert!(!out.status.success());
    assert!(text(&out).contains("CREDENTIALS_DIRECTORY"), "says what is missing: {}", text(&out));
}

#[test]
fn a_permanent_store_error_ends_the_rotation_cleanly_and_status_shows_it() {
    let setup = Setup::new();
    let source = std::fs::read_to_string(&setup.config).expect("config");
    std::fs::write(&setup.config, source.replace("path = \"secrets.age\"", "path = \"gone/secrets.age\""))
        .expect("write");
    let out = setup.run(&["rotate", "webhook"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("gone"), "names the store's path: {}", text(&out));

    let out = setup.run(&["status", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let webhook = status.as_array().expect("jobs").iter().find(|j| j["job"] == "webhook").expect("webhook");
    assert_eq!(webhook["state"], "failed", "{webhook}");
    assert!(webhook["last_error"].as_str().unwrap_or_default().contains("gone"), "{webhook}");
}

/// Where a command's standard output goes in the tests of a lost report.
#[derive(Clone, Copy)]
enum Stdout {
    /// `/dev/full`: every write fails with "no space left on device".
    Full,
    /// A pipe whose reading end was closed before the command started: every write fails with a broken pipe.
    ReaderGone,
    /// File descriptor 1 closed by the shell that starts the command.
    Closed,
}

impl Setup {
    fn run_with_stdout(&self, args: &[&str], stdout: Stdout) -> Output {
        let mut cmd = match stdout {
            Stdout::Closed => {
                let mut cmd = Command::new("sh");
                cmd.args(["-c", "exec \"$0\" \"$@\" >&-", BIN, "--config"]).arg(&self.config).args(args);
                cmd.env("ROTAVAULT_LOG", "trace").stdin(Stdio::null());
                cmd
            }
            _ => self.command(args),
        };
        match stdout {
            Stdout::Full => {
                let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full");
                cmd.stdout(full);
            }
            Stdout::ReaderGone => {
                let (reader, writer) = std::io::pipe().expect("a pipe");
                drop(reader);
                cmd.stdout(writer);
            }
            Stdout::Closed => {}
        }
        cmd.stderr(Stdio::piped());
        let child = cmd.spawn().expect("rotavault runs");
        // The command gets the only writing end; the test keeps none, so a closed reader stays closed.
        drop(cmd);
        child.wait_with_output().expect("rotavault exits")
    }
}

#[tokio::test]
async fn a_full_or_closed_standard_output_never_panics_and_a_rotation_that_happened_exits_0() {
    let setup = Setup::new();
    let store = setup.store();
    let mut before = current(&store, "webhooks/signing-key", "webhook").await;
    for stdout in [Stdout::Full, Stdout::ReaderGone, Stdout::Closed] {
        let lost = !matches!(stdout, Stdout::Closed);
        let out = setup.run_with_stdout(&["rotate", "webhook"], stdout);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(out.status.code(), Some(0), "the rotation happened, so rotate says so: {err}");
        let after = current(&store, "webhooks/signing-key", "webhook").await;
        assert!(after.is_some() && after != before, "rotated");
        before = after;
        if lost {
            assert!(
                err.contains("the report could not be written to standard output")
                    && err.contains("the exit code 0 still says what was done"),
                "{err}"
            );
        }
    }
}

#[test]
fn status_with_a_full_or_closed_standard_output_fails_without_panicking() {
    let setup = Setup::new();
    for stdout in [Stdout::Full, Stdout::ReaderGone] {
        for args in [&["status"][..], &["status", "--json"], &["check"]] {
            let out = setup.run_with_stdout(args, stdout);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!err.contains("panicked"), "{args:?}: {err}");
            assert_eq!(out.status.code(), Some(1), "{args:?}: a lost report is a failed report: {err}");
            assert!(err.contains("the report could not be written to standard output"), "{args:?}: {err}");
        }
    }
    // A closed standard output reads as /dev/null to the process: nothing is lost that anyone could read.
    let out = setup.run_with_stdout(&["status"], Stdout::Closed);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_config_without_jobs_is_refused_by_check_and_run_and_shown_by_status() {
    let setup = Setup::new();
    let source = std::fs::read_to_string(&setup.config).expect("config");
    let cut = source.find("[jobs.webhook]").expect("the jobs");
    std::fs::write(&setup.config, &source[..cut]).expect("write");
    let line = source[..cut].lines().count() + 1;
    for args in [&["check"][..], &["run"]] {
        let out = setup.run(args);
        assert_eq!(out.status.code(), Some(78), "{args:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("config.toml:{line}:1: jobs: no job is defined")), "{args:?}: {err}");
    }
    let out = setup.run(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no job is defined"), "{}", text(&out));
}

#[test]
fn check_reports_every_file_a_store_names_that_does_not_exist() {
    let setup = Setup::new();
    let source = std::fs::read_to_string(&setup.config).expect("config");
    let with_vault = source.replace(
        "[targets.shared]",
        "[stores.bao]\nkind = \"hashicorp_vault\"\naddress = \"https://vault.example.com:8200\"\n\
         ca_file = \"vault-ca.pem\"\nauth = \"approle\"\nrole_id = \"rotavault\"\nsecret_id_file = \"approle.secret-id\"\n\n\
         [targets.shared]",
    );
    std::fs::write(&setup.config, &with_vault).expect("write");
    let line = |key: &str| with_vault.lines().position(|l| l.starts_with(key)).expect("in the config") + 1;
    let out = setup.run(&["check"]);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let dir = setup.dir.path().display();
    for (key, file) in [("ca_file", "vault-ca.pem"), ("secret_id_file", "approle.secret-id")] {
        let expected = format!("config.toml:{}:", line(key));
        let named = format!("stores.bao.{key}: `{dir}/{file}` does not exist: expected a file holding");
        assert!(err.lines().any(|l| l.contains(&expected) && l.contains(&named)), "{key}: {err}");
    }
    // Once they are there, the config checks out.
    std::fs::write(setup.dir.path().join("vault-ca.pem"), "not checked here").expect("write");
    std::fs::write(setup.dir.path().join("approle.secret-id"), "not checked here").expect("write");
    let out = setup.run(&["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn a_failing_reload_hook_leaves_the_rotation_done_and_status_shows_it() {
    let setup = Setup::new();
    let config = std::fs::read_to_string(&setup.config).expect("config").replace(
        "schedule = \"0 3 * * *\"\n",
        "schedule = \"0 3 * * *\"\nafter_rotation = [ { kind = \"command\", argv = [\"/bin/false\"], timeout = \"5s\" } ]\n",
    );
    std::fs::write(&setup.config, config).expect("config");
    let out = setup.run(&["rotate", "webhook"]);
    assert!(out.status.success(), "the rotation stands: {}", text(&out));
    assert!(text(&out).contains("reload hook failed"), "logged: {}", text(&out));
    let out = setup.run(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --json prints JSON");
    let webhook = status.as_array().and_then(|j| j.iter().find(|j| j["job"] == "webhook")).expect("webhook");
    assert_eq!(webhook["state"], "ok");
    let error = webhook["hook_failure"]["error"].as_str().expect("the hook failure is shown");
    assert_eq!(error, "command `/bin/false`: exited with exit status: 1");
    let out = setup.run(&["status"]);
    assert!(text(&out).contains("a reload hook failed: command `/bin/false`"), "{}", text(&out));
}

#[test]
fn a_webhook_hook_whose_files_are_missing_fails_check_and_stops_the_daemon_naming_them() {
    let setup = Setup::new();
    let source = std::fs::read_to_string(&setup.config).expect("config");
    let with_hook = source.replace(
        "schedule = \"0 3 * * *\"\n",
        "schedule = \"0 3 * * *\"\nafter_rotation = [ { kind = \"webhook\", url_file = \"reload.url\", key_file = \
         \"reload.key\" } ]\n",
    );
    assert_ne!(with_hook, source, "the hook was added");
    std::fs::write(&setup.config, &with_hook).expect("write");

    let out = setup.run(&["check"]);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    for file in ["reload.url", "reload.key"] {
        assert!(err.contains(file) && err.contains("does not exist"), "{file}: {err}");
    }

    // The daemon does not start without them, and says which; it never runs a job it cannot reload after.
    let out = setup.run(&["run"]);
    assert!(!out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("jobs.webhook.after_rotation[0]"), "names the hook: {said}");
    assert!(said.contains("reload.key") || said.contains("reload.url"), "names the file: {said}");
}
