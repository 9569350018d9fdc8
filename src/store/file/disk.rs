//! The store file on disk: locked reads, locked read-modify-writes, durable replacement, and the mapping of
//! every failure to a [`StoreError`] that names the file.
//!
//! Three files live side by side: the store (`secrets.age`), its lock file (`secrets.age.lock`, never deleted:
//! deleting a lock file lets two processes lock two different files), and, only during a write, a temporary file
//! (`secrets.age.tmp-<uuid>`). Everything here blocks; [`super::FileStore`] runs it on tokio's blocking pool.
//!
//! A file that does not decrypt, or decrypts to something that is not our document, is never overwritten: every
//! write reads and decodes the file first, under the same lock, and stops at the first error.

use super::BACKEND;
use super::envelope::{self, OpenError};
use super::format::{self, FormatError};
use super::identity::StoreIdentity;
use crate::store::StoreError;
use crate::store::slots::Slots;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub(super) struct StoreFile {
    pub path: PathBuf,
    pub lock_path: PathBuf,
    dir: PathBuf,
    temp_prefix: OsString,
    pub identity: StoreIdentity,
}

enum LockMode {
    Shared,
    Exclusive,
}

impl StoreFile {
    pub fn new(path: PathBuf, identity: StoreIdentity) -> Result<Self, StoreError> {
        let Some(file_name) = path.file_name().map(OsString::from) else {
            return Err(invalid(format!(
                "`{}` is not a file path: expected something like `/var/lib/rotavault/secrets.age`",
                path.display()
            )));
        };
        // A bare file name lives in the working directory; `Path::parent` calls that "".
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
        let with_suffix = |suffix: &str| {
            let mut name = file_name.clone();
            name.push(suffix);
            name
        };
        Ok(Self {
            lock_path: dir.join(with_suffix(".lock")),
            temp_prefix: with_suffix(".tmp-"),
            dir,
            path,
            identity,
        })
    }

    /// Runs `read` on the slots as they are on disk, under a shared lock.
    pub fn read<T>(&self, read: impl FnOnce(&Slots) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let _lock = self.lock(LockMode::Shared)?;
        read(&self.load()?)
    }

    /// Runs `change` on the slots under an exclusive lock held from the read to the rename, so that no other
    /// writer (thread or process) can slip a write in between and have it lost. Writes back only if `change`
    /// says it changed something.
    pub fn modify(
        &self,
        change: impl FnOnce(&mut Slots) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let _lock = self.lock(LockMode::Exclusive)?;
        let mut slots = self.load()?;
        if change(&mut slots)? {
            self.save(&slots)?;
        }
        Ok(())
    }

    /// Proves the directory exists and is writable and the file (if any) decrypts, touching no secret.
    pub fn check(&self) -> Result<(), StoreError> {
        let _lock = self.lock(LockMode::Shared)?;
        self.load()?;
        // The lock file may already exist, so opening it proves nothing about writing: create and remove a file
        // the way a write would.
        let (temp, file) = self.create_temp()?;
        let synced =
            file.sync_all().map_err(|e| io_error(e, format!("cannot write in `{}`", self.dir.display())));
        drop(file);
        let removed =
            fs::remove_file(&temp).map_err(|e| io_error(e, format!("cannot remove `{}`", temp.display())));
        synced.and(removed)
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

    fn load(&self) -> Result<Slots, StoreError> {
        let ciphertext = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            // The lock file was opened first, so the directory exists: a missing file is a store never written.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Slots::default()),
            Err(e) => {
                return Err(io_error(e, format!("cannot read `{}`", self.path.display())));
            }
        };
        let plaintext =
            envelope::open(&self.identity.identity, &ciphertext).map_err(|e| self.undecryptable(e))?;
        format::decode(&plaintext).map_err(|e| self.not_a_store(e))
    }

    fn save(&self, slots: &Slots) -> Result<(), StoreError> {
        let plaintext = format::encode(slots);
        let ciphertext =
            envelope::seal(&self.identity.recipient, &plaintext).map_err(|e| StoreError::Transient {
                backend: BACKEND,
                detail: format!("cannot encrypt `{}`: {e}", self.path.display()),
                retry_after: None,
            })?;
        self.replace(&ciphertext)
    }

    /// Writes a temporary file, makes it durable, renames it over the store and makes the rename durable: at
    /// every instant the store's path holds either the whole old file or the whole new one.
    fn replace(&self, ciphertext: &[u8]) -> Result<(), StoreError> {
        self.remove_stale_temps();
        let (temp, mut file) = self.create_temp()?;
        let written = file
            .write_all(ciphertext)
            .and_then(|()| file.sync_all())
            .map_err(|e| io_error(e, format!("cannot write `{}`", temp.display())))
            .and_then(|()| {
                fs::rename(&temp, &self.path).map_err(|e| {
                    io_error(e, format!("cannot rename `{}` over `{}`", temp.display(), self.path.display()))
                })
            });
        drop(file);
        if let Err(e) = written {
            // Holds only ciphertext, but nobody else would ever clean it up.
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
        // Without this the rename itself may not survive a power cut, and the old file would come back.
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| io_error(e, format!("cannot sync the directory `{}`", self.dir.display())))
    }

