//! The JSON pieces every file-store document shares: slots, metadata and secret text as they are spelled on disk,
//! and strict, versioned parsing that never quotes a value in an error.
//!
//! The documents are the file store's on-disk contract with operators (who may decrypt a file with `age -d` in an
//! emergency) and with future versions of rotavault, so they are spelled out in private serde structs rather than
//! derived from the in-memory types: renaming a field of [`Metadata`] must not silently change what is on disk.
//!
//! Reading is strict: an unknown field is an error, because an older rotavault that dropped a field it did not
//! understand would lose it on its next write.

use crate::secret::SecretValue;
use crate::store::{Metadata, Pending, PendingSummary, RotationId, Stored};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::io;
use zeroize::Zeroizing;

/// Why a decrypted plaintext is not a document this rotavault can use. Carries no text from the document, so that
/// it can never carry a secret into a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    /// Not JSON, or JSON without the expected format marker.
    NotOurs,
    /// Our format, at a version this rotavault does not know.
    UnknownVersion(u64),
    /// Our format and version, but not the shape it promises.
    Malformed { line: usize, column: usize, category: &'static str },
}

/// Serializes `document` into a buffer that is zeroized when dropped.
pub fn encode<T: Serialize>(document: &T) -> Zeroizing<Vec<u8>> {
    // A `Vec` that grows leaves copies of the plaintext behind in freed memory, where zeroizing cannot reach them.
    // Measuring first lets the buffer be allocated once at its final size.
    let mut counter = ByteCounter(0);
    let measured = serde_json::to_writer(&mut counter, document);
    let mut plaintext = Zeroizing::new(Vec::with_capacity(counter.0));
    // Serializing plain structs of strings, integers and timestamps into memory cannot fail; a failure would be a
    // bug in this module, not a condition to report.
    measured
        .and_then(|()| serde_json::to_writer(&mut *plaintext, document))
        .expect("a file store document always serializes");
    plaintext
}

/// Parses a document whose `format` must be `format` and whose `version` must be `version`.
pub fn decode<T: DeserializeOwned>(plaintext: &[u8], format: &str, version: u64) -> Result<T, FormatError> {
    // The marker and version are read on their own first, so that a document from another tool or a newer
    // rotavault gets a message about that instead of a parse error about some field.
    let header: Header = serde_json::from_slice(plaintext).map_err(|_| FormatError::NotOurs)?;
    if header.format != format {
        return Err(FormatError::NotOurs);
    }
    if header.version != version {
        return Err(FormatError::UnknownVersion(header.version));
    }
    // serde_json's messages can quote the offending value, which may be a secret: keep only its position.
    serde_json::from_slice(plaintext).map_err(|e| FormatError::Malformed {
        line: e.line(),
        column: e.column(),
        category: match e.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "not valid JSON",
            serde_json::error::Category::Data => "unexpected field or value",
            serde_json::error::Category::Eof => "cut short",
        },
    })
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
pub struct StoredDoc {
    value: SecretText,
    metadata: MetadataDoc,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingDoc {
    value: SecretText,
    rotation_id: RotationId,
    metadata: MetadataDoc,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataDoc {
    rotation_id: Option<RotationId>,
    #[serde(deserialize_with = "crate::rfc3339::deserialize")]
    rotated_at: DateTime<Utc>,
    generation: u64,
}

/// The pending slot without its value, as the plaintext metadata file keeps it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingMetaDoc {
    rotation_id: RotationId,
    metadata: MetadataDoc,
}

/// A secret's text while it is part of a document: zeroized when the document is dropped. `SecretValue` has no
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

impl StoredDoc {
    pub fn from_stored(stored: &Stored) -> Self {
        Self {
            value: SecretText::from_value(&stored.value),
            metadata: MetadataDoc::from_metadata(&stored.metadata),
        }
    }

    pub fn into_stored(self) -> Stored {
        Stored { value: self.value.into_value(), metadata: self.metadata.into_metadata() }
    }
}

impl PendingDoc {
    pub fn from_pending(pending: &Pending) -> Self {
        Self {
            value: SecretText::from_value(&pending.value),
            rotation_id: pending.rotation_id.clone(),
            metadata: MetadataDoc::from_metadata(&pending.metadata),
        }
    }

    pub fn into_pending(self) -> Pending {
        Pending {
            value: self.value.into_value(),
            rotation_id: self.rotation_id,
            metadata: self.metadata.into_metadata(),
        }
    }
}

impl PendingMetaDoc {
    pub fn from_pending(pending: &Pending) -> Self {
        Self {
            rotation_id: pending.rotation_id.clone(),
            metadata: MetadataDoc::from_metadata(&pending.metadata),
        }
    }

    pub fn into_summary(self) -> PendingSummary {
        PendingSummary { rotation_id: self.rotation_id, metadata: self.metadata.into_metadata() }
    }
}

impl MetadataDoc {
    pub fn from_metadata(metadata: &Metadata) -> Self {
        Self {
            rotation_id: metadata.rotation_id.clone(),
            rotated_at: metadata.rotated_at,
            generation: metadata.generation,
        }
    }

    pub fn into_metadata(self) -> Metadata {
        // Built field by field rather than with `Metadata::new`, which would round the time: what was written is
        // what is read.
        Metadata { rotation_id: self.rotation_id, rotated_at: self.rotated_at, generation: self.generation }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        format: String,
        version: u64,
        owner: Option<String>,
    }

    #[test]
    fn the_buffer_is_allocated_at_its_final_size() {
        let plaintext = encode(&Sample { format: "f".into(), version: 1, owner: Some("job".into()) });
        assert_eq!(plaintext.len(), plaintext.capacity());
    }

    #[test]
    fn json_without_the_marker_is_not_ours() {
        for text in [&b"not json"[..], br#"{"hello":"world"}"#, br#"{"format":"g","version":1}"#, b""] {
            assert_eq!(decode::<Sample>(text, "f", 1), Err(FormatError::NotOurs));
        }
    }

    #[test]
    fn another_version_is_named() {
        let text = br#"{"format":"f","version":3,"new":true}"#;
        assert_eq!(decode::<Sample>(text, "f", 1), Err(FormatError::UnknownVersion(3)));
    }

    #[test]
    fn an_unknown_field_is_malformed_and_the_message_quotes_no_value() {
        let text = br#"{"format":"f","version":1,"owner":"j","s3cr3t":1}"#;
        let err = decode::<Sample>(text, "f", 1).expect_err("an unknown field");
        assert!(matches!(err, FormatError::Malformed { line: 1, .. }), "{err:?}");
        assert!(!format!("{err:?}").contains("s3cr3t"));
    }
}
