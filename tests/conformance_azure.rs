//! The store contract, run against Azure Key Vault through the official `SecretClient` and the Key Vault fake
//! (`support::keyvault`), and the backend's own tests: what the conformance suite cannot see from inside the
//! contract (soft delete, permissions, throttling, `exp`, the tag budget, TLS, what `check` leaves behind).
//!
//! Each case starts its own fake (a local server, milliseconds to start), so cases share nothing. The cases
//! live in `mod azure` and `mod azure_store` so that `cargo test azure` selects them.

mod support;

use async_trait::async_trait;
use rotavault::secret::SecretValue;
use rotavault::store::Store;
use rotavault::store::azure::{AzureIdentity, AzureKeyVaultStore, AzureSettings};
use rotavault::store::conformance::Fixture;
use std::collections::BTreeMap;
use std::sync::Arc;
use support::keyvault::FakeKeyVault;

struct AzureFixture {
    fake: FakeKeyVault,
    store: Arc<AzureKeyVaultStore>,
}

fn settings(fake: &FakeKeyVault) -> AzureSettings {
    AzureSettings {
        vault_url: fake.vault_url().to_owned(),
        content_type: None,
        tags: BTreeMap::new(),
        set_expiry: false,
        // Not used: the fixture passes the fake's credential.
        identity: AzureIdentity::DeveloperCli,
    }
}

impl AzureFixture {
    async fn new() -> Self {
        Self::with(FakeKeyVault::start().await, |s| s)
    }

    fn with(fake: FakeKeyVault, adjust: impl FnOnce(AzureSettings) -> AzureSettings) -> Self {
        let store = AzureKeyVaultStore::with_parts(
            adjust(settings(&fake)),
            fake.credential(),
            fake.secret_client_options(),
        )
        .expect("a store on the fake");
        Self { fake, store: Arc::new(store) }
    }
}

#[async_trait]
impl Fixture for AzureFixture {
    fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// A secret as the portal or `az keyvault secret set` makes it: a value, and no tags.
    async fn plant_foreign(&self, name: &str, value: &SecretValue) {
        self.fake.plant_foreign(name, value.expose());
    }
}

mod azure {
    use super::AzureFixture;

    rotavault::conformance_suite!(|| async { AzureFixture::new().await });
}

mod azure_store {
    use super::support::keyvault::vault::THROTTLE_RETRY_AFTER_SECS;
    use super::support::keyvault::{FakeKeyVault, StoredVersion};
    use super::{AzureFixture, settings};
    use chrono::{TimeZone, Utc};
    use rotavault::secret::SecretValue;
    use rotavault::store::azure::{AzureKeyVaultStore, AzureSettings};
    use rotavault::store::{Metadata, RotationId, SecretRef, Store, StoreError};
    use std::collections::BTreeMap;
    use std::time::Duration;

    const JOB: &str = "azure-tests";

    fn fresh() -> SecretRef {
        let id = uuid::Uuid::new_v4().simple().to_string();
        SecretRef::new(format!("rv-az-{}", &id[..12]), JOB)
    }

