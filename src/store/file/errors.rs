//! Every failure of the file store as a [`StoreError`] that names the file and says what to do.
//!
//! One mapping for I/O errors ([`io_error`]), and one message per way a file can be unusable: not age, the wrong
//! key, damaged, not our document, another version, or a secret's file holding another name. Messages never
//! quote a file's contents (which may be a secret), only its path and what was expected.

use super::BACKEND;
use super::envelope::OpenError;
use super::format::FormatError;
use crate::store::StoreError;
use std::io;
use std::path::Path;

pub(super) fn invalid(detail: String) -> StoreError {
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

/// An age file that does not decrypt with the store's identity (described by `origin`).
pub(super) fn undecryptable(path: &Path, origin: &str, e: OpenError, what_to_do: &str) -> StoreError {
    let path = path.display();
    let detail = match e {
        OpenError::NotAge => format!(
            "`{path}` is not an age-encrypted file, or it is cut short: expected a file of a rotavault file store"
        ),
        OpenError::WrongKey => format!(
            "`{path}` could not be decrypted with the identity in {origin}: wrong key, or the file was encrypted \
             for another recipient"
        ),
        OpenError::Corrupt => format!("`{path}` is corrupt or truncated: its age encryption does not verify"),
    };
    invalid(format!("{detail}; {what_to_do}"))
}

/// A file that decrypts to something other than the document expected (`format`, `version`).
pub(super) fn not_ours(
    path: &Path,
    e: FormatError,
    format: &str,
    version: u64,
    what_to_do: &str,
) -> StoreError {
    let path = path.display();
    let detail = match e {
        FormatError::NotOurs => format!(
            "`{path}` decrypts, but does not hold a rotavault file store document: expected a JSON document with \
             \"format\": \"{format}\""
        ),
        FormatError::UnknownVersion(found) => format!(
            "`{path}` is a rotavault file store document of version {found}, and this rotavault reads version \
             {version} there: was it written by a newer rotavault?"
        ),
        FormatError::Malformed { line, column, category } => format!(
            "`{path}` holds a rotavault file store document that is malformed at line {line}, column {column} \
             ({category})"
        ),
    };
    invalid(format!("{detail}; {what_to_do}"))
}

/// A secret's file that says it holds another name: copied or renamed by hand.
pub(super) fn misnamed(path: &Path, expected: &str, found: &str) -> StoreError {
    invalid(format!(
        "`{}` should hold the secret `{expected}` but holds `{found}`: was it copied or renamed by hand? \
         rotavault will not overwrite it; move it back where `{found}` belongs, or away",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(kind: io::ErrorKind) -> &'static str {
        io_error(io::Error::from(kind), "cannot write `/x/secrets/a.age`".into()).metric_label()
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
            io_error(io::Error::from(io::ErrorKind::StorageFull), "cannot write `/x/secrets/a.age`".into());
        assert!(err.to_string().contains("`/x/secrets/a.age`"), "{err}");
        assert!(err.is_retryable());
    }

    #[test]
    fn a_misnamed_file_names_the_file_and_both_names() {
        let err = misnamed(Path::new("/x/secrets/b.age"), "b", "a");
        let text = err.to_string();
        assert!(
            text.contains("`/x/secrets/b.age`") && text.contains("`b`") && text.contains("`a`"),
            "{text}"
        );
    }
}
