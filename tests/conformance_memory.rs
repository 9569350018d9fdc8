//! The store contract, run against the `memory` backend: the reference semantics.

use async_trait::async_trait;
use rotavault::secret::SecretValue;
use rotavault::store::Store;
use rotavault::store::conformance::Fixture;
use rotavault::store::memory::MemoryStore;
use std::sync::Arc;

struct MemoryFixture(Arc<MemoryStore>);

#[async_trait]
impl Fixture for MemoryFixture {
    fn store(&self) -> Arc<dyn Store> {
        self.0.clone()
    }

    async fn plant_foreign(&self, name: &str, value: &SecretValue) {
        self.0.plant_foreign(name, value);
    }
}

rotavault::conformance_suite!(|| async { MemoryFixture(Arc::new(MemoryStore::new())) });