    fn create_temp(&self) -> Result<(PathBuf, File), StoreError> {
        let mut name = self.temp_prefix.clone();
        name.push(uuid::Uuid::new_v4().simple().to_string());
        let temp = self.dir.join(name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .map_err(|e| self.directory_error(e, &temp))?;
        Ok((temp, file))
    }

    /// Temporary files left by a process killed in the middle of a write. Only called under the exclusive lock,
    /// which every writer holds for as long as its temporary file exists, so none of these is still in use.
    fn remove_stale_temps(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.as_encoded_bytes().starts_with(self.temp_prefix.as_encoded_bytes()) {
                tracing::debug!(file = %entry.path().display(), "removing a temporary file left by an interrupted write");
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// Errors creating a file in the store's directory, where "not found" means the directory is missing.
    fn directory_error(&self, e: io::Error, file: &Path) -> StoreError {
        match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => invalid(format!(
                "the directory `{}` of the file store `{}` does not exist: create it, owned by the rotavault user \
                 and with mode 0700",
                self.dir.display(),
                self.path.display()
            )),
            _ => io_error(e, format!("cannot create `{}`", file.display())),
        }
    }

    fn undecryptable(&self, e: OpenError) -> StoreError {
        let path = self.path.display();
        let detail = match e {
            OpenError::NotAge => format!(
                "`{path}` is not an age-encrypted file, or it is cut short: expected a rotavault file store"
            ),
            OpenError::WrongKey => format!(
                "`{path}` could not be decrypted with the identity in {}: wrong key, or the file was encrypted \
                 for another recipient",
                self.identity.origin
            ),
            OpenError::Corrupt => {
                format!("`{path}` is corrupt or truncated: its age encryption does not verify")
            }
        };
        invalid(format!(
            "{detail}; rotavault will not overwrite it (restore it from a backup, or move it away)"
        ))
    }

    fn not_a_store(&self, e: FormatError) -> StoreError {
        let path = self.path.display();
        let detail = match e {
            FormatError::NotOurs => format!(
                "`{path}` decrypts, but does not hold a rotavault file store: expected a JSON document with \
                 \"format\": \"{}\"",
                format::FORMAT
            ),
            FormatError::UnknownVersion(version) => format!(
                "`{path}` is a rotavault file store of version {version}, and this rotavault reads version {}: \
                 was it written by a newer rotavault?",
                format::VERSION
            ),
            FormatError::Malformed { line, column, category } => format!(
                "`{path}` holds a rotavault file store document that is malformed at line {line}, column \
                 {column} ({category})"
            ),
        };
        invalid(format!("{detail}; rotavault will not overwrite it"))
    }
}

fn invalid(detail: String) -> StoreError {
    StoreError::Invalid { backend: BACKEND, detail }
}

/// The one mapping from I/O errors to store errors. `doing` names the file and the action ("cannot read `…`").
///
/// Permissions and read-only mounts need a person, not a retry; a path that is not what it should be is a
/// configuration error; anything else (a full disk, an I/O error, an interrupted lock) may pass, so it is
/// transient and the engine retries.
pub(super) fn io_error(e: io::Error, doing: String) -> StoreError {
    match e.kind() {
        io::ErrorKind::PermissionDenied => StoreError::PermissionDenied {
            backend: BACKEND,
            detail: format!("{doing}: {e}; the rotavault user needs read and write access"),
        },
        io::ErrorKind::ReadOnlyFilesystem => StoreError::PermissionDenied {
            backend: BACKEND,
            detail: format!(
                "{doing}: the file system is read-only (under systemd, list the directory in `ReadWritePaths=`)"
            ),
        },
        io::ErrorKind::NotFound
        | io::ErrorKind::NotADirectory
        | io::ErrorKind::IsADirectory
        | io::ErrorKind::InvalidInput
        | io::ErrorKind::InvalidFilename => invalid(format!("{doing}: {e}")),
        _ => StoreError::Transient { backend: BACKEND, detail: format!("{doing}: {e}"), retry_after: None },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(kind: io::ErrorKind) -> &'static str {
        io_error(io::Error::from(kind), "cannot write `/x/secrets.age`".into()).metric_label()
    }

    // Tests run as root in CI containers, where chmod cannot provoke these: the mapping is tested directly.
    #[test]
    fn io_errors_map_to_what_an_operator_or_the_engine_does_next() {
        assert_eq!(kind_of(io::ErrorKind::PermissionDenied), "permission_denied");
        assert_eq!(kind_of(io::ErrorKind::ReadOnlyFilesystem), "permission_denied");
        assert_eq!(kind_of(io::ErrorKind::NotADirectory), "invalid");
        assert_eq!(kind_of(io::ErrorKind::IsADirectory), "invalid");
        assert_eq!(kind_of(io::ErrorKind::StorageFull), "transient");
        assert_eq!(kind_of(io::ErrorKind::Interrupted), "transient");
        assert_eq!(kind_of(io::ErrorKind::Other), "transient");
    }

    #[test]
    fn an_error_names_the_file() {
        let err =
            io_error(io::Error::from(io::ErrorKind::StorageFull), "cannot write `/x/secrets.age`".into());
        assert!(err.to_string().contains("`/x/secrets.age`"), "{err}");
        assert!(err.is_retryable());
    }
}
