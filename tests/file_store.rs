//! The `file` store beyond the contract: what is on disk (age, JSON, modes), durability across instances,
//! refusing files it cannot read without ever overwriting them, and locking between instances.

use rotavault::secret::SecretValue;
use rotavault::store::file::{FileStore, IdentitySource, keygen};
use rotavault::store::{Metadata, RotationId, SecretRef, Store, StoreError};
use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

const JOB: &str = "file-tests";

/// A directory with a key and a store path in it.
struct Setup {
    dir: TempDir,
    key: PathBuf,
    path: PathBuf,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = dir.path().join("store.key");
        keygen(&key).expect("keygen");
        let path = dir.path().join("secrets.age");
        Self { dir, key, path }
    }

    fn open(&self) -> FileStore {
        FileStore::open(self.path.clone(), IdentitySource::File(self.key.clone())).expect("open")
    }

    fn listing(&self) -> BTreeSet<String> {
        fs::read_dir(self.dir.path())
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect()
    }
}

fn secret(name: &str) -> SecretRef {
    SecretRef::new(name, JOB)
}

fn meta(id: Option<&RotationId>, generation: u64) -> Metadata {
    Metadata::new(id.cloned(), chrono::Utc::now(), generation)
}

async fn rotate(store: &FileStore, name: &str, value: &str, generation: u64) -> RotationId {
    let id = RotationId::new();
    let s = secret(name);
    store.stage(&s, &SecretValue::new(value), &id, &meta(Some(&id), generation)).await.expect("stage");
    store.promote(&s, &id).await.expect("promote");
    id
}

fn read_identity(key: &Path) -> Vec<Box<dyn age::Identity + Send + Sync>> {
    age::IdentityFile::from_file(key.display().to_string())
        .expect("age parses the key file")
        .into_identities()
        .expect("identities")
}

fn decrypt_with_age(key: &Path, ciphertext: &[u8]) -> Vec<u8> {
    let identities = read_identity(key);
    let decryptor = age::Decryptor::new(ciphertext).expect("an age file");
    let mut reader = decryptor
        .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .expect("decrypts with the key file");
    let mut plaintext = Vec::new();
    reader.read_to_end(&mut plaintext).expect("read");
    plaintext
}

fn encrypt_to_key(key: &Path, plaintext: &[u8]) -> Vec<u8> {
    let recipients = age::IdentityFile::from_file(key.display().to_string())
        .expect("key file")
        .to_recipients()
        .expect("recipients");
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| r.as_ref() as _)).expect("a recipient");
    let mut out = Vec::new();
    let mut writer = encryptor.wrap_output(&mut out).expect("wrap");
    std::io::Write::write_all(&mut writer, plaintext).expect("write");
    writer.finish().expect("finish");
    out
}

