//! `[targets.NAME]`: the systems whose credentials are rotated, as [`TargetConfig`], one variant per kind.
//!
//! Adding a target is one variant here with its settings, one in `schema::TargetKind`, its schema struct, and one
//! arm in [`build`], in [`TargetConfig::rules`] and in [`TargetConfig::longest_apply`], and its construction in
//! `runtime::build_target`.

use super::document::Document;
use super::error::ConfigError;
use super::locate::KeyPath;
use super::schema::{
    ApplySchema, AutotaskTargetSchema, CommandTargetSchema, KindOnlySchema, TargetKind, WebhookTargetSchema,
};
use super::store::StoreConfig;
use super::validate::{Limit, nonzero, resolve_path};
use crate::secret::SecretPolicy;
use crate::target::autotask::TenantSettings;
use crate::target::command::CommandSettings;
use crate::target::{autotask, command, generated, webhook};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Autotask's own zone lookup: it answers for every tenant, without credentials.
pub const AUTOTASK_ZONE_LOOKUP: &str = "https://webservices2.autotask.net/atservicesrest/";

/// The longest `timeout` of one HTTP call to Autotask.
const TIMEOUT_LIMIT: Limit = Limit {
    max: Duration::from_secs(300),
    why: "an Autotask call that has not answered in five minutes will not; the engine's own `call_timeout` must \
          also fit every attempt of two of them",
};

/// The longest `timeout` of one run of a `command` target's program or one call to a `webhook` target.
const CALL_LIMIT: Limit = Limit {
    max: Duration::from_secs(10 * 60),
    why: "the job's lock is held meanwhile, and an apply cut off is an unknown outcome that waits for the apply \
          horizon",
};

/// A configured target, ready to be built by the engine.
#[derive(Clone, Debug)]
pub enum TargetConfig {
    /// No external system: the secret is generated and only stored.
    Generated,
    /// Autotask PSA API users, changed through SOAP with an admin API user and verified through REST.
    Autotask(AutotaskTargetConfig),
    /// A program applies and verifies, the secret on its standard input.
    Command(CommandSettings),
    /// An HTTPS endpoint applies and verifies, each request signed.
    Webhook(WebhookTargetConfig),
}

/// A `webhook` target: its files are only named here; the runtime reads them (they hold secrets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookTargetConfig {
    /// Holds the endpoint's URL, which may carry a token.
    pub url_file: PathBuf,
    /// Holds the Standard Webhooks signing key (`whsec_...`).
    pub key_file: PathBuf,
    /// Timeout of one call.
    pub timeout: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AutotaskTargetConfig {
    /// Where zones are looked up (`…/atservicesrest/`); the sandbox's own for tests and the demo.
    pub zone_lookup_url: String,
    /// `None` only with `manual`: no job of the target sets a password.
    pub admin: Option<AdminRef>,
    /// `apply = "manual"`: by default its jobs never set the secret; a person does, in the Autotask UI, and pipes it
    /// to `rotavault import`.
    pub manual: bool,
    /// Requests in flight at once per endpoint (Autotask allows 3 per integration code and endpoint).
    pub threads: usize,
    /// Requests per hour rotavault may spend on the tenant, whose 10,000 are shared by every integration.
    pub hourly_budget: u32,
    /// Timeout of one HTTP call.
    pub timeout: Duration,
}

impl AutotaskTargetConfig {
    /// The tenant's settings as the target is built with them.
    pub fn tenant_settings(&self) -> TenantSettings {
        TenantSettings {
            zone_lookup_url: self.zone_lookup_url.clone(),
            threads: self.threads,
            hourly_budget: self.hourly_budget,
            timeout: self.timeout,
            ..TenantSettings::default()
        }
    }
}

/// The admin API user's credential: a secret in a store, holding the JSON payload (username, secret,
/// integration_code).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminRef {
    pub store: String,
    pub name: String,
    /// The job that rotates the admin credential, when one does (self-rotation); `None` when it is kept up to date
    /// by hand or by another tool.
    pub job: Option<String>,
}

impl TargetConfig {
    /// The target's `KIND` constant, which is also its `kind` in the config.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Generated => generated::KIND,
            Self::Autotask(_) => autotask::KIND,
            Self::Command(_) => command::KIND,
            Self::Webhook(_) => webhook::KIND,
        }
    }

    /// The longest an apply's requests to the target can take by the target's own timeouts, attempts and back-offs;
    /// `None` for a target that sends none. The engine's `call_timeout` must not cut it short: an apply cut short
    /// by the engine is an unknown outcome, one the target's own limits would have settled.
    pub fn longest_apply(&self) -> Option<Duration> {
        match self {
            Self::Generated => None,
            Self::Autotask(autotask) => Some(autotask.tenant_settings().longest_apply()),
            Self::Command(command) => Some(command.timeout),
            Self::Webhook(webhook) => Some(webhook.timeout),
        }
    }

    /// The target's own secret rules, known without contacting it, so that a job whose rules cannot be met is a
    /// config error at load and not a failed rotation at 3 a.m.
    pub fn rules(&self) -> SecretPolicy {
        match self {
            // `GeneratedTarget` accepts whatever it is given: its rules are the default policy.
            Self::Generated => SecretPolicy::default(),
            Self::Autotask(_) => autotask::autotask_policy(),
            // The system behind a program or an endpoint has rules rotavault cannot know: a job states them in
            // its `secret` table.
            Self::Command(_) | Self::Webhook(_) => SecretPolicy::default(),
        }
    }
}

