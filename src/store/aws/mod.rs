//! `aws_secrets_manager`: the store contract on AWS Secrets Manager, with AWS's own staging labels.
//!
//! The slots are AWS's labels (current = `AWSCURRENT`, previous = `AWSPREVIOUS`, pending = `AWSPENDING`) and a
//! rotation id is a version id (`ClientRequestToken`), so this is the protocol AWS's own rotation functions
//! speak, and AWS-native consumers and tooling understand what rotavault leaves behind:
//!
//! - **stage(R)**: after checking what is pending (AWS would move the label silently; moto would even overwrite
//!   the value), `PutSecretValue(ClientRequestToken = R)` under rotavault's own label, then
//!   `UpdateSecretVersionStage(AWSPENDING, MoveToVersionId = R)`, which AWS refuses when another version holds
//!   the label, then a read-back: of two concurrent stages, at most one holds `AWSPENDING` at the end.
//! - **promote(R)**: `UpdateSecretVersionStage(AWSCURRENT, MoveToVersionId = R, RemoveFromVersionId = current)`
//!   (AWS gives the old current `AWSPREVIOUS`), then remove `AWSPENDING` from R. A promote cut between the two
//!   calls finds R current and only removes the label.
//! - **discard(R)**: remove `AWSPENDING` from R.
//! - **write_current**: put under rotavault's own label, move `AWSCURRENT` to it, drop the label.
//! - **reads**: `DescribeSecret`, then `GetSecretValue` by the version id that holds the label.
//! - **pending**: only a version rotavault staged (it writes the version's metadata tag first). Any other
//!   `AWSPENDING` (an AWS rotation function's, a person's) is `Conflict`, naming the command that clears it:
//!   never a value to verify against the target or to promote.
//!
//! Ownership and metadata live in secret-level tags (`metadata`); a new secret starts with a placeholder
//! version so that a staged value never becomes `AWSCURRENT` by AWS's first-version rule (`snapshot`).
//!
//! - `client`: `Api`, one method per SDK call, and the `check` probe.
//! - `errors`: the one mapping from SDK errors to `StoreError`.
//! - `metadata`: the tags: ownership, per-version metadata, pruning, the 50-tag budget.
//! - `snapshot`: one `DescribeSecret` answer and the decisions made from it.
//! - `write`: the four writes, step by step.

mod client;
mod errors;
mod metadata;
mod snapshot;
#[cfg(test)]
mod tests;
mod write;

use super::{Capabilities, Metadata, Pending, RotationId, SecretRef, Store, StoreError, Stored};
use crate::secret::SecretValue;
use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Region};
use client::{Api, Fetched};
use snapshot::{CURRENT, PENDING, PREVIOUS, is_placeholder};
use std::collections::BTreeMap;
use std::fmt;

pub const BACKEND: &str = "aws_secrets_manager";

/// How to reach Secrets Manager and what to put on the secrets rotavault creates.
#[derive(Clone, Debug, Default)]
pub struct AwsSettings {
    /// The region; `None` takes it from the standard chain (`AWS_REGION`, the profile).
    pub region: Option<String>,
    /// Another endpoint than AWS's (a VPC endpoint, moto in tests).
    pub endpoint_url: Option<String>,
    /// The KMS key new secrets are encrypted with; `None` is the account's `aws/secretsmanager` key.
    pub kms_key_id: Option<String>,
    /// Tags for the secrets rotavault creates or adopts, besides its own (`managed-by`, `rotavault:*`).
    pub tags: BTreeMap<String, String>,
}

/// A store in AWS Secrets Manager. Cheap to clone (clones share the SDK client).
#[derive(Clone)]
pub struct AwsSecretsManagerStore {
    api: Api,
    settings: AwsSettings,
}

fn invalid(detail: String) -> StoreError {
    StoreError::Invalid { backend: BACKEND, detail }
}

impl AwsSecretsManagerStore {
    /// Credentials only from the standard chain (env, profile, web identity/IRSA, EKS Pod Identity, ECS, IMDS).
    ///
    /// Loads the configuration but calls nothing: [`Store::check`] proves the credentials and permissions.
    pub async fn new(settings: AwsSettings) -> Result<Self, StoreError> {
        metadata::reserved(&settings.tags).map_err(invalid)?;
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = &settings.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &settings.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let config = loader.load().await;
        if config.region().is_none() {
            return Err(invalid(
                "no AWS region: set `region` on the store, or AWS_REGION, or a region in the AWS profile"
                    .into(),
            ));
        }
        Ok(Self::from_client(Client::new(&config), settings))
    }

