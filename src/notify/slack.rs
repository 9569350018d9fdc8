//! Slack incoming webhooks: a short message, `{"text": ...}`, with the event's kind, job and error.

use super::message::{facts, summary};
use crate::events::Event;

pub(crate) fn payload(event: &Event) -> serde_json::Value {
    let details: Vec<String> = facts(event)
        .into_iter()
        .filter(|(name, _)| !matches!(*name, "Event" | "Job" | "Error"))
        .map(|(name, value)| format!("{name}: {value}"))
        .collect();
    let text = if details.is_empty() {
        summary(event)
    } else {
        format!("{}\n{}", summary(event), details.join("\n"))
    };
    serde_json::json!({ "text": text })
}
