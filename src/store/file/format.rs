//! The plaintext inside the age envelope: a versioned JSON document holding every name's three slots.
//!
//! The document is the file store's on-disk contract with operators (who may decrypt it with `age -d` in an
//! emergency) and with future versions of rotavault, so it is spelled out here in private serde structs rather than
//! derived from the in-memory types: renaming a field of [`Metadata`] must not silently change what is on disk.
//!
//! ```json
//! {"format": "rotavault-file-store", "version": 1,
//!  "entries": {"NAME": {"owner": "job", "current": {"value": "…", "metadata": {…}},
//!                       "previous": null, "pending": {"value": "…", "rotation_id": "…", "metadata": {…}}}}}
//! ```
//!
//! Reading is strict: an unknown field is an error, because an older rotavault that dropped a field it did not
//! understand would lose it on its next write.

use crate::secret::SecretValue;
use crate::store::slots::{Entry, Slots};
use crate::store::{Metadata, Pending, RotationId, Stored};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::io;
use zeroize::Zeroizing;

/// The marker that says a decrypted document is ours.
pub const FORMAT: &str = "rotavault-file-store";

/// The only version this rotavault reads and writes.
pub const VERSION: u64 = 1;

/// Why a decrypted plaintext is not a store this rotavault can use. Carries no text from the document, so that it
/// can never carry a secret into a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    /// Not JSON, or JSON without our format marker.
    NotOurs,
    /// Our format, at a version this rotavault does not know.
    UnknownVersion(u64),
    /// Our format and version, but not the shape it promises.
    Malformed { line: usize, column: usize, category: &'static str },
}

/// Serializes `slots` into a plaintext buffer that is zeroized when dropped.
pub fn encode(slots: &Slots) -> Zeroizing<Vec<u8>> {
    let document = Document::from_slots(slots);
    // A `Vec` that grows leaves copies of the plaintext behind in freed memory, where zeroizing cannot reach them.
    // Measuring first lets the buffer be allocated once at its final size.
    let mut counter = ByteCounter(0);
    let measured = serde_json::to_writer(&mut counter, &document);
    let mut plaintext = Zeroizing::new(Vec::with_capacity(counter.0));
    // Serializing plain structs of strings, integers and timestamps into memory cannot fail; a failure would be a
    // bug in this module, not a condition to report.
    measured
        .and_then(|()| serde_json::to_writer(&mut *plaintext, &document))
        .expect("the file store document always serializes");
    plaintext
}

/// Parses a decrypted plaintext back into slots.
pub fn decode(plaintext: &[u8]) -> Result<Slots, FormatError> {
    // The marker and version are read on their own first, so that a document from another tool or a newer
    // rotavault gets a message about that instead of a parse error about some field.
    let header: Header = serde_json::from_slice(plaintext).map_err(|_| FormatError::NotOurs)?;
    if header.format != FORMAT {
        return Err(FormatError::NotOurs);
    }
    if header.version != VERSION {
        return Err(FormatError::UnknownVersion(header.version));
    }
    // serde_json's messages can quote the offending value, which may be a secret: keep only its position.
    let document: Document = serde_json::from_slice(plaintext).map_err(|e| FormatError::Malformed {
        line: e.line(),
        column: e.column(),
        category: match e.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "not valid JSON",
            serde_json::error::Category::Data => "unexpected field or value",
            serde_json::error::Category::Eof => "cut short",
        },
    })?;
    Ok(document.into_slots())
}

struct ByteCounter(usize);

impl io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[derive(Deserialize)]
struct Header {
    format: String,
    version: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    format: String,
    version: u64,
    entries: BTreeMap<String, EntryDoc>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryDoc {
    owner: Option<String>,
    current: Option<StoredDoc>,
    previous: Option<StoredDoc>,
    pending: Option<PendingDoc>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredDoc {
    value: SecretText,
    metadata: MetadataDoc,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PendingDoc {
    value: SecretText,
    rotation_id: RotationId,
    metadata: MetadataDoc,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetadataDoc {
    rotation_id: Option<RotationId>,
    rotated_at: DateTime<Utc>,
    generation: u64,
}

/// A secret's text while it is part of the document: zeroized when the document is dropped. `SecretValue` has no
/// serde on purpose; this type exists only here, where writing the text out is the point.
struct SecretText(Zeroizing<String>);

impl SecretText {
    fn from_value(value: &SecretValue) -> Self {
        Self(Zeroizing::new(value.expose().to_owned()))
    }

    fn into_value(mut self) -> SecretValue {
        // Moves the allocation into the `SecretValue` (which zeroizes it in turn) instead of copying it.
        SecretValue::new(std::mem::take(&mut *self.0))
    }
}

impl Serialize for SecretText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SecretText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|text| Self(Zeroizing::new(text)))
    }
}

impl Document {
    fn from_slots(slots: &Slots) -> Self {
        let entries = slots
            .entries
            .iter()
            .map(|(name, entry)| {
                let doc = EntryDoc {
                    owner: entry.owner.clone(),
                    current: entry.current.as_ref().map(StoredDoc::from_stored),
                    previous: entry.previous.as_ref().map(StoredDoc::from_stored),
                    pending: entry.pending.as_ref().map(|p| PendingDoc {
                        value: SecretText::from_value(&p.value),
                        rotation_id: p.rotation_id.clone(),
                        metadata: MetadataDoc::from_metadata(&p.metadata),
                    }),
                };
                (name.clone(), doc)
            })
            .collect();
        Self { format: FORMAT.to_owned(), version: VERSION, entries }
    }

