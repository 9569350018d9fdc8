//! [`Pair`]: the latest versions of `NAME` and `NAME-pending`, read together, and every decision made from them.
//!
//! Each operation reads both secrets once (two GETs, concurrently) and decides from that: who owns the name,
//! what is current, what is pending. Older versions are read by the id a tag names, and a version's value never
//! changes, so what an operation reads stays consistent with its pair.
//!
//! **Ownership.** A version rotavault wrote says whose it is (`managed-by=rotavault`, `rotavault-job`); one it
//! did not write is foreign. The name belongs to the job when every version that says whose it is says this
//! job. A foreign `NAME` may be taken over with `adopt`, and stays taken over while an adopting `stage` has a
//! value pending for the job; it becomes the job's for good at the first promote or `write_current`, when
//! `NAME` gets a tagged version (a discard before that leaves it foreign again). A disabled latest version
//! cannot be read, so it says nothing about ownership.

use super::client::{Read, Version};
use super::errors::disabled;
use super::tags::{self, State};
use super::{BACKEND, pending_name};
use crate::store::contract::{self, Owner};
use crate::store::{Metadata, RotationId, SecretRef, StoreError};

pub(super) struct Pair {
    pub current: Read,
    pub pending: Read,
}

/// What a `NAME-pending` version holds when it is pending.
pub(super) struct Staged<'a> {
    pub version: &'a Version,
    pub rotation_id: RotationId,
    pub metadata: Metadata,
}

/// What a read says of ownership: nothing when there is no version to read.
fn owner_of(read: &Read) -> Owner<'_> {
    match read {
        Read::Found(version) => tags::owner(&version.tags),
        Read::Absent | Read::Disabled => Owner::Absent,
    }
}

fn malformed(name: &str, version: &str, why: String) -> StoreError {
    StoreError::Invalid {
        backend: BACKEND,
        detail: format!(
            "version {version} of `{name}` is tagged as rotavault's but its metadata is not readable: {why}"
        ),
    }
}

impl Pair {
    /// The contract's ownership rule, applied to the name's owner as the two secrets together say it (see the
    /// module documentation).
    pub fn check(&self, secret: &SecretRef) -> Result<(), StoreError> {
        let (current, pending) = (owner_of(&self.current), owner_of(&self.pending));
        // Another job's version on either side makes the name that job's, whatever the other side says.
        for owner in [current, pending] {
            if let Owner::Job(job) = owner
                && job != secret.job
            {
                return contract::check_owner(BACKEND, secret, owner).map(drop);
            }
        }
        let owner = match (current, pending) {
            // An adopting stage's pending value claims a foreign name for the job while it is pending.
            (_, Owner::Job(job)) => Owner::Job(job),
            (Owner::Foreign, _) | (_, Owner::Foreign) => Owner::Foreign,
            (Owner::Job(job), _) => Owner::Job(job),
            (Owner::Absent, Owner::Absent) => Owner::Absent,
        };
        contract::check_owner(BACKEND, secret, owner).map(drop)
    }

    /// The version that is current, with its metadata; `None` when `NAME` does not exist. A disabled latest
    /// version is an error: Key Vault will not serve it, and rotavault will not guess.
    pub fn current(&self, name: &str) -> Result<Option<(&Version, Metadata)>, StoreError> {
        match &self.current {
            Read::Absent => Ok(None),
            Read::Disabled => Err(disabled(name)),
            Read::Found(version) => Ok(Some((version, metadata_of(name, version)?))),
        }
    }

    /// The version `previous-version` names on the current one, if any.
    pub fn previous_version(&self) -> Option<&str> {
        match &self.current {
            Read::Found(version) if tags::owner(&version.tags) != Owner::Foreign => {
                version.tags.get(tags::PREVIOUS_KEY).map(String::as_str)
            }
            _ => None,
        }
    }

    /// The pending value: the latest `NAME-pending` version when it is enabled, rotavault's, and in state
    /// `pending`. A disabled one (promoted or discarded) or a foreign one is no pending.
    pub fn staged(&self, name: &str) -> Result<Option<Staged<'_>>, StoreError> {
        let Read::Found(version) = &self.pending else {
            return Ok(None);
        };
        if tags::owner(&version.tags) == Owner::Foreign
            || tags::state(&version.tags) != Some(State::Pending.as_str())
        {
            return Ok(None);
        }
        let pending = pending_name(name);
        let metadata = tags::metadata(&version.tags).map_err(|why| malformed(&pending, &version.id, why))?;
        let Some(rotation_id) = metadata.rotation_id.clone() else {
            return Err(malformed(&pending, &version.id, "a pending value without a rotation id".into()));
        };
        Ok(Some(Staged { version, rotation_id, metadata }))
    }
}

