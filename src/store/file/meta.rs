//! The plaintext metadata file beside each secret's age file, so that start-up and `status` can read thousands of
//! secrets' metadata without an X25519 decryption each.
//!
//! ```json
//! {"format": "rotavault-file-meta", "version": 2, "name": "autotask/api", "owner": "job",
//!  "current": {"rotation_id": "…", "rotated_at": "…", "generation": 2}, "previous": null,
//!  "pending": {"rotation_id": "…", "metadata": {…}}, "age_header_sha256": "<hex of the age file's header>"}
//! ```
//!
//! Metadata is never secret (the store contract says so; AWS keeps it in tags, Vault in `custom_metadata`), and
//! holds no value. The age file stays the truth: a metadata file is used only when its `age_header_sha256`
//! matches the age file's header as it is now, and anything else (missing, torn by a crash, edited by hand, from another
//! version, describing an older age file) is ignored and the age file decrypted instead. So it is written without
//! an fsync of its own and never reported as an error.
//!
//! The header, not the whole file, is hashed: age writes a fresh ephemeral key and a header MAC for every
//! encryption, so no two writes share a header, and hashing a few hundred bytes instead of the whole file keeps a
//! batch read of 10,000 secrets cheap. (A payload damaged by hand while its header stays whole is reported by the
//! first operation that decrypts it.)

use super::format::{self, MetadataDoc, PendingMetaDoc};
use crate::store::Summary;
use crate::store::slots::Entry;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const FORMAT: &str = "rotavault-file-meta";

pub const VERSION: u64 = 2;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    format: String,
    version: u64,
    name: String,
    owner: Option<String>,
    current: Option<MetadataDoc>,
    previous: Option<MetadataDoc>,
    pending: Option<PendingMetaDoc>,
    age_header_sha256: String,
}

/// What a valid metadata file says of its secret.
pub struct Meta {
    pub name: String,
    pub owner: Option<String>,
    pub summary: Summary,
}

/// The hex SHA-256 of an age file's header, which ties a metadata file to the one age file it describes.
pub fn digest(age_bytes: &[u8]) -> String {
    hex_digest(age_bytes).into_iter().map(char::from).collect()
}

/// [`digest`] on the stack: every metadata file a batch read finds is compared with one, and building each as a
/// `String` was a fortieth of `status` at 1,000 jobs.
fn hex_digest(age_bytes: &[u8]) -> [u8; 64] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = [0; 64];
    for (i, byte) in Sha256::digest(header(age_bytes)).into_iter().enumerate() {
        hex[2 * i] = HEX[usize::from(byte >> 4)];
        hex[2 * i + 1] = HEX[usize::from(byte & 0xf)];
    }
    hex
}

/// The age header: everything up to the end of its MAC line (`--- <mac>`), or the whole of something that has none.
fn header(age_bytes: &[u8]) -> &[u8] {
    let mac = age_bytes.windows(5).position(|w| w == b"\n--- ");
    let end =
        mac.and_then(|at| age_bytes[at + 5..].iter().position(|&b| b == b'\n').map(|nl| at + 5 + nl + 1));
    end.map_or(age_bytes, |end| &age_bytes[..end])
}

/// The metadata file for `entry`, whose age file holds `age_bytes`.
pub fn encode(name: &str, entry: &Entry, age_bytes: &[u8]) -> Vec<u8> {
    let document = Document {
        format: FORMAT.to_owned(),
        version: VERSION,
        name: name.to_owned(),
        owner: entry.owner.clone(),
        current: entry.current.as_ref().map(|c| MetadataDoc::from_metadata(&c.metadata)),
        previous: entry.previous.as_ref().map(|p| MetadataDoc::from_metadata(&p.metadata)),
        pending: entry.pending.as_ref().map(PendingMetaDoc::from_pending),
        age_header_sha256: digest(age_bytes),
    };
    format::encode(&document).to_vec()
}

/// The metadata in `bytes` if it is a valid metadata file describing exactly `age_bytes`; `None` otherwise.
pub fn decode(bytes: &[u8], age_bytes: &[u8]) -> Option<Meta> {
    // One parse, where the age file's own document takes two for better messages: a metadata file that is not
    // ours or not whole is never reported, only passed over.
    let document: Document = serde_json::from_slice(bytes).ok()?;
    if document.format != FORMAT
        || document.version != VERSION
        || document.age_header_sha256.as_bytes() != hex_digest(age_bytes).as_slice()
    {
        return None;
    }
    Some(Meta {
        name: document.name,
        owner: document.owner,
        summary: Summary {
            current: document.current.map(MetadataDoc::into_metadata),
            pending: document.pending.map(PendingMetaDoc::into_summary),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretValue;
    use crate::store::{Metadata, Pending, RotationId, Stored};
    use chrono::{TimeZone, Utc};

    fn entry() -> Entry {
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).single().expect("valid date");
        let (a, b) = (RotationId::new(), RotationId::new());
        Entry {
            owner: Some("job".into()),
            current: Some(Stored {
                value: SecretValue::new("s3cr3t-cur"),
                metadata: Metadata::new(Some(a), at, 2),
            }),
            previous: None,
            pending: Some(Pending {
                value: SecretValue::new("s3cr3t-pend"),
                rotation_id: b.clone(),
                metadata: Metadata::new(Some(b), at, 3),
            }),
        }
    }

    #[test]
    fn metadata_round_trips_for_the_age_bytes_it_was_written_for_and_holds_no_value() {
        let entry = entry();
        let bytes = encode("svc", &entry, b"age bytes");
        let text = String::from_utf8(bytes.clone()).expect("UTF-8");
        assert!(!text.contains("s3cr3t"), "{text}");
        let meta = decode(&bytes, b"age bytes").expect("valid");
        assert_eq!(meta.name, "svc");
        assert_eq!(meta.owner.as_deref(), Some("job"));
        assert_eq!(meta.summary, Summary::of(entry.current.as_ref(), entry.pending.as_ref()));
    }

    #[test]
    fn metadata_for_other_age_bytes_or_damaged_is_ignored() {
        let bytes = encode("svc", &entry(), b"age bytes");
        assert!(decode(&bytes, b"other age bytes").is_none());
        assert!(decode(&bytes[..bytes.len() / 2], b"age bytes").is_none());
        assert!(decode(b"", b"age bytes").is_none());
    }

    #[test]
    fn the_digest_is_lowercase_hex_sha256() {
        assert_eq!(digest(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn the_digest_covers_the_age_header_through_its_mac_line_and_not_the_payload() {
        let file = |payload: &[u8]| {
            let mut bytes = b"age-encryption.org/v1\n-> X25519 abc\nxyz\n--- MAC1\n".to_vec();
            bytes.extend_from_slice(payload);
            bytes
        };
        assert_eq!(digest(&file(b"payload one")), digest(&file(b"payload two")));
        assert_eq!(
            digest(&file(b"payload one")),
            digest(b"age-encryption.org/v1\n-> X25519 abc\nxyz\n--- MAC1\n")
        );
        let other_mac = b"age-encryption.org/v1\n-> X25519 abc\nxyz\n--- MAC2\npayload one";
        assert_ne!(digest(&file(b"payload one")), digest(other_mac));
    }
}
