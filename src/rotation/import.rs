//! `Engine::import`: a credential a person had, taken in once (`rotavault import`).
//!
//! The person asserts it is the truth and the target proves it with one login (through the lockout guard), so
//! whatever is pending is discarded, the apply intent is forgotten and a diverged mark is cleared.

use super::Engine;
use super::audit::Facts;
use super::error::{RotationError, Step};
use super::job::Job;
use super::login::{Verdict, reserve};
use super::state::{Attempt, AttemptOutcome, Verified};
use crate::events::EventKind;
use crate::secret::SecretValue;
use crate::store::Metadata;
use tracing::Instrument;

impl Engine {
    /// Verifies `payload` at the target, then makes it current in every store. Returns the generation written.
    pub async fn import(&self, job: &Job, payload: &SecretValue) -> Result<u64, RotationError> {
        let _guard = self.locks.try_acquire(&job.name)?;
        let span = tracing::info_span!("import", job = %job.name, stores = %job.backends());
        async {
            if job.stores.is_empty() {
                return Err(RotationError::NoStores { job: job.name.clone() });
            }
            let mut run = self.run_logins();
            match self.verify(job, payload, &mut run, 1, reserve::NONE, false).await {
                Verdict::Accepted => {}
                Verdict::Rejected => {
                    return Err(RotationError::ImportRejected("it does not authenticate".into()));
                }
                Verdict::Undecided(detail) | Verdict::Blocked(detail) => {
                    return Err(RotationError::ImportRejected(detail));
                }
            }
            for js in &job.stores {
                let pending =
                    self.store_call(js, || js.store.pending(&js.secret)).await.map_err(|source| {
                        RotationError::Store { step: Step::Import, store: js.label.clone(), source }
                    })?;
                if let Some(p) = pending {
                    self.store_call(js, || js.store.discard(&js.secret, &p.rotation_id)).await.map_err(
                        |source| RotationError::Store { step: Step::Import, store: js.label.clone(), source },
                    )?;
                }
            }
            let current = self.read_currents(job).await?;
            let generation = current.iter().flatten().map(|s| s.metadata.generation).max().unwrap_or(0) + 1;
            let metadata = Metadata::new(None, self.clock.now(), generation);
            for js in &job.stores {
                self.store_call(js, || js.store.write_current(&js.secret, payload, &metadata))
                    .await
                    .map_err(|source| RotationError::Store {
                        step: Step::Import,
                        store: js.label.clone(),
                        source,
                    })?;
            }
            let now = self.clock.now();
            self.states.update(&job.name, |s| {
                s.diverged = None;
                s.apply_intent = None;
                s.last_attempt =
                    Some(Attempt { at: now, rotation_id: None, outcome: AttemptOutcome::Ok, error: None });
                s.last_verify = Some(Verified { at: now, by: "import".into() });
                s.drift = None;
            })?;
            tracing::info!(
                target: "rotavault::audit",
                event = "imported",
                job = %job.name,
                generation,
                "a credential was imported and verified"
            );
            self.emit(job, EventKind::Imported, Facts { generation: Some(generation), ..Facts::default() });
            Ok(generation)
        }
        .instrument(span)
        .await
    }
}
