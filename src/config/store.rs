//! `[stores.NAME]`: where a job's secrets are kept, as [`StoreConfig`], one variant per backend kind.
//!
//! Adding a backend is one variant here, one in `schema::StoreKind`, its schema struct, and one arm in [`build`].

use super::document::Document;
use super::error::ConfigError;
use super::locate::KeyPath;
use super::schema::{
    AwsStoreSchema, AzureIdentityKind, AzureStoreSchema, FileStoreSchema, KindOnlySchema, StoreKind,
    VaultAuthKind, VaultStoreSchema,
};
use super::validate::resolve_path;
use crate::store::file::IdentitySource;
use crate::store::{file, memory};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The backend name of the AWS store, known to the config even when the backend is not built in.
pub const AWS_BACKEND: &str = "aws_secrets_manager";
const MANAGED_BY_TAG: &str = "managed-by";
/// The job's tag, as every backend writes it (`store::contract::JOB_KEY`, which exists only with a tagging
/// backend's feature).
const JOB_TAG: &str = "rotavault-job";
/// The backend name of the Vault / OpenBao store, known to the config even when the backend is not built in.
pub const VAULT_BACKEND: &str = "hashicorp_vault";
/// The backend name of the Azure store, known to the config even when the backend is not built in.
pub const AZURE_BACKEND: &str = "azure_key_vault";
/// Tags rotavault writes on every Key Vault version.
const AZURE_RESERVED_TAGS: [&str; 7] =
    ["managed-by", "rotavault-job", "rotation-id", "rotated-at", "generation", "previous-version", "state"];
const AZURE_MAX_EXTRA_TAGS: usize = 15 - AZURE_RESERVED_TAGS.len();
/// AWS allows 50 tags per secret; rotavault keeps `managed-by`, the job and one per live version.
const MAX_EXTRA_TAGS: usize = 40;

/// A configured store, ready to be built by the engine.
#[derive(Clone, Debug)]
pub enum StoreConfig {
    /// In-process only: for tests and dry runs; everything is lost when the process ends.
    Memory,
    /// An age-encrypted file. `path` and a file identity are absolute or relative to the working directory: paths
    /// written relative in the config have been resolved against the config file's directory.
    File { path: PathBuf, identity: IdentitySource },
    /// AWS Secrets Manager, with AWS's own staging labels (AWSCURRENT, AWSPENDING, AWSPREVIOUS).
    AwsSecretsManager(AwsStoreConfig),
    /// Azure Key Vault: current in `NAME`, pending as a version of `NAME-pending`.
    AzureKeyVault(AzureStoreConfig),
    /// HashiCorp Vault or OpenBao, KV v2: current at `PATH`, pending at a companion path.
    HashicorpVault(VaultStoreConfig),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultStoreConfig {
    pub address: String,
    /// The KV v2 mount. Default `secret`.
    pub mount: String,
    /// `X-Vault-Namespace`, for Vault Enterprise and HCP.
    pub namespace: Option<String>,
    /// A CA to trust for the server's certificate, beside the system's.
    pub ca_file: Option<PathBuf>,
    /// Pending values live at `PATH` + this. Default `-pending`.
    pub pending_suffix: String,
    pub auth: VaultAuthConfig,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VaultAuthConfig {
    Token { token_file: PathBuf },
    AppRole { mount: String, role_id: String, secret_id_file: PathBuf },
    Kubernetes { mount: String, role: String, token_file: PathBuf },
}

/// An Azure Key Vault store. The identity is Azure's: a managed identity, workload identity, a client secret or
/// certificate read from a file, or the developer's `az` login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AzureStoreConfig {
    pub vault_url: String,
    pub content_type: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// Set each current version's `exp` to rotated-at + the job's `max_age` (a signal; never relied on).
    pub set_expiry: bool,
    pub identity: AzureIdentityConfig,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AzureIdentityConfig {
    ManagedIdentity { client_id: Option<String> },
    WorkloadIdentity,
    ClientSecret { tenant_id: String, client_id: String, secret_file: PathBuf },
    ClientCertificate { tenant_id: String, client_id: String, certificate_file: PathBuf },
    DeveloperCli,
}

/// An AWS Secrets Manager store. Credentials are never configured here: they come from the standard AWS chain
/// (environment, profile, web identity / IRSA, EKS Pod Identity, ECS, instance metadata).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AwsStoreConfig {
    /// `None`: from the environment (`AWS_REGION`, the profile).
    pub region: Option<String>,
    /// A VPC endpoint, or a test server.
    pub endpoint_url: Option<String>,
    /// The KMS key for secrets rotavault creates; `None`: the account's `aws/secretsmanager` key.
    pub kms_key_id: Option<String>,
    /// Extra tags on secrets rotavault creates.
    pub tags: BTreeMap<String, String>,
}

impl StoreConfig {
    /// The backend's `BACKEND` constant, which is also its `kind` in the config.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Memory => memory::BACKEND,
            Self::File { .. } => file::BACKEND,
            Self::AwsSecretsManager(_) => AWS_BACKEND,
            Self::AzureKeyVault(_) => AZURE_BACKEND,
            Self::HashicorpVault(_) => VAULT_BACKEND,
        }
    }

    /// Whether what it holds outlives the process.
    pub fn is_durable(&self) -> bool {
        !matches!(self, Self::Memory)
    }
}

