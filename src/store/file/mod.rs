//! `file`: the embedded default store, a directory holding one age-encrypted file per secret name.
//!
//! [`FileStore`] keeps no state of its own between calls: each operation takes the store's lock file, reads and
//! decrypts the one file of the name it is about into the contract's reference state machine ([`Slots`], shared
//! with `memory`), applies the same operation, and, if that changed anything, encrypts and durably replaces that
//! file. The semantics are therefore `memory`'s by construction, and an operation costs the same whatever the
//! number of secrets; what this module adds is durability, locking across processes, and errors that tell an
//! operator which file is wrong and what to do.
//!
//! - `names`: secret names to file names (percent-encoded, or hashed when long).
//! - `format`: the JSON pieces shared by every document; `document`: one secret's plaintext (version 2);
//!   `meta`: its metadata in a plaintext file beside it, so that a batch read decrypts nothing; `v1`: the old
//!   single-file document, read only to upgrade it.
//! - `envelope`: age encryption to the store's own X25519 identity (binary age, readable with `age -d`).
//! - `disk`: the lock file, atomic replacement, the batch read and `check`; `errors`: every failure's message.
//! - `upgrade`: turns a version 1 single-file store into the directory, once, losing nothing.
//! - `identity`: [`IdentitySource`] (a key file or a systemd credential) and [`keygen`].
//!
//! Break-glass recovery: `age -d -i store.key secrets/NAME.age` prints one secret's document (NAME
//! percent-encoded: `autotask/api` is `autotask%2Fapi.age`).

mod disk;
mod document;
mod envelope;
mod errors;
mod format;
mod identity;
mod meta;
mod names;
mod upgrade;
mod v1;

pub use identity::{IdentitySource, KeygenError, keygen};

use super::slots::{Entry, Slots};
use super::{Capabilities, Metadata, Pending, RotationId, SecretRef, Store, StoreError, Stored, Summary};
use crate::secret::SecretValue;
use async_trait::async_trait;
use disk::StoreDir;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const BACKEND: &str = "file";

/// A store in a directory of age-encrypted files. Cheap to clone (clones share the loaded identity); any number
/// of instances, in any number of processes, may use the same directory.
#[derive(Clone)]
pub struct FileStore {
    file: Arc<StoreDir>,
}

impl FileStore {
    /// Loads the identity; touches neither the store's directory nor its parent (see [`Store::check`] for that).
    ///
    /// A missing directory is an empty store, created (mode 0700) on the first write; its parent must exist. A
    /// regular file at `path` is a version 1 single-file store, upgraded by the first operation.
    pub fn open(path: PathBuf, identity: IdentitySource) -> Result<Self, StoreError> {
        let identity = identity.load()?;
        Ok(Self { file: Arc::new(StoreDir::new(path, identity)?) })
    }

    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// The sibling file whose advisory lock serializes every instance using this store.
    pub fn lock_path(&self) -> &Path {
        &self.file.lock_path
    }

    /// The identity's public key (`age1…`), which every file is encrypted to.
    pub fn public_key(&self) -> String {
        self.file.identity.recipient.to_string()
    }

    /// Puts a secret that rotavault does not manage at `name`, as another tool would have created it. For the
    /// conformance suite.
    #[doc(hidden)]
    pub async fn plant_foreign(&self, name: &str, value: &SecretValue) -> Result<(), StoreError> {
        let (name, value) = (name.to_owned(), value.clone());
        self.modify(name.clone(), move |slots| {
            let entry = Entry {
                owner: None,
                current: Some(Stored { value, metadata: Metadata::new(None, chrono::Utc::now(), 0) }),
                ..Entry::default()
            };
            slots.entries.insert(name, entry);
            Ok(true)
        })
        .await
    }

    async fn read<T: Send + 'static>(
        &self,
        secret: &SecretRef,
        read: impl FnOnce(&Slots, &SecretRef) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (file, secret) = (self.file.clone(), secret.clone());
        blocking(move || file.read(&secret.name, |slots| read(slots, &secret))).await
    }

    async fn modify(
        &self,
        name: String,
        change: impl FnOnce(&mut Slots) -> Result<bool, StoreError> + Send + 'static,
    ) -> Result<(), StoreError> {
        let file = self.file.clone();
        blocking(move || file.modify(&name, change)).await
    }
}

