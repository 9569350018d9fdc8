//! `AuditFile`: the audit file, every event appended as one CloudEvents JSON line and synced before `emit`
//! returns, so that a line a reader sees is whole and survives a crash.
//!
//! The file is opened on first use and again after [`AuditFile::reopen`] (the daemon calls it on SIGHUP, after
//! logrotate moved the file away) or after a write failed. A failure is logged and never reaches the rotation
//! that emitted the event: the event still went to the log.

use super::{Event, EventSink};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug)]
pub struct AuditFile {
    path: PathBuf,
    /// The CloudEvents `source` of every line.
    source: String,
    file: Mutex<Option<File>>,
}

impl AuditFile {
    pub fn new(path: impl Into<PathBuf>, source: impl Into<String>) -> Self {
        Self { path: path.into(), source: source.into(), file: Mutex::new(None) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the file; the next event opens `path` afresh (log rotation).
    pub fn reopen(&self) {
        *self.file.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
    }

    fn append(&self, line: &[u8]) -> std::io::Result<()> {
        let mut guard = self.file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if guard.is_none() {
            // Owner-only: the events hold no secret, but they map which credentials exist and where.
            let file = OpenOptions::new().create(true).append(true).mode(0o600).open(&self.path)?;
            *guard = Some(file);
        }
        let Some(file) = guard.as_mut() else { return Ok(()) };
        let written = file.write_all(line).and_then(|()| file.sync_data());
        if written.is_err() {
            // Opened again next time: the handle may point at a file that is gone or broken.
            *guard = None;
        }
        written
    }
}

impl EventSink for AuditFile {
    fn emit(&self, event: &Event) {
        let mut line = event.to_cloudevent(&self.source).to_string();
        line.push('\n');
        if let Err(e) = self.append(line.as_bytes()) {
            tracing::error!(
                path = %self.path.display(),
                error = %e,
                event = event.kind.name(),
                id = %event.id,
                "could not append to the audit file; the event is in the log only"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{EventData, EventKind};
    use chrono::Utc;

    fn event(job: &str) -> Event {
        Event::new(EventKind::Rotated, Utc::now(), EventData { job: job.into(), ..EventData::default() })
    }

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .expect("the audit file")
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
            .collect()
    }

    #[test]
    fn every_event_is_appended_as_one_cloudevents_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let sink = AuditFile::new(&path, "rotavault://host/etc/rotavault/config.toml");
        sink.emit(&event("one"));
        sink.emit(&event("two"));
        let lines = lines(&path);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["subject"], "one");
        assert_eq!(lines[1]["subject"], "two");
        assert_eq!(lines[1]["specversion"], "1.0");
        assert_eq!(lines[1]["source"], "rotavault://host/etc/rotavault/config.toml");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("metadata").permissions().mode();
        assert_eq!(mode & 0o077, 0, "owner-only when created: {mode:o}");
    }

    #[test]
    fn after_the_file_was_moved_away_reopen_starts_a_new_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let rotated = dir.path().join("audit.jsonl.1");
        let sink = AuditFile::new(&path, "rotavault://host/c.toml");
        sink.emit(&event("before"));
        std::fs::rename(&path, &rotated).expect("logrotate moves it");
        sink.emit(&event("until-reopened"));
        sink.reopen();
        sink.emit(&event("after"));
        let old: Vec<_> = lines(&rotated).iter().map(|l| l["subject"].clone()).collect();
        assert_eq!(old, ["before", "until-reopened"], "the old handle writes to the moved file until reopen");
        let new: Vec<_> = lines(&path).iter().map(|l| l["subject"].clone()).collect();
        assert_eq!(new, ["after"]);
    }

    #[test]
    fn a_file_that_cannot_be_written_is_logged_and_emit_returns() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("no-such-dir").join("audit.jsonl");
        let sink = AuditFile::new(&path, "rotavault://host/c.toml");
        sink.emit(&event("lost"));
        std::fs::create_dir(dir.path().join("no-such-dir")).expect("the directory appears");
        sink.emit(&event("written"));
        let subjects: Vec<_> = lines(&path).iter().map(|l| l["subject"].clone()).collect();
        assert_eq!(subjects, ["written"], "a failed open is tried again on the next event");
    }
}
