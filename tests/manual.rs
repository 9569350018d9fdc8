//! `apply = "manual"` through the real binary and the sandbox: a tenant with no admin, whose API user's secret a
//! person sets in the Autotask UI and pipes to `rotavault import`. rotavault verifies and stores it and never sets
//! one: `rotate` refuses (exit 64) with no request to Autotask, and the daemon raises `manual_rotation_due` ahead of
//! the secret's max_age and `manual_rotation_overdue` past it, and verifies it at every heartbeat, never a rotation. `status`, `check --connect` and the
//! report say the job is manual.

mod support;

use rotavault::sandbox::{Call, Sandbox};
use std::time::Duration;
use support::binary::{Rotavault, text};
use support::tenant::Accounts;
use tokio_util::sync::CancellationToken;

const CODE: &str = "MANUAL-TEST-CODE";
const ADMIN: &str = "admin@manual.example";
const ADMIN_PASSWORD: &str = "Ad#min-manual-Passw0rd";
const USER: &str = "api@manual.example";
const USER_PASSWORD: &str = "Api#manual-initial-1";
const HTTP_TOKEN: &str = "manual-test-rotate-now-token";
/// What a person set in the Autotask UI, then piped to `rotavault import`.
const SET_IN_THE_UI: &str = "Set-in-the-UI-manual-7!";

struct World {
    _rt: tokio::runtime::Runtime,
    sandbox: Sandbox,
    _shutdown: CancellationToken,
    _dir: tempfile::TempDir,
    rotavault: Rotavault,
    printed: String,
}

impl World {
    /// A tenant whose target is manual and has no admin; the API job's secret reaches `max_age` after `max_age`.
    fn new(max_age: &str) -> World {
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
        let sandbox = rt.block_on(support::tenant::start_sandbox(&accounts, &shutdown));
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("code"), CODE).expect("code");
        std::fs::write(dir.path().join("http-token"), HTTP_TOKEN).expect("token");
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                r#"state_dir = "state"

[http]
listen = "127.0.0.1:0"
token_file = "http-token"

[audit]
path = "audit.jsonl"

[policy]
warn_before = "2s"
heartbeat = "1s"

[stores.local]
kind = "file"
path = "secrets.age"
identity_file = "store.key"

[targets.autotask]
kind = "autotask"
zone_lookup_url = "{zone}"
apply = "manual"

[jobs.api]
target = "autotask"
users = ["{USER}"]
integration_code_file = "code"
stores = [ {{ store = "local", name = "autotask/api" }} ]
max_age = "{max_age}"
"#,
                zone = sandbox.zone_lookup_url(),
            ),
        )
        .expect("config");
        let rotavault = Rotavault::new(dir.path(), config);
        let key = rotavault.cli(&["keygen", "--out", "store.key"], None);
        assert!(key.status.success(), "{}", text(&key));
        World { _rt: rt, sandbox, _shutdown: shutdown, _dir: dir, rotavault, printed: String::new() }
    }

    fn cli(&mut self, args: &[&str], stdin: Option<&str>) -> std::process::Output {
        let out = self.rotavault.cli(args, stdin);
        self.printed.push_str(&text(&out));
        out
    }

    /// Requests that could change a password: SOAP calls and REST writes.
    fn changes_sent(&self) -> usize {
        let changes = [Call::SoapUpdate, Call::SoapQuery, Call::ResourcesPatch, Call::ResourcesPut];
        self.sandbox.request_log().iter().filter(|r| r.call.is_some_and(|c| changes.contains(&c))).count()
    }

    /// `POST /v1/jobs/api/rotate` with the token: the status and the body.
    fn rotate_now(&self, addr: &str) -> (u16, String) {
        self._rt.block_on(async {
            let response = reqwest::Client::new()
                .post(format!("http://{addr}/v1/jobs/api/rotate"))
                .bearer_auth(HTTP_TOKEN)
                .send()
                .await
                .expect("POST");
            let status = response.status().as_u16();
            (status, response.text().await.expect("body"))
        })
    }

    fn audit_types(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.rotavault.dir.join("audit.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("one JSON object a line"))
            .map(|e| e["type"].as_str().expect("type").to_owned())
            .collect()
    }

    fn assert_no_secret_printed(&self) {
        for secret in [ADMIN_PASSWORD, USER_PASSWORD, SET_IN_THE_UI] {
            assert!(!self.printed.contains(secret), "a secret was printed");
        }
    }
}

