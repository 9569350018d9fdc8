//! What rotavault records in a secret's tags: its owner, and the [`Metadata`](crate::store::Metadata) of each
//! version it keeps.
//!
//! The owner is the contract's pair of tags, `managed-by` = `rotavault` and `rotavault-job` = the job; a secret
//! tagged before that spelling carries `rotavault:job` instead, which is still read.
//!
//! Secrets Manager has no per-version tags or attributes, and the value itself belongs to the consumers (an
//! AWS-native reader must get exactly the secret), so metadata lives in **secret-level tags keyed by version
//! id**: `rotavault:v:<version-id>` = `<generation>/<rotated-at, RFC 3339 seconds>/<rotation id | imported>`.
//! The separator is `/` because AWS documents `+ - = . _ : / @`, letters, digits and spaces as the characters
//! tags may use everywhere; `|` is not among them.
//!
//! The tag of a version is written **before** the version is put, so a version never exists without its
//! metadata; a write that fails afterwards leaves a stale tag behind, which the next write prunes. Tags are
//! pruned for every version that is no longer current, previous or pending, so that at rest a secret carries at
//! most three of them (AWS allows 50 tags per secret; [`check_budget`] refuses a write that would pass that).

use crate::store::contract::{JOB_KEY, MANAGED_BY, MANAGED_BY_KEY};
use std::collections::{BTreeMap, BTreeSet};

/// How rotavault spelled the job tag on AWS before every backend wrote [`JOB_KEY`]: still read on the secrets it
/// tagged then (a secret keeps its ownership tags for life), never written.
pub(super) const LEGACY_JOB_KEY: &str = "rotavault:job";
/// Prefix of the per-version metadata tags.
pub(super) const VERSION_PREFIX: &str = "rotavault:v:";
/// AWS's limit on tags per secret.
pub(super) const MAX_TAGS: usize = 50;

pub(super) fn version_key(version_id: &str) -> String {
    format!("{VERSION_PREFIX}{version_id}")
}

/// The version id a tag key is about, if it is one of ours.
pub(super) fn version_of(key: &str) -> Option<&str> {
    key.strip_prefix(VERSION_PREFIX)
}

/// The tags that make a secret `job`'s: the configured ones, then ours (which the configured ones may not name;
/// see [`reserved`]).
pub(super) fn ownership(job: &str, configured: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut tags = configured.clone();
    tags.insert(MANAGED_BY_KEY.to_owned(), MANAGED_BY.to_owned());
    tags.insert(JOB_KEY.to_owned(), job.to_owned());
    tags
}

/// The configured tag keys that would overwrite rotavault's own; an error if there are any.
pub(super) fn reserved(configured: &BTreeMap<String, String>) -> Result<(), String> {
    let clashes: Vec<&str> = configured
        .keys()
        .map(String::as_str)
        .filter(|k| {
            *k == MANAGED_BY_KEY || *k == JOB_KEY || k.starts_with("rotavault:") || k.starts_with("aws:")
        })
        .collect();
    if clashes.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the configured tags {clashes:?} are reserved (`{MANAGED_BY_KEY}`, `{JOB_KEY}`, `rotavault:*` and \
             `aws:*` are written by rotavault or AWS); remove them from the store's `tags`"
        ))
    }
}

/// The metadata tags to remove: those of versions not in `keep`.
pub(super) fn stale<'a>(tags: &'a BTreeMap<String, String>, keep: &BTreeSet<&str>) -> Vec<&'a str> {
    tags.keys()
        .map(String::as_str)
        .filter(|key| version_of(key).is_some_and(|version| !keep.contains(version)))
        .collect()
}

/// Refuses a tag write that would leave more than [`MAX_TAGS`] tags on the secret.
pub(super) fn check_budget(after: usize, name: &str) -> Result<(), String> {
    if after <= MAX_TAGS {
        Ok(())
    } else {
        Err(format!(
            "`{name}` would carry {after} tags, and AWS allows {MAX_TAGS} per secret: rotavault needs two for \
             ownership and up to four for version metadata; remove tags from the secret or from the store's \
             `tags`"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Metadata, RotationId};
    use chrono::{DateTime, TimeZone, Utc};

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 30, 15).single().expect("a valid date")
    }

    #[test]
    fn tag_values_use_only_characters_aws_allows_in_tags() {
        let text = Metadata::new(Some(RotationId::new()), at(), u64::MAX).encode();
        assert!(text.len() <= 256);
        let allowed = |c: char| c.is_ascii_alphanumeric() || " +-=._:/@".contains(c);
        assert!(text.chars().all(allowed), "{text}");
        for key in [version_key(RotationId::new().as_str()), JOB_KEY.to_owned(), MANAGED_BY_KEY.to_owned()] {
            assert!(key.len() <= 128 && key.chars().all(allowed), "{key}");
        }
    }

    #[test]
    fn stale_finds_the_tags_of_versions_no_longer_kept() {
        let tags: BTreeMap<String, String> = [
            (MANAGED_BY_KEY.to_owned(), MANAGED_BY.to_owned()),
            (JOB_KEY.to_owned(), "job".to_owned()),
            (version_key("current-id"), "1/2026-03-01T12:30:15Z/imported".to_owned()),
            (version_key("previous-id"), "1/2026-03-01T12:30:15Z/imported".to_owned()),
            (version_key("gone-id"), "1/2026-03-01T12:30:15Z/imported".to_owned()),
            ("team".to_owned(), "billing".to_owned()),
        ]
        .into();
        let keep: BTreeSet<&str> = ["current-id", "previous-id"].into();
        assert_eq!(stale(&tags, &keep), vec!["rotavault:v:gone-id"]);
        assert!(stale(&tags, &["current-id", "previous-id", "gone-id"].into()).is_empty());
    }

    #[test]
    fn ownership_tags_come_after_the_configured_ones() {
        let configured: BTreeMap<String, String> = [("team".to_owned(), "billing".to_owned())].into();
        let tags = ownership("nightly", &configured);
        assert_eq!(tags.get(MANAGED_BY_KEY).map(String::as_str), Some("rotavault"));
        assert_eq!(tags.get(JOB_KEY).map(String::as_str), Some("nightly"));
        assert_eq!(tags.get("team").map(String::as_str), Some("billing"));
    }

    #[test]
    fn configured_tags_may_not_take_rotavault_keys() {
        assert!(reserved(&[("team".to_owned(), "x".to_owned())].into()).is_ok());
        for key in [MANAGED_BY_KEY, JOB_KEY, LEGACY_JOB_KEY, "rotavault:v:abc", "aws:cloudformation"] {
            let err = reserved(&[(key.to_owned(), "x".to_owned())].into()).expect_err(key);
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn the_tag_budget_is_fifty() {
        assert!(check_budget(50, "n").is_ok());
        assert!(check_budget(51, "n").expect_err("over").contains("50"));
    }
}