/// The metadata of a version of `NAME`: from its tags if rotavault wrote it, synthesized if not (adopted).
pub(super) fn metadata_of(name: &str, version: &Version) -> Result<Metadata, StoreError> {
    match tags::owner(&version.tags) {
        Owner::Job(_) => tags::metadata(&version.tags).map_err(|why| malformed(name, &version.id, why)),
        Owner::Foreign | Owner::Absent => Ok(Metadata::synthesized(version.created)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretValue;
    use chrono::{TimeZone, Utc};
    use std::collections::BTreeMap;

    fn at() -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 30, 15).single().expect("a valid date")
    }

    fn version(tags: BTreeMap<String, String>) -> Read {
        Read::Found(Version { id: "v1".into(), value: SecretValue::new("x"), tags, created: Some(at()) })
    }

    fn current_of(job: &str) -> Read {
        version(tags::current(&BTreeMap::new(), job, &Metadata::new(None, at(), 1), None))
    }

    fn pending_of(job: &str, state: State) -> Read {
        let m = Metadata::new(Some(RotationId::new()), at(), 2);
        version(tags::pending(&BTreeMap::new(), job, &m, state))
    }

    fn foreign() -> Read {
        version(BTreeMap::new())
    }

    fn mine() -> SecretRef {
        SecretRef::new("app-key", "nightly")
    }

    fn is_not_owned(result: Result<(), StoreError>) -> bool {
        matches!(result, Err(StoreError::NotOwned { .. }))
    }

    #[test]
    fn ownership_follows_the_contract() {
        let owned = Pair { current: current_of("nightly"), pending: Read::Absent };
        assert!(owned.check(&mine()).is_ok());
        let theirs = Pair { current: current_of("other"), pending: Read::Absent };
        assert!(is_not_owned(theirs.check(&mine())));
        assert!(is_not_owned(theirs.check(&mine().adopting())));
        let by_hand = Pair { current: foreign(), pending: Read::Absent };
        assert!(is_not_owned(by_hand.check(&mine())));
        assert!(by_hand.check(&mine().adopting()).is_ok());
        let nothing = Pair { current: Read::Absent, pending: Read::Absent };
        assert!(nothing.check(&mine()).is_ok());
    }

    #[test]
    fn an_adopting_stage_claims_the_name() {
        let claimed = Pair { current: foreign(), pending: pending_of("nightly", State::Pending) };
        assert!(claimed.check(&mine()).is_ok());
        let other = Pair { current: foreign(), pending: pending_of("other", State::Pending) };
        assert!(is_not_owned(other.check(&mine().adopting())));
    }

    #[test]
    fn a_foreign_pending_name_needs_adopt() {
        let pair = Pair { current: Read::Absent, pending: foreign() };
        assert!(is_not_owned(pair.check(&mine())));
        assert!(pair.check(&mine().adopting()).is_ok());
        assert!(pair.staged("app-key").expect("readable").is_none());
    }

    #[test]
    fn only_an_enabled_version_in_state_pending_is_pending() {
        let pending = Pair { current: Read::Absent, pending: pending_of("nightly", State::Pending) };
        assert!(pending.staged("app-key").expect("readable").is_some());
        for state in [State::Done, State::Discarded] {
            let pair = Pair { current: Read::Absent, pending: pending_of("nightly", state) };
            assert!(pair.staged("app-key").expect("readable").is_none());
        }
        let disabled = Pair { current: Read::Absent, pending: Read::Disabled };
        assert!(disabled.staged("app-key").expect("readable").is_none());
    }

    #[test]
    fn a_disabled_current_is_invalid() {
        let pair = Pair { current: Read::Disabled, pending: Read::Absent };
        let err = pair.current("app-key").err().expect("disabled");
        assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
        assert!(err.to_string().contains("disabled"), "{err}");
    }

    #[test]
    fn an_adopted_current_has_synthesized_metadata_and_no_previous() {
        let pair = Pair { current: foreign(), pending: Read::Absent };
        let (_, metadata) = pair.current("app-key").expect("readable").expect("present");
        assert_eq!(metadata, Metadata::new(None, at(), 0));
        assert_eq!(pair.previous_version(), None);
    }
}
