//! The TOML schema: plain serde structs, one per table, that reject every key they do not know
//! (`deny_unknown_fields`), so that a typo is an error and never a silently ignored setting.
//!
//! Stores and targets are tagged by `kind`, but not with serde's `#[serde(tag = "kind")]`: an internally tagged
//! enum buffers the table and loses the spans, and an unknown key would then be reported at the table header
//! instead of its own line. So a store is read in two steps: [`Kind`] reads only `kind`, then the kind's own
//! struct reads the same table again with every span intact (see `store.rs` and `target.rs`).

use super::duration::ConfigDuration;
use crate::secret::CharClass;
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::collections::BTreeMap;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DocumentSchema {
    pub state_dir: Option<String>,
    #[serde(default)]
    pub policy: PolicySchema,
    #[serde(default)]
    pub rotation: RotationSchema,
    #[serde(default)]
    pub http: super::http::HttpSchema,
    #[serde(default)]
    pub stores: BTreeMap<String, Kind<StoreKind>>,
    #[serde(default)]
    pub targets: BTreeMap<String, Kind<TargetKind>>,
    /// Named here so that an unknown top-level key lists it among those expected; its content is read one job at
    /// a time (see `Document::deserialize_without`), never through this field.
    #[serde(default, rename = "jobs")]
    pub _jobs: serde::de::IgnoredAny,
    #[serde(default)]
    pub notify: BTreeMap<String, Kind<super::notify::NotifyKind>>,
    #[serde(default)]
    pub audit: AuditSchema,
    #[serde(default)]
    pub lease: super::lease::LeaseSchema,
    #[serde(default)]
    pub blackout: Vec<super::blackout::BlackoutSchema>,
}

/// `[audit]`: the audit file and the age warning's lead time.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditSchema {
    pub path: Option<String>,
    pub warn_before: Option<ConfigDuration>,
}

/// One entry of a job's `after_rotation`. Flat, so that every key keeps its span; `hooks.rs` checks which keys
/// each kind takes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HookSchema {
    pub kind: HookKind,
    pub argv: Option<Vec<String>>,
    pub timeout: Option<ConfigDuration>,
    pub url_file: Option<String>,
    pub key_file: Option<String>,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum HookKind {
    Command,
    Webhook,
}

/// `[policy]`: the operator's rules, enforced for every job.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PolicySchema {
    pub max_age: Option<ConfigDuration>,
    pub min_length: Option<usize>,
    pub forbidden: Option<String>,
    pub warn_before: Option<ConfigDuration>,
    pub min_strength_bits: Option<u32>,
    pub heartbeat: Option<ConfigDuration>,
}

/// `[rotation]`: engine settings; every key has a default.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RotationSchema {
    pub settle: Option<ConfigDuration>,
    pub verify_attempts: Option<u32>,
    pub verify_backoff: Option<ConfigDuration>,
    pub call_timeout: Option<ConfigDuration>,
    pub apply_horizon: Option<ConfigDuration>,
    /// The older name of `apply_horizon`, still read.
    pub propagation_grace: Option<ConfigDuration>,
    pub max_failed_logins: Option<u32>,
    pub failed_login_window: Option<ConfigDuration>,
}

/// The first read of a store or target table: its `kind` only, the other keys are left to the kind's struct.
#[derive(Deserialize)]
pub(super) struct Kind<K> {
    pub kind: K,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum StoreKind {
    File,
    Memory,
    AwsSecretsManager,
    AzureKeyVault,
    HashicorpVault,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum TargetKind {
    Generated,
    Autotask,
    Command,
    Webhook,
}

/// `[stores.NAME]` with `kind = "file"`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileStoreSchema {
    /// Already read by [`Kind`]; named here so that it is an accepted key.
    #[serde(rename = "kind")]
    pub _kind: IgnoredAny,
    pub path: String,
    pub identity_file: Option<String>,
    pub identity_credential: Option<String>,
}

/// `[targets.NAME]` with `kind = "autotask"`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AutotaskTargetSchema {
    #[serde(rename = "kind")]
    pub _kind: IgnoredAny,
    pub zone_lookup_url: Option<String>,
    /// Optional only with `apply = "manual"`: nothing is then set through it.
    pub admin: Option<AdminSchema>,
    pub apply: Option<ApplySchema>,
    pub threads: Option<usize>,
    pub hourly_budget: Option<u32>,
    pub timeout: Option<ConfigDuration>,
}

/// `[targets.NAME]` with `kind = "command"`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CommandTargetSchema {
    #[serde(rename = "kind")]
    pub _kind: IgnoredAny,
    pub apply: Vec<String>,
    pub verify: Vec<String>,
    pub timeout: Option<ConfigDuration>,
}

