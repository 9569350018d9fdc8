//! What a person reads in a Slack message, a Teams card or an email: one summary line and a few facts, taken
//! from the event (which never holds a secret).

use crate::events::Event;

/// `rotavault: failed on job backup: <error>`.
pub(crate) fn summary(event: &Event) -> String {
    let mut text = format!("rotavault: {} on job {}", event.kind.name(), event.data.job);
    if let Some(error) = &event.data.error {
        text.push_str(": ");
        text.push_str(error);
    }
    text
}

/// The facts worth showing, in order, leaving out what the event does not know.
pub(crate) fn facts(event: &Event) -> Vec<(&'static str, String)> {
    let data = &event.data;
    let mut facts = vec![("Event", event.kind.name().to_owned()), ("Job", data.job.clone())];
    let optional = [
        ("Error kind", &data.error_kind),
        ("Error", &data.error),
        ("Account", &data.account),
        ("Target", &data.target),
        ("Rotation", &data.rotation_id),
        ("Trigger", &data.trigger),
        ("Detail", &data.detail),
    ];
    facts.extend(optional.into_iter().filter_map(|(name, value)| value.clone().map(|v| (name, v))));
    if !data.stores.is_empty() {
        let stores: Vec<String> = data.stores.iter().map(|s| format!("{} ({})", s.store, s.name)).collect();
        facts.push(("Stores", stores.join(", ")));
    }
    facts.push(("Time", event.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)));
    facts
}
