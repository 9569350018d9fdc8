//! `hashicorp_vault`: the store contract on the KV v2 engine of HashiCorp Vault or OpenBao, over plain HTTP
//! (`reqwest`), with token-file, AppRole or Kubernetes auth.
//!
//! The slots:
//! - **current** is the latest version of `PATH` (`GET /v1/<mount>/data/PATH?version=N`, N from the path's
//!   metadata); consumers read it as `data.value`.
//! - **previous** is the newest live version before it (deleted and destroyed versions are skipped).
//! - **pending** lives at the companion path `PATH<pending_suffix>` (`PATH-pending` by default), whose `data`
//!   holds the state, the rotation id, the value and its metadata (only rotavault reads it).
//!
//! The operations (see `write` for each step and why it is safe to repeat):
//! - **stage(R)**: check what the companion holds, then write it with `cas` = its version, so that of two
//!   stagers only one wins.
//! - **promote(R)**: write `PATH` with `cas` = the current version read (a lost race is `Conflict`), record the
//!   metadata in `custom_metadata`, then clear the companion. A promote cut after the write finds R current (or
//!   its value current without metadata) and only finishes.
//! - **discard(R)**: clear the companion. **write_current**: write `PATH` with `cas`, record the metadata.
//!
//! Ownership and per-version metadata live in `custom_metadata` (`metadata`). Layout:
//! - `client`: `Http` (one request) and `Api` (the KV v2 calls, the 403 disambiguation).
//! - `auth`: the token: file, AppRole, Kubernetes; renewal and re-login.
//! - `errors`: the one mapping from HTTP answers and transport failures to `StoreError`.
//! - `metadata`: `custom_metadata` encoding, ownership, and the companion's document.
//! - `write`: stage, promote, discard and write_current, step by step.

mod auth;
mod client;
mod errors;
mod metadata;
mod write;

use super::{Capabilities, Metadata, Pending, SecretRef, Store, StoreError, Stored};
use crate::secret::SecretValue;
use crate::store::RotationId;
use crate::store::contract::Ownership;
use async_trait::async_trait;
use client::{Api, Http, KeyMetadata};
use std::fmt;
use std::path::PathBuf;

pub use auth::DEFAULT_KUBERNETES_TOKEN;

pub const BACKEND: &str = "hashicorp_vault";

/// Where the KV v2 engine is and how to authenticate.
#[derive(Clone, Debug)]
pub struct VaultSettings {
    /// `https://vault.example.com:8200` (a path prefix is kept: a proxy in front of Vault).
    pub address: String,
    /// The KV v2 mount; default `secret`.
    pub mount: String,
    /// Sent as `X-Vault-Namespace` on every request (Vault Enterprise / OpenBao namespaces).
    pub namespace: Option<String>,
    /// PEM file of a CA to trust beside the system's roots (a private CA, Vault's `-dev-tls` CA).
    pub ca_file: Option<PathBuf>,
    /// The pending companion of `PATH` is `PATH` + this; default `-pending`.
    pub pending_suffix: String,
    pub auth: VaultAuth,
}

impl VaultSettings {
    /// Settings with the defaults: mount `secret`, no namespace, system roots only, suffix `-pending`.
    pub fn new(address: impl Into<String>, auth: VaultAuth) -> Self {
        Self {
            address: address.into(),
            mount: "secret".into(),
            namespace: None,
            ca_file: None,
            pending_suffix: "-pending".into(),
            auth,
        }
    }
}

/// How the store gets its Vault token.
#[derive(Clone, Debug)]
pub enum VaultAuth {
    /// A file holding the token (a Vault Agent sink); read again whenever it changes.
    TokenFile(PathBuf),
    /// `POST /v1/auth/<mount>/login` with the role id and the secret id read from `secret_id_file`.
    AppRole { mount: String, role_id: String, secret_id_file: PathBuf },
    /// `POST /v1/auth/<mount>/login` with the role and the service-account JWT from `token_file`.
    Kubernetes { mount: String, role: String, token_file: PathBuf },
}

/// A store in one KV v2 mount.
pub struct VaultStore {
    api: Api,
    settings: VaultSettings,
}

fn invalid(detail: String) -> StoreError {
    StoreError::Invalid { backend: BACKEND, detail }
}

impl fmt::Debug for VaultStore {
    /// Where the store is and how it authenticates; never a token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultStore")
            .field("address", &self.settings.address)
            .field("mount", &self.settings.mount)
            .field("namespace", &self.settings.namespace)
            .field("pending_suffix", &self.settings.pending_suffix)
            .field("auth", &self.settings.auth)
            .finish()
    }
}

