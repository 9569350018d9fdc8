//! The store directory on disk: locked reads and read-modify-writes of one secret's files, the batch read of
//! many secrets' metadata, `check`, and durable replacement.
//!
//! Beside the directory (`secrets/`) lives its lock file (`secrets.lock`, never deleted: deleting a lock file lets
//! two processes lock two different files). Inside it, each secret has `<stem>.age` (the truth) and `<stem>.meta`
//! (its metadata in plain text, see `meta`), and writes go through temporary files in `.tmp/`, which the next
//! write clears after a crash. Everything here blocks; [`super::FileStore`] runs it on tokio's blocking pool.
//!
//! Every operation opens only the files of the secret it is about, so its cost does not grow with the number of
//! secrets. One lock for the whole store is enough for that: a write holds it for one small file's write.
//!
//! A file that does not decrypt, or decrypts to something that is not our document, is never overwritten: every
//! write reads and decodes the secret's file first, under the same lock, and stops at the first error.

use super::BACKEND;
use super::document;
use super::envelope;
use super::errors::{invalid, io_error, misnamed, not_ours, undecryptable};
use super::identity::StoreIdentity;
use super::meta;
use super::names;
use super::upgrade;
use crate::durable::Dir;
use crate::store::slots::{self, Entry, Slots};
use crate::store::{SecretRef, StoreError, Summary};
use std::ffi::OsString;
use std::fs::{self, DirBuilder, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// What to tell an operator about a secret's file that cannot be used.
const KEEP: &str = "rotavault will not overwrite it (restore it from a backup, or move it away)";

pub(super) struct StoreDir {
    /// The store's directory.
    pub path: PathBuf,
    pub lock_path: PathBuf,
    /// The directory holding `path`, its lock file, and (after an upgrade) the version 1 backup.
    pub parent: PathBuf,
    /// `path`'s last component, for the names of its siblings.
    pub file_name: OsString,
    temp_dir: PathBuf,
    pub identity: StoreIdentity,
    /// Set once `path` was seen to be a directory: from then on no operation looks for a version 1 file.
    laid_out: AtomicBool,
}

/// The two files of one secret.
struct SecretFiles {
    age: PathBuf,
    meta: PathBuf,
}

enum LockMode {
    Shared,
    Exclusive,
}

impl StoreDir {
    pub fn new(path: PathBuf, identity: StoreIdentity) -> Result<Self, StoreError> {
        let Some(file_name) = path.file_name().map(OsString::from) else {
            return Err(invalid(format!(
                "`{}` is not a directory path: expected something like `/var/lib/rotavault/secrets`",
                path.display()
            )));
        };
        // A bare name lives in the working directory; `Path::parent` calls that "".
        let parent =
            path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
        let mut lock_name = file_name.clone();
        lock_name.push(".lock");
        Ok(Self {
            lock_path: parent.join(lock_name),
            temp_dir: path.join(".tmp"),
            parent,
            file_name,
            path,
            identity,
            laid_out: AtomicBool::new(false),
        })
    }

    /// `path` with `suffix` appended, beside it.
    pub fn sibling(&self, suffix: &str) -> PathBuf {
        let mut name = self.file_name.clone();
        name.push(suffix);
        self.parent.join(name)
    }

    /// Runs `read` on `name`'s slots as they are on disk, under a shared lock.
    pub fn read<T>(
        &self,
        name: &str,
        read: impl FnOnce(&Slots) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.layout()?;
        let files = self.files(name)?;
        let _lock = self.lock(LockMode::Shared)?;
        read(&self.load(name, &files)?)
    }

    /// Runs `change` on `name`'s slots under an exclusive lock held from the read to the rename, so that no other
    /// writer (thread or process) can slip a write in between and have it lost. Writes back only if `change`
    /// says it changed something. `change` sees only `name`'s entry.
    pub fn modify(
        &self,
        name: &str,
        change: impl FnOnce(&mut Slots) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        self.layout()?;
        let files = self.files(name)?;
        let _lock = self.lock(LockMode::Exclusive)?;
        let mut slots = self.load(name, &files)?;
        if change(&mut slots)?
            && let Some(entry) = slots.entries.get(name)
        {
            self.save(name, &files, entry)?;
        }
        Ok(())
    }

    /// The metadata of every secret in `secrets`, under one shared lock: each from its plaintext metadata file
    /// when that describes the age file as it is, else from the decrypted age file.
    pub fn summaries(&self, secrets: &[SecretRef]) -> Vec<Result<Summary, StoreError>> {
        let lock = self.layout().and_then(|()| self.lock(LockMode::Shared));
        match lock {
            Ok(_lock) => {
                // Opened once for the batch; a store never written has no directory, and each read then says so.
                let dir = Dir::open(&self.path).ok();
                secrets.iter().map(|secret| self.summary(secret, dir.as_ref())).collect()
            }
            Err(e) => vec![Err(e); secrets.len()],
        }
    }

    fn summary(&self, secret: &SecretRef, dir: Option<&Dir>) -> Result<Summary, StoreError> {
        let files = self.files(&secret.name)?;
        let Some(age) = self.read_age(&files, dir)? else {
            return Ok(Summary::default());
        };
        let described =
            crate::durable::read_small_in(dir, &files.meta).ok().and_then(|bytes| meta::decode(&bytes, &age));
        if let Some(meta) = described.filter(|m| m.name == secret.name) {
            slots::check_owner(BACKEND, secret, meta.owner.as_ref())?;
            return Ok(meta.summary);
        }
        tracing::debug!(file = %files.meta.display(), "no metadata file describes the age file: decrypting it");
        self.decode_age(&secret.name, &files, &age)?.summary(BACKEND, secret)
    }

    /// Proves that the directory (or, for a store never written, its parent) is writable and that the identity
    /// decrypts a secret's file, if there is one, touching no secret.
    pub fn check(&self) -> Result<(), StoreError> {
        self.layout()?;
        let _lock = self.lock(LockMode::Shared)?;
        let exists = match fs::read_dir(&self.path) {
            Ok(entries) => {
                // One file is enough to prove the key; reading them all would cost what the layout saves.
                let first =
                    entries.flatten().map(|e| e.path()).find(|p| p.extension().is_some_and(|x| x == "age"));
                if let Some(age_path) = first {
                    self.check_one(&age_path)?;
                }
                true
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => {
                return Err(io_error(e, format!("cannot read the directory `{}`", self.path.display())));
            }
        };
        let probe = if exists {
            self.path.join(format!(".check-{}", uuid::Uuid::new_v4().simple()))
        } else {
            self.sibling(&format!(".check-{}", uuid::Uuid::new_v4().simple()))
        };
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&probe)
            .map_err(|e| self.directory_error(e, &probe))?;
        let synced = file.sync_all().map_err(|e| io_error(e, format!("cannot write `{}`", probe.display())));
        drop(file);
        let removed =
            fs::remove_file(&probe).map_err(|e| io_error(e, format!("cannot remove `{}`", probe.display())));
        synced.and(removed)
    }

    fn check_one(&self, age_path: &Path) -> Result<(), StoreError> {
        let bytes =
            fs::read(age_path).map_err(|e| io_error(e, format!("cannot read `{}`", age_path.display())))?;
        let plaintext = envelope::open(&self.identity.identity, &bytes)
            .map_err(|e| undecryptable(age_path, &self.identity.origin, e, KEEP))?;
        let (found, _) = document::decode(&plaintext)
            .map_err(|e| not_ours(age_path, e, document::FORMAT, document::VERSION, KEEP))?;
        let expected = names::stem(&found).map(|stem| self.path.join(stem + ".age"));
        if expected.as_deref() != Some(age_path) {
            return Err(invalid(format!(
                "`{}` holds the secret `{found}`, which belongs in another file: was it copied or renamed by \
                 hand? move it back where it belongs, or away",
                age_path.display()
            )));
        }
        Ok(())
    }

    /// Upgrades a version 1 store on first use; afterwards costs one load of an atomic flag.
    fn layout(&self) -> Result<(), StoreError> {
        if self.laid_out.load(Ordering::Acquire) {
            return Ok(());
        }
        match fs::metadata(&self.path) {
            Ok(m) if m.is_dir() => {
                self.laid_out.store(true, Ordering::Release);
                Ok(())
            }
            Ok(_) => upgrade::run(self),
            Err(e) if e.kind() == io::ErrorKind::NotFound && upgrade::interrupted(self) => upgrade::run(self),
            // A missing store is empty until its first write; any other problem is reported, naming the file, by
            // the lock or the read that follows.
            Err(_) => Ok(()),
        }
    }

    fn files(&self, name: &str) -> Result<SecretFiles, StoreError> {
        let stem = names::stem(name).ok_or_else(|| invalid("a secret name cannot be empty".into()))?;
        // One join for both: `status` and start-up build these for every secret.
        let mut age = self.path.join(stem).into_os_string();
        let mut meta = age.clone();
        age.push(".age");
        meta.push(".meta");
        Ok(SecretFiles { age: age.into(), meta: meta.into() })
    }

    /// The store's exclusive lock, for the upgrade.
    pub fn lock_exclusive(&self) -> Result<File, StoreError> {
        self.lock(LockMode::Exclusive)
    }

    fn lock(&self, mode: LockMode) -> Result<File, StoreError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&self.lock_path)
            .map_err(|e| self.directory_error(e, &self.lock_path))?;
        let attempt = match mode {
            LockMode::Shared => file.try_lock_shared(),
            LockMode::Exclusive => file.try_lock(),
        };
        // Waiting is normal (another instance is writing), but a wait that does not end means a live process is
        // holding the lock (the kernel releases a dead one's): the trace shows where callers are stuck.
        let locked = match attempt {
            Ok(()) => Ok(()),
            Err(TryLockError::Error(e)) => Err(e),
            Err(TryLockError::WouldBlock) => {
                tracing::debug!(lock = %self.lock_path.display(), "waiting for the store's lock");
                match mode {
                    LockMode::Shared => file.lock_shared(),
                    LockMode::Exclusive => file.lock(),
                }
            }
        };
        locked.map_err(|e| io_error(e, format!("cannot lock `{}`", self.lock_path.display())))?;
        // Closing the file (dropping it) releases the lock, also when a panic unwinds.
        Ok(file)
    }

    /// The age file's bytes, through the store's directory when a batch read has it open; `None` for a secret
    /// never written (or a store never written).
    fn read_age(&self, files: &SecretFiles, dir: Option<&Dir>) -> Result<Option<Vec<u8>>, StoreError> {
        match crate::durable::read_small_in(dir, &files.age) {
            Ok(bytes) => Ok(Some(bytes)),
            // The lock file was opened first, so the parent exists: a missing file is a secret never written.
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(e, format!("cannot read `{}`", files.age.display()))),
        }
    }

    fn load(&self, name: &str, files: &SecretFiles) -> Result<Slots, StoreError> {
        match self.read_age(files, None)? {
            Some(age) => self.decode_age(name, files, &age),
            None => Ok(Slots::default()),
        }
    }

    fn decode_age(&self, name: &str, files: &SecretFiles, age: &[u8]) -> Result<Slots, StoreError> {
        let plaintext = envelope::open(&self.identity.identity, age)
            .map_err(|e| undecryptable(&files.age, &self.identity.origin, e, KEEP))?;
        let (found, entry) = document::decode(&plaintext)
            .map_err(|e| not_ours(&files.age, e, document::FORMAT, document::VERSION, KEEP))?;
        if found != name {
            return Err(misnamed(&files.age, name, &found));
        }
        Ok(Slots { entries: [(found, entry)].into() })
    }

    /// Replaces the secret's age file, then its metadata file, then makes both renames durable with one
    /// directory fsync: the step is done only once that returns.
    fn save(&self, name: &str, files: &SecretFiles, entry: &Entry) -> Result<(), StoreError> {
        let age = encrypt(&self.identity, &files.age, &document::encode(name, entry))?;
        let created = self.prepare_temp_dir()?;
        self.replace(&files.age, &age, true)?;
        // Not synced: a metadata file lost in a crash no longer matches its age file, and is ignored.
        self.replace(&files.meta, &meta::encode(name, entry, &age), false)?;
        sync_dir(&self.path)?;
        if created {
            // The directory's own entry in its parent, the first time.
            sync_dir(&self.parent)?;
        }
        Ok(())
    }

    /// Makes sure the directory and its `.tmp` exist, and clears what an interrupted write left in `.tmp`. Only
    /// called under the exclusive lock, which every writer holds for as long as its temporary file exists.
    /// Returns whether the store's directory was created.
    fn prepare_temp_dir(&self) -> Result<bool, StoreError> {
        let mut created = false;
        match fs::read_dir(&self.temp_dir) {
            Ok(entries) => {
                for entry in entries.flatten() {
                    tracing::debug!(file = %entry.path().display(), "removing a temporary file left by an interrupted write");
                    let _ = fs::remove_file(entry.path());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                created = make_private_dir(&self.path).map_err(|e| self.directory_error(e, &self.path))?;
                make_private_dir(&self.temp_dir).map_err(|e| self.directory_error(e, &self.temp_dir))?;
            }
            Err(e) => return Err(io_error(e, format!("cannot read `{}`", self.temp_dir.display()))),
        }
        Ok(created)
    }

    /// Writes `bytes` to a temporary file (fsynced when `sync`) and renames it over `target`: at every instant
    /// `target` holds either the whole old file or the whole new one.
    fn replace(&self, target: &Path, bytes: &[u8], sync: bool) -> Result<(), StoreError> {
        let temp = self.temp_dir.join(uuid::Uuid::new_v4().simple().to_string());
        write_new(&temp, bytes, sync)
            .map_err(|e| io_error(e, format!("cannot write `{}`", temp.display())))
            .and_then(|()| {
                fs::rename(&temp, target).map_err(|e| {
                    io_error(e, format!("cannot rename `{}` over `{}`", temp.display(), target.display()))
                })
            })
            .inspect_err(|_| {
                // Holds only ciphertext or metadata, but nobody else would clean it up before the next write.
                let _ = fs::remove_file(&temp);
            })
    }

    /// Errors creating a file beside or in the store, where "not found" means the parent directory is missing.
    pub fn directory_error(&self, e: io::Error, file: &Path) -> StoreError {
        match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => invalid(format!(
                "the directory `{}`, where the file store `{}` lives, does not exist: create it, owned by the \
                 rotavault user and with mode 0700",
                self.parent.display(),
                self.path.display()
            )),
            _ => io_error(e, format!("cannot create `{}`", file.display())),
        }
    }
}

/// Encrypts a plaintext for the store's own identity; `path` names the file it is for in the error.
pub(super) fn encrypt(
    identity: &StoreIdentity,
    path: &Path,
    plaintext: &[u8],
) -> Result<Vec<u8>, StoreError> {
    envelope::seal(&identity.recipient, plaintext).map_err(|e| StoreError::Transient {
        backend: BACKEND,
        detail: format!("cannot encrypt `{}`: {e}", path.display()),
        retry_after: None,
    })
}

/// Creates a new private (0600) file holding `bytes`, fsynced when `sync`.
pub(super) fn write_new(path: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(bytes)?;
    if sync {
        file.sync_all()?;
    }
    Ok(())
}

/// Creates a private (0700) directory; `Ok(false)` if it already exists.
pub(super) fn make_private_dir(path: &Path) -> io::Result<bool> {
    match DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Makes the renames and creations in `dir` durable: without this they may not survive a power cut.
pub(super) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(e, format!("cannot sync the directory `{}`", dir.display())))
}
