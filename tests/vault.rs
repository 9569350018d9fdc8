//! OpenBao (the Vault KV v2 API) end to end: an Autotask job (sandbox) rotates into a real OpenBao dev server,
//! and what a plain KV v2 reader gets is the current credential, with the replaced one as the version before.

mod support;

use rotavault::rotation::{Outcome, Trigger};
use rotavault::runtime::Runtime;
use rotavault::schedule::SystemClock;
use std::sync::Arc;
use support::tenant::{Accounts, import, start_sandbox};
use tokio_util::sync::CancellationToken;

const ADMIN: &str = "admin@bao.example";
const ADMIN_PASSWORD: &str = "Ad#min-bao-Passw0rd";
const USER: &str = "api@bao.example";
const CODE: &str = "BAO-TEST-CODE";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("OpenBao is not running: {name} is unset; run the tests through scripts/test")
    })
}

/// Every string in the KV v2 data of `path` at `version` (latest when `None`), as a plain reader gets it.
async fn kv_strings(path: &str, version: Option<u64>) -> Vec<String> {
    let mut url = format!("{}/v1/secret/data/{path}", env("ROTAVAULT_TEST_VAULT_ADDR"));
    if let Some(v) = version {
        url.push_str(&format!("?version={v}"));
    }
    let response = reqwest::Client::new()
        .get(url)
        .header("X-Vault-Token", env("ROTAVAULT_TEST_VAULT_TOKEN"))
        .send()
        .await
        .expect("GET");
    let body: serde_json::Value = response.json().await.expect("JSON");
    let data = &body["data"]["data"];
    data.as_object()
        .map(|o| o.values().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

async fn kv_version(path: &str) -> u64 {
    let url = format!("{}/v1/secret/metadata/{path}", env("ROTAVAULT_TEST_VAULT_ADDR"));
    let response = reqwest::Client::new()
        .get(url)
        .header("X-Vault-Token", env("ROTAVAULT_TEST_VAULT_TOKEN"))
        .send()
        .await
        .expect("GET");
    let body: serde_json::Value = response.json().await.expect("JSON");
    body["data"]["current_version"].as_u64().expect("a current version")
}

fn secret_of(payload: &str) -> String {
    let doc: serde_json::Value = serde_json::from_str(payload).expect("a JSON payload");
    doc["secret"].as_str().expect("secret").to_owned()
}

#[tokio::test]
async fn an_autotask_job_rotates_into_openbao_end_to_end() {
    let shutdown = CancellationToken::new();
    let accounts = Accounts {
        code: CODE,
        admin: ADMIN,
        admin_password: ADMIN_PASSWORD,
        user: USER,
        user_password: "Api#initial-bao-1",
    };
    let sandbox = start_sandbox(&accounts, &shutdown).await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("code"), CODE).expect("code");
    rotavault::store::file::keygen(&dir.path().join("store.key")).expect("a store key");
    std::fs::write(dir.path().join("token"), env("ROTAVAULT_TEST_VAULT_TOKEN")).expect("token");
    let id = uuid::Uuid::new_v4().simple().to_string();
    let path = format!("rotavault-test/{}", &id[..12]);
    let source = format!(
        r#"state_dir = "state"

# Port 0: daemons of parallel tests never meet on the default port.
[http]
listen = "127.0.0.1:0"

[rotation]
settle = "50ms"
verify_backoff = "200ms"

[stores.bao]
kind = "hashicorp_vault"
address = "{address}"
auth = "token"
token_file = "token"

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
stores = [ {{ store = "bao", name = "{path}" }} ]
max_age = "30d"
"#,
        address = env("ROTAVAULT_TEST_VAULT_ADDR"),
        zone = sandbox.zone_lookup_url(),
    );
    let config = rotavault::config::parse(&source, &dir.path().join("config.toml")).expect("config");
    let runtime = Runtime::build(config, Arc::new(SystemClock), shutdown.clone()).await.expect("runtime");
    import(&runtime, "admin", ADMIN, ADMIN_PASSWORD).await.expect("the admin credential imports");

    let api = &runtime.job("api").expect("api").job;
    let mut payloads = Vec::new();
    for round in 1..=2 {
        let outcome = runtime.engine.rotate(api, Trigger::Manual).await.expect("rotation");
        assert!(matches!(outcome, Outcome::Rotated { generation, .. } if generation == round), "{outcome:?}");
        let js = &api.stores[0];
        let current = js.store.current(&js.secret).await.expect("read").expect("current");
        assert!(js.store.pending(&js.secret).await.expect("read").is_none());
        let payload = current.value.expose().to_owned();
        assert!(sandbox.authenticates(USER, &secret_of(&payload)));
        // A plain KV v2 reader finds the current payload in the latest version.
        assert!(kv_strings(&path, None).await.contains(&payload), "the latest version holds the payload");
        payloads.push(payload);
    }
    // The replaced credential is the version before the current one, and it no longer works.
    let latest = kv_version(&path).await;
    assert!(kv_strings(&path, Some(latest - 1)).await.contains(&payloads[0]));
    assert!(!sandbox.authenticates(USER, &secret_of(&payloads[0])));
}
