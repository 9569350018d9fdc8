//! [`Snapshot`]: one `DescribeSecret` answer, and every decision made from it.
//!
//! Each operation describes the secret once and decides from that one answer: who owns it, whether it is
//! scheduled for deletion, which version holds which staging label, and each version's metadata tag. Values are
//! then read by the version id the snapshot names (a version's value never changes), so a read is consistent
//! with the snapshot even if a label moves meanwhile.
//!
//! The slots map to AWS's staging labels: current = `AWSCURRENT`, previous = `AWSPREVIOUS`, pending =
//! `AWSPENDING`. One more label is rotavault's own ([`WRITING`], held by a new version only until a stage or
//! `write_current` has moved AWS's label to it), and one kind of version is too: the
//! [placeholder](is_placeholder) a secret is created with.

use super::BACKEND;
use super::errors::scheduled_for_deletion;
use super::metadata::{self, LEGACY_JOB_KEY};
use crate::store::contract::{self, Owner, Ownership};
use crate::store::{Metadata, SecretRef, StoreError};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};

pub(super) const CURRENT: &str = "AWSCURRENT";
pub(super) const PREVIOUS: &str = "AWSPREVIOUS";
pub(super) const PENDING: &str = "AWSPENDING";
/// The label a stage or `write_current` puts its new version under before moving `AWSPENDING` or `AWSCURRENT`
/// to it: a put naming `AWSPENDING` would take it from a rival stage that already holds it, and a put with no
/// label would default to `AWSCURRENT` (and moto then can leave two versions labelled `AWSCURRENT`).
pub(super) const WRITING: &str = "rotavault-writing";

/// Version ids of placeholders start with this (and go on with 32 hex digits: 48 characters, inside AWS's 32–64).
const PLACEHOLDER_PREFIX: &str = "rotavault-empty-";

/// The value of a placeholder version, for whoever reads `AWSCURRENT` before the first promote.
pub(super) const PLACEHOLDER_VALUE: &str =
    "rotavault: no value yet (this secret's first rotation has not been promoted)";

/// A fresh placeholder version id.
pub(super) fn placeholder_id() -> String {
    format!("{PLACEHOLDER_PREFIX}{}", uuid::Uuid::new_v4().simple())
}

