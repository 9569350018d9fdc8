//! What rotavault records in Vault: ownership and per-version [`Metadata`] in a path's `custom_metadata`, and
//! the pending companion's document.
//!
//! KV v2's `custom_metadata` belongs to the whole path, not to a version, and `data` belongs to the consumers
//! (they read `data.value` and nothing of ours), so the metadata of each version is kept in `custom_metadata`
//! **keyed by version number**: `v<N>` = `<generation>/<rotated-at, RFC 3339 seconds>/<rotation id | imported>`.
//! Only the current and previous versions keep a key (older ones are pruned on every write), so a path carries
//! at most two, well inside Vault's limits (64 keys, 128-byte keys, 512-byte values). Beside them, for people
//! and tools: the owner (`managed-by` = `rotavault`, `rotavault-job` = the job; a path claimed before that
//! spelling carries `job` instead, which is still read and left in place), and the current value's
//! `rotation-id`, `rotated-at` and `generation`. A version without a key (one that was there before rotavault
//! adopted the path) reads as [`Metadata::synthesized`]: no rotation, generation 0, and the version's
//! `created_time`.
//!
//! The pending companion (`PATH` + suffix) is read only by rotavault, so its `data` holds everything: the state
//! (`pending` or `cleared`), the rotation id, the value and the encoded metadata. Clearing writes a new
//! `cleared` version that holds no value; the companion keeps one version (`max_versions = 1`), so Vault drops
//! the pending value itself as soon as the marker is written.

use crate::secret::SecretValue;
use crate::store::contract::{self, JOB_KEY, MANAGED_BY, MANAGED_BY_KEY, Owner, Ownership};
use crate::store::{Metadata, Pending, RotationId, SecretRef, StoreError};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// How rotavault spelled the job key in Vault before every backend wrote [`JOB_KEY`]: still read on the paths it
/// claimed then, never written (and never removed, so that an older rotavault still reads those paths).
const LEGACY_JOB_KEY: &str = "job";
/// The current value's metadata, spelled out for people (rotavault reads the `v<N>` keys).
const ROTATION_ID_KEY: &str = "rotation-id";
const ROTATED_AT_KEY: &str = "rotated-at";
const GENERATION_KEY: &str = "generation";

/// The key of the consumers' value in `data`.
pub(super) const VALUE_FIELD: &str = "value";
/// The companion's fields.
const STATE_FIELD: &str = "rotavault";
const ID_FIELD: &str = "rotation_id";
const METADATA_FIELD: &str = "metadata";
const PENDING: &str = "pending";
const CLEARED: &str = "cleared";

pub(super) fn version_key(version: u64) -> String {
    format!("v{version}")
}

/// The version a `custom_metadata` key is about, if it is one of ours.
pub(super) fn version_of(key: &str) -> Option<u64> {
    let digits = key.strip_prefix('v')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Vault's timestamps (RFC 3339 with nanoseconds); `None` for the empty string Vault uses for "never".
pub(super) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

/// Checks that `secret`'s job may touch a path whose metadata is `custom` (`None`: the path does not exist).
pub(super) fn ownership(
    backend: &'static str,
    secret: &SecretRef,
    custom: Option<&BTreeMap<String, String>>,
) -> Result<Ownership, StoreError> {
    let owner = custom.map_or(Owner::Absent, |custom| Owner::of_tags(custom, Some(LEGACY_JOB_KEY)));
    contract::check_owner(backend, secret, owner)
}

/// The ownership keys that make a path `job`'s.
pub(super) fn claim(job: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(MANAGED_BY_KEY.to_owned(), MANAGED_BY.to_owned()), (JOB_KEY.to_owned(), job.to_owned())])
}

