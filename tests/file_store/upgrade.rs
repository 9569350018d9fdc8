//! The upgrade from the version 1 layout (one age file holding every secret, as rotavault wrote it before the
//! directory layout) to one file per secret: nothing lost, the old file kept as `<path>.v1`, a crash between the
//! renames redone, and a file that does not decrypt never touched.

use super::*;
use serde_json::json;

const ID_CURRENT: &str = "11111111-1111-4111-8111-111111111111";
const ID_PENDING: &str = "22222222-2222-4222-8222-222222222222";

fn metadata(rotation_id: Option<&str>, at: &str, generation: u64) -> serde_json::Value {
    json!({"rotation_id": rotation_id, "rotated_at": at, "generation": generation})
}

/// A version 1 store as the old single-file code wrote it: one secret with all three slots, one settled secret
/// under a name with a slash, and one secret created by another tool.
fn v1_document() -> Vec<u8> {
    let document = json!({
        "format": "rotavault-file-store",
        "version": 1,
        "entries": {
            "svc": {
                "owner": JOB,
                "current": {"value": "cur-v4lue", "metadata": metadata(Some(ID_CURRENT), "2026-03-01T12:00:00Z", 2)},
                "previous": {"value": "prev-v4lue", "metadata": metadata(None, "2026-02-01T12:00:00Z", 1)},
                "pending": {
                    "value": "pend-v4lue",
                    "rotation_id": ID_PENDING,
                    "metadata": metadata(Some(ID_PENDING), "2026-03-02T12:00:00Z", 3),
                },
            },
            "autotask/api": {
                "owner": JOB,
                "current": {"value": "api-v4lue", "metadata": metadata(None, "2026-01-01T00:00:00Z", 7)},
                "previous": null,
                "pending": null,
            },
            "hand-made": {
                "owner": null,
                "current": {"value": "foreign-v4lue", "metadata": metadata(None, "2025-12-01T00:00:00Z", 0)},
                "previous": null,
                "pending": null,
            },
        },
    });
    serde_json::to_vec(&document).expect("JSON")
}

fn write_v1(setup: &Setup, at: &Path) -> Vec<u8> {
    let bytes = encrypt_to_key(&setup.key, &v1_document());
    fs::write(at, &bytes).expect("write the version 1 file");
    bytes
}

/// Every value and every piece of metadata of [`v1_document`] reads back from `store`.
async fn assert_everything_reads_back(store: &FileStore) {
    let s = secret("svc");
    let current = store.current(&s).await.expect("current").expect("current");
    assert_eq!(current.value.expose(), "cur-v4lue");
    assert_eq!(current.metadata.rotation_id.as_ref().map(RotationId::as_str), Some(ID_CURRENT));
    assert_eq!(current.metadata.generation, 2);
    assert_eq!(current.metadata.rotated_at.to_rfc3339(), "2026-03-01T12:00:00+00:00");
    let previous = store.previous(&s).await.expect("previous").expect("previous");
    assert_eq!((previous.value.expose(), previous.metadata.generation), ("prev-v4lue", 1));
    assert_eq!(previous.metadata.rotation_id, None);
    let pending = store.pending(&s).await.expect("pending").expect("pending");
    assert_eq!(pending.value.expose(), "pend-v4lue");
    assert_eq!(pending.rotation_id.as_str(), ID_PENDING);
    assert_eq!(pending.metadata.generation, 3);

    let api = store.current(&secret("autotask/api")).await.expect("current").expect("current");
    assert_eq!((api.value.expose(), api.metadata.generation), ("api-v4lue", 7));
    // Still not managed by rotavault: only adopting reads it.
    let foreign = store.current(&secret("hand-made")).await.expect_err("a foreign secret");
    assert!(matches!(foreign, StoreError::NotOwned { owner: None, .. }), "{foreign:?}");
    let adopted = store.current(&secret("hand-made").adopting()).await.expect("adopt").expect("current");
    assert_eq!(adopted.value.expose(), "foreign-v4lue");
    // The metadata files were written too: the batch read agrees.
    let summary = store.summaries(&[s]).await.remove(0).expect("summary");
    assert_eq!(summary.pending.map(|p| p.metadata.generation), Some(3));
}