/// Whether a version is a placeholder: the version a secret is created with so that it always has an
/// `AWSCURRENT`. AWS (and moto) attach `AWSCURRENT` to a secret's first version whatever the put asks for; if
/// the first version were the first staged value, an unverified value would be current for every AWS-native
/// reader, and a discard could not take it back (`AWSCURRENT` can only be moved, never removed). A slot holding
/// a placeholder reads as empty. The mark is the version id itself, so it cannot be lost with a tag.
pub(super) fn is_placeholder(version_id: &str) -> bool {
    version_id.starts_with(PLACEHOLDER_PREFIX)
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Snapshot {
    pub tags: BTreeMap<String, String>,
    /// Version id → its staging labels.
    pub labels: BTreeMap<String, BTreeSet<String>>,
    pub deleted: Option<DateTime<Utc>>,
}

impl Snapshot {
    /// The contract's ownership rule, then the deletion check: a secret scheduled for deletion can be neither
    /// read nor written until someone restores it.
    pub fn check(&self, secret: &SecretRef) -> Result<Ownership, StoreError> {
        let ownership =
            contract::check_owner(BACKEND, secret, Owner::of_tags(&self.tags, Some(LEGACY_JOB_KEY)))?;
        if self.deleted.is_some() {
            return Err(scheduled_for_deletion(&secret.name));
        }
        Ok(ownership)
    }

    /// The version holding `label`. Two versions holding one of AWS's labels is a broken secret (AWS never
    /// allows it; moto can be led into it), and an error rather than a guess.
    pub fn holder(&self, label: &str, name: &str) -> Result<Option<&str>, StoreError> {
        match self.holders(label)[..] {
            [] => Ok(None),
            [id] => Ok(Some(id)),
            [a, b, ..] => Err(StoreError::Invalid {
                backend: BACKEND,
                detail: format!("`{name}` has two versions labelled {label} ({a} and {b})"),
            }),
        }
    }

    /// Every version holding `label`: one when all is well, and more only while a label is contended (moto,
    /// unlike AWS, lets a second attach of `AWSPENDING` succeed; see `write`).
    pub fn holders(&self, label: &str) -> Vec<&str> {
        self.labels.iter().filter(|(_, labels)| labels.contains(label)).map(|(id, _)| id.as_str()).collect()
    }

    pub fn has_version(&self, version_id: &str) -> bool {
        self.labels.contains_key(version_id)
    }

    /// The metadata rotavault recorded for a version: `None` if it recorded none.
    pub fn metadata(&self, version_id: &str, name: &str) -> Result<Option<Metadata>, StoreError> {
        let Some(text) = self.tags.get(&metadata::version_key(version_id)) else {
            return Ok(None);
        };
        Metadata::decode(text).map(Some).map_err(|why| StoreError::Invalid {
            backend: BACKEND,
            detail: format!(
                "the tag `{}` of `{name}`: {why}; delete the tag to have the version read as untracked",
                metadata::version_key(version_id)
            ),
        })
    }

    /// Whether rotavault staged `version_id`: it wrote the version's metadata tag first, and it is no
    /// placeholder. Any other version is some other tool's.
    pub fn tracked(&self, version_id: &str) -> bool {
        self.tags.contains_key(&metadata::version_key(version_id)) && !is_placeholder(version_id)
    }

    /// The versions whose metadata tags are kept: those holding one of the three slots.
    pub fn kept_versions(&self) -> BTreeSet<&str> {
        self.labels
            .iter()
            .filter(|(_, labels)| [CURRENT, PREVIOUS, PENDING].iter().any(|l| labels.contains(*l)))
            .map(|(id, _)| id.as_str())
            .collect()
    }

    /// Applies `UpdateSecretVersionStage(label, MoveToVersionId = to, RemoveFromVersionId = from)` to the
    /// snapshot, as AWS applies it to the secret: moving `AWSCURRENT` away from a version gives that version
    /// `AWSPREVIOUS` (taken from whoever had it), and the version receiving `AWSCURRENT` loses `AWSPREVIOUS`.
    /// Used to know which metadata tags a write leaves stale without describing the secret again.
    pub fn move_label(&mut self, label: &str, to: Option<&str>, from: Option<&str>) {
        if let Some(from) = from
            && let Some(labels) = self.labels.get_mut(from)
        {
            labels.remove(label);
        }
        if let Some(to) = to {
            self.labels.entry(to.to_owned()).or_default().insert(label.to_owned());
        }
        if label == CURRENT {
            if let Some(from) = from {
                for labels in self.labels.values_mut() {
                    labels.remove(PREVIOUS);
                }
                if let Some(labels) = self.labels.get_mut(from) {
                    labels.insert(PREVIOUS.to_owned());
                }
            }
            if let Some(to) = to
                && let Some(labels) = self.labels.get_mut(to)
            {
                labels.remove(PREVIOUS);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contract::{JOB_KEY, MANAGED_BY, MANAGED_BY_KEY};

    fn snapshot(tags: &[(&str, &str)], labels: &[(&str, &[&str])]) -> Snapshot {
        Snapshot {
            tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            labels: labels
                .iter()
                .map(|(id, ls)| (id.to_string(), ls.iter().map(|l| l.to_string()).collect()))
                .collect(),
            deleted: None,
        }
    }

    fn mine() -> SecretRef {
        SecretRef::new("app/key", "nightly")
    }

    #[test]
    fn ownership_follows_the_contract() {
        let owned = snapshot(&[(MANAGED_BY_KEY, MANAGED_BY), (JOB_KEY, "nightly")], &[]);
        assert_eq!(owned.check(&mine()), Ok(Ownership::Owned));
        assert_eq!(owned.check(&mine().adopting()), Ok(Ownership::Owned));

        let foreign = snapshot(&[("team", "billing")], &[]);
        assert!(matches!(foreign.check(&mine()), Err(StoreError::NotOwned { owner: None, .. })));
        assert_eq!(foreign.check(&mine().adopting()), Ok(Ownership::Adoptable));

        let theirs = snapshot(&[(MANAGED_BY_KEY, MANAGED_BY), (JOB_KEY, "other")], &[]);
        for secret in [mine(), mine().adopting()] {
            let err = theirs.check(&secret).expect_err("another job's secret");
            assert!(
                matches!(err, StoreError::NotOwned { owner: Some(ref o), .. } if o == "other"),
                "{err:?}"
            );
        }
    }

    #[test]
    fn the_job_tag_an_older_rotavault_wrote_still_says_whose_a_secret_is() {
        let legacy = snapshot(&[(MANAGED_BY_KEY, MANAGED_BY), (LEGACY_JOB_KEY, "nightly")], &[]);
        assert_eq!(legacy.check(&mine()), Ok(Ownership::Owned));
        let theirs = snapshot(&[(MANAGED_BY_KEY, MANAGED_BY), (LEGACY_JOB_KEY, "other")], &[]);
        assert!(matches!(theirs.check(&mine().adopting()), Err(StoreError::NotOwned { owner: Some(_), .. })));
    }

    #[test]
    fn a_secret_scheduled_for_deletion_is_invalid_for_its_owner() {
        let mut owned = snapshot(&[(MANAGED_BY_KEY, MANAGED_BY), (JOB_KEY, "nightly")], &[]);
        owned.deleted = Some(Utc::now());
        let err = owned.check(&mine()).expect_err("deleted");
        assert!(err.to_string().contains("restore-secret --secret-id app/key"), "{err}");
    }

    #[test]
    fn two_holders_of_a_label_are_an_error() {
        let s = snapshot(&[], &[("a", &[CURRENT]), ("b", &[CURRENT, PENDING]), ("c", &[])]);
        assert!(s.holder(CURRENT, "n").is_err());
        assert_eq!(s.holder(PENDING, "n"), Ok(Some("b")));
        assert_eq!(s.holder(PREVIOUS, "n"), Ok(None));
    }

    #[test]
    fn moving_current_makes_the_old_current_previous() {
        let mut s = snapshot(&[], &[("old", &[PREVIOUS]), ("cur", &[CURRENT]), ("new", &[PENDING])]);
        s.move_label(CURRENT, Some("new"), Some("cur"));
        s.move_label(PENDING, None, Some("new"));
        assert_eq!(s.holder(CURRENT, "n"), Ok(Some("new")));
        assert_eq!(s.holder(PREVIOUS, "n"), Ok(Some("cur")));
        assert_eq!(s.holder(PENDING, "n"), Ok(None));
        assert_eq!(s.kept_versions(), ["cur", "new"].into());
    }

    #[test]
    fn moving_current_to_the_previous_version_takes_its_previous_label() {
        let mut s = snapshot(&[], &[("old", &[PREVIOUS]), ("cur", &[CURRENT])]);
        s.move_label(CURRENT, Some("old"), Some("cur"));
        assert_eq!(s.holder(CURRENT, "n"), Ok(Some("old")));
        assert_eq!(s.holder(PREVIOUS, "n"), Ok(Some("cur")));
    }

    #[test]
    fn placeholders_are_marked_by_their_version_id() {
        let id = placeholder_id();
        assert!(is_placeholder(&id));
        assert!((32..=64).contains(&id.len()), "{id}");
        assert!(!is_placeholder(crate::store::RotationId::new().as_str()));
    }

    #[test]
    fn metadata_is_read_from_the_version_tag() {
        let s = snapshot(
            &[("rotavault:v:abc", "3/2026-03-01T12:30:15Z/imported"), ("rotavault:v:bad", "x")],
            &[],
        );
        assert_eq!(s.metadata("abc", "n").expect("valid").map(|m| m.generation), Some(3));
        assert_eq!(s.metadata("none", "n"), Ok(None));
        assert!(s.metadata("bad", "n").is_err());
    }
}
