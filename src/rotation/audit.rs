//! The engine's audit events: what each decision looks like as an [`Event`], and the one place that hands it to
//! the engine's [`EventSink`].
//!
//! Events are built from what the engine already knows (the job, the rotation id, the error) and never from a
//! value: a `SecretValue` is not even in reach here. An error's message is its `Display`, which every error type
//! of the engine keeps free of secrets where it is made.

use super::Engine;
use super::error::RotationError;
use super::job::{Job, Outcome, Trigger};
use crate::events::{Event, EventData, EventKind, EventStore};
use crate::store::RotationId;

/// What an event says beyond the job it is about.
#[derive(Default)]
pub(super) struct Facts<'a> {
    pub rotation_id: Option<&'a RotationId>,
    pub generation: Option<u64>,
    pub trigger: Option<&'a Trigger>,
    pub error: Option<&'a RotationError>,
    pub detail: Option<String>,
}

impl Engine {
    /// Emits `kind` about `job`. The stores' version is the rotation id, the version rotavault wrote.
    pub(super) fn emit(&self, job: &Job, kind: EventKind, facts: Facts<'_>) {
        let accounts = job.target.accounts();
        let data = EventData {
            job: job.name.clone(),
            rotation_id: facts.rotation_id.map(ToString::to_string),
            target: Some(job.target.kind().to_owned()),
            account: (!accounts.is_empty()).then(|| accounts.join(",")),
            stores: job
                .stores
                .iter()
                .map(|js| EventStore {
                    store: js.label.clone(),
                    backend: js.store.backend(),
                    name: js.secret.name.clone(),
                    version: facts.rotation_id.map(ToString::to_string),
                })
                .collect(),
            generation: facts.generation,
            trigger: facts.trigger.map(ToString::to_string),
            error_kind: facts.error.map(|e| e.metric_label().to_owned()),
            error: facts.error.map(ToString::to_string),
            detail: facts.detail,
        };
        self.events.emit(&Event::new(kind, self.clock.now(), data));
    }

    /// The event for the end of a rotation or a recovery, if it decided anything. `newly_diverged`: the job was
    /// not diverged before (a job refused because it already is decides nothing new).
    pub(super) fn emit_result(
        &self,
        job: &Job,
        result: Result<&Outcome, &RotationError>,
        trigger: Option<&Trigger>,
        newly_diverged: bool,
    ) {
        let (kind, facts) = match result {
            Ok(Outcome::Rotated { rotation_id, generation }) => (
                EventKind::Rotated,
                Facts {
                    rotation_id: Some(rotation_id),
                    generation: Some(*generation),
                    trigger,
                    ..Facts::default()
                },
            ),
            Ok(Outcome::Completed { rotation_id }) => {
                (EventKind::Completed, Facts { rotation_id: Some(rotation_id), trigger, ..Facts::default() })
            }
            Err(e) => {
                let kind = match e {
                    // Not decisions: another run holds the job, or a shutdown stopped it before anything changed.
                    RotationError::Busy(_) | RotationError::ShutDown { .. } => return,
                    RotationError::Diverged { .. } if !newly_diverged => return,
                    RotationError::Diverged { .. } => EventKind::Diverged,
                    RotationError::Blocked { .. } => EventKind::Blocked,
                    RotationError::Refused(_) => EventKind::Refused,
                    RotationError::VerifyFailed { .. } => EventKind::VerifyFailed,
                    RotationError::Unsettled { .. } => EventKind::Unsettled,
                    RotationError::PromoteIncomplete { .. } => EventKind::PromoteIncomplete,
                    _ => EventKind::Failed,
                };
                let rotation_id = e.rotation_id();
                let facts =
                    Facts { rotation_id: rotation_id.as_ref(), trigger, error: Some(e), ..Facts::default() };
                return self.emit(job, kind, facts);
            }
        };
        self.emit(job, kind, facts);
    }
}
