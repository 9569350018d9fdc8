//! Audit events: one typed event for every decision the engine (and the daemon around it) makes, shaped as a
//! CloudEvents 1.0 JSON object, for the audit file, the log and the notification sinks.
//!
//! An event never holds a secret: it names jobs, accounts, stores, rotation ids and versions, and carries an
//! error's kind and its message, which was redacted where it was made (see `secret::redact`). Emitting never blocks
//! and never fails a rotation: an [`EventSink`] queues or writes, and reports its own failures itself.

pub mod age;
mod audit_file;

pub use audit_file::AuditFile;

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::fmt;
use std::sync::Arc;

/// The CloudEvents `type` prefix of every event.
pub const TYPE_PREFIX: &str = "io.rotavault.";

/// What happened. Each has a CloudEvents `type` (`io.rotavault.rotation.rotated`, ...) and a short name, used in
/// config subscriptions (`events = ["failed", "diverged"]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A new secret is current in every store.
    Rotated,
    /// Recovery completed an interrupted rotation (the target had the pending value).
    Completed,
    /// A person's credential was verified and stored (`rotavault import`).
    Imported,
    /// The target refused the new secret; it was discarded everywhere.
    Refused,
    /// A pending value was discarded (no apply was sent for it, or the old value still works past the horizon).
    Discarded,
    /// The target did not accept the new secret yet; it stays pending.
    VerifyFailed,
    /// A value whose apply was sent cannot be settled yet (within the apply horizon, or the target unreachable).
    Unsettled,
    /// The target accepts neither the stored nor the pending value: rotavault stops touching the job.
    Diverged,
    /// A person cleared a diverged or blocked job (`rotavault resolve`).
    Resolved,
    /// A secret that existed and was not rotavault's was taken over (`adopt = true`).
    Adopted,
    /// A person must act before the job can go on: a refused admin credential, or the lockout guard at its cap.
    Blocked,
    /// The target accepts the new value, and some store has not made it current yet.
    PromoteIncomplete,
    /// Any other failed rotation (a store error, an unreachable target, ...).
    Failed,
    /// A secret is within `warn_before` of its `max_age` and is not being rotated.
    AgeWarning,
    /// A reload hook after a rotation failed (the rotation stands).
    HookFailed,
    /// A notification sink could not deliver an event.
    NotificationFailed,
    /// A heartbeat found a store whose current value differs from the one the target accepts (a person overwrote
    /// it).
    Drifted,
    /// A manual job's secret (`apply = "manual"`) is within `warn_before` of its `max_age`: a person must set a new
    /// one.
    ManualRotationDue,
    /// A manual job's secret is past its `max_age`.
    ManualRotationOverdue,
}

impl EventKind {
    pub const ALL: [EventKind; 19] = [
        Self::Rotated,
        Self::Completed,
        Self::Imported,
        Self::Refused,
        Self::Discarded,
        Self::VerifyFailed,
        Self::Unsettled,
        Self::Diverged,
        Self::Resolved,
        Self::Adopted,
        Self::Blocked,
        Self::PromoteIncomplete,
        Self::Failed,
        Self::AgeWarning,
        Self::HookFailed,
        Self::NotificationFailed,
        Self::Drifted,
        Self::ManualRotationDue,
        Self::ManualRotationOverdue,
    ];

