//! The admin API user: the account with System Administrator level whose SOAP `update` sets the other users'
//! passwords.
//!
//! Its credential lives in a store, as a JSON payload of the same shape a job writes (`username`, `secret`,
//! `integration_code`), and is read afresh from the **current** slot for every apply. That is what makes
//! self-rotation work: when the admin user is itself a rotavault job, the current slot holds the password
//! Autotask accepts until Verify has proven the new one and Promote has moved it there.

use super::KIND;
use super::answer::{CallFailure, Refusal};
use super::payload::{Credential, Payload};
use crate::store::{Metadata, SecretRef, Store, StoreError};
use crate::target::TargetError;
use std::sync::Arc;
use std::time::Duration;

fn store_failure(source: &AdminSource, e: StoreError) -> TargetError {
    match e {
        StoreError::Transient { detail, retry_after, .. } => TargetError::Transient {
            target: KIND,
            detail: format!("reading the admin credential from {}: {detail}", source.label()),
            retry_after,
        },
        e => TargetError::Invalid {
            target: KIND,
            detail: format!("reading the admin credential from {}: {e}", source.label()),
        },
    }
}

/// Where the admin API user's credential comes from: a store slot holding a JSON payload.
#[derive(Clone, Debug)]
pub struct AdminSource {
    pub store: Arc<dyn Store>,
    pub secret: SecretRef,
}

impl AdminSource {
    /// How messages name the slot: "the admin credential in {label}".
    pub(super) fn label(&self) -> String {
        format!("{} store secret `{}`", self.store.backend(), self.secret.name)
    }

    /// Where the credential lives, as the lockout guard remembers a refusal of it.
    pub(super) fn location(&self) -> String {
        format!("autotask-admin:{}:{}", self.store.backend(), self.secret.name)
    }

    /// What status and errors say while Autotask's refusal of the stored admin credential stands.
    pub(super) fn refused_detail(&self, refusal: &crate::lockout::Refusal) -> String {
        format!(
            "admin credential refused: {} (at {}). rotavault does not present it again, in any process, until {} \
             holds another one: store the admin API user's working credential there (`rotavault import` if the \
             admin is a job), or, if this one works again (the account was unlocked), run `rotavault resolve JOB`",
            refusal.reason,
            refusal.at,
            self.label()
        )
    }

    /// The admin credential as the store holds it now.
    pub(super) async fn read(&self) -> Result<Credential, TargetError> {
        self.read_with_metadata().await.map(|(credential, _)| credential)
    }

    /// The admin credential with its metadata, or `None` while a rotation of it is in flight. While the admin
    /// job has a value pending, Autotask may already have taken it and dropped the current one, so the current
    /// one is not presented until the admin job has settled; unless the apply is the admin job's own (`job_users`
    /// holds the admin user), for which the current value is exactly the one that still works.
    pub(super) async fn try_read_settled(
        &self,
        job_users: &[String],
    ) -> Result<Option<(Credential, Metadata)>, TargetError> {
        let (credential, metadata) = self.read_with_metadata().await?;
        if job_users.iter().any(|u| u.eq_ignore_ascii_case(&credential.username)) {
            return Ok(Some((credential, metadata)));
        }
        match self.store.pending(&self.secret).await {
            Ok(None) => Ok(Some((credential, metadata))),
            Ok(Some(_)) => Ok(None),
            Err(e) => Err(store_failure(self, e)),
        }
    }

    /// The error when the admin credential stayed in flight for longer than an apply waits.
    pub(super) fn still_rotating(&self) -> TargetError {
        TargetError::Transient {
            target: KIND,
            detail: format!(
                "the admin credential in {} is being rotated (a value is pending); nothing was changed",
                self.label()
            ),
            // Longer than the engine retries an apply for: the run ends ("try later") instead of holding the
            // job's lock through more waits, and a later run finds the admin settled.
            retry_after: Some(Duration::from_secs(60)),
        }
    }

