//! Which Entra ID identity the store uses: one [`AzureIdentity`] in, one `TokenCredential` out.
//!
//! Nothing here asks for a token: credentials are lazy, and the first Key Vault call (normally `check`) is
//! where a wrong identity shows, as `Unauthenticated`. What can be known at start-up is refused here as
//! `Invalid`: a missing secret or certificate file, workload identity without its environment. Secrets are read
//! from files (never inline config), and no message quotes a file's content.

use super::{AzureIdentity, BACKEND, certificate};
use crate::store::StoreError;
use azure_core::credentials::{Secret, TokenCredential};
use azure_identity::{
    AzureCliCredential, ClientSecretCredential, ManagedIdentityCredential, ManagedIdentityCredentialOptions,
    UserAssignedId, WorkloadIdentityCredential,
};
use std::path::Path;
use std::sync::Arc;
use zeroize::Zeroizing;

fn invalid(detail: String) -> StoreError {
    StoreError::Invalid { backend: BACKEND, detail }
}

pub(super) fn credential(identity: &AzureIdentity) -> Result<Arc<dyn TokenCredential>, StoreError> {
    match identity {
        AzureIdentity::ManagedIdentity { client_id } => {
            let options = ManagedIdentityCredentialOptions {
                user_assigned_id: client_id.clone().map(UserAssignedId::ClientId),
                ..Default::default()
            };
            let credential = ManagedIdentityCredential::new(Some(options))
                .map_err(|e| invalid(format!("managed identity: {e}")))?;
            Ok(credential)
        }
        AzureIdentity::WorkloadIdentity => {
            let credential = WorkloadIdentityCredential::new(None).map_err(|e| {
                invalid(format!(
                    "workload identity: {e}; it reads AZURE_TENANT_ID, AZURE_CLIENT_ID and \
                     AZURE_FEDERATED_TOKEN_FILE, which AKS sets on pods whose service account has the \
                     azure.workload.identity/client-id annotation and the azure.workload.identity/use=true label"
                ))
            })?;
            Ok(credential)
        }
        AzureIdentity::ClientSecret { tenant_id, client_id, secret_file } => {
            let secret = read_secret_file(secret_file)?;
            let credential =
                ClientSecretCredential::new(tenant_id, client_id.clone(), Secret::new(secret), None)
                    .map_err(|e| invalid(format!("client secret credential for client {client_id}: {e}")))?;
            Ok(credential)
        }
        AzureIdentity::ClientCertificate { tenant_id, client_id, certificate_file } => {
            certificate::credential(tenant_id, client_id, certificate_file)
        }
        AzureIdentity::DeveloperCli => {
            let credential =
                AzureCliCredential::new(None).map_err(|e| invalid(format!("Azure CLI credential: {e}")))?;
            Ok(credential)
        }
    }
}

/// The client secret, without the line end an editor or `echo` leaves.
fn read_secret_file(path: &Path) -> Result<String, StoreError> {
    let text =
        Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            invalid(format!("the client secret file {}: cannot be read: {e}", path.display()))
        })?);
    let secret = text.trim_end_matches(['\r', '\n']);
    if secret.is_empty() {
        return Err(invalid(format!("the client secret file {} is empty", path.display())));
    }
    Ok(secret.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_client_secret_is_read_from_its_file_without_the_line_end() {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        file.write_all(b"s3cr3t-value\n").expect("write");
        assert_eq!(read_secret_file(file.path()).expect("read"), "s3cr3t-value");
        let identity = AzureIdentity::ClientSecret {
            tenant_id: "00000000-0000-0000-0000-000000000001".into(),
            client_id: "client".into(),
            secret_file: file.path().to_owned(),
        };
        assert!(credential(&identity).is_ok());
    }

    #[test]
    fn a_missing_or_empty_file_is_invalid_and_names_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("nope");
        let err = read_secret_file(&missing).expect_err("missing");
        assert!(matches!(err, StoreError::Invalid { .. }) && err.to_string().contains("nope"), "{err}");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").expect("write");
        assert!(read_secret_file(&empty).expect_err("empty").to_string().contains("is empty"));
        let identity = AzureIdentity::ClientCertificate {
            tenant_id: "t".into(),
            client_id: "c".into(),
            certificate_file: missing,
        };
        let err = credential(&identity).expect_err("missing certificate");
        assert!(err.to_string().contains("cannot be read"), "{err}");
    }

    #[test]
    fn managed_and_cli_identities_build_without_calling_anything() {
        assert!(credential(&AzureIdentity::ManagedIdentity { client_id: None }).is_ok());
        assert!(credential(&AzureIdentity::ManagedIdentity { client_id: Some("abc".into()) }).is_ok());
        assert!(credential(&AzureIdentity::DeveloperCli).is_ok());
    }
}
