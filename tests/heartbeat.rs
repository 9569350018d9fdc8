//! The drift heartbeat through the real daemon, the Autotask sandbox, the encrypted file store and OpenBao: a
//! credential changed behind rotavault's back is found at the next heartbeat, not at the next rotation (weeks
//! later), with one failed login and none after it; a store a person overwrote is found and named. Neither changes
//! anything at the target or in a store.
//!
//! Needs OpenBao (`ROTAVAULT_TEST_VAULT_ADDR`, `ROTAVAULT_TEST_VAULT_TOKEN`, which `scripts/test` exports); it
//! fails saying so when they are unset.

mod support;

use base64::Engine as _;
use rotavault::sandbox::{Call, Sandbox};
use std::time::Duration;
use support::binary::{Daemon, Rotavault, text};
use support::receiver::{KEY_BYTES, Server};
use tokio_util::sync::CancellationToken;

const ADMIN: &str = "admin@heartbeat.example";
const ADMIN_PASSWORD: &str = "Ad#min-heartbeat-Passw0rd";
const USER: &str = "api@heartbeat.example";
const USER_PASSWORD: &str = "Api#heartbeat-initial-1";
const CODE: &str = "HEARTBEAT-TEST-CODE";
/// The heartbeat of the test's config: every job is verified about this often.
const BEAT: Duration = Duration::from_secs(2);

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("OpenBao is not running: {name} is unset; run the tests through scripts/test")
    })
}

struct World {
    rt: tokio::runtime::Runtime,
    sandbox: Sandbox,
    _shutdown: CancellationToken,
    _dir: tempfile::TempDir,
    rotavault: Rotavault,
    /// The API job's secret in OpenBao.
    bao_name: String,
    /// Where the `ops` webhook sink delivers (its default events: diverged and drifted among them).
    hook: Server,
    printed: String,
}

