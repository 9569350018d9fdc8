//! `Instrumented`: wraps any store so that every call gets a tracing span and is counted by backend, call and
//! outcome (`{backend, call, status}`), the labels `/metrics` exposes. Values never reach a span or a counter,
//! and every error leaves through [`StoreError::redacted`] (with the value the call sent, if any) before it is
//! logged or returned: whatever a backend forgot to redact, no store error above this wrapper carries a value.

use super::{Capabilities, Metadata, Pending, RotationId, SecretRef, Store, StoreError, Stored, Summary};
use crate::secret::SecretValue;
use crate::secret::redact::Redactor;
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
        sent: Option<&SecretValue>,
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
        let result = fut.instrument(span.clone()).await.map_err(|e| match sent {
            Some(value) => e.without_value(value),
            None => e.redacted(&Redactor::none()),
        });
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
        self.observe("current", Some(&secret.name), None, self.inner.current(secret)).await
    }

    async fn pending(&self, secret: &SecretRef) -> Result<Option<Pending>, StoreError> {
        self.observe("pending", Some(&secret.name), None, self.inner.pending(secret)).await
    }

    async fn previous(&self, secret: &SecretRef) -> Result<Option<Stored>, StoreError> {
        self.observe("previous", Some(&secret.name), None, self.inner.previous(secret)).await
    }

    async fn stage(
        &self,
        secret: &SecretRef,
        value: &SecretValue,
        rotation_id: &RotationId,
        metadata: &Metadata,
    ) -> Result<(), StoreError> {
        self.observe(
            "stage",
            Some(&secret.name),
            Some(value),
            self.inner.stage(secret, value, rotation_id, metadata),
        )
        .await
    }

    async fn promote(&self, secret: &SecretRef, rotation_id: &RotationId) -> Result<(), StoreError> {
        self.observe("promote", Some(&secret.name), None, self.inner.promote(secret, rotation_id)).await
    }

    async fn discard(&self, secret: &SecretRef, rotation_id: &RotationId) -> Result<(), StoreError> {
        self.observe("discard", Some(&secret.name), None, self.inner.discard(secret, rotation_id)).await
    }

    async fn write_current(
        &self,
        secret: &SecretRef,
        value: &SecretValue,
        metadata: &Metadata,
    ) -> Result<(), StoreError> {
        self.observe(
            "write_current",
            Some(&secret.name),
            Some(value),
            self.inner.write_current(secret, value, metadata),
        )
        .await
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.observe("check", None, None, self.inner.check()).await
    }

    /// One span and one count for the batch: `ok` when every secret was answered, else the first error's label.
    /// Each error leaves redacted, as every other call's does.
    async fn summaries(&self, secrets: &[SecretRef]) -> Vec<Result<Summary, StoreError>> {
        let span = tracing::debug_span!(
            "store",
            store = %self.label,
            backend = self.inner.backend(),
            call = "summaries",
            secrets = secrets.len(),
            status = tracing::field::Empty,
        );
        let answers: Vec<_> = self
            .inner
            .summaries(secrets)
            .instrument(span.clone())
            .await
            .into_iter()
            .map(|a| a.map_err(|e| e.redacted(&Redactor::none())))
            .collect();
        let status = answers.iter().find_map(|a| a.as_ref().err()).map_or("ok", StoreError::metric_label);
        span.record("status", status);
        *self.counts.lock().unwrap_or_else(|p| p.into_inner()).entry(("summaries", status)).or_default() += 1;
        answers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    /// A store whose writes fail with an error that quotes the value, JSON-escaped, as a server echoing the
    /// request would; reads and the rest are the memory store's.
    #[derive(Debug)]
    struct Echoing(MemoryStore);

    fn echo(value: &SecretValue) -> StoreError {
        let quoted = serde_json::to_string(value.expose()).unwrap_or_default();
        StoreError::Invalid { backend: "echo", detail: format!("ValidationException: SecretString={quoted}") }
    }

    #[async_trait]
    impl Store for Echoing {
        fn backend(&self) -> &'static str {
            "echo"
        }
        fn capabilities(&self) -> Capabilities {
            self.0.capabilities()
        }
        async fn current(&self, secret: &SecretRef) -> Result<Option<Stored>, StoreError> {
            self.0.current(secret).await
        }
        async fn pending(&self, secret: &SecretRef) -> Result<Option<Pending>, StoreError> {
            self.0.pending(secret).await
        }
        async fn previous(&self, secret: &SecretRef) -> Result<Option<Stored>, StoreError> {
            self.0.previous(secret).await
        }
        async fn stage(
            &self,
            _: &SecretRef,
            value: &SecretValue,
            _: &RotationId,
            _: &Metadata,
        ) -> Result<(), StoreError> {
            Err(echo(value))
        }
        async fn promote(&self, secret: &SecretRef, id: &RotationId) -> Result<(), StoreError> {
            self.0.promote(secret, id).await
        }
        async fn discard(&self, secret: &SecretRef, id: &RotationId) -> Result<(), StoreError> {
            self.0.discard(secret, id).await
        }
        async fn write_current(
            &self,
            _: &SecretRef,
            value: &SecretValue,
            _: &Metadata,
        ) -> Result<(), StoreError> {
            Err(echo(value))
        }
        async fn check(&self) -> Result<(), StoreError> {
            self.0.check().await
        }
    }

    #[tokio::test]
    async fn a_write_error_that_echoes_the_value_leaves_the_wrapper_without_it() {
        let store = Instrumented::new("echo", Arc::new(Echoing(MemoryStore::new())));
        let secret = SecretRef::new("app/key", "job");
        let value = SecretValue::new("Zq7!\"quoted\"-value\\x");
        let metadata = Metadata::new(None, chrono::Utc::now(), 1);
        let staged = store.stage(&secret, &value, &RotationId::new(), &metadata).await.unwrap_err();
        let written = store.write_current(&secret, &value, &metadata).await.unwrap_err();
        for err in [staged, written] {
            let shown = err.to_string();
            assert!(shown.contains("SecretString=\"[redacted]\""), "{shown}");
            assert!(!shown.contains("Zq7!"), "{shown}");
        }
    }
}
