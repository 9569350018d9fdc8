//! What rotavault records in the tags of each Key Vault version it writes: the owner, the [`Metadata`], where
//! the previous value is, and the state of a pending value.
//!
//! Key Vault tags belong to a version (not to the secret), so each version carries its own metadata and nothing
//! is ever pruned. A version of `NAME` (current) carries `managed-by`, `rotavault-job`, `rotation-id`,
//! `rotated-at`, `generation` and, when it replaced a value, `previous-version`; a version of `NAME-pending`
//! carries the same first five and `state` (`pending`, then `done` or `discarded`). That is six of the 15 tags
//! Key Vault allows per version, so a store may configure at most nine of its own ([`check_configured`]).

use crate::store::Metadata;
use crate::store::contract::{JOB_KEY, MANAGED_BY, MANAGED_BY_KEY, Owner};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};

pub(super) const ROTATION_ID_KEY: &str = "rotation-id";
pub(super) const ROTATED_AT_KEY: &str = "rotated-at";
pub(super) const GENERATION_KEY: &str = "generation";
pub(super) const PREVIOUS_KEY: &str = "previous-version";
pub(super) const STATE_KEY: &str = "state";

/// Key Vault's limit on tags per version.
pub(super) const MAX_TAGS: usize = 15;
/// The most tags rotavault itself writes on one version (both kinds write six).
pub(super) const OWN_TAGS: usize = 6;
/// Key Vault's limits on a tag's name and value.
const MAX_KEY_LEN: usize = 512;
const MAX_VALUE_LEN: usize = 256;

const RESERVED: [&str; 7] =
    [MANAGED_BY_KEY, JOB_KEY, ROTATION_ID_KEY, ROTATED_AT_KEY, GENERATION_KEY, PREVIOUS_KEY, STATE_KEY];

/// The life of a `NAME-pending` version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    Pending,
    /// Promoted: its value is now a version of `NAME`.
    Done,
    Discarded,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Done => "done",
            State::Discarded => "discarded",
        }
    }
}

/// Who a version says owns it: [`Owner::Job`] or [`Owner::Foreign`] (Key Vault has always spelled the job tag
/// the contract's way).
pub(super) fn owner(tags: &BTreeMap<String, String>) -> Owner<'_> {
    Owner::of_tags(tags, None)
}

pub(super) fn state(tags: &BTreeMap<String, String>) -> Option<&str> {
    tags.get(STATE_KEY).map(String::as_str)
}

/// The tags of a new version of `NAME`: configured ones first, so that rotavault's own always win.
pub(super) fn current(
    configured: &BTreeMap<String, String>,
    job: &str,
    metadata: &Metadata,
    previous_version: Option<&str>,
) -> BTreeMap<String, String> {
    let mut tags = common(configured, job, metadata);
    if let Some(version) = previous_version {
        tags.insert(PREVIOUS_KEY.into(), version.into());
    }
    tags
}

/// The tags of a `NAME-pending` version in `state`.
pub(super) fn pending(
    configured: &BTreeMap<String, String>,
    job: &str,
    metadata: &Metadata,
    state: State,
) -> BTreeMap<String, String> {
    let mut tags = common(configured, job, metadata);
    tags.insert(STATE_KEY.into(), state.as_str().into());
    tags
}

/// The same tags with another state: Key Vault replaces a version's whole tag set on update.
pub(super) fn with_state(tags: &BTreeMap<String, String>, state: State) -> BTreeMap<String, String> {
    let mut tags = tags.clone();
    tags.insert(STATE_KEY.into(), state.as_str().into());
    tags
}

fn common(configured: &BTreeMap<String, String>, job: &str, metadata: &Metadata) -> BTreeMap<String, String> {
    let mut tags = configured.clone();
    tags.insert(MANAGED_BY_KEY.into(), MANAGED_BY.into());
    tags.insert(JOB_KEY.into(), job.into());
    tags.insert(ROTATION_ID_KEY.into(), metadata.rotation_text().into());
    tags.insert(ROTATED_AT_KEY.into(), metadata.rotated_at_text());
    tags.insert(GENERATION_KEY.into(), metadata.generation.to_string());
    tags
}

/// The metadata a rotavault version carries; the error says what is wrong.
pub(super) fn metadata(tags: &BTreeMap<String, String>) -> Result<Metadata, String> {
    let get = |key: &str| tags.get(key).ok_or_else(|| format!("the tag `{key}` is missing"));
    let rotation_id = Metadata::rotation_from_text(get(ROTATION_ID_KEY)?)
        .map_err(|_| format!("the tag `{ROTATION_ID_KEY}` is not a rotation id"))?;
    let at = DateTime::parse_from_rfc3339(get(ROTATED_AT_KEY)?)
        .map_err(|_| format!("the tag `{ROTATED_AT_KEY}` is not an RFC 3339 time"))?
        .with_timezone(&Utc);
    let generation = get(GENERATION_KEY)?
        .parse::<u64>()
        .map_err(|_| format!("the tag `{GENERATION_KEY}` is not a number"))?;
    Ok(Metadata::new(rotation_id, at, generation))
}

