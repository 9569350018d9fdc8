//! The real binary against the real sandbox process: `rotavault sandbox`, `import` from standard input,
//! `check --connect` passing and failing, `rotate` and `status`; and nothing any of them print holds a secret.
//! Also what a rotation costs Autotask, read from the sandbox's request log: in steady state (zones resolved by an
//! earlier process) a rotation from `rotate` or from the daemon makes four authenticated requests and no zone
//! lookup.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::binary::files_under;

const BIN: &str = env!("CARGO_BIN_EXE_rotavault");
const ADMIN: &str = "admin@cli.example";
const ADMIN_PASSWORD: &str = "Ad#min-cli-Passw0rd";
const USER: &str = "api@cli.example";
const CODE: &str = "CLI-INTEGRATION-CODE";

/// A sandbox process, killed by its PID when dropped.
struct SandboxProcess {
    child: Child,
    zone: String,
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_sandbox(dir: &std::path::Path, admin_level: &str) -> SandboxProcess {
    let seed = dir.join("seed.toml");
    std::fs::write(
        &seed,
        format!(
            r#"integration_codes = ["{CODE}"]
lockout_threshold = 5

[[resources]]
id = 1
user_name = "{ADMIN}"
password = "{ADMIN_PASSWORD}"
security_level = "{admin_level}"

[[resources]]
id = 2
user_name = "{USER}"
password = "Api#user-initial-1"
security_level = "api_user"
"#
        ),
    )
    .expect("seed");
    let mut child = Command::new(BIN)
        .args(["sandbox", "--listen", "127.0.0.1:0", "--inspect", "--seed"])
        .arg(&seed)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the sandbox starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let started = Instant::now();
    let zone = loop {
        let line = lines.next().expect("the sandbox prints its URLs").expect("a line");
        if let Some(url) = line.split("zone lookup (REST):").nth(1) {
            break url.trim().to_owned();
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no zone URL printed");
    };
    // Keep draining stdout so the sandbox never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    SandboxProcess { child, zone }
}

fn write_config(dir: &std::path::Path, zone: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("code"), CODE).expect("code");
    let out =
        Command::new(BIN).args(["keygen", "--out"]).arg(dir.join("store.key")).output().expect("keygen");
    assert!(out.status.success());
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"state_dir = "state"

# Port 0: daemons of parallel tests never meet on the default port.
[http]
listen = "127.0.0.1:0"

[stores.local]
kind = "file"
path = "secrets.age"
identity_file = "store.key"

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
users = ["{USER}"]
integration_code_file = "code"
stores = [ {{ store = "local", name = "autotask/api" }} ]
max_age = "30d"
"#
        ),
    )
    .expect("config");
    config
}

fn run(config: &std::path::Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .env("ROTAVAULT_LOG", "trace")
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rotavault runs");
    if let Some(input) = stdin {
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("rotavault exits")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Every password the sandbox has set, by asking its inspection interface.
fn sandbox_passwords(zone: &str) -> Vec<String> {
    let base = zone.trim_end_matches("atservicesrest/");
    let body = reqwest::blocking_get(&format!("{base}_sandbox/resources"));
    let list: serde_json::Value = serde_json::from_str(&body).expect("inspection JSON");
    list.as_array()
        .expect("a list")
        .iter()
        .filter_map(|r| r["password"].as_str().map(str::to_owned))
        .collect()
}

/// The requests the sandbox has logged, as `(call, user)`, from the `from`-th on.
fn requests_since(zone: &str, from: usize) -> Vec<(String, String)> {
    let base = zone.trim_end_matches("atservicesrest/");
    let log: serde_json::Value =
        serde_json::from_str(&reqwest::blocking_get(&format!("{base}_sandbox/log"))).expect("log JSON");
    let entries = log.as_array().expect("a list");
    entries[from.min(entries.len())..]
        .iter()
        .map(|e| {
            let field = |name: &str| e[name].as_str().unwrap_or("-").to_owned();
            (field("call"), field("user"))
        })
        .collect()
}

/// The four requests a rotation of `user`'s password makes, in order: its current secret verified (REST), the
/// resource queried and updated whole by the admin (SOAP), the new secret verified (REST).
fn one_rotation(user: &str) -> Vec<(String, String)> {
    [
        ("threshold_information", user),
        ("soap_query", ADMIN),
        ("soap_update", ADMIN),
        ("threshold_information", user),
    ]
    .into_iter()
    .map(|(call, user)| (call.to_owned(), user.to_owned()))
    .collect()
}

mod reqwest {
    /// A blocking GET without another HTTP client: the tests already depend on the async one.
    pub fn blocking_get(url: &str) -> String {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async { ::reqwest::get(url).await.expect("GET").text().await.expect("body") })
    }

    /// A blocking POST with a bearer token and no body; the status code.
    pub fn blocking_post(url: &str, token: &str) -> u16 {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            let response = ::reqwest::Client::new().post(url).bearer_auth(token).send().await.expect("POST");
            response.status().as_u16()
        })
    }
}