#[test]
fn a_manual_job_takes_the_secret_a_person_set_and_never_sets_one_itself() {
    let mut world = World::new("30d");
    // The person sets a new secret in the Autotask UI, then pipes it to rotavault.
    world.sandbox.set_password_behind_the_back(USER, SET_IN_THE_UI);
    let out = world.cli(&["import", "api"], Some(&format!("{SET_IN_THE_UI}\n")));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("not rotated (apply = \"manual\")"), "{}", text(&out));
    assert_eq!(world.sandbox.password_of(USER).as_deref(), Some(SET_IN_THE_UI), "the person's secret stands");

    let out = world.cli(&["rotate", "api"], None);
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    assert!(text(&out).contains("rotavault import api"), "says what to do instead: {}", text(&out));
    assert_eq!(world.changes_sent(), 0, "no request that could change a password");

    let out = world.cli(&["status", "--json"], None);
    assert!(out.status.success(), "{}", text(&out));
    let all: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("status JSON");
    let api = &all[0];
    assert_eq!((api["manual"].as_bool(), api["state"].as_str()), (Some(true), Some("ok")), "{api}");
    let last =
        chrono::DateTime::parse_from_rfc3339(api["last_rotation"].as_str().expect("set")).expect("time");
    let due = chrono::DateTime::parse_from_rfc3339(api["next_due"].as_str().expect("due")).expect("time");
    assert_eq!(due - last, chrono::Duration::days(30), "due when the secret reaches max_age: {api}");
    assert!(api["due_reason"].as_str().is_some_and(|r| r.contains("manual")), "{api}");

    let out = world.cli(&["check", "--connect"], None);
    assert!(out.status.success(), "no admin or SOAP check for a manual tenant: {}", text(&out));
    assert!(text(&out).contains("apply = \"manual\""), "{}", text(&out));

    let out = world.cli(&["plan", "api"], None);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("  manual      apply = \"manual\""), "{}", text(&out));
    assert!(text(&out).contains("as current, at import"), "{}", text(&out));

    let out = world.cli(&["report", "--format", "json"], None);
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report JSON");
    assert_eq!(report["jobs"][0]["evidence"]["apply"], "manual", "{report}");
    assert_eq!(world.changes_sent(), 0);
    world.assert_no_secret_printed();
}

#[test]
fn the_daemon_says_a_manual_rotation_is_due_then_overdue_and_rotates_nothing() {
    let mut world = World::new("6s");
    let out = world.cli(&["import", "api"], Some(USER_PASSWORD));
    assert!(out.status.success(), "{}", text(&out));
    let mut daemon = world.rotavault.start_daemon();
    let mut addr = None;
    let listening = daemon.wait_until(Duration::from_secs(30), &mut |lines| {
        addr = lines.iter().filter(|l| l.contains("HTTP server listening")).find_map(|l| {
            let line: serde_json::Value = serde_json::from_str(l).ok()?;
            line["fields"]["addr"].as_str().map(str::to_owned)
        });
        addr.is_some()
    });
    assert!(listening, "the HTTP server's address is logged:\n{}", daemon.text());
    let (status, body) = world.rotate_now(addr.as_deref().unwrap_or_default());
    assert_eq!(status, 409, "rotate-now refuses a manual job: {body}");
    assert!(body.contains("rotavault import api"), "{body}");
    let overdue = daemon.wait_until(Duration::from_secs(30), &mut |_| {
        world.audit_types().iter().any(|t| t == "io.rotavault.secret.manual_rotation_overdue")
    });
    assert!(overdue, "no manual_rotation_overdue: {:?}\n{}", world.audit_types(), daemon.text());
    let verified = daemon.wait_until(Duration::from_secs(10), &mut |lines| {
        lines.iter().any(|l| l.contains("\"message\":\"heartbeat: the target accepts the stored value"))
    });
    assert!(verified, "the heartbeat verifies a manual job's secret too:\n{}", daemon.text());
    assert_eq!(daemon.sigterm(), Some(0), "{}", daemon.text());
    let types = world.audit_types();
    let due = types.iter().position(|t| t == "io.rotavault.secret.manual_rotation_due").expect("due first");
    let late =
        types.iter().position(|t| t == "io.rotavault.secret.manual_rotation_overdue").expect("overdue");
    assert!(due < late, "{types:?}");
    assert_eq!(types.iter().filter(|t| t.ends_with("manual_rotation_due")).count(), 1, "once: {types:?}");
    assert!(!types.iter().any(|t| t.ends_with(".rotated") || t.ends_with(".failed")), "{types:?}");
    assert_eq!(world.sandbox.password_of(USER).as_deref(), Some(USER_PASSWORD), "never rotated");
    assert_eq!(world.changes_sent(), 0);
    world.printed.push_str(&daemon.text());
    world.assert_no_secret_printed();
}
