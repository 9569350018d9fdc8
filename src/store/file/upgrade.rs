//! The upgrade from the version 1 layout (one age file holding every secret) to the directory of one age file per
//! secret, done once, by whichever process first uses the store, losing nothing.
//!
//! Under the exclusive lock `<path>.lock` (the lock file version 1 used too, so an old process and a new one
//! exclude each other): decrypt the old file, write every entry into a fresh `<path>.upgrading-<uuid>` directory
//! (fsynced), rename the old file to `<path>.v1` (kept as a backup readable with `age -d`, never read again), rename
//! the directory to `<path>`, fsync the parent. Each rename is one atomic step, so a crash leaves one of:
//!
//! - `<path>` still the old file (with perhaps a stale `.upgrading-*` directory): the upgrade starts again;
//! - `<path>` missing and `<path>.v1` present: the upgrade starts again from `<path>.v1`;
//! - `<path>` the new directory: done.
//!
//! Stale `.upgrading-*` directories are removed by the next upgrade. A version 1 file that does not decrypt or
//! decode is never touched, and the error says so.

use super::disk::{StoreDir, encrypt, make_private_dir, sync_dir, write_new};
use super::errors::{invalid, io_error, not_ours, undecryptable};
use super::{document, envelope, meta, names, v1};
use crate::store::StoreError;
use crate::store::slots::Slots;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

const UNTOUCHED: &str = "the store was not upgraded and nothing was changed (restore the file from a backup, or \
                         move it away to start an empty store)";

/// Whether an upgrade was cut between its two renames: the store's directory missing and the backup present.
pub(super) fn interrupted(dir: &StoreDir) -> bool {
    fs::symlink_metadata(dir.sibling(".v1")).is_ok()
}

/// Upgrades the store at `dir` if it is (still) in the version 1 layout.
pub(super) fn run(dir: &StoreDir) -> Result<(), StoreError> {
    let _lock = dir.lock_exclusive()?;
    let backup = dir.sibling(".v1");
    // Looked at again under the lock: another process may have upgraded it meanwhile.
    let source = match fs::metadata(&dir.path) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(m) if m.is_file() => {
            if fs::symlink_metadata(&backup).is_ok() {
                return Err(invalid(format!(
                    "`{}` is a single-file store from an older rotavault, and `{}` exists too, so it cannot be \
                     upgraded without losing that backup: move one of them away",
                    dir.path.display(),
                    backup.display()
                )));
            }
            dir.path.clone()
        }
        Ok(_) => {
            return Err(invalid(format!(
                "`{}` is neither a directory nor a file: expected the file store's directory",
                dir.path.display()
            )));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound && interrupted(dir) => backup.clone(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error(e, format!("cannot read `{}`", dir.path.display()))),
    };
    let slots = read_v1(dir, &source)?;

    remove_stale(dir);
    let staging = dir.sibling(&format!(".upgrading-{}", uuid::Uuid::new_v4().simple()));
    if let Err(e) = write_layout(dir, &staging, &slots) {
        let _ = fs::remove_dir_all(&staging);
        return Err(e);
    }
    if source == dir.path {
        rename(&dir.path, &backup)?;
        sync_dir(&dir.parent)?;
    }
    rename(&staging, &dir.path)?;
    sync_dir(&dir.parent)?;
    tracing::info!(
        secrets = slots.entries.len(),
        store = %dir.path.display(),
        backup = %backup.display(),
        "upgraded the file store from one file to one age file per secret; the old file is kept as the backup, \
         readable with `age -d`, never read again by rotavault, and may be deleted once the store is checked"
    );
    Ok(())
}

fn read_v1(dir: &StoreDir, source: &Path) -> Result<Slots, StoreError> {
    let ciphertext =
        fs::read(source).map_err(|e| io_error(e, format!("cannot read `{}`", source.display())))?;
    let plaintext = envelope::open(&dir.identity.identity, &ciphertext)
        .map_err(|e| undecryptable(source, &dir.identity.origin, e, UNTOUCHED))?;
    v1::decode(&plaintext).map_err(|e| not_ours(source, e, v1::FORMAT, v1::VERSION, UNTOUCHED))
}

/// Every entry as its age and metadata files in `staging`, all of it durable before it is renamed into place.
fn write_layout(dir: &StoreDir, staging: &Path, slots: &Slots) -> Result<(), StoreError> {
    make_private_dir(staging).map_err(|e| dir.directory_error(e, staging))?;
    for (name, entry) in &slots.entries {
        let stem = names::stem(name).ok_or_else(|| {
            invalid(format!(
                "`{}` holds a secret with an empty name, which no file can be named after; {UNTOUCHED}",
                dir.path.display()
            ))
        })?;
        let age_path = staging.join(format!("{stem}.age"));
        let age = encrypt(&dir.identity, &age_path, &document::encode(name, entry))?;
        write_new(&age_path, &age, true)
            .map_err(|e| io_error(e, format!("cannot write `{}`", age_path.display())))?;
        let meta_path = staging.join(format!("{stem}.meta"));
        write_new(&meta_path, &meta::encode(name, entry, &age), false)
            .map_err(|e| io_error(e, format!("cannot write `{}`", meta_path.display())))?;
    }
    sync_dir(staging)
}

/// Directories left by an upgrade that a crash cut short; the lock is held, so none is in use.
fn remove_stale(dir: &StoreDir) {
    let Ok(entries) = fs::read_dir(&dir.parent) else {
        return;
    };
    let mut prefix = dir.file_name.clone();
    prefix.push(".upgrading-");
    for entry in entries.flatten() {
        if entry.file_name().as_encoded_bytes().starts_with(prefix.as_encoded_bytes()) {
            let stale: PathBuf = entry.path();
            tracing::info!(directory = %stale.display(), "removing what an interrupted upgrade of the file store left");
            let _ = fs::remove_dir_all(&stale);
        }
    }
}

fn rename(from: &Path, to: &Path) -> Result<(), StoreError> {
    fs::rename(from, to)
        .map_err(|e| io_error(e, format!("cannot rename `{}` to `{}`", from.display(), to.display())))
}
