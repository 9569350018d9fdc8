//! The Autotask target: rotates the password ("Secret") of Autotask PSA API users.
//!
//! How a rotation meets Autotask (DESIGN.md, "Autotask"; the exact wire is docs/autotask-wire.md):
//!
//! - **prepare** picks the user (with two, the one not in use), resolves its zone and builds the payload;
//! - **apply** reads the admin API user's credential from its store, SOAP-`query`s the user's `Resource` and
//!   SOAP-`update`s it whole with the new `Password` (`soap`);
//! - **verify** makes one authenticated REST call with the new credential (`rest`).
//!
//! The map: `tenant` is what all jobs on one tenant share (HTTP client, zones, budget, thread limits,
//! back-off), `answer` classifies Autotask's refusals, `admin` reads the admin credential, `payload` is
//! what the stores hold, `policy` the password rules, `xml` the little XML SOAP needs, `checks` the
//! `check --connect` probes, `zone` the zone URLs (https, the pinned `V1.0`) and `zone_cache` the zones kept
//! between processes.

mod admin;
mod answer;
mod budget;
mod checks;
mod patience;
mod payload;
mod policy;
mod requests;
mod rest;
mod soap;
mod tenant;
mod xml;
mod zone;
mod zone_cache;

#[cfg(test)]
mod tests;

pub use admin::AdminSource;
pub use payload::PayloadFormat;
pub use policy::autotask_policy;
pub use tenant::{AutotaskTenant, DEFAULT_ZONE_LOOKUP_URL, TenantSettings};
pub use zone::check_zone_url;

use super::{RotationInfo, Target, TargetDescription, TargetError};
use crate::secret::{SecretPolicy, SecretValue};
use async_trait::async_trait;
use payload::{Credential, Payload, choose_user};
use std::fmt;
use std::sync::Arc;
use tenant::invalid;

/// How long an apply waits for a rotation of the admin credential to settle before giving up, having changed
/// nothing.
const ADMIN_ROTATION_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

pub const KIND: &str = "autotask";

/// One per job: which API user(s) it rotates, on which tenant.
pub struct AutotaskTarget {
    tenant: Arc<AutotaskTenant>,
    users: Vec<String>,
    integration_code: String,
    format: PayloadFormat,
    /// `apply = "manual"`: a person sets the secret in the Autotask UI; rotavault never does.
    manual: bool,
}

impl fmt::Debug for AutotaskTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AutotaskTarget")
            .field("users", &self.users)
            .field("format", &self.format)
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

impl AutotaskTarget {
    /// `users`: one user name, or two to alternate between (zero downtime); `integration_code`: the job's API
    /// tracking identifier, written into its payloads.
    pub fn new(
        tenant: Arc<AutotaskTenant>,
        users: Vec<String>,
        integration_code: String,
        format: PayloadFormat,
    ) -> Result<Self, TargetError> {
        let users: Vec<String> = users.into_iter().map(|u| u.trim().to_owned()).collect();
        if users.is_empty() || users.len() > 2 {
            return Err(invalid(format!(
                "a job names one API user, or two to alternate between; this one names {}",
                users.len()
            )));
        }
        if users.iter().any(String::is_empty) {
            return Err(invalid("an API user name is empty".into()));
        }
        if users.len() == 2 && users[0].eq_ignore_ascii_case(&users[1]) {
            return Err(invalid(format!("the two alternating users are the same user `{}`", users[0])));
        }
        if integration_code.trim().is_empty() {
            return Err(invalid("the integration code (API tracking identifier) is empty".into()));
        }
        if format == PayloadFormat::Secret && users.len() == 2 {
            return Err(invalid(
                "format = \"secret\" stores the bare secret, which cannot say which of two alternating users it \
                 belongs to; use format = \"json\""
                    .into(),
            ));
        }
        Ok(Self {
            tenant,
            users,
            integration_code: integration_code.trim().to_owned(),
            format,
            manual: false,
        })
    }

    /// A job whose secret a person sets in the Autotask UI (`apply = "manual"`): apply refuses, and nothing
    /// needs the admin.
    pub fn manual(mut self, manual: bool) -> Self {
        self.manual = manual;
        self
    }

    /// For `rotavault import`: the payload for a credential a person supplies. `user` must be one of the job's.
    pub async fn payload_for(
        &self,
        user: &str,
        secret: &SecretValue,
        info: &RotationInfo,
    ) -> Result<SecretValue, TargetError> {
        let user = self.configured_user(user).ok_or_else(|| {
            invalid(format!("`{user}` is not one of this job's users ({})", self.users.join(", ")))
        })?;
        self.build_payload(user, secret, info).await
    }

    /// The job's spelling of `name`, if it is one of its users.
    fn configured_user(&self, name: &str) -> Option<&str> {
        self.users.iter().find(|u| u.eq_ignore_ascii_case(name.trim())).map(String::as_str)
    }

