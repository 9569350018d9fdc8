//! Builds the running objects from a validated [`Config`]: every store (wrapped in [`Instrumented`]), every
//! target, the [`Engine`] and its jobs. The one place that turns config kinds into backends, by one `match` each.

use crate::config::{AutotaskTargetConfig, Config, JobConfig, LeaseConfig, StoreConfig, TargetConfig};
use crate::events::{self, AuditFile, EventSink, Fanout, LogSink, age::AgeWarnings};
use crate::lockout::LockoutGuard;
use crate::notify::Notifier;
use crate::rotation::state::StateDir;
use crate::rotation::{Engine, Job, JobStore};
use crate::schedule::{Blackout, Clock, Due, Held, Schedule, hold, next_due};
use crate::secret::SecretPolicy;
use crate::shared::SharedState;
use crate::store::file::FileStore;
use crate::store::instrumented::Instrumented;
use crate::store::memory::MemoryStore;
use crate::store::{SecretRef, Store, StoreError};
use crate::target::Target;
use crate::target::autotask::{AdminSource, AutotaskTarget, AutotaskTenant, TenantSettings};
use crate::target::command::{CommandSettings, CommandTarget};
use crate::target::generated::GeneratedTarget;
use crate::target::webhook::{WebhookEndpoint, WebhookTarget};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

mod hooks;
mod notifications;
mod summaries;

pub use summaries::JobSummaries;

/// A job with what the scheduler needs to know of it.
#[derive(Debug)]
pub struct ScheduledJob {
    pub job: Job,
    /// The name of its `[targets.X]`, shared by that target's jobs: a bounded label for metrics.
    pub target: Arc<str>,
    pub schedule: Option<Schedule>,
    pub max_age: Option<Duration>,
    /// The windows in which its scheduled rotations do not start: the global ones (shared by every job that has
    /// none of its own) and its own. `None`: no window.
    pub blackouts: Option<Arc<[Blackout]>>,
    /// How often its stored value is verified between rotations; `None`: never.
    pub heartbeat: Option<Duration>,
    /// How long before `max_age` its age warning (or, for a manual job, "manual rotation due") comes.
    pub warn_before: Option<Duration>,
}

impl ScheduledJob {
    /// When the job is next due, from the age of its secret: [`next_due`], moved past any blackout window (read in
    /// the schedule's time zone, UTC without one), with the window that moved it.
    pub fn next_due(&self, rotated_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> (Due, Option<Held>) {
        let mut due = next_due(&self.job.name, self.schedule.as_ref(), self.max_age, rotated_at, now);
        let zone = self.schedule.as_ref().map_or(chrono_tz::Tz::UTC, Schedule::zone);
        let held = self.blackouts.as_deref().and_then(|windows| hold(windows, zone, due.at));
        if let Some(held) = &held {
            due.at = held.until;
        }
        (due, held)
    }
}

#[derive(Debug)]
pub struct Runtime {
    /// The config it was built from, without its jobs: those live in `jobs`, built.
    pub config: Config,
    pub engine: Engine,
    pub jobs: Vec<ScheduledJob>,
    pub stores: BTreeMap<String, Arc<Instrumented>>,
    /// Each `[targets.X]` of kind `autotask`, by name: what its jobs share, and its request counts for metrics.
    pub tenants: BTreeMap<String, Arc<AutotaskTenant>>,
    /// Where every event goes: the log, and the audit file when `[audit] path` is set.
    pub events: Arc<dyn EventSink>,
    /// The audit file, for the daemon to reopen on SIGHUP.
    pub audit: Option<Arc<AuditFile>>,
    /// Which secrets were already warned about (see `events::age`).
    pub age_warnings: AgeWarnings,
    /// The `[notify.NAME]` sinks, delivering already; an [`crate::events::EventSink`] for the engine's events.
    pub notifier: Notifier,
    /// With `[lease] kind = "kubernetes"`: what the next leader must know (apply intents, login counts, diverged
    /// marks), which the engine and the lockout guard keep here and the lease writes into the Lease.
    pub shared: Option<Arc<SharedState>>,
    /// `None`: this process runs its jobs at once (`[lease] kind = "file"`). `Some`: it runs them once the token is
    /// cancelled, when this replica holds the Kubernetes Lease; until then it stands by (`cli::run` sets it).
    pub leading: Option<CancellationToken>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("store `{name}` cannot be opened: {source}")]
    Store { name: String, source: StoreError },
    #[error("target `{name}`: {detail}")]
    Target { name: String, detail: String },
    #[error("job `{name}`: {detail}")]
    Job { name: String, detail: String },
    #[error("notification sink `{name}`: {detail}")]
    Notify { name: String, detail: String },
    /// `key` is the dotted config key of the hook (`jobs.app.after_rotation[0]`).
    #[error("{key}: {detail}")]
    Hook { key: String, detail: String },
    #[error("{0}")]
    Lease(String),
}

