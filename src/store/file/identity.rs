//! The file store's X25519 identity: where it comes from ([`IdentitySource`]), loading it, and [`keygen`].
//!
//! The key file is in the standard age identity format, as `age-keygen` writes it (`# ` comment lines and one
//! `AGE-SECRET-KEY-1…` line), so that an operator can decrypt any secret's file with
//! `age -d -i store.key secrets/NAME.age`.
//! The file store needs exactly one identity: it encrypts to that identity's public key.
//!
//! No message, log or `Debug` output here ever contains the key: parse errors name a line number, not its text.

use super::BACKEND;
use super::errors::io_error;
use crate::store::StoreError;
use age::secrecy::ExposeSecret;
use age::x25519;
use chrono::{SecondsFormat, Utc};
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Where the file store's identity (its private key) is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentitySource {
    /// A key file in age's identity format; it must not be readable by group or others (mode 0600 or 0400).
    File(PathBuf),
    /// A systemd credential name, read from `$CREDENTIALS_DIRECTORY/<name>` (`LoadCredential=` or
    /// `LoadCredentialEncrypted=` in the unit).
    ///
    /// Its mode is not checked: systemd makes the credentials directory private to the unit and, when the unit
    /// runs as another user, grants read access with an ACL, whose mask shows up as group bits in the file mode.
    Credential(String),
}

/// A loaded identity, and how to name where it came from in messages.
pub(super) struct StoreIdentity {
    pub identity: x25519::Identity,
    pub recipient: x25519::Recipient,
    /// e.g. "`/etc/rotavault/store.key`", or "systemd credential `store-key` (`/run/credentials/…/store-key`)".
    pub origin: String,
}

impl IdentitySource {
    pub(super) fn load(&self) -> Result<StoreIdentity, StoreError> {
        match self {
            Self::File(path) => {
                let origin = format!("`{}`", path.display());
                let hint = format!("create one with `rotavault keygen --out {}`", path.display());
                load_file(path, origin, &hint, true)
            }
            Self::Credential(name) => load_credential(std::env::var_os("CREDENTIALS_DIRECTORY"), name),
        }
    }
}

/// [`IdentitySource::Credential`] with the directory passed in, so that it can be tested without touching the
/// process environment.
fn load_credential(directory: Option<OsString>, name: &str) -> Result<StoreIdentity, StoreError> {
    let path = credential_path(directory, name)?;
    let origin = format!("systemd credential `{name}` (`{}`)", path.display());
    let hint = format!("pass it in the unit with `LoadCredential={name}:/etc/rotavault/store.key`");
    load_file(&path, origin, &hint, false)
}

fn credential_path(directory: Option<OsString>, name: &str) -> Result<PathBuf, StoreError> {
    let valid_name = !name.is_empty() && name != "." && name != ".." && !name.contains('/');
    if !valid_name {
        return Err(invalid(format!(
            "`{name}` is not a systemd credential name: expected a plain file name such as `store-key`"
        )));
    }
    match directory.filter(|d| !d.is_empty()) {
        Some(directory) => Ok(PathBuf::from(directory).join(name)),
        None => Err(invalid(format!(
            "the store identity is the systemd credential `{name}`, but CREDENTIALS_DIRECTORY is not set: run \
             rotavault under systemd with `LoadCredential={name}:/etc/rotavault/store.key` (or \
             `LoadCredentialEncrypted=`) in the unit, or configure `identity_file` instead"
        ))),
    }
}

fn load_file(
    path: &Path,
    origin: String,
    missing_hint: &str,
    check_mode: bool,
) -> Result<StoreIdentity, StoreError> {
    let mut file = File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => {
            invalid(format!("the store identity {origin} does not exist: {missing_hint}"))
        }
        _ => io_error(e, format!("cannot read the store identity {origin}")),
    })?;
    // The mode is taken from the open file, not the path, so that what is checked is what is read.
    let meta =
        file.metadata().map_err(|e| io_error(e, format!("cannot read the store identity {origin}")))?;
    let mode = meta.permissions().mode() & 0o777;
    if check_mode && mode & 0o077 != 0 {
        return Err(invalid(format!(
            "the store identity {origin} is accessible to group or others (mode {mode:04o}); it must be private \
             to the rotavault user: run `chmod 600 {}`",
            path.display()
        )));
    }
    // Sized up front so the buffer holding the key never grows (and leaves a copy behind).
    let mut text = Zeroizing::new(String::with_capacity(meta.len() as usize + 1));
    file.read_to_string(&mut text).map_err(|e| match e.kind() {
        io::ErrorKind::InvalidData => invalid(format!(
            "the store identity {origin} is not text: expected an age identity file as written by `rotavault \
             keygen` or `age-keygen`"
        )),
        _ => io_error(e, format!("cannot read the store identity {origin}")),
    })?;
    let identity = parse(&text, &origin)?;
    Ok(StoreIdentity { recipient: identity.to_public(), identity, origin })
}