/// The merge-patch of `custom_metadata` after `version` was written with `metadata`: ownership, the version's
/// key, the current value's readable keys, and `null` (delete) for the keys of versions other than `version`
/// and `keep` (the previous one).
pub(super) fn after_write(
    job: &str,
    existing: &BTreeMap<String, String>,
    version: u64,
    keep: Option<u64>,
    metadata: &Metadata,
) -> BTreeMap<String, Option<String>> {
    let mut patch: BTreeMap<String, Option<String>> =
        claim(job).into_iter().map(|(k, v)| (k, Some(v))).collect();
    for key in existing.keys() {
        if let Some(v) = version_of(key)
            && v != version
            && Some(v) != keep
        {
            patch.insert(key.clone(), None);
        }
    }
    patch.insert(version_key(version), Some(metadata.encode()));
    patch.insert(ROTATION_ID_KEY.to_owned(), Some(metadata.rotation_text().to_owned()));
    patch.insert(ROTATED_AT_KEY.to_owned(), Some(metadata.rotated_at_text()));
    patch.insert(GENERATION_KEY.to_owned(), Some(metadata.generation.to_string()));
    patch
}

/// The consumers' document: `{"value": <payload>}`.
pub(super) fn value_data(value: &SecretValue) -> Map<String, Value> {
    Map::from_iter([(VALUE_FIELD.to_owned(), Value::String(value.expose().to_owned()))])
}

/// The value in a version's `data`; the error says what is wrong.
pub(super) fn value_of(data: &Map<String, Value>) -> Result<SecretValue, String> {
    match data.get(VALUE_FIELD) {
        Some(Value::String(text)) => Ok(SecretValue::new(text.clone())),
        Some(_) => Err(format!("its `{VALUE_FIELD}` is not a string")),
        None => {
            let keys = data.keys().map(String::as_str).collect::<Vec<_>>().join(", ");
            Err(format!(
                "it has no `{VALUE_FIELD}` field (its fields: {keys}); rotavault reads and writes `data.{VALUE_FIELD}`"
            ))
        }
    }
}

/// The companion's document while `rotation_id` is pending.
pub(super) fn pending_data(
    value: &SecretValue,
    rotation_id: &RotationId,
    metadata: &Metadata,
) -> Map<String, Value> {
    Map::from_iter([
        (STATE_FIELD.to_owned(), Value::String(PENDING.to_owned())),
        (ID_FIELD.to_owned(), Value::String(rotation_id.as_str().to_owned())),
        (VALUE_FIELD.to_owned(), Value::String(value.expose().to_owned())),
        (METADATA_FIELD.to_owned(), Value::String(metadata.encode())),
    ])
}

/// The companion's document once `rotation_id` was promoted or discarded: no value.
pub(super) fn cleared_data(rotation_id: &RotationId, how: &str) -> Map<String, Value> {
    Map::from_iter([
        (STATE_FIELD.to_owned(), Value::String(CLEARED.to_owned())),
        (ID_FIELD.to_owned(), Value::String(rotation_id.as_str().to_owned())),
        ("how".to_owned(), Value::String(how.to_owned())),
    ])
}

