//! `RecordingSink`: an `EventSink` that keeps every event it is given, so a test can say which events a run
//! emitted, in which order, and search their JSON for a secret.

use rotavault::events::{Event, EventKind, EventSink};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct RecordingSink {
    events: Mutex<Vec<Event>>,
}

impl RecordingSink {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().expect("sink lock").clone()
    }

    pub fn kinds(&self) -> Vec<EventKind> {
        self.events().iter().map(|e| e.kind).collect()
    }

    /// Forgets what was emitted so far, so a test looks only at what comes next.
    pub fn clear(&self) {
        self.events.lock().expect("sink lock").clear();
    }

    /// Every event as the CloudEvents JSON an audit file or a notification would carry.
    pub fn json(&self) -> String {
        self.events().iter().map(|e| e.to_cloudevent("rotavault://test/config.toml").to_string()).collect()
    }
}

impl EventSink for RecordingSink {
    fn emit(&self, event: &Event) {
        self.events.lock().expect("sink lock").push(event.clone());
    }
}