    fn into_slots(self) -> Slots {
        let entries = self
            .entries
            .into_iter()
            .map(|(name, doc)| {
                let entry = Entry {
                    owner: doc.owner,
                    current: doc.current.map(StoredDoc::into_stored),
                    previous: doc.previous.map(StoredDoc::into_stored),
                    pending: doc.pending.map(|p| Pending {
                        value: p.value.into_value(),
                        rotation_id: p.rotation_id,
                        metadata: p.metadata.into_metadata(),
                    }),
                };
                (name, entry)
            })
            .collect();
        Slots { entries }
    }
}

impl StoredDoc {
    fn from_stored(stored: &Stored) -> Self {
        Self {
            value: SecretText::from_value(&stored.value),
            metadata: MetadataDoc::from_metadata(&stored.metadata),
        }
    }

    fn into_stored(self) -> Stored {
        Stored { value: self.value.into_value(), metadata: self.metadata.into_metadata() }
    }
}

impl MetadataDoc {
    fn from_metadata(metadata: &Metadata) -> Self {
        Self {
            rotation_id: metadata.rotation_id.clone(),
            rotated_at: metadata.rotated_at,
            generation: metadata.generation,
        }
    }

    fn into_metadata(self) -> Metadata {
        // Built field by field rather than with `Metadata::new`, which would round the time: what was written is
        // what is read.
        Metadata { rotation_id: self.rotation_id, rotated_at: self.rotated_at, generation: self.generation }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn meta(id: Option<&RotationId>, generation: u64) -> Metadata {
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).single().expect("valid date");
        Metadata::new(id.cloned(), at, generation)
    }

    fn sample() -> Slots {
        let (a, b) = (RotationId::new(), RotationId::new());
        let mut slots = Slots::default();
        slots.entries.insert(
            "autotask/optimize365".into(),
            Entry {
                owner: Some("optimize365".into()),
                current: Some(Stored { value: SecretValue::new("cur\"rent\n"), metadata: meta(Some(&a), 2) }),
                previous: Some(Stored { value: SecretValue::new("ünï-previous"), metadata: meta(None, 1) }),
                pending: Some(Pending {
                    value: SecretValue::new("pending"),
                    rotation_id: b.clone(),
                    metadata: meta(Some(&b), 3),
                }),
            },
        );
        slots.entries.insert(
            "hand-made".into(),
            Entry {
                owner: None,
                current: Some(Stored { value: SecretValue::new("foreign"), metadata: meta(None, 0) }),
                ..Entry::default()
            },
        );
        slots
    }

    #[test]
    fn a_document_round_trips_every_slot_owner_and_metadata() {
        let slots = sample();
        assert_eq!(decode(&encode(&slots)), Ok(slots));
    }

    #[test]
    fn the_document_carries_the_marker_version_and_slot_names() {
        let plaintext = encode(&sample());
        let json: serde_json::Value = serde_json::from_slice(&plaintext).expect("JSON");
        assert_eq!(json["format"], FORMAT);
        assert_eq!(json["version"], 1);
        let entry = &json["entries"]["autotask/optimize365"];
        assert_eq!(entry["owner"], "optimize365");
        assert_eq!(entry["current"]["value"], "cur\"rent\n");
        assert_eq!(entry["current"]["metadata"]["generation"], 2);
        assert_eq!(entry["current"]["metadata"]["rotated_at"], "2026-03-01T12:00:00Z");
        assert_eq!(entry["pending"]["value"], "pending");
        assert!(entry["pending"]["rotation_id"].is_string());
        assert_eq!(json["entries"]["hand-made"]["owner"], serde_json::Value::Null);
    }

    #[test]
    fn the_buffer_is_allocated_at_its_final_size() {
        let plaintext = encode(&sample());
        assert_eq!(plaintext.len(), plaintext.capacity());
    }

    #[test]
    fn json_without_the_marker_is_not_ours() {
        for text in [
            &b"not json"[..],
            br#"{"hello":"world"}"#,
            br#"{"format":"something-else","version":1,"entries":{}}"#,
            b"",
        ] {
            assert_eq!(decode(text), Err(FormatError::NotOurs));
        }
    }

    #[test]
    fn another_version_is_named() {
        let text = br#"{"format":"rotavault-file-store","version":2,"entries":{},"new":true}"#;
        assert_eq!(decode(text), Err(FormatError::UnknownVersion(2)));
    }

    #[test]
    fn an_unknown_field_is_malformed_and_the_message_quotes_no_value() {
        let text = br#"{"format":"rotavault-file-store","version":1,"entries":{"n":{"owner":"j","current":{"value":"s3cr3t","metadata":{"rotation_id":null,"rotated_at":"2026-03-01T12:00:00Z","generation":1},"extra":1},"previous":null,"pending":null}}}"#;
        let err = decode(text).expect_err("an unknown field");
        assert!(matches!(err, FormatError::Malformed { line: 1, .. }), "{err:?}");
        assert!(!format!("{err:?}").contains("s3cr3t"));
    }

    #[test]
    fn a_value_of_the_wrong_type_is_malformed_without_quoting_it() {
        let text = br#"{"format":"rotavault-file-store","version":1,"entries":{"n":{"owner":"s3cr3t","current":null,"previous":null,"pending":{"value":"v","rotation_id":"s3cr3t","metadata":{"rotation_id":null,"rotated_at":"2026-03-01T12:00:00Z","generation":1}}}}}"#;
        let err = decode(text).expect_err("an invalid rotation id");
        assert!(matches!(err, FormatError::Malformed { .. }), "{err:?}");
        assert!(!format!("{err:?}").contains("s3cr3t"));
    }
}