impl Runtime {
    pub async fn build(
        config: Config,
        clock: Arc<dyn Clock>,
        shutdown: CancellationToken,
    ) -> Result<Self, BuildError> {
        Self::build_with_stores(config, clock, shutdown, BTreeMap::new()).await
    }

    /// [`Runtime::build`], with some stores supplied ready-made instead of opened from the config: for tests that
    /// reach a backend through a fake transport.
    pub async fn build_with_stores(
        config: Config,
        clock: Arc<dyn Clock>,
        shutdown: CancellationToken,
        ready: BTreeMap<String, Arc<dyn Store>>,
    ) -> Result<Self, BuildError> {
        Self::build_inner(config, clock, shutdown, ready, None).await
    }

    /// Builds a reloaded configuration to replace `current`: the same clock, and the same shared state, which the
    /// process's lease goes on writing. The lease itself is the process's: a reload that changes `[lease]` is
    /// refused.
    pub async fn build_reloaded(
        config: Config,
        current: &Runtime,
        shutdown: CancellationToken,
    ) -> Result<Self, BuildError> {
        if config.lease != current.config.lease {
            return Err(BuildError::Lease(
                "[lease] changed: the lease is taken once per process, so the new one takes effect at the next \
                 start"
                    .into(),
            ));
        }
        let clock = current.engine.clock().clone();
        let mut next =
            Self::build_inner(config, clock, shutdown, BTreeMap::new(), current.shared.clone()).await?;
        next.leading = current.leading.clone();
        Ok(next)
    }

