//! What keeps the file store's cost flat in the number of secrets: an operation opens only its own secret's
//! files, and a batch of summaries reads plaintext metadata instead of decrypting, falling back to the age file
//! whenever the metadata does not describe it.

use super::*;
use rotavault::store::Summary;

/// Every file of `count` other secrets, damaged: an operation that opened any of them would fail.
fn damage_others(setup: &Setup, count: usize) -> Vec<(PathBuf, Vec<u8>)> {
    (0..count)
        .flat_map(|n| {
            let bytes = noise(64, n as u64 + 1);
            [setup.file(&format!("other-{n}"), "age"), setup.file(&format!("other-{n}"), "meta")]
                .map(|path| (path, bytes.clone()))
        })
        .inspect(|(path, bytes)| fs::write(path, bytes).expect("write a damaged file"))
        .collect()
}

#[tokio::test]
async fn an_operation_on_one_secret_reads_and_writes_only_that_secrets_files() {
    let setup = Setup::new();
    let store = setup.open();
    rotate(&store, "svc", "first", 1).await;
    // 1,000 other secrets whose files do not decrypt, decode or parse: reading one would be an error.
    let others = damage_others(&setup, 1_000);

    let s = secret("svc");
    let id = RotationId::new();
    store.stage(&s, &SecretValue::new("second"), &id, &meta(Some(&id), 2)).await.expect("stage");
    store.promote(&s, &id).await.expect("promote");
    store.write_current(&s, &SecretValue::new("third"), &meta(None, 3)).await.expect("write_current");
    let current = store.current(&s).await.expect("current").expect("current");
    assert_eq!(current.value.expose(), "third");
    assert_eq!(store.previous(&s).await.expect("previous").expect("previous").value.expose(), "second");
    let summary = store.summaries(std::slice::from_ref(&s)).await.remove(0).expect("summary");
    assert_eq!(summary.current.map(|m| m.generation), Some(3));

    for (path, bytes) in others {
        assert_eq!(fs::read(&path).expect("read"), bytes, "{} changed", path.display());
    }
}

#[tokio::test]
async fn summaries_come_from_the_metadata_files_without_decrypting() {
    let setup = Setup::new();
    let writer = setup.open();
    let first = rotate(&writer, "a", "value-a", 4).await;
    let staged = RotationId::new();
    writer
        .stage(&secret("a"), &SecretValue::new("next"), &staged, &meta(Some(&staged), 5))
        .await
        .expect("stage");
    rotate(&writer, "b", "value-b", 1).await;

    // An identity that decrypts nothing: only the metadata files can answer.
    let wrong_key = setup.dir.path().join("wrong.key");
    keygen(&wrong_key).expect("keygen");
    let blind = FileStore::open(setup.path.clone(), IdentitySource::File(wrong_key)).expect("open");
    let answers = blind.summaries(&[secret("a"), secret("missing"), secret("b")]).await;
    let a = answers[0].as_ref().expect("a");
    assert_eq!(a.current.as_ref().map(|m| (m.generation, m.rotation_id.clone())), Some((4, Some(first))));
    let pending = a.pending.as_ref().expect("pending");
    assert_eq!((pending.rotation_id.clone(), pending.metadata.generation), (staged, 5));
    assert_eq!(*answers[1].as_ref().expect("missing"), Summary::default());
    assert_eq!(answers[2].as_ref().expect("b").current.as_ref().map(|m| m.generation), Some(1));
    // Ownership is checked from the metadata file too.
    let other_job = SecretRef::new("b", "another-job");
    let err = blind.summaries(&[other_job]).await.remove(0).expect_err("another job's secret");
    assert!(matches!(err, StoreError::NotOwned { .. }), "{err:?}");
}

#[tokio::test]
async fn a_metadata_file_that_does_not_describe_its_age_file_is_ignored() {
    let setup = Setup::new();
    let store = setup.open();
    rotate(&store, "svc", "one", 1).await;
    let old_meta = fs::read(setup.file("svc", "meta")).expect("metadata file");
    rotate(&store, "svc", "two", 2).await;
    let generation = |summary: &Result<Summary, StoreError>| {
        summary.as_ref().expect("summary").current.as_ref().map(|m| m.generation)
    };

    // A crash after the age file's rename and before the metadata file's: the metadata of the last write.
    fs::write(setup.file("svc", "meta"), &old_meta).expect("write");
    assert_eq!(generation(&store.summaries(&[secret("svc")]).await[0]), Some(2));
    // Torn, missing, or edited by hand (its digest no longer matches): the age file answers.
    fs::write(setup.file("svc", "meta"), &old_meta[..old_meta.len() / 2]).expect("write");
    assert_eq!(generation(&store.summaries(&[secret("svc")]).await[0]), Some(2));
    fs::remove_file(setup.file("svc", "meta")).expect("remove");
    assert_eq!(generation(&store.summaries(&[secret("svc")]).await[0]), Some(2));
    // The next write puts a matching metadata file back.
    rotate(&store, "svc", "three", 3).await;
    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(setup.file("svc", "meta")).expect("metadata file")).expect("JSON");
    assert_eq!(json["current"]["generation"], 3);
}
