//! [`Api`]: the Secrets Manager calls rotavault makes, in rotavault's types.
//!
//! Each method is one SDK call. It names its version or stage explicitly (never a bare `GetSecretValue`, which
//! moto can answer with a stale version after a label move), maps its errors through [`super::errors`], and
//! scrubs the value from the error of every call that sends one. Values leave the SDK's output by move into a
//! [`SecretValue`], so the only copy rotavault keeps is the zeroizing one.

use super::errors::{self, Call};
use super::snapshot::Snapshot;
use crate::secret::SecretValue;
use crate::store::StoreError;
use crate::store::contract::absent_is_none;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::types::Tag;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
pub(super) struct Api {
    client: Client,
}

/// One version's value, as `GetSecretValue` gave it.
pub(super) struct Fetched {
    pub value: SecretValue,
    pub created: Option<DateTime<Utc>>,
}

fn to_chrono(at: &aws_sdk_secretsmanager::primitives::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(at.secs(), 0)
}

impl Api {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The secret's tags, labels and deletion date; `None` if there is no such secret.
    pub async fn describe(&self, id: &str) -> Result<Option<Snapshot>, StoreError> {
        let call = Call { op: "DescribeSecret", secret_id: id };
        let answer = self.client.describe_secret().secret_id(id).send().await;
        let Some(out) = absent_is_none(answer.map_err(|e| errors::from_sdk(call, e)))? else {
            return Ok(None);
        };
        let tags = out
            .tags
            .unwrap_or_default()
            .into_iter()
            .filter_map(|tag| Some((tag.key?, tag.value.unwrap_or_default())))
            .collect();
        let labels = out
            .version_ids_to_stages
            .unwrap_or_default()
            .into_iter()
            .map(|(id, labels)| (id, labels.into_iter().collect()))
            .collect();
        Ok(Some(Snapshot { tags, labels, deleted: out.deleted_date.as_ref().and_then(to_chrono) }))
    }

    /// The value of one version, read by its id; `None` if it does not exist.
    pub async fn get_version(&self, id: &str, version_id: &str) -> Result<Option<Fetched>, StoreError> {
        let call = Call { op: "GetSecretValue", secret_id: id };
        let answer = self.client.get_secret_value().secret_id(id).version_id(version_id).send().await;
        let Some(mut out) = absent_is_none(answer.map_err(|e| errors::from_sdk(call, e)))? else {
            return Ok(None);
        };
        let created = out.created_date.as_ref().and_then(to_chrono);
        match out.secret_string.take() {
            Some(text) => Ok(Some(Fetched { value: SecretValue::new(text), created })),
            None => Err(StoreError::Invalid {
                backend: super::BACKEND,
                detail: format!(
                    "version {version_id} of `{id}` holds no text (SecretString); rotavault reads and writes \
                     text, not SecretBinary"
                ),
            }),
        }
    }

    /// Creates the secret with its tags, and a placeholder version `placeholder_id` as `AWSCURRENT`.
    pub async fn create(
        &self,
        name: &str,
        tags: &BTreeMap<String, String>,
        kms_key_id: Option<&str>,
        placeholder_id: &str,
        placeholder_value: &str,
    ) -> Result<(), StoreError> {
        let call = Call { op: "CreateSecret", secret_id: name };
        self.client
            .create_secret()
            .name(name)
            .set_tags(Some(aws_tags(tags)))
            .set_kms_key_id(kms_key_id.map(str::to_owned))
            .client_request_token(placeholder_id)
            .secret_string(placeholder_value)
            .send()
            .await
            .map(drop)
            .map_err(|e| errors::from_sdk(call, e))
    }

    /// Puts a new version `token` under `label`. Returns the labels the version has afterwards, if the answer
    /// says: a put of an existing version with the same value is ignored and leaves its labels as they were.
    pub async fn put(
        &self,
        id: &str,
        token: &str,
        value: &SecretValue,
        label: &str,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let call = Call { op: "PutSecretValue", secret_id: id };
        self.client
            .put_secret_value()
            .secret_id(id)
            .client_request_token(token)
            .secret_string(value.expose())
            .version_stages(label)
            .send()
            .await
            .map(|out| out.version_stages)
            .map_err(|e| errors::from_sdk(call, e).without_value(value))
    }

    /// `UpdateSecretVersionStage`: moves `label` to version `to` (if any) from version `from` (if any).
    pub async fn move_label(
        &self,
        id: &str,
        label: &str,
        to: Option<&str>,
        from: Option<&str>,
    ) -> Result<(), StoreError> {
        let call = Call { op: "UpdateSecretVersionStage", secret_id: id };
        self.client
            .update_secret_version_stage()
            .secret_id(id)
            .version_stage(label)
            .set_move_to_version_id(to.map(str::to_owned))
            .set_remove_from_version_id(from.map(str::to_owned))
            .send()
            .await
            .map(drop)
            .map_err(|e| errors::from_sdk(call, e))
    }

    pub async fn tag(&self, id: &str, tags: &BTreeMap<String, String>) -> Result<(), StoreError> {
        if tags.is_empty() {
            return Ok(());
        }
        let call = Call { op: "TagResource", secret_id: id };
        self.client
            .tag_resource()
            .secret_id(id)
            .set_tags(Some(aws_tags(tags)))
            .send()
            .await
            .map(drop)
            .map_err(|e| errors::from_sdk(call, e))
    }

    pub async fn untag(&self, id: &str, keys: &[&str]) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        let call = Call { op: "UntagResource", secret_id: id };
        self.client
            .untag_resource()
            .secret_id(id)
            .set_tag_keys(Some(keys.iter().map(|k| (*k).to_owned()).collect()))
            .send()
            .await
            .map(drop)
            .map_err(|e| errors::from_sdk(call, e))
    }

    /// Proves that rotavault may describe secrets and put values, without touching any secret.
    ///
    /// Both calls name a secret that cannot exist (`rotavault-permission-probe-<uuid>`). AWS authorizes a call
    /// before it looks the secret up, so `ResourceNotFoundException` proves the permission and
    /// `AccessDeniedException` refutes it, and since there is no such secret, nothing is written. Creating a
    /// real secret would prove more (`CreateSecret`, KMS) but would change the account, which `check` must not.
    /// A policy that scopes rotavault to name prefixes denies the probe's name: the error says so.
    pub async fn probe(&self) -> Result<(), StoreError> {
        let name = format!("rotavault-permission-probe-{}", uuid::Uuid::new_v4().simple());
        let scoped = |e: StoreError| match e {
            StoreError::PermissionDenied { backend, detail } => StoreError::PermissionDenied {
                backend,
                detail: format!(
                    "{detail} (the probe names a secret that does not exist; if the policy allows only some name \
                     prefixes, also allow `rotavault-permission-probe-*` for DescribeSecret and PutSecretValue)"
                ),
            },
            other => other,
        };
        let exists = |op: &str| StoreError::Invalid {
            backend: super::BACKEND,
            detail: format!("{op} found the probe secret `{name}`, which should not exist"),
        };
        if self.describe(&name).await.map_err(scoped)?.is_some() {
            return Err(exists("DescribeSecret"));
        }
        let token = uuid::Uuid::new_v4().hyphenated().to_string();
        let probe_value = SecretValue::new("rotavault permission probe");
        match self.put(&name, &token, &probe_value, "AWSPENDING").await {
            Err(StoreError::NotFound { .. }) => Ok(()),
            Err(e) => Err(scoped(e)),
            Ok(_) => Err(exists("PutSecretValue")),
        }
    }
}

fn aws_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}
