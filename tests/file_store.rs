//! The `file` store beyond the contract: what is on disk (one age file and one metadata file per secret, modes),
//! durability across instances, refusing files it cannot read without ever overwriting them, and locking between
//! instances. The upgrade from the single-file layout, the cost of one operation in a large store and break-glass
//! with the real `age` tool have their own files under `file_store/`.

#[path = "file_store/break_glass.rs"]
mod break_glass;
#[path = "file_store/scale.rs"]
mod scale;
#[path = "file_store/upgrade.rs"]
mod upgrade;

use rotavault::secret::SecretValue;
use rotavault::store::file::{FileStore, IdentitySource, keygen};
use rotavault::store::{Metadata, RotationId, SecretRef, Store, StoreError};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

const JOB: &str = "file-tests";

/// A directory with a key and a store path (`secrets`, the store's directory) in it.
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
        let path = dir.path().join("secrets");
        Self { dir, key, path }
    }

    fn open(&self) -> FileStore {
        FileStore::open(self.path.clone(), IdentitySource::File(self.key.clone())).expect("open")
    }

    /// The names in the temporary directory, beside the store's directory.
    fn listing(&self) -> BTreeSet<String> {
        listing(self.dir.path())
    }

    /// The path of a secret's file (`age` or `meta`) whose percent-encoded stem is `stem`.
    fn file(&self, stem: &str, extension: &str) -> PathBuf {
        self.path.join(format!("{stem}.{extension}"))
    }

    /// Creates the store's directory, for tests that put a file in it by hand.
    fn make_dir(&self) {
        fs::create_dir(&self.path).expect("create the store directory");
    }
}

