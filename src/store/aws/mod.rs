//! Stand-in for the AWS Secrets Manager store while it is written (replaced on merge).
use super::{StoreError};
use std::collections::BTreeMap;

pub const BACKEND: &str = "aws_secrets_manager";

#[derive(Clone, Debug, Default)]
pub struct AwsSettings {
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub kms_key_id: Option<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug)]
pub struct AwsSecretsManagerStore;

impl AwsSecretsManagerStore {
    pub async fn new(_settings: AwsSettings) -> Result<crate::store::memory::MemoryStore, StoreError> {
        Err(StoreError::NotSupported { backend: BACKEND, what: "not built yet".into() })
    }
}
