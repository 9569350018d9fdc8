//! `Instrumented`: wraps any store so that every call gets a tracing span and is counted by backend, call and
//! outcome (`{backend, call, status}`), the labels `/metrics` exposes. Values never reach a span or a counter.

use super::{Capabilities, Metadata, Pending, RotationId, SecretRef, Store, StoreError, Stored};
use crate::secret::SecretValue;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tracing::Instrument;

/// Counts of calls by `(call, status)`, where status is `ok` or the error's metric label.
pub type CallCounts = BTreeMap<(&'static str, &'static str), u64>;

#[derive(Debug)]
pub struct Instrumented {
    label: String,
    inner: Arc<dyn Store>,
    counts: Mutex<CallCounts>,
}

impl Instrumented {
    /// `label` is the store's name in the config, shown beside the backend in spans.
    pub fn new(label: impl Into<String>, inner: Arc<dyn Store>) -> Self {
        Self { label: label.into(), inner, counts: Mutex::default() }
    }

    pub fn counts(&self) -> CallCounts {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    async fn observe<T>(
        &self,
        call: &'static str,
        name: Option<&str>,
        fut: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let span = tracing::debug_span!(
            "store",
            store = %self.label,
            backend = self.inner.backend(),
            call,
            name = name.unwrap_or(""),
            status = tracing::field::Empty,
        );
        let result = fut.instrument(span.clone()).await;
        let status = match &result {
            Ok(_) => "ok",
            Err(e) => e.metric_label(),
        };
        span.record("status", status);
        if let Err(e) = &result {
            tracing::debug!(parent: &span, error = %e, "store call failed");
        }
        *self.counts.lock().unwrap_or_else(|p| p.into_inner()).entry((call, status)).or_default() += 1;
        result
    }
}

#[async_trait]
impl Store for Instrumented {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn current(&self, secret: &SecretRef) -> Result<Option<Stored>, StoreError> {
        self.observe("current", Some(&secret.name), self.inner.current(secret)).await
    }

    async fn pending(&self, secret: &SecretRef) -> Result<Option<Pending>, StoreError> {
        self.observe("pending", Some(&secret.name), self.inner.pending(secret)).await
    }

    async fn previous(&self, secret: &SecretRef) -> Result<Option<Stored>, StoreError> {
        self.observe("previous", Some(&secret.name), self.inner.previous(secret)).await
    }

    async fn stage(
        &self,
        secret: &SecretRef,
        value: &SecretValue,
        rotation_id: &RotationId,
        metadata: &Metadata,
    ) -> Result<(), StoreError> {
        self.observe("stage", Some(&secret.name), self.inner.stage(secret, value, rotation_id, metadata))
            .await
    }

    async fn promote(&self, secret: &SecretRef, rotation_id: &RotationId) -> Result<(), StoreError> {
        self.observe("promote", Some(&secret.name), self.inner.promote(secret, rotation_id)).await
    }

    async fn discard(&self, secret: &SecretRef, rotation_id: &RotationId) -> Result<(), StoreError> {
        self.observe("discard", Some(&secret.name), self.inner.discard(secret, rotation_id)).await
    }

    async fn write_current(
        &self,
        secret: &SecretRef,
        value: &SecretValue,
        metadata: &Metadata,
    ) -> Result<(), StoreError> {
        self.observe("write_current", Some(&secret.name), self.inner.write_current(secret, value, metadata))
            .await
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.observe("check", None, self.inner.check()).await
    }
}