#[test]
fn import_check_connect_rotate_and_status_through_the_binary_print_no_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = start_sandbox(dir.path(), "api_admin");
    let config = write_config(dir.path(), &sandbox.zone);
    let mut printed = String::new();

    // No admin credential yet: check --connect says so and fails.
    let out = run(&config, &["check", "--connect"], None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("FAILED"), "{}", text(&out));
    printed.push_str(&text(&out));

    // The admin credential comes in once, on standard input, and is rotated at once.
    let out = run(&config, &["import", "admin"], Some(&format!("{ADMIN_PASSWORD}\n")));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("the imported value no longer works"), "{}", text(&out));
    printed.push_str(&text(&out));

    // A wrong credential is refused and nothing is written.
    let out = run(&config, &["import", "api", "--no-rotate"], Some("not-the-password"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("does not accept"), "{}", text(&out));
    printed.push_str(&text(&out));

    let out = run(&config, &["check", "--connect"], None);
    assert!(out.status.success(), "every check passes now: {}", text(&out));
    assert!(text(&out).contains("0 failed"), "{}", text(&out));
    printed.push_str(&text(&out));

    for _ in 0..2 {
        let out = run(&config, &["rotate", "api"], None);
        assert!(out.status.success(), "{}", text(&out));
        printed.push_str(&text(&out));
    }
    let out = run(&config, &["status", "--json"], None);
    assert!(out.status.success(), "{}", text(&out));
    printed.push_str(&text(&out));

    let passwords = sandbox_passwords(&sandbox.zone);
    assert_eq!(passwords.len(), 2);
    for password in passwords.iter().map(String::as_str).chain([ADMIN_PASSWORD]) {
        assert!(!printed.contains(password), "a password was printed");
    }
}

#[test]
fn check_connect_names_an_admin_without_rights_and_says_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = start_sandbox(dir.path(), "api_user");
    let config = write_config(dir.path(), &sandbox.zone);
    let out = run(&config, &["import", "admin", "--no-rotate"], Some(ADMIN_PASSWORD));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&config, &["check", "--connect"], None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let printed = text(&out);
    assert!(printed.contains("FAILED") && printed.contains("fix:"), "{printed}");
    assert!(printed.to_lowercase().contains("update"), "names the missing right: {printed}");
    assert!(printed.contains("apply = \"manual\""), "recommends the mode that works without it: {printed}");
}

#[test]
fn check_connect_reports_a_store_it_cannot_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = start_sandbox(dir.path(), "api_admin");
    let config = write_config(dir.path(), &sandbox.zone);
    let source = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, source.replace("path = \"secrets.age\"", "path = \"missing-dir/secrets.age\""))
        .expect("write");
    let out = run(&config, &["check", "--connect"], None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let printed = text(&out);
    assert!(printed.contains("FAILED store local"), "{printed}");
    assert!(printed.contains("missing-dir"), "names the path: {printed}");
}

/// Every file of the file store's directory (`secrets.age`, one file per secret) with its bytes.
fn store_files(dir: &std::path::Path) -> std::collections::BTreeMap<std::ffi::OsString, Vec<u8>> {
    std::fs::read_dir(dir.join("secrets.age"))
        .expect("the store's directory")
        .map(|e| e.expect("entry"))
        .filter(|e| e.path().is_file())
        .map(|e| (e.file_name(), std::fs::read(e.path()).expect("read")))
        .collect()
}