pub(super) fn build(
    doc: &Document<'_>,
    at: &KeyPath,
    kind: StoreKind,
    base: &Path,
) -> Result<StoreConfig, ConfigError> {
    match kind {
        StoreKind::Memory => {
            doc.deserialize_at::<KindOnlySchema>(at)?;
            Ok(StoreConfig::Memory)
        }
        StoreKind::AwsSecretsManager => {
            let schema: AwsStoreSchema = doc.deserialize_at(at)?;
            if let Some(region) = &schema.region
                && (region.is_empty()
                    || !region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
            {
                return Err(
                    doc.error(&at.key("region"), "not an AWS region: expected a name such as \"eu-west-1\"")
                );
            }
            if let Some(url) = &schema.endpoint_url
                && !(url.starts_with("https://") || url.starts_with("http://"))
            {
                return Err(doc.error(
                    &at.key("endpoint_url"),
                    "not a URL: expected an http(s) URL such as \"https://secretsmanager.eu-west-1.amazonaws.com\"",
                ));
            }
            for key in schema.tags.keys() {
                if key == MANAGED_BY_TAG
                    || key == JOB_TAG
                    || key.starts_with("rotavault:")
                    || key.starts_with("aws:")
                {
                    return Err(doc.error(
                        &at.key("tags").key(key),
                        format!(
                            "the tag `{key}` is reserved: expected a tag of your own (rotavault writes `managed-by`, \
                             `{JOB_TAG}` and `rotavault:*`; AWS reserves `aws:*`)"
                        ),
                    ));
                }
            }
            if schema.tags.len() > MAX_EXTRA_TAGS {
                return Err(doc.error(
                    &at.key("tags"),
                    format!(
                        "{} tags: expected at most {MAX_EXTRA_TAGS}, leaving room within AWS's 50 per secret for \
                         rotavault's own",
                        schema.tags.len()
                    ),
                ));
            }
            Ok(StoreConfig::AwsSecretsManager(AwsStoreConfig {
                region: schema.region,
                endpoint_url: schema.endpoint_url,
                kms_key_id: schema.kms_key_id,
                tags: schema.tags,
            }))
        }
        StoreKind::AzureKeyVault => azure(doc, at, base),
        StoreKind::HashicorpVault => vault(doc, at, base),
        StoreKind::File => {
            let schema: FileStoreSchema = doc.deserialize_at(at)?;
            let path = resolve_path(doc, &at.key("path"), &schema.path, base)?;
            let identity = match (schema.identity_file, schema.identity_credential) {
                (Some(file), None) => {
                    IdentitySource::File(resolve_path(doc, &at.key("identity_file"), &file, base)?)
                }
                (None, Some(name)) => {
                    IdentitySource::Credential(credential_name(doc, &at.key("identity_credential"), name)?)
                }
                (Some(_), Some(_)) => {
                    return Err(doc.error(
                        &at.key("identity_credential"),
                        "both `identity_file` and `identity_credential` are set: expected exactly one of them",
                    ));
                }
                (None, None) => {
                    return Err(doc.error(
                        at,
                        "the store has no identity: expected exactly one of `identity_file` (a file holding \
                         the store's age identity) or `identity_credential` (the name of a systemd credential)",
                    ));
                }
            };
            Ok(StoreConfig::File { path, identity })
        }
    }
}

fn azure(doc: &Document<'_>, at: &KeyPath, base: &Path) -> Result<StoreConfig, ConfigError> {
    let schema: AzureStoreSchema = doc.deserialize_at(at)?;
    let host = schema.vault_url.strip_prefix("https://").map(|rest| rest.trim_end_matches('/'));
    if !host.is_some_and(|h| !h.is_empty() && !h.contains('/') && h.contains(".vault.")) {
        return Err(doc.error(
            &at.key("vault_url"),
            "not a Key Vault URL: expected https://<vault-name>.vault.azure.net (https only: the Azure client \
             refuses to send a token over plain HTTP)",
        ));
    }
    for key in schema.tags.keys() {
        if AZURE_RESERVED_TAGS.contains(&key.as_str()) || key.starts_with("rotavault") {
            return Err(doc.error(
                &at.key("tags").key(key),
                format!("the tag `{key}` is reserved: rotavault writes it; expected a tag of your own"),
            ));
        }
    }
    if schema.tags.len() > AZURE_MAX_EXTRA_TAGS {
        return Err(doc.error(
            &at.key("tags"),
            format!(
                "{} tags: expected at most {AZURE_MAX_EXTRA_TAGS}: Key Vault allows 15 per secret and rotavault \
                 writes 7",
                schema.tags.len()
            ),
        ));
    }
    if let Some(ct) = &schema.content_type
        && ct.len() > 255
    {
        return Err(doc.error(&at.key("content_type"), "too long: expected at most 255 characters"));
    }
    let need = |key: &str, value: Option<String>| {
        value.ok_or_else(|| doc.error(at, format!("this identity needs `{key}`: expected `{key} = \"...\"`")))
    };
    let kind = schema.identity.unwrap_or(AzureIdentityKind::ManagedIdentity);
    let identity = match kind {
        AzureIdentityKind::ManagedIdentity => {
            AzureIdentityConfig::ManagedIdentity { client_id: schema.client_id }
        }
        AzureIdentityKind::WorkloadIdentity => AzureIdentityConfig::WorkloadIdentity,
        AzureIdentityKind::DeveloperCli => AzureIdentityConfig::DeveloperCli,
        AzureIdentityKind::ClientSecret => AzureIdentityConfig::ClientSecret {
            tenant_id: need("tenant_id", schema.tenant_id)?,
            client_id: need("client_id", schema.client_id)?,
            secret_file: {
                let file = need("client_secret_file", schema.client_secret_file)?;
                resolve_path(doc, &at.key("client_secret_file"), &file, base)?
            },
        },
        AzureIdentityKind::ClientCertificate => AzureIdentityConfig::ClientCertificate {
            tenant_id: need("tenant_id", schema.tenant_id)?,
            client_id: need("client_id", schema.client_id)?,
            certificate_file: {
                let file = need("certificate_file", schema.certificate_file)?;
                resolve_path(doc, &at.key("certificate_file"), &file, base)?
            },
        },
    };
    Ok(StoreConfig::AzureKeyVault(AzureStoreConfig {
        vault_url: schema.vault_url.trim_end_matches('/').to_owned(),
        content_type: schema.content_type,
        tags: schema.tags,
        set_expiry: schema.set_expiry,
        identity,
    }))
}

fn vault(doc: &Document<'_>, at: &KeyPath, base: &Path) -> Result<StoreConfig, ConfigError> {
    let schema: VaultStoreSchema = doc.deserialize_at(at)?;
    let rest = schema.address.strip_prefix("https://").or_else(|| schema.address.strip_prefix("http://"));
    if !rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/')) {
        return Err(doc.error(
            &at.key("address"),
            "not a server address: expected a URL such as \"https://vault.example.com:8200\"",
        ));
    }
    let path = |key: &str, value: &str| resolve_path(doc, &at.key(key), value, base);
    let need = |key: &str, value: Option<String>| {
        value.ok_or_else(|| {
            doc.error(at, format!("this auth method needs `{key}`: expected `{key} = \"...\"`"))
        })
    };
    let auth = match schema.auth {
        VaultAuthKind::Token => VaultAuthConfig::Token {
            token_file: path("token_file", &need("token_file", schema.token_file)?)?,
        },
        VaultAuthKind::Approle => VaultAuthConfig::AppRole {
            mount: schema.auth_mount.unwrap_or_else(|| "approle".into()),
            role_id: need("role_id", schema.role_id)?,
            secret_id_file: path("secret_id_file", &need("secret_id_file", schema.secret_id_file)?)?,
        },
        VaultAuthKind::Kubernetes => VaultAuthConfig::Kubernetes {
            mount: schema.auth_mount.unwrap_or_else(|| "kubernetes".into()),
            role: need("role", schema.role)?,
            token_file: match schema.service_account_token_file {
                Some(file) => path("service_account_token_file", &file)?,
                None => PathBuf::from("/var/run/secrets/kubernetes.io/serviceaccount/token"),
            },
        },
    };
    let mount = schema.mount.unwrap_or_else(|| "secret".into());
    if mount.is_empty() || mount.starts_with('/') || mount.ends_with('/') {
        return Err(
            doc.error(&at.key("mount"), "not a mount: expected a path such as \"secret\" or \"kv/team\"")
        );
    }
    let pending_suffix = schema.pending_suffix.unwrap_or_else(|| "-pending".into());
    if pending_suffix.is_empty() {
        return Err(doc.error(
            &at.key("pending_suffix"),
            "empty: expected a suffix such as \"-pending\" (pending values must live beside the secret, not on it)",
        ));
    }
    Ok(StoreConfig::HashicorpVault(VaultStoreConfig {
        address: schema.address.trim_end_matches('/').to_owned(),
        mount,
        namespace: schema.namespace,
        ca_file: schema.ca_file.as_deref().map(|f| path("ca_file", f)).transpose()?,
        pending_suffix,
        auth,
    }))
}