fn invalid_detail(err: StoreError) -> String {
    match err {
        StoreError::Invalid { backend, detail } => {
            assert_eq!(backend, "file");
            detail
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn a_second_instance_reads_what_the_first_wrote() {
    let setup = Setup::new();
    let first = setup.open();
    let one = rotate(&first, "svc", "value-one", 1).await;
    let two = rotate(&first, "svc", "value-two", 2).await;
    let pending = RotationId::new();
    first
        .stage(&secret("svc"), &SecretValue::new("value-three"), &pending, &meta(Some(&pending), 3))
        .await
        .expect("stage");
    drop(first);

    let second = setup.open();
    let s = secret("svc");
    let current = second.current(&s).await.expect("current").expect("current");
    assert_eq!(current.value.expose(), "value-two");
    assert_eq!(current.metadata.rotation_id, Some(two));
    let previous = second.previous(&s).await.expect("previous").expect("previous");
    assert_eq!(previous.value.expose(), "value-one");
    assert_eq!(previous.metadata.rotation_id, Some(one));
    let staged = second.pending(&s).await.expect("pending").expect("pending");
    assert_eq!(staged.value.expose(), "value-three");
    assert_eq!(staged.rotation_id, pending);
}

#[tokio::test]
async fn the_file_is_binary_age_that_decrypts_with_the_key_file_to_the_documented_json() {
    let setup = Setup::new();
    let store = setup.open();
    let id = rotate(&store, "autotask/optimize365", "pl41n-t3xt-s3cr3t", 1).await;

    let raw = fs::read(&setup.path).expect("read the store file");
    assert!(raw.starts_with(b"age-encryption.org/v1\n"), "binary age");
    assert!(
        !raw.windows(b"pl41n-t3xt-s3cr3t".len()).any(|w| w == b"pl41n-t3xt-s3cr3t"),
        "the secret must not appear in the file"
    );
    assert!(!raw.windows(b"optimize365".len()).any(|w| w == b"optimize365"), "names are encrypted too");

    let json: serde_json::Value = serde_json::from_slice(&decrypt_with_age(&setup.key, &raw)).expect("JSON");
    assert_eq!(json["format"], "rotavault-file-store");
    assert_eq!(json["version"], 1);
    let entry = &json["entries"]["autotask/optimize365"];
    assert_eq!(entry["owner"], JOB);
    assert_eq!(entry["current"]["value"], "pl41n-t3xt-s3cr3t");
    assert_eq!(entry["current"]["metadata"]["rotation_id"], id.as_str());
    assert_eq!(entry["current"]["metadata"]["generation"], 1);
    assert!(entry["current"]["metadata"]["rotated_at"].is_string());
    assert!(entry["previous"].is_null());
    assert!(entry["pending"].is_null());
}

#[tokio::test]
async fn the_store_and_lock_files_are_private_and_no_temporary_file_lingers() {
    let setup = Setup::new();
    let store = setup.open();
    for generation in 1..=3 {
        rotate(&store, "svc", &format!("value-{generation}"), generation).await;
    }
    store.check().await.expect("check");
    assert_eq!(
        setup.listing(),
        BTreeSet::from(["secrets.age".into(), "secrets.age.lock".into(), "store.key".into()])
    );
    for path in [&setup.path, &store.lock_path().to_path_buf()] {
        let mode = fs::metadata(path).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }
}

#[tokio::test]
async fn a_temporary_file_left_by_an_interrupted_write_is_removed_by_the_next_write() {
    let setup = Setup::new();
    let store = setup.open();
    let stale = setup.dir.path().join("secrets.age.tmp-0123456789abcdef");
    fs::write(&stale, b"half a write").expect("write");
    rotate(&store, "svc", "value", 1).await;
    assert!(!stale.exists());
}

#[tokio::test]
async fn check_on_a_new_store_creates_no_store_file() {
    let setup = Setup::new();
    let store = setup.open();
    store.check().await.expect("check");
    assert!(!setup.path.exists());
    assert!(store.current(&secret("svc")).await.expect("current").is_none());
    assert_eq!(setup.listing(), BTreeSet::from(["secrets.age.lock".into(), "store.key".into()]));
}

#[tokio::test]
async fn a_missing_directory_is_invalid_for_reads_writes_and_check() {
    let setup = Setup::new();
    let path = setup.dir.path().join("missing").join("secrets.age");
    let store = FileStore::open(path, IdentitySource::File(setup.key.clone())).expect("open");
    let expected = setup.dir.path().join("missing").display().to_string();
    let errors = [
        store.current(&secret("svc")).await.expect_err("read"),
        store.write_current(&secret("svc"), &SecretValue::new("v"), &meta(None, 1)).await.expect_err("write"),
        store.check().await.expect_err("check"),
    ];
    for err in errors {
        let detail = invalid_detail(err);
        assert!(detail.contains(&expected), "{detail}");
        assert!(detail.contains("does not exist"), "{detail}");
    }
}

#[tokio::test]
async fn a_key_file_readable_by_others_is_refused_at_open() {
    let setup = Setup::new();
    fs::set_permissions(&setup.key, fs::Permissions::from_mode(0o644)).expect("chmod");
    let err = FileStore::open(setup.path.clone(), IdentitySource::File(setup.key.clone()))
        .expect_err("a readable key");
    let detail = invalid_detail(err);
    assert!(detail.contains("chmod 600"), "{detail}");
}

#[test]
fn the_identity_is_never_in_debug_output() {
    let setup = Setup::new();
    let store = setup.open();
    let debug = format!("{store:?}");
    assert!(debug.contains(&store.public_key()), "{debug}");
    assert!(!debug.contains("AGE-SECRET-KEY"), "{debug}");
    let key = fs::read_to_string(&setup.key).expect("read key");
    let secret_line = key.lines().find(|l| l.starts_with("AGE-SECRET-KEY")).expect("identity line");
    assert!(!debug.to_uppercase().contains(secret_line), "{debug}");
}

/// Every operation on a file the store cannot use is `Invalid`, names the file (and `also` when given), and the
/// file's bytes are exactly what they were.
async fn assert_refused_and_untouched(store: &FileStore, path: &Path, also: &str) {
    let before = fs::read(path).expect("read before");
    let s = secret("svc");
    let id = RotationId::new();
    let value = SecretValue::new("would-be-written");
    let errors = vec![
        ("current", store.current(&s).await.map(drop)),
        ("pending", store.pending(&s).await.map(drop)),
        ("previous", store.previous(&s).await.map(drop)),
        ("stage", store.stage(&s, &value, &id, &meta(Some(&id), 1)).await),
        ("promote", store.promote(&s, &id).await),
        ("discard", store.discard(&s, &id).await),
        ("write_current", store.write_current(&s, &value, &meta(None, 1)).await),
        ("plant_foreign", store.plant_foreign("svc", &value).await),
        ("check", store.check().await),
    ];
    for (call, result) in errors {
        let detail = invalid_detail(result.expect_err(call));
        assert!(detail.contains(&path.display().to_string()), "{call}: {detail}");
        assert!(detail.contains(also), "{call}: expected `{also}` in {detail}");
        assert!(!detail.contains("would-be-written"), "{call}: {detail}");
    }
    assert_eq!(fs::read(path).expect("read after"), before, "bytes changed");
}

#[tokio::test]
async fn random_bytes_are_refused_and_never_overwritten() {
    let setup = Setup::new();
    // A fixed xorshift sequence: random-looking, and the same on every run.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    fs::write(&setup.path, &noise).expect("write");
    assert_refused_and_untouched(&setup.open(), &setup.path, "not an age-encrypted file").await;
}

#[tokio::test]
async fn an_empty_file_is_refused_and_never_overwritten() {
    let setup = Setup::new();
    fs::write(&setup.path, b"").expect("write");
    assert_refused_and_untouched(&setup.open(), &setup.path, "not an age-encrypted file").await;
}

#[tokio::test]
async fn a_truncated_file_is_refused_and_never_overwritten() {
    let setup = Setup::new();
    let store = setup.open();
    // Enough entries that half the file cuts the payload, not the header.
    for n in 0..20 {
        rotate(&store, &format!("svc-{n}"), "some value of some length", 1).await;
    }
    let whole = fs::read(&setup.path).expect("read");
    fs::write(&setup.path, &whole[..whole.len() / 2]).expect("truncate");
    assert_refused_and_untouched(&store, &setup.path, "corrupt or truncated").await;

    // Cut inside the header instead.
    fs::write(&setup.path, &whole[..30]).expect("truncate");
    assert_refused_and_untouched(&store, &setup.path, "cut short").await;
}

#[tokio::test]
async fn an_age_file_for_another_key_is_refused_and_never_overwritten() {
    let setup = Setup::new();
    let other_key = setup.dir.path().join("other.key");
    keygen(&other_key).expect("keygen");
    let document = br#"{"format":"rotavault-file-store","version":1,"entries":{}}"#;
    fs::write(&setup.path, encrypt_to_key(&other_key, document)).expect("write");
    let expected = format!("identity in `{}`", setup.key.display());
    assert_refused_and_untouched(&setup.open(), &setup.path, &expected).await;
}

#[tokio::test]
async fn a_store_opened_with_the_wrong_identity_is_refused_and_never_overwritten() {
    let setup = Setup::new();
    rotate(&setup.open(), "svc", "value", 1).await;
    let wrong_key = setup.dir.path().join("wrong.key");
    keygen(&wrong_key).expect("keygen");
    let wrong = FileStore::open(setup.path.clone(), IdentitySource::File(wrong_key.clone())).expect("open");
    let expected =
        format!("could not be decrypted with the identity in `{}`: wrong key", wrong_key.display());
    assert_refused_and_untouched(&wrong, &setup.path, &expected).await;
    // The right key still reads it.
    let current = setup.open().current(&secret("svc")).await.expect("current");
    assert_eq!(current.expect("current").value.expose(), "value");
}

#[tokio::test]
async fn an_age_file_that_is_not_our_document_is_refused_and_never_overwritten() {
    let setup = Setup::new();
    for plaintext in [&br#"{"hello":"world"}"#[..], b"just some text"] {
        fs::write(&setup.path, encrypt_to_key(&setup.key, plaintext)).expect("write");
        assert_refused_and_untouched(&setup.open(), &setup.path, "does not hold a rotavault file store")
            .await;
    }
}

#[tokio::test]
async fn a_document_of_an_unknown_version_is_refused_and_never_overwritten() {
    let setup = Setup::new();
    let document = br#"{"format":"rotavault-file-store","version":2,"entries":{}}"#;
    fs::write(&setup.path, encrypt_to_key(&setup.key, document)).expect("write");
    assert_refused_and_untouched(&setup.open(), &setup.path, "version 2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_writing_concurrently_never_lose_an_update() {
    const TASKS: usize = 8;
    const CYCLES: u64 = 10;
    let setup = Setup::new();
    let stores = [Arc::new(setup.open()), Arc::new(setup.open())];
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let store = stores[task % 2].clone();
            tokio::spawn(async move {
                for generation in 1..=CYCLES {
                    rotate(&store, &format!("svc-{task}"), &format!("{task}-{generation}"), generation).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    let reader = setup.open();
    for task in 0..TASKS {
        let s = secret(&format!("svc-{task}"));
        let current = reader.current(&s).await.expect("current").expect("current");
        assert_eq!(current.value.expose(), format!("{task}-{CYCLES}"));
        assert_eq!(current.metadata.generation, CYCLES);
        let previous = reader.previous(&s).await.expect("previous").expect("previous");
        assert_eq!(previous.value.expose(), format!("{task}-{}", CYCLES - 1));
        assert!(reader.pending(&s).await.expect("pending").is_none());
    }
}

#[tokio::test]
async fn a_held_lock_blocks_a_write_until_it_is_released() {
    let setup = Setup::new();
    let store = setup.open();
    let lock = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(store.lock_path())
        .expect("open the lock file");
    lock.lock().expect("take the lock");

    let writer = store.clone();
    let write = tokio::spawn(async move {
        writer.write_current(&secret("svc"), &SecretValue::new("after"), &meta(None, 1)).await
    });
    // Proving that something does not happen needs some real time; the write would take milliseconds.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!write.is_finished(), "the write went through a held lock");
    assert!(!setup.path.exists(), "the file was written under a held lock");

    lock.unlock().expect("release the lock");
    write.await.expect("task").expect("the write after the release");
    let current = store.current(&secret("svc")).await.expect("current");
    assert_eq!(current.expect("current").value.expose(), "after");
}

#[tokio::test]
async fn a_held_lock_blocks_a_read_too() {
    let setup = Setup::new();
    let store = setup.open();
    let lock = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(store.lock_path())
        .expect("open the lock file");
    lock.lock().expect("take the lock");

    let reader = store.clone();
    let read = tokio::spawn(async move { reader.current(&secret("svc")).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!read.is_finished(), "the read went through a held exclusive lock");
    lock.unlock().expect("release the lock");
    assert!(read.await.expect("task").expect("read").is_none());
}