    async fn build_inner(
        config: Config,
        clock: Arc<dyn Clock>,
        shutdown: CancellationToken,
        mut ready: BTreeMap<String, Arc<dyn Store>>,
        shared: Option<Arc<SharedState>>,
    ) -> Result<Self, BuildError> {
        // Replicas keep what the next leader must know where every replica reads it; one host, in its files.
        let shared = match config.lease {
            LeaseConfig::File => None,
            LeaseConfig::Kubernetes(_) => Some(shared.unwrap_or_default()),
        };
        let mut stores = BTreeMap::new();
        for (name, store_config) in &config.stores {
            let store = match ready.remove(name) {
                Some(store) => store,
                None => open_store(store_config)
                    .await
                    .map_err(|source| BuildError::Store { name: name.clone(), source })?,
            };
            stores.insert(name.clone(), Arc::new(Instrumented::new(name.clone(), store)));
        }
        // One lockout guard for every login of this process, on the state directory every other process shares.
        let mut lockout = LockoutGuard::new(
            &config.state_dir,
            config.rotation.max_failed_logins,
            config.rotation.failed_login_window,
            clock.clone(),
        );
        if let Some(shared) = &shared {
            lockout = lockout.with_shared(shared.clone());
        }
        let lockout = Arc::new(lockout);
        // What the jobs of one `[targets.X]` share, built once: an Autotask tenant; a `generated` target whole,
        // since it holds nothing of a job's own; a `command` target's settings; a `webhook` target's endpoint,
        // its files read once.
        let mut parts = TargetParts::default();
        for (name, target) in &config.targets {
            match target {
                TargetConfig::Autotask(autotask) => {
                    let zone_cache = config.state_dir.join("zones").join(format!("{name}.json"));
                    let tenant = autotask_tenant(autotask, &stores, lockout.clone(), zone_cache)
                        .map_err(|detail| BuildError::Target { name: name.clone(), detail })?;
                    parts.tenants.insert(name.clone(), tenant);
                }
                TargetConfig::Generated => {
                    parts
                        .generated
                        .insert(name.clone(), Arc::new(GeneratedTarget::new(SecretPolicy::default())));
                }
                TargetConfig::Command(settings) => {
                    parts.commands.insert(name.clone(), Arc::new(settings.clone()));
                }
                TargetConfig::Webhook(webhook) => {
                    let endpoint = crate::notify::files::client()
                        .and_then(|client| {
                            WebhookEndpoint::new(
                                &webhook.url_file,
                                &webhook.key_file,
                                webhook.timeout,
                                client,
                            )
                        })
                        .map_err(|detail| BuildError::Target { name: name.clone(), detail })?;
                    parts.webhooks.insert(name.clone(), Arc::new(endpoint));
                }
            }
        }

        let global: Option<Arc<[Blackout]>> =
            (!config.blackouts.is_empty()).then(|| Arc::from(config.blackouts.as_slice()));
        let mut jobs = Vec::with_capacity(config.jobs.len());
        let target_names: BTreeMap<&str, Arc<str>> =
            config.targets.keys().map(|name| (name.as_str(), Arc::from(name.as_str()))).collect();
        for (name, job) in &config.jobs {
            let target = build_target(&config, job, &parts)
                .map_err(|detail| BuildError::Job { name: name.clone(), detail })?;
            let job_stores = job_stores(name, job, &stores)?;
            jobs.push(ScheduledJob {
                target: target_names
                    .get(job.target.as_str())
                    .cloned()
                    .unwrap_or_else(|| Arc::from(job.target.as_str())),
                job: Job {
                    name: name.clone(),
                    target,
                    stores: job_stores,
                    policy: job.secret_policy.clone(),
                },
                schedule: job.schedule.clone(),
                max_age: job.max_age,
                blackouts: if job.blackouts.is_empty() {
                    global.clone()
                } else {
                    Some(config.blackouts.iter().chain(&job.blackouts).cloned().collect())
                },
                heartbeat: job.heartbeat,
                warn_before: job.max_age.map(|max_age| config.warn_before(max_age)),
            });
        }

        let audit = config
            .audit
            .path
            .as_ref()
            .map(|path| Arc::new(AuditFile::new(path, events::local_source(&config.path))));
        let mut sinks: Vec<Arc<dyn EventSink>> = vec![Arc::new(LogSink)];
        sinks.extend(audit.clone().map(|a| a as Arc<dyn EventSink>));
        // The notification sinks also tell the log and the audit file when one of them gives up.
        let notifier = notifications::start(&config, Some(Arc::new(Fanout(sinks.clone()))))?;
        sinks.push(Arc::new(notifier.clone()));
        let events: Arc<dyn EventSink> = Arc::new(Fanout(sinks));
        let hooks = hooks::build(&config, &shutdown)?;

        let settings = config.rotation.clone();
        let mut states = StateDir::new(&config.state_dir);
        if let Some(shared) = &shared {
            states = states.with_shared(shared.clone());
        }
        let engine = Engine::new(settings, clock, states, true)
            .with_shutdown(shutdown)
            .with_lockout(lockout)
            .with_events(events.clone())
            .with_hooks(hooks);
        // Every job now lives in `jobs`, built; its config would only double what each job costs in memory.
        let mut config = config;
        config.jobs.clear();
        Ok(Self {
            config,
            engine,
            jobs,
            stores,
            tenants: parts.tenants,
            events,
            audit,
            age_warnings: AgeWarnings::default(),
            notifier,
            shared,
            leading: None,
        })
    }