/// A systemd credential name becomes the file name `$CREDENTIALS_DIRECTORY/<name>`, so it must be one.
fn credential_name(doc: &Document<'_>, at: &KeyPath, name: String) -> Result<String, ConfigError> {
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.contains('/')
        || name.chars().any(char::is_control)
    {
        return Err(doc.error(
            at,
            "not a systemd credential name: expected the name given to `LoadCredential=` or \
             `LoadCredentialEncrypted=`, a file name without `/`",
        ));
    }
    Ok(name)
}

/// The name of a secret in `store`, as a job's `stores` or a target's `admin` gives it: not blank, and within the
/// backend's own rules, so that a name the backend would refuse is a config error and not a failed rotation.
pub(super) fn secret_name(
    doc: &Document<'_>,
    at: &KeyPath,
    name: &str,
    store: &StoreConfig,
) -> Result<(), ConfigError> {
    if name.trim().is_empty() || name.chars().any(char::is_control) {
        return Err(doc.error(
            at,
            "not a secret name: expected the name of the secret in the store, such as \"webhooks/signing-key\"",
        ));
    }
    match store {
        StoreConfig::AwsSecretsManager(_) if !aws_secret_name(name) => Err(doc.error(
            at,
            "not an AWS Secrets Manager secret name: expected 1 to 512 characters of A-Z a-z 0-9 and `/_+=.@-`, or \
             the secret's ARN",
        )),
        StoreConfig::AzureKeyVault(_) if !azure_secret_name(name) => Err(doc.error(
            at,
            "not a Key Vault secret name: expected 1 to 119 characters of A-Z a-z 0-9 and `-` (Key Vault allows 127, \
             and rotavault keeps the pending value in `<name>-pending`)",
        )),
        _ => Ok(()),
    }
}

/// AWS's rule for secret names, or an ARN (which names a secret in any account and region the store reaches).
fn aws_secret_name(name: &str) -> bool {
    if name.starts_with("arn:aws") {
        return name.split(':').count() >= 7;
    }
    (1..=512).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c))
}

/// Key Vault's rule for secret names, for the name and its `-pending` companion.
fn azure_secret_name(name: &str) -> bool {
    (1..=127 - "-pending".len()).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}