impl World {
    /// The sandbox, a config whose API job is kept in the file store and in OpenBao with a heartbeat of [`BEAT`],
    /// and both credentials imported (not rotated: no rotation is due for 30 days).
    fn new() -> World {
        let (address, token) = (env("ROTAVAULT_TEST_VAULT_ADDR"), env("ROTAVAULT_TEST_VAULT_TOKEN"));
        let rt =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
        let shutdown = CancellationToken::new();
        let accounts = support::tenant::Accounts {
            code: CODE,
            admin: ADMIN,
            admin_password: ADMIN_PASSWORD,
            user: USER,
            user_password: USER_PASSWORD,
        };
        let sandbox = rt.block_on(support::tenant::start_sandbox(&accounts, &shutdown));
        let hook = rt.block_on(Server::start(None));
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("hook.url"), format!("{}/ops", hook.base)).expect("url");
        let key = base64::engine::general_purpose::STANDARD.encode(KEY_BYTES);
        std::fs::write(dir.path().join("hook.key"), format!("whsec_{key}\n")).expect("key");
        std::fs::write(dir.path().join("code"), CODE).expect("code");
        std::fs::write(dir.path().join("bao-token"), token).expect("token");
        let bao_name = format!("heartbeat/{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                r#"state_dir = "state"

[http]
listen = "127.0.0.1:0"

[audit]
path = "audit.jsonl"

[policy]
heartbeat = "{beat}s"

[rotation]
settle = "50ms"
verify_backoff = "100ms"

[notify.ops]
kind = "webhook"
url_file = "hook.url"
key_file = "hook.key"

[stores.local]
kind = "file"
path = "secrets.age"
identity_file = "store.key"

[stores.bao]
kind = "hashicorp_vault"
address = "{address}"
auth = "token"
token_file = "bao-token"

{tenant}"#,
                beat = BEAT.as_secs(),
                tenant = support::tenant::config_sections(
                    &sandbox.zone_lookup_url(),
                    &accounts,
                    &format!(r#"{{ store = "local", name = "autotask/api" }}, {{ store = "bao", name = "{bao_name}" }}"#),
                ),
            ),
        )
        .expect("config");
        let rotavault = Rotavault::new(dir.path(), config);
        let key = rotavault.cli(&["keygen", "--out", "store.key"], None);
        assert!(key.status.success(), "{}", text(&key));
        let mut world = World {
            rt,
            sandbox,
            _shutdown: shutdown,
            _dir: dir,
            rotavault,
            bao_name,
            hook,
            printed: String::new(),
        };
        for (job, password) in [("admin", ADMIN_PASSWORD), ("api", USER_PASSWORD)] {
            let out = world.rotavault.cli(&["import", job, "--no-rotate"], Some(&format!("{password}\n")));
            assert!(out.status.success(), "import {job}: {}", text(&out));
            world.printed.push_str(&text(&out));
        }
        world
    }

    /// Waits until the daemon logged `message` about the API job.
    fn until_logged(&self, daemon: &mut Daemon, message: &str, within: Duration) {
        let found = daemon.wait_until(within, &mut |lines| {
            lines
                .iter()
                .any(|l| l.contains(&format!("\"message\":\"{message}")) && l.contains("\"job\":\"api\""))
        });
        assert!(found, "no `{message}` about job api within {within:?}:\n{}", daemon.text());
    }

    /// The next notification the `ops` sink delivered, checked for its signature.
    fn notification(&mut self) -> serde_json::Value {
        let received = self.rt.block_on(self.hook.next());
        assert!(received.signature_is_valid(), "signed with the sink's key");
        let event = received.json();
        self.printed.push_str(&event.to_string());
        event
    }

    /// SOAP updates the sandbox received: a rotation makes one, a heartbeat never.
    fn soap_updates(&self) -> usize {
        self.sandbox.request_log().iter().filter(|r| r.call == Some(Call::SoapUpdate)).count()
    }

    fn status(&mut self) -> serde_json::Value {
        let out = self.rotavault.cli(&["status", "--json"], None);
        assert!(out.status.success(), "{}", text(&out));
        self.printed.push_str(&text(&out));
        let all: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("status JSON");
        all.into_iter().find(|s| s["job"] == "api").expect("the api job")
    }

    /// The audit events about the API job, as JSON objects.
    fn audit(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.rotavault.dir.join("audit.jsonl")).expect("the audit file");
        text.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("one JSON object a line"))
            .filter(|e| e["subject"] == "api")
            .collect()
    }

    /// The KV v2 document of the API job's secret in OpenBao, and its version.
    fn bao_current(&self) -> (String, u64) {
        let (address, token) = (env("ROTAVAULT_TEST_VAULT_ADDR"), env("ROTAVAULT_TEST_VAULT_TOKEN"));
        let url = format!("{address}/v1/secret/data/{}", self.bao_name);
        let body: serde_json::Value = self.rt.block_on(async {
            let response =
                reqwest::Client::new().get(&url).header("X-Vault-Token", &token).send().await.expect("GET");
            assert!(response.status().is_success(), "{url}: {}", response.status());
            response.json().await.expect("JSON")
        });
        let value = body["data"]["data"]["value"].as_str().expect("data.value").to_owned();
        (value, body["data"]["metadata"]["version"].as_u64().expect("version"))
    }

    /// What a person does in OpenBao's UI: writes another value as the secret's latest version.
    fn overwrite_bao(&self, value: &str) {
        let (address, token) = (env("ROTAVAULT_TEST_VAULT_ADDR"), env("ROTAVAULT_TEST_VAULT_TOKEN"));
        let (_, version) = self.bao_current();
        let url = format!("{address}/v1/secret/data/{}", self.bao_name);
        self.rt.block_on(async {
            let response = reqwest::Client::new()
                .post(&url)
                .header("X-Vault-Token", &token)
                .json(&serde_json::json!({ "options": { "cas": version }, "data": { "value": value } }))
                .send()
                .await
                .expect("POST");
            assert!(response.status().is_success(), "{url}: {}", response.status());
        });
    }

    fn assert_no_secret_printed(&self, daemon: &Daemon, more: &[&str]) {
        let printed = format!("{}\n{}", self.printed, daemon.text());
        let target = self.sandbox.password_of(USER).expect("the user");
        for secret in [ADMIN_PASSWORD, USER_PASSWORD, target.as_str()].iter().chain(more) {
            assert!(!printed.contains(secret), "a secret was printed");
        }
    }
}