pub(super) fn build(
    doc: &Document<'_>,
    at: &KeyPath,
    kind: TargetKind,
    stores: &BTreeMap<String, StoreConfig>,
) -> Result<TargetConfig, ConfigError> {
    match kind {
        TargetKind::Command => {
            let schema: CommandTargetSchema = doc.deserialize_at(at)?;
            let apply =
                super::hooks::argv(doc, &at.key("apply"), schema.apply, "\"/usr/local/bin/set-password\"")?;
            let verify = super::hooks::argv(
                doc,
                &at.key("verify"),
                schema.verify,
                "\"/usr/local/bin/check-password\"",
            )?;
            let timeout = nonzero(doc, &at.key("timeout"), schema.timeout, CALL_LIMIT)?
                .unwrap_or(command::DEFAULT_TIMEOUT);
            Ok(TargetConfig::Command(CommandSettings { apply, verify, timeout }))
        }
        TargetKind::Webhook => {
            let schema: WebhookTargetSchema = doc.deserialize_at(at)?;
            let base = doc.file().parent().unwrap_or(std::path::Path::new(""));
            Ok(TargetConfig::Webhook(WebhookTargetConfig {
                url_file: resolve_path(doc, &at.key("url_file"), &schema.url_file, base)?,
                key_file: resolve_path(doc, &at.key("key_file"), &schema.key_file, base)?,
                timeout: nonzero(doc, &at.key("timeout"), schema.timeout, CALL_LIMIT)?
                    .unwrap_or(webhook::DEFAULT_TIMEOUT),
            }))
        }
        TargetKind::Generated => {
            doc.deserialize_at::<KindOnlySchema>(at)?;
            Ok(TargetConfig::Generated)
        }
        TargetKind::Autotask => {
            let schema: AutotaskTargetSchema = doc.deserialize_at(at)?;
            let zone_lookup_url = match schema.zone_lookup_url {
                None => AUTOTASK_ZONE_LOOKUP.to_owned(),
                Some(url) => zone_url(doc, &at.key("zone_lookup_url"), url)?,
            };
            let manual = schema.apply == Some(ApplySchema::Manual);
            let admin = match schema.admin {
                Some(admin) => Some(admin_ref(doc, at, admin, stores)?),
                None if manual => None,
                None => {
                    return Err(doc.error(
                        at,
                        "missing `admin`: expected admin = { store = \"...\", name = \"...\" }, where the admin API \
                         user's credential is (its SOAP update sets the jobs' passwords), or apply = \"manual\" for a \
                         tenant where a person sets them in the Autotask UI",
                    ));
                }
            };
            let threads = schema.threads.unwrap_or(1);
            if !(1..=3).contains(&threads) {
                return Err(doc.error(
                    &at.key("threads"),
                    format!("{threads} is out of range: expected 1 to 3 (Autotask allows 3 per integration code and endpoint)"),
                ));
            }
            let hourly_budget = schema.hourly_budget.unwrap_or(1000);
            if !(1..=10_000).contains(&hourly_budget) {
                return Err(doc.error(
                    &at.key("hourly_budget"),
                    format!(
                        "{hourly_budget} is out of range: expected 1 to 10000 requests per hour (the tenant's \
                         whole allowance, shared by every integration)"
                    ),
                ));
            }
            let timeout = nonzero(doc, &at.key("timeout"), schema.timeout, TIMEOUT_LIMIT)?
                .unwrap_or(TenantSettings::default().timeout);
            Ok(TargetConfig::Autotask(AutotaskTargetConfig {
                zone_lookup_url,
                admin,
                manual,
                threads,
                hourly_budget,
                timeout,
            }))
        }
    }
}

fn admin_ref(
    doc: &Document<'_>,
    at: &KeyPath,
    admin: super::schema::AdminSchema,
    stores: &BTreeMap<String, StoreConfig>,
) -> Result<AdminRef, ConfigError> {
    let Some(admin_store) = stores.get(&admin.store) else {
        let names: Vec<String> = stores.keys().map(|n| format!("`{n}`")).collect();
        return Err(doc.error(
            &at.key("admin").key("store"),
            format!(
                "unknown store `{}`: expected one of the defined stores: {}",
                admin.store,
                if names.is_empty() { "(none)".to_owned() } else { names.join(", ") }
            ),
        ));
    };
    super::store::secret_name(doc, &at.key("admin").key("name"), &admin.name, admin_store)?;
    Ok(AdminRef { store: admin.store, name: admin.name, job: None })
}

/// An https URL (plain http only to a loopback address) ending in `/`, so that `v1.0/zoneInformation` can be
/// appended.
fn zone_url(doc: &Document<'_>, at: &KeyPath, url: String) -> Result<String, ConfigError> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') && !url.contains(char::is_whitespace) => {
            autotask::check_zone_url(&url).map_err(|why| doc.error(at, why))?;
            Ok(if url.ends_with('/') { url } else { format!("{url}/") })
        }
        _ => {
            Err(doc.error(at, format!("not a URL: expected an https URL such as \"{AUTOTASK_ZONE_LOOKUP}\"")))
        }
    }
}
