//! The store contract, and what only a real server can show, run against a real OpenBao dev server (KV v2).
//!
//! `scripts/test` starts OpenBao (plain HTTP, and a second one with TLS) and exports `ROTAVAULT_TEST_VAULT_ADDR`,
//! `ROTAVAULT_TEST_VAULT_TOKEN`, `ROTAVAULT_TEST_VAULT_TLS_ADDR` and `ROTAVAULT_TEST_VAULT_TLS_CA`; without them
//! these tests fail (they never skip). All tests share the servers: the suite uses fresh names, and every test
//! here makes its own paths, auth mounts and roles, so no test resets anything. The modules' names contain
//! `vault` so that `cargo test vault` selects them.
//!
//! The suite runs twice: with a token file (`vault_token`) and with AppRole (`vault_approle`: a role whose
//! policy grants exactly what `check` asks for).

use async_trait::async_trait;
use rotavault::secret::SecretValue;
use rotavault::store::conformance::Fixture;
use rotavault::store::vault::{VaultAuth, VaultSettings, VaultStore};
use rotavault::store::{Metadata, RotationId, SecretRef, Store, StoreError};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::OnceCell;

const UNSET: &str = "OpenBao is not running: run the tests through scripts/test";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{UNSET} ({name} is unset)"))
}

fn addr() -> String {
    env("ROTAVAULT_TEST_VAULT_ADDR")
}

fn root_token() -> String {
    env("ROTAVAULT_TEST_VAULT_TOKEN")
}

