//! The four writes of [`VaultStore`], step by step, and why each is safe to repeat or to lose a race.
//!
//! Every write to a data path carries `options.cas`: the version rotavault read just before. KV v2 applies a
//! write only if the path is still at that version, so of two writers that read the same state exactly one
//! wins and the other gets `Conflict` (the contract's "a compare-and-set lost"), whatever they were doing
//! (two stagers, two promoters, a promote and a `write_current`). For two stages that is the companion's
//! write: both read its version (0 while it has none; claiming it first writes only metadata, never a
//! version) and only one write of a pending value carries a `cas` that still matches.
//!
//! Order matters where a crash can cut a sequence:
//! - A path is **claimed** (`managed-by`, `rotavault-job` in `custom_metadata`) before its first version is written, so a
//!   value rotavault wrote never looks foreign.
//! - **promote(R)** writes `PATH`, then records the metadata of the new version, then clears the companion.
//!   Cut after the write, a retry finds pending R and R already current (or, cut before the metadata, a current
//!   version without metadata that holds exactly the pending value): it records what is missing and clears,
//!   and never writes the value a second time (which would push the real previous out).
//! - Metadata is recorded **after** the write that created the version, keyed by the version number the write
//!   returned, so a loser of the race never records anything; custom_metadata is changed by merge-patch, so
//!   two writers that both won (one after the other) do not erase each other's keys.

use super::metadata;
use super::{BACKEND, Companion, Opened, VaultStore};
use crate::secret::SecretValue;
use crate::store::contract::{self, Next, Ownership, PendingView};
use crate::store::{Metadata, RotationId, SecretRef, StoreError};

fn conflict(detail: String) -> StoreError {
    StoreError::Conflict { backend: BACKEND, detail }
}

/// The companion's `max_versions`: a cleared marker replaces the pending value in Vault's history at once.
const COMPANION_VERSIONS: u64 = 1;