/// `[targets.NAME]` with `kind = "webhook"`. The URL and key are secrets, so only their files are named here.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WebhookTargetSchema {
    #[serde(rename = "kind")]
    pub _kind: IgnoredAny,
    pub url_file: String,
    pub key_file: String,
    pub timeout: Option<ConfigDuration>,
}

/// How an Autotask job's new secret reaches Autotask: set by rotavault through SOAP, or by a person in the UI.
#[derive(Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum ApplySchema {
    Soap,
    Manual,
}

/// Where the admin API user's credential is: a secret in a store.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AdminSchema {
    pub store: String,
    pub name: String,
}

/// `[stores.NAME]` with `kind = "aws_secrets_manager"`. Credentials come only from the standard AWS chain.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AwsStoreSchema {
    #[serde(rename = "kind")]
    pub _kind: IgnoredAny,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub kms_key_id: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// `[stores.NAME]` with `kind = "azure_key_vault"`. Identities come from Azure, never from here.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AzureStoreSchema {
    #[serde(rename = "kind")]
    pub _kind: IgnoredAny,
    pub vault_url: String,
    pub content_type: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub set_expiry: bool,
    pub identity: Option<AzureIdentityKind>,
    pub client_id: Option<String>,
    pub tenant_id: Option<String>,
    pub client_secret_file: Option<String>,
    pub certificate_file: Option<String>,
}

#[derive(Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum AzureIdentityKind {
    ManagedIdentity,
    WorkloadIdentity,
    ClientSecret,
    ClientCertificate,
    DeveloperCli,
}

/// `[stores.NAME]` with `kind = "hashicorp_vault"` (HashiCorp Vault or OpenBao, KV v2).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct VaultStoreSchema {
    #[serde(rename = "kind")]
    pub _kind: IgnoredAny,
    pub address: String,
    pub mount: Option<String>,
    pub namespace: Option<String>,
    pub ca_file: Option<String>,
    pub pending_suffix: Option<String>,
    pub auth: VaultAuthKind,
    pub token_file: Option<String>,
    pub auth_mount: Option<String>,
    pub role_id: Option<String>,
    pub secret_id_file: Option<String>,
    pub role: Option<String>,
    pub service_account_token_file: Option<String>,
}

#[derive(Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum VaultAuthKind {
    Token,
    Approle,
    Kubernetes,
}

/// `[stores.NAME]` with `kind = "memory"`, and `[targets.NAME]` with `kind = "generated"`: nothing but the kind.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KindOnlySchema {
    #[serde(rename = "kind")]
    pub _kind: IgnoredAny,
}

/// `[jobs.NAME]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct JobSchema {
    pub target: String,
    /// Defaults to empty so that a job without stores gets the precise error from validation.
    #[serde(default)]
    pub stores: Vec<JobStoreSchema>,
    pub schedule: Option<String>,
    pub timezone: Option<String>,
    pub window: Option<ConfigDuration>,
    pub max_age: Option<ConfigDuration>,
    pub secret: Option<SecretSchema>,
    /// Autotask jobs: the API user, or two to alternate between.
    pub users: Option<Vec<String>>,
    /// Autotask jobs: `"manual"` or `"soap"`, instead of the target's `apply`.
    pub apply: Option<ApplySchema>,
    pub integration_code_file: Option<String>,
    pub integration_code_credential: Option<String>,
    pub format: Option<FormatSchema>,
    /// `command` and `webhook` jobs: the account at the target whose secret the job rotates.
    pub account: Option<String>,
    /// Reload hooks run once the new secret is current.
    #[serde(default)]
    pub after_rotation: Vec<HookSchema>,
    /// Windows in which no scheduled rotation of this job starts, besides the global ones.
    #[serde(default)]
    pub blackout: Vec<super::blackout::BlackoutSchema>,
    /// The job's own drift heartbeat interval (`"0s"`: none), instead of `[policy] heartbeat`.
    pub heartbeat: Option<ConfigDuration>,
}

/// What an Autotask job stores.
#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum FormatSchema {
    Json,
    Secret,
}

/// One element of a job's `stores`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct JobStoreSchema {
    pub store: String,
    pub name: String,
    #[serde(default)]
    pub adopt: bool,
}

/// `[jobs.NAME.secret]`: the job's own rules for its generated secrets.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SecretSchema {
    pub length: Option<usize>,
    pub alphabet: Option<String>,
    pub forbidden: Option<String>,
    #[serde(default)]
    pub require: Vec<CharClass>,
    pub min_groups: Option<usize>,
    #[serde(default)]
    pub positions: Vec<PositionSchema>,
}

/// `{ class = "special", from = 2, to = 6 }`: positions counted from 1.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PositionSchema {
    pub class: CharClass,
    pub from: usize,
    pub to: usize,
}