#[test]
fn a_credential_changed_behind_rotavaults_back_is_found_at_the_next_heartbeat_with_one_failed_login() {
    let mut world = World::new();
    let mut daemon = world.rotavault.start_daemon();
    world.until_logged(&mut daemon, "heartbeat: the target accepts the stored value", BEAT * 10);
    let updates = world.soap_updates();

    // A person generates a new secret in the Autotask UI; the next rotation is 30 days away.
    let changed = "Changed-in-the-UI-4!";
    world.sandbox.set_password_behind_the_back(USER, changed);
    world.until_logged(&mut daemon, "job diverged", BEAT * 10);
    assert_eq!(world.sandbox.failed_logins(USER), 1, "one failed login found it");

    // No heartbeat logs in as the account again: several intervals pass with no new failed login.
    std::thread::sleep(BEAT * 4);
    assert_eq!(world.sandbox.failed_logins(USER), 1, "no heartbeat after the refusal until a person acts");
    assert!(!world.sandbox.is_locked(USER));
    assert_eq!(world.soap_updates(), updates, "nothing was changed at the target");
    assert_eq!(daemon.sigterm(), Some(0), "{}", daemon.text());

    let status = world.status();
    assert_eq!(status["state"], "diverged", "{status}");
    let action = status["action"].as_str().expect("an action");
    assert!(action.contains("heartbeat") && action.contains("rotavault resolve api"), "{action}");
    assert!(status["last_verify"].is_string(), "the last accepted verify is shown: {status}");
    let events = world.audit();
    let diverged: Vec<_> = events.iter().filter(|e| e["type"] == "io.rotavault.rotation.diverged").collect();
    assert_eq!(diverged.len(), 1, "one diverged event: {events:?}");
    assert_eq!(diverged[0]["data"]["trigger"], "heartbeat");
    let notified = world.notification();
    assert_eq!(
        (notified["type"].as_str(), notified["subject"].as_str()),
        (Some("io.rotavault.rotation.diverged"), Some("api")),
        "a person is told: {notified}"
    );
    world.assert_no_secret_printed(&daemon, &[changed]);
}

#[test]
fn a_store_a_person_overwrote_is_found_at_the_next_heartbeat_and_named() {
    let mut world = World::new();
    let mut daemon = world.rotavault.start_daemon();
    world.until_logged(&mut daemon, "heartbeat: the target accepts the stored value", BEAT * 10);
    let updates = world.soap_updates();

    let (stored, _) = world.bao_current();
    let pasted = stored.replace(USER_PASSWORD, "Pasted-by-hand-8!");
    assert_ne!(pasted, stored, "the stored document holds the password");
    world.overwrite_bao(&pasted);
    world.until_logged(&mut daemon, "heartbeat: store(s) hold another current value", BEAT * 10);
    assert_eq!(world.sandbox.failed_logins(USER), 0, "the file store's value was verified, and accepted");
    assert_eq!(world.soap_updates(), updates, "nothing was changed at the target");
    assert_eq!(world.bao_current().0, pasted, "the person's value is left where it is");
    assert_eq!(daemon.sigterm(), Some(0), "{}", daemon.text());

    let status = world.status();
    assert_eq!(status["state"], "drifted", "{status}");
    assert_eq!(status["drift"], serde_json::json!(["bao"]), "{status}");
    assert!(status["action"].as_str().is_some_and(|a| a.contains("bao")), "{status}");
    let events = world.audit();
    let drifted: Vec<_> = events.iter().filter(|e| e["type"] == "io.rotavault.secret.drifted").collect();
    assert_eq!(drifted.len(), 1, "one drifted event: {events:?}");
    assert!(drifted[0]["data"]["detail"].as_str().is_some_and(|d| d.contains("bao")), "{:?}", drifted[0]);
    let notified = world.notification();
    assert_eq!(notified["type"], "io.rotavault.secret.drifted", "a person is told: {notified}");
    world.assert_no_secret_printed(&daemon, &["Pasted-by-hand-8!"]);
}
