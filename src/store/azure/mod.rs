//! `azure_key_vault`: the store contract on Azure Key Vault secrets, through the official `SecretClient`.
//!
//! Key Vault has versions but no staging labels, and soft delete reserves a deleted name, so the slots are two
//! secrets that only ever gain versions:
//!
//! - **current** is the latest version of `NAME`; its tags say who owns it and its metadata (`tags`), and
//!   `previous-version` names the version it replaced. **previous** is that version, read by id.
//! - **pending** is the latest version of the companion `NAME-pending` when it is enabled and tagged
//!   `state=pending` with its rotation id.
//! - **stage(R)**: check what is pending (same id and value: no-op; otherwise `Conflict`), then a new
//!   `NAME-pending` version, then read pending back: a stage whose version is not the latest lost a race
//!   (`Conflict`). Without a conditional write, one race stays open (`Capabilities::exclusive_stage` is false):
//!   a rival that read before this stage wrote, and writes after it read back, also succeeds.
//! - **promote(R)**: a new version of `NAME` with the pending value and tags (`previous-version` = the old
//!   current), then one update of the pending version: `state=done`, disabled. A promote cut between the two
//!   finds R current and only finishes the update.
//! - **discard(R)**: one update of the pending version: `state=discarded`, disabled.
//! - **write_current**: a new version of `NAME`; pending untouched.
//!
//! Nothing is ever deleted. `exp` is set on current versions when the store says `set_expiry` and the job has a
//! `max_age`: a signal for people and Azure tooling, never relied on (Key Vault serves a value after `exp`).
//!
//! - `client`: `Api`, one method per Key Vault call, and the `check` probe.
//! - `errors`: the one mapping from SDK errors to `StoreError`.
//! - `pair`: the latest versions of `NAME` and `NAME-pending`, and the decisions made from them (ownership).
//! - `tags`: the per-version tags: ownership, metadata, state, the 15-tag budget.
//! - `write`: the four writes, step by step.
//! - `identity` and `certificate`: the Entra ID credential each `AzureIdentity` becomes.

mod certificate;
mod client;
mod errors;
mod identity;
mod pair;
mod tags;
mod write;

use super::{Capabilities, Pending, RotationId, SecretRef, Store, StoreError, Stored};
use crate::secret::SecretValue;
use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_core::http::{ExponentialRetryOptions, RetryOptions};
use azure_security_keyvault_secrets::SecretClient;
pub use azure_security_keyvault_secrets::SecretClientOptions;
use client::{Api, Read};
use pair::Pair;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

pub const BACKEND: &str = "azure_key_vault";

/// The suffix of the companion secret that holds pending values.
const PENDING_SUFFIX: &str = "-pending";
/// Key Vault's longest secret name.
const MAX_NAME: usize = 127;
/// Key Vault's longest `contentType`.
const MAX_CONTENT_TYPE: usize = 255;

/// How to reach the vault and what to put on the versions rotavault writes.
#[derive(Clone, Debug)]
pub struct AzureSettings {
    /// `https://NAME.vault.azure.net` (or a sovereign cloud's vault domain).
    pub vault_url: String,
    /// The `contentType` of every version rotavault writes (e.g. `application/json` for JSON documents).
    pub content_type: Option<String>,
    /// Tags for every version rotavault writes, besides its own six: at most nine.
    pub tags: BTreeMap<String, String>,
    /// Set `exp` = rotated-at + the job's `max_age` on current versions.
    pub set_expiry: bool,
    pub identity: AzureIdentity,
}

/// The Entra ID identity the store authenticates as.
#[derive(Clone, Debug)]
pub enum AzureIdentity {
    /// The managed identity of the VM, App Service or container: system-assigned, or the user-assigned one with
    /// this client id.
    ManagedIdentity { client_id: Option<String> },
    /// AKS workload identity, from `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and `AZURE_FEDERATED_TOKEN_FILE`.
    WorkloadIdentity,
    /// A service principal's client secret, read from a file.
    ClientSecret { tenant_id: String, client_id: String, secret_file: PathBuf },
    /// A service principal's certificate: a PEM file with the certificate and its unencrypted RSA key.
    ClientCertificate { tenant_id: String, client_id: String, certificate_file: PathBuf },
    /// The signed-in Azure CLI (`az login`), for local use.
    DeveloperCli,
}

/// A store in Azure Key Vault. Cheap to clone (clones share the client).
#[derive(Clone)]
pub struct AzureKeyVaultStore {
    api: Api,
    settings: AzureSettings,
}

fn invalid(detail: String) -> StoreError {
    StoreError::Invalid { backend: BACKEND, detail }
}

