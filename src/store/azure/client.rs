//! [`Api`]: the Key Vault calls rotavault makes, through the official `SecretClient`, in rotavault's types.
//!
//! Each method is one call (GetSecret, SetSecret, UpdateSecret, GetDeletedSecret), maps its errors through
//! [`super::errors`], and moves a value out of the SDK's model straight into a [`SecretValue`]. Reads of a
//! version answer a [`Read`] rather than an error for the two answers the protocol decides on: the version is
//! absent, or Key Vault refuses it because it is disabled.

use super::errors::{self, Call, Failure};
use super::{BACKEND, tags};
use crate::secret::SecretValue;
use crate::store::StoreError;
use azure_core::time::OffsetDateTime;
use azure_security_keyvault_secrets::models::{
    SecretAttributes, SecretClientGetSecretOptions, SecretClientUpdateSecretPropertiesOptions,
    SetSecretParameters, UpdateSecretPropertiesParameters,
};
use azure_security_keyvault_secrets::{ResourceExt, SecretClient};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// Key Vault refuses values larger than this (25 KB).
pub(super) const MAX_VALUE_BYTES: usize = 25 * 1024;

/// A name `check` reads and updates to prove permissions. It need not exist (and should not): see [`Api::probe`].
const PROBE_NAME: &str = "rotavault-check-probe";
/// A version id Key Vault never issues (its ids are random), so the probe's update can only answer 404 or 403.
const PROBE_VERSION: &str = "00000000000000000000000000000000";

#[derive(Clone)]
pub(super) struct Api {
    client: Arc<SecretClient>,
}

/// One version as GetSecret answered it.
pub(super) struct Version {
    /// The version id (the last segment of the secret's `id`).
    pub id: String,
    pub value: SecretValue,
    pub tags: BTreeMap<String, String>,
    pub created: Option<DateTime<Utc>>,
}

/// What reading a version found.
pub(super) enum Read {
    Absent,
    /// Key Vault refused to read it because it is disabled.
    Disabled,
    Found(Version),
}

/// What a new version is made of.
pub(super) struct NewVersion<'a> {
    pub value: &'a SecretValue,
    pub tags: BTreeMap<String, String>,
    pub content_type: Option<&'a str>,
    /// `attributes.exp`: a signal for people and tools; Key Vault still serves the value after it.
    pub expires: Option<DateTime<Utc>>,
}

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Api").field("endpoint", &self.client.endpoint().as_str()).finish()
    }
}

fn to_chrono(at: Option<OffsetDateTime>) -> Option<DateTime<Utc>> {
    at.and_then(|at| DateTime::from_timestamp(at.unix_timestamp(), 0))
}

fn to_time(at: DateTime<Utc>) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(at.timestamp()).ok()
}

fn read_failure(call: Call<'_>, err: azure_core::Error) -> Result<Read, StoreError> {
    match errors::from_sdk(call, err) {
        Failure::NotFound => Ok(Read::Absent),
        Failure::Disabled => Ok(Read::Disabled),
        Failure::Store(e) => Err(e),
    }
}

impl Api {
    pub fn new(client: SecretClient) -> Self {
        Self { client: Arc::new(client) }
    }

    /// The latest version of `name`.
    pub async fn latest(&self, name: &str) -> Result<Read, StoreError> {
        self.get(name, None).await
    }

    /// One version of `name`, by id.
    pub async fn version(&self, name: &str, version: &str) -> Result<Read, StoreError> {
        self.get(name, Some(version)).await
    }

    async fn get(&self, name: &str, version: Option<&str>) -> Result<Read, StoreError> {
        let call = Call { op: "GetSecret", name };
        let options =
            SecretClientGetSecretOptions { secret_version: version.map(str::to_owned), ..Default::default() };
        let response = match self.client.get_secret(name, Some(options)).await {
            Ok(response) => response,
            Err(e) => return read_failure(call, e),
        };
        let mut secret = response.into_model().map_err(|e| errors::from_sdk(call, e).into_error(call))?;
        let id = secret
            .resource_id()
            .ok()
            .and_then(|id| id.version)
            .ok_or_else(|| invalid(call, "the answer names no version"))?;
        let value = secret.value.take().ok_or_else(|| invalid(call, "the answer holds no value"))?;
        let enabled = secret.attributes.as_ref().and_then(|a| a.enabled).unwrap_or(true);
        if !enabled {
            // Key Vault refuses to serve a disabled version; treat one that was served anyway the same way.
            return Ok(Read::Disabled);
        }
        let tags = secret.tags.take().unwrap_or_default().into_iter().collect();
        let created = to_chrono(secret.attributes.and_then(|a| a.created));
        Ok(Read::Found(Version { id, value: SecretValue::new(value), tags, created }))
    }