    /// Delivers what the notification sinks still hold, within `notify::FLUSH_DEADLINE`: a one-shot command
    /// (`rotate`, `import`, `resolve`) exits right after its engine call and must not drop the notice of it.
    pub async fn flush_notifications(&self) {
        let left = self.notifier.flush(crate::notify::FLUSH_DEADLINE).await;
        if left > 0 {
            tracing::warn!(left, "notifications not delivered before the deadline");
        }
    }

    /// Emits an age warning for `job` if its secret (rotated at `rotated_at`) is within `[policy] warn_before` (by default a tenth) of
    /// its `max_age` and `rotates_by` (the next planned rotation; `None` when none is expected to succeed) comes
    /// too late; once per secret version. The daemon calls it each time it works out when a job is due.
    pub fn warn_age(
        &self,
        job: &ScheduledJob,
        rotated_at: Option<DateTime<Utc>>,
        rotates_by: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) {
        let (Some(rotated_at), Some(max_age), Some(warn_before)) = (rotated_at, job.max_age, job.warn_before)
        else {
            return;
        };
        if let Some(event) =
            self.age_warnings.check(&job.job.name, rotated_at, max_age, warn_before, rotates_by, now)
        {
            self.events.emit(&event);
        }
    }

    /// Emits `manual_rotation_due` or `manual_rotation_overdue` for a manual `job` whose secret was set at
    /// `rotated_at`, when due; each once per secret version.
    pub fn notice_manual(&self, job: &ScheduledJob, rotated_at: DateTime<Utc>, now: DateTime<Utc>) {
        let (Some(max_age), Some(warn_before)) = (job.max_age, job.warn_before) else { return };
        if let Some(event) =
            self.age_warnings.check_manual(&job.job.name, rotated_at, max_age, warn_before, now)
        {
            self.events.emit(&event);
        }
    }

    pub fn job(&self, name: &str) -> Option<&ScheduledJob> {
        self.jobs.iter().find(|j| j.job.name == name)
    }

    pub fn job_names(&self) -> Vec<&str> {
        self.jobs.iter().map(|j| j.job.name.as_str()).collect()
    }
}

/// The job's stores, each resolved. The config has checked every reference, but a `Config` is plain data anyone
/// can build: a job that names a store that is not there, or none at all, is refused here rather than run with
/// fewer stores than it names.
fn job_stores(
    name: &str,
    job: &JobConfig,
    stores: &BTreeMap<String, Arc<Instrumented>>,
) -> Result<Vec<JobStore>, BuildError> {
    let refuse = |detail: String| BuildError::Job { name: name.to_owned(), detail };
    if job.stores.is_empty() {
        return Err(refuse("it names no store: expected at least one".into()));
    }
    // Sized exactly: collected through a `Result`, a one-store job's list would keep room for four for the
    // daemon's life.
    let mut resolved = Vec::with_capacity(job.stores.len());
    for js in &job.stores {
        let store: Arc<dyn Store> = stores
            .get(&js.store)
            .ok_or_else(|| {
                refuse(format!(
                    "it names store `{}`, which is not defined: expected one of {}",
                    js.store,
                    stores.keys().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                ))
            })?
            .clone();
        let mut secret = SecretRef::new(js.name.clone(), name.to_owned());
        secret.adopt = js.adopt;
        secret.max_age = job.max_age;
        resolved.push(JobStore { label: js.store.clone(), store, secret });
    }
    Ok(resolved)
}

