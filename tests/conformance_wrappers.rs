//! The store contract, run against the wrappers: `Instrumented` (used in production around every store) and the
//! tests' `FaultyStore` with no fault queued. A wrapper must change nothing of the contract.

mod support;

use async_trait::async_trait;
use rotavault::secret::SecretValue;
use rotavault::store::Store;
use rotavault::store::conformance::Fixture;
use rotavault::store::instrumented::Instrumented;
use rotavault::store::memory::MemoryStore;
use std::sync::Arc;

struct Wrapped {
    inner: Arc<MemoryStore>,
    outer: Arc<dyn Store>,
}

#[async_trait]
impl Fixture for Wrapped {
    fn store(&self) -> Arc<dyn Store> {
        self.outer.clone()
    }

    async fn plant_foreign(&self, name: &str, value: &SecretValue) {
        self.inner.plant_foreign(name, value);
    }
}

mod instrumented {
    use super::*;

    rotavault::conformance_suite!(|| async {
        let inner = Arc::new(MemoryStore::new());
        Wrapped { outer: Arc::new(Instrumented::new("mem", inner.clone())), inner }
    });

    #[tokio::test]
    async fn calls_are_counted_by_call_and_status() {
        let inner = Arc::new(MemoryStore::new());
        let store = Instrumented::new("mem", inner);
        let secret = rotavault::store::SecretRef::new("x", "job");
        store.current(&secret).await.expect("current");
        store.promote(&secret, &rotavault::store::RotationId::new()).await.expect_err("nothing pending");
        let counts = store.counts();
        assert_eq!(counts.get(&("current", "ok")), Some(&1));
        assert_eq!(counts.get(&("promote", "not_found")), Some(&1));
    }
}

mod faulty {
    use super::support::faulty_store::FaultyStore;
    use super::*;

    rotavault::conformance_suite!(|| async {
        let inner = Arc::new(MemoryStore::new());
        Wrapped { outer: Arc::new(FaultyStore::new(inner.clone())), inner }
    });
}