    pub(super) async fn read_with_metadata(&self) -> Result<(Credential, Metadata), TargetError> {
        let invalid = |detail: String| TargetError::Invalid { target: KIND, detail };
        let stored = match self.store.current(&self.secret).await {
            Ok(Some(stored)) => stored,
            Ok(None) => {
                return Err(invalid(format!(
                    "the admin credential in {} is missing: write the admin API user's JSON payload there \
                     (`rotavault import` does, if the admin user is a job)",
                    self.label()
                )));
            }
            Err(StoreError::Transient { detail, retry_after, .. }) => {
                return Err(TargetError::Transient {
                    target: KIND,
                    detail: format!("reading the admin credential from {}: {detail}", self.label()),
                    retry_after,
                });
            }
            Err(e) => {
                return Err(invalid(format!("reading the admin credential from {}: {e}", self.label())));
            }
        };
        let credential = Payload::from_json(&stored.value).map(|p| p.credential).map_err(|why| {
            invalid(format!(
                "the admin credential in {} is not a JSON payload with username, secret and integration_code: {why}",
                self.label()
            ))
        })?;
        Ok((credential, stored.metadata))
    }

    /// What a failed admin call means. A refusal of the admin's credential itself (a wrong secret, a locked
    /// account) blocks the tenant until a person acts: `Blocked`; any other refusal is a configuration problem:
    /// `Invalid`, saying where the credential came from.
    pub(super) fn failure(&self, failure: CallFailure, admin: &Credential) -> TargetError {
        let refusal = match failure {
            CallFailure::Failed(e) => return e,
            CallFailure::Refused(refusal) => refusal,
        };
        let (user, label) = (&admin.username, self.label());
        let blocks = matches!(refusal, Refusal::WrongSecret | Refusal::Locked);
        let detail = match refusal {
            Refusal::WrongSecret => {
                format!(
                    "the admin credential in {label} does not authenticate (HTTP 401 for API user `{user}`)"
                )
            }
            Refusal::Locked => format!(
                "the admin API user `{user}` (credential in {label}) is locked in Autotask after repeated failed \
                 logins; a person must unlock it"
            ),
            Refusal::NotApiOnly => format!(
                "the admin user `{user}` (credential in {label}) is not an API-only user; give it the \
                 \"API User (system) (API-only)\" security level"
            ),
            Refusal::UnknownUser => {
                format!("Autotask knows no API user `{user}` (the admin credential in {label})")
            }
            Refusal::BadIntegrationCode => format!(
                "Autotask does not accept the integration code of the admin credential in {label} \
                 (\"IntegrationCode is invalid.\")"
            ),
            Refusal::Throttled { retry_after, detail } => {
                return TargetError::Transient { target: KIND, detail, retry_after };
            }
            Refusal::Server { .. } => {
                return TargetError::Transient {
                    target: KIND,
                    detail: refusal.to_string(),
                    retry_after: None,
                };
            }
            Refusal::Other { .. } => format!("Autotask refused the admin API user `{user}`: {refusal}"),
        };
        if blocks {
            return TargetError::Blocked { target: KIND, detail };
        }
        TargetError::Invalid { target: KIND, detail }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretValue;
    use crate::store::Metadata;
    use crate::store::memory::MemoryStore;

    fn source() -> (Arc<MemoryStore>, AdminSource) {
        let store = Arc::new(MemoryStore::new());
        let secret = SecretRef::new("autotask/admin", "autotask-admin");
        (store.clone(), AdminSource { store, secret })
    }

    #[tokio::test]
    async fn the_admin_credential_is_read_from_the_current_slot() {
        let (store, admin) = source();
        let err = admin.read().await.unwrap_err();
        assert!(matches!(err, TargetError::Invalid { .. }), "{err}");
        assert!(err.to_string().contains("memory store secret `autotask/admin`"), "{err}");

        let meta = Metadata::new(None, chrono::Utc::now(), 1);
        let bare = SecretValue::new("hunter2-not-json");
        store.write_current(&admin.secret, &bare, &meta).await.unwrap();
        let err = admin.read().await.unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");

        let json = SecretValue::new(r#"{"username":"admin@x","secret":"pw1","integration_code":"C"}"#);
        store.write_current(&admin.secret, &json, &meta).await.unwrap();
        assert_eq!(admin.read().await.unwrap().username, "admin@x");
        // Read afresh each time: a self-rotation's promote is seen by the next apply.
        let json = SecretValue::new(r#"{"username":"admin@x","secret":"pw2","integration_code":"C"}"#);
        store.write_current(&admin.secret, &json, &meta).await.unwrap();
        assert_eq!(admin.read().await.unwrap().secret.expose(), "pw2");
    }
}
