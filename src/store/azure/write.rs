//! The four writes (stage, promote, discard, write_current), step by step, and what each step protects.
//!
//! Every write reads the [`Pair`] once, checks ownership on it, and decides from it. Nothing is ever deleted:
//! soft delete would keep a deleted name reserved, so a design that deletes and re-creates names breaks on the
//! second rotation. Values only ever go into new versions; what changes afterwards is a pending version's
//! tags and `enabled`.
//!
//! Between the reads and the writes nothing is locked in Key Vault (it has no compare-and-set on secrets). A
//! stage reads back what is pending after it wrote, which settles a race with a rival stage in every
//! interleaving but one (see `read_back`); the other writes rely on the engine's one-rotation-per-job lock
//! (invariant 3). Idempotency is what makes a lost answer safe: a repeated stage of the same value is a no-op, a repeated promote finds its rotation current and only
//! finishes marking the pending version, and a repeated `write_current` finds its value current.

use super::client::{NewVersion, Read, Version};
use super::pair::{Pair, Staged};
use super::tags::{self, State};
use super::{AzureKeyVaultStore, BACKEND, pending_name};
use crate::secret::SecretValue;
use crate::store::contract::{self, Next, Owner, PendingView};
use crate::store::{Metadata, RotationId, SecretRef, StoreError};
use std::collections::BTreeMap;

impl AzureKeyVaultStore {
    pub(super) async fn stage_value(
        &self,
        secret: &SecretRef,
        value: &SecretValue,
        rotation_id: &RotationId,
        metadata: &Metadata,
    ) -> Result<(), StoreError> {
        let name = &secret.name;
        let pair = self.open_for_write(secret).await?;
        // Whatever happens to the pending value later, the current one must be readable to be replaced.
        pair.current(name)?;
        let staged = pair.staged(name)?;
        let view = staged.as_ref().map(|staged| PendingView {
            rotation_id: staged.rotation_id.as_str(),
            same_value: staged.version.value == *value,
        });
        if contract::stage(BACKEND, name, rotation_id, view)? == Next::Nothing {
            return Ok(());
        }
        if matches!(pair.current, Read::Absent) && self.api.is_deleted(name).await? == Some(true) {
            // The first rotation of a name that is deleted but recoverable: staging would succeed, the target
            // would change, and every promote would then fail on the reserved name. Refuse before anything
            // changes, while the rotation can still stop cleanly.
            return Err(super::errors::deleted_but_recoverable(name));
        }
        let new = NewVersion {
            value,
            tags: tags::pending(&self.settings.tags, &secret.job, metadata, State::Pending),
            content_type: self.settings.content_type.as_deref(),
            expires: None,
        };
        let written = self.api.set(&pending_name(name), new).await?;
        let retired = tags::pending(&self.settings.tags, &secret.job, metadata, State::Discarded);
        self.read_back(secret, value, rotation_id, &written, &retired).await
    }

    /// Settles a race with a rival stage by reading back what is pending: Key Vault has no conditional write, so
    /// a rival that read the pair before this stage wrote has written too, and pending is the latest
    /// `NAME-pending` version, whoever wrote it last. A stage whose version is not the latest has lost: it
    /// answers `Conflict`, and retires its own version (marked discarded, disabled), which, not being the latest,
    /// never changes what pending reads: the winner's.
    ///
    /// What this cannot see: a rival that read the pair before this stage wrote, and writes only after this
    /// read-back. Both then answer `Ok`, and pending holds the later one. Only a conditional write (or listing
    /// the versions, with the `list` permission) could close that window; the fence before Apply finds it.
    async fn read_back(
        &self,
        secret: &SecretRef,
        value: &SecretValue,
        rotation_id: &RotationId,
        written: &str,
        retired: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let name = &secret.name;
        let pair = self.read_pair(secret).await?;
        let staged = pair.staged(name)?;
        if staged.as_ref().is_some_and(|s| s.rotation_id == *rotation_id && s.version.value == *value) {
            return Ok(());
        }
        // Housekeeping: a later version hides this one from every read already.
        if let Err(e) = self.api.update(&pending_name(name), written, retired, false).await {
            tracing::debug!(error = %e, "a version that lost a race was not retired");
        }
        let winner =
            staged.map_or_else(|| "another stage".to_owned(), |s| format!("rotation {}", s.rotation_id));
        Err(StoreError::Conflict {
            backend: BACKEND,
            detail: format!("{winner} won a race to stage `{name}`; rotation {rotation_id} was not staged"),
        })
    }