    fn meta(id: Option<&RotationId>, generation: u64) -> Metadata {
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 12, 30, 15).single().expect("a valid date");
        Metadata::new(id.cloned(), at + chrono::Duration::hours(generation as i64), generation)
    }

    fn value(text: &str) -> SecretValue {
        SecretValue::new(text)
    }

    async fn rotate(store: &dyn Store, secret: &SecretRef, text: &str, generation: u64) -> RotationId {
        let id = RotationId::new();
        store.stage(secret, &value(text), &id, &meta(Some(&id), generation)).await.expect("stage");
        store.promote(secret, &id).await.expect("promote");
        id
    }

    fn pending_name(secret: &SecretRef) -> String {
        format!("{}-pending", secret.name)
    }

    fn latest(fake: &FakeKeyVault, name: &str) -> StoredVersion {
        fake.versions(name).pop().expect("a version")
    }

    #[tokio::test]
    async fn a_stage_that_loses_a_race_retires_its_own_version_and_leaves_the_winners_latest() {
        let f = AzureFixture::new().await;
        let s = fresh();
        rotate(f.store.as_ref(), &s, "current", 1).await;
        let (a, b) = (RotationId::new(), RotationId::new());
        // Started together, both write before either reads back: the later version wins.
        let (from_a, from_b) = (value("from-a"), value("from-b"));
        let (meta_a, meta_b) = (meta(Some(&a), 2), meta(Some(&b), 2));
        let (staged_a, staged_b) =
            tokio::join!(f.store.stage(&s, &from_a, &a, &meta_a), f.store.stage(&s, &from_b, &b, &meta_b));
        let (winner, loser, lost_with) = match (staged_a, staged_b) {
            (Ok(()), Err(e)) => (a, b, e),
            (Err(e), Ok(())) => (b, a, e),
            other => panic!("exactly one stage wins when both write before either reads back: {other:?}"),
        };
        assert!(matches!(lost_with, StoreError::Conflict { .. }), "{lost_with:?}");
        let versions = f.fake.versions(&pending_name(&s));
        let tagged = |id: &RotationId| {
            versions.iter().find(|v| v.tags.get("rotation-id").map(String::as_str) == Some(id.as_str()))
        };
        let won = tagged(&winner).expect("the winner's version");
        assert_eq!(won.id, latest(&f.fake, &pending_name(&s)).id, "the winner's version is the latest");
        assert!(won.enabled && won.tags.get("state").map(String::as_str) == Some("pending"), "{won:?}");
        let lost = tagged(&loser).expect("the loser's version");
        assert!(!lost.enabled && lost.tags.get("state").map(String::as_str) == Some("discarded"), "{lost:?}");
        assert_eq!(f.store.pending(&s).await.expect("pending").expect("pending").rotation_id, winner);
    }

    #[tokio::test]
    async fn a_soft_deleted_name_is_invalid_and_says_how_to_recover_it() {
        let f = AzureFixture::new().await;
        let s = fresh();
        rotate(f.store.as_ref(), &s, "before-delete", 1).await;
        assert!(f.fake.soft_delete(&s.name));
        let pending_before = f.fake.versions(&pending_name(&s)).len();

        // The first rotation after the delete: refused before anything is staged (the target must not change).
        let id = RotationId::new();
        let err = f.store.stage(&s, &value("new"), &id, &meta(Some(&id), 2)).await.expect_err("deleted name");
        assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains(&format!("az keyvault secret recover --vault-name VAULT --name {}", s.name)),
            "{text}"
        );
        assert!(text.contains("purge"), "{text}");
        assert_eq!(f.fake.versions(&pending_name(&s)).len(), pending_before, "nothing was staged");

        // A write straight to the reserved name gets Key Vault's 409, mapped the same way.
        let err =
            f.store.write_current(&s, &value("imported"), &meta(None, 2)).await.expect_err("deleted name");
        assert!(matches!(err, StoreError::Invalid { .. }) && err.to_string().contains("recover"), "{err:?}");
        assert!(f.fake.is_deleted(&s.name));

        // The companion deleted: its own 409.
        let t = fresh();
        f.fake.plant_foreign(&pending_name(&t), "x");
        assert!(f.fake.soft_delete(&pending_name(&t)));
        // At least 6 characters: an error checked against a shorter value is withheld whole.
        let err = f
            .store
            .stage(&t, &value("new-value"), &id, &meta(Some(&id), 1))
            .await
            .expect_err("deleted companion");
        assert!(err.to_string().contains(&format!("--name {}", pending_name(&t))), "{err}");
    }

    #[tokio::test]
    async fn a_missing_permission_is_permission_denied_naming_it() {
        let f = AzureFixture::new().await;
        let s = fresh();
        f.fake.deny_next("set", 1);
        let id = RotationId::new();
        // At least 6 characters: an error checked against a shorter value is withheld whole.
        let err = f
            .store
            .stage(&s, &value("value-v"), &id, &meta(Some(&id), 1))
            .await
            .expect_err("no set permission");
        assert!(matches!(err, StoreError::PermissionDenied { .. }), "{err:?}");
        assert!(err.to_string().contains("does not have secrets set permission"), "{err}");
        assert!(err.to_string().contains("grant `secrets set`"), "{err}");
        assert!(f.fake.versions(&pending_name(&s)).is_empty());

        f.fake.deny_next("get", 1);
        let err = f.store.current(&s).await.expect_err("no get permission");
        assert!(err.to_string().contains("secrets get"), "{err}");
    }

    #[tokio::test]
    async fn throttling_is_transient_with_the_services_retry_after() {
        let f = AzureFixture::new().await;
        let s = fresh();
        rotate(f.store.as_ref(), &s, "v", 1).await;
        f.fake.throttle_next(1);
        let err = f.store.current(&s).await.expect_err("throttled");
        assert!(matches!(err, StoreError::Transient { .. }), "{err:?}");
        assert_eq!(err.retry_after(), Some(Duration::from_secs(THROTTLE_RETRY_AFTER_SECS)));
        assert!(err.is_retryable());
        assert!(f.store.current(&s).await.expect("the next call").is_some());
    }

    #[tokio::test]
    async fn exp_is_set_from_max_age_when_the_store_asks_for_it() {
        let fake = FakeKeyVault::start().await;
        let f = AzureFixture::with(fake, |s| AzureSettings { set_expiry: true, ..s });
        let mut s = fresh();
        s.max_age = Some(Duration::from_secs(30 * 86_400));
        let id = RotationId::new();
        let m = meta(Some(&id), 1);
        f.store.stage(&s, &value("expiring"), &id, &m).await.expect("stage");
        assert_eq!(latest(&f.fake, &pending_name(&s)).exp, None, "pending values get no exp");
        f.store.promote(&s, &id).await.expect("promote");
        let expected = m.rotated_at.timestamp() + 30 * 86_400;
        assert_eq!(latest(&f.fake, &s.name).exp, Some(expected));
        f.store.write_current(&s, &value("imported"), &meta(None, 2)).await.expect("write_current");
        assert_eq!(latest(&f.fake, &s.name).exp, Some(meta(None, 2).rotated_at.timestamp() + 30 * 86_400));

        // Without set_expiry, or without max_age: no exp.
        let plain = AzureFixture::new().await;
        rotate(plain.store.as_ref(), &s, "no-exp", 1).await;
        assert_eq!(latest(&plain.fake, &s.name).exp, None);
        let no_age = fresh();
        rotate(f.store.as_ref(), &no_age, "no-age", 1).await;
        assert_eq!(latest(&f.fake, &no_age.name).exp, None);
    }

    #[tokio::test]
    async fn previous_is_the_version_the_current_one_names() {
        let f = AzureFixture::new().await;
        let s = fresh();
        rotate(f.store.as_ref(), &s, "gen-1", 1).await;
        let second = rotate(f.store.as_ref(), &s, "gen-2", 2).await;
        let third = rotate(f.store.as_ref(), &s, "gen-3", 3).await;

        let versions = f.fake.versions(&s.name);
        assert_eq!(versions.len(), 3, "one version of NAME per promote");
        let current = &versions[2];
        assert_eq!(current.value, "gen-3");
        assert_eq!(current.tags.get("previous-version"), Some(&versions[1].id));
        assert_eq!(current.tags.get("rotation-id").map(String::as_str), Some(third.as_str()));
        assert_eq!(versions[1].tags.get("previous-version"), Some(&versions[0].id));
        assert_eq!(versions[0].tags.get("previous-version"), None);

        let previous = f.store.previous(&s).await.expect("previous").expect("a previous value");
        assert_eq!(previous.value.expose(), "gen-2");
        assert_eq!(previous.metadata.rotation_id, Some(second));
        assert_eq!(previous.metadata.generation, 2);

        // Every pending version was marked and disabled; none was deleted.
        let pending = f.fake.versions(&pending_name(&s));
        assert_eq!(pending.len(), 3);
        for v in &pending {
            assert!(!v.enabled, "{v:?}");
            assert_eq!(v.tags.get("state").map(String::as_str), Some("done"));
            assert_eq!(v.tags.get("managed-by").map(String::as_str), Some("rotavault"));
            assert_eq!(v.tags.get("rotavault-job").map(String::as_str), Some(JOB));
        }
    }

    #[tokio::test]
    async fn configured_tags_fill_the_fifteen_and_no_more() {
        let nine: BTreeMap<String, String> =
            (0..9).map(|i| (format!("team-{i}"), "billing".to_owned())).collect();
        let fake = FakeKeyVault::start().await;
        let f = AzureFixture::with(fake.clone(), |s| AzureSettings {
            tags: nine.clone(),
            content_type: Some("application/json".into()),
            ..s
        });
        let s = fresh();
        rotate(f.store.as_ref(), &s, "tagged", 1).await;
        rotate(f.store.as_ref(), &s, "tagged-again", 2).await;
        // Every version carries the nine configured tags; the full fifteen are a pending version and a current
        // one that replaced a value (the first current has no `previous-version`).
        let current = fake.versions(&s.name);
        let pending = fake.versions(&pending_name(&s));
        assert_eq!(current[0].tags.len(), 14, "{:?}", current[0].tags);
        for v in current.iter().skip(1).chain(&pending) {
            assert_eq!(v.tags.len(), 15, "{:?}", v.tags);
        }
        for v in current.iter().chain(&pending) {
            assert_eq!(v.tags.get("team-8").map(String::as_str), Some("billing"));
            assert_eq!(v.content_type.as_deref(), Some("application/json"));
        }

        let mut ten = nine.clone();
        ten.insert("one-too-many".into(), "x".into());
        let err = AzureKeyVaultStore::with_parts(
            AzureSettings { tags: ten, ..settings(&fake) },
            fake.credential(),
            fake.secret_client_options(),
        )
        .expect_err("ten configured tags");
        assert!(matches!(err, StoreError::Invalid { .. }) && err.to_string().contains("at most 9"), "{err}");

        let reserved: BTreeMap<String, String> = [("state".to_owned(), "x".to_owned())].into();
        let err = AzureKeyVaultStore::with_parts(
            AzureSettings { tags: reserved, ..settings(&fake) },
            fake.credential(),
            fake.secret_client_options(),
        )
        .expect_err("a reserved key");
        assert!(err.to_string().contains("state"), "{err}");
    }

    #[tokio::test]
    async fn the_store_works_over_tls_with_verification_on() {
        let fake = FakeKeyVault::start_tls().await;
        let f = AzureFixture::with(fake.clone(), |s| s);
        let s = fresh();
        rotate(f.store.as_ref(), &s, "over-tls-1", 1).await;
        let id = rotate(f.store.as_ref(), &s, "over-tls-2", 2).await;
        let current = f.store.current(&s).await.expect("current").expect("a value");
        assert_eq!(current.value.expose(), "over-tls-2");
        assert_eq!(current.metadata.rotation_id, Some(id));
        assert_eq!(f.store.previous(&s).await.expect("previous").map(|p| p.value), Some(value("over-tls-1")));
        f.store.check().await.expect("check over TLS");

        // The same store without the test CA among its roots cannot connect: verification is really on.
        let mut options = fake.secret_client_options();
        let untrusting = reqwest::Client::builder()
            .resolve("myvault.vault.azure.net", fake.addr())
            .no_proxy()
            .build()
            .expect("a client");
        options.client_options.transport =
            Some(azure_core::http::Transport::new(std::sync::Arc::new(untrusting)));
        let store =
            AzureKeyVaultStore::with_parts(settings(&fake), fake.credential(), options).expect("a store");
        let err = store.current(&s).await.expect_err("an untrusted certificate");
        assert!(matches!(err, StoreError::Transient { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn check_passes_and_changes_nothing() {
        let f = AzureFixture::new().await;
        let s = fresh();
        rotate(f.store.as_ref(), &s, "kept", 1).await;
        let id = RotationId::new();
        f.store.stage(&s, &value("pending"), &id, &meta(Some(&id), 2)).await.expect("stage");
        let names = f.fake.names();
        let before: Vec<Vec<StoredVersion>> = names.iter().map(|n| f.fake.versions(n)).collect();
        let requests = f.fake.requests().len();

        f.store.check().await.expect("check");

        assert_eq!(f.fake.names(), names, "check created no secret");
        let after: Vec<Vec<StoredVersion>> = names.iter().map(|n| f.fake.versions(n)).collect();
        assert_eq!(after, before, "check changed no version");
        let probes: Vec<_> = f.fake.requests().into_iter().skip(requests).collect();
        assert!(probes.iter().all(|r| r.method == "GET" || r.method == "PATCH"), "{probes:?}");

        // The probe proves both permissions.
        f.fake.deny_next("get", 1);
        let err = f.store.check().await.expect_err("no get");
        assert!(
            matches!(err, StoreError::PermissionDenied { .. }) && err.to_string().contains("secrets get")
        );
        f.fake.deny_next("set", 1);
        let err = f.store.check().await.expect_err("no set");
        assert!(
            matches!(err, StoreError::PermissionDenied { .. }) && err.to_string().contains("secrets set")
        );
        assert_eq!(f.fake.names(), names);
    }

    #[tokio::test]
    async fn a_promote_cut_before_marking_the_pending_version_finishes_on_retry() {
        let f = AzureFixture::new().await;
        let s = fresh();
        rotate(f.store.as_ref(), &s, "old", 1).await;
        let id = RotationId::new();
        let m = meta(Some(&id), 2);
        f.store.stage(&s, &value("new"), &id, &m).await.expect("stage");
        // The state a cut promote leaves: NAME holds R, the pending version is still pending.
        f.store.write_current(&s, &value("new"), &m).await.expect("the first half");
        let versions = f.fake.versions(&s.name).len();

        f.store.promote(&s, &id).await.expect("the retried promote");
        assert_eq!(f.fake.versions(&s.name).len(), versions, "NAME was not written twice");
        assert!(f.store.pending(&s).await.expect("pending").is_none());
        let marked = latest(&f.fake, &pending_name(&s));
        assert!(!marked.enabled && marked.tags.get("state").map(String::as_str) == Some("done"));
        assert_eq!(f.store.previous(&s).await.expect("previous").map(|p| p.value), Some(value("old")));
        f.store.promote(&s, &id).await.expect("and once more");
    }

    #[tokio::test]
    async fn discard_marks_and_disables_the_pending_version() {
        let f = AzureFixture::new().await;
        let s = fresh();
        let id = RotationId::new();
        f.store.stage(&s, &value("unwanted"), &id, &meta(Some(&id), 1)).await.expect("stage");
        f.store.discard(&s, &id).await.expect("discard");
        let v = latest(&f.fake, &pending_name(&s));
        assert!(!v.enabled);
        assert_eq!(v.tags.get("state").map(String::as_str), Some("discarded"));
        // The next rotation stages a new version; nothing is deleted or re-created.
        let next = RotationId::new();
        f.store.stage(&s, &value("wanted"), &next, &meta(Some(&next), 1)).await.expect("stage again");
        assert_eq!(f.fake.versions(&pending_name(&s)).len(), 2);
        assert_eq!(f.store.pending(&s).await.expect("pending").map(|p| p.rotation_id), Some(next));
    }

    #[tokio::test]
    async fn disabled_versions_are_handled() {
        let f = AzureFixture::new().await;
        let s = fresh();
        rotate(f.store.as_ref(), &s, "current", 1).await;
        let id = RotationId::new();
        f.store.stage(&s, &value("pending"), &id, &meta(Some(&id), 2)).await.expect("stage");

        // A disabled pending version is simply no pending.
        assert!(f.fake.disable_latest(&pending_name(&s)));
        assert!(f.store.pending(&s).await.expect("pending").is_none());

        // A disabled current is Invalid, with what to do about it.
        assert!(f.fake.disable_latest(&s.name));
        let err = f.store.current(&s).await.expect_err("disabled current");
        assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
        assert!(
            err.to_string().contains("is disabled") && err.to_string().contains("--enabled true"),
            "{err}"
        );
        let err = f.store.write_current(&s, &value("x"), &meta(None, 3)).await.expect_err("disabled current");
        assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn an_adopted_secret_reads_with_synthesized_metadata_until_the_first_write() {
        let f = AzureFixture::new().await;
        let s = fresh().adopting();
        f.fake.plant_foreign(&s.name, "by-hand");
        let created = latest(&f.fake, &s.name).created;
        let current = f.store.current(&s).await.expect("current").expect("adopted");
        assert_eq!(
            current.metadata,
            Metadata::new(None, Utc.timestamp_opt(created, 0).single().expect("a time"), 0)
        );
        assert!(f.store.previous(&s).await.expect("previous").is_none());
        let foreign_version = latest(&f.fake, &s.name).id;
        rotate(f.store.as_ref(), &s, "rotated", 1).await;
        assert_eq!(latest(&f.fake, &s.name).tags.get("previous-version"), Some(&foreign_version));
    }

    #[tokio::test]
    async fn a_refused_token_is_unauthenticated() {
        let fake = FakeKeyVault::start().await;
        let store = AzureKeyVaultStore::with_parts(
            settings(&fake),
            fake.wrong_credential(),
            fake.secret_client_options(),
        )
        .expect("a store");
        let err = store.check().await.expect_err("a wrong token");
        assert!(matches!(err, StoreError::Unauthenticated { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn names_and_values_key_vault_would_refuse_are_refused_first_and_never_quoted() {
        let f = AzureFixture::new().await;
        let id = RotationId::new();
        let bad = SecretRef::new("app/key", JOB);
        let err = f.store.stage(&bad, &value("v"), &id, &meta(Some(&id), 1)).await.expect_err("a bad name");
        assert!(matches!(err, StoreError::Invalid { .. }) && err.to_string().contains("app/key"), "{err}");
        let too_long = SecretRef::new("a".repeat(120), JOB);
        assert!(f.store.current(&too_long).await.is_err());

        let s = fresh();
        let big = "hunter2-".repeat(4000);
        let err = f.store.stage(&s, &value(&big), &id, &meta(Some(&id), 1)).await.expect_err("a 32 KB value");
        assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(f.fake.versions(&pending_name(&s)).is_empty());
    }

    #[tokio::test]
    async fn the_first_request_goes_without_token_or_body_and_nothing_is_stored_by_it() {
        let f = AzureFixture::new().await;
        let s = fresh();
        rotate(f.store.as_ref(), &s, "challenged", 1).await;
        let requests = f.fake.requests();
        let unauthorized: Vec<_> = requests.iter().filter(|r| !r.bearer).collect();
        assert!(!unauthorized.is_empty(), "the client was challenged");
        assert!(unauthorized.iter().all(|r| r.status == 401 && r.body_len == 0), "{unauthorized:?}");
        assert_eq!(
            f.fake.token_scopes().first().map(String::as_str),
            Some("https://vault.azure.net/.default")
        );
        assert_eq!(f.fake.versions(&s.name).len(), 1);
        assert_eq!(latest(&f.fake, &s.name).value, "challenged");
    }
}