/// What a companion version holds: `Some` pending value, or `None` once cleared (or when it is not ours).
pub(super) fn read_pending(data: &Map<String, Value>) -> Result<Option<Pending>, String> {
    let text = |field: &str| match data.get(field) {
        Some(Value::String(text)) => Ok(text.as_str()),
        _ => Err(format!("the pending companion has no `{field}` string")),
    };
    if data.get(STATE_FIELD).and_then(Value::as_str) != Some(PENDING) {
        return Ok(None);
    }
    let rotation_id = RotationId::parse(text(ID_FIELD)?)?;
    let metadata = Metadata::decode(text(METADATA_FIELD)?)?;
    let value = SecretValue::new(text(VALUE_FIELD)?);
    Ok(Some(Pending { value, rotation_id, metadata }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 30, 15).single().expect("a valid time")
    }

    #[test]
    fn metadata_fits_a_custom_metadata_value() {
        let m = Metadata::new(Some(RotationId::new()), at(), u64::MAX);
        assert!(m.encode().len() <= 512, "a custom_metadata value is at most 512 bytes");
    }

    #[test]
    fn version_keys_are_only_v_and_digits() {
        assert_eq!(version_of(&version_key(12)), Some(12));
        for key in ["v", "vx", "job", "version", "v1a", "managed-by"] {
            assert_eq!(version_of(key), None, "{key}");
        }
    }

    #[test]
    fn a_write_prunes_all_but_current_and_previous() {
        let mut existing = claim("job-a");
        for v in [1, 2, 3] {
            existing.insert(version_key(v), Metadata::new(None, at(), v).encode());
        }
        existing.insert("owner-team".into(), "payments".into());
        let m = Metadata::new(Some(RotationId::new()), at(), 4);
        let patch = after_write("job-a", &existing, 4, Some(3), &m);
        assert_eq!(patch.get("v1"), Some(&None));
        assert_eq!(patch.get("v2"), Some(&None));
        assert!(!patch.contains_key("v3"), "the previous version's key stays");
        assert_eq!(patch.get("v4"), Some(&Some(m.encode())));
        assert!(!patch.contains_key("owner-team"), "keys that are not rotavault's are left alone");
        assert_eq!(patch.get(MANAGED_BY_KEY), Some(&Some(MANAGED_BY.to_owned())));
        assert_eq!(patch.get("generation"), Some(&Some("4".to_owned())));
    }

    #[test]
    fn ownership_follows_managed_by_and_job() {
        let mine = SecretRef::new("app", "job-a");
        assert_eq!(ownership("t", &mine, None), Ok(Ownership::Absent));
        assert_eq!(ownership("t", &mine, Some(&claim("job-a"))), Ok(Ownership::Owned));
        let foreign = BTreeMap::from([("team".to_owned(), "x".to_owned())]);
        assert!(matches!(
            ownership("t", &mine, Some(&foreign)),
            Err(StoreError::NotOwned { owner: None, .. })
        ));
        assert_eq!(ownership("t", &mine.clone().adopting(), Some(&foreign)), Ok(Ownership::Adoptable));
        let theirs = claim("job-b");
        assert!(matches!(
            ownership("t", &mine.clone().adopting(), Some(&theirs)),
            Err(StoreError::NotOwned { owner: Some(_), .. })
        ));
        // A path claimed before the job key was spelled `rotavault-job`.
        let legacy = BTreeMap::from([
            (MANAGED_BY_KEY.to_owned(), MANAGED_BY.to_owned()),
            (LEGACY_JOB_KEY.to_owned(), "job-a".to_owned()),
        ]);
        assert_eq!(ownership("t", &mine, Some(&legacy)), Ok(Ownership::Owned));
        assert!(claim("job-a").contains_key(JOB_KEY) && !claim("job-a").contains_key(LEGACY_JOB_KEY));
    }

    #[test]
    fn the_companion_round_trips_and_a_cleared_one_holds_no_value() {
        let id = RotationId::new();
        let m = Metadata::new(Some(id.clone()), at(), 2);
        let value = SecretValue::new("p@ss\n\"w0rd\"");
        let read = read_pending(&pending_data(&value, &id, &m)).expect("readable").expect("pending");
        assert_eq!((read.value, read.rotation_id, read.metadata), (value, id.clone(), m));
        let cleared = cleared_data(&id, "promoted");
        assert!(!cleared.contains_key(VALUE_FIELD));
        assert_eq!(read_pending(&cleared), Ok(None));
    }

    #[test]
    fn a_value_must_be_a_string_field() {
        let v = value_data(&SecretValue::new("abc"));
        assert_eq!(value_of(&v).map(|s| s.expose().to_owned()), Ok("abc".to_owned()));
        let other = Map::from_iter([("password".to_owned(), Value::String("x".into()))]);
        let err = value_of(&other).err().unwrap_or_default();
        assert!(err.contains("password") && !err.contains("\"x\""), "{err}");
    }
}
