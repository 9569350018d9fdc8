//! The four writes (stage, promote, discard, write_current), step by step, and what each step protects.
//!
//! Every write starts from one [`Snapshot`], checks ownership on it, and decides from it; it claims an adopted
//! secret only once it is sure to change something. Metadata tags are written before the version they describe
//! is put (so a version never exists without its metadata) and pruned after labels move. Pruning after the fact
//! is housekeeping: if it fails the write has still happened, so it is logged and the write answers `Ok`; the
//! next write prunes again, before it adds a tag.
//!
//! Between the describe and the calls that follow, nothing is locked in AWS. Stage needs no lock: it puts its
//! version under rotavault's own label and then attaches `AWSPENDING` only if no version holds it, AWS's
//! compare-and-set, and reads back who holds it, so of two concurrent stages at most one succeeds (see
//! `take_pending`). The other writes rely on the engine's one-rotation-per-job lock (invariant 3), and AWS
//! itself refuses the worst races (moving `AWSCURRENT` needs the version that holds it; a token names one
//! value for ever).
//!
//! Idempotency is what makes a lost answer safe: a repeated stage of the same value is a no-op, a repeated
//! promote finds its version current and only removes `AWSPENDING`, and a repeated `write_current` finds its
//! version current.

use super::metadata::{self, check_budget, version_key};
use super::snapshot::{CURRENT, PENDING, PLACEHOLDER_VALUE, Snapshot, WRITING, placeholder_id};
use super::{AwsSecretsManagerStore, BACKEND, invalid};
use crate::secret::SecretValue;
use crate::store::contract::{self, Next, Ownership, PendingView};
use crate::store::{Metadata, RotationId, SecretRef, StoreError};
use std::collections::BTreeMap;

impl AwsSecretsManagerStore {
    pub(super) async fn stage_value(
        &self,
        secret: &SecretRef,
        value: &SecretValue,
        rotation_id: &RotationId,
        metadata: &Metadata,
    ) -> Result<(), StoreError> {
        let (name, id) = (&secret.name, rotation_id.as_str());
        let (mut snapshot, ownership) = self.open_for_write(secret).await?;
        // AWS moves AWSPENDING to whatever version a put names (and moto overwrites a pending version's value
        // for the same token), so what is pending is decided here, before anything is put.
        let pending = snapshot.holder(PENDING, name)?.map(str::to_owned);
        let view = match pending.as_deref() {
            None => None,
            Some(pending) if pending == id => Some(PendingView {
                rotation_id: pending,
                same_value: self.fetch(name, id).await?.value == *value,
            }),
            // Some other tool's rotation left it: not a rotation id's, and the error says how to clear it.
            // Recovery can also discard it, through `pending()` and `discard`, when its id is a rotation id.
            Some(pending) if !snapshot.tracked(pending) => {
                return Err(super::errors::foreign_pending(name, pending));
            }
            Some(pending) => Some(PendingView { rotation_id: pending, same_value: false }),
        };
        if contract::stage(BACKEND, name, rotation_id, view)? == Next::Nothing {
            return Ok(());
        }
        let mut labelled = false;
        if snapshot.has_version(id) {
            // The version exists without AWSPENDING (staged and discarded before, say). A version's value
            // never changes, so the same value gets the label back and another value is refused.
            let existing = self.fetch(name, id).await?;
            if existing.value != *value {
                return Err(version_taken(name, id));
            }
            self.prepare(secret, &mut snapshot, ownership).await?;
            self.write_metadata(&mut snapshot, name, id, metadata, Prune::OnlyIfFull).await?;
        } else {
            self.prepare(secret, &mut snapshot, ownership).await?;
            self.write_metadata(&mut snapshot, name, id, metadata, Prune::OnlyIfFull).await?;
            // Under rotavault's own label, not AWSPENDING: a put moves AWSPENDING from whichever version holds
            // it, so a stage that had already won would lose its label to a rival's later put. (A put that AWS
            // ignores, because a version with this id and value exists unlisted, gets the label below all the
            // same.)
            let labels = self.api.put(name, id, value, WRITING).await?;
            labelled = labels.is_some_and(|labels| labels.iter().any(|l| l == WRITING));
        }
        self.take_pending(name, id, metadata, labelled).await
    }