fn random(prefix: &str) -> String {
    format!("{prefix}{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// A directory that outlives every test (the AppRole setup is shared by all of them).
fn kept_dir() -> PathBuf {
    tempfile::tempdir().expect("a tempdir").keep()
}

/// A root-token call to the plain-HTTP server, for setting things up and looking behind the store's back.
async fn root(method: reqwest::Method, path: &str, body: Option<Value>) -> Option<Value> {
    root_in(None, method, path, body).await
}

/// [`root`] in a namespace; `None` when the answer is 404.
async fn root_in(
    namespace: Option<&str>,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Option<Value> {
    let mut request = reqwest::Client::new()
        .request(method.clone(), format!("{}/v1/{path}", addr()))
        .header("X-Vault-Token", root_token());
    if let Some(ns) = namespace {
        request = request.header("X-Vault-Namespace", ns);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap_or_else(|e| panic!("{UNSET}: {e}"));
    let status = response.status();
    let text = response.text().await.expect("a body");
    if status.as_u16() == 404 {
        return None;
    }
    assert!(status.is_success(), "{method} {path}: HTTP {status}: {text}");
    if text.trim().is_empty() { Some(Value::Null) } else { Some(serde_json::from_str(&text).expect("JSON")) }
}

async fn root_post(path: &str, body: Value) -> Option<Value> {
    root(reqwest::Method::POST, path, Some(body)).await
}

async fn root_get(path: &str) -> Option<Value> {
    root(reqwest::Method::GET, path, None).await
}

fn token_settings(dir: &std::path::Path, token: &str) -> VaultSettings {
    let file = dir.join("token");
    std::fs::write(&file, format!("{token}\n")).expect("write the token file");
    VaultSettings::new(addr(), VaultAuth::TokenFile(file))
}

struct VaultFixture {
    store: Arc<VaultStore>,
    _dir: Option<tempfile::TempDir>,
}

#[async_trait]
impl Fixture for VaultFixture {
    fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// A secret as `bao kv put` makes it: a value, and no custom_metadata.
    async fn plant_foreign(&self, name: &str, value: &SecretValue) {
        root_post(&format!("secret/data/{name}"), json!({ "data": { "value": value.expose() } })).await;
    }
}

async fn token_fixture() -> VaultFixture {
    let dir = tempfile::tempdir().expect("a tempdir");
    let store = VaultStore::new(token_settings(dir.path(), &root_token())).await.expect("a token-file store");
    VaultFixture { store: Arc::new(store), _dir: Some(dir) }
}

/// The policy a rotavault AppRole needs on the `secret/` mount (what `check` asks for), and no more.
const POLICY: &str = r#"
path "secret/data/*"     { capabilities = ["create", "read", "update"] }
path "secret/metadata/*" { capabilities = ["create", "read", "update", "patch"] }
"#;

/// An AppRole auth mount at a random path with a role for rotavault; returns (mount, role_id, secret_id file).
async fn approle(token_ttl: &str) -> (String, String, PathBuf) {
    approle_with(token_ttl, 0).await
}

/// [`approle`] with a secret_id that can be used `uses` times (0: unlimited).
async fn approle_with(token_ttl: &str, uses: u64) -> (String, String, PathBuf) {
    let mount = random("approle-");
    root_post(&format!("sys/auth/{mount}"), json!({ "type": "approle" })).await;
    let policy = random("rotavault-");
    root(reqwest::Method::PUT, &format!("sys/policies/acl/{policy}"), Some(json!({ "policy": POLICY })))
        .await;
    root_post(
        &format!("auth/{mount}/role/rotavault"),
        json!({
            "token_policies": [policy],
            "token_ttl": token_ttl,
            "token_max_ttl": "24h",
            "secret_id_num_uses": uses,
        }),
    )
    .await;
    let role_id = root_get(&format!("auth/{mount}/role/rotavault/role-id")).await.expect("a role id");
    let role_id = role_id["data"]["role_id"].as_str().expect("role_id").to_owned();
    let secret_id =
        root_post(&format!("auth/{mount}/role/rotavault/secret-id"), json!({})).await.expect("a secret id");
    let file = kept_dir().join("secret_id");
    std::fs::write(&file, secret_id["data"]["secret_id"].as_str().expect("secret_id"))
        .expect("write secret_id");
    (mount, role_id, file)
}

fn approle_settings((mount, role_id, secret_id_file): (String, String, PathBuf)) -> VaultSettings {
    VaultSettings::new(addr(), VaultAuth::AppRole { mount, role_id, secret_id_file })
}

/// One AppRole mount and role for the whole suite (each test has its own runtime, hence plain data here).
static APPROLE: OnceCell<(String, String, PathBuf)> = OnceCell::const_new();

async fn approle_fixture() -> VaultFixture {
    let setup = APPROLE.get_or_init(|| approle("1h")).await.clone();
    let store = VaultStore::new(approle_settings(setup)).await.expect("an AppRole store logs in");
    VaultFixture { store: Arc::new(store), _dir: None }
}

mod vault_token {
    rotavault::conformance_suite!(|| async { super::token_fixture().await });
}

mod vault_approle {
    rotavault::conformance_suite!(|| async { super::approle_fixture().await });
}

fn meta(id: Option<&RotationId>, generation: u64) -> Metadata {
    Metadata::new(id.cloned(), chrono::Utc::now(), generation)
}

fn secret() -> SecretRef {
    SecretRef::new(random("rv-vault-"), "vault-tests")
}

mod vault_server {
    use super::*;

    #[tokio::test]
    async fn a_path_claimed_with_the_old_job_key_is_still_the_jobs_own() {
        let fixture = token_fixture().await;
        let s = secret();
        // As an older rotavault claimed a path: `job`, not `rotavault-job`.
        let claim = json!({ "custom_metadata": { "managed-by": "rotavault", "job": s.job } });
        root_post(&format!("secret/metadata/{}", s.name), claim).await;
        root_post(&format!("secret/data/{}", s.name), json!({ "data": { "value": "claimed-before" } })).await;
        let id = RotationId::new();
        fixture.store.stage(&s, &SecretValue::new("rotated"), &id, &meta(Some(&id), 2)).await.expect("stage");
        fixture.store.promote(&s, &id).await.expect("promote");
        let current = fixture.store.current(&s).await.expect("current").expect("current");
        assert_eq!(current.value.expose(), "rotated");
        let data = root_get(&format!("secret/data/{}", s.name)).await.expect("the path");
        let custom = &data["data"]["metadata"]["custom_metadata"];
        assert_eq!(custom["job"], s.job.as_str(), "the old key is left for an older rotavault");
        assert_eq!(custom["rotavault-job"], s.job.as_str());
        let other = SecretRef::new(s.name.clone(), "another-job").adopting();
        let err = fixture.store.current(&other).await.expect_err("another job");
        assert!(matches!(err, StoreError::NotOwned { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn consumers_read_data_value_and_rotavault_metadata_is_in_custom_metadata() {
        let fixture = token_fixture().await;
        let s = secret();
        let id = RotationId::new();
        let m = meta(Some(&id), 4);
        fixture.store.stage(&s, &SecretValue::new("consumer-value"), &id, &m).await.expect("stage");
        fixture.store.promote(&s, &id).await.expect("promote");
        let data = root_get(&format!("secret/data/{}", s.name)).await.expect("the path");
        assert_eq!(
            data["data"]["data"],
            json!({ "value": "consumer-value" }),
            "consumers see only data.value"
        );
        let custom = &data["data"]["metadata"]["custom_metadata"];
        assert_eq!(custom["managed-by"], "rotavault");
        assert_eq!(custom["rotavault-job"], "vault-tests");
        assert_eq!(custom["rotation-id"], id.as_str());
        assert_eq!(custom["generation"], "4");
        // The companion keeps no copy of the promoted value: one version, the cleared marker.
        let companion = root_get(&format!("secret/data/{}-pending", s.name)).await.expect("the companion");
        assert!(companion["data"]["data"].get("value").is_none(), "{companion}");
        let companion_meta =
            root_get(&format!("secret/metadata/{}-pending", s.name)).await.expect("metadata");
        assert_eq!(companion_meta["data"]["versions"].as_object().map(|v| v.len()), Some(1));
    }

    #[tokio::test]
    async fn tls_verifies_with_the_dev_ca_and_fails_without_it() {
        let tls_addr = env("ROTAVAULT_TEST_VAULT_TLS_ADDR");
        let ca = PathBuf::from(env("ROTAVAULT_TEST_VAULT_TLS_CA"));
        let dir = tempfile::tempdir().expect("a tempdir");
        let mut settings = token_settings(dir.path(), &root_token());
        settings.address = tls_addr;

        let untrusting = VaultStore::new(settings.clone()).await.expect("no request is sent yet");
        let err = untrusting.check().await.expect_err("the dev CA is not trusted");
        assert!(matches!(err, StoreError::Transient { .. }), "{err:?}");
        assert!(err.to_string().contains("ca_file"), "the error says how to fix it: {err}");

        settings.ca_file = Some(ca);
        let store = VaultStore::new(settings).await.expect("a TLS store");
        store.check().await.expect("check over TLS");
        let s = secret();
        store.write_current(&s, &SecretValue::new("over-tls"), &meta(None, 1)).await.expect("write over TLS");
        let current = store.current(&s).await.expect("current").expect("a value");
        assert_eq!(current.value.expose(), "over-tls");
    }

    /// Several stores share one path, each with its own pending companion, and promote at the same moment:
    /// every promote reads the same current version and writes with it as `cas`, so one wins and the others
    /// get `Conflict`, keep their pending value, and the path's history holds exactly the winners' values.
    #[tokio::test]
    async fn concurrent_promotes_of_one_secret_cannot_both_win() {
        let dir = tempfile::tempdir().expect("a tempdir");
        let mut stores = Vec::new();
        for i in 0..4 {
            let mut settings = token_settings(dir.path(), &root_token());
            settings.pending_suffix = format!("-pending-{i}");
            stores.push(VaultStore::new(settings).await.expect("a store"));
        }
        let s = secret();
        stores[0].write_current(&s, &SecretValue::new("seed"), &meta(None, 1)).await.expect("seed");
        let mut conflicts = 0;
        for round in 0..5 {
            let staged: Vec<(RotationId, String)> =
                (0..stores.len()).map(|i| (RotationId::new(), format!("round-{round}-store-{i}"))).collect();
            for (store, (id, text)) in stores.iter().zip(&staged) {
                store
                    .stage(&s, &SecretValue::new(text.as_str()), id, &meta(Some(id), 2))
                    .await
                    .expect("stage");
            }
            let before = current_version(&s.name).await;
            let results = futures_join(&stores, &s, &staged).await;
            let won: Vec<usize> = (0..results.len()).filter(|i| results[*i].is_ok()).collect();
            for (i, result) in results.iter().enumerate() {
                match result {
                    Ok(()) => {}
                    Err(StoreError::Conflict { .. }) => {
                        conflicts += 1;
                        let pending = stores[i].pending(&s).await.expect("pending").expect("kept");
                        assert_eq!(pending.rotation_id, staged[i].0, "a loser keeps its pending value");
                        stores[i].discard(&s, &staged[i].0).await.expect("discard the loser");
                    }
                    Err(e) => panic!("a promote failed with {e:?}"),
                }
            }
            assert!(!won.is_empty(), "round {round}: nobody won");
            // Exactly one new version per winner, each holding a winner's value: nothing was written twice
            // and no loser's value reached the path.
            let after = current_version(&s.name).await;
            assert_eq!(after - before, won.len() as u64, "round {round}");
            let mut seen = Vec::new();
            for v in before + 1..=after {
                let data = root_get(&format!("secret/data/{}?version={v}", s.name)).await.expect("a version");
                seen.push(data["data"]["data"]["value"].as_str().expect("a value").to_owned());
            }
            let mut expected: Vec<String> = won.iter().map(|i| staged[*i].1.clone()).collect();
            expected.sort();
            seen.sort();
            assert_eq!(seen, expected, "round {round}");
            let current = stores[0].current(&s).await.expect("current").expect("a value");
            let winner =
                won.iter().find(|i| staged[**i].1 == current.value.expose()).expect("a winner is current");
            assert_eq!(
                current.metadata.rotation_id.as_ref(),
                Some(&staged[*winner].0),
                "metadata matches the value"
            );
        }
        // Four promoters starting together always overlap their read and their write in practice.
        assert!(conflicts > 0, "no promote ever lost a race: the test did not race");
    }

    /// The four promotes, started together on one task so that none gets ahead by being scheduled first.
    async fn futures_join(
        stores: &[VaultStore],
        s: &SecretRef,
        staged: &[(RotationId, String)],
    ) -> Vec<Result<(), StoreError>> {
        let promote = |i: usize| stores[i].promote(s, &staged[i].0);
        let (r0, r1, r2, r3) = tokio::join!(promote(0), promote(1), promote(2), promote(3));
        vec![r0, r1, r2, r3]
    }

    async fn current_version(name: &str) -> u64 {
        let meta = root_get(&format!("secret/metadata/{name}")).await.expect("metadata");
        meta["data"]["current_version"].as_u64().expect("current_version")
    }

    #[tokio::test]
    async fn two_stagers_cannot_both_win_and_a_write_races_a_promote_safely() {
        let dir = tempfile::tempdir().expect("a tempdir");
        let a = VaultStore::new(token_settings(dir.path(), &root_token())).await.expect("store a");
        let b = VaultStore::new(token_settings(dir.path(), &root_token())).await.expect("store b");
        let s = secret();
        let (ra, rb) = (RotationId::new(), RotationId::new());
        let (va, vb) = (SecretValue::new("stage-a"), SecretValue::new("stage-b"));
        let (ma, mb) = (meta(Some(&ra), 1), meta(Some(&rb), 1));
        let (x, y) = tokio::join!(a.stage(&s, &va, &ra, &ma), b.stage(&s, &vb, &rb, &mb));
        assert!(x.is_ok() != y.is_ok(), "exactly one stage wins: {x:?} {y:?}");
        let (winner, value) = if x.is_ok() { (&ra, &va) } else { (&rb, &vb) };
        let loser = if x.is_ok() { y } else { x };
        assert!(matches!(loser, Err(StoreError::Conflict { .. })), "{loser:?}");
        let pending = a.pending(&s).await.expect("pending").expect("the winner");
        assert_eq!((&pending.rotation_id, &pending.value), (winner, value));

        let imported = SecretValue::new("imported-meanwhile");
        let imported_meta = meta(None, 1);
        let (p, w) = tokio::join!(a.promote(&s, winner), b.write_current(&s, &imported, &imported_meta));
        let current = a.current(&s).await.expect("current").expect("a value");
        match (&p, &w) {
            (Ok(()), Ok(())) => {
                // One after the other: the later one is current and the earlier one previous.
                let previous = a.previous(&s).await.expect("previous").expect("a value");
                let both = [current.value.expose(), previous.value.expose()];
                assert!(both.contains(&value.expose()) && both.contains(&"imported-meanwhile"));
            }
            (Ok(()), Err(StoreError::Conflict { .. })) => assert_eq!(current.value, *value),
            (Err(StoreError::Conflict { .. }), Ok(())) => {
                assert_eq!(current.value, imported);
                assert_eq!(a.pending(&s).await.expect("pending").expect("kept").rotation_id, *winner);
            }
            other => panic!("unexpected outcome {other:?}"),
        }
        let recorded = current.metadata.rotation_id.as_ref();
        assert_eq!(recorded == Some(winner), current.value == *value, "metadata follows the value");
    }

    #[tokio::test]
    async fn a_bad_token_is_unauthenticated_until_the_file_holds_a_good_one() {
        let dir = tempfile::tempdir().expect("a tempdir");
        let settings = token_settings(dir.path(), "hvs.not-a-real-token");
        let store = VaultStore::new(settings.clone()).await.expect("the file is read, nothing is sent");
        let err = store.current(&secret()).await.expect_err("a bad token");
        assert!(matches!(err, StoreError::Unauthenticated { .. }), "{err:?}");
        assert!(!err.to_string().contains("not-a-real-token"), "the token is never in a message: {err}");
        let err = store.check().await.expect_err("check with a bad token");
        assert!(matches!(err, StoreError::Unauthenticated { .. }), "{err:?}");
        // Vault Agent writes a new token: the store reads it on its next call.
        token_settings(dir.path(), &root_token());
        assert!(store.current(&secret()).await.expect("the new token works").is_none());
    }

    #[tokio::test]
    async fn a_policy_refusal_is_permission_denied_and_check_names_what_is_missing() {
        let token = root_post("auth/token/create", json!({ "policies": ["default"], "ttl": "10m" })).await;
        let token =
            token.expect("a token")["auth"]["client_token"].as_str().expect("client_token").to_owned();
        let dir = tempfile::tempdir().expect("a tempdir");
        let store = VaultStore::new(token_settings(dir.path(), &token)).await.expect("a store");
        let err = store.current(&secret()).await.expect_err("the default policy cannot read secrets");
        assert!(matches!(err, StoreError::PermissionDenied { .. }), "{err:?}");
        let err = store.check().await.expect_err("check");
        assert!(matches!(err, StoreError::PermissionDenied { .. }), "{err:?}");
        assert!(err.to_string().contains("create on secret/data/"), "{err}");
    }

    #[tokio::test]
    async fn check_with_the_approle_policy_passes_and_writes_nothing() {
        let store = VaultStore::new(approle_settings(approle("1h").await)).await.expect("log in");
        let before = root(reqwest::Method::GET, "secret/metadata/rotavault-check", None).await;
        store.check().await.expect("the policy grants what check asks for");
        assert!(before.is_none());
        assert!(root_get("secret/metadata/rotavault-check").await.is_none(), "check wrote nothing");
    }

    #[tokio::test]
    async fn approle_logs_in_again_once_its_token_is_revoked() {
        let setup = approle("1h").await;
        let mount = setup.0.clone();
        let store = VaultStore::new(approle_settings(setup)).await.expect("log in");
        let s = secret();
        store.write_current(&s, &SecretValue::new("before"), &meta(None, 1)).await.expect("write");
        // Revokes every token this auth mount issued, the store's included.
        root(reqwest::Method::PUT, &format!("sys/leases/revoke-prefix/auth/{mount}/login"), Some(json!({})))
            .await;
        let current = store.current(&s).await.expect("a fresh login after the refusal").expect("a value");
        assert_eq!(current.value.expose(), "before");
    }

    #[tokio::test]
    async fn a_bad_secret_id_fails_at_start_as_unauthenticated() {
        let (mount, role_id, file) = approle("1h").await;
        std::fs::write(&file, "not-the-secret-id").expect("write");
        let err =
            VaultStore::new(approle_settings((mount, role_id, file))).await.expect_err("a bad secret_id");
        assert!(matches!(err, StoreError::Unauthenticated { .. }), "{err:?}");
        assert!(!err.to_string().contains("not-the-secret-id"), "{err}");
    }

    #[tokio::test]
    async fn previous_skips_deleted_versions_and_adopted_versions_have_synthesized_metadata() {
        let fixture = token_fixture().await;
        let s = secret().adopting();
        fixture.plant_foreign(&s.name, &SecretValue::new("by-hand-1")).await;
        fixture.plant_foreign(&s.name, &SecretValue::new("by-hand-2")).await;
        let current = fixture.store.current(&s).await.expect("current").expect("adopted value");
        assert_eq!(current.value.expose(), "by-hand-2");
        assert_eq!((current.metadata.rotation_id, current.metadata.generation), (None, 0));
        // Someone soft-deletes version 2: current is gone, and the previous slot skips it after the next write.
        root_post(&format!("secret/delete/{}", s.name), json!({ "versions": [2] })).await;
        assert!(fixture.store.current(&s).await.expect("current").is_none());
        fixture.store.write_current(&s, &SecretValue::new("written"), &meta(None, 1)).await.expect("write");
        let previous = fixture.store.previous(&s).await.expect("previous").expect("version 1");
        assert_eq!(previous.value.expose(), "by-hand-1");
    }

    /// A promote cut after writing `PATH` (before its metadata, or before clearing the companion) is finished
    /// by the next promote of the same rotation, which never writes the value a second time.
    #[tokio::test]
    async fn a_promote_cut_short_is_finished_by_the_next_one() {
        let fixture = token_fixture().await;
        let store = &fixture.store;
        let s = secret();
        store.write_current(&s, &SecretValue::new("old"), &meta(None, 1)).await.expect("seed");

        // Cut after the write of PATH, before its metadata and the companion were touched.
        let r1 = RotationId::new();
        let m1 = meta(Some(&r1), 2);
        store.stage(&s, &SecretValue::new("new-1"), &r1, &m1).await.expect("stage r1");
        root_post(
            &format!("secret/data/{}", s.name),
            json!({ "options": { "cas": 1 }, "data": { "value": "new-1" } }),
        )
        .await;
        store.promote(&s, &r1).await.expect("the promote is finished");
        assert_eq!(current_version(&s.name).await, 2, "the value was not written again");
        let current = store.current(&s).await.expect("current").expect("a value");
        assert_eq!((current.value.expose(), &current.metadata), ("new-1", &m1));
        assert_eq!(store.previous(&s).await.expect("previous").expect("a value").value.expose(), "old");
        assert!(store.pending(&s).await.expect("pending").is_none());

        // Cut after the metadata, before the companion was cleared: put the pending document back.
        let r2 = RotationId::new();
        store.stage(&s, &SecretValue::new("new-2"), &r2, &meta(Some(&r2), 3)).await.expect("stage r2");
        let companion = format!("secret/data/{}-pending", s.name);
        let staged = root_get(&companion).await.expect("the companion");
        store.promote(&s, &r2).await.expect("promote r2");
        let version = staged["data"]["metadata"]["version"].as_u64().expect("a version") + 1;
        root_post(
            &companion,
            json!({ "options": { "cas": version }, "data": staged["data"]["data"].clone() }),
        )
        .await;
        assert_eq!(store.pending(&s).await.expect("pending").expect("pending again").rotation_id, r2);
        store.promote(&s, &r2).await.expect("the promote only clears");
        assert_eq!(current_version(&s.name).await, 3, "the value was not written again");
        assert!(store.pending(&s).await.expect("pending").is_none());
        assert_eq!(store.previous(&s).await.expect("previous").expect("a value").value.expose(), "new-1");
    }

    #[tokio::test]
    async fn every_request_carries_the_namespace() {
        let ns = random("rv-ns-");
        root_post(&format!("sys/namespaces/{ns}"), json!({})).await;
        let kv = json!({ "type": "kv", "options": { "version": "2" } });
        root_in(Some(&ns), reqwest::Method::POST, "sys/mounts/secret", Some(kv)).await;
        let dir = tempfile::tempdir().expect("a tempdir");
        let mut settings = token_settings(dir.path(), &root_token());
        settings.namespace = Some(ns.clone());
        let store = VaultStore::new(settings).await.expect("a store");
        store.check().await.expect("check in the namespace");
        let s = secret();
        let id = RotationId::new();
        store.stage(&s, &SecretValue::new("in-namespace"), &id, &meta(Some(&id), 1)).await.expect("stage");
        store.promote(&s, &id).await.expect("promote");
        let path = format!("secret/data/{}", s.name);
        let inside = root_in(Some(&ns), reqwest::Method::GET, &path, None).await.expect("in the namespace");
        assert_eq!(inside["data"]["data"]["value"], "in-namespace");
        assert!(root_get(&path).await.is_none(), "nothing was written outside the namespace");
    }

    /// A token with a 3 s TTL, from a secret_id that works once: the store stays authenticated past the TTL only
    /// by renewing at two thirds of it (a second login would be refused). This waits for real time, on the
    /// server's clock, about 5 s.
    #[tokio::test]
    async fn an_approle_token_is_renewed_before_it_expires() {
        let store = VaultStore::new(approle_settings(approle_with("3s", 1).await)).await.expect("log in");
        let s = secret();
        store.write_current(&s, &SecretValue::new("renewed"), &meta(None, 1)).await.expect("write");
        for _ in 0..2 {
            tokio::time::sleep(std::time::Duration::from_millis(2300)).await;
            let current = store.current(&s).await.expect("the renewed token works").expect("a value");
            assert_eq!(current.value.expose(), "renewed");
        }
    }
}
