//! `FaultyStore`: wraps any store and makes chosen calls fail or hang, for engine tests. With no faults queued it
//! passes every call through, and it runs the conformance suite to prove it.

use async_trait::async_trait;
use rotavault::secret::SecretValue;
use rotavault::store::{Capabilities, Metadata, Pending, RotationId, SecretRef, Store, StoreError, Stored};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The value another rotation stages when it overtakes one (`overtake_next_stage`).
pub const INTERLOPER: &str = "Interloper-value-7!x";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Current,
    Pending,
    Previous,
    Stage,
    Promote,
    Discard,
    WriteCurrent,
    Check,
}

#[derive(Clone, Debug)]
pub enum Fault {
    Fail(StoreError),
    Hang,
    /// The call happens in the inner store, then its answer is lost.
    DoThenFail(StoreError),
}

#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn Store>,
    faults: Mutex<HashMap<Op, Vec<Fault>>>,
    calls: Mutex<Vec<Op>>,
    /// How many of the next stages another rotation overtakes (see [`FaultyStore::overtake_next_stage`]).
    overtaken: Mutex<usize>,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self { inner, faults: Mutex::default(), calls: Mutex::default(), overtaken: Mutex::default() }
    }

    /// The next `times` calls of `op` get `fault`.
    pub fn inject(&self, op: Op, fault: Fault, times: usize) {
        let mut faults = self.faults.lock().expect("faults");
        let queue = faults.entry(op).or_default();
        for _ in 0..times {
            queue.push(fault.clone());
        }
    }

    /// The next stage happens and is answered; then another process's rotation takes the pending slot (a replica
    /// that staged between this one's Stage and its Apply), with the value [`INTERLOPER`].
    pub fn overtake_next_stage(&self) {
        *self.overtaken.lock().expect("overtaken") += 1;
    }

    pub fn clear(&self) {
        self.faults.lock().expect("faults").clear();
    }

    pub fn calls(&self, op: Op) -> usize {
        self.calls.lock().expect("calls").iter().filter(|&&c| c == op).count()
    }

    pub fn permanent(detail: &str) -> StoreError {
        StoreError::PermissionDenied { backend: "faulty", detail: detail.into() }
    }

    pub fn transient(detail: &str) -> StoreError {
        StoreError::Transient { backend: "faulty", detail: detail.into(), retry_after: None }
    }

    async fn run<T, F>(&self, op: Op, call: F) -> Result<T, StoreError>
    where
        F: std::future::Future<Output = Result<T, StoreError>>,
    {
        self.calls.lock().expect("calls").push(op);
        let fault = {
            let mut faults = self.faults.lock().expect("faults");
            faults.get_mut(&op).and_then(|q| (!q.is_empty()).then(|| q.remove(0)))
        };
        match fault {
            None => call.await,
            Some(Fault::Fail(e)) => Err(e),
            Some(Fault::Hang) => std::future::pending().await,
            Some(Fault::DoThenFail(e)) => {
                let _ = call.await;
                Err(e)
            }
        }
    }
}

#[async_trait]
impl Store for FaultyStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn current(&self, secret: &SecretRef) -> Result<Option<Stored>, StoreError> {
        self.run(Op::Current, self.inner.current(secret)).await
    }

    async fn pending(&self, secret: &SecretRef) -> Result<Option<Pending>, StoreError> {
        self.run(Op::Pending, self.inner.pending(secret)).await
    }

    async fn previous(&self, secret: &SecretRef) -> Result<Option<Stored>, StoreError> {
        self.run(Op::Previous, self.inner.previous(secret)).await
    }

    async fn stage(
        &self,
        secret: &SecretRef,
        value: &SecretValue,
        id: &RotationId,
        m: &Metadata,
    ) -> Result<(), StoreError> {
        let staged = self.run(Op::Stage, self.inner.stage(secret, value, id, m)).await;
        let overtake = {
            let mut left = self.overtaken.lock().expect("overtaken");
            let overtake = staged.is_ok() && *left > 0;
            *left -= usize::from(overtake);
            overtake
        };
        if overtake {
            self.inner.discard(secret, id).await?;
            self.inner.stage(secret, &SecretValue::new(INTERLOPER), &RotationId::new(), m).await?;
        }
        staged
    }

    async fn promote(&self, secret: &SecretRef, id: &RotationId) -> Result<(), StoreError> {
        self.run(Op::Promote, self.inner.promote(secret, id)).await
    }

    async fn discard(&self, secret: &SecretRef, id: &RotationId) -> Result<(), StoreError> {
        self.run(Op::Discard, self.inner.discard(secret, id)).await
    }

    async fn write_current(
        &self,
        secret: &SecretRef,
        value: &SecretValue,
        m: &Metadata,
    ) -> Result<(), StoreError> {
        self.run(Op::WriteCurrent, self.inner.write_current(secret, value, m)).await
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.run(Op::Check, self.inner.check()).await
    }
}
