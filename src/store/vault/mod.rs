//! Stand-in for the HashiCorp Vault / OpenBao store while it is written (replaced on merge).
use super::StoreError;
use std::path::PathBuf;

pub const BACKEND: &str = "hashicorp_vault";

#[derive(Clone, Debug)]
pub struct VaultSettings {
    pub address: String,
    pub mount: String,
    pub namespace: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub pending_suffix: String,
    pub auth: VaultAuth,
}

#[derive(Clone, Debug)]
pub enum VaultAuth {
    TokenFile(PathBuf),
    AppRole { mount: String, role_id: String, secret_id_file: PathBuf },
    Kubernetes { mount: String, role: String, token_file: PathBuf },
}

#[derive(Debug)]
pub struct VaultStore;

impl VaultStore {
    pub async fn new(_settings: VaultSettings) -> Result<crate::store::memory::MemoryStore, StoreError> {
        Err(StoreError::NotSupported { backend: BACKEND, what: "not built yet".into() })
    }
}