#[test]
fn a_credential_changed_behind_rotavaults_back_is_diverged_visible_and_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = start_sandbox(dir.path(), "api_admin");
    let config = write_config(dir.path(), &sandbox.zone);
    assert!(run(&config, &["import", "admin", "--no-rotate"], Some(ADMIN_PASSWORD)).status.success());
    assert!(run(&config, &["rotate", "api"], None).status.success());

    // A person generates a new secret in the Autotask UI.
    let base = sandbox.zone.trim_end_matches("atservicesrest/");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let response = ::reqwest::Client::new()
            .post(format!("{base}_sandbox/resources/{USER}/password"))
            .json(&serde_json::json!({ "password": "Set-by-a-p3rson!" }))
            .send()
            .await
            .expect("POST");
        assert!(response.status().is_success(), "{}", response.status());
    });
    let before = store_files(dir.path());

    let out = run(&config, &["rotate", "api"], None);
    assert_eq!(out.status.code(), Some(3), "a diverged job exits 3: {}", text(&out));
    assert!(text(&out).contains("\"level\":\"ERROR\""), "logged as an error: {}", text(&out));
    assert_eq!(store_files(dir.path()), before, "the store is untouched");

    let out = run(&config, &["status", "--json"], None);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let api = status.as_array().expect("jobs").iter().find(|j| j["job"] == "api").expect("api");
    assert_eq!(api["state"], "diverged");
    assert!(api["action"].as_str().unwrap_or_default().contains("rotavault resolve api"), "{api}");

    // Later runs leave it alone: no login, no write.
    let out = run(&config, &["rotate", "api"], None);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(store_files(dir.path()), before);
}

#[test]
fn a_rotate_in_steady_state_makes_four_authenticated_requests_and_no_zone_lookup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = start_sandbox(dir.path(), "api_admin");
    let config = write_config(dir.path(), &sandbox.zone);
    assert!(run(&config, &["import", "admin", "--no-rotate"], Some(ADMIN_PASSWORD)).status.success());
    // The first rotation resolves the user's zone; the processes after it find it in the state directory.
    assert!(run(&config, &["rotate", "api"], None).status.success());

    for job in ["api", "admin"] {
        let before = requests_since(&sandbox.zone, 0).len();
        let out = run(&config, &["rotate", job], None);
        assert!(out.status.success(), "{}", text(&out));
        let user = if job == "api" { USER } else { ADMIN };
        assert_eq!(requests_since(&sandbox.zone, before), one_rotation(user), "`rotate {job}`");
    }
}

#[test]
fn a_daemon_rotation_in_steady_state_makes_four_authenticated_requests_and_no_zone_lookup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = start_sandbox(dir.path(), "api_admin");
    let config = write_config(dir.path(), &sandbox.zone);
    let token = "rotate-now-token-for-the-request-count";
    std::fs::write(dir.path().join("token"), token).expect("token");
    let source = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, source.replace("[http]\n", "[http]\ntoken_file = \"token\"\n")).expect("config");
    assert!(run(&config, &["import", "admin", "--no-rotate"], Some(ADMIN_PASSWORD)).status.success());
    assert!(run(&config, &["rotate", "api"], None).status.success());
    let before = requests_since(&sandbox.zone, 0).len();

    // Every job was rotated just now, so the daemon rotates only when asked; start-up itself sends nothing.
    let mut daemon = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["--log-format", "json", "run"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the daemon starts");
    // Read on a thread, so that a daemon that never logs what is awaited fails the test instead of hanging it.
    let stderr = daemon.stderr.take().expect("stderr");
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
            match value["fields"]["message"].as_str() {
                Some("HTTP server listening") => {
                    let _ = addr_tx.send(value["fields"]["addr"].as_str().unwrap_or_default().to_owned());
                }
                Some("rotation complete") => {
                    let _ = done_tx.send(());
                }
                _ => {}
            }
        }
    });
    let addr =
        addr_rx.recv_timeout(Duration::from_secs(30)).expect("the daemon logs where its HTTP server listens");
    assert_eq!(reqwest::blocking_post(&format!("http://{addr}/v1/jobs/api/rotate"), token), 202);
    let done = done_rx.recv_timeout(Duration::from_secs(60)).is_ok();
    let kill = Command::new("kill").args(["-TERM", &daemon.id().to_string()]).status().expect("kill runs");
    assert!(kill.success());
    let status = daemon.wait().expect("the daemon exits");
    reader.join().expect("reader");
    assert!(done, "the daemon never completed the rotation");
    assert_eq!(status.code(), Some(0));
    assert_eq!(requests_since(&sandbox.zone, before), one_rotation(USER));
}