async fn open_store(config: &StoreConfig) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match config {
        StoreConfig::Memory => Arc::new(MemoryStore::new()),
        StoreConfig::File { path, identity } => Arc::new(FileStore::open(path.clone(), identity.clone())?),
        #[cfg(feature = "aws")]
        StoreConfig::AwsSecretsManager(aws) => {
            use crate::store::aws::{AwsSecretsManagerStore, AwsSettings};
            let settings = AwsSettings {
                region: aws.region.clone(),
                endpoint_url: aws.endpoint_url.clone(),
                kms_key_id: aws.kms_key_id.clone(),
                tags: aws.tags.clone(),
            };
            Arc::new(AwsSecretsManagerStore::new(settings).await?)
        }
        #[cfg(feature = "azure")]
        StoreConfig::AzureKeyVault(azure) => {
            use crate::config::AzureIdentityConfig as C;
            use crate::store::azure::{AzureIdentity, AzureKeyVaultStore, AzureSettings};
            let identity = match azure.identity.clone() {
                C::ManagedIdentity { client_id } => AzureIdentity::ManagedIdentity { client_id },
                C::WorkloadIdentity => AzureIdentity::WorkloadIdentity,
                C::ClientSecret { tenant_id, client_id, secret_file } => {
                    AzureIdentity::ClientSecret { tenant_id, client_id, secret_file }
                }
                C::ClientCertificate { tenant_id, client_id, certificate_file } => {
                    AzureIdentity::ClientCertificate { tenant_id, client_id, certificate_file }
                }
                C::DeveloperCli => AzureIdentity::DeveloperCli,
            };
            let settings = AzureSettings {
                vault_url: azure.vault_url.clone(),
                content_type: azure.content_type.clone(),
                tags: azure.tags.clone(),
                set_expiry: azure.set_expiry,
                identity,
            };
            Arc::new(AzureKeyVaultStore::new(settings)?)
        }
        #[cfg(not(feature = "azure"))]
        StoreConfig::AzureKeyVault(_) => {
            return Err(StoreError::NotSupported {
                backend: crate::config::AZURE_BACKEND,
                what: "this rotavault was built without the `azure` feature".into(),
            });
        }
        #[cfg(feature = "vault")]
        StoreConfig::HashicorpVault(v) => {
            use crate::config::VaultAuthConfig as C;
            use crate::store::vault::{VaultAuth, VaultSettings, VaultStore};
            let auth = match v.auth.clone() {
                C::Token { token_file } => VaultAuth::TokenFile(token_file),
                C::AppRole { mount, role_id, secret_id_file } => {
                    VaultAuth::AppRole { mount, role_id, secret_id_file }
                }
                C::Kubernetes { mount, role, token_file } => {
                    VaultAuth::Kubernetes { mount, role, token_file }
                }
            };
            let settings = VaultSettings {
                address: v.address.clone(),
                mount: v.mount.clone(),
                namespace: v.namespace.clone(),
                ca_file: v.ca_file.clone(),
                pending_suffix: v.pending_suffix.clone(),
                auth,
            };
            Arc::new(VaultStore::new(settings).await?)
        }
        #[cfg(not(feature = "vault"))]
        StoreConfig::HashicorpVault(_) => {
            return Err(StoreError::NotSupported {
                backend: crate::config::VAULT_BACKEND,
                what: "this rotavault was built without the `vault` feature".into(),
            });
        }
        #[cfg(not(feature = "aws"))]
        StoreConfig::AwsSecretsManager(_) => {
            return Err(StoreError::NotSupported {
                backend: crate::config::AWS_BACKEND,
                what: "this rotavault was built without the `aws` feature".into(),
            });
        }
    })
}

/// The shared half of an Autotask target: one HTTP client, zone cache and request budget per tenant.
fn autotask_tenant(
    config: &AutotaskTargetConfig,
    stores: &BTreeMap<String, Arc<Instrumented>>,
    lockout: Arc<LockoutGuard>,
    zone_cache: std::path::PathBuf,
) -> Result<Arc<AutotaskTenant>, String> {
    let admin = match &config.admin {
        Some(admin) => {
            let store: Arc<dyn Store> = stores
                .get(&admin.store)
                .ok_or_else(|| format!("the admin store `{}` is not defined", admin.store))?
                .clone();
            // The admin credential belongs to the job that rotates it; with none, it was put there by a person or
            // another tool and is only ever read.
            let secret = match &admin.job {
                Some(job) => SecretRef::new(admin.name.clone(), job.clone()),
                None => SecretRef::new(admin.name.clone(), "").adopting(),
            };
            Some(AdminSource { store, secret })
        }
        None => None,
    };
    let settings = TenantSettings { zone_cache: Some(zone_cache), ..config.tenant_settings() };
    AutotaskTenant::with_lockout(settings, admin, lockout).map_err(|e| e.to_string())
}

