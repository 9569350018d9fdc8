//! Secret names to file names: each name gets one file stem, `<stem>.age` and `<stem>.meta`, in the store's
//! directory.
//!
//! A name is percent-encoded: `[A-Za-z0-9._-]` is kept, every other byte becomes `%XX` (upper-case hex), and a
//! leading `.` is encoded too so that no secret's file is hidden or named `.`/`..`, and so that the store's own
//! entries (`.tmp`, `.check-…`) can never collide with one. A name whose encoding is longer than
//! [`MAX_ENCODED`] bytes (file names stop at 255) is stored under `~<sha256 hex of the name>`; `~` is never kept by
//! the encoding, so the two forms cannot collide. Each file holds its name, which is checked when it is read.

use sha2::{Digest, Sha256};
use std::fmt::Write;

/// The longest percent-encoded stem; longer names use the hash form. Leaves room for `.meta` under 255 bytes.
pub const MAX_ENCODED: usize = 200;

/// The file stem for `name`. The empty name has no file: the caller refuses it.
pub fn stem(name: &str) -> Option<String> {
    if name.is_empty() {
        return None;
    }
    let mut stem = String::with_capacity(name.len());
    for (i, byte) in name.bytes().enumerate() {
        let kept = byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-') || (byte == b'.' && i > 0);
        if kept {
            stem.push(char::from(byte));
        } else {
            let _ = write!(stem, "%{byte:02X}");
        }
        if stem.len() > MAX_ENCODED {
            let hash: String = Sha256::digest(name.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
            return Some(format!("~{hash}"));
        }
    }
    Some(stem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_characters_are_kept_and_every_other_byte_is_percent_encoded() {
        assert_eq!(stem("svc-1_a.b").as_deref(), Some("svc-1_a.b"));
        assert_eq!(stem("autotask/api user").as_deref(), Some("autotask%2Fapi%20user"));
        assert_eq!(stem("ü~%").as_deref(), Some("%C3%BC%7E%25"));
    }

    #[test]
    fn no_stem_starts_with_a_dot() {
        assert_eq!(stem(".").as_deref(), Some("%2E"));
        assert_eq!(stem("..").as_deref(), Some("%2E."));
        assert_eq!(stem(".hidden").as_deref(), Some("%2Ehidden"));
        assert_eq!(stem(""), None);
    }

    #[test]
    fn distinct_names_get_distinct_stems() {
        let names = ["a/b", "a%2Fb", "a_b", "A/b", ".a", "%2Ea", "a~b", "a%7Eb"];
        let stems: std::collections::BTreeSet<_> = names.iter().map(|n| stem(n)).collect();
        assert_eq!(stems.len(), names.len());
    }

    #[test]
    fn a_long_name_takes_the_hash_form_and_a_name_at_the_limit_does_not() {
        let at_limit = "a".repeat(MAX_ENCODED);
        assert_eq!(stem(&at_limit), Some(at_limit.clone()));
        let long = "a".repeat(MAX_ENCODED + 1);
        let hashed = stem(&long).expect("a stem");
        assert!(hashed.starts_with('~') && hashed.len() == 65, "{hashed}");
        // Encoding can push a short name over the limit.
        let slashes = "/".repeat(MAX_ENCODED / 3 + 1);
        assert!(stem(&slashes).expect("a stem").starts_with('~'));
        assert_ne!(stem(&long), stem(&"b".repeat(MAX_ENCODED + 1)));
    }
}
