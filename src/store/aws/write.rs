//! The four writes (stage, promote, discard, write_current), step by step, and what each step protects.
//!
//! Every write starts from one [`Snapshot`], checks ownership on it, and decides from it; it claims an adopted
//! secret only once it is sure to change something. Metadata tags are written before the version they describe
//! is put (so a version never exists without its metadata) and pruned after labels move. Pruning after the fact
//! is housekeeping: if it fails the write has still happened, so it is logged and the write answers `Ok`; the
//! next write prunes again, before it adds a tag.
//!
//! Between the describe and the calls that follow, nothing is locked in AWS: a write relies on the engine's
//! one-rotation-per-job lock (invariant 3) for that, and AWS itself refuses the worst races (moving
//! `AWSCURRENT` needs the version that holds it; a token names one value for ever).
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
        if snapshot.has_version(id) {
            // The version exists without AWSPENDING (staged and discarded before, say). A version's value
            // never changes, so the same value gets the label back and another value is refused.
            let existing = self.fetch(name, id).await?;
            if existing.value != *value {
                return Err(version_taken(name, id));
            }
            self.prepare(secret, &mut snapshot, ownership).await?;
            self.write_metadata(&mut snapshot, name, id, metadata).await?;
            return self.api.move_label(name, PENDING, Some(id), None).await;
        }
        self.prepare(secret, &mut snapshot, ownership).await?;
        self.write_metadata(&mut snapshot, name, id, metadata).await?;
        let labels = self.api.put(name, id, value, PENDING).await?;
        if !labels.is_some_and(|labels| labels.iter().any(|l| l == PENDING)) {
            // AWS ignored the put: a version with this id and value exists that DescribeSecret did not list
            // (it lists only versions with labels). Give it the label, or the stage did not happen.
            self.api.move_label(name, PENDING, Some(id), None).await?;
        }
        Ok(())
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
        self.write_metadata(&mut snapshot, name, &token, metadata).await?;
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
    /// versions that hold no slot (so that the new tag fits in AWS's 50).
    async fn write_metadata(
        &self,
        snapshot: &mut Snapshot,
        name: &str,
        version: &str,
        metadata: &Metadata,
    ) -> Result<(), StoreError> {
        let mut keep = snapshot.kept_versions();
        keep.insert(version);
        let stale: Vec<String> =
            metadata::stale(&snapshot.tags, &keep).into_iter().map(str::to_owned).collect();
        self.api.untag(name, &stale.iter().map(String::as_str).collect::<Vec<_>>()).await?;
        for key in &stale {
            snapshot.tags.remove(key);
        }
        let (key, text) = (version_key(version), metadata.encode());
        if snapshot.tags.get(&key) == Some(&text) {
            return Ok(());
        }
        let after = snapshot.tags.len() + usize::from(!snapshot.tags.contains_key(&key));
        check_budget(after, name).map_err(invalid)?;
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

fn version_taken(name: &str, id: &str) -> StoreError {
    StoreError::Conflict {
        backend: BACKEND,
        detail: format!("`{name}` already has a version {id} with another value; a rotation id is used once"),
    }
}
