//! AWS Secrets Manager end to end, against a real moto server and the Autotask sandbox: what rotavault writes is
//! what AWS-native consumers and tooling read (`AWSCURRENT`, `AWSPREVIOUS`, no `AWSPENDING` left), interrupted
//! rotations are recovered both ways, and a job writing to a file store and to AWS keeps them identical.

mod support;

use aws_sdk_secretsmanager::Client;
use rotavault::rotation::{Outcome, Recovery, Trigger};
use rotavault::runtime::Runtime;
use rotavault::sandbox::Sandbox;
use rotavault::schedule::SystemClock;
use rotavault::secret::SecretValue;
use rotavault::store::{Metadata, RotationId};
use rotavault::target::RotationInfo;
use std::sync::Arc;
use support::tenant::{Accounts, import, moto_endpoint, start_sandbox};
use tokio_util::sync::CancellationToken;

const ADMIN: &str = "admin@aws.example";
const ADMIN_PASSWORD: &str = "Ad#min-aws-Passw0rd";
const USER: &str = "api@aws.example";
const CODE: &str = "AWS-TEST-CODE";

/// The plain AWS SDK, as a consumer would use it.
async fn plain_client() -> Client {
    let credentials = aws_sdk_secretsmanager::config::Credentials::new("test", "test", None, None, "tests");
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
        .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
        .endpoint_url(moto_endpoint())
        .credentials_provider(credentials)
        .build();
    Client::from_conf(config)
}

struct Rig {
    sandbox: Sandbox,
    runtime: Runtime,
    secret_name: String,
    _dir: tempfile::TempDir,
    _shutdown: CancellationToken,
}

async fn rig() -> Rig {
    let shutdown = CancellationToken::new();
    let accounts = Accounts {
        code: CODE,
        admin: ADMIN,
        admin_password: ADMIN_PASSWORD,
        user: USER,
        user_password: "Api#initial-aws-1",
    };
    let sandbox = start_sandbox(&accounts, &shutdown).await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("code"), CODE).expect("code");
    let key = dir.path().join("store.key");
    rotavault::store::file::keygen(&key).expect("keygen");
    let id = uuid::Uuid::new_v4().simple().to_string();
    let secret_name = format!("rotavault-test/{}", &id[..12]);
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

[stores.aws]
kind = "aws_secrets_manager"
region = "us-east-1"
endpoint_url = "{endpoint}"
tags = {{ purpose = "tests" }}

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
stores = [ {{ store = "local", name = "autotask/api" }}, {{ store = "aws", name = "{secret_name}" }} ]
max_age = "30d"
"#,
        endpoint = moto_endpoint(),
        zone = sandbox.zone_lookup_url(),
    );
    let config = rotavault::config::parse(&source, &dir.path().join("config.toml")).expect("config");
    let runtime = Runtime::build(config, Arc::new(SystemClock), shutdown.clone()).await.expect("runtime");
    import(&runtime, "admin", ADMIN, ADMIN_PASSWORD).await.expect("the admin credential imports");
    Rig { sandbox, runtime, secret_name, _dir: dir, _shutdown: shutdown }
}

impl Rig {
    fn api(&self) -> &rotavault::rotation::Job {
        &self.runtime.job("api").expect("api").job
    }