    /// Attaches `AWSPENDING` to `version`, the one step of a stage that a rival stage can race, and settles the
    /// race from what `DescribeSecret` says afterwards.
    ///
    /// `UpdateSecretVersionStage` without `RemoveFromVersionId` is AWS's compare-and-set on a label: it fails
    /// when the label is on another version, so of two stages that both saw nothing pending, one attaches and
    /// the other is refused. moto does not refuse: it leaves the label on both versions. The read-back covers
    /// both: a stage wins only when its version alone holds `AWSPENDING`; a stage that sees another holder has
    /// lost, takes the label off its own version if it got it, and answers `Conflict`. Two stages that each
    /// see the other (moto only) both lose, and leave nothing pending.
    async fn take_pending(
        &self,
        name: &str,
        version: &str,
        metadata: &Metadata,
        labelled: bool,
    ) -> Result<(), StoreError> {
        let attached = self.api.move_label(name, PENDING, Some(version), None).await;
        let after = self.api.describe(name).await?.ok_or_else(|| StoreError::Transient {
            backend: BACKEND,
            detail: format!("`{name}` was deleted while it was staged"),
            retry_after: None,
        })?;
        let holders = after.holders(PENDING);
        if let Some(winner) = holders.iter().find(|holder| **holder != version) {
            if holders.contains(&version) {
                self.api.move_label(name, PENDING, None, Some(version)).await?;
            }
            self.drop_writing(name, version, labelled).await;
            if !after.tracked(winner) {
                return Err(super::errors::foreign_pending(name, winner));
            }
            return Err(StoreError::Conflict {
                backend: BACKEND,
                detail: format!(
                    "rotation {winner} was staged for `{name}` at the same time; rotation {version} was not staged"
                ),
            });
        }
        if holders.is_empty() {
            // Not attached for another reason than a rival (that error, then), or attached and gone again
            // before the read-back, which only a discard or promote of this very rotation does.
            attached?;
            return Err(StoreError::Transient {
                backend: BACKEND,
                detail: format!("AWSPENDING left version {version} of `{name}` while it was staged"),
                retry_after: None,
            });
        }
        // This version alone holds it, whatever the attach answered (a retried attach can be refused for the
        // label its first attempt attached).
        // A rival that described the secret before this version held a slot may have pruned its metadata tag as
        // stale; without it the pending value would read as another tool's.
        let (key, text) = (version_key(version), metadata.encode());
        if after.tags.get(&key) != Some(&text) {
            self.api.tag(name, &BTreeMap::from([(key, text)])).await?;
        }
        self.drop_writing(name, version, labelled).await;
        self.prune(&after, name).await;
        Ok(())
    }

    /// Takes rotavault's own label off `version` if a put gave it one. Housekeeping: a later put may have taken
    /// the label already, and a stray one is harmless (the next put takes it over).
    async fn drop_writing(&self, name: &str, version: &str, labelled: bool) {
        if labelled && let Err(e) = self.api.move_label(name, WRITING, None, Some(version)).await {
            tracing::debug!(error = %e, "the {WRITING} label was not removed");
        }
    }

    pub(super) async fn promote_pending(
        &self,
        secret: &SecretRef,
        rotation_id: &RotationId,
    ) -> Result<(), StoreError> {
        let (name, id) = (&secret.name, rotation_id.as_str());
        let Some(mut snapshot) = self.api.describe(name).await? else {
            return contract::promote(BACKEND, name, rotation_id, None, false).map(drop);
        };
        let ownership = snapshot.check(secret)?;
        let current = snapshot.holder(CURRENT, name)?.map(str::to_owned);
        let pending = snapshot.holder(PENDING, name)?;
        if contract::promote(BACKEND, name, rotation_id, pending, current.as_deref() == Some(id))?
            == Next::Nothing
        {
            return Ok(());
        }
        self.claim(secret, &mut snapshot, ownership).await?;
        // If the version is already current, the promote was cut between its two calls: finish it.
        if current.as_deref() != Some(id) {
            self.api.move_label(name, CURRENT, Some(id), current.as_deref()).await?;
            snapshot.move_label(CURRENT, Some(id), current.as_deref());
        }
        self.unlabel_pending(&mut snapshot, name, id).await
    }

