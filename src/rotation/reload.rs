//! Running a job's reload hooks once a rotation made its new secret current (a rotation, or one completed by
//! recovery).
//!
//! The engine runs them, not its callers, so that every way a secret becomes current (the daemon, `rotavault
//! rotate`, a rotate-now request, start-up recovery) reloads the consumers, and while the job's lock is still
//! held, so that no second rotation starts before the consumers have the first. A failed hook is an event, a log
//! line and a mark in the job's state for `status`; it never changes the rotation's outcome.

use super::Engine;
use super::audit::Facts;
use super::job::Job;
use super::state::HookFailure;
use crate::events::{EventKind, EventStore};
use crate::hooks::{self, HookContext};
use crate::store::RotationId;

impl Engine {
    pub(super) async fn run_hooks(&self, job: &Job, rotation_id: &RotationId) {
        let Some(hooks) = self.hooks.get(&job.name).filter(|h| !h.is_empty()) else { return };
        let context = HookContext {
            job: job.name.clone(),
            rotation_id: rotation_id.to_string(),
            stores: job
                .stores
                .iter()
                .map(|js| EventStore {
                    store: js.label.clone(),
                    backend: js.store.backend(),
                    name: js.secret.name.clone(),
                    version: Some(rotation_id.to_string()),
                })
                .collect(),
        };
        let mut failure = None;
        for hook in hooks.iter() {
            match hooks::run(hook, &context).await {
                Ok(()) => tracing::info!(job = %job.name, %hook, "reload hook done"),
                Err(e) => {
                    tracing::error!(job = %job.name, %hook, error = %e, "reload hook failed; the rotation stands");
                    let facts = Facts {
                        rotation_id: Some(rotation_id),
                        detail: Some(format!("{}: {e}", e.metric_label())),
                        ..Facts::default()
                    };
                    self.emit(job, EventKind::HookFailed, facts);
                    failure.get_or_insert(HookFailure {
                        at: self.clock.now(),
                        rotation_id: rotation_id.clone(),
                        error: e.to_string(),
                    });
                }
            }
        }
        // The mark says how the latest rotation's hooks went: a later rotation whose hooks all ran clears it.
        if let Err(e) = self.states.update(&job.name, |s| s.hook_failure = failure) {
            tracing::error!(job = %job.name, error = %e, "could not record how the reload hooks went");
        }
    }
}