/// The sandbox's accounts as its inspection interface shows them: passwords, failed logins, locks.
fn sandbox_accounts(zone: &str) -> String {
    let base = zone.trim_end_matches("atservicesrest/");
    reqwest::blocking_get(&format!("{base}_sandbox/resources"))
}

#[test]
fn plan_says_what_a_rotation_would_do_and_changes_nothing_in_the_stores_or_the_target() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = start_sandbox(dir.path(), "api_admin");
    let config = write_config(dir.path(), &sandbox.zone);
    let out = run(&config, &["import", "admin", "--no-rotate"], Some(&format!("{ADMIN_PASSWORD}\n")));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&config, &["import", "api", "--no-rotate"], Some("Api#user-initial-1\n"));
    assert!(out.status.success(), "{}", text(&out));
    // A change freeze over the next 40 days holds every job (each is due in 30, by its max_age).
    let today = chrono::Utc::now().date_naive();
    let mut source = std::fs::read_to_string(&config).expect("config");
    source.push_str(&format!(
        "\n[[blackout]]\nfrom = \"{}\"\nto = \"{}\"\nreason = \"freeze\"\n",
        today.pred_opt().expect("yesterday"),
        today + chrono::Days::new(40)
    ));
    std::fs::write(&config, source).expect("config");

    let stores = files_under(&dir.path().join("secrets.age"));
    let accounts = sandbox_accounts(&sandbox.zone);
    let out = run(&config, &["plan"], None);
    let printed = text(&out);
    assert!(out.status.success(), "{printed}");
    for part in [
        "job api (",
        "  next due    ",
        "held until",
        "(freeze)",
        "  writes      local: file `autotask/api` as pending, then current",
        "  new secret  ",
        " bits",
        "  pending     nothing",
        "  heartbeat   off",
        "  checks      ok     store local reachable and writable",
        "nothing was changed; 0 check(s) failed",
    ] {
        assert!(printed.contains(part), "`{part}` missing from:\n{printed}");
    }
    assert_eq!(
        files_under(&dir.path().join("secrets.age")),
        stores,
        "every store file is as it was, byte for byte"
    );
    assert_eq!(sandbox_accounts(&sandbox.zone), accounts, "the sandbox's accounts are as they were");
    for secret in [ADMIN_PASSWORD, "Api#user-initial-1"] {
        assert!(!printed.contains(secret), "plan printed a secret");
    }

    // A value left pending by a process that died before its apply: plan says recovery discards it, no login.
    let store = rotavault::store::file::FileStore::open(
        dir.path().join("secrets.age"),
        rotavault::store::file::IdentitySource::File(dir.path().join("store.key")),
    )
    .expect("file store");
    let id = rotavault::store::RotationId::new();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(rotavault::store::Store::stage(
        &store,
        &rotavault::store::SecretRef::new("autotask/api", "api"),
        &rotavault::secret::SecretValue::new("{\"secret\":\"Left-pending-9!\"}"),
        &id,
        &rotavault::store::Metadata::new(Some(id.clone()), chrono::Utc::now(), 2),
    ))
    .expect("stage");
    let stores = files_under(&dir.path().join("secrets.age"));
    let out = run(&config, &["plan", "api"], None);
    assert!(
        text(&out)
            .contains("  pending     a value in local whose apply was never sent: recovery discards it"),
        "{}",
        text(&out)
    );
    assert_eq!(files_under(&dir.path().join("secrets.age")), stores, "the pending value is left as it was");

    let out = run(&config, &["plan", "nosuch"], None);
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    let out = run(&config, &["plan", "api"], None);
    assert!(out.status.success() && !text(&out).contains("job admin"), "{}", text(&out));
}