    pub(super) async fn discard_pending(
        &self,
        secret: &SecretRef,
        rotation_id: &RotationId,
    ) -> Result<(), StoreError> {
        let (name, id) = (&secret.name, rotation_id.as_str());
        let Some(mut snapshot) = self.api.describe(name).await? else {
            return Ok(());
        };
        let ownership = snapshot.check(secret)?;
        if contract::discard(BACKEND, name, rotation_id, snapshot.holder(PENDING, name)?)? == Next::Nothing {
            return Ok(());
        }
        self.claim(secret, &mut snapshot, ownership).await?;
        self.unlabel_pending(&mut snapshot, name, id).await
    }

    pub(super) async fn write_value(
        &self,
        secret: &SecretRef,
        value: &SecretValue,
        metadata: &Metadata,
    ) -> Result<(), StoreError> {
        let name = &secret.name;
        let token = match &metadata.rotation_id {
            Some(id) => id.as_str().to_owned(),
            None => uuid::Uuid::new_v4().hyphenated().to_string(),
        };
        let (mut snapshot, ownership) = self.open_for_write(secret).await?;
        // The version may exist already (a repeated write, or a rotation's version being written as current).
        let exists = snapshot.has_version(&token);
        if exists && self.fetch(name, &token).await?.value != *value {
            return Err(version_taken(name, &token));
        }
        self.prepare(secret, &mut snapshot, ownership).await?;
        let current = snapshot.holder(CURRENT, name)?.map(str::to_owned);
        self.write_metadata(&mut snapshot, name, &token, metadata, Prune::Stale).await?;
        if current.as_deref() == Some(token.as_str()) {
            return Ok(());
        }
        let labelled = if exists {
            false
        } else {
            // Under rotavault's own label, not none: a put without labels means AWSCURRENT, which AWS moves
            // correctly but moto, after a label move, can leave on two versions. Moving the label explicitly
            // below is right on both.
            let labels = self.api.put(name, &token, value, WRITING).await?;
            labels.is_some_and(|labels| labels.iter().any(|l| l == WRITING))
        };
        self.api.move_label(name, CURRENT, Some(&token), current.as_deref()).await?;
        snapshot.move_label(CURRENT, Some(&token), current.as_deref());
        if labelled && let Err(e) = self.api.move_label(name, WRITING, None, Some(&token)).await {
            // The value is current; a stray label is harmless and the next write's put takes it over.
            tracing::warn!(error = %e, "could not remove the {WRITING} label");
        }
        self.prune(&snapshot, name).await;
        Ok(())
    }

    /// Takes `AWSPENDING` off `version` (the last step of a promote and a discard), then prunes what that left
    /// stale.
    async fn unlabel_pending(
        &self,
        snapshot: &mut Snapshot,
        name: &str,
        version: &str,
    ) -> Result<(), StoreError> {
        self.api.move_label(name, PENDING, None, Some(version)).await?;
        snapshot.move_label(PENDING, None, Some(version));
        self.prune(snapshot, name).await;
        Ok(())
    }

    /// Describes `secret` for a write, creating it if it does not exist, and checks who owns it.
    async fn open_for_write(&self, secret: &SecretRef) -> Result<(Snapshot, Ownership), StoreError> {
        let name = &secret.name;
        let snapshot = match self.api.describe(name).await? {
            Some(snapshot) => snapshot,
            None => {
                self.create(secret).await?;
                self.api.describe(name).await?.ok_or_else(|| StoreError::Transient {
                    backend: BACKEND,
                    detail: format!("`{name}` was created and then not found"),
                    retry_after: None,
                })?
            }
        };
        let ownership = snapshot.check(secret)?;
        Ok((snapshot, ownership))
    }

    /// Readies a secret for a write that is now sure to happen: claims it if the job adopts it, and makes sure
    /// it has an `AWSCURRENT` (see [`is_placeholder`] for why).
    async fn prepare(
        &self,
        secret: &SecretRef,
        snapshot: &mut Snapshot,
        ownership: Ownership,
    ) -> Result<(), StoreError> {
        let name = &secret.name;
        self.claim(secret, snapshot, ownership).await?;
        if snapshot.holder(CURRENT, name)?.is_none() {
            // An adopted secret created without a value: its first version would become AWSCURRENT.
            let placeholder = placeholder_id();
            self.api.put(name, &placeholder, &SecretValue::new(PLACEHOLDER_VALUE), CURRENT).await?;
            snapshot.move_label(CURRENT, Some(&placeholder), None);
        }
        Ok(())
    }