/// Refuses configured tags that take rotavault's keys, that Key Vault would refuse, or that leave no room for
/// rotavault's own six within Key Vault's 15.
pub(super) fn check_configured(configured: &BTreeMap<String, String>) -> Result<(), String> {
    let clashes: Vec<&str> = configured.keys().map(String::as_str).filter(|k| RESERVED.contains(k)).collect();
    if !clashes.is_empty() {
        return Err(format!(
            "the configured tags {clashes:?} are written by rotavault itself ({}); remove them from the store's \
             `tags`",
            RESERVED.join(", ")
        ));
    }
    let room = MAX_TAGS - OWN_TAGS;
    if configured.len() > room {
        return Err(format!(
            "the store configures {} tags, and Key Vault allows {MAX_TAGS} per version, {OWN_TAGS} of which \
             rotavault writes itself: configure at most {room}",
            configured.len()
        ));
    }
    for (key, value) in configured {
        if key.is_empty() || key.chars().count() > MAX_KEY_LEN || value.chars().count() > MAX_VALUE_LEN {
            return Err(format!(
                "the configured tag `{key}`: Key Vault allows names of 1 to {MAX_KEY_LEN} characters and values \
                 of at most {MAX_VALUE_LEN}"
            ));
        }
    }
    Ok(())
}

/// A job name is written as a tag value, so Key Vault's limit on values applies to it.
pub(super) fn check_job(job: &str) -> Result<(), String> {
    if job.chars().count() <= MAX_VALUE_LEN {
        Ok(())
    } else {
        Err(format!(
            "the job name is longer than the {MAX_VALUE_LEN} characters a Key Vault tag value may hold"
        ))
    }
}

/// The SDK's shape.
pub(super) fn to_sdk(tags: &BTreeMap<String, String>) -> HashMap<String, String> {
    tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RotationId;
    use chrono::TimeZone;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 30, 15).single().expect("a valid date")
    }

    fn configured(n: usize) -> BTreeMap<String, String> {
        (0..n).map(|i| (format!("team-{i}"), "billing".to_owned())).collect()
    }

    #[test]
    fn metadata_round_trips_through_the_tags() {
        for m in [Metadata::new(Some(RotationId::new()), at(), 7), Metadata::new(None, at(), 1)] {
            assert_eq!(metadata(&current(&configured(2), "job", &m, Some("abc"))), Ok(m.clone()));
            assert_eq!(metadata(&pending(&BTreeMap::new(), "job", &m, State::Pending)), Ok(m));
        }
    }

    #[test]
    fn each_kind_of_version_carries_six_tags_of_its_own() {
        let m = Metadata::new(Some(RotationId::new()), at(), 3);
        let empty = BTreeMap::new();
        assert_eq!(current(&empty, "job", &m, Some("v1")).len(), OWN_TAGS);
        assert_eq!(pending(&empty, "job", &m, State::Pending).len(), OWN_TAGS);
        assert_eq!(current(&configured(9), "job", &m, Some("v1")).len(), MAX_TAGS);
        assert_eq!(pending(&configured(9), "job", &m, State::Pending).len(), MAX_TAGS);
    }

    #[test]
    fn configured_tags_leave_room_for_rotavaults_own() {
        assert!(check_configured(&configured(9)).is_ok());
        let err = check_configured(&configured(10)).expect_err("ten configured tags");
        assert!(err.contains("at most 9"), "{err}");
        for key in RESERVED {
            let clash: BTreeMap<String, String> = [(key.to_owned(), "x".to_owned())].into();
            assert!(check_configured(&clash).expect_err(key).contains(key));
        }
        let long: BTreeMap<String, String> = [("k".to_owned(), "v".repeat(257))].into();
        assert!(check_configured(&long).is_err());
    }

    #[test]
    fn ownership_needs_both_tags() {
        let m = Metadata::new(None, at(), 1);
        let tags = current(&BTreeMap::new(), "nightly", &m, None);
        assert_eq!(owner(&tags), Owner::Job("nightly"));
        let foreign: BTreeMap<String, String> = [(JOB_KEY.to_owned(), "nightly".to_owned())].into();
        assert_eq!(owner(&foreign), Owner::Foreign);
        assert_eq!(owner(&BTreeMap::new()), Owner::Foreign);
    }

    #[test]
    fn the_state_changes_and_nothing_else() {
        let m = Metadata::new(Some(RotationId::new()), at(), 2);
        let staged = pending(&configured(1), "job", &m, State::Pending);
        let done = with_state(&staged, State::Done);
        assert_eq!(state(&done), Some("done"));
        assert_eq!(done.len(), staged.len());
        assert_eq!(metadata(&done), Ok(m));
    }

    #[test]
    fn malformed_metadata_says_which_tag() {
        let m = Metadata::new(None, at(), 1);
        let mut tags = current(&BTreeMap::new(), "job", &m, None);
        tags.insert(GENERATION_KEY.into(), "many".into());
        assert!(metadata(&tags).expect_err("bad generation").contains(GENERATION_KEY));
        tags.remove(ROTATED_AT_KEY);
        assert!(metadata(&tags).expect_err("missing time").contains(ROTATED_AT_KEY));
    }
}
