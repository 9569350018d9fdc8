//! Azure Key Vault end to end, through the official client against the Key Vault fake: an Autotask job (sandbox)
//! rotates into Key Vault, and a job writing to Key Vault and to AWS (moto) keeps both in step.

mod support;

use rotavault::rotation::{Outcome, Trigger};
use rotavault::runtime::Runtime;
use rotavault::sandbox::Sandbox;
use rotavault::schedule::SystemClock;
use rotavault::store::Store;
use rotavault::store::azure::{AzureIdentity, AzureKeyVaultStore, AzureSettings};
use std::collections::BTreeMap;
use std::sync::Arc;
use support::keyvault::FakeKeyVault;
use support::tenant::{Accounts, import, moto_endpoint, start_sandbox};
use tokio_util::sync::CancellationToken;

const ADMIN: &str = "admin@kv.example";
const ADMIN_PASSWORD: &str = "Ad#min-kv-Passw0rd";
const USER: &str = "api@kv.example";
const CODE: &str = "KV-TEST-CODE";

struct Rig {
    sandbox: Sandbox,
    runtime: Runtime,
    vault: FakeKeyVault,
    kv_name: String,
    _dir: tempfile::TempDir,
    _shutdown: CancellationToken,
}

fn kv_store(vault: &FakeKeyVault) -> Arc<dyn Store> {
    let settings = AzureSettings {
        vault_url: vault.vault_url().to_owned(),
        content_type: Some("application/json".into()),
        tags: BTreeMap::new(),
        set_expiry: true,
        identity: AzureIdentity::WorkloadIdentity,
    };
    Arc::new(
        AzureKeyVaultStore::with_parts(settings, vault.credential(), vault.secret_client_options())
            .expect("the store builds"),
    )
}

/// A sandbox tenant, a Key Vault fake and a config whose job `api` writes to Key Vault and `also` (a file store
/// or moto).
async fn rig(also: &str) -> Rig {
    let shutdown = CancellationToken::new();
    let accounts = Accounts {
        code: CODE,
        admin: ADMIN,
        admin_password: ADMIN_PASSWORD,
        user: USER,
        user_password: "Api#initial-kv-1",
    };
    let sandbox = start_sandbox(&accounts, &shutdown).await;
    let vault = FakeKeyVault::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("code"), CODE).expect("code");
    rotavault::store::file::keygen(&dir.path().join("store.key")).expect("keygen");
    let id = uuid::Uuid::new_v4().simple().to_string();
    let kv_name = format!("autotask-api-{}", &id[..8]);
    let aws_name = format!("rotavault-test/{}", &id[..12]);
    let also_store = match also {
        "aws" => format!(r#"{{ store = "aws", name = "{aws_name}" }}"#),
        _ => r#"{ store = "local", name = "autotask/api" }"#.to_owned(),
    };
    let source = format!(
        r#"state_dir = "state"

# Port 0: daemons of parallel tests never meet on the default port.
[http]
listen = "127.0.0.1:0"

[rotation]
settle = "50ms"
verify_backoff = "200ms"

[stores.local]
kind = "file"
path = "secrets.age"
identity_file = "store.key"

[stores.kv]
kind = "azure_key_vault"
vault_url = "{vault_url}"
identity = "workload_identity"

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
users = ["{USER}"]
integration_code_file = "code"
stores = [ {{ store = "kv", name = "{kv_name}" }}, {also_store} ]
max_age = "30d"
"#,
        vault_url = vault.vault_url(),
        endpoint = moto_endpoint(),
        zone = sandbox.zone_lookup_url(),
    );
    let config = rotavault::config::parse(&source, &dir.path().join("config.toml")).expect("config");
    let ready = BTreeMap::from([("kv".to_owned(), kv_store(&vault))]);
    let runtime = Runtime::build_with_stores(config, Arc::new(SystemClock), shutdown.clone(), ready)
        .await
        .expect("runtime");
    import(&runtime, "admin", ADMIN, ADMIN_PASSWORD).await.expect("the admin credential imports");
    Rig { sandbox, runtime, vault, kv_name, _dir: dir, _shutdown: shutdown }
}

impl Rig {
    fn api(&self) -> &rotavault::rotation::Job {
        &self.runtime.job("api").expect("api").job
    }

    async fn slots(&self, i: usize) -> (Option<String>, Option<String>, Option<String>) {
        let js = &self.api().stores[i];
        let current =
            js.store.current(&js.secret).await.expect("current").map(|s| s.value.expose().to_owned());
        let pending =
            js.store.pending(&js.secret).await.expect("pending").map(|p| p.value.expose().to_owned());
        let previous =
            js.store.previous(&js.secret).await.expect("previous").map(|s| s.value.expose().to_owned());
        (current, pending, previous)
    }
}

fn secret_of(payload: &str) -> String {
    let doc: serde_json::Value = serde_json::from_str(payload).expect("a JSON payload");
    doc["secret"].as_str().expect("secret").to_owned()
}

#[tokio::test]
async fn an_autotask_job_rotates_into_key_vault_and_consumers_read_the_latest_version() {
    let rig = rig("local").await;
    let client = azure_security_keyvault_secrets::SecretClient::new(
        rig.vault.vault_url(),
        rig.vault.credential(),
        Some(rig.vault.secret_client_options()),
    )
    .expect("a consumer's client");
    let mut seen = Vec::new();
    for round in 1..=2 {
        let outcome = rig.runtime.engine.rotate(rig.api(), Trigger::Manual).await.expect("rotation");
        assert!(matches!(outcome, Outcome::Rotated { generation, .. } if generation == round), "{outcome:?}");
        // What any Key Vault consumer does: read the latest version of the secret.
        let latest = client.get_secret(&rig.kv_name, None).await.expect("get").into_model().expect("model");
        let payload = latest.value.expect("a value");
        assert!(rig.sandbox.authenticates(USER, &secret_of(&payload)));
        seen.push(payload);
    }
    assert!(!rig.sandbox.authenticates(USER, &secret_of(&seen[0])), "the replaced secret died");
    let (current, pending, previous) = rig.slots(0).await;
    assert_eq!(current.as_deref(), Some(seen[1].as_str()));
    assert_eq!(previous.as_deref(), Some(seen[0].as_str()));
    assert_eq!(pending, None);
    assert_eq!(rig.slots(0).await, rig.slots(1).await, "Key Vault and the file store agree");
}

#[tokio::test]
async fn a_job_writing_to_key_vault_and_aws_keeps_both_in_step() {
    let rig = rig("aws").await;
    for round in 1..=3 {
        let outcome = rig.runtime.engine.rotate(rig.api(), Trigger::Manual).await.expect("rotation");
        assert!(matches!(outcome, Outcome::Rotated { generation, .. } if generation == round), "{outcome:?}");
        let (kv, aws) = (rig.slots(0).await, rig.slots(1).await);
        assert_eq!(kv, aws, "round {round}: Key Vault and AWS differ");
        assert!(kv.0.is_some() && kv.1.is_none());
        assert!(rig.sandbox.authenticates(USER, &secret_of(kv.0.as_deref().unwrap_or_default())));
    }
}
