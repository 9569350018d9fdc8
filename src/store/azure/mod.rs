//! Stand-in for the Azure Key Vault store while it is written (replaced on merge).
use super::StoreError;
use std::collections::BTreeMap;
use std::path::PathBuf;

pub const BACKEND: &str = "azure_key_vault";

#[derive(Clone, Debug)]
pub struct AzureSettings {
    pub vault_url: String,
    pub content_type: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub set_expiry: bool,
    pub identity: AzureIdentity,
}

#[derive(Clone, Debug)]
pub enum AzureIdentity {
    ManagedIdentity { client_id: Option<String> },
    WorkloadIdentity,
    ClientSecret { tenant_id: String, client_id: String, secret_file: PathBuf },
    ClientCertificate { tenant_id: String, client_id: String, certificate_file: PathBuf },
    DeveloperCli,
}

#[derive(Debug)]
pub struct AzureKeyVaultStore;

impl AzureKeyVaultStore {
    pub fn new(_settings: AzureSettings) -> Result<crate::store::memory::MemoryStore, StoreError> {
        Err(StoreError::NotSupported { backend: BACKEND, what: "not built yet".into() })
    }
}

pub fn valid_secret_name(name: &str) -> bool {
    let pending = format!("{name}-pending");
    !name.is_empty() && pending.len() <= 127 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}