/// A path's metadata and what it means for the job: the result of [`VaultStore::open`].
struct Opened {
    meta: Option<KeyMetadata>,
    ownership: Ownership,
}

impl Opened {
    fn current_version(&self) -> u64 {
        self.meta.as_ref().map_or(0, |m| m.current_version)
    }

    /// The current version, if it is there to read.
    fn current(&self) -> Option<u64> {
        let meta = self.meta.as_ref()?;
        let n = meta.current_version;
        (n > 0 && meta.is_live(n)).then_some(n)
    }

    /// The newest live version before the current one.
    fn previous(&self) -> Option<u64> {
        let meta = self.meta.as_ref()?;
        meta.live_before(meta.current_version)
    }

    /// The metadata rotavault recorded for `version`, if any.
    fn recorded(&self, version: u64) -> Result<Option<Metadata>, StoreError> {
        let Some(text) =
            self.meta.as_ref().and_then(|m| m.custom_metadata.get(&metadata::version_key(version)))
        else {
            return Ok(None);
        };
        Metadata::decode(text)
            .map(Some)
            .map_err(|e| invalid(format!("custom_metadata of version {version}: {e}")))
    }
}

/// What the pending companion holds.
struct Companion {
    /// Its current version (0: it does not exist), the `cas` of the next write.
    version: u64,
    ownership: Ownership,
    pending: Option<Pending>,
}

impl VaultStore {
    /// Builds the HTTP client (reading `ca_file`) and authenticates: reads the token file, or logs in.
    pub async fn new(settings: VaultSettings) -> Result<Self, StoreError> {
        if settings.mount.trim_matches('/').is_empty() {
            return Err(invalid("mount is empty".into()));
        }
        if settings.pending_suffix.is_empty() {
            return Err(invalid("pending_suffix is empty: pending needs a path of its own".into()));
        }
        let http = Http::new(&settings)?;
        let auth = auth::Auth::new(settings.auth.clone(), &http).await?;
        let mount = settings.mount.trim_matches('/').to_owned();
        Ok(Self { api: Api::new(http, auth, mount), settings })
    }

    /// A name as a KV path: segments separated by `/`, none empty, `.` or `..`.
    fn path<'a>(&self, secret: &'a SecretRef) -> Result<&'a str, StoreError> {
        let name = secret.name.as_str();
        if name.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
            return Err(invalid(format!(
                "`{name}` is not a KV path: segments separated by `/`, none empty, `.` or `..`"
            )));
        }
        Ok(name)
    }

    fn companion_path(&self, name: &str) -> String {
        format!("{name}{}", self.settings.pending_suffix)
    }

    /// Reads `PATH`'s metadata and checks that the job may touch it. Reading never claims.
    async fn open(&self, secret: &SecretRef) -> Result<Opened, StoreError> {
        let meta = self.api.metadata(self.path(secret)?).await?;
        let ownership = metadata::ownership(BACKEND, secret, meta.as_ref().map(|m| &m.custom_metadata))?;
        Ok(Opened { meta, ownership })
    }

    /// Reads the companion, checking that it is the job's (or, with adopt, may become so).
    async fn companion(&self, secret: &SecretRef) -> Result<Companion, StoreError> {
        let name = self.companion_path(self.path(secret)?);
        let meta = self.api.metadata(&name).await?;
        let ownership = metadata::ownership(BACKEND, secret, meta.as_ref().map(|m| &m.custom_metadata))
            .map_err(|e| match e {
                StoreError::NotOwned { backend, job, owner, .. } => {
                    StoreError::NotOwned { backend, name: name.clone(), job, owner }
                }
                other => other,
            })?;
        let Some(meta) = meta else {
            return Ok(Companion { version: 0, ownership, pending: None });
        };
        let version = meta.current_version;
        // A companion being adopted holds no pending value of ours, whatever it holds.
        if version == 0 || !meta.is_live(version) || ownership != Ownership::Owned {
            return Ok(Companion { version, ownership, pending: None });
        }
        let pending = match self.api.version(&name, version).await? {
            Some(data) => metadata::read_pending(&data)
                .map_err(|e| invalid(format!("the pending companion `{name}`: {e}")))?,
            None => None,
        };
        Ok(Companion { version, ownership, pending })
    }

    /// The value and metadata of `version` of `PATH`.
    async fn stored(&self, secret: &SecretRef, opened: &Opened, version: u64) -> Result<Stored, StoreError> {
        let name = self.path(secret)?;
        let Some(data) = self.api.version(name, version).await? else {
            return Err(StoreError::Transient {
                backend: BACKEND,
                detail: format!("version {version} of `{name}` was deleted while it was read"),
                retry_after: None,
            });
        };
        let value =
            metadata::value_of(&data).map_err(|e| invalid(format!("version {version} of `{name}`: {e}")))?;
        let metadata = match opened.recorded(version)? {
            Some(m) => m,
            None => Metadata::synthesized(opened.meta.as_ref().and_then(|m| m.created(version))),
        };
        Ok(Stored { value, metadata })
    }

    async fn read_slot(&self, secret: &SecretRef, previous: bool) -> Result<Option<Stored>, StoreError> {
        let opened = self.open(secret).await?;
        let version = if previous { opened.previous() } else { opened.current() };
        match version {
            Some(v) => self.stored(secret, &opened, v).await.map(Some),
            None => Ok(None),
        }
    }
}