/// Key Vault's own rule (1 to 127 of `0-9 a-z A-Z -`), for `name` and for its companion `name-pending`.
pub fn valid_secret_name(name: &str) -> bool {
    let valid = |n: &str| {
        (1..=MAX_NAME).contains(&n.len()) && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    valid(name) && valid(&pending_name(name))
}

fn pending_name(name: &str) -> String {
    format!("{name}{PENDING_SUFFIX}")
}

/// Refuses settings Key Vault would refuse later, one call at a time.
fn validate(settings: &AzureSettings) -> Result<(), StoreError> {
    let url = azure_core::http::Url::parse(&settings.vault_url)
        .map_err(|e| invalid(format!("`vault_url` {:?} is not a URL: {e}", settings.vault_url)))?;
    if url.scheme() != "https" || url.host_str().is_none() {
        return Err(invalid(format!(
            "`vault_url` {:?} must be https://NAME.vault.azure.net: the Azure SDK sends tokens only over TLS",
            settings.vault_url
        )));
    }
    if settings.content_type.as_ref().is_some_and(|c| c.chars().count() > MAX_CONTENT_TYPE) {
        return Err(invalid(format!(
            "`content_type` is longer than Key Vault's {MAX_CONTENT_TYPE} characters"
        )));
    }
    tags::check_configured(&settings.tags).map_err(invalid)
}

impl AzureKeyVaultStore {
    /// The production store: the identity the settings name, the SDK's reqwest transport, and a few quick
    /// retries of throttling and server errors (the engine retries longer, with its own back-off).
    ///
    /// Builds the credential but calls nothing: [`Store::check`] proves the identity and its permissions.
    pub fn new(settings: AzureSettings) -> Result<Self, StoreError> {
        validate(&settings)?;
        let credential = identity::credential(&settings.identity)?;
        let mut options = SecretClientOptions::default();
        options.client_options.retry = RetryOptions::exponential(ExponentialRetryOptions {
            max_retries: 3,
            max_total_elapsed: azure_core::time::Duration::seconds(30),
            ..Default::default()
        });
        Self::with_parts(settings, credential, options)
    }

    /// Tests: any credential and transport (the fake). `settings.identity` is not used.
    pub fn with_parts(
        settings: AzureSettings,
        credential: Arc<dyn TokenCredential>,
        options: SecretClientOptions,
    ) -> Result<Self, StoreError> {
        validate(&settings)?;
        let client = SecretClient::new(&settings.vault_url, credential, Some(options))
            .map_err(|e| invalid(format!("`vault_url` {:?}: {e}", settings.vault_url)))?;
        Ok(Self { api: Api::new(client), settings })
    }

    /// Refuses what Key Vault would refuse, before any call.
    fn check_ref(secret: &SecretRef) -> Result<(), StoreError> {
        if !valid_secret_name(&secret.name) {
            return Err(invalid(format!(
                "`{}` is not a Key Vault secret name rotavault can use: 1 to {} characters of letters, digits \
                 and '-' (rotavault also writes `NAME{PENDING_SUFFIX}`, so {} at most)",
                secret.name,
                MAX_NAME,
                MAX_NAME - PENDING_SUFFIX.len()
            )));
        }
        tags::check_job(&secret.job).map_err(invalid)
    }

    /// The latest versions of `NAME` and `NAME-pending`, read concurrently.
    async fn read_pair(&self, secret: &SecretRef) -> Result<Pair, StoreError> {
        Self::check_ref(secret)?;
        let pending = pending_name(&secret.name);
        let (current, pending) = tokio::join!(self.api.latest(&secret.name), self.api.latest(&pending));
        Ok(Pair { current: current?, pending: pending? })
    }

    /// Reads the pair and checks that the job may read. Reading never claims: an adopted name becomes the job's
    /// at its first write.
    async fn open_for_read(&self, secret: &SecretRef) -> Result<Pair, StoreError> {
        let pair = self.read_pair(secret).await?;
        pair.check(secret)?;
        Ok(pair)
    }
}

impl fmt::Debug for AzureKeyVaultStore {
    /// Where the store is and how it authenticates; never a credential.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureKeyVaultStore")
            .field("vault_url", &self.settings.vault_url)
            .field("content_type", &self.settings.content_type)
            .field("tags", &self.settings.tags)
            .field("set_expiry", &self.settings.set_expiry)
            .field("identity", &self.settings.identity)
            .finish()
    }
}

