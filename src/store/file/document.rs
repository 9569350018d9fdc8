//! The plaintext inside one secret's age file: a versioned JSON document holding that name's three slots.
//!
//! ```json
//! {"format": "rotavault-file-secret", "version": 2, "name": "autotask/api", "owner": "job",
//!  "current": {"value": "…", "metadata": {"rotation_id": "…", "rotated_at": "…", "generation": 2}},
//!  "previous": null, "pending": {"value": "…", "rotation_id": "…", "metadata": {…}}}
//! ```
//!
//! The name is inside so that a file copied or renamed by hand is noticed: the disk layer compares it with the
//! name the file was opened for.

use super::format::{self, FormatError, PendingDoc, StoredDoc};
use crate::store::slots::Entry;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The marker that says a decrypted secret file is ours.
pub const FORMAT: &str = "rotavault-file-secret";

/// The only version this rotavault reads and writes (version 1 was the single-file layout).
pub const VERSION: u64 = 2;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    format: String,
    version: u64,
    name: String,
    owner: Option<String>,
    current: Option<StoredDoc>,
    previous: Option<StoredDoc>,
    pending: Option<PendingDoc>,
}

/// Serializes one name's entry into a plaintext buffer that is zeroized when dropped.
pub fn encode(name: &str, entry: &Entry) -> Zeroizing<Vec<u8>> {
    format::encode(&Document {
        format: FORMAT.to_owned(),
        version: VERSION,
        name: name.to_owned(),
        owner: entry.owner.clone(),
        current: entry.current.as_ref().map(StoredDoc::from_stored),
        previous: entry.previous.as_ref().map(StoredDoc::from_stored),
        pending: entry.pending.as_ref().map(PendingDoc::from_pending),
    })
}

/// Parses a decrypted secret file into the name it says it holds and that name's entry.
pub fn decode(plaintext: &[u8]) -> Result<(String, Entry), FormatError> {
    let doc: Document = format::decode(plaintext, FORMAT, VERSION)?;
    let entry = Entry {
        owner: doc.owner,
        current: doc.current.map(StoredDoc::into_stored),
        previous: doc.previous.map(StoredDoc::into_stored),
        pending: doc.pending.map(PendingDoc::into_pending),
    };
    Ok((doc.name, entry))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretValue;
    use crate::store::{Metadata, Pending, RotationId, Stored};
    use chrono::{TimeZone, Utc};

    fn meta(id: Option<&RotationId>, generation: u64) -> Metadata {
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).single().expect("valid date");
        Metadata::new(id.cloned(), at, generation)
    }

    fn sample() -> Entry {
        let (a, b) = (RotationId::new(), RotationId::new());
        Entry {
            owner: Some("optimize365".into()),
            current: Some(Stored { value: SecretValue::new("cur\"rent\n"), metadata: meta(Some(&a), 2) }),
            previous: Some(Stored { value: SecretValue::new("ünï-previous"), metadata: meta(None, 1) }),
            pending: Some(Pending {
                value: SecretValue::new("pending"),
                rotation_id: b.clone(),
                metadata: meta(Some(&b), 3),
            }),
        }
    }

    #[test]
    fn a_document_round_trips_its_name_every_slot_owner_and_metadata() {
        let entry = sample();
        assert_eq!(
            decode(&encode("autotask/optimize365", &entry)),
            Ok(("autotask/optimize365".into(), entry))
        );
        let foreign = Entry { owner: None, ..Entry::default() };
        assert_eq!(decode(&encode("x", &foreign)), Ok(("x".into(), foreign)));
    }

    #[test]
    fn the_document_carries_the_marker_version_name_and_slot_names() {
        let plaintext = encode("autotask/optimize365", &sample());
        let json: serde_json::Value = serde_json::from_slice(&plaintext).expect("JSON");
        assert_eq!(json["format"], FORMAT);
        assert_eq!(json["version"], 2);
        assert_eq!(json["name"], "autotask/optimize365");
        assert_eq!(json["owner"], "optimize365");
        assert_eq!(json["current"]["value"], "cur\"rent\n");
        assert_eq!(json["current"]["metadata"]["generation"], 2);
        assert_eq!(json["current"]["metadata"]["rotated_at"], "2026-03-01T12:00:00Z");
        assert_eq!(json["previous"]["value"], "ünï-previous");
        assert_eq!(json["pending"]["value"], "pending");
        assert!(json["pending"]["rotation_id"].is_string());
    }

    #[test]
    fn a_version_1_store_is_not_a_secret_document() {
        let text = br#"{"format":"rotavault-file-store","version":1,"entries":{}}"#;
        assert_eq!(decode(text).map(drop), Err(FormatError::NotOurs));
        let text = br#"{"format":"rotavault-file-secret","version":3,"name":"n"}"#;
        assert_eq!(decode(text).map(drop), Err(FormatError::UnknownVersion(3)));
    }

    #[test]
    fn a_value_of_the_wrong_type_is_malformed_without_quoting_it() {
        let text = br#"{"format":"rotavault-file-secret","version":2,"name":"n","owner":"s3cr3t","current":null,"previous":null,"pending":{"value":"v","rotation_id":"s3cr3t","metadata":{"rotation_id":null,"rotated_at":"2026-03-01T12:00:00Z","generation":1}}}"#;
        let err = decode(text).map(drop).expect_err("an invalid rotation id");
        assert!(matches!(err, FormatError::Malformed { .. }), "{err:?}");
        assert!(!format!("{err:?}").contains("s3cr3t"));
    }
}