    pub(super) async fn promote_pending(
        &self,
        secret: &SecretRef,
        rotation_id: &RotationId,
    ) -> Result<(), StoreError> {
        let name = &secret.name;
        let pair = self.open_for_write(secret).await?;
        let current = pair.current(name)?;
        let current_is_r = current.as_ref().is_some_and(|(_, m)| m.rotation_id.as_ref() == Some(rotation_id));
        let staged = pair.staged(name)?;
        let pending = staged.as_ref().map(|staged| staged.rotation_id.as_str());
        let next = contract::promote(BACKEND, name, rotation_id, pending, current_is_r)?;
        // The rules ask for a write only of what is pending.
        let (Next::Write, Some(staged)) = (next, staged) else {
            return Ok(());
        };
        // A promote cut after the new version of NAME was written finds R current: only the marking is left.
        if !current_is_r {
            let previous = current.map(|(version, _)| version.id.as_str());
            self.put_current(secret, &staged.version.value, &staged.metadata, previous).await?;
        }
        self.finish(name, &staged, State::Done).await
    }

    pub(super) async fn discard_pending(
        &self,
        secret: &SecretRef,
        rotation_id: &RotationId,
    ) -> Result<(), StoreError> {
        let name = &secret.name;
        let pair = self.open_for_write(secret).await?;
        let staged = pair.staged(name)?;
        let pending = staged.as_ref().map(|staged| staged.rotation_id.as_str());
        let next = contract::discard(BACKEND, name, rotation_id, pending)?;
        match (next, staged) {
            (Next::Write, Some(staged)) => self.finish(name, &staged, State::Discarded).await,
            _ => Ok(()),
        }
    }

    pub(super) async fn write_value(
        &self,
        secret: &SecretRef,
        value: &SecretValue,
        metadata: &Metadata,
    ) -> Result<(), StoreError> {
        let name = &secret.name;
        let pair = self.open_for_write(secret).await?;
        let current = pair.current(name)?;
        if let Some((version, current_metadata)) = &current
            && tags::owner(&version.tags) != Owner::Foreign
            && current_metadata == metadata
            && version.value == *value
        {
            // A repeated write (its answer was lost): writing again would make the value its own previous.
            return Ok(());
        }
        let previous = current.map(|(version, _)| version.id.as_str());
        self.put_current(secret, value, metadata, previous).await
    }

    /// Reads the pair and checks that the job may write.
    async fn open_for_write(&self, secret: &SecretRef) -> Result<Pair, StoreError> {
        let pair = self.read_pair(secret).await?;
        pair.check(secret)?;
        Ok(pair)
    }

    /// A new version of `NAME`, pointing at the version it replaces.
    async fn put_current(
        &self,
        secret: &SecretRef,
        value: &SecretValue,
        metadata: &Metadata,
        previous: Option<&str>,
    ) -> Result<(), StoreError> {
        let expires = match (self.settings.set_expiry, secret.max_age) {
            (true, Some(max_age)) => chrono::Duration::from_std(max_age)
                .ok()
                .and_then(|age| metadata.rotated_at.checked_add_signed(age)),
            _ => None,
        };
        let new = NewVersion {
            value,
            tags: tags::current(&self.settings.tags, &secret.job, metadata, previous),
            content_type: self.settings.content_type.as_deref(),
            expires,
        };
        self.api.set(&secret.name, new).await.map(drop)
    }

    /// Marks a pending version promoted or discarded, and disables it so that nobody reads it by mistake. One
    /// update sets both, so a pending version is never half-marked.
    async fn finish(&self, name: &str, staged: &Staged<'_>, state: State) -> Result<(), StoreError> {
        let Version { id, tags: current_tags, .. } = staged.version;
        let marked = tags::with_state(current_tags, state);
        self.api.update(&pending_name(name), id, &marked, false).await
    }
}