impl VaultStore {
    pub(super) async fn stage_value(
        &self,
        secret: &SecretRef,
        value: &SecretValue,
        rotation_id: &RotationId,
        metadata: &Metadata,
    ) -> Result<(), StoreError> {
        let name = self.path(secret)?;
        let opened = self.open(secret).await?;
        let companion = self.companion(secret).await?;
        let view = companion
            .pending
            .as_ref()
            .map(|p| PendingView { rotation_id: p.rotation_id.as_str(), same_value: p.value == *value });
        if contract::stage(BACKEND, name, rotation_id, view)? == Next::Nothing {
            return Ok(());
        }
        self.claim(secret, &opened).await?;
        let companion_name = self.companion_path(name);
        self.claim_companion(secret, &companion).await?;
        let data = metadata::pending_data(value, rotation_id, metadata);
        match self.api.write(&companion_name, data, companion.version).await {
            Ok(_) => Ok(()),
            Err(StoreError::Conflict { .. }) => Err(conflict(format!(
                "another rotation staged `{name}` at the same time; rotation {rotation_id} was not staged"
            ))),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn promote_pending(
        &self,
        secret: &SecretRef,
        rotation_id: &RotationId,
    ) -> Result<(), StoreError> {
        let name = self.path(secret)?;
        let opened = self.open(secret).await?;
        let companion = self.companion(secret).await?;
        let current = opened.current();
        let recorded = match current {
            Some(n) => opened.recorded(n)?,
            None => None,
        };
        let current_is_r = recorded.as_ref().is_some_and(|m| m.rotation_id.as_ref() == Some(rotation_id));
        let pending_id = companion.pending.as_ref().map(|p| p.rotation_id.as_str());
        let next = contract::promote(BACKEND, name, rotation_id, pending_id, current_is_r)?;
        // The rules ask for a write only of what is pending.
        let (Next::Write, Some(pending)) = (next, companion.pending) else {
            return Ok(());
        };
        // Was `PATH` already written by a promote that was cut short? Then only finish it.
        let written = match current {
            Some(_) if current_is_r => true,
            Some(n) if recorded.is_none() => self.stored(secret, &opened, n).await?.value == pending.value,
            _ => false,
        };
        if written {
            if let Some(n) = current
                && recorded.is_none()
            {
                self.record(secret, &opened, n, &pending.metadata).await?;
            }
        } else {
            self.claim(secret, &opened).await?;
            let version = self
                .api
                .write(name, metadata::value_data(&pending.value), opened.current_version())
                .await
                .map_err(|e| match e {
                    StoreError::Conflict { .. } => conflict(format!(
                        "`{name}` changed while rotation {rotation_id} was promoted; it stays pending"
                    )),
                    other => other.without_value(&pending.value),
                })?;
            self.record(secret, &opened, version, &pending.metadata).await?;
        }
        self.clear(secret, &companion_for(companion.version, companion.ownership), rotation_id, "promoted")
            .await
    }

    pub(super) async fn discard_pending(
        &self,
        secret: &SecretRef,
        rotation_id: &RotationId,
    ) -> Result<(), StoreError> {
        let name = self.path(secret)?;
        self.open(secret).await?;
        let companion = self.companion(secret).await?;
        let pending_id = companion.pending.as_ref().map(|p| p.rotation_id.as_str());
        match contract::discard(BACKEND, name, rotation_id, pending_id)? {
            Next::Nothing => Ok(()),
            Next::Write => self.clear(secret, &companion, rotation_id, "discarded").await,
        }
    }

    pub(super) async fn write_value(
        &self,
        secret: &SecretRef,
        value: &SecretValue,
        metadata: &Metadata,
    ) -> Result<(), StoreError> {
        let name = self.path(secret)?;
        let opened = self.open(secret).await?;
        // The same value with the same metadata is already current: writing it again would push the real
        // previous out of its slot.
        if let Some(n) = opened.current()
            && opened.recorded(n)?.as_ref() == Some(metadata)
            && self.stored(secret, &opened, n).await?.value == *value
        {
            return Ok(());
        }
        self.claim(secret, &opened).await?;
        let version = self.api.write(name, metadata::value_data(value), opened.current_version()).await?;
        self.record(secret, &opened, version, metadata).await
    }

    /// Makes `PATH` the job's before a value is written to it: creates its metadata, or adds the ownership keys
    /// to an adopted path's.
    async fn claim(&self, secret: &SecretRef, opened: &Opened) -> Result<(), StoreError> {
        let name = self.path(secret)?;
        match opened.ownership {
            Ownership::Owned => Ok(()),
            Ownership::Absent => self.api.create_metadata(name, &metadata::claim(&secret.job), None).await,
            Ownership::Adoptable => {
                let patch = metadata::claim(&secret.job).into_iter().map(|(k, v)| (k, Some(v))).collect();
                self.api.patch_metadata(name, &patch).await?;
                tracing::info!(job = %secret.job, "adopted a path rotavault did not create");
                Ok(())
            }
        }
    }

    /// Makes the companion the job's, keeping one version, before the first pending value is written to it.
    async fn claim_companion(&self, secret: &SecretRef, companion: &Companion) -> Result<(), StoreError> {
        if companion.ownership == Ownership::Owned {
            return Ok(());
        }
        let name = self.companion_path(self.path(secret)?);
        let mut custom = metadata::claim(&secret.job);
        custom.insert("pending-of".into(), secret.name.clone());
        self.api.create_metadata(&name, &custom, Some(COMPANION_VERSIONS)).await
    }

    /// Records `metadata` for `version` of `PATH` (now current) and prunes the keys of versions that hold no slot.
    async fn record(
        &self,
        secret: &SecretRef,
        opened: &Opened,
        version: u64,
        metadata: &Metadata,
    ) -> Result<(), StoreError> {
        let name = self.path(secret)?;
        let existing = opened.meta.as_ref().map(|m| m.custom_metadata.clone()).unwrap_or_default();
        // The previous slot after this write: the newest live version before it (what the read will find).
        let keep = opened.meta.as_ref().and_then(|m| {
            if m.current_version < version && m.is_live(m.current_version) {
                Some(m.current_version)
            } else {
                m.live_before(version)
            }
        });
        let patch = metadata::after_write(&secret.job, &existing, version, keep, metadata);
        self.api.patch_metadata(name, &patch).await
    }

    /// Replaces pending R with a cleared marker (cas = the companion's version). If the marker loses the race,
    /// whoever won is fine as long as R is no longer pending (another replica finished the same promote).
    async fn clear(
        &self,
        secret: &SecretRef,
        companion: &Companion,
        rotation_id: &RotationId,
        how: &str,
    ) -> Result<(), StoreError> {
        let name = self.companion_path(self.path(secret)?);
        match self.api.write(&name, metadata::cleared_data(rotation_id, how), companion.version).await {
            Ok(_) => Ok(()),
            Err(StoreError::Conflict { detail, .. }) => {
                let now = self.companion(secret).await?;
                if now.pending.as_ref().is_some_and(|p| p.rotation_id == *rotation_id) {
                    Err(conflict(detail))
                } else {
                    Ok(())
                }
            }
            Err(e) => Err(e),
        }
    }
}

/// The companion as far as clearing needs it (its pending value was moved out).
fn companion_for(version: u64, ownership: Ownership) -> Companion {
    Companion { version, ownership, pending: None }
}