    /// SetSecret: a new version of `name`; answers its version id.
    pub async fn set(&self, name: &str, new: NewVersion<'_>) -> Result<String, StoreError> {
        let call = Call { op: "SetSecret", name };
        if new.value.len() > MAX_VALUE_BYTES {
            return Err(invalid(
                call,
                &format!("the value is larger than Key Vault's {MAX_VALUE_BYTES} bytes"),
            ));
        }
        let parameters = SetSecretParameters {
            value: Some(new.value.expose().to_owned()),
            content_type: new.content_type.map(str::to_owned),
            tags: Some(tags::to_sdk(&new.tags)),
            secret_attributes: Some(SecretAttributes {
                enabled: Some(true),
                expires: new.expires.and_then(to_time),
                ..Default::default()
            }),
        };
        // Serializing copies the value into the request body; the parameters are dropped right after.
        let body = parameters.try_into().map_err(|_| invalid(call, "the request could not be built"))?;
        let response = self.client.set_secret(name, body, None).await;
        // Key Vault's messages do not quote values today; a proxy or a future message that echoes the request
        // still must not carry this one into an error.
        let failed = |e| errors::from_sdk(call, e).into_error(call).without_value(new.value);
        let secret = response.map_err(failed)?.into_model().map_err(failed)?;
        secret
            .resource_id()
            .ok()
            .and_then(|id| id.version)
            .ok_or_else(|| invalid(call, "the answer names no version"))
    }

    /// UpdateSecret on one version: its whole tag set, and whether it stays enabled. The value cannot change.
    pub async fn update(
        &self,
        name: &str,
        version: &str,
        tags: &BTreeMap<String, String>,
        enabled: bool,
    ) -> Result<(), StoreError> {
        let call = Call { op: "UpdateSecret", name };
        let parameters = UpdateSecretPropertiesParameters {
            tags: Some(tags::to_sdk(tags)),
            secret_attributes: Some(SecretAttributes { enabled: Some(enabled), ..Default::default() }),
            ..Default::default()
        };
        let body = parameters.try_into().map_err(|_| invalid(call, "the request could not be built"))?;
        let options = SecretClientUpdateSecretPropertiesOptions {
            secret_version: Some(version.to_owned()),
            ..Default::default()
        };
        self.client
            .update_secret_properties(name, body, Some(options))
            .await
            .map(drop)
            .map_err(|e| errors::from_sdk(call, e).into_error(call))
    }

    /// Whether `name` is deleted but recoverable; `None` when the identity may not look (a 403): the write that
    /// follows then finds out itself.
    pub async fn is_deleted(&self, name: &str) -> Result<Option<bool>, StoreError> {
        let call = Call { op: "GetDeletedSecret", name };
        match self.client.get_deleted_secret(name, None).await {
            Ok(_) => Ok(Some(true)),
            Err(e) => match errors::from_sdk(call, e) {
                Failure::NotFound => Ok(Some(false)),
                Failure::Store(StoreError::PermissionDenied { .. }) => Ok(None),
                other => Err(other.into_error(call)),
            },
        }
    }

    /// Proves reachability, authentication, and the two permissions rotavault needs, without changing a secret.
    ///
    /// `get`: a GetSecret of a probe name that does not exist answers 404 when the identity may read, 403 when
    /// not. `set` cannot be proven by writing (that would change a secret, and `check` must not), so the probe
    /// sends an UpdateSecret, which needs `set`, to a version that cannot exist: Key Vault checks permissions
    /// before it looks the version up, so 404 proves `set` and 403 denies it, and nothing is ever updated. A
    /// vault whose permissions are scoped to single secrets (RBAC on a secret) cannot serve rotavault anyway:
    /// rotavault creates `NAME-pending` itself.
    pub async fn probe(&self) -> Result<(), StoreError> {
        match self.latest(PROBE_NAME).await? {
            Read::Absent | Read::Disabled | Read::Found(_) => {}
        }
        let call = Call { op: "UpdateSecret", name: PROBE_NAME };
        let parameters = UpdateSecretPropertiesParameters::default();
        let body = parameters.try_into().map_err(|_| invalid(call, "the request could not be built"))?;
        let options = SecretClientUpdateSecretPropertiesOptions {
            secret_version: Some(PROBE_VERSION.to_owned()),
            ..Default::default()
        };
        match self.client.update_secret_properties(PROBE_NAME, body, Some(options)).await {
            Ok(_) => Ok(()),
            Err(e) => match errors::from_sdk(call, e) {
                Failure::NotFound | Failure::Disabled => Ok(()),
                Failure::Store(e) => Err(e),
            },
        }
    }
}

fn invalid(call: Call<'_>, what: &str) -> StoreError {
    StoreError::Invalid { backend: BACKEND, detail: format!("{} on `{}`: {what}", call.op, call.name) }
}