    async fn build_payload(
        &self,
        user: &str,
        secret: &SecretValue,
        info: &RotationInfo,
    ) -> Result<SecretValue, TargetError> {
        match self.format {
            // Resolving here, before anything is staged, proves the user name early; the zone is also what a
            // consumer needs to reach Autotask.
            PayloadFormat::Json => {
                let zone = self.tenant.zone(user).await?;
                let credential = Credential {
                    username: user.to_owned(),
                    secret: secret.clone(),
                    integration_code: self.integration_code.clone(),
                };
                Ok(Payload::new(credential, &zone.rest, info).to_json())
            }
            PayloadFormat::Secret => Ok(secret.clone()),
        }
    }

    /// The metadata of the stored admin credential when `credential` is that very credential (the admin job
    /// verifying its current value), else `None`.
    async fn stored_admin_version(&self, credential: &Credential) -> Option<crate::store::Metadata> {
        if !self.users.iter().any(|u| u.eq_ignore_ascii_case(&credential.username)) {
            return None;
        }
        let (admin, metadata) = self.tenant.admin().ok()?.read_with_metadata().await.ok()?;
        (admin.username.eq_ignore_ascii_case(&credential.username) && admin.secret == credential.secret)
            .then_some(metadata)
    }

    /// The credential a payload holds.
    fn credential(&self, payload: &SecretValue) -> Result<Credential, TargetError> {
        match self.format {
            PayloadFormat::Json => Payload::from_json(payload)
                .map(|p| p.credential)
                .map_err(|why| invalid(format!("the stored payload is not an Autotask JSON payload: {why}"))),
            PayloadFormat::Secret => Ok(Credential {
                username: self.users[0].clone(),
                secret: payload.clone(),
                integration_code: self.integration_code.clone(),
            }),
        }
    }
}

#[async_trait]
impl Target for AutotaskTarget {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn policy(&self) -> SecretPolicy {
        autotask_policy()
    }

    #[tracing::instrument(skip_all, fields(target = KIND, user = tracing::field::Empty))]
    async fn prepare(
        &self,
        current: Option<&SecretValue>,
        secret: &SecretValue,
        info: &RotationInfo,
    ) -> Result<SecretValue, TargetError> {
        let user = choose_user(&self.users, current);
        tracing::Span::current().record("user", user);
        self.build_payload(user, secret, info).await
    }

    /// Query, then update with the whole entity: the order matters because update clears whatever it is not
    /// sent. Nothing is retried once the update may have been sent.
    #[tracing::instrument(skip_all, fields(target = KIND, user = tracing::field::Empty))]
    async fn apply(&self, payload: &SecretValue, timeout: std::time::Duration) -> Result<(), TargetError> {
        if self.manual {
            return Err(invalid(
                "apply = \"manual\": rotavault never sets this job's secret; nothing was sent".into(),
            ));
        }
        let credential = self.credential(payload)?;
        // Never set the password of an account the job does not name, whatever a store holds.
        let user = self.configured_user(&credential.username).ok_or_else(|| {
            invalid(format!(
                "the payload names API user `{}`, which is not one of this job's users ({})",
                credential.username,
                self.users.join(", ")
            ))
        })?;
        tracing::Span::current().record("user", user);
        let source = self.tenant.admin()?;
        // Waits that send nothing come first, bounded here, outside the engine's timeout: they end `Transient`,
        // never "unknown". The gate is held until the update is answered (see `AutotaskTenant::password_change`),
        // but never while waiting for the admin's own rotation to settle: that rotation needs the gate.
        let deadline = tokio::time::Instant::now() + ADMIN_ROTATION_WAIT;
        let (_one_change_at_a_time, admin, admin_metadata) = loop {
            let Ok(gate) = tokio::time::timeout_at(deadline, self.tenant.password_change()).await else {
                return Err(tenant::transient(
                    format!(
                        "another password change on this tenant took longer than {ADMIN_ROTATION_WAIT:?}; \
                         nothing was sent"
                    ),
                    None,
                ));
            };
            if let Some((admin, metadata)) = source.try_read_settled(&self.users).await? {
                break (gate, admin, metadata);
            }
            drop(gate);
            if tokio::time::Instant::now() >= deadline {
                return Err(source.still_rotating());
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        };
        self.tenant.admin_may_log_in(&admin.username, &admin_metadata)?;
        let refused = |f: answer::CallFailure| {
            let e = source.failure(f, &admin);
            if let TargetError::Blocked { detail, .. } = &e {
                self.tenant.admin_refused(&admin_metadata, detail);
            }
            e
        };
        // From the first request on, the engine's timeout runs. Only once the update may have left is an
        // unanswered apply "unknown"; a query cut short changed nothing.
        let update_sent = std::sync::atomic::AtomicBool::new(false);
        let requests = async {
            let entity = soap::query_resource(&self.tenant, &admin, user).await.map_err(refused)?;
            tracing::debug!(
                fields = entity.fields.len(),
                "resource queried; updating it whole with the new password"
            );
            update_sent.store(true, std::sync::atomic::Ordering::SeqCst);
            soap::update_password(&self.tenant, &admin, &entity, &credential.secret).await.map_err(refused)
        };
        match tokio::time::timeout(timeout, requests).await {
            Ok(result) => result?,
            Err(_) if update_sent.load(std::sync::atomic::Ordering::SeqCst) => {
                return Err(TargetError::Unknown {
                    target: KIND,
                    detail: format!("SOAP update: no answer within {timeout:?}"),
                });
            }
            Err(_) => {
                return Err(tenant::transient(
                    format!("SOAP query: no answer within {timeout:?}; nothing was changed"),
                    None,
                ));
            }
        }
        tracing::info!("Autotask accepted the new password");
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(target = KIND, user = tracing::field::Empty))]
    async fn verify(&self, payload: &SecretValue) -> Result<(), TargetError> {
        let credential = self.credential(payload)?;
        tracing::Span::current().record("user", credential.username.as_str());
        // The admin job's check of the stored admin credential is an admin login like any other: a version
        // Autotask refused is not presented again, and a refusal here blocks the tenant, so that no other job
        // presents it after.
        let stored_admin = self.stored_admin_version(&credential).await;
        if let Some(metadata) = &stored_admin {
            self.tenant.admin_may_log_in(&credential.username, metadata)?;
        }
        let result = rest::verify(&self.tenant, &credential).await;
        if let (Some(metadata), Err(TargetError::Unauthenticated { .. })) = (&stored_admin, &result)
            && let Ok(source) = self.tenant.admin()
        {
            let refused = answer::CallFailure::Refused(answer::Refusal::WrongSecret);
            if let TargetError::Blocked { detail, .. } = source.failure(refused, &credential) {
                self.tenant.admin_refused(metadata, &detail);
            }
        }
        result
    }

