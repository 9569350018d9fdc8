//! The contract's reference semantics as a plain state machine over in-memory slots.
//!
//! `memory` keeps a [`Slots`] behind a mutex; `file` reads one from its encrypted file, applies the same
//! operation and writes it back. Both therefore behave identically by construction, and the conformance suite
//! checks that this one implementation is right. The rules themselves are [`contract`]'s, as for every backend;
//! what is here is the slots they act on.

use super::contract::{self, Next, Owner, PendingView};
use super::{Metadata, Pending, RotationId, SecretRef, StoreError, Stored, Summary};
use crate::secret::SecretValue;
use std::collections::BTreeMap;

/// All secrets of one store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Slots {
    pub entries: BTreeMap<String, Entry>,
}

/// One secret name's three slots and its owner.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// The job that manages it; `None` for a secret rotavault did not create (only ever seen until adopted).
    pub owner: Option<String>,
    pub current: Option<Stored>,
    pub previous: Option<Stored>,
    pub pending: Option<Pending>,
}

impl Slots {
    /// The entry for `secret`, after checking that the job may touch it.
    fn owned(&self, backend: &'static str, secret: &SecretRef) -> Result<Option<&Entry>, StoreError> {
        let Some(entry) = self.entries.get(&secret.name) else {
            return Ok(None);
        };
        check_owner(backend, secret, entry.owner.as_ref())?;
        Ok(Some(entry))
    }

    /// The entry for `secret` to change, created if missing and claimed for the job.
    fn owned_mut(&mut self, backend: &'static str, secret: &SecretRef) -> Result<&mut Entry, StoreError> {
        let entry = self.entries.entry(secret.name.clone()).or_default();
        let empty = entry.owner.is_none() && entry.current.is_none() && entry.pending.is_none();
        let owner = if empty { Owner::Absent } else { owner_of(entry.owner.as_ref()) };
        contract::check_owner(backend, secret, owner)?;
        entry.owner = Some(secret.job.clone());
        Ok(entry)
    }

    pub fn current(&self, backend: &'static str, secret: &SecretRef) -> Result<Option<Stored>, StoreError> {
        Ok(self.owned(backend, secret)?.and_then(|e| e.current.clone()))
    }

    pub fn pending(&self, backend: &'static str, secret: &SecretRef) -> Result<Option<Pending>, StoreError> {
        Ok(self.owned(backend, secret)?.and_then(|e| e.pending.clone()))
    }

    /// What `current` and `pending` say of their metadata, without copying a value.
    pub fn summary(&self, backend: &'static str, secret: &SecretRef) -> Result<Summary, StoreError> {
        let entry = self.owned(backend, secret)?;
        Ok(entry.map_or_else(Summary::default, |e| Summary::of(e.current.as_ref(), e.pending.as_ref())))
    }

    pub fn previous(&self, backend: &'static str, secret: &SecretRef) -> Result<Option<Stored>, StoreError> {
        Ok(self.owned(backend, secret)?.and_then(|e| e.previous.clone()))
    }

    /// Returns whether anything changed, so that a durable backend can skip a write that would change nothing.
    pub fn stage(
        &mut self,
        backend: &'static str,
        secret: &SecretRef,
        value: &SecretValue,
        rotation_id: &RotationId,
        metadata: &Metadata,
    ) -> Result<bool, StoreError> {
        let entry = self.owned_mut(backend, secret)?;
        let pending = entry
            .pending
            .as_ref()
            .map(|p| PendingView { rotation_id: p.rotation_id.as_str(), same_value: p.value == *value });
        match contract::stage(backend, &secret.name, rotation_id, pending)? {
            Next::Nothing => Ok(false),
            Next::Write => {
                entry.pending = Some(Pending {
                    value: value.clone(),
                    rotation_id: rotation_id.clone(),
                    metadata: metadata.clone(),
                });
                Ok(true)
            }
        }
    }

    pub fn promote(
        &mut self,
        backend: &'static str,
        secret: &SecretRef,
        rotation_id: &RotationId,
    ) -> Result<bool, StoreError> {
        let entry = self.owned(backend, secret)?;
        let current_is_r = entry
            .and_then(|e| e.current.as_ref())
            .is_some_and(|c| c.metadata.rotation_id.as_ref() == Some(rotation_id));
        let pending = entry.and_then(|e| e.pending.as_ref()).map(|p| p.rotation_id.as_str());
        match contract::promote(backend, &secret.name, rotation_id, pending, current_is_r)? {
            Next::Nothing => Ok(false),
            Next::Write => {
                let entry = self.owned_mut(backend, secret)?;
                if let Some(p) = entry.pending.take() {
                    entry.previous = entry.current.take();
                    entry.current = Some(Stored { value: p.value, metadata: p.metadata });
                }
                Ok(true)
            }
        }
    }

    pub fn discard(
        &mut self,
        backend: &'static str,
        secret: &SecretRef,
        rotation_id: &RotationId,
    ) -> Result<bool, StoreError> {
        let pending =
            self.owned(backend, secret)?.and_then(|e| e.pending.as_ref()).map(|p| p.rotation_id.as_str());
        match contract::discard(backend, &secret.name, rotation_id, pending)? {
            Next::Nothing => Ok(false),
            Next::Write => {
                self.owned_mut(backend, secret)?.pending = None;
                Ok(true)
            }
        }
    }

    pub fn write_current(
        &mut self,
        backend: &'static str,
        secret: &SecretRef,
        value: &SecretValue,
        metadata: &Metadata,
    ) -> Result<bool, StoreError> {
        let entry = self.owned_mut(backend, secret)?;
        let new = Stored { value: value.clone(), metadata: metadata.clone() };
        if entry.current.as_ref() == Some(&new) {
            return Ok(false);
        }
        entry.previous = entry.current.replace(new);
        Ok(true)
    }
}

/// Whether `secret`'s job may touch an existing secret owned by `owner` (`None`: rotavault did not write it).
/// Public for a backend that knows a secret's owner without loading its slots (the file store's plaintext
/// metadata).
pub fn check_owner(
    backend: &'static str,
    secret: &SecretRef,
    owner: Option<&String>,
) -> Result<(), StoreError> {
    contract::check_owner(backend, secret, owner_of(owner)).map(drop)
}

/// An existing entry's owner: a job, or `None` for a secret rotavault did not write.
fn owner_of(owner: Option<&String>) -> Owner<'_> {
    owner.map_or(Owner::Foreign, |job| Owner::Job(job))
}