fn parse(text: &str, origin: &str) -> Result<x25519::Identity, StoreError> {
    let mut found = None;
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let identity = line.parse::<x25519::Identity>().map_err(|_| {
            invalid(format!(
                "line {} of the store identity {origin} is not an age X25519 identity: expected \
                 `AGE-SECRET-KEY-1…` or a comment starting with `#`",
                index + 1
            ))
        })?;
        if found.replace(identity).is_some() {
            return Err(invalid(format!(
                "the store identity {origin} holds more than one identity; the file store needs exactly one, \
                 whose public key it encrypts to"
            )));
        }
    }
    found.ok_or_else(|| {
        invalid(format!(
            "the store identity {origin} holds no identity: expected a line `AGE-SECRET-KEY-1…` as written by \
             `rotavault keygen`"
        ))
    })
}

fn invalid(detail: String) -> StoreError {
    StoreError::Invalid { backend: BACKEND, detail }
}

/// Why [`keygen`] did not create a key file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeygenError {
    #[error(
        "`{}` already exists; keygen never overwrites a key (every store encrypted to it needs it to be read)",
        path.display()
    )]
    Exists { path: PathBuf },
    #[error("the directory of `{}` does not exist: create it first", path.display())]
    NoDirectory { path: PathBuf },
    #[error("could not write the key file `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Creates a new X25519 identity at `path` and returns its public key (`age1…`).
///
/// The file is created with mode 0600 in the same call that creates it, so it is never readable by anyone else,
/// not even for an instant, and an existing file is never overwritten. It reads like `age-keygen`'s output.
pub fn keygen(path: &Path) -> Result<String, KeygenError> {
    let identity = x25519::Identity::generate();
    let public = identity.to_public().to_string();
    let secret = identity.to_string();
    let created = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    let lines = ["# created: ", &created, "\n# public key: ", &public, "\n", secret.expose_secret(), "\n"];
    // Sized up front so the buffer holding the key never grows (and leaves a copy behind).
    let mut contents = Zeroizing::new(String::with_capacity(lines.iter().map(|l| l.len()).sum()));
    lines.iter().for_each(|line| contents.push_str(line));

    let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(
        |source| match source.kind() {
            io::ErrorKind::AlreadyExists => KeygenError::Exists { path: path.into() },
            io::ErrorKind::NotFound => KeygenError::NoDirectory { path: path.into() },
            _ => KeygenError::Io { path: path.into(), source },
        },
    )?;
    let written =
        file.write_all(contents.as_bytes()).and_then(|()| file.sync_all()).and_then(|()| sync_parent(path));
    if let Err(source) = written {
        // The file is ours and incomplete: leaving it would make the next attempt fail with `Exists`.
        let _ = fs::remove_file(path);
        return Err(KeygenError::Io { path: path.into(), source });
    }
    Ok(public)
}