#[async_trait]
impl Store for AzureKeyVaultStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            durable: true,
            // Promote is two calls: a new version of NAME, then the update of the pending version (safe to
            // repeat after a cut).
            atomic_promote: false,
            // Key Vault has no conditional write; a stage reads back what is pending, which settles every race
            // but one (see `write`).
            exclusive_stage: false,
            // Every version stays readable by id (and in the portal) until the secret is purged.
            versioned: true,
        }
    }

    #[tracing::instrument(skip_all, fields(backend = BACKEND, name = %secret.name))]
    async fn current(&self, secret: &SecretRef) -> Result<Option<Stored>, StoreError> {
        let pair = self.open_for_read(secret).await?;
        Ok(pair
            .current(&secret.name)?
            .map(|(version, metadata)| Stored { value: version.value.clone(), metadata }))
    }

    #[tracing::instrument(skip_all, fields(backend = BACKEND, name = %secret.name))]
    async fn pending(&self, secret: &SecretRef) -> Result<Option<Pending>, StoreError> {
        let pair = self.open_for_read(secret).await?;
        Ok(pair.staged(&secret.name)?.map(|staged| Pending {
            value: staged.version.value.clone(),
            rotation_id: staged.rotation_id,
            metadata: staged.metadata,
        }))
    }

    #[tracing::instrument(skip_all, fields(backend = BACKEND, name = %secret.name))]
    async fn previous(&self, secret: &SecretRef) -> Result<Option<Stored>, StoreError> {
        let pair = self.open_for_read(secret).await?;
        // A disabled current cannot say where its previous is.
        pair.current(&secret.name)?;
        let Some(version) = pair.previous_version() else {
            return Ok(None);
        };
        match self.api.version(&secret.name, version).await? {
            Read::Found(version) => {
                let metadata = pair::metadata_of(&secret.name, &version)?;
                Ok(Some(Stored { value: version.value, metadata }))
            }
            // Someone disabled the replaced value (revoked it): it is no longer available as previous.
            Read::Disabled => {
                tracing::warn!("the previous version is disabled; reading previous as empty");
                Ok(None)
            }
            // Versions cannot be deleted one by one: only a purge of the whole secret removes them.
            Read::Absent => Ok(None),
        }
    }

    #[tracing::instrument(
        skip_all,
        fields(backend = BACKEND, name = %secret.name, rotation_id = %rotation_id)
    )]
    async fn stage(
        &self,
        secret: &SecretRef,
        value: &SecretValue,
        rotation_id: &RotationId,
        metadata: &super::Metadata,
    ) -> Result<(), StoreError> {
        self.stage_value(secret, value, rotation_id, metadata).await
    }

    #[tracing::instrument(
        skip_all,
        fields(backend = BACKEND, name = %secret.name, rotation_id = %rotation_id)
    )]
    async fn promote(&self, secret: &SecretRef, rotation_id: &RotationId) -> Result<(), StoreError> {
        self.promote_pending(secret, rotation_id).await
    }

    #[tracing::instrument(
        skip_all,
        fields(backend = BACKEND, name = %secret.name, rotation_id = %rotation_id)
    )]
    async fn discard(&self, secret: &SecretRef, rotation_id: &RotationId) -> Result<(), StoreError> {
        self.discard_pending(secret, rotation_id).await
    }

    #[tracing::instrument(skip_all, fields(backend = BACKEND, name = %secret.name))]
    async fn write_current(
        &self,
        secret: &SecretRef,
        value: &SecretValue,
        metadata: &super::Metadata,
    ) -> Result<(), StoreError> {
        self.write_value(secret, value, metadata).await
    }

    #[tracing::instrument(skip_all, fields(backend = BACKEND))]
    async fn check(&self) -> Result<(), StoreError> {
        validate(&self.settings)?;
        self.api.probe().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AzureSettings {
        AzureSettings {
            vault_url: "https://contoso-kv.vault.azure.net".into(),
            content_type: None,
            tags: BTreeMap::new(),
            set_expiry: false,
            identity: AzureIdentity::ManagedIdentity { client_id: None },
        }
    }

    #[test]
    fn names_follow_key_vaults_rule_for_both_secrets() {
        assert!(valid_secret_name("autotask-optimize365"));
        assert!(valid_secret_name(&"a".repeat(119)));
        assert!(!valid_secret_name(&"a".repeat(120)), "NAME-pending would be 128 characters");
        for bad in ["", "a/b", "a_b", "a.b", "ünï", "a b"] {
            assert!(!valid_secret_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn settings_are_checked_when_the_store_is_built() {
        assert!(validate(&settings()).is_ok());
        let http = AzureSettings { vault_url: "http://contoso-kv.vault.azure.net".into(), ..settings() };
        assert!(validate(&http).expect_err("http").to_string().contains("https"));
        let long = AzureSettings { content_type: Some("x".repeat(256)), ..settings() };
        assert!(validate(&long).is_err());
        let tags = (0..10).map(|i| (format!("t{i}"), "v".to_owned())).collect();
        let many = AzureSettings { tags, ..settings() };
        let err = AzureKeyVaultStore::new(many).expect_err("too many tags");
        assert!(matches!(err, StoreError::Invalid { .. }) && err.to_string().contains("at most 9"), "{err}");
    }

    #[test]
    fn the_debug_form_names_the_vault_and_the_identity_kind() {
        let store = AzureKeyVaultStore::new(settings()).expect("a store");
        let text = format!("{store:?}");
        assert!(text.contains("contoso-kv.vault.azure.net") && text.contains("ManagedIdentity"), "{text}");
    }
}
