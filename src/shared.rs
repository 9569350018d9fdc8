//! What the next leader must know, kept where every replica reads it.
//!
//! With one host, the state directory is shared by every process on it, and this module is not used. With
//! replicas on several machines (`[lease] kind = "kubernetes"`), three things must survive a takeover, or the
//! next leader forgets them: the **apply intent** (without it, recovery would discard a value the target may
//! hold), the lockout guard's **failed and in-flight logins** (without them, every takeover would start a fresh
//! count, and the guard's cap would be multiplied by the number of replicas), and the **diverged and blocked
//! marks** (without them, a takeover would present a refused credential again).
//!
//! [`SharedState`] holds exactly those, as small JSON values by key (`jobs/<job>`, `accounts/<account>`,
//! `credentials/<location>`); [`StateDir`](crate::rotation::state::StateDir) and
//! [`LockoutGuard`](crate::lockout::LockoutGuard) keep them here instead of (or besides) their files. The
//! Kubernetes lease writes the whole map into its Lease object with every renewal, and before every Apply it
//! writes it and proves the lease in one compare-and-set update (`lease::kubernetes`); a new leader reads the map
//! back before it runs any job. Everything else (last attempt, last success, hook failures) stays on each
//! replica's own disk: losing it costs a line of `status`, never a secret or a login.

use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// The map of shared values, a count of its changes, and how far the publisher has written them.
#[derive(Debug)]
pub struct SharedState {
    values: Mutex<BTreeMap<String, Value>>,
    /// Bumped at every change, so a writer knows whether what it wrote last is still all there is.
    changes: AtomicU64,
    /// Wakes the publisher at every change.
    changed: Notify,
    published: watch::Sender<Published>,
}

/// How far the changes are written where every replica reads them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Published {
    /// Every change up to this count is written.
    pub changes: u64,
    /// This process no longer holds the lease: nothing it changes will be written again.
    pub lost: bool,
}

/// Why a change could not be shown written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unpublished {
    #[error("this replica no longer holds the lease")]
    Lost,
    #[error("what the next leader must know was not written to the lease within {}", humantime::format_duration(*.0))]
    TimedOut(Duration),
}

impl Default for SharedState {
    fn default() -> Self {
        Self {
            values: Mutex::default(),
            changes: AtomicU64::new(0),
            changed: Notify::new(),
            published: watch::channel(Published::default()).0,
        }
    }
}