    async fn create(&self, secret: &SecretRef) -> Result<(), StoreError> {
        let name = &secret.name;
        if name.starts_with("arn:") {
            return Err(invalid(format!(
                "`{name}` does not exist, and a secret cannot be created from an ARN: name it by its name"
            )));
        }
        let tags = self.ownership_tags(secret)?;
        check_budget(tags.len(), name).map_err(invalid)?;
        let kms = self.settings.kms_key_id.as_deref();
        match self.api.create(name, &tags, kms, &placeholder_id(), PLACEHOLDER_VALUE).await {
            // Created by someone else since the describe: the describe that follows checks whose it is.
            Ok(()) | Err(StoreError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Tags an adopted secret as the job's (the configured tags too), so that it is the job's from now on.
    async fn claim(
        &self,
        secret: &SecretRef,
        snapshot: &mut Snapshot,
        ownership: Ownership,
    ) -> Result<(), StoreError> {
        if ownership == Ownership::Owned {
            return Ok(());
        }
        let tags = self.ownership_tags(secret)?;
        let after = snapshot.tags.keys().chain(tags.keys()).collect::<std::collections::BTreeSet<_>>().len();
        check_budget(after, &secret.name).map_err(invalid)?;
        self.api.tag(&secret.name, &tags).await?;
        tracing::info!(job = %secret.job, "adopted a secret rotavault did not create");
        snapshot.tags.extend(tags);
        Ok(())
    }

    fn ownership_tags(&self, secret: &SecretRef) -> Result<BTreeMap<String, String>, StoreError> {
        metadata::reserved(&self.settings.tags).map_err(invalid)?;
        Ok(metadata::ownership(&secret.job, &self.settings.tags))
    }

    /// Records `metadata` for `version` before the version is written or labelled, after pruning the tags of
    /// versions that hold no slot as `prune` says (so that the new tag fits in AWS's 50).
    async fn write_metadata(
        &self,
        snapshot: &mut Snapshot,
        name: &str,
        version: &str,
        metadata: &Metadata,
        prune: Prune,
    ) -> Result<(), StoreError> {
        let (key, text) = (version_key(version), metadata.encode());
        let fits = |tags: &BTreeMap<String, String>| tags.len() + usize::from(!tags.contains_key(&key));
        if prune == Prune::Stale || check_budget(fits(&snapshot.tags), name).is_err() {
            let mut keep = snapshot.kept_versions();
            keep.insert(version);
            let stale: Vec<String> =
                metadata::stale(&snapshot.tags, &keep).into_iter().map(str::to_owned).collect();
            self.api.untag(name, &stale.iter().map(String::as_str).collect::<Vec<_>>()).await?;
            for gone in &stale {
                snapshot.tags.remove(gone);
            }
        }
        if snapshot.tags.get(&key) == Some(&text) {
            return Ok(());
        }
        check_budget(fits(&snapshot.tags), name).map_err(invalid)?;
        self.api.tag(name, &BTreeMap::from([(key.clone(), text.clone())])).await?;
        snapshot.tags.insert(key, text);
        Ok(())
    }

    /// Removes the metadata tags of versions that hold no slot any more. Never fails the write it follows.
    async fn prune(&self, snapshot: &Snapshot, name: &str) {
        let keep = snapshot.kept_versions();
        let stale = metadata::stale(&snapshot.tags, &keep);
        if let Err(e) = self.api.untag(name, &stale).await {
            tracing::warn!(error = %e, "could not remove the metadata tags of old versions; the next write retries");
        }
    }
}

/// Which tags [`AwsSecretsManagerStore::write_metadata`] prunes before it adds one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Prune {
    /// Those of every version that holds no slot.
    Stale,
    /// None, unless the new tag would not fit otherwise. A stage prunes no sooner than it has won: to a stage
    /// that described the secret first, a rival's version, tagged and not yet labelled, looks stale too.
    OnlyIfFull,
}

fn version_taken(name: &str, id: &str) -> StoreError {
    StoreError::Conflict {
        backend: BACKEND,
        detail: format!("`{name}` already has a version {id} with another value; a rotation id is used once"),
    }
}