fn listing(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

fn secret(name: &str) -> SecretRef {
    SecretRef::new(name, JOB)
}

fn meta(id: Option<&RotationId>, generation: u64) -> Metadata {
    Metadata::new(id.cloned(), chrono::Utc::now(), generation)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
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
async fn a_secrets_file_is_binary_age_that_decrypts_with_the_key_file_to_the_documented_json() {
    let setup = Setup::new();
    let store = setup.open();
    let id = rotate(&store, "autotask/optimize365", "pl41n-t3xt-s3cr3t", 1).await;

    let raw = fs::read(setup.file("autotask%2Foptimize365", "age")).expect("read the secret's file");
    assert!(raw.starts_with(b"age-encryption.org/v1\n"), "binary age");
    assert!(!contains(&raw, "pl41n-t3xt-s3cr3t"), "the secret must not appear in the file");

    let json: serde_json::Value = serde_json::from_slice(&decrypt_with_age(&setup.key, &raw)).expect("JSON");
    assert_eq!(json["format"], "rotavault-file-secret");
    assert_eq!(json["version"], 2);
    assert_eq!(json["name"], "autotask/optimize365");
    assert_eq!(json["owner"], JOB);
    assert_eq!(json["current"]["value"], "pl41n-t3xt-s3cr3t");
    assert_eq!(json["current"]["metadata"]["rotation_id"], id.as_str());
    assert_eq!(json["current"]["metadata"]["generation"], 1);
    assert!(json["current"]["metadata"]["rotated_at"].is_string());
    assert!(json["previous"].is_null());
    assert!(json["pending"].is_null());
}

#[tokio::test]
async fn beside_each_age_file_a_plaintext_metadata_file_describes_it_without_the_value() {
    let setup = Setup::new();
    let store = setup.open();
    let first = rotate(&store, "svc", "v4lue-0ne", 1).await;
    let staged = RotationId::new();
    let s = secret("svc");
    store.stage(&s, &SecretValue::new("v4lue-tw0"), &staged, &meta(Some(&staged), 2)).await.expect("stage");

    let age = fs::read(setup.file("svc", "age")).expect("age file");
    let raw = fs::read(setup.file("svc", "meta")).expect("metadata file");
    assert!(!contains(&raw, "v4lue"), "no value in the metadata file");
    let json: serde_json::Value = serde_json::from_slice(&raw).expect("JSON");
    assert_eq!(json["format"], "rotavault-file-meta");
    assert_eq!(json["version"], 2);
    assert_eq!(json["name"], "svc");
    assert_eq!(json["owner"], JOB);
    assert_eq!(json["current"]["rotation_id"], first.as_str());
    assert_eq!(json["current"]["generation"], 1);
    assert!(json["previous"].is_null());
    assert_eq!(json["pending"]["rotation_id"], staged.as_str());
    assert_eq!(json["pending"]["metadata"]["generation"], 2);
    // The age header (through its `--- MAC` line) is unique to each encryption: its digest ties the two files.
    let mac = age.windows(5).position(|w| w == b"\n--- ").expect("an age header");
    let end = mac + 5 + age[mac + 5..].iter().position(|&b| b == b'\n').expect("the MAC line ends") + 1;
    let digest: String = Sha256::digest(&age[..end]).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(json["age_header_sha256"], digest);
}

#[tokio::test]
async fn names_map_to_percent_encoded_files_and_long_names_to_a_hash_and_all_read_back() {
    let setup = Setup::new();
    let store = setup.open();
    let long = format!("tenant/{}", "x".repeat(300));
    for (n, name) in [".hidden", "a b/ü", long.as_str(), "plain-name_1.2"].into_iter().enumerate() {
        rotate(&store, name, &format!("value-{n}"), 1).await;
    }
    let inside = listing(&setup.path);
    for file in ["%2Ehidden.age", "a%20b%2F%C3%BC.age", "plain-name_1.2.age", "plain-name_1.2.meta"] {
        assert!(inside.contains(file), "{file} in {inside:?}");
    }
    let hashed: String = Sha256::digest(long.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    assert!(inside.contains(&format!("~{hashed}.age")), "{inside:?}");
    assert!(inside.iter().all(|name| !name.starts_with('.') || name == ".tmp"), "{inside:?}");
    let reader = setup.open();
    for (n, name) in [".hidden", "a b/ü", long.as_str(), "plain-name_1.2"].into_iter().enumerate() {
        let current = reader.current(&secret(name)).await.expect("current").expect("current");
        assert_eq!(current.value.expose(), format!("value-{n}"));
    }
}

#[tokio::test]
async fn the_store_files_are_private_and_no_temporary_file_lingers() {
    let setup = Setup::new();
    let store = setup.open();
    for generation in 1..=3 {
        rotate(&store, "svc", &format!("value-{generation}"), generation).await;
    }
    store.check().await.expect("check");
    assert_eq!(
        setup.listing(),
        BTreeSet::from(["secrets".into(), "secrets.lock".into(), "store.key".into()])
    );
    assert_eq!(listing(&setup.path), BTreeSet::from([".tmp".into(), "svc.age".into(), "svc.meta".into()]));
    assert!(listing(&setup.path.join(".tmp")).is_empty());
    let modes = [
        (setup.path.clone(), 0o700),
        (setup.path.join(".tmp"), 0o700),
        (setup.file("svc", "age"), 0o600),
        (setup.file("svc", "meta"), 0o600),
        (store.lock_path().to_path_buf(), 0o600),
    ];
    for (path, expected) in modes {
        let mode = fs::metadata(&path).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode, expected, "{}", path.display());
    }
}

#[tokio::test]
async fn a_temporary_file_left_by_an_interrupted_write_is_removed_by_the_next_write() {
    let setup = Setup::new();
    let store = setup.open();
    rotate(&store, "svc", "value", 1).await;
    let stale = setup.path.join(".tmp").join("0123456789abcdef");
    fs::write(&stale, b"half a write").expect("write");
    rotate(&store, "other", "value", 1).await;
    assert!(!stale.exists());
}

#[tokio::test]
async fn check_on_a_new_store_creates_no_store_file() {
    let setup = Setup::new();
    let store = setup.open();
    store.check().await.expect("check");
    assert!(!setup.path.exists());
    assert!(store.current(&secret("svc")).await.expect("current").is_none());
    assert_eq!(setup.listing(), BTreeSet::from(["secrets.lock".into(), "store.key".into()]));
}

#[tokio::test]
async fn a_missing_directory_is_invalid_for_reads_writes_and_check() {
    let setup = Setup::new();
    let path = setup.dir.path().join("missing").join("secrets");
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

/// A fixed xorshift sequence: random-looking, and the same on every run.
fn noise(len: usize, mut state: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Puts `bytes` where the secret `svc`'s age file belongs.
fn plant_svc(setup: &Setup, bytes: &[u8]) -> PathBuf {
    setup.make_dir();
    let path = setup.file("svc", "age");
    fs::write(&path, bytes).expect("write");
    path
}

const SVC_V2: &str = r#"{"format":"rotavault-file-secret","version":2,"name":"svc","owner":null,"current":null,"previous":null,"pending":null}"#;

#[tokio::test]
async fn random_bytes_are_refused_and_never_overwritten() {
    let setup = Setup::new();
    let path = plant_svc(&setup, &noise(4096, 0x9e37_79b9_7f4a_7c15));
    assert_refused_and_untouched(&setup.open(), &path, "not an age-encrypted file").await;
}

#[tokio::test]
async fn an_empty_file_is_refused_and_never_overwritten() {
    let setup = Setup::new();
    let path = plant_svc(&setup, b"");
    assert_refused_and_untouched(&setup.open(), &path, "not an age-encrypted file").await;
}

#[tokio::test]
async fn a_truncated_file_is_refused_and_never_overwritten() {
    let setup = Setup::new();
    let store = setup.open();
    // A value long enough that half the file cuts the payload, not the header.
    rotate(&store, "svc", &"some value of some length ".repeat(100), 1).await;
    let path = setup.file("svc", "age");
    let whole = fs::read(&path).expect("read");
    fs::write(&path, &whole[..whole.len() / 2]).expect("truncate");
    assert_refused_and_untouched(&store, &path, "corrupt or truncated").await;

    // Cut inside the header instead.
    fs::write(&path, &whole[..30]).expect("truncate");
    assert_refused_and_untouched(&store, &path, "cut short").await;
}

#[tokio::test]
async fn an_age_file_for_another_key_is_refused_and_never_overwritten() {
    let setup = Setup::new();
    let other_key = setup.dir.path().join("other.key");
    keygen(&other_key).expect("keygen");
    let path = plant_svc(&setup, &encrypt_to_key(&other_key, SVC_V2.as_bytes()));
    let expected = format!("identity in `{}`", setup.key.display());
    assert_refused_and_untouched(&setup.open(), &path, &expected).await;
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
    assert_refused_and_untouched(&wrong, &setup.file("svc", "age"), &expected).await;
    // The right key still reads it.
    let current = setup.open().current(&secret("svc")).await.expect("current");
    assert_eq!(current.expect("current").value.expose(), "value");
}

#[tokio::test]
async fn an_age_file_that_is_not_our_document_is_refused_and_never_overwritten() {
    let setup = Setup::new();
    setup.make_dir();
    let path = setup.file("svc", "age");
    let v1 = br#"{"format":"rotavault-file-store","version":1,"entries":{}}"#;
    for plaintext in [&br#"{"hello":"world"}"#[..], b"just some text", v1] {
        fs::write(&path, encrypt_to_key(&setup.key, plaintext)).expect("write");
        assert_refused_and_untouched(&setup.open(), &path, "does not hold a rotavault file store").await;
    }
}

#[tokio::test]
async fn a_document_of_an_unknown_version_is_refused_and_never_overwritten() {
    let setup = Setup::new();
    let document = SVC_V2.replace(r#""version":2"#, r#""version":3"#);
    let path = plant_svc(&setup, &encrypt_to_key(&setup.key, document.as_bytes()));
    assert_refused_and_untouched(&setup.open(), &path, "version 3").await;
}

#[tokio::test]
async fn a_secrets_file_renamed_by_hand_is_refused_naming_both_names() {
    let setup = Setup::new();
    let store = setup.open();
    rotate(&store, "other", "value", 1).await;
    let path = setup.file("svc", "age");
    fs::rename(setup.file("other", "age"), &path).expect("rename");
    fs::rename(setup.file("other", "meta"), setup.file("svc", "meta")).expect("rename");
    assert_refused_and_untouched(&store, &path, "`other`").await;
    let summary = store.summaries(&[secret("svc")]).await.remove(0);
    let detail = invalid_detail(summary.expect_err("a summary of a renamed file"));
    assert!(detail.contains("`svc`") && detail.contains("`other`"), "{detail}");
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
