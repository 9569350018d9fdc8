//! The store contract, run against the `file` backend: each case gets its own directory and freshly generated key.

use async_trait::async_trait;
use rotavault::secret::SecretValue;
use rotavault::store::Store;
use rotavault::store::conformance::Fixture;
use rotavault::store::file::{FileStore, IdentitySource, keygen};
use std::sync::Arc;
use tempfile::TempDir;

struct FileFixture {
    store: Arc<FileStore>,
    // Kept so that the directory outlives the store.
    _dir: TempDir,
}

impl FileFixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = dir.path().join("store.key");
        keygen(&key).expect("keygen");
        let store = FileStore::open(dir.path().join("secrets.age"), IdentitySource::File(key))
            .expect("open the file store");
        Self { store: Arc::new(store), _dir: dir }
    }
}

#[async_trait]
impl Fixture for FileFixture {
    fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    async fn plant_foreign(&self, name: &str, value: &SecretValue) {
        self.store.plant_foreign(name, value).await.expect("plant a foreign secret");
    }
}

rotavault::conformance_suite!(|| async { FileFixture::new() });
