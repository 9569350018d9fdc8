//! The version 1 layout, read only to upgrade it: one age file holding every name's three slots.
//!
//! ```json
//! {"format": "rotavault-file-store", "version": 1,
//!  "entries": {"NAME": {"owner": "job", "current": {"value": "…", "metadata": {…}},
//!                       "previous": null, "pending": {"value": "…", "rotation_id": "…", "metadata": {…}}}}}
//! ```
//!
//! Rotavault never writes this format any more; `upgrade` turns such a file into the directory layout.

use super::format::{self, FormatError, PendingDoc, StoredDoc};
use crate::store::slots::{Entry, Slots};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The marker of a version 1 store.
pub const FORMAT: &str = "rotavault-file-store";

pub const VERSION: u64 = 1;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    // Checked by `format::decode` before the whole document is parsed.
    #[serde(rename = "format")]
    _format: String,
    #[serde(rename = "version")]
    _version: u64,
    entries: BTreeMap<String, EntryDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryDoc {
    owner: Option<String>,
    current: Option<StoredDoc>,
    previous: Option<StoredDoc>,
    pending: Option<PendingDoc>,
}

/// Parses a decrypted version 1 store into slots.
pub fn decode(plaintext: &[u8]) -> Result<Slots, FormatError> {
    let document: Document = format::decode(plaintext, FORMAT, VERSION)?;
    let entries = document
        .entries
        .into_iter()
        .map(|(name, doc)| {
            let entry = Entry {
                owner: doc.owner,
                current: doc.current.map(StoredDoc::into_stored),
                previous: doc.previous.map(StoredDoc::into_stored),
                pending: doc.pending.map(PendingDoc::into_pending),
            };
            (name, entry)
        })
        .collect();
    Ok(Slots { entries })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_document_decodes_every_slot_owner_and_metadata() {
        let text = br#"{"format":"rotavault-file-store","version":1,"entries":{
            "a/b":{"owner":"job","current":{"value":"cur\"rent","metadata":{"rotation_id":null,
                "rotated_at":"2026-03-01T12:00:00Z","generation":2}},"previous":null,
                "pending":{"value":"p","rotation_id":"0123456789abcdef0123456789abcdef",
                "metadata":{"rotation_id":"0123456789abcdef0123456789abcdef",
                "rotated_at":"2026-03-01T13:00:00Z","generation":3}}},
            "hand-made":{"owner":null,"current":null,"previous":null,"pending":null}}}"#;
        let slots = decode(text).expect("decodes");
        let entry = &slots.entries["a/b"];
        assert_eq!(entry.owner.as_deref(), Some("job"));
        let current = entry.current.as_ref().expect("current");
        assert_eq!(current.value.expose(), "cur\"rent");
        assert_eq!(current.metadata.generation, 2);
        let pending = entry.pending.as_ref().expect("pending");
        assert_eq!(pending.value.expose(), "p");
        assert_eq!(pending.metadata.generation, 3);
        assert!(entry.previous.is_none());
        assert_eq!(slots.entries["hand-made"], Entry::default());
    }

    #[test]
    fn a_per_secret_document_is_not_a_version_1_store() {
        let text = br#"{"format":"rotavault-file-secret","version":2,"name":"n"}"#;
        assert_eq!(decode(text).map(drop), Err(FormatError::NotOurs));
    }
}
