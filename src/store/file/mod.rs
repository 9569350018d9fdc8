//! `file`: the embedded default store, one age-encrypted file holding every name's three slots.
//!
//! [`FileStore`] keeps no state of its own between calls: each operation takes the lock file, reads and decrypts
//! the whole file into the contract's reference state machine ([`Slots`], shared with `memory`), applies the same
//! operation, and, if that changed anything, encrypts and durably replaces the file. The semantics are therefore
//! `memory`'s by construction; what this module adds is durability, locking across processes, and errors that
//! tell an operator which file is wrong and what to do.
//!
//! - `format`: the plaintext JSON document and its version.
//! - `envelope`: age encryption to the store's own X25519 identity (binary age, readable with `age -d`).
//! - `disk`: the lock file, atomic replacement, and the I/O error mapping.
//! - `identity`: [`IdentitySource`] (a key file or a systemd credential) and [`keygen`].
//!
//! Break-glass recovery: `age -d -i store.key secrets.age` prints the document.

mod disk;
mod envelope;
mod format;
mod identity;

pub use identity::{IdentitySource, KeygenError, keygen};

use super::slots::{Entry, Slots};
use super::{Capabilities, Metadata, Pending, RotationId, SecretRef, Store, StoreError, Stored};
use crate::secret::SecretValue;
use async_trait::async_trait;
use disk::StoreFile;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const BACKEND: &str = "file";

/// A store in one age-encrypted file. Cheap to clone (clones share the loaded identity); any number of instances,
/// in any number of processes, may use the same file.
#[derive(Clone)]
pub struct FileStore {
    file: Arc<StoreFile>,
}

impl FileStore {
    /// Loads the identity; touches neither the store file nor its directory (see [`Store::check`] for that).
    ///
    /// A missing file is an empty store, created on the first write; its directory must exist.
    pub fn open(path: PathBuf, identity: IdentitySource) -> Result<Self, StoreError> {
        let identity = identity.load()?;
        Ok(Self { file: Arc::new(StoreFile::new(path, identity)?) })
    }

    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// The sibling file whose advisory lock serializes every instance using this store.
    pub fn lock_path(&self) -> &Path {
        &self.file.lock_path
    }

    /// The identity's public key (`age1…`), which the file is encrypted to.
    pub fn public_key(&self) -> String {
        self.file.identity.recipient.to_string()
    }

    /// Puts a secret that rotavault does not manage at `name`, as another tool would have created it. For the
    /// conformance suite.
    #[doc(hidden)]
    pub async fn plant_foreign(&self, name: &str, value: &SecretValue) -> Result<(), StoreError> {
        let (name, value) = (name.to_owned(), value.clone());
        self.modify(move |slots| {
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
        read: impl FnOnce(&Slots) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let file = self.file.clone();
        blocking(move || file.read(read)).await
    }

    async fn modify(
        &self,
        change: impl FnOnce(&mut Slots) -> Result<bool, StoreError> + Send + 'static,
    ) -> Result<(), StoreError> {
        let file = self.file.clone();
        blocking(move || file.modify(change)).await
    }
}

/// Runs file work on tokio's blocking pool: waiting for the lock and fsync can take long, and must not stall the
/// runtime's worker threads.
///
/// If the caller's future is dropped, the work still runs to its end. That is what keeps the file whole: a write
/// is never cut between its read and its rename, and the caller, having gone, was told nothing.
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
            // Promote is one rename of the whole file.
            atomic_promote: true,
            versioned: false,
        }
    }

    #[tracing::instrument(skip_all, fields(backend = BACKEND, name = %secret.name))]
    async fn current(&self, secret: &SecretRef) -> Result<Option<Stored>, StoreError> {
        let secret = secret.clone();
        self.read(move |slots| slots.current(BACKEND, &secret)).await
    }

    #[tracing::instrument(skip_all, fields(backend = BACKEND, name = %secret.name))]
    async fn pending(&self, secret: &SecretRef) -> Result<Option<Pending>, StoreError> {
        let secret = secret.clone();
        self.read(move |slots| slots.pending(BACKEND, &secret)).await
    }

    #[tracing::instrument(skip_all, fields(backend = BACKEND, name = %secret.name))]
    async fn previous(&self, secret: &SecretRef) -> Result<Option<Stored>, StoreError> {
        let secret = secret.clone();
        self.read(move |slots| slots.previous(BACKEND, &secret)).await
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
        self.modify(move |slots| slots.stage(BACKEND, &secret, &value, &rotation_id, &metadata)).await
    }

    #[tracing::instrument(
        skip_all,
        fields(backend = BACKEND, name = %secret.name, rotation_id = %rotation_id)
    )]
    async fn promote(&self, secret: &SecretRef, rotation_id: &RotationId) -> Result<(), StoreError> {
        let (secret, rotation_id) = (secret.clone(), rotation_id.clone());
        self.modify(move |slots| slots.promote(BACKEND, &secret, &rotation_id)).await
    }

    #[tracing::instrument(
        skip_all,
        fields(backend = BACKEND, name = %secret.name, rotation_id = %rotation_id)
    )]
    async fn discard(&self, secret: &SecretRef, rotation_id: &RotationId) -> Result<(), StoreError> {
        let (secret, rotation_id) = (secret.clone(), rotation_id.clone());
        self.modify(move |slots| slots.discard(BACKEND, &secret, &rotation_id)).await
    }

    #[tracing::instrument(skip_all, fields(backend = BACKEND, name = %secret.name))]
    async fn write_current(
        &self,
        secret: &SecretRef,
        value: &SecretValue,
        metadata: &Metadata,
    ) -> Result<(), StoreError> {
        let (secret, value, metadata) = (secret.clone(), value.clone(), metadata.clone());
        self.modify(move |slots| slots.write_current(BACKEND, &secret, &value, &metadata)).await
    }

    #[tracing::instrument(skip_all, fields(backend = BACKEND, path = %self.path().display()))]
    async fn check(&self) -> Result<(), StoreError> {
        let file = self.file.clone();
        blocking(move || file.check()).await
    }
}