    fn login_account(&self, payload: &SecretValue) -> Option<String> {
        self.credential(payload).ok().map(|c| tenant::account_key(&c.username))
    }

    fn accounts(&self) -> Vec<String> {
        self.users.iter().map(|u| tenant::account_key(u)).collect()
    }

    fn manual(&self) -> bool {
        self.manual
    }

    fn longest_apply(&self) -> std::time::Duration {
        self.tenant.settings().longest_apply()
    }

    async fn blocked(&self) -> Option<String> {
        let source = self.tenant.admin().ok()?;
        let refusal = self.tenant.lockout().refusal(&source.location()).ok().flatten()?;
        // Another credential in the store since is presented again: not blocked (unless unreadable: then say so).
        if let Ok((_, metadata)) = source.read_with_metadata().await
            && tenant::credential_version(&metadata) != refusal.version
        {
            return None;
        }
        Some(source.refused_detail(&refusal))
    }

    async fn resolve(&self) -> Result<(), TargetError> {
        let Ok(source) = self.tenant.admin() else { return Ok(()) };
        let lockout = self.tenant.lockout();
        let failed = |e: crate::lockout::LockoutError| tenant::transient(e.to_string(), None);
        lockout.clear_refusal(&source.location()).map_err(failed)?;
        if let Ok(admin) = source.read().await {
            lockout.reset(&tenant::account_key(&admin.username)).map_err(failed)?;
        }
        Ok(())
    }

    fn account_of(&self, payload: &SecretValue) -> Option<String> {
        // Only alternating jobs have more than one account; with one, every payload is the same account.
        if self.users.len() < 2 {
            return None;
        }
        self.credential(payload).ok().map(|c| c.username.to_ascii_lowercase())
    }

    async fn import_payload(
        &self,
        user: Option<&str>,
        secret: &SecretValue,
        info: &RotationInfo,
    ) -> Result<SecretValue, TargetError> {
        let user = match (user, self.users.as_slice()) {
            (Some(user), _) => user,
            (None, [only]) => only.as_str(),
            (None, users) => {
                return Err(invalid(format!(
                    "the job alternates between {}: say which user the credential belongs to with --user",
                    users.join(" and ")
                )));
            }
        };
        self.payload_for(user, secret, info).await
    }

    async fn connect_checks(&self) -> Vec<super::ConnectCheck> {
        AutotaskTarget::connect_checks(self).await
    }

    fn describe(&self) -> TargetDescription {
        let detail = match self.users.as_slice() {
            [one, other] => format!("Autotask API user {one} (alternating with {other})"),
            users => format!("Autotask API user {}", users.join(", ")),
        };
        TargetDescription { kind: KIND, detail }
    }
}
