//! The store contract, run against AWS Secrets Manager on a real moto server.
//!
//! `scripts/test` starts moto and exports `ROTAVAULT_TEST_AWS_ENDPOINT`; without it these tests fail (they never
//! skip). All cases share the one server: the suite uses fresh names, so no case resets it. The cases live in
//! `mod aws` so that `cargo test aws` selects them.

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use rotavault::secret::SecretValue;
use rotavault::store::Store;
use rotavault::store::aws::{AwsSecretsManagerStore, AwsSettings};
use rotavault::store::conformance::Fixture;
use std::sync::Arc;

struct AwsFixture {
    store: Arc<AwsSecretsManagerStore>,
    client: Client,
}

fn moto_client() -> Client {
    let endpoint = std::env::var("ROTAVAULT_TEST_AWS_ENDPOINT").expect(
        "moto is not running: run the tests through scripts/test (ROTAVAULT_TEST_AWS_ENDPOINT is unset)",
    );
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("rotavault-test", "rotavault-test", None, None, "tests"))
        .endpoint_url(endpoint)
        .build();
    Client::from_conf(config)
}

impl AwsFixture {
    fn new() -> Self {
        let client = moto_client();
        let store = AwsSecretsManagerStore::from_client(client.clone(), AwsSettings::default());
        Self { store: Arc::new(store), client }
    }
}

#[async_trait]
impl Fixture for AwsFixture {
    fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// A secret as the console or another tool makes it: a value, and no tags.
    async fn plant_foreign(&self, name: &str, value: &SecretValue) {
        self.client
            .create_secret()
            .name(name)
            .secret_string(value.expose())
            .send()
            .await
            .expect("plant a foreign secret in moto");
    }
}

mod aws {
    use super::AwsFixture;

    rotavault::conformance_suite!(|| async { AwsFixture::new() });
}
