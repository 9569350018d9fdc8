//! `SlowStore`: wraps any store so that every call takes a set time (tokio time, so paused tests stay instant) and
//! records the most calls that were ever in flight at once: how a test sees whether callers bound their
//! concurrency.

use async_trait::async_trait;
use rotavault::secret::SecretValue;
use rotavault::store::{Capabilities, Metadata, Pending, RotationId, SecretRef, Store, StoreError, Stored};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[derive(Debug)]
pub struct SlowStore {
    inner: Arc<dyn Store>,
    delay: Duration,
    in_flight: AtomicUsize,
    most: AtomicUsize,
    calls: AtomicUsize,
}

impl SlowStore {
    pub fn new(inner: Arc<dyn Store>, delay: Duration) -> Self {
        Self {
            inner,
            delay,
            in_flight: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
            calls: AtomicUsize::new(0),
        }
    }

    /// The most calls in flight at once so far.
    pub fn most_in_flight(&self) -> usize {
        self.most.load(Ordering::SeqCst)
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    async fn slow<T>(&self, call: impl std::future::Future<Output = T>) -> T {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        let result = call.await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        result
    }
}

#[async_trait]
impl Store for SlowStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn current(&self, secret: &SecretRef) -> Result<Option<Stored>, StoreError> {
        self.slow(self.inner.current(secret)).await
    }

    async fn pending(&self, secret: &SecretRef) -> Result<Option<Pending>, StoreError> {
        self.slow(self.inner.pending(secret)).await
    }

    async fn previous(&self, secret: &SecretRef) -> Result<Option<Stored>, StoreError> {
        self.slow(self.inner.previous(secret)).await
    }

    async fn stage(
        &self,
        secret: &SecretRef,
        value: &SecretValue,
        rotation_id: &RotationId,
        metadata: &Metadata,
    ) -> Result<(), StoreError> {
        self.slow(self.inner.stage(secret, value, rotation_id, metadata)).await
    }

    async fn promote(&self, secret: &SecretRef, rotation_id: &RotationId) -> Result<(), StoreError> {
        self.slow(self.inner.promote(secret, rotation_id)).await
    }

    async fn discard(&self, secret: &SecretRef, rotation_id: &RotationId) -> Result<(), StoreError> {
        self.slow(self.inner.discard(secret, rotation_id)).await
    }

    async fn write_current(
        &self,
        secret: &SecretRef,
        value: &SecretValue,
        metadata: &Metadata,
    ) -> Result<(), StoreError> {
        self.slow(self.inner.write_current(secret, value, metadata)).await
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.slow(self.inner.check()).await
    }
}
