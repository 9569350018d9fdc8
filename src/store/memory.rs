//! `memory`: the reference semantics of the store contract, kept in process memory.
//!
//! For tests, dry runs and the conformance suite's own check of [`Slots`]. Nothing survives the process.

use super::slots::{Entry, Slots};
use super::{Capabilities, Metadata, Pending, RotationId, SecretRef, Store, StoreError, Stored, Summary};
use crate::secret::SecretValue;
use async_trait::async_trait;
use std::sync::Mutex;

pub const BACKEND: &str = "memory";

#[derive(Debug, Default)]
pub struct MemoryStore {
    slots: Mutex<Slots>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts a secret that rotavault does not manage at `name`, as another tool would have created it.
    pub fn plant_foreign(&self, name: &str, value: &SecretValue) {
        let mut slots = self.lock();
        slots.entries.insert(
            name.to_owned(),
            Entry {
                owner: None,
                current: Some(Stored {
                    value: value.clone(),
                    metadata: Metadata::new(None, chrono::Utc::now(), 0),
                }),
                ..Entry::default()
            },
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        // A panic while holding the lock cannot leave the slots half-changed: every operation changes them in one
        // assignment after all checks, so the data is still consistent.
        self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { durable: false, atomic_promote: true, exclusive_stage: true, versioned: false }
    }

    async fn current(&self, secret: &SecretRef) -> Result<Option<Stored>, StoreError> {
        self.lock().current(BACKEND, secret)
    }

    async fn pending(&self, secret: &SecretRef) -> Result<Option<Pending>, StoreError> {
        self.lock().pending(BACKEND, secret)
    }

    async fn previous(&self, secret: &SecretRef) -> Result<Option<Stored>, StoreError> {
        self.lock().previous(BACKEND, secret)
    }

    async fn stage(
        &self,
        secret: &SecretRef,
        value: &SecretValue,
        rotation_id: &RotationId,
        metadata: &Metadata,
    ) -> Result<(), StoreError> {
        self.lock().stage(BACKEND, secret, value, rotation_id, metadata).map(drop)
    }

    async fn promote(&self, secret: &SecretRef, rotation_id: &RotationId) -> Result<(), StoreError> {
        self.lock().promote(BACKEND, secret, rotation_id).map(drop)
    }

    async fn discard(&self, secret: &SecretRef, rotation_id: &RotationId) -> Result<(), StoreError> {
        self.lock().discard(BACKEND, secret, rotation_id).map(drop)
    }

    async fn write_current(
        &self,
        secret: &SecretRef,
        value: &SecretValue,
        metadata: &Metadata,
    ) -> Result<(), StoreError> {
        self.lock().write_current(BACKEND, secret, value, metadata).map(drop)
    }

    async fn check(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// The whole batch under one lock, copying no value.
    async fn summaries(&self, secrets: &[SecretRef]) -> Vec<Result<Summary, StoreError>> {
        let slots = self.lock();
        secrets.iter().map(|secret| slots.summary(BACKEND, secret)).collect()
    }
}