#[async_trait]
impl Store for VaultStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            durable: true,
            // Promote is a write of PATH, a metadata patch and a write of the companion (safe to repeat).
            atomic_promote: false,
            // The companion is written with check-and-set on the version the stage read.
            exclusive_stage: true,
            // KV v2 keeps older versions (max_versions) readable by number.
            versioned: true,
        }
    }

    #[tracing::instrument(skip_all, fields(backend = BACKEND, name = %secret.name))]
    async fn current(&self, secret: &SecretRef) -> Result<Option<Stored>, StoreError> {
        self.read_slot(secret, false).await
    }

    #[tracing::instrument(skip_all, fields(backend = BACKEND, name = %secret.name))]
    async fn pending(&self, secret: &SecretRef) -> Result<Option<Pending>, StoreError> {
        self.open(secret).await?;
        Ok(self.companion(secret).await?.pending)
    }

    #[tracing::instrument(skip_all, fields(backend = BACKEND, name = %secret.name))]
    async fn previous(&self, secret: &SecretRef) -> Result<Option<Stored>, StoreError> {
        self.read_slot(secret, true).await
    }

    #[tracing::instrument(skip_all, fields(backend = BACKEND, name = %secret.name, rotation_id = %rotation_id))]
    async fn stage(
        &self,
        secret: &SecretRef,
        value: &SecretValue,
        rotation_id: &RotationId,
        metadata: &Metadata,
    ) -> Result<(), StoreError> {
        self.stage_value(secret, value, rotation_id, metadata).await.map_err(|e| e.without_value(value))
    }

    #[tracing::instrument(skip_all, fields(backend = BACKEND, name = %secret.name, rotation_id = %rotation_id))]
    async fn promote(&self, secret: &SecretRef, rotation_id: &RotationId) -> Result<(), StoreError> {
        self.promote_pending(secret, rotation_id).await
    }

    #[tracing::instrument(skip_all, fields(backend = BACKEND, name = %secret.name, rotation_id = %rotation_id))]
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
        self.write_value(secret, value, metadata).await.map_err(|e| e.without_value(value))
    }

    /// Asks Vault what the token may do on the mount (`sys/capabilities-self`), which changes nothing: data
    /// needs create, read and update; metadata needs create, read, update and patch (ownership and metadata
    /// are written there). The probe names `rotavault-check`: a policy that grants only some prefixes must
    /// grant that name too, or `check` reports what is missing.
    #[tracing::instrument(skip_all, fields(backend = BACKEND))]
    async fn check(&self) -> Result<(), StoreError> {
        let mount = self.api.mount();
        let data = format!("{mount}/data/rotavault-check");
        let meta = format!("{mount}/metadata/rotavault-check");
        let found = self.api.capabilities(&[data.clone(), meta.clone()]).await?;
        let mut missing = Vec::new();
        for (path, needed) in
            [(&data, &["create", "read", "update"][..]), (&meta, &["create", "read", "update", "patch"][..])]
        {
            let caps = found.get(path).map(Vec::as_slice).unwrap_or_default();
            if caps.iter().any(|c| c == "root") {
                continue;
            }
            let deny = caps.iter().any(|c| c == "deny");
            for need in needed {
                if deny || !caps.iter().any(|c| c == need) {
                    missing.push(format!("{need} on {path}"));
                }
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(StoreError::PermissionDenied {
                backend: BACKEND,
                detail: format!("the token's policies lack: {}", missing.join(", ")),
            })
        }
    }
}

#[cfg(test)]
mod tests;