/// What the jobs of one `[targets.X]` share, by target name.
#[derive(Default)]
struct TargetParts {
    tenants: BTreeMap<String, Arc<AutotaskTenant>>,
    generated: BTreeMap<String, Arc<dyn Target>>,
    commands: BTreeMap<String, Arc<CommandSettings>>,
    webhooks: BTreeMap<String, Arc<WebhookEndpoint>>,
}

fn build_target(config: &Config, job: &JobConfig, parts: &TargetParts) -> Result<Arc<dyn Target>, String> {
    match config.targets.get(&job.target) {
        Some(TargetConfig::Generated) => parts
            .generated
            .get(&job.target)
            .cloned()
            .ok_or_else(|| "the generated target was not built".into()),
        Some(TargetConfig::Command(_)) => {
            let settings = parts.commands.get(&job.target).ok_or("the command target was not built")?;
            let account = job.account.as_deref().ok_or("the job names no account")?;
            Ok(Arc::new(CommandTarget::new(&job.target, &job.name, account, settings.clone())))
        }
        Some(TargetConfig::Webhook(_)) => {
            let endpoint = parts.webhooks.get(&job.target).ok_or("the webhook target was not built")?;
            let account = job.account.as_deref().ok_or("the job names no account")?;
            Ok(Arc::new(WebhookTarget::new(&job.target, &job.name, account, endpoint.clone())))
        }
        Some(TargetConfig::Autotask(_)) => {
            let tenant = parts.tenants.get(&job.target).ok_or("the Autotask target was not built")?;
            let account = job.autotask.as_ref().ok_or("the job names no Autotask user")?;
            let code = account.integration_code.read().map_err(|e| format!("integration code: {e}"))?;
            let target = AutotaskTarget::new(tenant.clone(), account.users.clone(), code, account.format)
                .map_err(|e| e.to_string())?
                .manual(account.manual);
            Ok(Arc::new(target))
        }
        None => Err(format!("unknown target `{}`", job.target)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::SystemClock;

    fn config() -> Config {
        let source = r#"[stores.local]
kind = "memory"

[targets.shared]
kind = "generated"

[jobs.webhook]
target = "shared"
stores = [ { store = "local", name = "webhooks/signing-key" } ]
max_age = "30d"
"#;
        crate::config::parse(source, std::path::Path::new("/etc/rotavault/config.toml")).expect("valid")
    }

    async fn build(config: Config) -> Result<Runtime, BuildError> {
        Runtime::build(config, Arc::new(SystemClock), CancellationToken::new()).await
    }

    #[tokio::test]
    async fn a_job_whose_store_does_not_resolve_is_a_build_error_not_a_job_with_fewer_stores() {
        let mut config = config();
        config.jobs.get_mut("webhook").expect("job").stores[0].store = "gone".into();
        let err = build(config).await.expect_err("an unresolved store");
        assert_eq!(
            err.to_string(),
            "job `webhook`: it names store `gone`, which is not defined: expected one of `local`"
        );
    }

    #[tokio::test]
    async fn a_job_without_stores_is_a_build_error() {
        let mut config = config();
        config.jobs.get_mut("webhook").expect("job").stores.clear();
        let err = build(config).await.expect_err("no store");
        assert!(matches!(&err, BuildError::Job { name, .. } if name == "webhook"), "{err}");
        assert!(err.to_string().contains("names no store"), "{err}");
        assert_eq!(build(self::config()).await.expect("builds").jobs[0].job.stores.len(), 1);
    }
}