impl SharedState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits until every change made so far is written where every replica reads it (and, so, the lease was
    /// this process's when it was written): the write-ahead of an apply intent before its Apply, and of a login
    /// before it is sent.
    pub async fn published(&self, within: Duration) -> Result<(), Unpublished> {
        let target = self.changes();
        let mut seen = self.published.subscribe();
        let wait = seen.wait_for(|p| p.lost || p.changes >= target);
        match tokio::time::timeout(within, wait).await {
            Ok(Ok(p)) if !p.lost => Ok(()),
            Ok(_) => Err(Unpublished::Lost),
            Err(_) => Err(Unpublished::TimedOut(within)),
        }
    }

    /// For the publisher: every change up to `changes` is written.
    pub fn mark_published(&self, changes: u64) {
        self.published.send_if_modified(|p| {
            let newer = changes > p.changes;
            p.changes = p.changes.max(changes);
            newer
        });
    }

    /// For the publisher: the lease is lost; whoever waits for a write is told at once.
    pub fn mark_lost(&self) {
        self.published.send_modify(|p| p.lost = true);
    }

    /// For the publisher: waits for the next change.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// The value at `key`, if any.
    pub fn get(&self, key: &str) -> Option<Value> {
        self.lock().get(key).cloned()
    }

    /// Sets (or, with `None`, removes) the value at `key`.
    pub fn set(&self, key: &str, value: Option<Value>) {
        let mut values = self.lock();
        let changed = match value {
            Some(value) => values.insert(key.to_owned(), value.clone()).as_ref() != Some(&value),
            None => values.remove(key).is_some(),
        };
        if changed {
            self.bump();
        }
    }

    fn bump(&self) {
        self.changes.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_one();
    }

    /// Changes the value at `key` under the map's lock: `change` gets it (or `None`) and leaves what is to be
    /// kept. Used for read-modify-write, so that no other change comes between the read and the write.
    pub fn update<T>(&self, key: &str, change: impl FnOnce(&mut Option<Value>) -> T) -> T {
        let mut values = self.lock();
        let mut value = values.get(key).cloned();
        let before = value.clone();
        let out = change(&mut value);
        if value != before {
            match value {
                Some(value) => values.insert(key.to_owned(), value),
                None => values.remove(key),
            };
            self.bump();
        }
        out
    }

    /// How many changes were made so far.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// The whole map as one JSON text, with the change count it holds.
    pub fn snapshot(&self) -> (String, u64) {
        let values = self.lock();
        let changes = self.changes.load(Ordering::Acquire);
        (serde_json::to_string(&*values).unwrap_or_else(|_| "{}".into()), changes)
    }

    /// Replaces the whole map by one read from where every replica reads it (a standby following the leader, or
    /// a new leader taking over).
    pub fn replace(&self, text: &str) -> Result<(), serde_json::Error> {
        let read: BTreeMap<String, Value> =
            if text.is_empty() { BTreeMap::new() } else { serde_json::from_str(text)? };
        let mut values = self.lock();
        if *values != read {
            *values = read;
            // What was read is written already: the publisher need not write it back.
            let changes = self.changes.fetch_add(1, Ordering::AcqRel) + 1;
            drop(values);
            self.mark_published(changes);
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Value>> {
        self.values.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_change_is_counted_once_and_a_same_value_write_is_not_a_change() {
        let shared = SharedState::new();
        shared.set("jobs/a", Some(json!({"x": 1})));
        assert_eq!(shared.changes(), 1);
        shared.set("jobs/a", Some(json!({"x": 1})));
        assert_eq!(shared.changes(), 1, "the same value again changes nothing");
        shared.update("jobs/a", |v| *v = None);
        assert_eq!(shared.changes(), 2);
        assert_eq!(shared.get("jobs/a"), None);
    }

    #[test]
    fn a_snapshot_reads_back_whole() {
        let shared = SharedState::new();
        shared.set("accounts/u", Some(json!({"failed": ["2026-01-01T00:00:00Z"]})));
        shared.set("jobs/j", Some(json!({"diverged": null})));
        let (text, changes) = shared.snapshot();
        assert_eq!(changes, 2);
        let other = SharedState::new();
        other.replace(&text).expect("replace");
        assert_eq!(other.snapshot().0, text);
        other.replace("").expect("empty");
        assert_eq!(other.get("jobs/j"), None, "an empty text is an empty map");
        assert!(other.replace("{not json").is_err());
    }
}

#[cfg(test)]
mod publish_tests {
    use super::*;
    use serde_json::json;

    #[tokio::test(start_paused = true)]
    async fn a_wait_for_publication_ends_when_the_publisher_has_written_every_change() {
        let shared = std::sync::Arc::new(SharedState::new());
        assert_eq!(shared.published(Duration::from_secs(1)).await, Ok(()), "nothing to write yet");
        shared.set("jobs/a", Some(json!(1)));
        assert_eq!(
            shared.published(Duration::from_secs(1)).await,
            Err(Unpublished::TimedOut(Duration::from_secs(1))),
            "not written yet"
        );
        let writer = shared.clone();
        let publisher = tokio::spawn(async move {
            writer.changed().await;
            let (_, changes) = writer.snapshot();
            writer.mark_published(changes);
        });
        shared.set("jobs/b", Some(json!(2)));
        assert_eq!(shared.published(Duration::from_secs(5)).await, Ok(()));
        publisher.await.expect("publisher");
        shared.set("jobs/c", Some(json!(3)));
        shared.mark_lost();
        assert_eq!(shared.published(Duration::from_secs(5)).await, Err(Unpublished::Lost));
    }
}