    /// For tests: a ready client (e.g. static credentials + endpoint_url pointing at moto).
    pub fn from_client(client: Client, settings: AwsSettings) -> Self {
        Self { api: Api::new(client), settings }
    }

    /// The version in one slot; `None` if the slot is empty.
    async fn read(&self, secret: &SecretRef, label: &str) -> Result<Option<Slot>, StoreError> {
        let name = &secret.name;
        let Some(snapshot) = self.api.describe(name).await? else {
            return Ok(None);
        };
        // Reading never claims: an adopted secret becomes the job's at its first write.
        snapshot.check(secret)?;
        let Some(version) = snapshot.holder(label, name)? else {
            return Ok(None);
        };
        if is_placeholder(version) {
            return Ok(None);
        }
        let fetched = self.fetch(name, version).await?;
        let (metadata, tracked) = match snapshot.metadata(version, name)? {
            Some(metadata) => (metadata, true),
            None => (Metadata::synthesized(fetched.created), false),
        };
        Ok(Some(Slot { version: version.to_owned(), value: fetched.value, metadata, tracked }))
    }

    /// A version the snapshot listed; its absence now means it changed under us (AWS deletes only versions
    /// without labels, so this one lost its label after the describe).
    async fn fetch(&self, name: &str, version: &str) -> Result<Fetched, StoreError> {
        self.api.get_version(name, version).await?.ok_or_else(|| StoreError::Transient {
            backend: BACKEND,
            detail: format!("version {version} of `{name}` changed while it was read"),
            retry_after: None,
        })
    }

    async fn read_stored(&self, secret: &SecretRef, label: &str) -> Result<Option<Stored>, StoreError> {
        let slot = self.read(secret, label).await?;
        Ok(slot.map(|slot| Stored { value: slot.value, metadata: slot.metadata }))
    }
}

/// What a slot holds: the version, its value, and its metadata.
struct Slot {
    version: String,
    value: SecretValue,
    metadata: Metadata,
    /// Whether rotavault recorded the metadata (if not, it was synthesized: a version rotavault did not write).
    tracked: bool,
}

impl fmt::Debug for AwsSecretsManagerStore {
    /// Where the store is, never the client's credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = self.api.client().config();
        f.debug_struct("AwsSecretsManagerStore")
            .field("region", &config.region().map(|r| r.as_ref().to_owned()))
            .field("endpoint_url", &self.settings.endpoint_url)
            .field("kms_key_id", &self.settings.kms_key_id)
            .field("tags", &self.settings.tags)
            .finish()
    }
}

#[async_trait]
impl Store for AwsSecretsManagerStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            durable: true,
            // Promote is two calls: move AWSCURRENT, then remove AWSPENDING (safe to repeat after a cut).
            atomic_promote: false,
            // AWSPENDING is attached only where no version holds it (AWS's compare-and-set), then read back.
            exclusive_stage: true,
            // Older versions stay readable by version id until AWS retires them.
            versioned: true,
        }
    }

    #[tracing::instrument(skip_all, fields(backend = BACKEND, name = %secret.name))]
    async fn current(&self, secret: &SecretRef) -> Result<Option<Stored>, StoreError> {
        self.read_stored(secret, CURRENT).await
    }

    #[tracing::instrument(skip_all, fields(backend = BACKEND, name = %secret.name))]
    async fn pending(&self, secret: &SecretRef) -> Result<Option<Pending>, StoreError> {
        let Some(Slot { version, value, metadata, tracked }) = self.read(secret, PENDING).await? else {
            return Ok(None);
        };
        // rotavault writes a version's metadata tag before the version itself, so a pending without one was put
        // there by someone else (an AWS rotation function, a person). Its value is not handed out: recovery would
        // spend a login verifying it against the target, and promote a value nobody can vouch for.
        if !tracked {
            return Err(errors::foreign_pending(&secret.name, &version));
        }
        // The pending's rotation id is its version id.
        let rotation_id =
            RotationId::parse(&version).map_err(|_| errors::foreign_pending(&secret.name, &version))?;
        Ok(Some(Pending { value, rotation_id, metadata }))
    }

    #[tracing::instrument(skip_all, fields(backend = BACKEND, name = %secret.name))]
    async fn previous(&self, secret: &SecretRef) -> Result<Option<Stored>, StoreError> {
        self.read_stored(secret, PREVIOUS).await
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
        metadata: &Metadata,
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
        metadata: &Metadata,
    ) -> Result<(), StoreError> {
        self.write_value(secret, value, metadata).await
    }

    #[tracing::instrument(skip_all, fields(backend = BACKEND))]
    async fn check(&self) -> Result<(), StoreError> {
        metadata::reserved(&self.settings.tags).map_err(invalid)?;
        self.api.probe().await
    }
}