/// Runs file work on tokio's blocking pool: waiting for the lock and fsync can take long, and must not stall the
/// runtime's worker threads.
///
/// If the caller's future is dropped, the work still runs to its end. That is what keeps a file whole: a write is
/// never cut between its read and its rename, and the caller, having gone, was told nothing.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(StoreError::Transient {
            backend: BACKEND,
            detail: format!("the file store's work was cancelled: {e}"),
            retry_after: None,
        }),
    }
}

impl fmt::Debug for FileStore {
    /// The path and the public key only: the identity never appears.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("path", &self.file.path)
            .field("public_key", &self.public_key())
            .finish()
    }
}

#[async_trait]
impl Store for FileStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            durable: true,
            // Promote is one rename of the secret's file.
            atomic_promote: true,
            // A stage decides and writes under the store's exclusive lock, held across processes.
            exclusive_stage: true,
            versioned: false,
        }
    }

    #[tracing::instrument(skip_all, fields(backend = BACKEND, name = %secret.name))]
    async fn current(&self, secret: &SecretRef) -> Result<Option<Stored>, StoreError> {
        self.read(secret, |slots, secret| slots.current(BACKEND, secret)).await
    }

    #[tracing::instrument(skip_all, fields(backend = BACKEND, name = %secret.name))]
    async fn pending(&self, secret: &SecretRef) -> Result<Option<Pending>, StoreError> {
        self.read(secret, |slots, secret| slots.pending(BACKEND, secret)).await
    }

    #[tracing::instrument(skip_all, fields(backend = BACKEND, name = %secret.name))]
    async fn previous(&self, secret: &SecretRef) -> Result<Option<Stored>, StoreError> {
        self.read(secret, |slots, secret| slots.previous(BACKEND, secret)).await
    }

    #[tracing::instrument(
        skip_all,
        fields(backend = BACKEND, name = %secret.name, rotation_id = %rotation_id)
    )]
    async fn stage(
        &self,
        secret: &SecretRef,
        value: &SecretValue,
        rotation_id: &RotationId,
        metadata: &Metadata,
    ) -> Result<(), StoreError> {
        let (secret, value) = (secret.clone(), value.clone());
        let (rotation_id, metadata) = (rotation_id.clone(), metadata.clone());
        self.modify(secret.name.clone(), move |slots| {
            slots.stage(BACKEND, &secret, &value, &rotation_id, &metadata)
        })
        .await
    }

    #[tracing::instrument(
        skip_all,
        fields(backend = BACKEND, name = %secret.name, rotation_id = %rotation_id)
    )]
    async fn promote(&self, secret: &SecretRef, rotation_id: &RotationId) -> Result<(), StoreError> {
        let (secret, rotation_id) = (secret.clone(), rotation_id.clone());
        self.modify(secret.name.clone(), move |slots| slots.promote(BACKEND, &secret, &rotation_id)).await
    }

    #[tracing::instrument(
        skip_all,
        fields(backend = BACKEND, name = %secret.name, rotation_id = %rotation_id)
    )]
    async fn discard(&self, secret: &SecretRef, rotation_id: &RotationId) -> Result<(), StoreError> {
        let (secret, rotation_id) = (secret.clone(), rotation_id.clone());
        self.modify(secret.name.clone(), move |slots| slots.discard(BACKEND, &secret, &rotation_id)).await
    }

    #[tracing::instrument(skip_all, fields(backend = BACKEND, name = %secret.name))]
    async fn write_current(
        &self,
        secret: &SecretRef,
        value: &SecretValue,
        metadata: &Metadata,
    ) -> Result<(), StoreError> {
        let (secret, value, metadata) = (secret.clone(), value.clone(), metadata.clone());
        self.modify(secret.name.clone(), move |slots| {
            slots.write_current(BACKEND, &secret, &value, &metadata)
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(backend = BACKEND, path = %self.path().display()))]
    async fn check(&self) -> Result<(), StoreError> {
        let file = self.file.clone();
        blocking(move || file.check()).await
    }

    /// One blocking task and one shared lock for the whole batch; each secret's metadata comes from its
    /// plaintext metadata file, and only a secret whose metadata file is missing or stale is decrypted.
    #[tracing::instrument(skip_all, fields(backend = BACKEND, secrets = secrets.len()))]
    async fn summaries(&self, secrets: &[SecretRef]) -> Vec<Result<Summary, StoreError>> {
        let (file, asked) = (self.file.clone(), secrets.to_vec());
        let count = secrets.len();
        match blocking(move || Ok(file.summaries(&asked))).await {
            Ok(answers) => answers,
            Err(e) => vec![Err(e); count],
        }
    }
}