    /// (current, pending, previous) payloads of `api` in store `i`.
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

async fn by_stage(client: &Client, name: &str, stage: &str) -> Option<String> {
    match client.get_secret_value().secret_id(name).version_stage(stage).send().await {
        Ok(out) => out.secret_string().map(str::to_owned),
        Err(e) => {
            let text = format!("{:?}", e.into_service_error());
            assert!(text.contains("ResourceNotFound"), "unexpected error: {text}");
            None
        }
    }
}

async fn stages(client: &Client, name: &str) -> Vec<Vec<String>> {
    let described = client.describe_secret().secret_id(name).send().await.expect("describe");
    described.version_ids_to_stages().map(|m| m.values().cloned().collect()).unwrap_or_default()
}

fn secret_of(payload: &str) -> String {
    let doc: serde_json::Value = serde_json::from_str(payload).expect("a JSON payload");
    doc["secret"].as_str().expect("secret").to_owned()
}

#[tokio::test]
async fn aws_native_readers_see_the_new_payload_current_and_the_old_one_previous() {
    let rig = rig().await;
    let client = plain_client().await;
    rig.runtime.engine.rotate(rig.api(), Trigger::Manual).await.expect("first");
    let first = by_stage(&client, &rig.secret_name, "AWSCURRENT").await.expect("AWSCURRENT");
    rig.runtime.engine.rotate(rig.api(), Trigger::Manual).await.expect("second");
    let second = by_stage(&client, &rig.secret_name, "AWSCURRENT").await.expect("AWSCURRENT");
    assert_ne!(first, second);
    assert_eq!(by_stage(&client, &rig.secret_name, "AWSPREVIOUS").await.as_deref(), Some(first.as_str()));
    assert_eq!(by_stage(&client, &rig.secret_name, "AWSPENDING").await, None);
    assert!(stages(&client, &rig.secret_name).await.iter().all(|s| !s.contains(&"AWSPENDING".to_owned())));
    assert!(rig.sandbox.authenticates(USER, &secret_of(&second)));
    assert!(!rig.sandbox.authenticates(USER, &secret_of(&first)));

    let described = client.describe_secret().secret_id(&rig.secret_name).send().await.expect("describe");
    let tags: Vec<(String, String)> = described
        .tags()
        .iter()
        .map(|t| (t.key().unwrap_or_default().to_owned(), t.value().unwrap_or_default().to_owned()))
        .collect();
    assert!(tags.contains(&("managed-by".into(), "rotavault".into())), "{tags:?}");
    assert!(tags.contains(&("purpose".into(), "tests".into())), "{tags:?}");
}

#[tokio::test]
async fn a_file_store_and_aws_stay_identical_after_every_rotation() {
    let rig = rig().await;
    for round in 1..=3 {
        let outcome = rig.runtime.engine.rotate(rig.api(), Trigger::Manual).await.expect("rotation");
        assert!(matches!(outcome, Outcome::Rotated { generation, .. } if generation == round), "{outcome:?}");
        let (file, aws) = (rig.slots(0).await, rig.slots(1).await);
        assert_eq!(file, aws, "round {round}: the stores differ");
        assert!(file.0.is_some() && file.1.is_none());
    }
}

/// What a process that died right after Stage leaves: the new value pending in both stores; with `sent`, it died
/// after its apply intent was written (the apply may have left).
async fn interrupted_after_stage(rig: &Rig, sent: bool) -> (RotationId, String) {
    let job = rig.api();
    let current = rig.slots(0).await.0.expect("a current payload");
    let secret = job.policy.generate().expect("a secret");
    let rotation_id = RotationId::new();
    let info =
        RotationInfo { job: "api".into(), rotation_id: rotation_id.clone(), rotated_at: chrono::Utc::now() };
    let payload =
        job.target.prepare(Some(&SecretValue::new(current)), &secret, &info).await.expect("payload");
    let metadata = Metadata::new(Some(rotation_id.clone()), chrono::Utc::now(), 2);
    for js in &job.stores {
        js.store.stage(&js.secret, &payload, &rotation_id, &metadata).await.expect("stage");
    }
    if sent {
        let intent = rotavault::rotation::state::ApplyIntent {
            rotation_id: rotation_id.clone(),
            account: None,
            at: chrono::Utc::now(),
            confirmed: false,
        };
        rig.runtime.engine.states().update("api", |s| s.apply_intent = Some(intent)).expect("intent");
    }
    (rotation_id, secret.expose().to_owned())
}

#[tokio::test]
async fn an_interrupted_rotation_whose_apply_happened_is_promoted_in_aws_by_the_next_run() {
    let rig = rig().await;
    rig.runtime.engine.rotate(rig.api(), Trigger::Manual).await.expect("first");
    let (rotation_id, secret) = interrupted_after_stage(&rig, true).await;
    // The apply reached Autotask before the process died.
    rig.sandbox.set_password_behind_the_back(USER, &secret);
    let recovery = rig.runtime.engine.recover(rig.api()).await.expect("recovery");
    assert_eq!(recovery, Recovery::Promoted { rotation_id });
    let client = plain_client().await;
    let current = by_stage(&client, &rig.secret_name, "AWSCURRENT").await.expect("AWSCURRENT");
    assert_eq!(secret_of(&current), secret);
    assert_eq!(by_stage(&client, &rig.secret_name, "AWSPENDING").await, None);
    assert_eq!(rig.slots(0).await, rig.slots(1).await);
}

#[tokio::test]
async fn an_interrupted_rotation_whose_apply_never_happened_is_discarded_in_aws_by_the_next_run() {
    let rig = rig().await;
    rig.runtime.engine.rotate(rig.api(), Trigger::Manual).await.expect("first");
    let client = plain_client().await;
    let before = by_stage(&client, &rig.secret_name, "AWSCURRENT").await.expect("AWSCURRENT");
    let (rotation_id, _) = interrupted_after_stage(&rig, false).await;
    assert!(by_stage(&client, &rig.secret_name, "AWSPENDING").await.is_some());
    let recovery = rig.runtime.engine.recover(rig.api()).await.expect("recovery");
    assert!(
        matches!(recovery, Recovery::Discarded { rotation_id: ref id, .. } if *id == rotation_id),
        "{recovery:?}"
    );
    assert_eq!(by_stage(&client, &rig.secret_name, "AWSCURRENT").await.as_deref(), Some(before.as_str()));
    assert_eq!(by_stage(&client, &rig.secret_name, "AWSPENDING").await, None);
    assert!(rig.sandbox.authenticates(USER, &secret_of(&before)));
    assert_eq!(rig.sandbox.failed_logins(USER), 0, "no apply was sent for it: discarded without a login");
}

#[tokio::test]
async fn a_foreign_awspending_stops_the_job_with_the_command_and_no_login_is_spent_on_it() {
    let rig = rig().await;
    rig.runtime.engine.rotate(rig.api(), Trigger::Manual).await.expect("first");
    let client = plain_client().await;
    let before = by_stage(&client, &rig.secret_name, "AWSCURRENT").await.expect("AWSCURRENT");
    // An AWS rotation function (or a person) staged its own value, under a UUID token like a rotation id.
    let foreign = uuid::Uuid::new_v4().hyphenated().to_string();
    let mut doc: serde_json::Value = serde_json::from_str(&before).expect("a JSON payload");
    doc["secret"] = "Foreign#value-not-ours-1".into();
    client
        .put_secret_value()
        .secret_id(&rig.secret_name)
        .client_request_token(&foreign)
        .secret_string(doc.to_string())
        .version_stages("AWSPENDING")
        .send()
        .await
        .expect("a foreign AWSPENDING");
    let logins =
        |sandbox: &Sandbox| sandbox.request_log().iter().filter(|r| r.user.as_deref() == Some(USER)).count();
    let seen = logins(&rig.sandbox);

    let err = rig.runtime.engine.recover(rig.api()).await.expect_err("a conflict");
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "aws secretsmanager update-secret-version-stage --secret-id {} --version-stage AWSPENDING \
             --remove-from-version-id {foreign}",
            rig.secret_name
        )),
        "{text}"
    );
    assert!(!text.contains("Foreign#value"), "the value leaked into {text}");
    assert_eq!(logins(&rig.sandbox), seen, "the foreign value was presented to Autotask");
    assert_eq!(by_stage(&client, &rig.secret_name, "AWSCURRENT").await.as_deref(), Some(before.as_str()));
    assert!(by_stage(&client, &rig.secret_name, "AWSPENDING").await.is_some(), "left for a person");
}