/// Makes the new directory entry durable, not only the file's contents.
fn sync_parent(path: &Path) -> io::Result<()> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    File::open(parent)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::Permissions;

    fn detail(err: StoreError) -> String {
        match err {
            StoreError::Invalid { detail, .. } => detail,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn keygen_writes_a_private_key_file_in_age_keygen_form() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.key");
        let public = keygen(&path).expect("keygen");
        assert!(public.starts_with("age1"), "a public key: {public}");
        let mode = fs::metadata(&path).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = fs::read_to_string(&path).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "created, public key, identity");
        let created = lines[0].strip_prefix("# created: ").expect("a created line");
        chrono::DateTime::parse_from_rfc3339(created).expect("an RFC 3339 time");
        assert_eq!(lines[1], format!("# public key: {public}"));
        assert!(lines[2].starts_with("AGE-SECRET-KEY-1"));
        let loaded = IdentitySource::File(path).load().expect("load");
        assert_eq!(loaded.recipient.to_string(), public);
    }

    #[test]
    fn keygen_refuses_to_overwrite_a_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.key");
        fs::write(&path, "keep me").expect("write");
        let err = keygen(&path).expect_err("an existing file");
        assert!(matches!(err, KeygenError::Exists { .. }), "{err:?}");
        assert_eq!(fs::read_to_string(&path).expect("read"), "keep me");
    }

    #[test]
    fn keygen_into_a_missing_directory_says_so() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("missing").join("store.key");
        let err = keygen(&path).expect_err("no directory");
        assert!(matches!(err, KeygenError::NoDirectory { .. }), "{err:?}");
        assert!(err.to_string().contains("does not exist"), "{err}");
    }

    #[test]
    fn a_key_file_readable_by_others_is_refused_with_the_chmod_to_run() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.key");
        keygen(&path).expect("keygen");
        fs::set_permissions(&path, Permissions::from_mode(0o644)).expect("chmod");
        let message = detail(IdentitySource::File(path.clone()).load().err().expect("refused"));
        assert!(message.contains("mode 0644"), "{message}");
        assert!(message.contains(&format!("chmod 600 {}", path.display())), "{message}");
        assert!(!message.contains("AGE-SECRET-KEY"), "{message}");
    }

    #[test]
    fn a_read_only_key_file_is_accepted() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.key");
        keygen(&path).expect("keygen");
        fs::set_permissions(&path, Permissions::from_mode(0o400)).expect("chmod");
        IdentitySource::File(path).load().expect("0400 is private");
    }

    #[test]
    fn a_missing_key_file_names_keygen() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.key");
        let message = detail(IdentitySource::File(path).load().err().expect("missing"));
        assert!(message.contains("rotavault keygen --out"), "{message}");
    }

    #[test]
    fn a_key_file_with_other_text_names_the_line_and_not_its_text() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.key");
        keygen(&path).expect("keygen");
        let mut text = fs::read_to_string(&path).expect("read");
        text.push_str("hunter2-not-a-key\n");
        fs::write(&path, &text).expect("write");
        let message = detail(IdentitySource::File(path).load().err().expect("refused"));
        assert!(message.contains("line 4"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn a_key_file_with_two_identities_or_none_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (one, two) = (dir.path().join("one.key"), dir.path().join("two.key"));
        keygen(&one).expect("keygen");
        keygen(&two).expect("keygen");
        let both = fs::read_to_string(&one).expect("read") + &fs::read_to_string(&two).expect("read");
        let path = dir.path().join("both.key");
        fs::write(&path, both).expect("write");
        fs::set_permissions(&path, Permissions::from_mode(0o600)).expect("chmod");
        let message = detail(IdentitySource::File(path.clone()).load().err().expect("two"));
        assert!(message.contains("more than one"), "{message}");

        fs::write(&path, "# only a comment\n\n").expect("write");
        let message = detail(IdentitySource::File(path).load().err().expect("none"));
        assert!(message.contains("holds no identity"), "{message}");
    }

    #[test]
    fn a_credential_is_read_from_the_credentials_directory() {
        let dir = tempfile::tempdir().expect("temp dir");
        let public = keygen(&dir.path().join("store-key")).expect("keygen");
        let loaded = load_credential(Some(dir.path().as_os_str().to_owned()), "store-key").expect("load");
        assert_eq!(loaded.recipient.to_string(), public);
        assert!(loaded.origin.contains("systemd credential `store-key`"));
    }

    #[test]
    fn a_credential_with_an_acl_mask_in_its_mode_is_accepted() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store-key");
        keygen(&path).expect("keygen");
        fs::set_permissions(&path, Permissions::from_mode(0o440)).expect("chmod");
        load_credential(Some(dir.path().as_os_str().to_owned()), "store-key")
            .expect("systemd guards the credentials directory");
    }

    #[test]
    fn a_credential_without_credentials_directory_says_how_to_pass_it() {
        let message = detail(load_credential(None, "store-key").err().expect("unset"));
        assert!(message.contains("CREDENTIALS_DIRECTORY is not set"), "{message}");
        assert!(message.contains("LoadCredential=store-key:"), "{message}");
        let message = detail(load_credential(Some(OsString::new()), "store-key").err().expect("empty"));
        assert!(message.contains("CREDENTIALS_DIRECTORY is not set"), "{message}");
    }

    #[test]
    fn a_credential_name_cannot_leave_the_credentials_directory() {
        for name in ["", ".", "..", "../etc/key", "a/b"] {
            let err = credential_path(Some("/run/credentials/x".into()), name).expect_err(name);
            assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
        }
    }

    #[test]
    fn a_missing_credential_names_the_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let message = detail(
            load_credential(Some(dir.path().as_os_str().to_owned()), "store-key").err().expect("missing"),
        );
        assert!(message.contains(&dir.path().join("store-key").display().to_string()), "{message}");
        assert!(message.contains("LoadCredential=store-key:"), "{message}");
    }
}