#[tokio::test]
async fn a_version_1_store_is_upgraded_on_first_use_losing_nothing_and_kept_as_a_backup() {
    let setup = Setup::new();
    let old = write_v1(&setup, &setup.path);
    let store = setup.open();
    assert_everything_reads_back(&store).await;

    assert!(setup.path.is_dir(), "the store is a directory now");
    let backup = setup.dir.path().join("secrets.v1");
    assert_eq!(fs::read(&backup).expect("the backup"), old, "the old file is kept byte for byte");
    assert_eq!(
        setup.listing(),
        BTreeSet::from(["secrets".into(), "secrets.lock".into(), "secrets.v1".into(), "store.key".into()])
    );
    for file in ["svc.age", "svc.meta", "autotask%2Fapi.age", "hand-made.age"] {
        assert!(setup.path.join(file).is_file(), "{file}");
    }
    // Another instance, and writes after the upgrade, work on the directory.
    rotate(&store, "svc-new", "value", 1).await;
    assert_everything_reads_back(&setup.open()).await;
}

#[tokio::test]
async fn an_upgrade_cut_between_its_renames_is_redone_from_the_backup() {
    let setup = Setup::new();
    // The old file already renamed to the backup, the new directory not yet in place, its half-written copy left.
    let backup = setup.dir.path().join("secrets.v1");
    let old = write_v1(&setup, &backup);
    let stale = setup.dir.path().join("secrets.upgrading-0123456789abcdef");
    fs::create_dir(&stale).expect("stale directory");
    fs::write(stale.join("svc.age"), b"half").expect("stale file");

    let store = setup.open();
    assert_everything_reads_back(&store).await;
    assert!(!stale.exists(), "the stale directory is removed");
    assert_eq!(fs::read(&backup).expect("the backup"), old);
    assert!(setup.path.is_dir());
}

#[tokio::test]
async fn a_version_1_file_that_does_not_decrypt_is_never_touched() {
    let setup = Setup::new();
    let other_key = setup.dir.path().join("other.key");
    keygen(&other_key).expect("keygen");
    let old = encrypt_to_key(&other_key, &v1_document());
    fs::write(&setup.path, &old).expect("write");

    let store = setup.open();
    for err in [
        store.current(&secret("svc")).await.expect_err("read"),
        store.write_current(&secret("svc"), &SecretValue::new("v"), &meta(None, 1)).await.expect_err("write"),
        store.summaries(&[secret("svc")]).await.remove(0).expect_err("summaries"),
        store.check().await.expect_err("check"),
    ] {
        let detail = invalid_detail(err);
        assert!(detail.contains(&setup.path.display().to_string()), "{detail}");
        assert!(detail.contains("wrong key"), "{detail}");
        assert!(detail.contains("not upgraded and nothing was changed"), "{detail}");
    }
    assert_eq!(fs::read(&setup.path).expect("read"), old, "the file is untouched");
    assert_eq!(
        setup.listing(),
        BTreeSet::from(["other.key".into(), "secrets".into(), "secrets.lock".into(), "store.key".into()])
    );
}

#[tokio::test]
async fn a_version_1_file_beside_an_existing_backup_is_refused_without_touching_either() {
    let setup = Setup::new();
    let old = write_v1(&setup, &setup.path);
    let backup = setup.dir.path().join("secrets.v1");
    fs::write(&backup, b"an earlier backup").expect("write");
    let err = setup.open().current(&secret("svc")).await.expect_err("refused");
    let detail = invalid_detail(err);
    assert!(detail.contains(&backup.display().to_string()), "{detail}");
    assert_eq!(fs::read(&setup.path).expect("read"), old);
    assert_eq!(fs::read(&backup).expect("read"), b"an earlier backup");
}