    /// The short name (config subscriptions, metric labels).
    pub fn name(self) -> &'static str {
        match self {
            Self::Rotated => "rotated",
            Self::Completed => "completed",
            Self::Imported => "imported",
            Self::Refused => "refused",
            Self::Discarded => "discarded",
            Self::VerifyFailed => "verify_failed",
            Self::Unsettled => "unsettled",
            Self::Diverged => "diverged",
            Self::Resolved => "resolved",
            Self::Adopted => "adopted",
            Self::Blocked => "blocked",
            Self::PromoteIncomplete => "promote_incomplete",
            Self::Failed => "failed",
            Self::AgeWarning => "age_warning",
            Self::HookFailed => "hook_failed",
            Self::NotificationFailed => "notification_failed",
            Self::Drifted => "drifted",
            Self::ManualRotationDue => "manual_rotation_due",
            Self::ManualRotationOverdue => "manual_rotation_overdue",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The CloudEvents `type`.
    pub fn cloudevents_type(self) -> String {
        let group = match self {
            Self::AgeWarning | Self::Drifted | Self::ManualRotationDue | Self::ManualRotationOverdue => {
                "secret"
            }
            Self::HookFailed => "hook",
            Self::NotificationFailed => "notification",
            Self::Imported | Self::Resolved | Self::Adopted => "job",
            _ => "rotation",
        };
        format!("{TYPE_PREFIX}{group}.{}", self.name())
    }

    /// Whether a person should hear of it by default: failures, divergence, blocks and age warnings.
    pub fn notifies_by_default(self) -> bool {
        matches!(
            self,
            Self::Refused
                | Self::VerifyFailed
                | Self::Diverged
                | Self::Blocked
                | Self::PromoteIncomplete
                | Self::Failed
                | Self::AgeWarning
                | Self::Drifted
                | Self::ManualRotationDue
                | Self::ManualRotationOverdue
                | Self::HookFailed
                | Self::NotificationFailed
        )
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One store of the job, as an event names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventStore {
    /// The configured store's name.
    pub store: String,
    pub backend: &'static str,
    /// The secret's name in the store.
    pub name: String,
    /// The version the event is about, where the store says (for rotavault's own writes: the rotation id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// The CloudEvents `data` of every event. Optional fields are left out of the JSON when unknown.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EventData {
    pub job: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation_id: Option<String>,
    /// The target's kind (`autotask`, `generated`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The account whose credential it is about (`autotask:user@example`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stores: Vec<EventStore>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// Why the rotation ran (`manual`, `due: ...`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    /// The error's kind (`RotationError::metric_label`), when it is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
    /// The error's message, redacted where it was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Anything else worth saying (an age warning's due time, a sink's name), never a secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Unique per event (CloudEvents `id`).
    pub id: String,
    pub kind: EventKind,
    pub time: DateTime<Utc>,
    pub data: EventData,
}

impl Event {
    pub fn new(kind: EventKind, time: DateTime<Utc>, data: EventData) -> Self {
        Self { id: uuid::Uuid::new_v4().to_string(), kind, time, data }
    }

    /// The CloudEvents 1.0 structured-mode JSON object. `source` names this rotavault (see [`source`]).
    pub fn to_cloudevent(&self, source: &str) -> serde_json::Value {
        serde_json::json!({
            "specversion": "1.0",
            "id": self.id,
            "source": source,
            "type": self.kind.cloudevents_type(),
            "time": self.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "subject": self.data.job,
            "datacontenttype": "application/json",
            "data": self.data,
        })
    }
}

/// The CloudEvents `source` of this process: the host and the config file, as a URI reference.
pub fn source(host: &str, config: &std::path::Path) -> String {
    format!("rotavault://{host}{}", config.display())
}

/// [`source`] for this host (its kernel host name, else `localhost`).
pub fn local_source(config: &std::path::Path) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host = host.trim();
    source(if host.is_empty() { "localhost" } else { host }, config)
}

/// Where events go. `emit` must not block on I/O for long and must not fail: a sink that cannot deliver queues,
/// retries, logs and counts on its own.
pub trait EventSink: Send + Sync + fmt::Debug {
    fn emit(&self, event: &Event);
}

/// The events to the tracing log, at `rotavault::audit` (the default sink when nothing else is configured).
#[derive(Debug, Default)]
pub struct LogSink;

impl EventSink for LogSink {
    fn emit(&self, event: &Event) {
        let data = serde_json::to_string(&event.data).unwrap_or_default();
        tracing::info!(
            target: "rotavault::audit",
            event = event.kind.name(),
            id = %event.id,
            job = %event.data.job,
            %data,
            "audit event"
        );
    }
}

/// Several sinks, each given every event.
#[derive(Debug, Default, Clone)]
pub struct Fanout(pub Vec<Arc<dyn EventSink>>);

impl EventSink for Fanout {
    fn emit(&self, event: &Event) {
        for sink in &self.0 {
            sink.emit(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_unique_name_and_a_cloudevents_type() {
        let mut names: Vec<_> = EventKind::ALL.iter().map(|k| k.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EventKind::ALL.len());
        for kind in EventKind::ALL {
            assert_eq!(EventKind::from_name(kind.name()), Some(kind));
            assert!(kind.cloudevents_type().starts_with(TYPE_PREFIX));
        }
        assert_eq!(EventKind::Rotated.cloudevents_type(), "io.rotavault.rotation.rotated");
    }

    #[test]
    fn an_event_is_a_cloudevents_1_0_object_without_unknown_fields() {
        let data = EventData {
            job: "backup".into(),
            rotation_id: Some("r1".into()),
            target: Some("autotask".into()),
            ..EventData::default()
        };
        let event = Event::new(EventKind::Diverged, Utc::now(), data);
        let json = event.to_cloudevent("rotavault://host/etc/rotavault/config.toml");
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["type"], "io.rotavault.rotation.diverged");
        assert_eq!(json["subject"], "backup");
        assert_eq!(json["data"]["rotation_id"], "r1");
        assert!(json["data"].get("error").is_none(), "unknown fields are left out: {json}");
    }
}
